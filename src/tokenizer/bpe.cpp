#include "tokenizer/bpe.hpp"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

// One symbol of the word being merged: a doubly linked list laid over an array, as in HF, so
// merging never moves memory. A merged-away symbol keeps len 0.
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes of the word it covers
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
// std::priority_queue puts the "largest" on top; we want the lowest (rank, pos) first, which
// is the order of HF's heap (equal ranks merge leftmost first).
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

std::string optional_string(const Json& obj, std::string_view key, const JsonPath& path) {
  const Json* v = optional_field(obj, key, path);
  return v ? as_string(*v, path / key) : std::string();
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const Json& model, const JsonPath& path) {
  as_object(model, path);
  const std::string type = component_type(model, path);
  if (type != "BPE") path.fail("type '", type, "' is not supported (supported models: BPE)");
  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());

  if (const Json* dropout = optional_field(model, "dropout", path)) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      (path / "dropout").fail("BPE dropout is not supported (expected null)");
    }
  }

  // vocab: {"token": id, ...}
  const JsonPath vocab_path = path / "vocab";
  const Json& vocab = as_object(require_field(model, "vocab", path), vocab_path);
  if (vocab.empty()) vocab_path.fail("empty vocabulary");
  bpe->vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = as_int(it.value(), vocab_path / it.key());
    if (id < 0 || id >= kMaxId) (vocab_path / it.key()).fail("id ", id, " is out of range [0, ", kMaxId, ")");
    bpe->vocab_.emplace(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  bpe->token_of_id_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : bpe->vocab_) {
    const std::string*& slot = bpe->token_of_id_[static_cast<size_t>(id)];
    if (slot) vocab_path.fail("tokens '", *slot, "' and '", token, "' both have id ", id);
    slot = &token;
  }

  bpe->byte_fallback_ = bool_field(model, "byte_fallback", path, false);
  bpe->ignore_merges_ = bool_field(model, "ignore_merges", path, false);
  bpe->fuse_unk_ = bool_field(model, "fuse_unk", path, false);
  bpe->continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix", path);
  bpe->end_of_word_suffix_ = optional_string(model, "end_of_word_suffix", path);
  if (const Json* unk = optional_field(model, "unk_token", path)) {
    const std::string unk_token = as_string(*unk, path / "unk_token");
    bpe->unk_id_ = bpe->token_to_id(unk_token);
    if (bpe->unk_id_ < 0) (path / "unk_token").fail("'", unk_token, "' is not in the vocab");
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    bpe->byte_ids_[b] = bpe->token_to_id(name);
  }

  // merges: ["a b", ...] (older files) or [["a", "b"], ...]; the rank is the position.
  const JsonPath merges_path = path / "merges";
  const Json& merges = as_array(require_field(model, "merges", path), merges_path);
  bpe->merges_.reserve(merges.size());
  const size_t prefix_len = bpe->continuing_subword_prefix_.size();
  int32_t rank = 0;
  std::vector<std::pair<std::string, std::string>> merge_pairs;
  merge_pairs.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    std::string left, right;
    if (m.is_string()) {
      const std::string& line = m.get_ref<const std::string&>();
      if (line.rfind("#version", 0) == 0) continue;  // merges.txt header, not a merge
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        merges_path[i].fail("expected \"left right\" (two tokens and one space), got '", line, "'");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      merges_path[i].fail("expected a string \"left right\" or a pair of strings, got ", m.type_name());
    }
    const int32_t left_id = bpe->token_to_id(left);
    const int32_t right_id = bpe->token_to_id(right);
    if (left_id < 0) merges_path[i].fail("token '", left, "' is not in the vocab");
    if (right_id < 0) merges_path[i].fail("token '", right, "' is not in the vocab");
    if (right.size() < prefix_len) {
      merges_path[i].fail("token '", right, "' is shorter than continuing_subword_prefix");
    }
    const std::string merged = left + right.substr(prefix_len);
    const int32_t new_id = bpe->token_to_id(merged);
    if (new_id < 0) merges_path[i].fail("merged token '", merged, "' is not in the vocab");
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    bpe->merges_[pair_key(left_id, right_id)] = {rank++, new_id};
    merge_pairs.emplace_back(std::move(left), std::move(right));
  }
  bpe->find_split_boundary(merge_pairs);
  return bpe;
}

void BpeModel::find_split_boundary(const std::vector<std::pair<std::string, std::string>>& merge_pairs) {
  static const std::string kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"
  // Prefixes and suffixes depend on where a word starts and ends, so cutting would change them.
  if (!continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty()) return;
  if (token_to_id(kMetaspace) < 0) return;
  const auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& [left, right] : merge_pairs) {
    if (right.rfind(kMetaspace, 0) == 0 && !ends_with(left, kMetaspace)) return;
  }
  split_boundary_ = kMetaspace;
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= token_of_id_.size()) return nullptr;
  return token_of_id_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  // ignore_merges (Llama-3): a pre-token that is itself a token is emitted whole, even where
  // the merges would have split it differently.
  if (ignore_merges_) {
    const int32_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (split_boundary_.empty() || word.size() <= split_boundary_.size()) {
    tokenize_part(word, out);
    return;
  }
  // Cut before each run of the boundary ("a▁b▁▁c" -> "a", "▁b", "▁▁c").
  const std::string_view boundary = split_boundary_;
  size_t part_begin = 0;
  size_t pos = word.find(boundary, 1);
  while (pos != std::string_view::npos) {
    const bool run_continues = pos >= boundary.size() && word.compare(pos - boundary.size(), boundary.size(), boundary) == 0;
    if (!run_continues && pos > part_begin) {
      tokenize_part(word.substr(part_begin, pos - part_begin), out);
      part_begin = pos;
    }
    pos = word.find(boundary, pos + boundary.size());
  }
  tokenize_part(word.substr(part_begin), out);
}

void BpeModel::tokenize_part(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + start, out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;  // (n_symbols) -- reused across calls
  symbols.clear();
  const auto add = [](int32_t id, uint32_t len) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, len});
  };

  // 1. One symbol per character; unknown characters become byte tokens, <unk> or nothing.
  bool have_unk = false;
  uint32_t unk_len = 0;
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    size_t n = utf8::valid_sequence_length(word, pos);
    if (n == 0) n = 1;  // not reached for valid text; keeps a broken byte as its own symbol
    const bool is_first = pos == 0;
    const bool is_last = pos + n == word.size();
    piece.clear();
    if (!is_first) piece += continuing_subword_prefix_;
    piece.append(word.substr(pos, n));
    if (is_last) piece += end_of_word_suffix_;
    pos += n;

    const int32_t id = token_to_id(piece);
    if (id >= 0) {
      if (have_unk) add(unk_id_, unk_len), have_unk = false;
      add(id, static_cast<uint32_t>(n));
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (unsigned char b : piece) all_bytes = all_bytes && byte_ids_[b] >= 0;
      if (all_bytes) {
        // HF adds these without first flushing a pending <unk>; we keep its order.
        for (unsigned char b : piece) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (have_unk && fuse_unk_) {
        unk_len += static_cast<uint32_t>(n);
      } else {
        if (have_unk) add(unk_id_, unk_len);
        have_unk = true;
        unk_len = static_cast<uint32_t>(n);
      }
    }
  }
  if (have_unk) add(unk_id_, unk_len);

  // 2. Merge by rank until no adjacent pair has a merge (HF word.rs merge_all, no dropout).
  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  const auto find_merge = [this](int32_t left, int32_t right) -> const MergeTarget* {
    const auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeTarget* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  const int32_t n_symbols = static_cast<int32_t>(symbols.size());
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next == -1) continue;  // merged away, or now last
    const int32_t right_pos = left.next;
    const Symbol right = symbols[static_cast<size_t>(right_pos)];
    // The pair at this position may have changed since the candidate was queued.
    const MergeTarget* current = find_merge(left.id, right.id);
    if (!current || current->new_id != top.new_id) continue;

    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    symbols[static_cast<size_t>(right_pos)].len = 0;
    if (right.next > -1 && right.next < n_symbols) symbols[static_cast<size_t>(right.next)].prev = top.pos;

    if (left.prev >= 0) {
      if (const MergeTarget* m = find_merge(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
        queue.push({m->rank, left.prev, m->new_id});
      }
    }
    if (left.next >= 0 && left.next < n_symbols) {
      if (const MergeTarget* m = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
        queue.push({m->rank, top.pos, m->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace ltri
