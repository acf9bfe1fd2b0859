// Copyright (c) dcp authors.
//
// Repair: make every rank store of a store root consistent again, deleting
// nothing (storage::RankStore::Repair for each: CURRENT re-pointed, or the
// database rebuilt from its table files; what cannot be used moves to the
// rank store's lost/). Steps whose records were in table files that are gone
// or unreadable stay damaged: `verify` names them afterwards.
//
// Takes the store's writer lock, so it never runs beside a writer.
// Thread safety: one call at a time per store.

#ifndef DCP_ENGINE_INSPECT_REPAIR_H_
#define DCP_ENGINE_INSPECT_REPAIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "engine/store/rank_store.h"

namespace dcp::inspect {

struct RankRepair {
  uint32_t rank = 0;
  std::string path;
  storage::RankStore::RepairReport report;  // report.problem empty: it was consistent
  Status status;                            // the repair's own failure, if any
};

struct RepairSummary {
  std::string root;
  std::vector<RankRepair> ranks;  // every rank store under ranks/, by rank
  bool ok() const {
    for (const auto& r : ranks) {
      if (!r.status.ok()) return false;
    }
    return true;
  }
};

// NotFound / FailedPrecondition if `root` is not a store; FailedPrecondition
// naming the holder if a writer holds the store. Per-rank failures are in the
// summary, not the status.
Result<RepairSummary> RepairStore(const std::string& root);

std::string RenderRepairText(const RepairSummary& s);
std::string RenderRepairJson(const RepairSummary& s);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_REPAIR_H_
