#include "attention_flags.hpp"

#include "cli_common.hpp"

namespace ltri::cli {

void add_attention_flags(CLI::App* app, AttentionOptions& o) {
  app->add_option("--attn", o.policy, "KV policy: full, streaming, infllm or ltri")
      ->check(CLI::IsMember({"full", "streaming", "infllm", "ltri"}))->capture_default_str()
      ->group(kAttentionFlagGroup);
  add_attention_parameter_flags(app, o);
}

void add_attention_parameter_flags(CLI::App* app, AttentionOptions& o) {
  const char* group = kAttentionFlagGroup;
  app->add_option("--attn-init", o.n_init, "Initial tokens kept visible (attention sinks)")
      ->check(integer_at_least(0))->capture_default_str()->group(group);
  app->add_option("--attn-local", o.n_local, "Recent tokens kept visible (local window)")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-budget", o.budget, "Tokens of retrieved blocks/spans per chunk")
      ->check(integer_at_least(0))->capture_default_str()->group(group);
  app->add_option("--attn-placement", o.placement,
                  "Positions of init and retrieved tokens: fixed (n_local before every query) or ordered")
      ->check(CLI::IsMember({"fixed", "ordered"}))->capture_default_str()->group(group);
  app->add_option("--attn-host-kv", o.host_kv,
                  "infllm, ltri: how the host store holds evicted K/V: f32, bf16 (half the memory, rounded) or "
                  "int8 (about a quarter: one scale per token and KV head)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))->capture_default_str()->group(group);
  app->add_option("--attn-index-dtype", o.index_dtype,
                  "infllm, ltri: how the span/block index vectors are held (host and GPU): auto (f32 with "
                  "--attn-host-kv f32, else bf16), f32 or bf16 (half the memory, bf16 products summed in f32)")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}))->capture_default_str()->group(group);
  app->add_option("--attn-async-store", o.async_store,
                  "infllm, ltri: store evicted tokens on worker threads while the other layers compute: auto "
                  "(on with --device cuda, off on the CPU), on or off (same results)")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str()->group(group);
  app->add_option("--attn-block", o.block_size, "infllm: block size in tokens")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-block-repr", o.block_repr, "infllm: representative keys per block")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-span-min", o.span_min, "ltri: shortest span")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-span-max", o.span_max, "ltri: longest span")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-theta", o.theta, "ltri: triangle threshold (overrides the calibration file)")
      ->check(finite_number())->capture_default_str()->group(group);
  app->add_option("--attn-phi", o.phi, "ltri: NMS IoU limit")
      ->check(finite_number())->capture_default_str()->group(group);
  app->add_option("--attn-index", o.index, "ltri: index vectors per span: static or dynamic")
      ->check(CLI::IsMember({"static", "dynamic"}))->capture_default_str()->group(group);
  app->add_option("--attn-index-static", o.index_static, "ltri: vectors per span with --attn-index static")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-lambda", o.lambda, "ltri: dynamic index retained fraction min(1, lambda * r_a)")
      ->check(finite_number())->capture_default_str()->group(group);
  app->add_option("--attn-index-max", o.index_max, "ltri: most index vectors per span")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-query", o.retrieval_query,
                  "ltri: query that scores spans: max (best of the chunk's queries) or mean (the mean query)")
      ->check(CLI::IsMember({"max", "mean"}))->capture_default_str()->group(group);
  app->add_option("--attn-query-block", o.query_block,
                  "ltri: with --attn-query max, average queries in blocks of this many tokens first (1 = every query)")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-question-tokens", o.question_tokens,
                  "ltri: score the spans pinned for decode with the queries of the prompt's last N tokens (the "
                  "question; whole query blocks), 0 = every query of the last chunk")
      ->check(integer_at_least(0))->capture_default_str()->group(group);
  app->add_option("--attn-question-chunk", o.question_chunk,
                  "ltri: prefill the prompt's last --attn-question-tokens tokens as a chunk of their own, so the "
                  "first answer token sees spans retrieved for the question (true/false)")
      ->capture_default_str()->group(group);
  app->add_option("--attn-score-heads", o.score_heads,
                  "ltri: heads that score spans: retrieval (the layer's best retrieval head), retrieval-heads (the "
                  "mean of its retrieval heads) or mean (of all heads; layers without a retrieval head always)")
      ->check(CLI::IsMember({"retrieval", "retrieval-heads", "mean"}))->capture_default_str()->group(group);
  app->add_option("--attn-seg-heads", o.seg_heads,
                  "ltri: heads whose attention is cut into spans: retrieval (the layer's best retrieval head) or mean")
      ->check(CLI::IsMember({"retrieval", "mean"}))->capture_default_str()->group(group);
  app->add_option("--attn-voting", o.voting, "ltri: cross-layer voting (true/false)")
      ->capture_default_str()->group(group);
  app->add_option("--attn-persist", o.persist, "ltri: keep the question's spans through decode (true/false)")
      ->capture_default_str()->group(group);
  app->add_option("--attn-decode-retrieval", o.decode_retrieval,
                  "ltri: with --attn-persist, each decode step also retrieves spans for its own query, added to "
                  "the pinned ones (true/false; false: decode sees the pinned spans only, no per-step scoring or copies)")
      ->capture_default_str()->group(group);
  app->add_option("--attn-decode-band-batch", o.decode_band_batch,
                  "infllm, ltri: decode steps whose band (votes, segmentation rows) is computed in one go (1 = each step)")
      ->check(integer_at_least(1))->capture_default_str()->group(group);
  app->add_option("--attn-span-cache", o.span_cache_tokens, "ltri: span cache bound in tokens")
      ->check(integer_at_least(0))->capture_default_str()->group(group);
  app->add_option("--attn-heads-file", o.heads_file,
                  "ltri: retrieval heads file (default: <model dir>/ltri_heads.json)")->group(group);
  app->add_option("--attn-calibration", o.calibration_file,
                  "ltri: per-layer theta file (default: <model dir>/ltri_calibration.json)")->group(group);
}

}  // namespace ltri::cli
