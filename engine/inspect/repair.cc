// Copyright (c) dcp authors.

#include "engine/inspect/repair.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/base/file.h"
#include "engine/inspect/render.h"
#include "engine/inspect/verify.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/store/store_lock.h"

namespace dcp::inspect {

namespace {

// Verifies every step and marks or clears it. REQUIRES: the writer lock.
Status CheckSteps(const std::string& root, const RepairOptions& options, std::vector<StepCheck>* out) {
  DCP_ASSIGN_OR_RETURN(auto reader, StoreReader::Open(root, {}, options.backend));
  VerifyOptions vo;
  vo.threads = options.threads;
  DCP_ASSIGN_OR_RETURN(VerifyReport report, Verify(reader.get(), vo));
  std::map<uint64_t, std::vector<const Problem*>> by_step;
  for (const Problem& p : report.problems) by_step[p.step].push_back(&p);
  const std::string when = TimeString(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  for (uint64_t step : report.steps) {
    StepCheck c;
    c.step = step;
    DCP_ASSIGN_OR_RETURN(std::optional<std::string> before, storage::StepDamage(root, step));
    c.was_damaged = before.has_value();
    const auto it = by_step.find(step);
    if (it != by_step.end()) {
      const Problem& first = *it->second.front();
      c.problems = it->second.size();
      c.damaged = true;
      c.reason = fmt::format("dcp-inspect repair, {} UTC: {} problem{}, first: {}{}{}", when, c.problems,
                             c.problems == 1 ? "" : "s", first.key.empty() ? "" : "'" + first.key + "' ",
                             first.offset ? "at " + ShapeToString(*first.offset) + ": " : "", first.message);
      DCP_RETURN_IF_ERROR(storage::MarkStepDamaged(root, step, c.reason));
    } else if (c.was_damaged) {
      DCP_RETURN_IF_ERROR(storage::ClearStepDamaged(root, step));
    }
    out->push_back(std::move(c));
  }
  return Status::OK();
}

}  // namespace

Result<RepairSummary> RepairStore(const std::string& root, const RepairOptions& options) {
  DCP_RETURN_IF_ERROR(storage::CheckStoreRoot(root));
  DCP_ASSIGN_OR_RETURN(auto lock, storage::WriterLock::Acquire(root));
  RepairSummary s;
  s.root = root;
  auto names = base::ListDir(storage::RanksDir(root));
  if (!names.ok() && !names.status().IsNotFound()) return names.status();
  for (const std::string& n : names.ok() ? *names : std::vector<std::string>{}) {
    const auto rank = storage::ParseRankStoreName(n);
    if (!rank) continue;
    RankRepair r;
    r.rank = *rank;
    r.path = storage::RankStorePath(root, *rank);
    auto report = options.backend->Repair(r.path, *rank);
    if (report.ok()) r.report = std::move(report).value();
    else r.status = report.status();
    s.ranks.push_back(std::move(r));
  }
  std::sort(s.ranks.begin(), s.ranks.end(), [](const RankRepair& a, const RankRepair& b) { return a.rank < b.rank; });
  if (options.check_steps) {
    s.steps_status = CheckSteps(root, options, &s.steps);
    s.steps_checked = s.steps_status.ok();
  }
  return s;
}

std::string RenderRepairText(const RepairSummary& s) {
  std::string out;
  size_t repaired = 0, failed = 0;
  for (const auto& r : s.ranks) {
    if (!r.status.ok()) {
      ++failed;
      out += fmt::format("rank store {:5}  FAILED: {}\n", r.rank, r.status.ToString());
    } else if (!r.report.problem.empty()) {
      ++repaired;
      out += fmt::format("rank store {:5}  repaired: {}\n                   {}; {} table files in use, {} set aside "
                         "in {}, {} back from quarantine\n",
                         r.rank, r.report.problem, r.report.action, r.report.tables_recovered,
                         r.report.files_set_aside, storage::RankLostDir(r.path), r.report.tables_restored);
    } else if (r.report.tables_restored > 0) {
      out += fmt::format("rank store {:5}  consistent; {} table files back from quarantine\n", r.rank,
                         r.report.tables_restored);
    }
  }
  out += fmt::format("{} rank stores: {} repaired, {} failed, {} consistent.\n", s.ranks.size(), repaired, failed,
                     s.ranks.size() - repaired - failed);
  if (!s.steps_status.ok()) return out + "steps not checked: " + s.steps_status.ToString() + "\n";
  if (!s.steps_checked) return out;
  size_t damaged = 0, cleared = 0;
  for (const StepCheck& c : s.steps) {
    if (c.damaged) {
      ++damaged;
      out += fmt::format("step {:>10}  DAMAGED: {}\n", c.step, c.reason);
    } else if (c.was_damaged) {
      ++cleared;
      out += fmt::format("step {:>10}  intact again: damaged mark cleared\n", c.step);
    }
  }
  out += fmt::format("{} steps verified: {} intact, {} damaged (loads refuse them; delete them or restore their "
                     "files and repair again){}.\n",
                     s.steps.size(), s.steps.size() - damaged, damaged,
                     cleared ? fmt::format(", {} cleared", cleared) : "");
  return out;
}

std::string RenderRepairJson(const RepairSummary& s) {
  nlohmann::json j;
  j["root"] = s.root;
  j["ok"] = s.ok();
  j["ranks"] = nlohmann::json::array();
  for (const auto& r : s.ranks) {
    j["ranks"].push_back({{"rank", r.rank},
                          {"path", r.path},
                          {"ok", r.status.ok()},
                          {"error", r.status.ok() ? "" : r.status.ToString()},
                          {"problem", r.report.problem},
                          {"action", r.report.action},
                          {"tables_recovered", r.report.tables_recovered},
                          {"tables_restored", r.report.tables_restored},
                          {"files_set_aside", r.report.files_set_aside}});
  }
  j["steps_checked"] = s.steps_checked;
  j["steps_error"] = s.steps_status.ok() ? nlohmann::json(nullptr) : nlohmann::json(s.steps_status.ToString());
  j["steps"] = nlohmann::json::array();
  for (const StepCheck& c : s.steps) {
    j["steps"].push_back({{"step", c.step},
                          {"state", c.damaged ? "damaged" : "intact"},
                          {"was_damaged", c.was_damaged},
                          {"problems", c.problems},
                          {"reason", c.reason}});
  }
  return j.dump(2) + "\n";
}

}  // namespace dcp::inspect
