#pragma once
// The launcher of the attention band kernels (cuda_band.cu), called by
// CudaBackend::attention_band. Same rules as cuda_kernels.hpp: plain function over device
// pointers and POD arguments, enqueued on `stream`, launch checked, no synchronisation.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ltri::cuda {

// ltri::AttentionBandArgs (ops/attention_band_host.hpp) as the kernels read it, plus the RoPE
// table on the device.
struct BandArgs {
  const float* q = nullptr;     // (n, n_heads, head_dim), pre-RoPE, device
  const float* keys = nullptr;  // (n_keys, n_kv_heads, head_dim), pre-RoPE, device
  int64_t n = 0;
  int64_t first_query = 0;
  int64_t first_key = 0;  // n_keys = first_query + n - first_key >= 1
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t width = 0;
  int64_t seg_head = -1;  // a head index, or -1: the mean of heads
  bool want_seg = false;
  const float* cos = nullptr;  // (positions >= n_keys, head_dim / 2), device
  const float* sin = nullptr;
};

// Head dims the band kernels are compiled for.
bool band_supports_head_dim(int64_t head_dim);
// Device floats launch_attention_band needs: the output first (what the caller downloads),
// then the kernels' workspace.
size_t band_output_floats(const BandArgs& args);  // n_keys * n_kv_heads, + n * width with want_seg
size_t band_scratch_floats(const BandArgs& args);
// Writes scratch[0, band_output_floats): the chunk's votes (n_keys, n_kv_heads), summed over
// each KV head's query heads (not added to anything), then with want_seg the segmentation
// rows (n, width), as AttentionBandHost::compute defines them. Both halves below on one stream.
void launch_attention_band(const BandArgs& args, float* scratch, cudaStream_t stream);
// The first half: the only kernel that reads args.q, args.keys and the RoPE table (it rotates
// them into the scratch). Once it is done the caller may overwrite those; the second half,
// possibly on another stream ordered after this one, reads only the scratch.
void launch_band_rotate(const BandArgs& args, float* scratch, cudaStream_t stream);
void launch_band_from_rotated(const BandArgs& args, float* scratch, cudaStream_t stream);

}  // namespace ltri::cuda
