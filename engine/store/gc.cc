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

}  // namespace

Status CollectRankStore(RankStore* store, const LiveRecords& live, double compact_dead_fraction,
                        RankGcStats* stats) {
  DCP_ASSIGN_OR_RETURN(auto files, store->TableFiles());
  stats->bytes_before += TableBytes(files);
  std::set<uint64_t> generations, in_level0;
  std::map<uint64_t, uint64_t> generation_bytes;
  const std::string what = "rank store " + std::to_string(store->rank()) + " at '" + store->path() + "'";
  for (const auto& f : files) {
    const auto first = GenerationOfKey(f.smallest_key);
    const auto last = GenerationOfKey(f.largest_key);
    if (!first || !last || *first != *last) {
      return Status::DataLoss(what + ": table file " + f.name + " does not hold exactly one generation");
    }
    generations.insert(*first);
    generation_bytes[*first] += f.size;
    // Level 0 holds what a collection killed before its compaction left
    // behind (recovered from the log): finish that compaction.
    if (f.level == 0) in_level0.insert(*first);
  }
  for (uint64_t g : generations) {
    auto it = live.find(g);
    if (it == live.end()) {
      DCP_RETURN_IF_ERROR(store->DropGeneration(g));
      ++stats->generations_removed;
      DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_drop", static_cast<int>(store->rank())));
      continue;
    }
    // Partly referenced: the put's index lists what it wrote.
    const auto [begin, end] = GenerationRange(g);
    const std::string index_begin = GenerationIndexKey(g, 0).substr(0, 19);  // "<gen>/x/"
    std::vector<std::string> dead;
    std::vector<std::pair<std::string, std::string>> rewritten;
    DCP_RETURN_IF_ERROR(store->Scan(index_begin, end, [&](std::string_view key, std::string_view value) -> Status {
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
          dead.push_back(record);
        }
        pos = nl + 1;
      }
      if (kept.size() != u.payload.size()) {
        rewritten.emplace_back(std::string(key), codec::FrameBlob(kGenerationIndexMagic, 1, kept));
      }
      return Status::OK();
    }));
    // Worth compacting (rewriting the live bytes) only once enough is dead.
    if (!dead.empty()) {
      uint64_t live_bytes = 0;
      for (const auto& [key, size] : it->second) live_bytes += size;
      const uint64_t bytes = generation_bytes[g];
      const uint64_t dead_bytes = bytes > live_bytes ? bytes - live_bytes : 0;
      if (static_cast<double>(dead_bytes) < compact_dead_fraction * static_cast<double>(bytes)) {
        stats->bytes_pending += dead_bytes;
        dead.clear();
      }
    }
    if (dead.empty()) {
      if (in_level0.count(g)) DCP_RETURN_IF_ERROR(store->CompactGeneration(g));
      continue;
    }
    DCP_RETURN_IF_ERROR(store->RewriteGeneration(g, dead, rewritten));
    stats->records_removed += dead.size();
    DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_rewrite", static_cast<int>(store->rank())));
  }
  DCP_ASSIGN_OR_RETURN(files, store->TableFiles());
  stats->bytes_after += TableBytes(files);
  return Status::OK();
}

}  // namespace dcp::storage
