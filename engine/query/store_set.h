// Copyright (c) dcp authors.
//
// StoreSet: read access to every rank store of one store root.
//
// A chunk may live in any rank's store. StoreSet opens each one on first use
// (as a read instance of its backend, RocksDB unless told otherwise) and
// reuses it; the writer instance of this process's
// own rank, if any, serves that rank. Before a step's records are read, the
// read instances are brought up to date with that step: an instance that has
// not yet seen the step's generation catches up with its writer first, and
// the first record found missing for a generation triggers one more catch-up
// and retry (later misses of that generation do not: the instance has then
// seen everything published up to it). A record still
// missing sends StoreSet to check the rank store's metadata: if it is damaged
// (a table file it lists is gone), records are read from a salvage instance
// that serves the table files that are left, and what is still missing is
// reported with the damage found.
//
// Thread safety: all methods may be called concurrently.

#ifndef DCP_ENGINE_QUERY_STORE_SET_H_
#define DCP_ENGINE_QUERY_STORE_SET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "engine/store/rank_store.h"

namespace dcp::query {

class StoreSet {
 public:
  // `own` (may be null) is this process's writer instance; not owned.
  // Other ranks' stores are opened with `backend`, which must outlive this.
  StoreSet(std::string root, storage::RankStore* own,
           storage::RankStoreBackend* backend = storage::DefaultBackend());
  ~StoreSet();

  // Reads record `key` from rank `rank`'s store, as of a step whose manifest
  // has `generation`. NotFound if the record is absent (after a catch-up);
  // NotFound naming the rank if that store does not exist. `fill_cache` as
  // RankStore::Get.
  Status Get(uint32_t rank, uint64_t generation, std::string_view key, storage::PinnedValue* value,
             bool fill_cache = true);

  // Reads records `keys` (strictly increasing) of rank `rank`'s store, as of
  // a step whose manifest has `generation`, in one pass where the backend can
  // (RankStore::ReadRun): fn(i, status, value) for each in order, with Get's
  // status. A record the pass does not find is looked up again as Get does
  // (catch-up, damage diagnosis).
  Status ReadRun(uint32_t rank, uint64_t generation, const std::vector<std::string>& keys, uint64_t readahead,
                 const storage::RankStore::RunFn& fn);

  // " at '<path>'" of rank `rank`'s store, for messages that name a record.
  std::string Where(uint32_t rank) const;

 private:
  struct Entry {
    std::mutex mu;
    std::unique_ptr<storage::RankStore> store;
    uint64_t seen_generation = 0;  // catch-ups happened after this generation's publication
    uint64_t miss_generation = 0;  // 1 + the newest generation a miss caught up for; 0: none yet
    // After a record was found missing: whether the store's metadata is
    // damaged, and then a salvage instance reading what is left.
    bool diagnosed = false;
    Status damage;
    std::unique_ptr<storage::RankStore> salvage;
  };
  Result<Entry*> Open(uint32_t rank);
  // The instance that serves rank `rank` as of `generation`: this process's
  // writer, or a read instance opened or caught up as needed. *entry: its
  // entry (null for the writer).
  Result<storage::RankStore*> Instance(uint32_t rank, uint64_t generation, Entry** entry);

  const std::string root_;
  storage::RankStore* own_;
  storage::RankStoreBackend* const backend_;
  std::mutex mu_;
  std::map<uint32_t, std::unique_ptr<Entry>> entries_;  // guarded by mu_
};

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_STORE_SET_H_
