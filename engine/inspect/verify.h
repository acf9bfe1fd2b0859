// Copyright (c) dcp authors.
//
// Verify: reads every record a step references (or every step's) and checks
// everything that can be checked without the writer:
//   - the manifest decodes (frame, checksum, FlatBuffers structure) and its
//     invariants hold: tensors sorted, chunks inside the tensor, raw sizes,
//     exact cover (no hole, no overlap), objects inside their grids;
//   - references: no record of a generation newer than the step's, and the
//     step's own records come from ranks that saved it;
//   - every record exists in its rank store, its header matches the manifest
//     (raw size, stored size, codec, XXH3-128), and it decodes to bytes that
//     hash to that checksum (RocksDB's block checksums are verified too);
//   - the common state decodes.
// Every failure becomes a Problem naming the step, key, chunk offset and rank
// store; verification goes on after a problem. A record referenced by several
// steps is read once.
//
// Thread safety: Verify may run concurrently with writers of new steps.

#ifndef DCP_ENGINE_INSPECT_VERIFY_H_
#define DCP_ENGINE_INSPECT_VERIFY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/inspect/reader.h"

namespace dcp::inspect {

struct Problem {
  enum class Kind {
    kManifest,     // the manifest cannot be read or decoded
    kInvariant,    // a manifest invariant does not hold
    kReference,    // a record reference is impossible
    kRecord,       // a record is missing, corrupt or differs from the manifest
    kCommonState,  // the common state does not decode
  };
  Kind kind = Kind::kRecord;
  uint64_t step = 0;
  std::string key;               // tensor key or object unique key; empty for the step itself
  std::optional<Shape> offset;   // the chunk's global offset
  std::optional<uint32_t> rank;  // the rank store holding the record
  std::string message;
};

const char* ProblemKindName(Problem::Kind kind);

struct VerifyProgress {
  uint64_t records_done = 0;
  uint64_t records_total = 0;
  uint64_t bytes_done = 0;  // stored bytes read so far
  uint64_t bytes_total = 0;
};

struct VerifyOptions {
  // The step to verify; every committed step if unset.
  // Default: unset
  std::optional<uint64_t> step;

  // Threads that read, decode and hash records; 0 means this process's share
  // of the cores (at least 2).
  // Default: 0
  int threads = 0;

  // Upper bound on record bytes being read and decoded at once.
  // Default: 256 MiB
  uint64_t max_inflight_bytes = uint64_t{256} << 20;

  // Called (serialised, from any thread) as records are verified.
  // Default: none
  std::function<void(const VerifyProgress&)> progress;
};

struct VerifyReport {
  std::vector<uint64_t> steps;
  uint64_t tensors = 0;
  uint64_t chunks = 0;        // chunk references, all steps
  uint64_t objects = 0;       // object references, all steps
  uint64_t records_read = 0;  // distinct records read
  uint64_t stored_bytes = 0;  // of the distinct records read
  uint64_t raw_bytes = 0;     // decoded and hashed
  double seconds = 0;
  std::vector<Problem> problems;  // by step, then key, then offset

  bool ok() const { return problems.empty(); }
};

// Errors only for what stops verification before it starts: a root that is
// not a store, a step that is not committed. Everything else is a Problem.
Result<VerifyReport> Verify(StoreReader* reader, const VerifyOptions& options = {});

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_VERIFY_H_
