#include "kv/layer_jobs.hpp"

#include <algorithm>
#include <cstdlib>
#include <system_error>

#include "core/error.hpp"

namespace ltri {

LayerJobs::LayerJobs(int64_t n_layers, int threads)
    : busy_(size_t(std::max<int64_t>(n_layers, 0)), 0), errors_(busy_.size()) {
  if (threads < 0) fail("layer jobs: ", threads, " threads; expected 0 or more");
  workers_.reserve(size_t(threads));
  try {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  } catch (const std::system_error& e) {
    // Threads already started must be joined before the members go away.
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    queued_.notify_all();
    for (std::thread& t : workers_) t.join();
    fail("layer jobs: cannot start worker thread ", workers_.size() + 1, " of ", threads, " (", e.what(), ")");
  }
}

LayerJobs::~LayerJobs() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();  // nobody will read what they would store
  }
  queued_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int LayerJobs::default_threads() {
  if (const char* env = std::getenv("LTRI_STORE_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end != '\0' || n < 1 || n > 256) fail("LTRI_STORE_THREADS=", env, ": expected a thread count from 1 to 256");
    return int(n);
  }
  const int hardware = int(std::thread::hardware_concurrency());  // 0 when unknown
  return std::clamp(hardware - 1, 1, 8);
}

void LayerJobs::check_layer(int64_t layer) const {
  if (layer < 0 || layer >= int64_t(busy_.size())) {
    fail("layer jobs: layer ", layer, " of ", busy_.size());
  }
}

void LayerJobs::submit(int64_t layer, std::function<void()> job) {
  check_layer(layer);
  if (workers_.empty()) {
    job();
    return;
  }
  std::unique_lock lock(mutex_);
  if (std::exception_ptr error = wait_locked(lock, layer)) std::rethrow_exception(error);
  busy_[size_t(layer)] = 1;
  queue_.push_back({layer, std::move(job)});
  lock.unlock();
  queued_.notify_one();
}

std::exception_ptr LayerJobs::wait_locked(std::unique_lock<std::mutex>& lock, int64_t layer) {
  done_.wait(lock, [&] { return busy_[size_t(layer)] == 0; });
  std::exception_ptr error;
  std::swap(error, errors_[size_t(layer)]);
  return error;
}

void LayerJobs::wait(int64_t layer) {
  check_layer(layer);
  if (workers_.empty()) return;
  std::unique_lock lock(mutex_);
  if (std::exception_ptr error = wait_locked(lock, layer)) std::rethrow_exception(error);
}

std::exception_ptr LayerJobs::wait_all_errors() {
  if (workers_.empty()) return nullptr;
  std::unique_lock lock(mutex_);
  std::exception_ptr first;
  for (int64_t l = 0; l < int64_t(busy_.size()); ++l) {
    std::exception_ptr error = wait_locked(lock, l);
    if (error && !first) first = error;
  }
  return first;
}

void LayerJobs::wait_all() {
  if (std::exception_ptr error = wait_all_errors()) std::rethrow_exception(error);
}

void LayerJobs::discard_all() { wait_all_errors(); }

void LayerJobs::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::exception_ptr error;
    try {
      job.run();
    } catch (...) {
      error = std::current_exception();
    }
    job.run = nullptr;  // the job's captures (its buffers) go before the layer counts as idle
    lock.lock();
    errors_[size_t(job.layer)] = error;
    busy_[size_t(job.layer)] = 0;
    done_.notify_all();
  }
}

}  // namespace ltri
