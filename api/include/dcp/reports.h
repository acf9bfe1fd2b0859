// Copyright (c) dcp authors.
//
// What the Store's calls report back: per-rank counters of a put, a get and a
// garbage collection, and what a get returns besides the tensors it fills in.
// Plain values.

#ifndef DCP_REPORTS_H_
#define DCP_REPORTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/value.h"

namespace dcp {

// What one rank did in a Put (or a streaming session).
struct SaveReport {
  uint64_t chunks_written = 0;
  uint64_t objects_written = 0;
  uint64_t raw_bytes_written = 0;     // before encoding
  uint64_t stored_bytes_written = 0;  // encoded record bytes
  uint64_t chunks_referenced = 0;     // chunks and objects unchanged since the
  uint64_t raw_bytes_referenced = 0;  // base step: referenced, not rewritten
  // Chunks and objects equal to a record of the base step that was missing or
  // damaged (a lost rank store or table file, a flipped bit): written again
  // instead of referenced (counted in chunks_written / objects_written too).
  uint64_t base_records_unusable = 0;
};

// What one rank's part of CollectGarbage did.
struct GcReport {
  uint64_t generations_removed = 0;    // puts whose records were all unreferenced
  uint64_t records_removed = 0;        // single records of partly referenced puts
  uint64_t bytes_before = 0;           // table-file bytes of the stores handled
  uint64_t bytes_after = 0;
  uint64_t bytes_pending = 0;          // dead bytes left in partly referenced puts
                                       // (below GcOptions::compact_dead_fraction)
  uint64_t temporary_files_removed = 0;
};

// What one rank did in a Get: the per-rank byte balance of a load. Bytes are
// stored (encoded record) bytes.
struct LoadReport {
  uint64_t chunks_read = 0;  // chunk records this rank read from rank stores
  uint64_t bytes_read = 0;
  // LoadOptions::read_once: records this rank read for others and sent them
  // (counted once per receiving rank), and records it received instead of
  // reading them.
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t chunks_received = 0;
  uint64_t bytes_received = 0;
};

struct LoadResult {
  // The common state saved with the step (rank 0's Value leaves, as a map
  // mirroring the state dict's nesting).
  Value common_state;

  // What this rank read, sent and received.
  LoadReport report;

  // Strict key handling (LoadOptions::strict), sorted and without repeats;
  // keys are ShardedTensor / ShardedObject keys, not state dict paths (the
  // request itself is filled in place, under its own dict keys).
  // unexpected_keys: keys this rank requested that the step does not hold
  //   (their entries were not loaded). Filled in kReturnUnexpected and
  //   kReturnAll.
  // missing_keys: keys the step holds that no rank requested; the same on
  //   every rank. Filled in kReturnAll.
  std::vector<std::string> unexpected_keys;
  std::vector<std::string> missing_keys;
};

}  // namespace dcp

#endif  // DCP_REPORTS_H_
