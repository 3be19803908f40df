#pragma once
// The timing block `ltri run` prints on stderr, in llama.cpp's wording so that scripts written
// for llama.cpp's output read ours:
//        load time =   123.45 ms
// prompt eval time =   456.78 ms /    20 tokens (   22.84 ms per token,    43.78 tokens per second)
//        eval time =   ...    ms /    31 runs   (...)
//       total time =   ...    ms /    52 tokens
// then one line of memory: peak RSS and the KV cache.
#include <cstddef>
#include <string>

#include "runtime/generator.hpp"

namespace ltri {

// Lines joined by '\n', with a trailing '\n'.
std::string format_timings(double load_ms, const GenerateStats& stats, size_t peak_rss_bytes);

double bytes_to_mib(size_t bytes);

}  // namespace ltri
