#include "bench_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <span>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/memory_stats.hpp"
#include "core/timer.hpp"
#include "kv/policy_factory.hpp"
#include "ops/backend.hpp"
#include "runtime/model_info.hpp"
#include "runtime/progress.hpp"

namespace ltri::cli {

namespace {

// Restarts the kernel's peak-RSS counter (VmHWM) from the current RSS, so each phase reports
// its own peak rather than the process's (Linux >= 4.0: "5" to /proc/self/clear_refs).
bool reset_host_peak() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool written = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && written;
}

// Measures one phase: transfers as the difference of the backend's counters, peaks from a
// reset at the start. Folds each run into `into`, keeping the largest values over the runs.
class PhaseMeter {
 public:
  explicit PhaseMeter(Backend& backend) : backend_(backend) {
    backend_.reset_peak();
    host_peak_reset_ = reset_host_peak();
    start_ = backend_.stats();
  }

  void finish(const Session& session, PhaseMemory& into) const {
    const BackendStats end = backend_.stats();
    into.h2d_bytes = std::max(into.h2d_bytes, end.h2d_bytes - start_.h2d_bytes);
    into.d2h_bytes = std::max(into.d2h_bytes, end.d2h_bytes - start_.d2h_bytes);
    into.peak_device_bytes = std::max(into.peak_device_bytes, end.device_peak_bytes);
    into.peak_host_bytes = std::max(into.peak_host_bytes, peak_rss_bytes());
    into.host_peak_is_per_phase = into.host_peak_is_per_phase && host_peak_reset_;
    into.kv_bytes = std::max(into.kv_bytes, session.kv_bytes());
    into.kv_host_bytes = std::max(into.kv_host_bytes, session.kv_host_bytes());
  }

 private:
  Backend& backend_;
  bool host_peak_reset_ = false;
  BackendStats start_;
};

void summarise(BenchTest& t) {
  const double n = double(t.samples_ts.size());
  double sum = 0.0;
  for (double v : t.samples_ts) sum += v;
  t.avg_ts = sum / n;
  double sq = 0.0;
  for (double v : t.samples_ts) sq += (v - t.avg_ts) * (v - t.avg_ts);
  t.stddev_ts = t.samples_ts.size() > 1 ? std::sqrt(sq / (n - 1.0)) : 0.0;
  double ttft = 0.0;
  for (double v : t.samples_ttft_ms) ttft += v;
  t.avg_ttft_ms = t.samples_ttft_ms.empty() ? 0.0 : ttft / double(t.samples_ttft_ms.size());
}

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Bytes of full attention's KV cache for `tokens` tokens: keys and values of every layer, f32
// (the layout FullPolicy allocates through the backend).
double full_kv_bytes(const ModelConfig& c, int64_t tokens) {
  return double(tokens) * 2.0 * double(c.num_hidden_layers) * double(c.num_key_value_heads) *
         double(c.head_dim) * sizeof(float);
}

std::string seconds_text(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, ms >= 1000.0 ? "%.2f s" : "%.1f ms", ms >= 1000.0 ? ms / 1000.0 : ms);
  return text;
}

int64_t longest_prompt(const BenchOptions& o) {
  return *std::max_element(o.n_prompt.begin(), o.n_prompt.end());
}

SessionOptions session_options(const BenchOptions& o, const std::string& policy, int64_t n_prompt) {
  SessionOptions s;
  s.max_context = std::max<int64_t>(n_prompt + o.n_gen, 1);
  s.chunk = o.chunk;
  s.attention = o.attention;
  s.attention.policy = policy;
  return s;
}

// One (policy, prompt length) pair: a session of its own (full attention's cache sized to it),
// an untimed warm-up (one chunk and two decode steps: thread pools, caches, lazy allocations),
// then the timed runs.
void run_pair(const Model& model, const BenchOptions& o, const std::string& policy, int64_t n_prompt,
              const std::vector<int32_t>& ids, std::vector<BenchTest>& tests) {
  const std::unique_ptr<Session> session = model.new_session(session_options(o, policy, n_prompt));
  Backend& backend = model.backend();
  std::vector<float> logits(size_t(model.config().vocab_size));  // (vocab), f32

  auto decode = [&](int32_t next, int64_t steps) {
    for (int64_t i = 0; i < steps; ++i) {
      session->forward(std::span<const int32_t>(&next, 1), logits.data());
      next = argmax(logits);
    }
  };
  if (n_prompt > 0) session->forward(std::span<const int32_t>(ids.data(), size_t(std::min(n_prompt, o.chunk))), logits.data());
  decode(ids[0], std::min<int64_t>(o.n_gen, 2));

  BenchTest pp;
  pp.policy = policy;
  pp.kind = "pp";
  pp.n_prompt = n_prompt;
  BenchTest tg;
  tg.policy = policy;
  tg.kind = "tg";
  tg.n_gen = o.n_gen;
  tg.n_depth = n_prompt;
  const int64_t runs = repetitions_for(o, n_prompt);
  const bool show_progress = log_level() >= LogLevel::Info;
  for (int64_t run = 0; run < runs; ++run) {
    session->reset();
    std::string line = cat("bench: ", policy, " run ", run + 1, "/", runs, ":");
    int32_t next = ids[0];  // decode from an empty context starts from a random id
    if (n_prompt > 0) {
      PrefillProgress progress(show_progress ? stderr : nullptr, stream_is_tty(stderr), 5.0, 30.0);
      progress.start(n_prompt);
      const PhaseMeter meter(backend);
      const Timer timer;
      session->forward(std::span<const int32_t>(ids.data(), size_t(n_prompt)), logits.data(), nullptr,
                       [&](int64_t done, int64_t) { progress.update(done); });
      const double prefill_ms = timer.elapsed_ms();
      next = argmax(logits);
      const double ttft_ms = timer.elapsed_ms();
      meter.finish(*session, pp.memory);
      progress.finish();
      pp.samples_ms.push_back(prefill_ms);
      pp.samples_ts.push_back(1000.0 * double(n_prompt) / prefill_ms);
      pp.samples_ttft_ms.push_back(ttft_ms);
      line += cat(" ", pp.name(), " ", seconds_text(prefill_ms), " (ttft ", seconds_text(ttft_ms), ")");
    }
    if (o.n_gen > 0) {
      const PhaseMeter meter(backend);
      const Timer timer;
      decode(next, o.n_gen);
      const double decode_ms = timer.elapsed_ms();
      meter.finish(*session, tg.memory);
      tg.samples_ms.push_back(decode_ms);
      tg.samples_ts.push_back(1000.0 * double(o.n_gen) / decode_ms);
      line += cat(" ", tg.name(), " ", seconds_text(decode_ms));
    }
    log_info(line);
  }
  for (BenchTest* t : {&pp, &tg}) {
    if (t->samples_ms.empty()) continue;
    summarise(*t);
    tests.push_back(std::move(*t));
  }
}

}  // namespace

std::string BenchTest::name() const {
  if (kind == "pp") return cat("pp", n_prompt);
  return n_depth > 0 ? cat("tg", n_gen, " @ d", n_depth) : cat("tg", n_gen);
}

void check_bench_request(const BenchOptions& o, const ModelConfig& config, Device device) {
  std::set<std::string> seen;
  for (const std::string& policy : o.policies) {
    if (!seen.insert(policy).second) fail("--attn: '", policy, "' is listed twice");
  }
  if (o.n_gen == 0 && longest_prompt(o) == 0) fail("nothing to measure: every -p length is 0 and -n is 0");

  if (!seen.count("full")) return;
  const int64_t longest = longest_prompt(o);
  // The CUDA backend checks its own memory before work starts; on the CPU the whole cache is
  // host memory, which the kernel would otherwise exhaust halfway through a long prefill.
  const size_t available = device == Device::Cpu ? available_memory_bytes() : 0;
  const double kv = full_kv_bytes(config, longest + o.n_gen);
  const double weights = double(count_parameters(config)) * sizeof(float);
  if (available > 0 && kv + weights > double(available)) {
    fail("--attn full at -p ", longest, ": the KV cache of ", longest + o.n_gen, " tokens needs ",
         format_bytes(kv), " (f32) besides ", format_bytes(weights), " of weights, but ",
         format_bytes(double(available)), " of host memory is available; use a shorter -p or a streaming policy");
  }
  // Positions past the trained range are only a quality matter: a benchmark may go there.
  if (longest > config.max_position_embeddings) {
    log_warn(cat("--attn full at -p ", longest, " runs past the model's max_position_embeddings (",
                 config.max_position_embeddings, "): the speed is measured, the output would not be meaningful"));
  }
}

void check_policies_build(const Model& model, const BenchOptions& o) {
  for (const std::string& policy : o.policies) {
    model.new_session(session_options(o, policy, longest_prompt(o)));
  }
}

std::vector<BenchTest> run_benchmarks(const Model& model, const BenchOptions& o) {
  // Random ids over the whole vocabulary, the same for every policy and run.
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(model.config().vocab_size - 1));
  std::vector<int32_t> ids(size_t(std::max<int64_t>(longest_prompt(o), 1)));  // (longest prompt) token ids
  for (int32_t& id : ids) id = pick(rng);

  std::vector<BenchTest> tests;
  for (const std::string& policy : o.policies) {
    for (int64_t n_prompt : o.n_prompt) run_pair(model, o, policy, n_prompt, ids, tests);
  }
  return tests;
}

}  // namespace ltri::cli
