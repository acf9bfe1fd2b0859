// Copyright (c) dcp authors.
//
// Named fault points for failure-path and crash tests.
//
// Code on a failure-prone path calls CheckFaultPoint("put.before_ingest",
// rank). Two kinds of arming:
//   - an error: the call returns an injected IOError;
//   - a crash: the process kills itself with SIGKILL right there, exactly as
//     `kill -9` would (no destructors, no flushing), on the given hit.
// Points are armed in-process (ArmFaultPoint, ArmCrashPoint) or across
// processes, for mpirun and crash tests, by environment variables read at
// first use:
//   DCP_FAULT_POINTS="name[@rank],..."        errors
//   DCP_CRASH_POINTS="name[#hit][@rank],..."  crashes (hit counts from 1)
//
// Points in dcp (see docs/format.md): put.validate, put.before_ingest,
// put.after_ingest, put.before_publish, publish.after_manifest,
// delete.after_unlink, gc.after_drop, gc.after_rewrite, gc.after_range_delete,
// remove.before_publish.
//
// Error points of loads: get.read_chunk (before each chunk record is fetched).
//
// In-process tests of the engine that need a rank store operation to fail
// (an I/O error, a short ingestion, a crash) use storage::FaultBackend
// (engine/store/fault_rank_store.h) instead: it is configured per test, not
// process-wide. These points remain for protocol steps and for tests that
// kill real processes (tests/crash, tests/mpi) or go through the facade.
//
// The check is one relaxed atomic load when nothing is armed. Builds without
// the tests (-DDCP_FAULT_INJECTION=OFF: installs, the pip package) compile
// the points out: CheckFaultPoint is then an inline OK, and the variables
// are never read.
// Thread safety: all functions are thread-safe.

#ifndef DCP_ENGINE_BASE_FAULT_INJECTION_H_
#define DCP_ENGINE_BASE_FAULT_INJECTION_H_

#include <string>
#include <string_view>

#include "dcp/status.h"

namespace dcp::base {

// Every rank if rank < 0.
void ArmFaultPoint(std::string name, int rank = -1);
// Kill the process at the `hit`-th time the point is reached (by that rank).
void ArmCrashPoint(std::string name, int hit = 1, int rank = -1);
void DisarmAllFaultPoints();

#if DCP_FAULT_INJECTION
Status CheckFaultPoint(std::string_view name, int rank);
#else
inline Status CheckFaultPoint(std::string_view /*name*/, int /*rank*/) { return Status::OK(); }
#endif

}  // namespace dcp::base

#endif  // DCP_ENGINE_BASE_FAULT_INJECTION_H_
