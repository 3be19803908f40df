#include "kernels/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "core/log.hpp"
#include "kernels/cuda/cuda_band_kernels.hpp"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"
#include "kernels/cuda/cuda_op_timer.hpp"
#include "kernels/cuda/cuda_score_kernels.hpp"
#include "kernels/cuda/cuda_select_kernels.hpp"
#include "kernels/cuda/host_pinning.hpp"
#include "kv/context_store.hpp"
#include "kv/unit_index_mirror.hpp"

namespace ltri {

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: "no driver" must not poison later calls
    return 0;
  }
  return count;
}

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

CudaBackend::CudaBackend(int device) : device_(device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    fail("--device cuda: no CUDA device found (", cudaGetErrorString(status), ")");
  }
  if (count == 0) fail("--device cuda: no CUDA device found (cudaGetDeviceCount reports 0 devices)");
  if (device < 0 || device >= count) fail("--device cuda: device ", device, " not found (", count, " CUDA devices)");
  LTRI_CUDA_CHECK(cudaSetDevice(device));
  LTRI_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
  // The compute stream at the highest priority, the asynchronous band's at the lowest: the
  // band's blocks then take the SMs the model's kernels leave idle (their tails, and the gaps
  // while the host chooses spans) rather than delaying them.
  int least_priority = 0, greatest_priority = 0;
  LTRI_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least_priority, &greatest_priority));
  LTRI_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamDefault, greatest_priority));
  LTRI_CUDA_CHECK(cudaStreamCreateWithPriority(&band_stream_, cudaStreamNonBlocking, least_priority));
  // The early attention pass between the two: the choice's kernels on the compute stream take
  // the SMs it leaves free first, and it takes those the band would otherwise fill.
  LTRI_CUDA_CHECK(cudaStreamCreateWithPriority(&early_stream_, cudaStreamNonBlocking,
                                               std::min(least_priority, greatest_priority + 1)));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&early_ready_, cudaEventDisableTiming));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&early_done_, cudaEventDisableTiming));
  const char* early = std::getenv("LTRI_ATTENTION_EARLY");
  early_enabled_ = !(early && std::strcmp(early, "0") == 0);
  LTRI_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&copy_after_, cudaEventDisableTiming));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&band_copied_, cudaEventDisableTiming));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&band_rotated_, cudaEventDisableTiming));
  LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&band_done_, cudaEventDisableTiming));
  // Device memory comes from the stream-ordered pool (cudaMallocAsync): a free is queued behind
  // the ops that may still read the memory instead of draining the stream, so buffers that grow
  // while the GPU works (the span index mirror, scratch) do not stall the host. The pool keeps
  // what is freed for the next allocation rather than handing it back at every synchronisation.
  LTRI_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device));
  uint64_t keep_all = UINT64_MAX;
  LTRI_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep_all));
  LTRI_CUDA_CHECK(cublasCreate(&cublas_));
  LTRI_CUDA_CHECK(cublasSetStream(cublas_, stream_));
  op_timer_ = std::make_unique<CudaOpTimer>(stream_, CudaOpTimer::enabled());
  allow_tf32(false);
}

CudaBackend::~CudaBackend() {
  // No throwing from here: errors at teardown have nobody left to report to.
  if (stream_) (void)cudaStreamSynchronize(stream_);
  if (band_stream_) (void)cudaStreamSynchronize(band_stream_);
  if (copy_stream_) (void)cudaStreamSynchronize(copy_stream_);
  if (early_stream_) (void)cudaStreamSynchronize(early_stream_);
  op_timer_.reset();  // its pending times join the profile; its events go before the stream
  for (float* p : {rope_cos_, rope_sin_, copy_scratch_, attention_scratch_, bf16_scratch_, band_scratch_, score_input_,
                   score_scratch_, select_scratch_, row_means_scratch_, bf16_upload_scratch_, int8_upload_scratch_, gather_scratch_,
                   early_tiles_, early_partials_, early_work_}) {
    if (p) (void)cudaFreeAsync(p, stream_);
  }
  if (stream_) (void)cudaStreamSynchronize(stream_);
  for (GatherStaging& s : gather_staging_) {
    if (s.host) (void)cudaFreeHost(s.host);
    if (s.uploaded) (void)cudaEventDestroy(s.uploaded);
  }
  if (pool_) (void)cudaMemPoolTrimTo(pool_, 0);  // the pool's cached memory goes back to the device
  if (cublas_) (void)cublasDestroy(cublas_);
  if (copy_after_) (void)cudaEventDestroy(copy_after_);
  if (band_copied_) (void)cudaEventDestroy(band_copied_);
  if (band_rotated_) (void)cudaEventDestroy(band_rotated_);
  if (band_done_) (void)cudaEventDestroy(band_done_);
  if (early_ready_) (void)cudaEventDestroy(early_ready_);
  if (early_done_) (void)cudaEventDestroy(early_done_);
  if (early_stream_) (void)cudaStreamDestroy(early_stream_);
  if (band_stream_) (void)cudaStreamDestroy(band_stream_);
  if (copy_stream_) (void)cudaStreamDestroy(copy_stream_);
  if (stream_) (void)cudaStreamDestroy(stream_);
}

void CudaBackend::allow_tf32(bool allow) {
  LTRI_CUDA_CHECK(cublasSetMathMode(cublas_, allow ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

void CudaBackend::synchronize() {
  LTRI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  LTRI_CUDA_CHECK(cudaStreamSynchronize(band_stream_));  // the asynchronous band's kernels
  LTRI_CUDA_CHECK(cudaStreamSynchronize(copy_stream_));  // download_async's copies too
  LTRI_CUDA_CHECK(cudaStreamSynchronize(early_stream_));  // an early attention pass not merged yet
}

void CudaBackend::wait_for_compute() { LTRI_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void CudaBackend::set_attention_precision(DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16) {
    fail("attention: the cuda backend computes in F32 or BF16, not ", dtype_name(dtype));
  }
  int major = 0;
  LTRI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_));
  // bf16 mma.sync needs sm_80; an older GPU keeps f32 attention.
  attention_precision_ = dtype == DType::BF16 && major >= 8 ? DType::BF16 : DType::F32;
  // Asked once here (it runs a kernel), not per call. LTRI_ATTENTION_KERNEL=mma keeps the
  // mma.sync kernel, for A/B runs.
  const char* kernel = std::getenv("LTRI_ATTENTION_KERNEL");
  const bool mma_asked = kernel != nullptr && std::string(kernel) == "mma";
  wgmma_attention_ = attention_precision_ == DType::BF16 && !mma_asked && cuda::attention_wgmma_available();
}

float* CudaBackend::alloc(size_t n_floats) {
  const size_t bytes = std::max<size_t>(1, n_floats) * sizeof(float);
  void* p = nullptr;
  cudaError_t status = cudaMallocAsync(&p, bytes, stream_);
  if (status == cudaErrorMemoryAllocation) {
    // The pool may hold freed blocks that together would fit: hand them back and try once more.
    (void)cudaGetLastError();
    LTRI_CUDA_CHECK(cudaStreamSynchronize(stream_));
    LTRI_CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));
    status = cudaMallocAsync(&p, bytes, stream_);
  }
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    fail("out of device memory allocating ", bytes >> 20, " MiB on CUDA device ", device_, " (",
         cudaGetErrorString(status), ")");
  }
  LTRI_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  allocations_.on_alloc(p, bytes);
  return static_cast<float*>(p);
}

void CudaBackend::free(float* p) {
  if (!p) return;
  // Ops still enqueued may read p: the free is queued behind them on the stream (no wait here).
  // free() runs in destructors, so it never throws.
  allocations_.on_free(p);
  (void)cudaFreeAsync(p, stream_);
}

void CudaBackend::upload(float* dst, const float* host_src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d");
  if (n == 0) return;
  LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  wait_for_compute();
  allocations_.on_upload(n * sizeof(float));  // the caller may reuse host_src as soon as this returns
}

void CudaBackend::download(float* host_dst, const float* src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "d2h");
  if (n == 0) return;
  LTRI_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  wait_for_compute();
  allocations_.on_download(n * sizeof(float));
}

void CudaBackend::download_async(float* host_dst, const float* src, size_t n) {
  if (n == 0) return;
  // The copy stream waits for what the compute stream has queued so far (src's values), then
  // copies while the compute stream runs on.
  LTRI_CUDA_CHECK(cudaEventRecord(copy_after_, stream_));
  LTRI_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, copy_after_, 0));
  LTRI_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, copy_stream_));
  allocations_.on_download(n * sizeof(float));
}

namespace {

class CudaFence final : public BackendFence {
 public:
  CudaFence(int device, cudaStream_t stream) : device_(device) {
    LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    LTRI_CUDA_CHECK(cudaEventRecord(event_, stream));
  }
  ~CudaFence() override { (void)cudaEventDestroy(event_); }
  CudaFence(const CudaFence&) = delete;
  CudaFence& operator=(const CudaFence&) = delete;
  void wait() override {
    LTRI_CUDA_CHECK(cudaSetDevice(device_));  // a worker thread's current device is its own
    LTRI_CUDA_CHECK(cudaEventSynchronize(event_));
  }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

}  // namespace

std::shared_ptr<BackendFence> CudaBackend::download_fence() { return std::make_shared<CudaFence>(device_, copy_stream_); }

void CudaBackend::upload_bytes(void* dst, const void* host_src, size_t bytes) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d");
  if (bytes == 0) return;
  LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  wait_for_compute();
  allocations_.on_upload(bytes);
}

float* CudaBackend::alloc_host(size_t n_floats) {
  const size_t bytes = std::max<size_t>(1, n_floats) * sizeof(float);
  // Called from the context store's background threads too: the CUDA runtime is thread-safe,
  // but a thread's current device is its own (0 until set), so name ours.
  LTRI_CUDA_CHECK(cudaSetDevice(device_));
  void* p = nullptr;
  cudaError_t status = cudaErrorMemoryAllocation;
  if (cuda::host_pin_by_register()) {
    size_t mapped = 0;
    if (float* registered = cuda::pin_registered(bytes, &mapped)) {
      note_device_readable(registered, mapped);
      const std::lock_guard<std::mutex> lock(pageable_host_mutex_);
      registered_host_[registered] = mapped;
      return registered;
    }
  } else {
    status = cudaHostAlloc(&p, bytes, cudaHostAllocPortable | cudaHostAllocMapped);
    if (status != cudaSuccess) {  // a device that cannot map host memory: page-locked only
      (void)cudaGetLastError();
      status = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
    }
    if (status == cudaSuccess) {
      note_device_readable(p, bytes);
      return static_cast<float*>(p);
    }
  }
  (void)cudaGetLastError();
  float* fallback = Backend::alloc_host(n_floats);
  const std::lock_guard<std::mutex> lock(pageable_host_mutex_);
  if (pageable_host_.empty()) {
    log_warn(std::string("cuda: cannot pin ") + std::to_string(bytes >> 20) + " MiB more host memory (" +
             cudaGetErrorString(status) + "); using pageable memory, uploads from it are slower");
  }
  pageable_host_.insert(fallback);
  return fallback;
}

void CudaBackend::note_device_readable(void* p, size_t bytes) {
  void* device = nullptr;
  if (cudaHostGetDevicePointer(&device, p, 0) != cudaSuccess || device == nullptr) {
    (void)cudaGetLastError();
    return;  // not mapped: its runs are staged as pageable ones are
  }
  const std::lock_guard<std::mutex> lock(pageable_host_mutex_);
  device_readable_host_[reinterpret_cast<uintptr_t>(p)] = {bytes, reinterpret_cast<uintptr_t>(device)};
}

const void* CudaBackend::device_view(const void* p, size_t bytes) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  const std::lock_guard<std::mutex> lock(pageable_host_mutex_);
  auto it = device_readable_host_.upper_bound(at);  // the first allocation after p
  if (it == device_readable_host_.begin()) return nullptr;
  --it;
  const auto& [size, device] = it->second;
  if (at + bytes > it->first + size) return nullptr;
  return reinterpret_cast<const void*>(device + (at - it->first));
}

void CudaBackend::free_host(float* p) {
  if (!p) return;
  {
    const std::lock_guard<std::mutex> lock(pageable_host_mutex_);
    device_readable_host_.erase(reinterpret_cast<uintptr_t>(p));
    if (pageable_host_.erase(p) > 0) {
      Backend::free_host(p);
      return;
    }
    if (const auto it = registered_host_.find(p); it != registered_host_.end()) {
      const size_t mapped = it->second;
      registered_host_.erase(it);
      (void)cudaSetDevice(device_);
      (void)cudaStreamSynchronize(stream_);  // an upload from p may still be in flight
      (void)cudaStreamSynchronize(copy_stream_);  // or a download into it
      cuda::unpin_registered(p, mapped);
      return;
    }
  }
  // An upload from p may still be in flight; cudaFreeHost waits for the device. Never throws.
  (void)cudaSetDevice(device_);
  (void)cudaStreamSynchronize(stream_);
  (void)cudaStreamSynchronize(copy_stream_);
  (void)cudaFreeHost(p);
}

void CudaBackend::upload_bf16(float* dst, const uint16_t* host_src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d_bf16");
  if (n == 0) return;
  float* staging_floats = scratch(bf16_upload_scratch_, bf16_upload_scratch_capacity_, (n + 1) / 2);
  uint16_t* staging = reinterpret_cast<uint16_t*>(staging_floats);  // two bf16 values per float
  upload_bytes(staging, host_src, n * sizeof(uint16_t));
  cuda::launch_bf16_to_f32(staging, dst, int64_t(n), stream_);
}

void CudaBackend::upload_stable(float* dst, const float* host_src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d_stable");
  if (n == 0) return;
  // No synchronisation: the source outlives the copy (Backend::upload_stable's contract); from
  // pinned memory the copy runs on the stream while the host goes on, from pageable memory CUDA
  // returns once it has staged the bytes.
  LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  allocations_.on_upload(n * sizeof(float));
}

void CudaBackend::upload_bf16_stable(float* dst, const uint16_t* host_src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d_bf16_stable");
  if (n == 0) return;
  // The staging buffer is reused by the next call only after this call's widening kernel has
  // read it (same stream); growing it frees the old one behind that kernel on the stream.
  float* staging_floats = scratch(bf16_upload_scratch_, bf16_upload_scratch_capacity_, (n + 1) / 2);
  uint16_t* staging = reinterpret_cast<uint16_t*>(staging_floats);
  LTRI_CUDA_CHECK(cudaMemcpyAsync(staging, host_src, n * sizeof(uint16_t), cudaMemcpyHostToDevice, stream_));
  allocations_.on_upload(n * sizeof(uint16_t));
  cuda::launch_bf16_to_f32(staging, dst, int64_t(n), stream_);
}

void CudaBackend::upload_bytes_stable(void* dst, const void* host_src, size_t bytes) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d_stable");
  if (bytes == 0) return;
  // No synchronisation, as upload_stable.
  LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  allocations_.on_upload(bytes);
}

void CudaBackend::gather_rows_stable(const std::vector<GatherRun>& runs, DType host_dtype, int64_t scale_width) {
  // f32 rows go straight from the page-locked store to the device, one copy per run: packing
  // them on the host first cost more than the calls (8B shape, 32K ltri prefill 8.19 s -> 10.24 s).
  if (host_dtype == DType::F32) return Backend::gather_rows_stable(runs, host_dtype, scale_width);
  const CudaOpTimer::Scope op(*op_timer_, "h2d_gather");
  if (runs.empty()) return;
  cuda::GatherSource source = cuda::GatherSource::BF16;
  if (host_dtype == DType::I8) source = cuda::GatherSource::I8;
  else if (host_dtype != DType::BF16) fail("gather_rows_stable: host rows in ", dtype_name(host_dtype), "; expected F32, BF16 or I8");
  if (host_dtype == DType::I8 && scale_width <= 0) fail("gather_rows_stable: int8 rows need a scale width, got ", scale_width);
  // Staging layout (host, then the same bytes on the device): the table of runs, then each host
  // run's values (and, for int8, its scales), every piece 16-byte aligned.
  const auto aligned = [](size_t bytes) { return (bytes + 15) / 16 * 16; };
  const auto on_16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const size_t value_bytes = dtype_size(host_dtype);
  size_t bytes = aligned(runs.size() * sizeof(cuda::GatherEntry));
  int64_t max_values = 0;
  // Runs from page-locked slabs the device maps are read there by the kernel (their values
  // neither packed nor copied here); the others, and every I8 run's scales, go through the
  // staging.
  gather_mapped_.assign(runs.size(), nullptr);
  const bool vectors_in_rows = host_dtype != DType::I8 || scale_width % 16 == 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const GatherRun& r = runs[i];
    max_values = std::max(max_values, r.n_values);
    if (r.device_src) continue;
    const size_t run_bytes = size_t(r.n_values) * value_bytes;
    if (vectors_in_rows && run_bytes % cuda::kGatherVectorBytes == 0 && on_16(r.host_src) && on_16(r.dst)) {
      gather_mapped_[i] = device_view(r.host_src, run_bytes);
    }
    if (!gather_mapped_[i]) bytes += aligned(run_bytes);
    if (host_dtype == DType::I8) bytes += aligned(size_t(r.n_values / scale_width) * sizeof(float));
  }
  GatherStaging& staging = gather_staging_[gather_turn_];
  gather_turn_ = 1 - gather_turn_;
  if (!staging.uploaded) LTRI_CUDA_CHECK(cudaEventCreateWithFlags(&staging.uploaded, cudaEventDisableTiming));
  LTRI_CUDA_CHECK(cudaEventSynchronize(staging.uploaded));  // its last upload has read it
  if (staging.capacity < bytes) {
    if (staging.host) LTRI_CUDA_CHECK(cudaFreeHost(staging.host));
    staging.host = nullptr;
    staging.capacity = std::max(bytes, 2 * staging.capacity);
    LTRI_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&staging.host), staging.capacity, cudaHostAllocDefault));
  }
  auto* table = reinterpret_cast<cuda::GatherEntry*>(staging.host);
  size_t at = aligned(runs.size() * sizeof(cuda::GatherEntry));
  for (size_t i = 0; i < runs.size(); ++i) {
    const GatherRun& r = runs[i];
    cuda::GatherEntry& e = table[i];
    e = {r.dst, r.device_src, r.n_values, 0, 0, gather_mapped_[i]};
    if (r.device_src) continue;
    if (!e.mapped_values) {
      e.values_offset = int64_t(at);
      at += aligned(size_t(r.n_values) * value_bytes);
    }
    if (host_dtype == DType::I8) {
      e.scales_offset = int64_t(at);
      at += aligned(size_t(r.n_values / scale_width) * sizeof(float));
    }
  }
  // The copies into the staging on a few threads: a layer's retrieved rows are a few MB, which
  // one thread packed at memcpy speed while the GPU waited for them.
  const int64_t n_runs = int64_t(runs.size());
#pragma omp parallel for schedule(dynamic, 16) num_threads(4) if (bytes >= (size_t(1) << 20))
  for (int64_t i = 0; i < n_runs; ++i) {
    const GatherRun& r = runs[size_t(i)];
    if (r.device_src) continue;
    const cuda::GatherEntry& e = table[i];
    if (!e.mapped_values) std::memcpy(staging.host + e.values_offset, r.host_src, size_t(r.n_values) * value_bytes);
    if (host_dtype == DType::I8) {
      std::memcpy(staging.host + e.scales_offset, r.host_scales, size_t(r.n_values / scale_width) * sizeof(float));
    }
  }
  auto* device = reinterpret_cast<unsigned char*>(scratch(gather_scratch_, gather_scratch_capacity_, (bytes + 3) / 4));
  LTRI_CUDA_CHECK(cudaMemcpyAsync(device, staging.host, bytes, cudaMemcpyHostToDevice, stream_));
  LTRI_CUDA_CHECK(cudaEventRecord(staging.uploaded, stream_));
  // Bytes the kernel reads in place cross the link as well: counted as uploaded.
  size_t in_place_bytes = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!gather_mapped_[i]) continue;
    in_place_bytes += size_t(runs[i].n_values) * value_bytes;
    ++gather_runs_in_place_;
  }
  allocations_.on_upload(bytes + in_place_bytes);
  cuda::launch_gather_rows(device, reinterpret_cast<const cuda::GatherEntry*>(device), int64_t(runs.size()), max_values,
                           source, scale_width, stream_);
}

void CudaBackend::upload_int8_stable(float* dst, const int8_t* values, const float* scales, size_t n_rows,
                                     size_t width) {
  const CudaOpTimer::Scope op(*op_timer_, "h2d_int8_stable");
  if (n_rows == 0 || width == 0) return;
  // Staging: n_rows f32 scales, then n_rows * width int8 values (four per float). Reused by the
  // next call only after this call's kernel has read it (same stream), as upload_bf16_stable's.
  const size_t n = n_rows * width;
  float* staging = scratch(int8_upload_scratch_, int8_upload_scratch_capacity_, n_rows + (n + 3) / 4);
  int8_t* staged_values = reinterpret_cast<int8_t*>(staging + n_rows);
  LTRI_CUDA_CHECK(cudaMemcpyAsync(staging, scales, n_rows * sizeof(float), cudaMemcpyHostToDevice, stream_));
  LTRI_CUDA_CHECK(cudaMemcpyAsync(staged_values, values, n, cudaMemcpyHostToDevice, stream_));
  allocations_.on_upload(n_rows * sizeof(float) + n);
  cuda::launch_int8_dequantize(staged_values, staging, int64_t(n_rows), int64_t(width), dst, stream_);
}

std::optional<size_t> CudaBackend::device_free_bytes() const {
  size_t free_bytes = 0, total_bytes = 0;
  LTRI_CUDA_CHECK(cudaSetDevice(device_));
  LTRI_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  // The pool keeps what was freed (alloc() hands it back when an allocation fails): reserved
  // but unused memory counts as free.
  uint64_t reserved = 0, used = 0;  // the attributes are 64-bit counts
  LTRI_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
  LTRI_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used));
  return free_bytes + size_t(reserved > used ? reserved - used : 0);
}

float* CudaBackend::scratch(float*& buffer, size_t& capacity, size_t n) {
  if (n > capacity) {
    if (buffer) free(buffer);
    capacity = std::max(n, 2 * capacity);
    buffer = alloc(capacity);
  }
  return buffer;
}

void CudaBackend::copy(float* dst, const float* src, size_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "d2d");
  if (n == 0 || dst == src) return;
  const size_t bytes = n * sizeof(float);
  const bool overlap = dst < src + n && src < dst + n;
  if (!overlap) {
    LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  // cudaMemcpy on overlapping ranges is undefined: go through scratch (both copies are ordered
  // on the stream).
  float* tmp = scratch(copy_scratch_, copy_scratch_capacity_, n);
  LTRI_CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  LTRI_CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::embed(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "embed");
  cuda::launch_embed(table, ids, n, dim, out, stream_);
}

void CudaBackend::rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "rmsnorm");
  cuda::launch_rmsnorm(x, weight, n, dim, eps, out, stream_);
}

void CudaBackend::matmul(const float* x, const float* w, int64_t n, int64_t k, int64_t m, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "matmul_f32");
  if (n <= 0 || m <= 0) return;
  // Row-major out (n, m) = x (n, k) . w^T is, read column-major, out^T (m, n) = w^T^T . x^T:
  // one SGEMM with w transposed, x as is, leading dimensions k, k, m.
  const float alpha = 1.0f, beta = 0.0f;
  LTRI_CUDA_CHECK(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(m), int(n), int(k), &alpha, w, int(k), x,
                              int(k), &beta, out, int(m)));
}

void CudaBackend::matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, n == 1 ? "gemv" : "gemm");
  if (w.dtype == DType::F32) return matmul(x, static_cast<const float*>(w.data), n, k, m, out);
  if (w.dtype != DType::BF16) fail("matmul: the cuda backend has no ", dtype_name(w.dtype), " weights");
  if (n <= 0 || m <= 0) return;
  // One row (decode): rounding and products in one bandwidth-bound kernel, no GEMM launch.
  if (n == 1) return cuda::launch_gemv_bf16(static_cast<const uint16_t*>(w.data), x, k, m, out, stream_);
  // x rounded to bf16 so both GEMM inputs are bf16 (cuBLAS has no bf16 x f32 GEMM); the sums run
  // in f32.
  uint16_t* x_bf16 = activation_bf16_scratch(n, k);
  cuda::launch_f32_to_bf16(x, x_bf16, n * k, stream_);
  gemm_bf16(x_bf16, w, n, k, m, out);
}

uint16_t* CudaBackend::activation_bf16_scratch(int64_t n, int64_t k) {
  const size_t elements = size_t(n) * size_t(k);
  return reinterpret_cast<uint16_t*>(scratch(bf16_scratch_, bf16_scratch_capacity_, (elements + 1) / 2));
}

void CudaBackend::gemm_bf16(const uint16_t* x_bf16, WeightRef w, int64_t n, int64_t k, int64_t m, void* out,
                            bool bf16_out) {
  // Same column-major reading as matmul: out^T (m, n) = w (m, k) . x^T (k, n).
  const float alpha = 1.0f, beta = 0.0f;
  LTRI_CUDA_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(m), int(n), int(k), &alpha, w.data, CUDA_R_16BF,
                               int(k), x_bf16, CUDA_R_16BF, int(k), &beta, out, bf16_out ? CUDA_R_16BF : CUDA_R_32F,
                               int(m), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

bool CudaBackend::bf16_mlp(const MlpWeights& w, int64_t n) {
  return n > 1 && w.gate_up.data && w.gate_up.dtype == DType::BF16 && w.down.dtype == DType::BF16;
}

void CudaBackend::mlp(const float* x, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn, float* scratch,
                      float* out) {
  if (!bf16_mlp(w, n)) return Backend::mlp(x, w, n, hidden, ffn, scratch, out);
  uint16_t* x_bf16 = activation_bf16_scratch(n, hidden);
  {
    const CudaOpTimer::Scope op(*op_timer_, "gemm");
    cuda::launch_f32_to_bf16(x, x_bf16, n * hidden, stream_);
  }
  mlp_from_bf16(x_bf16, w, n, hidden, ffn, scratch, out);
}

void CudaBackend::mlp_from_bf16(const uint16_t* x_bf16, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn,
                                float* scratch, float* out) {
  // scratch (n * 2 * ffn floats) holds [gate | up] rows in bf16 in its first half, the
  // activation (n, ffn) in bf16 in its second: half the bytes of f32 gate and up written by the
  // GEMM and read back by the activation, and one GEMM of 2 * ffn rows instead of two.
  uint16_t* gate_up = reinterpret_cast<uint16_t*>(scratch);
  uint16_t* act = reinterpret_cast<uint16_t*>(scratch + n * ffn);
  {
    const CudaOpTimer::Scope op(*op_timer_, "gemm");
    gemm_bf16(x_bf16, w.gate_up, n, hidden, 2 * ffn, gate_up, true);
  }
  {
    const CudaOpTimer::Scope op(*op_timer_, "swiglu");
    cuda::launch_swiglu_rows_bf16(gate_up, n, ffn, act, stream_);
  }
  const CudaOpTimer::Scope op(*op_timer_, "gemm");
  gemm_bf16(act, w.down, n, ffn, hidden, out);
}

const uint16_t* CudaBackend::norm_to_bf16(const ResidualNorm& norm, int64_t n, int64_t dim) {
  const CudaOpTimer::Scope op(*op_timer_, norm.add ? "add_rmsnorm" : "rmsnorm");
  uint16_t* x_bf16 = activation_bf16_scratch(n, dim);
  if (norm.add) {
    cuda::launch_add_rmsnorm_bf16(norm.x, norm.add, norm.weight, n, dim, norm.eps, x_bf16, stream_);
  } else {
    cuda::launch_rmsnorm_bf16(norm.x, norm.weight, n, dim, norm.eps, x_bf16, stream_);
  }
  return x_bf16;
}

void CudaBackend::norm_matmul_weights(const ResidualNorm& norm, int64_t n, int64_t dim,
                                      std::span<const Projection> projections) {
  const bool all_bf16 = std::all_of(projections.begin(), projections.end(),
                                    [](const Projection& p) { return p.w.dtype == DType::BF16; });
  if (n <= 1 || !all_bf16) return Backend::norm_matmul_weights(norm, n, dim, projections);
  const uint16_t* x_bf16 = norm_to_bf16(norm, n, dim);
  const CudaOpTimer::Scope op(*op_timer_, "gemm");
  for (const Projection& p : projections) {
    if (p.m > 0) gemm_bf16(x_bf16, p.w, n, dim, p.m, p.out);
  }
}

void CudaBackend::norm_mlp(const ResidualNorm& norm, int64_t n, int64_t dim, const MlpWeights& w, int64_t ffn,
                           float* scratch, float* out) {
  if (!bf16_mlp(w, n)) return Backend::norm_mlp(norm, n, dim, w, ffn, scratch, out);
  mlp_from_bf16(norm_to_bf16(norm, n, dim), w, n, dim, ffn, scratch, out);
}

void CudaBackend::matmul_weights(const float* x, int64_t n, int64_t k, std::span<const Projection> projections) {
  const bool all_bf16 = std::all_of(projections.begin(), projections.end(),
                                    [](const Projection& p) { return p.w.dtype == DType::BF16; });
  // One row goes to the GEMV, which rounds x itself; f32 weights take no rounding.
  if (n <= 1 || !all_bf16) return Backend::matmul_weights(x, n, k, projections);
  const CudaOpTimer::Scope op(*op_timer_, "gemm");
  uint16_t* x_bf16 = activation_bf16_scratch(n, k);
  cuda::launch_f32_to_bf16(x, x_bf16, n * k, stream_);  // once for every projection
  for (const Projection& p : projections) {
    if (p.m > 0) gemm_bf16(x_bf16, p.w, n, k, p.m, p.out);
  }
}

void CudaBackend::swiglu_matmul_weight(float* gate, const float* up, WeightRef w, int64_t n, int64_t k, int64_t m,
                                       float* out) {
  if (n <= 1 || w.dtype != DType::BF16) return Backend::swiglu_matmul_weight(gate, up, w, n, k, m, out);
  uint16_t* x_bf16 = activation_bf16_scratch(n, k);
  {
    const CudaOpTimer::Scope op(*op_timer_, "swiglu");
    cuda::launch_swiglu_to_bf16(gate, up, x_bf16, n * k, stream_);
  }
  const CudaOpTimer::Scope op(*op_timer_, "gemm");
  if (m > 0) gemm_bf16(x_bf16, w, n, k, m, out);
}

void CudaBackend::embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "embed");
  if (table.dtype == DType::F32) return embed(static_cast<const float*>(table.data), ids, n, dim, out);
  if (table.dtype != DType::BF16) fail("embed: the cuda backend has no ", dtype_name(table.dtype), " weights");
  cuda::launch_embed_bf16(static_cast<const uint16_t*>(table.data), ids, n, dim, out, stream_);
}

void CudaBackend::add_bias(float* x, const float* bias, int64_t n, int64_t m) {
  const CudaOpTimer::Scope op(*op_timer_, "add_bias");
  cuda::launch_add_bias(x, bias, n, m, stream_);
}

void CudaBackend::add(float* x, const float* y, int64_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "add");
  cuda::launch_add(x, y, n, stream_);
}

void CudaBackend::add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                              float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "add_rmsnorm");
  if (out == x) fail("add_rmsnorm: out must not alias x (the residual stream it updates)");
  cuda::launch_add_rmsnorm(x, h, weight, n, dim, eps, out, stream_);
}

void CudaBackend::swiglu(float* gate, const float* up, int64_t n) {
  const CudaOpTimer::Scope op(*op_timer_, "swiglu");
  cuda::launch_swiglu(gate, up, n, stream_);
}

void CudaBackend::sync_rope_table(const RopeTable& table) {
  const std::vector<double>& inv_freq = table.inv_freq();
  if (table.size() <= rope_positions_ && inv_freq == rope_inv_freq_) return;
  const size_t floats = size_t(table.size()) * size_t(table.head_dim() / 2);
  if (floats > rope_capacity_) {
    // The frees are ordered on stream_: after an early attention pass that still reads the rows.
    LTRI_CUDA_CHECK(cudaStreamWaitEvent(stream_, early_done_, 0));
    if (rope_cos_) free(rope_cos_);
    if (rope_sin_) free(rope_sin_);
    rope_cos_ = rope_sin_ = nullptr;
    rope_capacity_ = 0;
    rope_cos_ = alloc(floats);
    rope_sin_ = alloc(floats);
    rope_capacity_ = floats;
  }
  synchronize();  // kernels enqueued earlier may still read the old rows
  if (floats > 0) {
    upload(rope_cos_, table.cos(0), floats);
    upload(rope_sin_, table.sin(0), floats);
  }
  rope_positions_ = table.size();
  rope_inv_freq_ = inv_freq;
}

void CudaBackend::rope(float* x, int64_t n, int64_t heads, int64_t first_position, const RopeTable& table) {
  const CudaOpTimer::Scope op(*op_timer_, "rope");
  if (n <= 0) return;
  if (first_position < 0 || first_position + n > table.size()) {
    fail("rope: positions [", first_position, ", ", first_position + n, ") beyond the RoPE table (", table.size(), ")");
  }
  sync_rope_table(table);
  cuda::launch_rope(x, n, heads, table.head_dim(), first_position, rope_cos_, rope_sin_, stream_);
}

void CudaBackend::make_attention_args(const char* op, const AttentionCall& call, const AttentionPlan& plan,
                                      const RopeTable& table, bool not_early, bool allow_empty, float* out,
                                      cuda::AttentionArgs& args) {
  const int64_t n = call.n, n_heads = call.n_heads, n_kv_heads = call.n_kv_heads, head_dim = call.head_dim;
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0) {
    fail(op, ": n_heads ", n_heads, " is not a multiple of n_kv_heads ", n_kv_heads);
  }
  if (!cuda::attention_supports_head_dim(head_dim)) {
    fail(op, ": head_dim ", head_dim, " is not supported by the CUDA backend (64 or 128)");
  }
  if (head_dim != table.head_dim()) fail(op, ": head_dim ", head_dim, " but the RoPE table has ", table.head_dim());
  if (plan.segments.size() > size_t(cuda::kMaxAttentionSegments)) {
    fail(op, ": ", plan.segments.size(), " segments in the plan, the CUDA kernel takes at most ",
         cuda::kMaxAttentionSegments);
  }
  args = cuda::AttentionArgs{};
  args.q = call.q;
  args.out = out;
  args.n = n;
  args.n_heads = n_heads;
  args.n_kv_heads = n_kv_heads;
  args.head_dim = head_dim;
  args.query_first_position = plan.query_first_position;
  int64_t visible = 0;
  int64_t max_position = plan.query_first_position + n - 1;
  int64_t min_position = plan.query_first_position;
  for (const KvSegment& s : plan.segments) {
    if (not_early && s.early) continue;
    cuda::AttentionSegment& d = args.segments[args.n_segments++];
    d.k = s.k;
    d.v = s.v;
    d.n = s.n;
    d.first_position = s.first_position;
    d.position_stride = s.position_stride;
    d.query_position = s.query_position;
    d.causal = s.causal ? 1 : 0;
    visible += s.n;
    if (s.n > 0) {
      const int64_t last = s.first_position + (s.n - 1) * s.position_stride;
      max_position = std::max({max_position, s.first_position, last});
      min_position = std::min({min_position, s.first_position, last});
    }
    max_position = std::max(max_position, s.query_position);
  }
  if (visible == 0 && !allow_empty) fail(op, ": no visible keys");
  if (min_position < 0) fail(op, ": negative position ", min_position, " in the plan");
  if (max_position >= table.size()) {
    fail(op, ": position ", max_position, " beyond the RoPE table (", table.size(), ")");
  }
  sync_rope_table(table);
  args.cos = rope_cos_;
  args.sin = rope_sin_;
}

bool CudaBackend::has_attention_early(int64_t n) const {
  return early_enabled_ && wgmma_attention_ && n >= kMmaMinQueries;
}

void CudaBackend::attention_early(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                  const AttentionPlan& part, const RopeTable& table) {
  const CudaOpTimer::Scope op(*op_timer_, "attention_early");
  early_.pending = false;
  if (n <= 0) return;
  cuda::AttentionArgs args;  // args.out stays null: the pass writes partials only
  make_attention_args("attention_early", {q, n, n_heads, n_kv_heads, head_dim}, part, table, false, false, nullptr, args);
  early_ = EarlyPass{q, n, part.segments.size(), true, false};
  if (!(wgmma_attention_ && n >= kMmaMinQueries && cuda::attention_wgmma_supports(args))) return;  // one pass later
  // A pass that no attention() merged (an error in between) may still run: buffers are
  // reallocated on stream_ only after it.
  LTRI_CUDA_CHECK(cudaStreamWaitEvent(stream_, early_done_, 0));
  const int64_t rows = n * n_heads;
  float* tiles = scratch(early_tiles_, early_tiles_capacity_, cuda::attention_wgmma_tiles_floats(args));
  float* partials = scratch(early_partials_, early_partials_capacity_, size_t(2 * rows * (head_dim + 2)));
  if (!early_work_) early_work_ = alloc(1);
  const int slots = sm_count_ * cuda::attention_wgmma_resident_blocks(head_dim);
  const int blocks = std::max(1, slots - slots * kEarlyFreeEighths / 8);
  // After every op queued so far (the chunk's projections, the window's append, new buffers).
  LTRI_CUDA_CHECK(cudaEventRecord(early_ready_, stream_));
  LTRI_CUDA_CHECK(cudaStreamWaitEvent(early_stream_, early_ready_, 0));
  cuda::launch_attention_wgmma_part(args, tiles, partials, partials + 2 * rows * head_dim, 0,
                                    reinterpret_cast<int*>(early_work_), blocks, early_stream_);
  LTRI_CUDA_CHECK(cudaEventRecord(early_done_, early_stream_));
  early_.on_gpu = true;
}

void CudaBackend::attention_after_early(const AttentionCall& call, const AttentionPlan& plan, const RopeTable& table,
                                        float* out) {
  cuda::AttentionArgs args;
  make_attention_args("attention", call, plan, table, true, true, out, args);
  const int64_t rows = call.n * call.n_heads, head_dim = call.head_dim;
  float* partial_o = early_partials_;
  float* partial_ml = early_partials_ + 2 * rows * head_dim;
  int parts = 1;
  if (args.n_segments > 0) {
    if (!cuda::attention_wgmma_supports(args)) fail("attention: the retrieved part's buffers are not 16-byte aligned");
    float* tiles = scratch(attention_scratch_, attention_scratch_capacity_, cuda::attention_wgmma_tiles_floats(args));
    cuda::launch_attention_wgmma_part(args, tiles, partial_o, partial_ml, 1, nullptr, 0, stream_);
    parts = 2;
  }
  LTRI_CUDA_CHECK(cudaStreamWaitEvent(stream_, early_done_, 0));
  cuda::launch_attention_merge(partial_o, partial_ml, parts, rows, head_dim, true, out, stream_);
}

void CudaBackend::attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                            const AttentionPlan& plan, const RopeTable& table, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "attention");
  if (n <= 0) return;
  const AttentionCall call{q, n, n_heads, n_kv_heads, head_dim};
  const size_t early = size_t(std::count_if(plan.segments.begin(), plan.segments.end(),
                                            [](const KvSegment& s) { return s.early; }));
  if (early > 0) {
    if (!early_.pending || early_.q != q || early_.n != n || early_.segments != early) {
      fail("attention: the plan's ", early, " early segments do not match the last attention_early call (",
           early_.pending ? early_.segments : 0, " segments)");
    }
    early_.pending = false;
    if (early_.on_gpu) {
      attention_after_early(call, plan, table, out);
      return;
    }
    // else the early segments are attended below with the others, in one pass
  }
  early_.pending = false;  // an early pass no plan claimed (an error in between) is dropped
  cuda::AttentionArgs args;
  make_attention_args("attention", call, plan, table, false, false, out, args);
  // Chunks of queries on a model with bf16 weights go to tensor cores; a decode step to the
  // one-token kernel; short chunks (too few rows to fill a 128-row block) to the f32 kernel.
  if (wgmma_attention_ && n >= kMmaMinQueries && cuda::attention_wgmma_supports(args)) {
    const int splits = cuda::attention_wgmma_splits(args, sm_count_);
    const size_t workspace_floats = cuda::attention_wgmma_scratch_floats(args, splits);
    float* workspace = scratch(attention_scratch_, attention_scratch_capacity_, workspace_floats);
    cuda::launch_attention_wgmma(args, splits, workspace, stream_);
    return;
  }
  if (attention_precision_ == DType::BF16 && n >= kMmaMinQueries && cuda::attention_mma_supports(args)) {
    const int splits = cuda::attention_mma_splits(args, sm_count_);
    // The bf16 keys and values of the call, then the partial softmaxes: never empty.
    const size_t workspace_floats = cuda::attention_mma_scratch_floats(args, splits);
    float* workspace = scratch(attention_scratch_, attention_scratch_capacity_, workspace_floats);
    cuda::launch_attention_mma(args, splits, workspace, stream_);
    return;
  }
  if (cuda::attention_decode_supports(args)) {  // a decode step: one query token
    const int splits = cuda::attention_decode_splits(args, sm_count_);
    const size_t scratch_floats = cuda::attention_decode_scratch_floats(args, splits);
    float* partials = scratch_floats > 0 ? scratch(attention_scratch_, attention_scratch_capacity_, scratch_floats) : nullptr;
    cuda::launch_attention_decode(args, splits, partials, stream_);
    return;
  }
  const int splits = cuda::attention_splits(args, sm_count_);
  const size_t scratch_floats = cuda::attention_scratch_floats(args, splits);
  float* partials = scratch_floats > 0 ? scratch(attention_scratch_, attention_scratch_capacity_, scratch_floats) : nullptr;
  cuda::launch_attention(args, splits, partials, stream_);
}

float* CudaBackend::queue_band(const AttentionBandArgs& args, const RopeTable& table, bool want_seg, bool side_stream,
                               size_t* out_floats) {
  check_attention_band_args(args, "attention_band");
  const int64_t n_keys = args.n_keys();
  if (args.n <= 0 || n_keys <= 0) return nullptr;  // only sinks so far: nothing local to attend to
  if (!cuda::band_supports_head_dim(args.head_dim)) {
    fail("attention_band: head_dim ", args.head_dim, " is not supported by the CUDA backend (64 or 128)");
  }
  if (args.head_dim != table.head_dim()) {
    fail("attention_band: head_dim ", args.head_dim, " but the RoPE table has ", table.head_dim());
  }
  if (n_keys > table.size()) fail("attention_band: ", n_keys, " key positions beyond the RoPE table (", table.size(), ")");
  sync_rope_table(table);
  cuda::BandArgs band;
  band.q = args.q;
  band.keys = args.keys;
  band.n = args.n;
  band.first_query = args.first_query;
  band.first_key = args.first_key;
  band.n_heads = args.n_heads;
  band.n_kv_heads = args.n_kv_heads;
  band.head_dim = args.head_dim;
  band.width = args.width;
  band.seg_head = args.seg_head;
  band.want_seg = want_seg;
  band.cos = rope_cos_;
  band.sin = rope_sin_;
  // The last asynchronous band may still be computed in the scratch or copied out of it; its
  // copy comes after its kernels, so waiting for the copy covers both (and orders the scratch's
  // reallocation, a stream-ordered free on this stream, after them).
  LTRI_CUDA_CHECK(cudaStreamWaitEvent(stream_, band_copied_, 0));
  float* device = scratch(band_scratch_, band_scratch_capacity_, cuda::band_scratch_floats(band));
  // The rotation reads the queries, the window's keys and the RoPE table: on the compute stream,
  // so whatever overwrites them next (the next layer's projections, the next append) comes after.
  cuda::launch_band_rotate(band, device, stream_);
  if (side_stream) {
    LTRI_CUDA_CHECK(cudaEventRecord(band_rotated_, stream_));
    LTRI_CUDA_CHECK(cudaStreamWaitEvent(band_stream_, band_rotated_, 0));
    cuda::launch_band_from_rotated(band, device, band_stream_);
    LTRI_CUDA_CHECK(cudaEventRecord(band_done_, band_stream_));
  } else {
    cuda::launch_band_from_rotated(band, device, stream_);
  }
  *out_floats = cuda::band_output_floats(band);
  return device;
}

void CudaBackend::attention_band(const AttentionBandArgs& args, const RopeTable& table, float* votes, float* seg) {
  const CudaOpTimer::Scope op(*op_timer_, "band");
  size_t out_floats = 0;
  const float* device = queue_band(args, table, seg != nullptr, false, &out_floats);
  if (device == nullptr) {
    if (seg) std::fill(seg, seg + std::max<int64_t>(args.n, 0) * args.width, 0.0f);
    return;
  }
  // One download of [votes (n_keys, n_kv_heads) | seg (n, width)]; the chunk's votes are added
  // on the host, where the policy keeps every window token's running sum.
  const size_t vote_floats = size_t(args.n_keys() * args.n_kv_heads);
  if (band_host_.size() < out_floats) band_host_.resize(out_floats);
  download(band_host_.data(), device, out_floats);
  for (size_t k = 0; k < vote_floats; ++k) votes[k] += band_host_[k];
  if (seg) std::copy(band_host_.begin() + ptrdiff_t(vote_floats), band_host_.begin() + ptrdiff_t(out_floats), seg);
}

std::shared_ptr<BackendFence> CudaBackend::attention_band_async(const AttentionBandArgs& args, const RopeTable& table,
                                                                float* out, bool want_seg) {
  const CudaOpTimer::Scope op(*op_timer_, "band");
  size_t out_floats = 0;
  // Under LTRI_PROFILE=gpu the whole band stays on the compute stream, where the op timer's
  // events can see it.
  const bool side_stream = !op_timer_->on();
  const float* device = queue_band(args, table, want_seg, side_stream, &out_floats);
  if (device == nullptr) {
    // No votes (no local keys); seg rows of zeros, as attention_band writes.
    if (want_seg) std::fill(out + std::max<int64_t>(args.n_keys(), 0) * args.n_kv_heads,
                            out + std::max<int64_t>(args.n_keys(), 0) * args.n_kv_heads + std::max<int64_t>(args.n, 0) * args.width,
                            0.0f);
    return download_fence();
  }
  if (side_stream) {
    // The copy waits for the band's own kernels only, not for the compute stream's later work.
    LTRI_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, band_done_, 0));
    LTRI_CUDA_CHECK(cudaMemcpyAsync(out, device, out_floats * sizeof(float), cudaMemcpyDeviceToHost, copy_stream_));
    allocations_.on_download(out_floats * sizeof(float));
  } else {
    download_async(out, device, out_floats);
  }
  LTRI_CUDA_CHECK(cudaEventRecord(band_copied_, copy_stream_));
  return download_fence();
}

void CudaBackend::score_units(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                              bool /*mean_query*/, const std::vector<float>& head_weights, std::vector<float>& scores) {
  const CudaOpTimer::Scope op(*op_timer_, "score");
  scores.assign(store.units().size(), 0.0f);
  const float* device = score_on_device(store, mirror, q, n_q, head_weights, nullptr, nullptr);
  if (device) download(scores.data(), device, scores.size());
}

void CudaBackend::score_units_device(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                                     int64_t position, const RopeTable& table, const std::vector<float>& head_weights,
                                     float* scores) {
  const CudaOpTimer::Scope op(*op_timer_, "score");
  if (position < 0 || position >= table.size()) {
    fail("score_units_device: position ", position, " is outside the RoPE table (", table.size(), " positions)");
  }
  const DeviceQueries rotate{position, &table};
  if (!score_on_device(store, mirror, q, n_q, head_weights, scores, &rotate)) {
    // Nothing to score (no vectors, no active head): every unit scores 0, as score_units says,
    // and the mirror still follows the store's units (the choice reads their token ranges).
    mirror.sync(*this, store, {});
    fill_zero(scores, store.units().size());
  }
}

void CudaBackend::select_by_budget_device(const UnitIndexMirror& mirror, const float* rank, const float* tie,
                                          bool tie_is_last_rank, int64_t budget, int64_t shortest, int32_t* picked) {
  const CudaOpTimer::Scope op(*op_timer_, "select");
  if (budget < 0 || shortest < 1) fail("select_by_budget_device: budget ", budget, ", shortest unit ", shortest);
  if (tie_is_last_rank && (tie == nullptr || tie != last_select_.rank || last_select_.had_tie ||
                           last_select_.mirror != &mirror || last_select_.n_units != mirror.n_units())) {
    fail("select_by_budget_device: the tie is not the rank of the previous choice over these ", mirror.n_units(),
         " units");
  }
  cuda::SelectArgs args;
  args.rank = rank;
  args.tie = tie;
  args.unit_tokens = mirror.unit_tokens();
  args.n_units = mirror.n_units();
  args.budget = budget;
  args.shortest = shortest;
  args.picked = picked;
  args.tie_in_scratch_order = tie_is_last_rank;
  const size_t bytes = cuda::select_scratch_bytes(args.n_units);
  float* work = scratch(select_scratch_, select_scratch_capacity_, (bytes + sizeof(float) - 1) / sizeof(float));
  cuda::launch_select_by_budget(args, work, bytes, stream_);
  last_select_ = LastSelect{&mirror, rank, args.n_units, tie != nullptr};
}

void CudaBackend::unit_votes_device(const UnitIndexMirror& mirror, const float* token_votes, int64_t n_votes,
                                    int64_t first_token, const int32_t* top, int64_t top_capacity, float weight,
                                    float* rank) {
  const CudaOpTimer::Scope op(*op_timer_, "select");
  cuda::launch_unit_votes(token_votes, n_votes, first_token, mirror.unit_tokens(), mirror.n_units(), top, top_capacity,
                          weight, rank, stream_);
}

void CudaBackend::cast_votes_device(const UnitIndexMirror& mirror, const int32_t* top, int64_t top_capacity,
                                    float weight, float* token_votes, int64_t first_token) {
  const CudaOpTimer::Scope op(*op_timer_, "select");
  cuda::launch_cast_votes(mirror.unit_tokens(), top, top_capacity, weight, token_votes, first_token, stream_);
}

void CudaBackend::fill_zero(float* x, size_t n) {
  if (n == 0) return;
  LTRI_CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), stream_));
}

const float* CudaBackend::score_on_device(const ContextStore& store, UnitIndexMirror& mirror, const float* q,
                                          int64_t n_q, const std::vector<float>& head_weights, float* out,
                                          const DeviceQueries* rotate) {
  const int64_t n_units = int64_t(store.units().size());
  const int64_t n_heads = int64_t(head_weights.size()), hd = store.head_dim();
  if (store.n_kv_heads() <= 0 || n_heads % store.n_kv_heads() != 0) {
    fail("score_units: ", n_heads, " head weights are not a multiple of the store's ", store.n_kv_heads(), " KV heads");
  }
  // Heads with weight 0 add nothing (the host skips them too): only the others are scored.
  const int64_t group = n_heads / store.n_kv_heads();
  score_heads_.clear();
  score_kv_heads_.clear();
  for (int64_t h = 0; h < n_heads; ++h) {
    if (head_weights[size_t(h)] == 0.0f) continue;
    score_heads_.push_back(h);
    score_kv_heads_.push_back(h / group);
  }
  const int64_t n_active = int64_t(score_heads_.size());
  if (n_units == 0 || store.n_vectors() == 0 || n_active == 0 || n_q <= 0) return nullptr;
  // Only the KV heads scored are mirrored; the kernels then name a KV head by its mirror slot
  // (in the same order, so still non-decreasing).
  mirrored_heads_.assign(score_kv_heads_.begin(), score_kv_heads_.end());
  mirrored_heads_.erase(std::unique(mirrored_heads_.begin(), mirrored_heads_.end()), mirrored_heads_.end());
  mirror.sync(*this, store, mirrored_heads_);
  for (int64_t& g : score_kv_heads_) g = mirror.slot(g);

  // The GEMM operand: each active head's queries as (n_q, head_dim) rows, so the heads of one
  // KV head are one contiguous operand (bf16 bits, two per float, for a bf16 index: the
  // products are then those of the host op, which rounds the queries alike), then the weights.
  const bool bf16 = mirror.dtype() == DType::BF16;
  const int64_t q_values = n_active * n_q * hd;
  const int64_t q_floats = bf16 ? (q_values + 1) / 2 : q_values;
  float* input = nullptr;
  if (rotate == nullptr) {  // host queries, rotated: one upload of operand and weights
    score_host_.resize(size_t(q_floats + n_active));
    uint16_t* q_bits = reinterpret_cast<uint16_t*>(score_host_.data());
    for (int64_t a = 0; a < n_active; ++a) {
      for (int64_t i = 0; i < n_q; ++i) {
        const float* row = q + (i * n_heads + score_heads_[size_t(a)]) * hd;
        const int64_t at = (a * n_q + i) * hd;
        if (bf16) {
          for (int64_t d = 0; d < hd; ++d) q_bits[at + d] = f32_to_bf16(row[d]);
        } else {
          std::copy(row, row + hd, score_host_.begin() + at);
        }
      }
      score_host_[size_t(q_floats + a)] = head_weights[size_t(score_heads_[size_t(a)])];
    }
    input = scratch(score_input_, score_input_capacity_, score_host_.size());
  } else {  // query means in device memory: only the weights and the heads' ids go up
    sync_rope_table(*rotate->table);
    score_host_.resize(size_t(2 * n_active));
    for (int64_t a = 0; a < n_active; ++a) {
      score_host_[size_t(a)] = head_weights[size_t(score_heads_[size_t(a)])];
      const int32_t head = int32_t(score_heads_[size_t(a)]);
      std::memcpy(&score_host_[size_t(n_active + a)], &head, sizeof(head));
    }
    input = scratch(score_input_, score_input_capacity_, size_t(q_floats) + score_host_.size());
  }
  // No wait here: score_host_ stays untouched until the next download (of these scores, or of
  // the choice made from them) has synchronised (CUDA stages a pageable source before the call
  // returns anyway).
  float* weights = input + q_floats;
  upload_stable(rotate == nullptr ? input : weights, score_host_.data(), score_host_.size());
  if (rotate != nullptr) {
    cuda::PackQueriesArgs pack;
    pack.q = q;
    pack.n_q = n_q;
    pack.n_heads = n_heads;
    pack.head_dim = hd;
    pack.heads = reinterpret_cast<const int32_t*>(weights + n_active);
    pack.n_active = n_active;
    pack.cos = rope_cos_ + rotate->position * (hd / 2);
    pack.sin = rope_sin_ + rotate->position * (hd / 2);
    pack.bf16 = bf16;
    pack.out = input;
    cuda::launch_pack_score_queries(pack, stream_);
  }

  cuda::ScoreArgs args;
  args.bf16 = bf16;
  args.q = input;
  args.weights = weights;
  args.kv_head = score_kv_heads_.data();
  args.n_active = n_active;
  args.n_q = n_q;
  args.head_dim = hd;
  args.index = mirror.vectors();
  args.index_head_stride = mirror.head_stride();
  args.n_vectors = mirror.n_vectors();
  args.unit_starts = mirror.unit_starts();
  args.n_units = mirror.n_units();
  args.scores = out;
  float* work = scratch(score_scratch_, score_scratch_capacity_, cuda::score_scratch_floats(args));
  // f32 parity with the host scores whatever allow_tf32 set for matmul: close scores decide
  // which spans load.
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  LTRI_CUDA_CHECK(cublasGetMathMode(cublas_, &math_mode));
  LTRI_CUDA_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  cuda::launch_score_units(args, work, cublas_, stream_);
  LTRI_CUDA_CHECK(cublasSetMathMode(cublas_, math_mode));
  return out ? out : work;
}

void CudaBackend::row_block_means_device(const float* x, int64_t n, int64_t row, int64_t block, float* out) {
  const CudaOpTimer::Scope op(*op_timer_, "row_means");
  row_block_count(n, row, block, "row_block_means_device");
  cuda::launch_row_block_means(x, n, row, block, out, stream_);
}

void CudaBackend::row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* host_out) {
  const CudaOpTimer::Scope op(*op_timer_, "row_means");
  const int64_t n_blocks = row_block_count(n, row, block, "row_block_means");
  float* means = scratch(row_means_scratch_, row_means_scratch_capacity_, size_t(n_blocks * row));
  cuda::launch_row_block_means(x, n, row, block, means, stream_);
  download(host_out, means, size_t(n_blocks * row));
}

}  // namespace ltri
