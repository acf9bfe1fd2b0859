// Copyright (c) dcp authors.

#include "engine/inspect/repair.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "engine/base/file.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/store/store_lock.h"

namespace dcp::inspect {

Result<RepairSummary> RepairStore(const std::string& root) {
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
    auto report = storage::RankStore::Repair(r.path, *rank);
    if (report.ok()) r.report = std::move(report).value();
    else r.status = report.status();
    s.ranks.push_back(std::move(r));
  }
  std::sort(s.ranks.begin(), s.ranks.end(), [](const RankRepair& a, const RankRepair& b) { return a.rank < b.rank; });
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
  out += fmt::format("{} rank stores: {} repaired, {} failed, {} consistent.", s.ranks.size(), repaired, failed,
                     s.ranks.size() - repaired - failed);
  if (repaired > 0) out += " Steps that lost records fail to load: `dcp-inspect ROOT verify` names them.";
  return out + "\n";
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
  return j.dump(2) + "\n";
}

}  // namespace dcp::inspect
