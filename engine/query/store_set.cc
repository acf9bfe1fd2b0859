// Copyright (c) dcp authors.

#include "engine/query/store_set.h"

#include "engine/store/key_layout.h"

namespace dcp::query {

StoreSet::StoreSet(std::string root, storage::RankStore* own, storage::RankStoreBackend* backend)
    : root_(std::move(root)), own_(own), backend_(backend) {}
StoreSet::~StoreSet() = default;

std::string StoreSet::Where(uint32_t rank) const { return " at '" + storage::RankStorePath(root_, rank) + "'"; }

Result<StoreSet::Entry*> StoreSet::Open(uint32_t rank) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = entries_[rank];
  if (!slot) slot = std::make_unique<Entry>();
  return slot.get();
}

Result<storage::RankStore*> StoreSet::Instance(uint32_t rank, uint64_t generation, Entry** entry) {
  *entry = nullptr;
  if (own_ != nullptr && own_->rank() == rank) return own_;
  DCP_ASSIGN_OR_RETURN(Entry * e, Open(rank));
  std::lock_guard<std::mutex> lock(e->mu);
  if (!e->store) {
    DCP_ASSIGN_OR_RETURN(e->store, backend_->Open(storage::RankStorePath(root_, rank), rank,
                                                   storage::RankStore::Mode::kRead, {}));
    e->seen_generation = generation;
  } else if (e->seen_generation < generation) {
    DCP_RETURN_IF_ERROR(e->store->CatchUp());
    e->seen_generation = generation;
  }
  *entry = e;
  return e->store.get();
}

Status StoreSet::ReadRun(uint32_t rank, uint64_t generation, const std::vector<std::string>& keys, uint64_t readahead,
                         const storage::RankStore::RunFn& fn) {
  Entry* e = nullptr;
  auto instance = Instance(rank, generation, &e);
  if (!instance.ok()) {  // each record fails as Get's would
    for (size_t i = 0; i < keys.size(); ++i) DCP_RETURN_IF_ERROR(fn(i, instance.status(), {}));
    return Status::OK();
  }
  storage::RankStore* store = *instance;
  storage::PinnedValue again;
  return store->ReadRun(keys, readahead, [&](size_t i, const Status& s, std::string_view value) {
    if (!s.IsNotFound() || e == nullptr) return fn(i, s, value);
    const Status retried = Get(rank, generation, keys[i], &again);
    return fn(i, retried, retried.ok() ? again.view() : std::string_view());
  });
}

Status StoreSet::Get(uint32_t rank, uint64_t generation, std::string_view key, storage::PinnedValue* value,
                     bool fill_cache) {
  Entry* e = nullptr;
  DCP_ASSIGN_OR_RETURN(storage::RankStore * store, Instance(rank, generation, &e));
  Status s = store->Get(key, value, fill_cache);
  if (!s.IsNotFound() || e == nullptr) return s;
  // One catch-up per generation on a miss: after it, this instance has seen
  // everything published up to `generation`, so further misses of that
  // generation are real (a catch-up costs a directory scan and reading the
  // writer's logs: ~1.5 ms each made verify of a store with 40k lost records
  // take a minute).
  bool retry = false;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->miss_generation < generation + 1) {
      DCP_RETURN_IF_ERROR(e->store->CatchUp());
      e->miss_generation = generation + 1;
      retry = true;
    }
  }
  if (retry) {
    s = store->Get(key, value, fill_cache);
    if (!s.IsNotFound()) return s;
  }
  // Missing although a manifest names it. If the rank store is damaged (a
  // table file its metadata lists is gone), its secondary instance sees none
  // of its records; a salvage instance serves the table files that are there,
  // so that only the records of the lost file are missing.
  storage::RankStore* salvage = nullptr;
  Status damage;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (!e->diagnosed) {
      e->diagnosed = true;
      e->damage = backend_->CheckMetadata(storage::RankStorePath(root_, rank), rank);
      if (!e->damage.ok()) {
        auto opened =
            backend_->Open(storage::RankStorePath(root_, rank), rank, storage::RankStore::Mode::kSalvage, {});
        if (opened.ok()) e->salvage = std::move(opened).value();
      }
    }
    salvage = e->salvage.get();
    damage = e->damage;
  }
  if (damage.ok()) return s;
  if (salvage != nullptr) {
    Status again = salvage->Get(key, value, fill_cache);
    if (again.ok()) return again;
  }
  return Status::DataLoss("record '" + std::string(key) + "' is lost: " + damage.message());
}

}  // namespace dcp::query
