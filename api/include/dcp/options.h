// Copyright (c) dcp authors.
//
// Options for opening a store, saving and loading: plain structs with in-class
// defaults, split by scope.

#ifndef DCP_OPTIONS_H_
#define DCP_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace dcp {

// How chunk records are encoded. Whatever is chosen, a chunk whose encoding
// does not pay (saves less than ~3%) is stored raw. DO NOT CHANGE THESE VALUES.
enum class Compression : uint8_t {
  kNone = 0,          // raw bytes
  kLz4 = 1,           // LZ4 block compression
  kLz4BytePlane = 2,  // floating-point dtypes: split elements into byte
                      // planes, then LZ4 each plane that compresses (raw
                      // otherwise); other dtypes use kLz4
};

struct StoreOptions {
  // Create the root directory and its marker if the root does not exist (or is
  // an empty directory).
  // Default: true
  bool create_if_missing = true;

  // Open without a writable rank store: Put fails with FailedPrecondition, and
  // nothing under the root is created or modified.
  // Default: false
  bool read_only = false;

  // How long a writer waits for the store's writer lock before giving up
  // with FailedPrecondition. A job restarted after a crash may find the old
  // job's processes still exiting (a process killed in the middle of an
  // fsync holds its files until the I/O completes).
  // Default: 10000
  int lock_wait_ms = 10000;

  // A writer that finds a rank store's RocksDB metadata damaged (CURRENT or
  // MANIFEST missing or corrupt, a table file it lists missing or truncated)
  // repairs it before writing, deleting nothing: the metadata is rebuilt from
  // the table files that read back whole, and what cannot be used is moved
  // to the rank store's lost/ directory (a message on stderr says what was
  // done). The store stays writable; steps that lost records fail to load
  // with DataLoss naming them (`dcp-inspect ROOT repair` lists and marks
  // them). When false, such a store is refused with DataLoss naming the rank
  // store and the problem, and nothing is changed.
  // Default: true
  bool repair = true;
};

struct SaveOptions {
  // Allow Put to replace a step that is already committed. The old step stays
  // loadable until the new manifest is published, and is replaced atomically.
  // Must be the same on every rank.
  // Default: false
  bool overwrite = false;

  // Upper bound on the raw bytes of one chunk record. Shards are cut along
  // their outermost axes into balanced chunks no larger than this (a chunk is
  // never smaller than one element). Must be the same on every rank (a put
  // whose ranks differ fails on every rank).
  // Default: 8 MiB
  uint64_t chunk_bytes = uint64_t{8} << 20;

  // Encoding of chunk records.
  // Default: kLz4
  Compression compression = Compression::kLz4;

  // Incremental steps: a chunk whose bytes equal the same chunk (same tensor
  // key and box) of the latest committed step is not written again; the new
  // step references the stored record. Costs one hash of each chunk.
  // Default: true
  bool incremental = true;

  // Threads that gather, checksum and compress chunks on each rank; 0 means
  // this rank's share of the node's cores (at least 2): the cores divided by
  // the ranks on the node, as the launcher says (mpirun, torchrun, Slurm) or
  // as the store counted its ranks on this host at open, whichever is more.
  // Default: 0
  int encode_threads = 0;

  // Fully parallel save: the chunks of a shard that several ranks hold
  // (data-parallel replicas: the same key and box) are written by all of
  // them, each from its own replica, spread evenly by bytes, instead of all
  // by the main replica's rank (a deterministic greedy every rank computes
  // alike, as the reference's distribute_shards_to_ranks; no extra
  // communication). The chunks, the manifest and incremental dedup are the
  // same either way; only which rank store holds each record changes.
  // SaveReport shows each rank's share. On by default because replicated
  // state is the common case (data parallelism) and without it the ranks of
  // data-parallel rank 0 write everything while the others wait, and because
  // it is bit-identical as long as replicas hold equal values, which is the
  // meaning of a replica id (the reference's users get it by default too).
  // Turn it off if replicas may differ. Must be the same on every rank, as
  // chunk_bytes. PutAsync always writes from main replicas only (its
  // snapshot stages nothing else).
  // Default: true
  bool fully_parallel = true;
};

// What Get does about keys that the request and the step do not share, as in
// Megatron-Core's StrictHandling. Keys are ShardedTensor::key and
// ShardedObject::key (not the object's unique key):
//   unexpected: requested by this rank, not in the step (per rank);
//   missing: in the step (tensor or object), requested by no rank (the same
//            on every rank).
// In every mode but kAssumeOkUnexpected, unexpected entries are dropped from
// the load before anything is read (their destinations are left untouched),
// and the check costs one gather and one broadcast of a bitmap over the
// step's keys. Raised errors are the same on every rank and name the keys
// (and, for unexpected keys, the ranks that asked for them); nothing is read.
// Logged keys go to stderr: each rank its own unexpected keys, rank 0 the
// missing ones. The RETURN modes fill LoadResult::unexpected_keys and
// missing_keys. DO NOT CHANGE THESE VALUES.
enum class StrictHandling : uint8_t {
  kAssumeOkUnexpected = 0,  // no check: an unknown key fails the load
                            // (NotFound on every rank)
  kLogUnexpected = 1,       // log unexpected keys
  kLogAll = 2,              // log unexpected and missing keys
  kRaiseUnexpected = 3,     // NotFound if any rank has unexpected keys
  kRaiseAll = 4,            // NotFound on unexpected keys, InvalidArgument on
                            // missing keys (only missing ones)
  kReturnUnexpected = 5,    // return unexpected keys
  kReturnAll = 6,           // return unexpected and missing keys
  kIgnoreAll = 7,           // drop unexpected entries silently
};

struct LoadOptions {
  // Threads that fetch, verify, decode and copy chunks on each rank; 0 means
  // this rank's share of the node's cores (at least 2): the cores divided by
  // the ranks on the node, as the launcher says (mpirun, torchrun, Slurm) or
  // as the store counted its ranks on this host at open, whichever is more.
  // Default: 0
  int read_threads = 0;

  // Upper bound on the bytes of chunk records being read or decoded at once on
  // each rank (at least one chunk is always allowed).
  // Default: 256 MiB
  uint64_t max_inflight_bytes = uint64_t{256} << 20;

  // Strict key handling (see StrictHandling). Get only; must be the same on
  // every rank (a rank whose mode differs from rank 0's fails the get, on
  // every rank).
  // Default: kAssumeOkUnexpected
  StrictHandling strict = StrictHandling::kAssumeOkUnexpected;

  // Read-once load (Get only; must be the same on every rank, as `strict`): every chunk
  // that several ranks need (data-parallel replicas, overlapping requests)
  // is read from its rank store by one of them — the one with the least to
  // read — and its stored record is sent over the communicator to the
  // others, which check it against the manifest again before decoding it.
  // Chunks one rank needs alone are read by it directly. Pays when reading
  // the shared filesystem costs more than moving the bytes between ranks
  // (many replicas, a slow or contended filesystem); costs one all-gather of
  // every rank's needed chunks and one all-to-all per exchange round. The
  // exchange holds at most half of max_inflight_bytes per rank (rounds of a
  // quarter of the smallest max_inflight_bytes of any rank, two at a time),
  // direct reads the other half. LoadResult::report shows what each rank
  // read, sent and received.
  // Default: false
  bool read_once = false;
};

}  // namespace dcp


namespace dcp {

struct GcOptions {
  // A put whose records are partly still referenced (by later incremental
  // steps) is compacted — its live records rewritten, its dead ones freed —
  // only once at least this fraction of its bytes is dead; below it the dead
  // bytes wait for a later collection (reported as pending). 0 compacts
  // every time; 1 only ever frees whole puts.
  // Default: 0.5
  double compact_dead_fraction = 0.5;
};

// Which steps ApplyRetention keeps; every other committed step is deleted.
// A step is kept if any rule keeps it.
struct RetentionPolicy {
  // The N most recent steps (by step number).
  // Default: 0 (none by this rule)
  uint64_t keep_last = 0;
  // Steps that are multiples of K (e.g. 1000 keeps 1000, 2000, ...).
  // Default: 0 (none by this rule)
  uint64_t keep_every = 0;
  // Steps kept by name (e.g. the ones a user pinned).
  // Default: empty
  std::vector<uint64_t> keep_steps;
};

// Where Store::RemoveTensors puts the step without the removed tensors.
struct RemoveTensorsOptions {
  // A new step to publish (the source step is left as it is); nullopt, or the
  // source step itself, replaces the source step in place, atomically.
  // Default: nullopt (in place)
  std::optional<uint64_t> into_step;
  // Allow into_step to replace a step that is already committed.
  // Default: false
  bool overwrite = false;
};

}  // namespace dcp

#endif  // DCP_OPTIONS_H_
