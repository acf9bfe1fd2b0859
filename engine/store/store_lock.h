// Copyright (c) dcp authors.
//
// WriterLock: one writer per store. An exclusive flock on <root>/LOCK, held
// as long as the object lives (and released by the kernel if the process
// dies, so a killed writer never leaves the store locked). The file names
// the holder (host and pid) for the error a second writer gets.
//
// flock locks belong to an open file, so a second writer in the same process
// is refused too. On network filesystems flock must be supported (NFSv4,
// Lustre with -o flock).
//
// Thread safety: a value; Acquire is thread-safe.

#ifndef DCP_ENGINE_STORE_STORE_LOCK_H_
#define DCP_ENGINE_STORE_STORE_LOCK_H_

#include <memory>
#include <string>

#include "dcp/status.h"

namespace dcp::storage {

class WriterLock {
 public:
  // Waits up to `wait_ms` for the lock. FailedPrecondition naming the holder
  // if another writer still holds it; IOError if the lock file cannot be
  // opened.
  static Result<std::unique_ptr<WriterLock>> Acquire(const std::string& root, int wait_ms = 0);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  explicit WriterLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_STORE_LOCK_H_
