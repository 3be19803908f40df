#include "kv/streaming_window.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

StreamingWindow::StreamingWindow(Backend& backend, int64_t n_layers, int64_t kv_row,
                                 int64_t n_init, int64_t max_window)
    : backend_(backend),
      kv_row_(kv_row),
      n_init_(n_init),
      max_window_(max_window),
      layers_(size_t(n_layers)) {}

StreamingWindow::~StreamingWindow() {
  for (Layer& L : layers_) {
    for (float* p : {L.init_k, L.init_v, L.win_k, L.win_v}) {
      if (p) backend_.free(p);
    }
  }
}

void StreamingWindow::settle_init(int64_t layer) {
  Layer& L = layers_[size_t(layer)];
  if (L.begin >= n_init_ || L.begin == L.end) return;
  const int64_t count = std::min(L.end, n_init_) - L.begin;
  if (!L.init_k) {
    L.init_k = backend_.alloc(size_t(n_init_ * kv_row_));
    L.init_v = backend_.alloc(size_t(n_init_ * kv_row_));
  }
  backend_.copy(L.init_k + L.init_count * kv_row_, L.win_k + L.offset * kv_row_, size_t(count * kv_row_));
  backend_.copy(L.init_v + L.init_count * kv_row_, L.win_v + L.offset * kv_row_, size_t(count * kv_row_));
  L.init_count += count;
  L.begin += count;
  L.offset += count;
}

void StreamingWindow::make_room(Layer& L, int64_t n) {
  const int64_t size = L.end - L.begin;
  if (size + n > max_window_) {
    fail("streaming window: ", size + n, " tokens exceed the planned maximum of ", max_window_);
  }
  if (L.offset + size + n <= L.capacity) return;
  if (L.offset >= size && size + n <= L.capacity) {
    // Move the window to the buffer's start; source and destination do not overlap.
    backend_.copy(L.win_k, L.win_k + L.offset * kv_row_, size_t(size * kv_row_));
    backend_.copy(L.win_v, L.win_v + L.offset * kv_row_, size_t(size * kv_row_));
    L.offset = 0;
    return;
  }
  // Grow geometrically up to twice the largest window (reached once per session).
  const int64_t capacity = std::min(2 * max_window_, std::max<int64_t>({2 * L.capacity, size + n, 256}));
  float* k = backend_.alloc(size_t(capacity * kv_row_));
  float* v = backend_.alloc(size_t(capacity * kv_row_));
  if (L.win_k) {
    backend_.copy(k, L.win_k + L.offset * kv_row_, size_t(size * kv_row_));
    backend_.copy(v, L.win_v + L.offset * kv_row_, size_t(size * kv_row_));
    backend_.free(L.win_k);
    backend_.free(L.win_v);
  }
  L.win_k = k;
  L.win_v = v;
  L.capacity = capacity;
  L.offset = 0;
}

void StreamingWindow::append(int64_t layer, const float* k, const float* v, int64_t n) {
  Layer& L = layers_[size_t(layer)];
  make_room(L, n);
  const int64_t row = L.offset + (L.end - L.begin);
  backend_.copy(L.win_k + row * kv_row_, k, size_t(n * kv_row_));
  backend_.copy(L.win_v + row * kv_row_, v, size_t(n * kv_row_));
  L.end += n;
}

void StreamingWindow::download(int64_t layer, int64_t first, int64_t count, float* host_k,
                               float* host_v) const {
  const int64_t row = window_row(layer, first, count);
  const Layer& L = layers_[size_t(layer)];
  backend_.download(host_k, L.win_k + row * kv_row_, size_t(count * kv_row_));
  backend_.download(host_v, L.win_v + row * kv_row_, size_t(count * kv_row_));
}

void StreamingWindow::download_async(int64_t layer, int64_t first, int64_t count, float* host_k,
                                     float* host_v) const {
  const int64_t row = window_row(layer, first, count);
  const Layer& L = layers_[size_t(layer)];
  backend_.download_async(host_k, L.win_k + row * kv_row_, size_t(count * kv_row_));
  backend_.download_async(host_v, L.win_v + row * kv_row_, size_t(count * kv_row_));
}

int64_t StreamingWindow::window_row(int64_t layer, int64_t first, int64_t count) const {
  const Layer& L = layers_[size_t(layer)];
  if (first < L.begin || first + count > L.end) {
    fail("streaming window: tokens [", first, ", ", first + count, ") are not in the window [",
         L.begin, ", ", L.end, ")");
  }
  return L.offset + (first - L.begin);
}

void StreamingWindow::drop_front(int64_t layer, int64_t count) {
  Layer& L = layers_[size_t(layer)];
  count = std::min(count, L.end - L.begin);
  L.begin += count;
  L.offset += count;
}

const float* StreamingWindow::k(int64_t layer, int64_t token) const {
  const Layer& L = layers_[size_t(layer)];
  return L.win_k + (L.offset + token - L.begin) * kv_row_;
}

const float* StreamingWindow::v(int64_t layer, int64_t token) const {
  const Layer& L = layers_[size_t(layer)];
  return L.win_v + (L.offset + token - L.begin) * kv_row_;
}

size_t StreamingWindow::bytes() const {
  size_t floats = 0;
  for (const Layer& L : layers_) {
    floats += size_t(2 * kv_row_ * (L.capacity + (L.init_k ? n_init_ : 0)));
  }
  return floats * sizeof(float);
}

void StreamingWindow::reset() {
  for (Layer& L : layers_) {
    L.init_count = 0;
    L.offset = 0;
    L.begin = 0;
    L.end = 0;
  }
}

}  // namespace ltri
