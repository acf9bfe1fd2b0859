// Copyright (c) dcp authors.
//
// RankStore: one rank's RocksDB instance (ranks/rank-NNNNN under the root).
// The only code in dcp that includes RocksDB; rocksdb::Status is translated
// here, and every message names the rank and the path.
//
// Writes go in bulk: a BulkWriter builds a table file (SstFileWriter) from
// records added in increasing key order, and Commit() ingests it into the
// database (the file is linked in, fsynced, and the database's MANIFEST
// synced), so after Commit() returns the records are durable and visible.
// This is one sequential pass over the bytes, close to a raw write; there is
// no write-ahead log and no memtable on this path.
//
// Reads: a writer's own instance serves its reads. Other processes (and other
// ranks) open a store as a RocksDB secondary instance, which keeps every table
// file open (so files removed later by the writer stay readable) and catches
// up with the writer on demand (CatchUp) when a newer step is requested.
//
// Damage: RocksDB opened for writing creates a new, empty database where
// CURRENT is missing and deletes every table file its MANIFEST does not list,
// which on a damaged store would destroy every earlier step's records. So a
// writer first checks the metadata with a read-only instance that changes
// nothing (CheckMetadata); a damaged store is repaired (Repair: nothing is
// deleted) or refused, and table files the metadata does not list are moved
// to quarantine/ rather than handed to RocksDB. A reader that finds a record
// missing can fall back to a salvage instance (kSalvage) that serves the
// table files that are there. RocksDB's info log (LOG) is never written;
// its warnings and errors go to stderr. A writer opens a rank store only
// under the store's writer lock (store_lock.h): another writer's table file,
// linked but not yet recorded, would otherwise be set aside.
//
// Values are read pinned in their table block (no copy); blocks pass through
// a small process-wide cache, whose buffers are recycled rather than
// reallocated, so a chunk read costs one read of its block and no page faults.
//
// Thread safety: Get and CatchUp may be called concurrently; a BulkWriter is
// used by one thread.

#ifndef DCP_ENGINE_STORE_RANK_STORE_H_
#define DCP_ENGINE_STORE_RANK_STORE_H_

#include <cstdint>
#include <functional>
#include <set>
#include <utility>
#include <vector>
#include <memory>
#include <string>
#include <string_view>

#include "dcp/status.h"

namespace dcp::storage {

// A value pinned in memory until destruction.
class PinnedValue {
 public:
  PinnedValue();
  ~PinnedValue();
  PinnedValue(const PinnedValue&) = delete;
  PinnedValue& operator=(const PinnedValue&) = delete;

  std::string_view view() const;

 private:
  friend class RankStore;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

struct RankStoreOptions {
  // Writers: repair a store whose metadata is damaged (RankStore::Repair)
  // before opening it; when false such a store is refused with DataLoss
  // naming what is wrong, and nothing is changed.
  // Default: true
  bool repair = true;
};

class RankStore {
 public:
  // kWrite: the writer's instance (RocksDB's lock; a second writer gets
  //   IOError). Creates the store if the directory holds no database yet.
  // kRead: a secondary instance, following the writer (CatchUp).
  // kSalvage: a read-only instance that opens a damaged store as far as it
  //   can (a table file its metadata lists but that is missing or unreadable
  //   makes only that file's records unreadable). No CatchUp.
  enum class Mode { kWrite, kRead, kSalvage };

  // Opens the store at `path` for rank `rank`. kRead and kSalvage require the
  // store to exist (NotFound otherwise). Errors name the rank and the path;
  // DataLoss for a damaged store.
  static Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, Mode mode,
                                                 const RankStoreOptions& options = {});

  // Checks the store's RocksDB metadata without changing anything: CURRENT
  // names a MANIFEST that reads back whole, and every table file it lists
  // exists and its footer, index and properties verify. OK also for a
  // directory that holds no database yet; NotFound if there is no directory;
  // DataLoss naming what is wrong otherwise.
  static Status CheckMetadata(const std::string& path, uint32_t rank);

  struct RepairReport {
    std::string problem;            // what was wrong (empty: nothing was)
    std::string action;             // what the repair did
    uint64_t tables_restored = 0;   // table files brought back from quarantine/
    uint64_t tables_recovered = 0;  // table files the repaired metadata lists
    uint64_t files_set_aside = 0;   // files RocksDB's repair moved to lost/
  };
  // Makes the store's metadata consistent again while deleting nothing: table
  // files in quarantine/ come back; a missing or damaged CURRENT is pointed
  // at the newest MANIFEST that lists every table file; failing that,
  // RocksDB's RepairDB rebuilds the metadata from every table file that reads
  // back whole, and moves what it cannot use (old MANIFESTs, logs,
  // unreadable table files) to lost/. Records in unreadable table files are
  // lost to the store (the steps that reference them are damaged: see
  // dcp-inspect repair). REQUIRES: no writer has the store open.
  static Result<RepairReport> Repair(const std::string& path, uint32_t rank);
  ~RankStore();
  RankStore(const RankStore&) = delete;
  RankStore& operator=(const RankStore&) = delete;

  uint32_t rank() const { return rank_; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

  // NotFound if `key` is absent. RocksDB verifies the checksum (XXH3) of the
  // table block that holds the record: a damaged block is DataLoss, never
  // parsed (Debian's RocksDB asserts on malformed blocks). dcp's own checks
  // of the record (header, XXH3-128 of the decoded bytes) come on top.
  // `fill_cache` false for one-off reads (checks) that should not displace
  // the blocks of a load from the shared block cache.
  Status Get(std::string_view key, PinnedValue* value, bool fill_cache = true) const;

  // Read instances: pick up what the writer committed since open (or the last
  // catch-up). A no-op for the writer's own instance.
  Status CatchUp();

  class BulkWriter {
   public:
    ~BulkWriter();  // abandons (removes the table file) unless committed
    // REQUIRES: keys strictly increasing.
    Status Add(std::string_view key, std::string_view value);
    // Finishes the table file and ingests it. OK with no records added (no-op).
    Status Commit();
    uint64_t records() const { return records_; }

   private:
    friend class RankStore;
    struct Rep;
    explicit BulkWriter(std::unique_ptr<Rep> rep);
    std::unique_ptr<Rep> rep_;
    uint64_t records_ = 0;
  };

  // A writer whose table file is named after `name` (unique per put, e.g.
  // the generation). REQUIRES: mode() == kWrite.
  Result<std::unique_ptr<BulkWriter>> NewBulkWriter(std::string_view name);

  // Maintenance (garbage collection). Every table file of a rank store holds
  // the records of one generation: ingestion writes one file per put part,
  // automatic compactions are off, and DeleteRecords compacts one
  // generation's range only.
  struct TableFile {
    std::string name;
    int level = 0;
    uint64_t size = 0;
    std::string smallest_key;
    std::string largest_key;
  };
  Result<std::vector<TableFile>> TableFiles() const;
  // The largest generation any table file holds (0 for an empty store).
  Result<uint64_t> NewestGeneration() const;

  // Calls fn(key, value) for every record in [begin, end), in key order.
  Status Scan(std::string_view begin, std::string_view end,
              const std::function<Status(std::string_view key, std::string_view value)>& fn) const;

  // Writer only: removes every record of `generation`: its table files are
  // deleted outright where RocksDB allows (not in level 0); anything left is
  // deleted with a range tombstone and compacted away.
  Status DropGeneration(uint64_t generation);

  // Writer only: compacts `generation`'s range (drops deleted records and
  // pushes level-0 leftovers of an interrupted collection down).
  Status CompactGeneration(uint64_t generation);

  // Writer only: deletes `keys` of `generation` and writes `puts` (replacing
  // records, e.g. its index) in one durable batch, then compacts the
  // generation's range so that the space of the deleted records is freed.
  Status RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                           const std::vector<std::pair<std::string, std::string>>& puts);

 private:
  struct Rep;
  RankStore(std::unique_ptr<Rep> rep, std::string path, uint32_t rank, Mode mode);
  std::unique_ptr<Rep> rep_;
  std::string path_;
  uint32_t rank_;
  Mode mode_;
};

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_RANK_STORE_H_
