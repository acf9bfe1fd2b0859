// Copyright (c) dcp authors.
//
// The write path of one rank: its main-replica shards become chunk records in
// its own rank store.
//
// Each shard is cut into chunks (sharding/chunking.h); the chunks are sorted
// by record key and run through a bounded pipeline: worker threads gather a
// chunk from the (possibly strided) source view — for a view in CUDA device
// memory, copying it into the slot's pinned buffer on the slot's stream, so
// device copies of some chunks overlap the encoding of others — checksum and
// encode it into
// one of a fixed ring of reused buffers, while the calling thread appends the
// finished records in key order to a table file that is ingested, durably, at
// the end. Memory stays at (ring size) x (chunk size), whatever the size of
// the state.
//
// The result is this rank's fragment of the step manifest: its chunks and
// objects with their record references.
//
// Thread safety: WriteShards runs on one thread (it uses a pool internally).

#ifndef DCP_ENGINE_WRITE_SHARD_WRITER_H_
#define DCP_ENGINE_WRITE_SHARD_WRITER_H_

#include <cstdint>
#include <vector>

#include "dcp/options.h"
#include "dcp/sharded.h"
#include "dcp/status.h"
#include "engine/manifest/manifest.h"
#include "engine/store/rank_store.h"

namespace dcp::write {

struct WriteStats {
  uint64_t chunks = 0;
  uint64_t objects = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
};

// Writes the chunks of `tensors` (main-replica shards of this rank) and
// `objects` as records of `generation` into `store`, then makes them durable.
// On success *fragment lists them (tensors sorted by key, with dtype and
// global shape; objects sorted by unique key). On failure nothing is ingested.
// REQUIRES: store opened for writing; shards validated.
Status WriteShards(storage::RankStore* store, uint64_t generation, const std::vector<const ShardedTensor*>& tensors,
                   const std::vector<const ShardedObject*>& objects, const SaveOptions& options,
                   manifest::StepManifest* fragment, WriteStats* stats);

}  // namespace dcp::write

#endif  // DCP_ENGINE_WRITE_SHARD_WRITER_H_
