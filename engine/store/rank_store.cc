// Copyright (c) dcp authors.

#include "engine/store/rank_store.h"

#include <algorithm>

#include "engine/store/key_layout.h"

namespace dcp::storage {

Result<std::unique_ptr<RankStore>> RankStore::Open(const std::string& path, uint32_t rank, Mode mode,
                                                   const RankStoreOptions& options) {
  return DefaultBackend()->Open(path, rank, mode, options);
}

Status RankStore::CheckMetadata(const std::string& path, uint32_t rank) {
  return DefaultBackend()->CheckMetadata(path, rank);
}

Result<RankStore::RepairReport> RankStore::Repair(const std::string& path, uint32_t rank) {
  return DefaultBackend()->Repair(path, rank);
}

std::string RankStore::What() const { return "rank store " + std::to_string(rank_) + " at '" + path_ + "'"; }

Status RankStore::ReadRun(const std::vector<std::string>& keys, uint64_t /*readahead*/, const RunFn& fn) const {
  PinnedValue value;
  for (size_t i = 0; i < keys.size(); ++i) {
    const Status s = Get(keys[i], &value);
    DCP_RETURN_IF_ERROR(fn(i, s, s.ok() ? value.view() : std::string_view()));
  }
  return Status::OK();
}

Result<uint64_t> RankStore::NewestGeneration() const {
  DCP_ASSIGN_OR_RETURN(auto files, TableFiles());
  uint64_t newest = 0;
  for (const auto& f : files) {
    if (auto g = GenerationOfKey(f.largest_key)) newest = std::max(newest, *g);
  }
  return newest;
}

}  // namespace dcp::storage
