#include "kv/ltri_trace.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>

namespace ltri {

namespace {

// Units of `scores` ranking strictly above unit u.
int64_t rank_of(const std::vector<float>& scores, int64_t u) {
  int64_t r = 0;
  for (float x : scores) r += x > scores[size_t(u)];
  return r;
}

bool contains(const std::vector<int64_t>& sorted, int64_t u) { return std::binary_search(sorted.begin(), sorted.end(), u); }

void dump_head_scores(const LtriTrace& t, int64_t layer, const std::vector<StoredUnit>& units,
                      const std::vector<std::vector<float>>& head_scores) {
  const char* dir = std::getenv("LTRI_TRACE_DUMP");
  if (dir == nullptr || head_scores.empty()) return;
  const std::string path = std::string(dir) + "/needle" + std::to_string(t.first) + "_L" + std::to_string(layer) + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "trace: cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(f, "# needle %lld %lld layer %lld\n", (long long)t.first, (long long)t.last, (long long)layer);
  for (size_t u = 0; u < units.size(); ++u) {
    std::fprintf(f, "%lld %lld", (long long)units[u].first_token, (long long)units[u].length);
    for (const std::vector<float>& h : head_scores) std::fprintf(f, " %.5f", h[u]);
    std::fprintf(f, "\n");
  }
  std::fclose(f);
}

}  // namespace

bool LtriTrace::from_env(LtriTrace& out) {
  const char* env = std::getenv("LTRI_TRACE_TOKENS");
  long long a = 0, b = 0, p = -1;
  if (env == nullptr || std::sscanf(env, "%lld,%lld,%lld", &a, &b, &p) < 2) return false;
  out.first = a;
  out.last = b;
  out.prompt = p;
  return true;
}

bool LtriTrace::wants_heads(int64_t at, int64_t n) const {
  return prompt >= 0 && at + n == prompt && std::getenv("LTRI_TRACE_HEADS") != nullptr;
}

void trace_stored_span(const LtriTrace& t, int64_t layer, int64_t first_token, int64_t length, int64_t n_vectors) {
  if (!LtriTrace{t.first - 64, t.last + 64}.overlaps(first_token, length)) return;
  std::fprintf(stderr, "trace store L%lld span [%lld, %lld) len %lld vectors %lld%s\n", (long long)layer,
               (long long)first_token, (long long)(first_token + length), (long long)length, (long long)n_vectors,
               t.overlaps(first_token, length) ? " TRACED" : "");
}

void trace_index_tokens(const LtriTrace& t, int64_t layer, int64_t first_token, int64_t length, int64_t g,
                        const int64_t* tokens, int64_t count) {
  if (!t.overlaps(first_token, length) || count >= length) return;
  std::string line;
  for (int64_t r = 0; r < count; ++r) line += " " + std::to_string(tokens[r]);
  std::fprintf(stderr, "trace index L%lld span [%lld, %lld) kv head %lld:%s\n", (long long)layer, (long long)first_token,
               (long long)(first_token + length), (long long)g, line.c_str());
}

void trace_choice(const LtriTrace& t, bool decoding, int64_t at, int64_t n, int64_t layer,
                  const std::vector<StoredUnit>& units, const std::vector<float>& scores,
                  const std::vector<int64_t>& top, const std::vector<int64_t>& chosen,
                  const std::vector<std::vector<float>>& head_scores) {
  dump_head_scores(t, layer, units, head_scores);
  int64_t top_tokens = 0;
  for (int64_t u : top) top_tokens += units[size_t(u)].length;
  for (int64_t u = 0; u < int64_t(units.size()); ++u) {
    const StoredUnit& unit = units[size_t(u)];
    if (!t.overlaps(unit.first_token, unit.length)) continue;
    for (size_t h = 0; h < head_scores.size(); ++h) {
      std::fprintf(stderr, "trace head L%lld h%zu unit %lld [%lld, %lld) score %.4f rank %lld\n", (long long)layer, h,
                   (long long)u, (long long)unit.first_token, (long long)(unit.first_token + unit.length),
                   head_scores[h][size_t(u)], (long long)rank_of(head_scores[h], u));
    }
    std::fprintf(stderr,
                 "trace %s @%lld n %lld L%lld unit %lld [%lld, %lld) score %.4f rank %lld/%zu own_top %d loaded %d "
                 "(own top: %zu units, %lld tokens)\n",
                 decoding ? "decode" : "prefill", (long long)at, (long long)n, (long long)layer, (long long)u,
                 (long long)unit.first_token, (long long)(unit.first_token + unit.length), scores[size_t(u)],
                 (long long)rank_of(scores, u), units.size(), int(contains(top, u)), int(contains(chosen, u)),
                 top.size(), (long long)top_tokens);
  }
}

void trace_persistent(const LtriTrace& t, int64_t layer, const std::vector<StoredUnit>& units,
                      const std::vector<float>* votes, const std::vector<float>& scores,
                      const std::vector<uint8_t>& pinned, int64_t pinned_tokens) {
  const int64_t n_units = int64_t(scores.size());
  for (int64_t u = 0; u < n_units; ++u) {
    const StoredUnit& unit = units[size_t(u)];
    if (!t.overlaps(unit.first_token, unit.length)) continue;
    std::fprintf(stderr,
                 "trace persist L%lld unit %lld [%lld, %lld) vote %.4f vote_rank %lld score_rank %lld pinned %d "
                 "(%lld tokens pinned)\n",
                 (long long)layer, (long long)u, (long long)unit.first_token, (long long)(unit.first_token + unit.length),
                 votes ? (*votes)[size_t(u)] : 0.0f, votes ? (long long)rank_of(*votes, u) : -1LL,
                 (long long)rank_of(scores, u), int(pinned[size_t(u)]), (long long)pinned_tokens);
  }
  // What outranks the traced spans.
  std::vector<int64_t> best(static_cast<size_t>(n_units));
  std::iota(best.begin(), best.end(), int64_t(0));
  const size_t k = std::min<size_t>(8, best.size());
  std::partial_sort(best.begin(), best.begin() + k, best.end(),
                    [&](int64_t a, int64_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
  for (size_t i = 0; i < k; ++i) {
    const StoredUnit& unit = units[size_t(best[i])];
    std::fprintf(stderr, "trace persist L%lld best#%zu unit %lld [%lld, %lld) score %.4f pinned %d\n", (long long)layer,
                 i, (long long)best[i], (long long)unit.first_token, (long long)(unit.first_token + unit.length),
                 scores[size_t(best[i])], int(pinned[size_t(best[i])]));
  }
}

}  // namespace ltri
