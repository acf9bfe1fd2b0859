// Copyright (c) dcp authors.

#include "engine/query/store_set.h"

#include "engine/store/key_layout.h"

namespace dcp::query {

StoreSet::StoreSet(std::string root, storage::RankStore* own) : root_(std::move(root)), own_(own) {}
StoreSet::~StoreSet() = default;

Result<StoreSet::Entry*> StoreSet::Open(uint32_t rank) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = entries_[rank];
  if (!slot) slot = std::make_unique<Entry>();
  return slot.get();
}

Status StoreSet::Get(uint32_t rank, uint64_t generation, std::string_view key, storage::PinnedValue* value,
                     storage::RankStore::BlockCheck check) {
  if (own_ != nullptr && own_->rank() == rank) return own_->Get(key, value, check);
  DCP_ASSIGN_OR_RETURN(Entry * e, Open(rank));
  storage::RankStore* store = nullptr;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (!e->store) {
      DCP_ASSIGN_OR_RETURN(e->store, storage::RankStore::Open(storage::RankStorePath(root_, rank), rank,
                                                               storage::RankStore::Mode::kRead));
      e->seen_generation = generation;
    } else if (e->seen_generation < generation) {
      DCP_RETURN_IF_ERROR(e->store->CatchUp());
      e->seen_generation = generation;
    }
    store = e->store.get();
  }
  Status s = store->Get(key, value, check);
  if (!s.IsNotFound()) return s;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    DCP_RETURN_IF_ERROR(e->store->CatchUp());
  }
  return store->Get(key, value, check);
}

}  // namespace dcp::query
