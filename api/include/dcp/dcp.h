// Copyright (c) dcp authors.
//
// Umbrella header: the whole public C++ API of dcp.

#ifndef DCP_DCP_H_
#define DCP_DCP_H_

#include "dcp/communicator.h"
#include "dcp/factory.h"
#include "dcp/metadata.h"
#include "dcp/mpi.h"
#include "dcp/optimizer.h"
#include "dcp/options.h"
#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/store.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"
#include "dcp/value.h"

#endif  // DCP_DCP_H_
