#pragma once
// The accelerator-side KV of a streaming policy, per layer: the init tokens (attention sinks,
// kept forever) and the local window of recent tokens, both pre-RoPE in backend memory.
//
// The window is a linear buffer: a chunk is appended after the window's last token, and tokens
// leave from the front. When the end of the buffer is reached the window is moved back to the
// start. The buffer holds twice the largest window, so that move never overlaps and happens
// once per (buffer - window) tokens appended: amortised one row copy per token, and the window
// and the chunk are always contiguous (one segment each in the attention plan).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ltri {

class Backend;

class StreamingWindow {
 public:
  // kv_row = n_kv_heads * head_dim floats per token; max_window = most tokens the window holds
  // right after a chunk is appended (n_local + the policy's eviction lag + the largest chunk).
  StreamingWindow(Backend& backend, int64_t n_layers, int64_t kv_row, int64_t n_init,
                  int64_t max_window);
  ~StreamingWindow();
  StreamingWindow(const StreamingWindow&) = delete;
  StreamingWindow& operator=(const StreamingWindow&) = delete;

  // Moves the layer's window tokens whose ids are below n_init into the init buffer (they
  // arrive through the window like every token, and become sinks once their chunk is done).
  void settle_init(int64_t layer);
  // Appends n tokens' K,V (n, n_kv_heads, head_dim), backend memory, after the window's end.
  void append(int64_t layer, const float* k, const float* v, int64_t n);
  // Copies window tokens [first, first + count) (token ids) to host (count, n_kv_heads, head_dim).
  void download(int64_t layer, int64_t first, int64_t count, float* host_k, float* host_v) const;
  // download without waiting (Backend::download_async): the rows are on the host once a
  // download_fence() taken after this call has passed; until then they must stay in the window.
  void download_async(int64_t layer, int64_t first, int64_t count, float* host_k, float* host_v) const;
  // The first `count` window tokens leave the window.
  void drop_front(int64_t layer, int64_t count);

  int64_t n_init() const { return n_init_; }
  int64_t init_count(int64_t layer) const { return layers_[size_t(layer)].init_count; }
  const float* init_k(int64_t layer) const { return layers_[size_t(layer)].init_k; }
  const float* init_v(int64_t layer) const { return layers_[size_t(layer)].init_v; }
  int64_t begin(int64_t layer) const { return layers_[size_t(layer)].begin; }  // first window token id
  int64_t end(int64_t layer) const { return layers_[size_t(layer)].end; }      // one past the last
  int64_t size(int64_t layer) const { return end(layer) - begin(layer); }
  // Backend pointers to the row of window token `token`.
  const float* k(int64_t layer, int64_t token) const;
  const float* v(int64_t layer, int64_t token) const;

  size_t bytes() const;  // backend bytes allocated
  void reset();          // forget all tokens (buffers are kept for reuse)

 private:
  struct Layer {
    float* init_k = nullptr;  // (n_init, n_kv_heads, head_dim), pre-RoPE
    float* init_v = nullptr;
    int64_t init_count = 0;
    float* win_k = nullptr;  // (capacity, n_kv_heads, head_dim), pre-RoPE
    float* win_v = nullptr;
    int64_t capacity = 0;    // tokens
    int64_t offset = 0;      // buffer row of token `begin`
    int64_t begin = 0;
    int64_t end = 0;
  };
  void make_room(Layer& L, int64_t n);
  // The buffer row of window token `first`, after checking tokens [first, first + count) are in the window.
  int64_t window_row(int64_t layer, int64_t first, int64_t count) const;

  Backend& backend_;
  int64_t kv_row_;
  int64_t n_init_;
  int64_t max_window_;
  std::vector<Layer> layers_;
};

}  // namespace ltri
