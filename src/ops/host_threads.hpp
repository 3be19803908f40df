#pragma once
// The host's thread pool, whatever the backend. Host work runs on OpenMP threads: the CPU
// backend's ops, and on every backend the streaming policies' band, span and scoring work,
// which calls OpenBLAS from inside OpenMP regions. OpenBLAS is kept single-threaded, so there
// is one pool: given its own pthread pool as well, the two pools' idle threads spin against
// each other's working ones (a third of prefill time on 2 cores; on a 16-core GPU host with
// the CUDA backend, the ltri policy ran ~100x slower than with the pools set this way).
namespace ltri {

// Sets the OpenMP thread count (threads <= 0: all cores) and OpenBLAS to one thread; returns
// the OpenMP thread count.
int set_host_threads(int threads);

}  // namespace ltri
