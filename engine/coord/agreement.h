// Copyright (c) dcp authors.
//
// Agreeing on an outcome: every rank contributes its local Status and every
// rank gets the same answer back. This is how dcp keeps "a rank that fails
// makes all fail, and none hangs": a rank never leaves a collective sequence
// early on its own; it reports its error here, and all ranks return together.

#ifndef DCP_ENGINE_COORD_AGREEMENT_H_
#define DCP_ENGINE_COORD_AGREEMENT_H_

#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/status.h"

namespace dcp::coord {

// Collective. OK if every rank passed OK. Otherwise the status of the lowest
// failing rank; its message is prefixed with "rank <r>: " and says how many
// ranks failed if more than one did, unless every rank reported the identical
// status (a globally computed error), which is returned as is. A communicator
// failure is returned as is.
Status AgreeOnStatus(Communicator* comm, const Status& local);

// The agreed outcome of per-rank statuses (element r is rank r's), by the rule
// above. Pure: every rank computes the same result from the same vector.
Status CombineStatuses(const std::vector<Status>& statuses);

// Wire form of a Status (for protocols that piggy-back it on other messages).
std::string EncodeStatus(const Status& s);
// InvalidArgument-free: a malformed encoding decodes to an Internal status.
Status DecodeStatus(std::string_view bytes);

}  // namespace dcp::coord

#endif  // DCP_ENGINE_COORD_AGREEMENT_H_
