// Copyright (c) dcp authors.

#include "engine/store/gc.h"

#include <vector>

#include "engine/base/fault_injection.h"
#include "engine/codec/frame.h"
#include "engine/store/key_layout.h"

namespace dcp::storage {
namespace {

uint64_t TableBytes(const std::vector<RankStore::TableFile>& files) {
  uint64_t n = 0;
  for (const auto& f : files) n += f.size;
  return n;
}

// What a collection finds in one generation.
struct GenerationPlan {
  uint64_t generation = 0;
  uint64_t bytes = 0;         // its table bytes
  bool referenced = false;    // any record still referenced
  bool in_level0 = false;     // left behind by a collection killed before its compaction
  uint64_t dead_bytes = 0;    // referenced generations: table bytes beyond the live records'
  std::vector<std::string> dead;  // referenced generations: records no step references
  std::vector<std::pair<std::string, std::string>> rewritten;  // their index records, without the dead
};

// Classifies every generation of `store` against `live` (reads its table
// metadata and the index records of partly referenced generations).
Status PlanCollection(const RankStore& store, const LiveRecords& live, std::vector<GenerationPlan>* plans,
                      uint64_t* table_bytes) {
  DCP_ASSIGN_OR_RETURN(auto files, store.TableFiles());
  *table_bytes = TableBytes(files);
  std::map<uint64_t, GenerationPlan> by_generation;
  const std::string what = "rank store " + std::to_string(store.rank()) + " at '" + store.path() + "'";
  for (const auto& f : files) {
    const auto first = GenerationOfKey(f.smallest_key);
    const auto last = GenerationOfKey(f.largest_key);
    if (!first || !last || *first != *last) {
      return Status::DataLoss(what + ": table file " + f.name + " does not hold exactly one generation");
    }
    GenerationPlan& p = by_generation[*first];
    p.generation = *first;
    p.bytes += f.size;
    if (f.level == 0) p.in_level0 = true;
  }
  for (auto& [g, p] : by_generation) {
    auto it = live.find(g);
    p.referenced = it != live.end();
    if (!p.referenced) continue;
    // Partly referenced: the put's index lists what it wrote.
    const auto [begin, end] = GenerationRange(g);
    const std::string index_begin = GenerationIndexKey(g, 0).substr(0, 19);  // "<gen>/x/"
    DCP_RETURN_IF_ERROR(store.Scan(index_begin, end, [&](std::string_view key, std::string_view value) -> Status {
      DCP_ASSIGN_OR_RETURN(codec::Unframed u,
                           codec::UnframeBlob(value, kGenerationIndexMagic, what + ": index '" + std::string(key) + "'"));
      std::string kept;
      size_t pos = 0;
      while (pos < u.payload.size()) {
        size_t nl = u.payload.find('\n', pos);
        if (nl == std::string_view::npos) nl = u.payload.size();
        const std::string record(u.payload.substr(pos, nl - pos));
        if (it->second.count(record) != 0) {
          kept += record;
          kept += '\n';
        } else {
          p.dead.push_back(record);
        }
        pos = nl + 1;
      }
      if (kept.size() != u.payload.size()) {
        p.rewritten.emplace_back(std::string(key), codec::FrameBlob(kGenerationIndexMagic, 1, kept));
      }
      return Status::OK();
    }));
    if (!p.dead.empty()) {
      uint64_t live_bytes = 0;
      for (const auto& [key, size] : it->second) live_bytes += size;
      p.dead_bytes = p.bytes > live_bytes ? p.bytes - live_bytes : 0;
    }
  }
  plans->clear();
  for (auto& [g, p] : by_generation) plans->push_back(std::move(p));
  return Status::OK();
}

// Worth compacting (rewriting the live bytes) only once enough is dead.
bool WorthCompacting(const GenerationPlan& p, double compact_dead_fraction) {
  return !p.dead.empty() &&
         static_cast<double>(p.dead_bytes) >= compact_dead_fraction * static_cast<double>(p.bytes);
}

}  // namespace

Status CollectRankStore(RankStore* store, const LiveRecords& live, double compact_dead_fraction,
                        RankGcStats* stats) {
  std::vector<GenerationPlan> plans;
  uint64_t before = 0;
  DCP_RETURN_IF_ERROR(PlanCollection(*store, live, &plans, &before));
  stats->bytes_before += before;
  for (const GenerationPlan& p : plans) {
    if (!p.referenced) {
      DCP_RETURN_IF_ERROR(store->DropGeneration(p.generation));
      ++stats->generations_removed;
      DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_drop", static_cast<int>(store->rank())));
      continue;
    }
    if (!WorthCompacting(p, compact_dead_fraction)) {
      if (!p.dead.empty()) stats->bytes_pending += p.dead_bytes;
      if (p.in_level0) DCP_RETURN_IF_ERROR(store->CompactGeneration(p.generation));
      continue;
    }
    DCP_RETURN_IF_ERROR(store->RewriteGeneration(p.generation, p.dead, p.rewritten));
    stats->records_removed += p.dead.size();
    DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_rewrite", static_cast<int>(store->rank())));
  }
  DCP_ASSIGN_OR_RETURN(auto files, store->TableFiles());
  stats->bytes_after += TableBytes(files);
  return Status::OK();
}

Status SurveyRankStore(const RankStore& store, const LiveRecords& live, double compact_dead_fraction,
                       RankGcSurvey* survey) {
  std::vector<GenerationPlan> plans;
  uint64_t bytes = 0;
  DCP_RETURN_IF_ERROR(PlanCollection(store, live, &plans, &bytes));
  survey->table_bytes += bytes;
  for (const GenerationPlan& p : plans) {
    if (!p.referenced) {
      ++survey->unreferenced_generations;
      survey->unreferenced_bytes += p.bytes;
    } else if (!p.dead.empty()) {
      ++survey->partial_generations;
      survey->dead_records += p.dead.size();
      (WorthCompacting(p, compact_dead_fraction) ? survey->compacted_bytes : survey->pending_bytes) += p.dead_bytes;
    }
  }
  return Status::OK();
}

}  // namespace dcp::storage
