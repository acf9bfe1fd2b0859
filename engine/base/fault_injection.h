// Copyright (c) dcp authors.
//
// Named fault points for failure-path tests.
//
// Code on a failure-prone path calls CheckFaultPoint("put.write_records",
// rank). When that name is armed (for that rank, or for every rank) the call
// returns an injected IOError; otherwise OK. Points are armed in-process with
// ArmFaultPoint, or across processes (mpirun) with the environment variable
// DCP_FAULT_POINTS="name[@rank],name2,..." read at first use.
//
// The check is one relaxed atomic load when nothing is armed.
// Thread safety: all functions are thread-safe.

#ifndef DCP_ENGINE_BASE_FAULT_INJECTION_H_
#define DCP_ENGINE_BASE_FAULT_INJECTION_H_

#include <string>
#include <string_view>

#include "dcp/status.h"

namespace dcp::base {

// Every rank if rank < 0.
void ArmFaultPoint(std::string name, int rank = -1);
void DisarmAllFaultPoints();

Status CheckFaultPoint(std::string_view name, int rank);

}  // namespace dcp::base

#endif  // DCP_ENGINE_BASE_FAULT_INJECTION_H_
