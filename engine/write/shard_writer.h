// Copyright (c) dcp authors.
//
// The write path of one rank: its main-replica shards become chunk records in
// its own rank store.
//
// Each shard arrives as pieces (sharding/pieces.h: a non-flat shard is one
// piece, its box; a flat distributed-optimizer slice is up to 2*rank-1 boxes,
// each contiguous in its flat data). Each piece is cut into chunks
// (sharding/chunking.h), so a chunk is always an ordinary box of the global
// tensor and the manifest needs nothing else; the chunks are sorted
// by record key and run through a bounded pipeline: worker threads gather a
// chunk from the (possibly strided) source view — for a view in CUDA device
// memory, copying it into the slot's pinned buffer on the slot's stream, so
// device copies of some chunks overlap the encoding of others — checksum and
// encode it into one of a fixed ring of reused buffers, while the calling
// thread appends the finished records in key order to a table file that is
// ingested, durably, at the end. Memory stays at (ring size) x (chunk size),
// whatever the size of the state.
//
// Incremental steps: given a base step (the latest committed one), a chunk
// whose box matches a base chunk of the same tensor and whose bytes hash to
// the base chunk's checksum (XXH3-128) is not written: the fragment
// references the base's record instead, if reference_ok says that record is
// present and intact (otherwise the chunk is written). Chunk boundaries depend only on the
// shard's box, so an unchanged layout finds its chunks again.
//
// Each call also writes a generation index record (x/<generation>/<part>)
// listing the record keys it wrote, so that garbage collection can find the
// records of a generation without reading their values.
//
// The result is this rank's fragment of the step manifest: its chunks and
// objects with their record references.
//
// Thread safety: WriteShards runs on one thread (it uses a pool internally).

#ifndef DCP_ENGINE_WRITE_SHARD_WRITER_H_
#define DCP_ENGINE_WRITE_SHARD_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dcp/options.h"
#include "dcp/sharded.h"
#include "dcp/status.h"
#include "engine/base/thread_pool.h"
#include "engine/manifest/manifest.h"
#include "engine/sharding/pieces.h"
#include "engine/store/rank_store.h"

namespace dcp::write {

struct WriteStats {
  uint64_t chunks = 0;             // chunk records written
  uint64_t objects = 0;            // object records written
  uint64_t raw_bytes = 0;          // raw bytes of the records written
  uint64_t stored_bytes = 0;       // encoded bytes written
  uint64_t chunks_referenced = 0;  // chunks and objects found in the base step instead
  uint64_t raw_bytes_referenced = 0;
  uint64_t base_records_unusable = 0;  // equal to a base record that was missing or damaged: written
};

// Fills `dst` with the elements of `box` (global coordinates), row-major.
// Called from worker threads, concurrently, each time with one chunk.
using BoxReader = std::function<Status(const Box& box, void* dst)>;

// A box of a shard to write: the shard names the tensor (key, dtype, global
// shape); the piece is the box and the view of exactly its elements, or,
// with `read`, the piece's view is unused and each chunk's elements are read
// from there into the chunk's own buffer (a source larger than memory: an
// import streams its files through here, one chunk at a time).
struct TensorPiece {
  const ShardedTensor* tensor = nullptr;
  sharding::Piece piece;
  BoxReader read;
};

struct WriteRequest {
  uint64_t generation = 0;
  uint32_t part = 0;  // numbers the calls of one generation (streaming writes)
  // This rank's main-replica pieces; pieces of one tensor must be disjoint.
  std::vector<TensorPiece> tensors;
  std::vector<const ShardedObject*> objects;  // this rank's main-replica objects
  const manifest::StepManifest* base = nullptr;  // may be null: write everything
  // Whether a base record whose bytes equal a chunk may be referenced
  // (query/record_check.h): called from worker threads with the base's
  // record reference and record key. Empty: every match is referenced.
  std::function<bool(const manifest::RecordRef&, const std::string& record_key)> reference_ok;

  // Batches in flight at once. A batch is one task's work: a run of
  // neighbouring chunks in record key order of up to 1 MiB or 256 chunks, or
  // one larger chunk. Each holds its encoded records, plus up to two chunk-
  // sized scratch buffers (gathered bytes, byte planes). 0: twice the pool's
  // threads + 1, which keeps every thread busy; an import that must stay
  // within a memory bound asks for fewer.
  int max_in_flight = 0;

  // Appends the pieces of shard `t` (none if it is empty). `t` must outlive
  // the request and pass sharding::ValidateTensorLeaf.
  void AddTensor(const ShardedTensor& t);
};

// Writes the chunks and objects of `request` into `store` and makes them
// durable. On success appends them to *fragment (tensor entries sorted by
// key, with dtype and global shape; objects) and adds to *stats. On failure
// nothing is ingested.
// Encoding runs on `pool` (the store's), or on a pool of
// options.encode_threads threads made for the call if it is null.
// REQUIRES: store opened for writing; shards validated.
Status WriteShards(storage::RankStore* store, const WriteRequest& request, const SaveOptions& options,
                   manifest::StepManifest* fragment, WriteStats* stats, base::ThreadPool* pool = nullptr);

}  // namespace dcp::write

#endif  // DCP_ENGINE_WRITE_SHARD_WRITER_H_
