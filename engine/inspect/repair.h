// Copyright (c) dcp authors.
//
// Repair: make every rank store of a store root consistent again, deleting
// nothing (storage::RankStore::Repair for each: CURRENT re-pointed, or the
// database rebuilt from its table files; what cannot be used moves to the
// rank store's lost/); then verifies every committed step (every record read
// and checked, as `verify`) and records the outcome as the step's state:
// a step that lost records is marked damaged (storage::MarkStepDamaged, the
// first problem as the reason; loads refuse it, `ls` shows it), a marked
// step that verifies whole again is cleared. Intact steps stay loadable.
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

// A committed step as the repair left it.
struct StepCheck {
  uint64_t step = 0;
  bool damaged = false;      // marked damaged now
  bool was_damaged = false;  // was marked before the repair
  uint64_t problems = 0;     // what verify found (records missing, corrupt, ...)
  std::string reason;        // the mark's text (damaged steps)
};

struct RepairOptions {
  // Verify every step and record its state (reads every record once).
  // Default: true
  bool check_steps = true;
  // Verify's threads (0: this process's share of the cores).
  // Default: 0
  int threads = 0;
  // Repairs and reads the rank stores; must outlive the call.
  // Default: storage::DefaultBackend() (RocksDB)
  storage::RankStoreBackend* backend = storage::DefaultBackend();
};

struct RepairSummary {
  std::string root;
  std::vector<RankRepair> ranks;  // every rank store under ranks/, by rank
  std::vector<StepCheck> steps;   // every committed step, ascending (if checked)
  bool steps_checked = false;
  Status steps_status;            // why the steps could not be checked, if so
  bool ok() const {
    for (const auto& r : ranks) {
      if (!r.status.ok()) return false;
    }
    return steps_status.ok();
  }
};

// NotFound / FailedPrecondition if `root` is not a store; FailedPrecondition
// naming the holder if a writer holds the store. Per-rank failures are in the
// summary, not the status.
Result<RepairSummary> RepairStore(const std::string& root, const RepairOptions& options = {});

std::string RenderRepairText(const RepairSummary& s);
std::string RenderRepairJson(const RepairSummary& s);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_REPAIR_H_
