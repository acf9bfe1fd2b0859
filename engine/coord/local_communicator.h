// Copyright (c) dcp authors.
//
// In-process communicator groups: N threads act as N ranks (for tests and
// single-process tools). NewLocalCommunicators / NewSelfCommunicator in
// dcp/communicator.h are implemented here.
//
// Each collective is a rendezvous of all ranks of the group under one mutex:
// every rank deposits its contribution, waits for the others, reads what it
// needs, and waits again before the slots are reused. Simple, not fast.

#ifndef DCP_ENGINE_COORD_LOCAL_COMMUNICATOR_H_
#define DCP_ENGINE_COORD_LOCAL_COMMUNICATOR_H_

#include "dcp/communicator.h"

#endif  // DCP_ENGINE_COORD_LOCAL_COMMUNICATOR_H_
