// Copyright (c) dcp authors.

#include "engine/base/thread_pool.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace dcp::base {

int ResolveThreadCount(int requested, int ranks_on_host) {
  if (requested > 0) return requested;
  int local_ranks = std::max(1, ranks_on_host);
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"}) {
    if (const char* v = std::getenv(var)) {
      const int n = std::atoi(v);
      if (n > 0) {
        local_ranks = std::max(local_ranks, n);
        break;
      }
    }
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(2, cores / local_ranks);
}

std::string HostIdentity() {
  // Not base::ReadFile: it reads the st_size bytes, and a /proc file says 0.
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (boot && std::getline(boot, id) && !id.empty()) return "boot:" + id;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return std::string("host:") + host;
}

ThreadPool::ThreadPool(int threads) {
  workers_.reserve(static_cast<size_t>(std::max(1, threads)));
  for (int i = 0; i < std::max(1, threads); ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Schedule(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void ThreadPool::WorkerLoop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

TaskGroup::~TaskGroup() { Wait().IgnoreError(); }

void TaskGroup::Run(std::function<Status()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_;
  }
  pool_->Schedule([this, task = std::move(task)] {
    Status s = task();
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() && first_error_.ok()) first_error_ = std::move(s);
    if (--pending_ == 0) cv_.notify_all();
  });
}

Status TaskGroup::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return pending_ == 0; });
  return first_error_;
}

bool TaskGroup::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !first_error_.ok();
}

void ByteBudget::Acquire(uint64_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return used_ == 0 || used_ + n <= limit_; });
  used_ += n;
}

void ByteBudget::Release(uint64_t n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    used_ -= n;
  }
  cv_.notify_all();
}

ThreadPool* PoolCache::Get(int threads) {
  threads = std::max(1, threads);
  if (pool_ == nullptr || pool_->size() != threads) {
    pool_.reset();  // joins the old workers first
    pool_ = std::make_unique<ThreadPool>(threads);
  }
  return pool_.get();
}

ThreadPool* SharedOrOwn(ThreadPool* shared, int threads, std::unique_ptr<ThreadPool>* own) {
  if (shared != nullptr) return shared;
  *own = std::make_unique<ThreadPool>(std::max(1, threads));
  return own->get();
}

}  // namespace dcp::base
