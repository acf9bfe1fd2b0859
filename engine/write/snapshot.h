// Copyright (c) dcp authors.
//
// Snapshot: a copy of a rank's state dict whose tensor bytes live in staging
// memory owned by the snapshot, so an asynchronous put can run while the
// caller goes on changing (or freeing) its tensors.
//
// Only main replicas are copied (they are all a put writes): each becomes a
// contiguous host view into the staging arena — host tensors by a strided
// copy on a thread pool, CUDA tensors by device-to-host copies into pinned
// memory. Non-main replicas keep their metadata and get a placeholder view
// that is never read. Objects and common-state values are copied with the
// dict. Staging is reused by the next snapshot (no new allocation or page
// faults when the state does not grow): it holds at most the rank's
// main-replica bytes, plus 64 bytes of alignment per tensor.
//
// Thread safety: one thread at a time.

#ifndef DCP_ENGINE_WRITE_SNAPSHOT_H_
#define DCP_ENGINE_WRITE_SNAPSHOT_H_

#include <cstdint>

#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "engine/base/buffer.h"
#include "engine/base/thread_pool.h"
#include "engine/cuda/device.h"

namespace dcp::write {

class Snapshot {
 public:
  // Copies `state`. REQUIRES: `state` passed local validation. `threads` as
  // in SaveOptions::encode_threads.
  Status Take(const StateDict& state, int threads, base::ThreadPool* pool = nullptr);

  const StateDict& state() const { return copy_; }
  // Bytes copied by the last Take, and staging held now.
  uint64_t copied_bytes() const { return copied_; }
  uint64_t staging_bytes() const { return host_.capacity() + pinned_.capacity(); }

 private:
  StateDict copy_;
  base::Buffer host_;
  cuda::PinnedBuffer pinned_;
  uint64_t copied_ = 0;
};

}  // namespace dcp::write

#endif  // DCP_ENGINE_WRITE_SNAPSHOT_H_
