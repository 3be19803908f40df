#pragma once
// Which KV policy a session uses and its parameters (LTRI_SPEC.md, "Parameters"). Every field
// is a command-line flag (tools/cli/attention_flags.cpp); defaults are scaled for the bundled
// demo model (trained to 8K tokens), the spec's 8B defaults are in docs/kv-policies.md.
#include <cstdint>
#include <string>

namespace ltri {

struct AttentionOptions {
  std::string policy = "full";  // full | streaming | infllm | ltri

  // Shared by the streaming policies (streaming, infllm, ltri).
  int64_t n_init = 64;     // first tokens kept visible forever (attention sinks)
  int64_t n_local = 2048;  // most recent tokens kept visible
  int64_t budget = 2048;   // tokens of retrieved blocks/spans visible to a chunk (infllm, ltri)
  // Where init and retrieved tokens sit: "fixed" (every query sees them n_local away, InfLLM's
  // scheme) or "ordered" (in original order, contiguous positions just before the window).
  std::string placement = "fixed";
  // How the host store holds evicted K/V (infllm, ltri): "f32", "bf16" (half the host memory:
  // an 8B model's K/V at 1M tokens take 128 GiB instead of 256; values rounded once, widened to
  // f32 when retrieved) or "int8" (66 GiB: one f32 scale per token and KV head, absmax / 127;
  // dequantised when retrieved).
  std::string host_kv = "f32";
  // How the host store and the device mirror hold the index vectors (infllm, ltri): "f32",
  // "bf16" (half the memory; scored as bf16 products summed in f32) or "auto": f32 with an f32
  // host store, bf16 with a bf16 or int8 one (a compact store gets a compact index).
  std::string index_dtype = "auto";
  // infllm, ltri: where the store step of an eviction runs (the evicted tokens' index vectors
  // and their copy into the host store): "on" on a few worker threads while the other layers
  // compute (a layer waits for its own step when it is planned again, a chunk later), "off" on
  // the calling thread, "auto" on for a device backend (CUDA) and off on the CPU (whose OpenMP
  // threads already use every core). Results are the same either way.
  std::string async_store = "auto";

  // infllm: fixed blocks represented by the mean of their most-voted keys.
  int64_t block_size = 128;
  int64_t block_repr = 4;  // representative keys averaged per block

  // ltri: triangle spans (span_discovery.hpp) with index vectors and retrieval-head scoring.
  int64_t span_min = 4;
  int64_t span_max = 256;
  double theta = 0.6;           // triangle threshold (per layer from the calibration file)
  double phi = 0.3;             // NMS IoU limit
  std::string index = "dynamic";  // static | dynamic index vectors per span
  int64_t index_static = 4;     // vectors per span for index=static
  double lambda = 1.0;          // dynamic index: retained fraction r_v = min(1, lambda * r_a)
  int64_t index_max = 32;       // m_max: at most this many vectors per span
  // mean | retrieval | retrieval-heads: which heads score spans. The spec's method scores with
  // each layer's best retrieval head; on the bundled model the mean of heads found more needles
  // (niah 32K-128K, docs/kv-policies.md), so it is the default. retrieval-heads: the mean of the
  // layer's retrieval heads (score >= the heads file's threshold), not measured on the GPU yet.
  // Layers without a retrieval head score with the mean. Votes are weighted by retrieval scores.
  // On CUDA the span index mirrored in GPU memory holds only the KV heads that score: with
  // retrieval the KV head of the layer's retrieval head (Llama-3-8B: 1/8 of the mean's,
  // docs/performance.md).
  std::string score_heads = "mean";
  // mean | retrieval: which heads' attention forms the segmentation map that spans are cut
  // from (a [choice] of the spec). The mean, because the bundled model's theta was calibrated
  // on it (measured in docs/kv-policies.md).
  std::string seg_heads = "mean";
  // ltri: which queries score spans: "mean" (the chunk's mean query, the spec's default) or
  // "max" (each span's best score over the chunk's queries, so a short question at the end
  // of a long chunk counts; measured in docs/kv-policies.md). infllm always uses the mean.
  std::string retrieval_query = "max";
  // With "max": queries are first averaged in blocks of this many consecutive tokens (counted
  // back from the chunk's end, where a question sits) and a span counts its best block. 1 is
  // the plain per-query max; larger blocks cut the scoring cost, which grows with the chunk
  // times the number of index vectors, by the block size.
  int64_t query_block = 32;
  // ltri: the spans pinned for decode (persistence) are scored with the queries of the
  // prompt's last question_tokens tokens only (rounded up to whole query blocks), where the
  // question sits. The other queries of the last chunk are prose before the question and
  // rank spans of similar prose first (niah_single_2 at 32K: the needle's span 40th with the
  // whole chunk, docs/kv-policies.md). 0 = every query of the last chunk, as in prefill.
  int64_t question_tokens = 64;
  // ltri: the prompt's last question_tokens tokens are prefilled as a chunk of their own, so the
  // first answer token sees spans retrieved for the question (without it the last chunk's prose
  // queries rank prose spans first for that token; the pinned spans only serve the tokens after:
  // niah_single_3 and niah_multikey_1 at 128K, depth 20%, were missed so, docs/kv-policies.md).
  bool question_chunk = true;
  bool voting = true;           // cross-layer collaborative voting
  bool persist = true;          // spans retrieved for the last prefill chunk stay for decode
  bool decode_retrieval = true; // with persist: each decode step also retrieves (adds to the pinned spans)
  int64_t span_cache_tokens = 8192;  // bound of the span cache (tokens)
  // infllm, ltri: the band (votes and segmentation rows, read only when a token leaves the
  // window) of this many decode steps computed at once, one launch per layer instead of one per
  // step. 1 = every step its own. Where the window is too small for that (n_local < the band's
  // width + N) or chunks are shorter than N (-b), every step runs its own band.
  int64_t decode_band_batch = 32;
  std::string heads_file;       // retrieval heads (ltri heads); "" = <model dir>/ltri_heads.json
  std::string calibration_file; // per-layer theta (ltri calibrate); "" = <model dir>/ltri_calibration.json
};

}  // namespace ltri
