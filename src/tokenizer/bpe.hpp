#pragma once
// The BPE model of tokenizer.json: vocab (token -> id), ranked merges, and the options HF
// supports (byte_fallback, ignore_merges, unk_token + fuse_unk, continuing_subword_prefix,
// end_of_word_suffix). tokenize() reproduces HF's merge loop (models/bpe/word.rs): a heap of
// candidate merges ordered by (rank, position), lowest first, so a word of n symbols costs
// O(n log n) -- a Llama-2 style file has no pre-tokenizer and hands BPE whole paragraphs.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_fields.hpp"

namespace ltri {

// Hash for unordered_map<std::string, ...> lookups by string_view without a temporary string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Ids at or above this are refused: they would only come from a broken file, and the
  // id -> token table is indexed by id.
  static constexpr int64_t kMaxId = int64_t{1} << 24;

  // Builds from the "model" object. Throws ltri::Error naming `path` for a missing vocab or
  // merges, duplicate ids, merges naming unknown tokens, or options we do not implement.
  static std::unique_ptr<BpeModel> from_json(const Json& model, const JsonPath& path);

  // Appends the ids of one pre-token to `out`.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  const std::string* id_to_token(int32_t id) const;   // nullptr if absent
  int32_t max_id() const { return static_cast<int32_t>(token_of_id_.size()) - 1; }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  void tokenize_part(std::string_view word, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  // Decides whether words may be cut before runs of `boundary` (see split_boundary_).
  void find_split_boundary(const std::vector<std::pair<std::string, std::string>>& merge_pairs);

  TokenIdMap vocab_;
  std::vector<const std::string*> token_of_id_;  // points at vocab_ keys (stable in the map)
  std::unordered_map<uint64_t, MergeTarget> merges_;
  int32_t byte_ids_[256];  // <0xXX> ids for byte fallback, -1 if absent
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;  // -1: unknown characters are dropped (HF does the same without unk)
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  // SentencePiece-style files have no pre-tokenizer, so BPE gets whole paragraphs as one word.
  // When no merge can join a symbol that does not end in "▁" to one that starts with "▁",
  // BPE of the word equals BPE of its pieces cut before each run of "▁" (merges never cross
  // such a cut, and the heap order within a piece is unchanged). Cutting there makes long
  // texts cacheable word by word. Empty when the vocab does not allow it.
  std::string split_boundary_;

  // Words seen before -> their ids. Text repeats words constantly, so this saves most of the
  // merge work; guarded by a mutex because encode() is const and may run on several threads.
  static constexpr size_t kCacheMaxWordBytes = 256;
  static constexpr size_t kCacheMaxEntries = 200000;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace ltri
