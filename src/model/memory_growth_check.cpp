#include "model/memory_growth_check.hpp"

#include <cstdio>
#include <string>

#include "core/error.hpp"

namespace ltri {

namespace {

std::string one_decimal(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", x);
  return text;
}

std::string gib(size_t bytes) { return one_decimal(double(bytes) / double(size_t(1) << 30)); }

// "the 2084352 prompt tokens left (of 2097152) need about 120.6 GiB more (48.5 KB a token, measured)"
std::string need_text(const KvPolicy::MemoryGrowth& growth, int64_t tokens_left, int64_t prompt_tokens) {
  return "the " + std::to_string(tokens_left) + " prompt tokens left (of " + std::to_string(prompt_tokens) +
         ") need about " + gib(growth.bytes) + " GiB more (" + one_decimal(growth.bytes_per_token / 1024.0) +
         " KB a token, " + (growth.measured ? "measured" : "at least") + ")";
}

}  // namespace

void check_gpu_growth(const KvPolicy::MemoryGrowth& growth, const char* policy, int64_t tokens_left,
                      int64_t prompt_tokens, size_t free_bytes, int device) {
  if (growth.bytes <= free_bytes) return;
  fail("--device cuda: the ", policy, " ", growth.what, " would outgrow GPU memory: ",
       need_text(growth, tokens_left, prompt_tokens), " but GPU ", device, " has ", gib(free_bytes),
       " GiB free (try a shorter prompt; for ltri a sparser index: a lower --attn-lambda or --attn-index static)");
}

void check_host_growth(const KvPolicy::MemoryGrowth& growth, const char* policy, int64_t tokens_left,
                       int64_t prompt_tokens, size_t available_bytes) {
  if (growth.bytes <= available_bytes) return;
  fail("the ", policy, " ", growth.what, " would outgrow host memory: ", need_text(growth, tokens_left, prompt_tokens),
       " but the host has ", gib(available_bytes),
       " GiB available (try a shorter prompt or a smaller store format: --attn-host-kv int8)");
}

}  // namespace ltri
