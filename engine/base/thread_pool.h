// Copyright (c) dcp authors.
//
// ThreadPool: a fixed set of worker threads running queued closures, and
// TaskGroup: a set of fallible tasks on a pool that the caller waits for,
// keeping the first error.
//
// Thread safety: Schedule and TaskGroup::Run may be called from any thread.
// The pool's destructor drains the queue and joins the workers.

#ifndef DCP_ENGINE_BASE_THREAD_POOL_H_
#define DCP_ENGINE_BASE_THREAD_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dcp/status.h"

namespace dcp::base {

// Threads to use for `requested`: itself if > 0; for 0, this process's share
// of the machine's cores: hardware concurrency divided by the ranks on this
// host, at least 2 so that I/O and encoding overlap. The ranks on this host
// are the larger of what the launcher announces (OMPI_COMM_WORLD_LOCAL_SIZE,
// MPI_LOCALNRANKS, torchrun's LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE) and
// `ranks_on_host`, the caller's count (a store counts its communicator's
// ranks by HostIdentity at open: torch.multiprocessing announces nothing).
int ResolveThreadCount(int requested, int ranks_on_host = 1);

// Which machine this process runs on, for counting a job's ranks per host:
// the kernel's boot id (processes in containers on one host share it, and
// its cores), else the host name.
std::string HostIdentity();

class ThreadPool {
 public:
  // REQUIRES: threads >= 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> fn);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;
};

// A pool kept across calls (a Store keeps one for writing and one for
// reading, rather than starting threads in every call): Get(n) returns a pool
// of n threads, the same one while n does not change.
// Thread safety: one caller at a time; a pool it returned stays valid until
// the next Get with another n.
class PoolCache {
 public:
  ThreadPool* Get(int threads);

 private:
  std::unique_ptr<ThreadPool> pool_;
};

// `shared` if not null, else a pool of `threads` created in *own.
ThreadPool* SharedOrOwn(ThreadPool* shared, int threads, std::unique_ptr<ThreadPool>* own);

// Runs tasks on a pool; Wait() returns once all have finished, with the first
// non-OK status any of them returned. Tasks started after a failure still run
// (they may check failed() to skip work).
class TaskGroup {
 public:
  explicit TaskGroup(ThreadPool* pool) : pool_(pool) {}
  ~TaskGroup();  // waits
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  void Run(std::function<Status()> task);
  Status Wait();
  bool failed() const;

 private:
  ThreadPool* pool_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t pending_ = 0;  // guarded by mu_
  Status first_error_;   // guarded by mu_
};

// A counting semaphore over bytes: Acquire blocks until `n` bytes fit under
// the limit (a request larger than the limit is admitted alone).
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t limit) : limit_(limit) {}
  void Acquire(uint64_t n);
  void Release(uint64_t n);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t limit_;
  uint64_t used_ = 0;  // guarded by mu_
};

}  // namespace dcp::base

#endif  // DCP_ENGINE_BASE_THREAD_POOL_H_
