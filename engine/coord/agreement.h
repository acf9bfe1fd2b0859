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
// status (a globally computed error), which is returned as is. A failed
// agreement, and a communicator failure, is annotated with `what` where it
// is not empty. `call` names the API call whose first round this is (below).
Status AgreeOnStatus(Communicator* comm, const Status& local, std::string_view what = {},
                     std::string_view call = {});

// Collective, one all-gather: AgreeOnStatus with a payload from every rank
// riding along (a replica signature, rank 0's start of a step).
// (*payloads)[r] is rank r's `payload`, also when the ranks' statuses
// failed (a failed rank may have sent an empty one), so that a caller can
// name the failure the same way on every rank (by rank 0's step); it is empty
// after a communicator failure or a call mismatch (below). Spares a round
// wherever a status agreement is followed by an all-gather.
//
// Two different calls at once never pass for each other where the first
// round of each is an agreement: a rank in AgreeOnCall while another is in
// AgreeOnStatus or AgreeAndGather, or two ranks in status agreements named by
// different `call`s (the name of the API call whose first round it is: "Put",
// "PutAsync"), fail every rank with InvalidArgument naming the calls, the
// same message on every rank (never annotated with `what`: the other ranks'
// calls would annotate it otherwise), instead of going on into different
// collectives. A status agreement without a name (a later round) meets only
// its own call's.
Status AgreeAndGather(Communicator* comm, const Status& local, std::string_view payload,
                      std::vector<std::string>* payloads, std::string_view what = {}, std::string_view call = {});

// Collective, one all-gather: AgreeOnStatus, and that every rank made the
// same call. `call` is this rank's call in words with the arguments that
// must agree ("DeleteStep(3)"). A failed agreement is returned first (a rank
// whose arguments could not be converted calls with placeholders; its error
// says what is wrong), annotated with `what` where every rank's call is the
// same (`what` may name the arguments). Then, if a rank's call differs from
// rank 0's, every rank fails with InvalidArgument naming the first such rank
// and both calls, instead of acting on rank 0's arguments alone or running
// collectives the others do not.
Status AgreeOnCall(Communicator* comm, const Status& local, std::string_view call, std::string_view what);

// The agreed outcome of per-rank statuses (element r is rank r's), by the rule
// above. Pure: every rank computes the same result from the same vector.
Status CombineStatuses(const std::vector<Status>& statuses);

// Collective. What rank `root` did for every rank (read a manifest, deleted
// steps): its status and, if that is OK, its payload, in one broadcast of a
// wire::EncodeResult message. `on_root` is ignored on the other ranks. Every
// rank returns the same.
Result<std::string> BroadcastResult(Communicator* comm, int root, Result<std::string> on_root);

}  // namespace dcp::coord

#endif  // DCP_ENGINE_COORD_AGREEMENT_H_
