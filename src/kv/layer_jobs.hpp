#pragma once
// A small pool of worker threads that runs at most one job per layer at a time: the streaming
// policies' store step (index vectors + ContextStore::add_unit of the tokens a layer evicted),
// which is host work whose result the layer needs only when it is planned again, a chunk (all
// the other layers) later. Jobs of different layers run concurrently; a layer's state is used by
// one thread at a time because everything that touches it first calls wait(layer).
//
// With 0 threads every job runs at once inside submit(), on the calling thread (the store step
// as it was before this pool; the CPU backend, whose OpenMP threads already use every core).
//
// Errors: an exception thrown by a job is kept and rethrown, as it was thrown, by the next
// wait() on its layer (or wait_all()), so a failed store step surfaces on the calling thread as
// the usual one-line ltri::Error. With 0 threads it propagates out of submit() directly.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ltri {

class LayerJobs {
 public:
  // threads: workers to start (0: run jobs inline). n_layers: the layers jobs are keyed by.
  LayerJobs(int64_t n_layers, int threads);
  // Joins the workers: a job already running finishes, queued ones are dropped, kept errors are
  // dropped (a destructor cannot report them).
  ~LayerJobs();
  LayerJobs(const LayerJobs&) = delete;
  LayerJobs& operator=(const LayerJobs&) = delete;

  // Queues `job` for `layer` (first waiting for that layer's previous job, which rethrows its
  // error); with 0 threads runs it now.
  void submit(int64_t layer, std::function<void()> job);
  // Returns once the layer has no job queued or running; rethrows the error of its last job
  // (once: the error is forgotten as it is thrown).
  void wait(int64_t layer);
  // wait() for every layer; rethrows the error of the lowest failed layer, forgetting all.
  void wait_all();
  // Waits for every job and forgets their errors: for a reset, after which nothing reads what
  // they stored.
  void discard_all();

  int threads() const { return int(workers_.size()); }

  // Worker threads for the eviction jobs when they run asynchronously: several, leaving a core
  // to the thread that drives the GPU: min(8, hardware threads - 1), at least 1 (on the 16-core
  // GPU machine, 8 prefilled 128K tokens in 22.64-26.02 s against 25.20-27.83 s with 4);
  // LTRI_STORE_THREADS=n in the environment says n instead (measurements, tests).
  static int default_threads();

 private:
  struct Job {
    int64_t layer;
    std::function<void()> run;
  };
  void work();
  std::exception_ptr wait_all_errors();  // the lowest failed layer's error, all forgotten
  void check_layer(int64_t layer) const;
  // With mutex_ held: waits until the layer is idle, then takes its error (if any).
  std::exception_ptr wait_locked(std::unique_lock<std::mutex>& lock, int64_t layer);

  std::mutex mutex_;
  std::condition_variable queued_;  // a job was queued, or the pool is stopping
  std::condition_variable done_;    // a job finished
  std::deque<Job> queue_;
  std::vector<uint8_t> busy_;                // per layer: a job queued or running
  std::vector<std::exception_ptr> errors_;  // per layer: its last job's error, until waited for
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ltri
