// Copyright (c) dcp authors.

#include "engine/inspect/gc.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/base/file.h"
#include "engine/inspect/render.h"
#include "engine/query/live_records.h"
#include "engine/store/key_layout.h"
#include "engine/store/rank_store.h"

namespace dcp::inspect {
namespace {

void Add(const storage::RankGcSurvey& from, storage::RankGcSurvey* into) {
  into->table_bytes += from.table_bytes;
  into->unreferenced_generations += from.unreferenced_generations;
  into->unreferenced_bytes += from.unreferenced_bytes;
  into->partial_generations += from.partial_generations;
  into->dead_records += from.dead_records;
  into->compacted_bytes += from.compacted_bytes;
  into->pending_bytes += from.pending_bytes;
}

}  // namespace

Result<GarbageSurvey> SurveyGarbage(StoreReader* reader, double compact_dead_fraction) {
  GarbageSurvey out;
  out.compact_dead_fraction = compact_dead_fraction;
  DCP_ASSIGN_OR_RETURN(const std::vector<uint64_t> steps, reader->Steps());
  std::map<uint32_t, storage::LiveRecords> live;
  for (uint64_t step : steps) {
    DCP_ASSIGN_OR_RETURN(auto loaded, reader->Load(step));
    if (Status s = loaded->FirstProblem(); !s.ok()) {
      return s.Annotate("step " + std::to_string(step) + ": a collection would refuse to run");
    }
    query::AddLiveRecords(loaded->manifest(), nullptr, &live);
    ++out.steps;
  }
  DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(storage::RanksDir(reader->root())));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const auto rank = storage::ParseRankStoreName(name);
    if (!rank) continue;
    RankGarbage g;
    g.rank = *rank;
    g.path = storage::RankStorePath(reader->root(), *rank);
    auto store = reader->backend()->Open(g.path, *rank, storage::RankStore::Mode::kRead, {});
    Status s = store.status();
    if (s.ok()) s = storage::SurveyRankStore(**store, live[*rank], compact_dead_fraction, &g.survey);
    if (!s.ok()) g.problem = s.ToString();
    Add(g.survey, &out.total);
    out.ranks.push_back(std::move(g));
  }
  return out;
}

std::string RenderGarbageTable(const GarbageSurvey& s) {
  std::string out = fmt::format("{:>10}  {:>12}  {:>22}  {:>22}  {:>12}  {:>12}\n", "rank store", "table bytes",
                                "unreferenced puts", "partly shared puts", "compacted", "pending");
  auto row = [&](const std::string& name, const storage::RankGcSurvey& g) {
    out += fmt::format("{:>10}  {:>12}  {:>22}  {:>22}  {:>12}  {:>12}\n", name, HumanBytes(g.table_bytes),
                       fmt::format("{} ({})", g.unreferenced_generations, HumanBytes(g.unreferenced_bytes)),
                       fmt::format("{} ({} dead records)", g.partial_generations, g.dead_records),
                       HumanBytes(g.compacted_bytes), HumanBytes(g.pending_bytes));
  };
  for (const RankGarbage& r : s.ranks) {
    if (!r.problem.empty()) {
      out += fmt::format("{:>10}  cannot survey: {}\n", r.rank, r.problem);
      continue;
    }
    row(std::to_string(r.rank), r.survey);
  }
  row("all", s.total);
  const uint64_t now = s.total.unreferenced_bytes + s.total.compacted_bytes;
  out += fmt::format(
      "against the references of {} committed steps: the next collection (compact_dead_fraction {}) frees about {};\n"
      "{} of dead records stay pending in puts later steps still share (less than {} of each put is dead);\n"
      "CollectGarbage with GcOptions::compact_dead_fraction = 0 frees them too.\n",
      s.steps, s.compact_dead_fraction, HumanBytes(now), HumanBytes(s.total.pending_bytes),
      s.compact_dead_fraction);
  return out;
}

std::string RenderGarbageJson(const GarbageSurvey& s) {
  auto survey = [](const storage::RankGcSurvey& g) {
    return nlohmann::json{{"table_bytes", g.table_bytes},
                          {"unreferenced_puts", g.unreferenced_generations},
                          {"unreferenced_bytes", g.unreferenced_bytes},
                          {"partly_shared_puts", g.partial_generations},
                          {"dead_records", g.dead_records},
                          {"compacted_bytes", g.compacted_bytes},
                          {"pending_bytes", g.pending_bytes}};
  };
  nlohmann::json j;
  j["steps"] = s.steps;
  j["compact_dead_fraction"] = s.compact_dead_fraction;
  j["total"] = survey(s.total);
  j["ranks"] = nlohmann::json::array();
  for (const RankGarbage& r : s.ranks) {
    nlohmann::json e = survey(r.survey);
    e["rank"] = r.rank;
    e["path"] = r.path;
    e["problem"] = r.problem;
    j["ranks"].push_back(std::move(e));
  }
  return j.dump(2) + "\n";
}

}  // namespace dcp::inspect
