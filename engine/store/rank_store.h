// Copyright (c) dcp authors.
//
// RankStore: one rank's store of records (ranks/rank-NNNNN under the root),
// and RankStoreBackend, the factory that opens, checks and repairs them (the
// leveldb Env pattern: every caller that opens a rank store can be handed a
// backend, and nothing above this header knows which one it has).
//
// Backends:
//   DefaultBackend()  RocksDB on disk (rocksdb_rank_store.h): what dcp uses.
//   MemoryBackend     process-local sorted maps (memory_rank_store.h): fast
//                     unit tests of the query and write paths, no disk.
//   FaultBackend      wraps another backend and injects I/O errors, short
//                     writes and crashes (fault_rank_store.h): failure tests
//                     without environment variables.
//
// The contract every backend keeps (tests/engine/store/rank_store_test.cc is
// the conformance suite):
//   - Writes go in bulk: a BulkWriter takes records in increasing key order
//     and Commit() makes them durable and visible at once (all or nothing; a
//     failed Commit leaves none of them visible). One committed bulk writer is
//     one table file, which holds the records of one generation (key_layout.h
//     puts the generation first in every key).
//   - One writer instance (kWrite) per store; a second gets IOError. Read
//     instances (kRead) see what the writer committed up to their open or
//     their last CatchUp (a backend may show more).
//   - Errors are Status codes: NotFound for an absent record or store,
//     DataLoss for damage, IOError for the rest. Messages name the rank and
//     the path.
//
// Thread safety: Get, ReadRun, CatchUp, TableFiles and Scan may be called
// concurrently; a BulkWriter and the maintenance calls (Drop, Compact,
// Rewrite) are used by one thread. A backend may be used from any thread.

#ifndef DCP_ENGINE_STORE_RANK_STORE_H_
#define DCP_ENGINE_STORE_RANK_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dcp/status.h"

namespace dcp::storage {

// A value read from a rank store: a view of its bytes, kept valid by an owned
// pin (RocksDB: the table block, pinned in the block cache, no copy; memory:
// a reference to the stored value). view() is valid until the next Get into
// this object or its destruction.
class PinnedValue {
 public:
  // What keeps the bytes alive; each backend derives its own.
  class Pin {
   public:
    virtual ~Pin() = default;
  };

  PinnedValue() = default;
  ~PinnedValue() = default;
  PinnedValue(const PinnedValue&) = delete;
  PinnedValue& operator=(const PinnedValue&) = delete;

  std::string_view view() const { return view_; }

  // For backends. Reset: the value is now `view`, kept alive by `pin` (the
  // previous pin is released). pin(): the current pin, which a backend may
  // reuse for its next read (the RocksDB backend reuses its PinnableSlice).
  // set_view: the view alone changes (the pin already holds the new bytes).
  void Reset(std::string_view view = {}, std::unique_ptr<Pin> pin = nullptr) {
    view_ = view;
    pin_ = std::move(pin);
  }
  Pin* pin() const { return pin_.get(); }
  void set_view(std::string_view view) { view_ = view; }

 private:
  std::unique_ptr<Pin> pin_;
  std::string_view view_;
};

struct RankStoreOptions {
  // Writers: repair a store whose metadata is damaged (RankStoreBackend::
  // Repair) before opening it; when false such a store is refused with
  // DataLoss naming what is wrong, and nothing is changed.
  // Default: true
  bool repair = true;
};

class RankStoreBackend;

class RankStore {
 public:
  // kWrite: the writer's instance (a second writer gets IOError). Creates the
  //   store if it does not exist yet.
  // kRead: a read instance, following the writer (CatchUp).
  // kSalvage: a read instance that opens a damaged store as far as it can (a
  //   table file its metadata lists but that is missing or unreadable makes
  //   only that file's records unreadable). No CatchUp.
  enum class Mode { kWrite, kRead, kSalvage };

  // The default backend's Open, CheckMetadata and Repair (RocksDB); see
  // RankStoreBackend. Code that may be handed another backend calls it.
  static Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, Mode mode,
                                                 const RankStoreOptions& options = {});
  static Status CheckMetadata(const std::string& path, uint32_t rank);

  struct RepairReport {
    std::string problem;            // what was wrong (empty: nothing was)
    std::string action;             // what the repair did
    uint64_t tables_restored = 0;   // table files brought back from quarantine/
    uint64_t tables_recovered = 0;  // table files the repaired metadata lists
    uint64_t files_set_aside = 0;   // files the repair moved to lost/
  };
  static Result<RepairReport> Repair(const std::string& path, uint32_t rank);

  virtual ~RankStore() = default;
  RankStore(const RankStore&) = delete;
  RankStore& operator=(const RankStore&) = delete;

  uint32_t rank() const { return rank_; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

  // NotFound if `key` is absent; DataLoss if the bytes that hold it fail
  // their checksum (RocksDB: the table block, XXH3). dcp's own checks of the
  // record (header, XXH3-128 of the decoded bytes) come on top. `fill_cache`
  // false for one-off reads (checks) that should not displace the blocks of
  // a load from a shared cache (a hint; backends without one ignore it).
  virtual Status Get(std::string_view key, PinnedValue* value, bool fill_cache = true) const = 0;

  // Reads the records `keys` (strictly increasing) in order: fn(i, status,
  // value) for each, with Get's status and `value` valid during the call
  // only. For runs of neighbouring records: a backend may read them in one
  // pass with large reads (RocksDB: one iterator that reads `readahead` bytes
  // at a time and copies each block out of them, instead of one system call
  // and one cache insertion per block). The first error fn returns stops the
  // run and is returned. By default, Get for each key.
  using RunFn = std::function<Status(size_t i, const Status& status, std::string_view value)>;
  virtual Status ReadRun(const std::vector<std::string>& keys, uint64_t readahead, const RunFn& fn) const;

  // Read instances: pick up what the writer committed since open (or the last
  // catch-up). A no-op for the writer's own instance.
  virtual Status CatchUp() = 0;

  class BulkWriter {
   public:
    virtual ~BulkWriter() = default;  // abandons what was added unless committed
    // REQUIRES: keys strictly increasing.
    virtual Status Add(std::string_view key, std::string_view value) = 0;
    // Makes every record added durable and visible, at once. OK with no
    // records added (a no-op). After a failure, none of them is visible.
    virtual Status Commit() = 0;
    // Records added so far.
    virtual uint64_t records() const = 0;
  };

  // A writer whose table file is named after `name` (unique per put, e.g.
  // the generation). FailedPrecondition unless mode() == kWrite.
  virtual Result<std::unique_ptr<BulkWriter>> NewBulkWriter(std::string_view name) = 0;

  // Maintenance (garbage collection). Every table file of a rank store holds
  // the records of one generation: one file per committed bulk writer, never
  // merged across generations.
  struct TableFile {
    std::string name;
    int level = 0;  // RocksDB's LSM level; 0 only for leftovers of an interrupted collection
    uint64_t size = 0;
    std::string smallest_key;
    std::string largest_key;
  };
  virtual Result<std::vector<TableFile>> TableFiles() const = 0;
  // The largest generation any table file holds (0 for an empty store).
  // By default, from TableFiles().
  virtual Result<uint64_t> NewestGeneration() const;

  // Calls fn(key, value) for every record in [begin, end), in key order; the
  // first error fn returns stops the scan and is returned.
  virtual Status Scan(std::string_view begin, std::string_view end,
                      const std::function<Status(std::string_view key, std::string_view value)>& fn) const = 0;

  // Writer only (FailedPrecondition otherwise): removes every record of
  // `generation` and the table files that held them.
  virtual Status DropGeneration(uint64_t generation) = 0;

  // Writer only: compacts `generation`'s range (drops deleted records and
  // pushes leftovers of an interrupted collection down).
  virtual Status CompactGeneration(uint64_t generation) = 0;

  // Writer only (FailedPrecondition otherwise): deletes `keys` of
  // `generation` and writes `puts` (replacing records, e.g. its index) in one
  // durable batch, then compacts the generation's range so that the space of
  // the deleted records is freed.
  virtual Status RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                                   const std::vector<std::pair<std::string, std::string>>& puts) = 0;

 protected:
  RankStore(std::string path, uint32_t rank, Mode mode) : path_(std::move(path)), rank_(rank), mode_(mode) {}

  // "rank store <rank> at '<path>'", for messages.
  std::string What() const;

 private:
  const std::string path_;
  const uint32_t rank_;
  const Mode mode_;
};

// Opens, checks and repairs rank stores of one kind. Implementations are
// thread-safe. A backend outlives every store it opened.
class RankStoreBackend {
 public:
  virtual ~RankStoreBackend() = default;

  // For messages and test names: "rocksdb", "memory", "fault(memory)".
  virtual std::string Name() const = 0;

  // Opens the store at `path` for rank `rank`. kRead and kSalvage require the
  // store to exist (NotFound otherwise). Errors name the rank and the path;
  // DataLoss for a damaged store.
  virtual Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                                  const RankStoreOptions& options) = 0;

  // Checks the store's metadata without changing anything. OK also for a
  // store that holds no records yet; NotFound if there is no store at `path`;
  // DataLoss naming what is wrong otherwise.
  virtual Status CheckMetadata(const std::string& path, uint32_t rank) = 0;

  // Makes the store's metadata consistent again while deleting nothing (see
  // the backend for what that means). NotFound if there is no store at
  // `path`. REQUIRES: no writer has the store open.
  virtual Result<RankStore::RepairReport> Repair(const std::string& path, uint32_t rank) = 0;
};

// The backend dcp uses: RocksDB (rocksdb_rank_store.h). Never null, never
// deleted.
RankStoreBackend* DefaultBackend();

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_RANK_STORE_H_
