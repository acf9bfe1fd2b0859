// Copyright (c) dcp authors.
//
// The assembler executes a ReadPlan: for each chunk it fetches the record from
// whichever rank store holds it, checks it against the manifest (header,
// size, checksum), decodes it and copies each planned region straight into
// its destination. Reads run on a thread pool with a bound on the record
// bytes in flight; a chunk that lands whole in a contiguous destination is
// decoded in place, with no intermediate buffer.
//
// Every failure names the tensor key, the chunk's offset, the rank store and
// its path; corrupt or missing records are DataLoss.
//
// The per-chunk steps are public so that executors which move records
// between ranks (read_once.h) verify and decode exactly as ExecuteReadPlan
// does: FetchChunkRecord (read + header check), CheckChunkRecord (header check
// of a record obtained elsewhere), DecodeChunkRecord (decode, content
// checksum, copies into the destinations).
//
// Fault point: "get.read_chunk" (fault_injection.h) is checked before every
// chunk record is fetched, with the `rank` given (-1: unknown, so only points
// armed for every rank fire).
//
// Thread safety: one call at a time per StoreSet is not required; each call
// owns its pool. The per-chunk functions may run concurrently on different
// reads (destinations of one plan do not overlap).

#ifndef DCP_ENGINE_QUERY_ASSEMBLER_H_
#define DCP_ENGINE_QUERY_ASSEMBLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/options.h"
#include "dcp/status.h"
#include "engine/base/thread_pool.h"
#include "engine/codec/chunk_codec.h"
#include "engine/manifest/manifest.h"
#include "engine/query/planner.h"
#include "engine/query/store_set.h"
#include "engine/store/rank_store.h"

namespace dcp::query {

// `generation` is the manifest's (for catching up read instances). `rank`
// is this process's rank, for fault points (-1 if unknown). Reads run on
// `pool` (the store's), or on a pool of options.read_threads made for the
// call if it is null.
Status ExecuteReadPlan(StoreSet* stores, uint64_t generation, const ReadPlan& plan, const LoadOptions& options,
                       int rank = -1, base::ThreadPool* pool = nullptr);

// "tensor '<key>' chunk at offset (<origin>)": how errors name a chunk.
std::string ChunkSubject(const ChunkRead& read);

// Fetches the record of read.chunk from the rank store that holds it and
// checks its header against the manifest (raw size, checksum). *value pins
// the record until it is destroyed. Errors: DataLoss naming the chunk and
// rank store (missing, malformed or mismatching record); IOError.
Status FetchChunkRecord(StoreSet* stores, uint64_t generation, const ChunkRead& read, int rank,
                        storage::PinnedValue* value, codec::ChunkHeader* header);

// Checks a record of read.chunk received from rank `sender` against the
// manifest, as FetchChunkRecord does. Errors name the chunk "(received from
// rank <sender>)". DataLoss on any mismatch.
Result<codec::ChunkHeader> CheckChunkRecord(std::string_view record, const ChunkRead& read, int sender);

// Decodes a checked record of read.chunk (verifying the checksum of the
// decoded bytes) and copies every planned region into its destination.
// `sender` (-1: none) names where the record came from in errors, as above.
// REQUIRES: `header` was returned for `record` by FetchChunkRecord or
// CheckChunkRecord.
Status DecodeChunkRecord(std::string_view record, const codec::ChunkHeader& header, const ChunkRead& read,
                         int sender = -1);

// FetchChunkRecord, then DecodeChunkRecord.
Status ReadChunk(StoreSet* stores, uint64_t generation, const ChunkRead& read, int rank);

// One task's reads: a record of 1 MiB or more alone, or a run of smaller
// neighbours in one rank store (up to 1 MiB or 256 records) read in one pass
// with large reads (StoreSet::ReadRun).
struct ReadTask {
  std::vector<const ChunkRead*> reads;
  std::vector<std::string> keys;  // their record keys, increasing
  uint64_t cost = 0;              // stored + raw bytes: what the task holds at most
  uint64_t stored = 0;            // stored bytes
  uint64_t readahead = 0;         // a run's bytes to read ahead; 0 for a single record
};

// The grouping PlanReadTasks uses, for callers with records of their own
// (dcp-inspect verify). Items [0, n), sorted by (rank store, record key),
// become tasks [begin, end): an item of 1 MiB or more stored alone, others in
// runs of up to 1 MiB (at most a quarter of `max_inflight_bytes`) or 256.
// `stored(i)`: item i's stored bytes; `joins(i)`: whether item i may follow
// item i - 1 in a run (same rank store, a different record).
struct TaskRange {
  size_t begin = 0, end = 0;
  uint64_t stored = 0;  // stored bytes
  uint64_t readahead = 0;  // a run's bytes to read ahead; 0 for a single record
};
std::vector<TaskRange> SplitIntoTasks(size_t n, uint64_t max_inflight_bytes,
                                      const std::function<uint64_t(size_t)>& stored,
                                      const std::function<bool(size_t)>& joins);

// `reads` as tasks in the stores' physical order: by rank store, then record
// key (a put writes each rank's records in key order into one table file).
// A run holds at most a quarter of `max_inflight_bytes`.
std::vector<ReadTask> PlanReadTasks(std::vector<const ChunkRead*> reads, uint64_t max_inflight_bytes);

// Reads, checks and decodes the chunks of `task`, stopping at the first
// failure. `done` (may be empty) is called with each record once it is
// decoded (the record valid during the call only), e.g. to forward it.
using RecordDone = std::function<void(size_t i, std::string_view record)>;
Status ExecuteReadTask(StoreSet* stores, uint64_t generation, const ReadTask& task, int rank,
                       const RecordDone& done = {});

// Reads object `object` of a step into *out.
Status ReadObject(StoreSet* stores, uint64_t generation, const manifest::ObjectEntry& object, std::string* out);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_ASSEMBLER_H_
