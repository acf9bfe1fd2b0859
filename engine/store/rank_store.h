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

class RankStore {
 public:
  enum class Mode { kWrite, kRead };

  // Opens the store at `path` for rank `rank`. kWrite creates it if missing
  // and takes RocksDB's lock (a second writer gets IOError); kRead opens a
  // secondary instance and requires the store to exist (NotFound otherwise).
  static Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, Mode mode);
  ~RankStore();
  RankStore(const RankStore&) = delete;
  RankStore& operator=(const RankStore&) = delete;

  uint32_t rank() const { return rank_; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

  // What Get checks of the table block that holds a record.
  //   kVerify: RocksDB verifies the block's checksum (one pass over the
  //     block) and fails with DataLoss on a mismatch.
  //   kCallerVerifies: no block checksum pass. For records whose bytes the
  //     caller checks end to end anyway (chunk and object records: header
  //     hash, sizes and the XXH3-128 of the decoded bytes against the
  //     manifest), which catches any damage to the value; damage to the key
  //     or the block's framing makes the record not found, or RocksDB's own
  //     bounds checks report corruption. Table metadata (footer, index) is
  //     verified when a table is opened either way. A block that such a
  //     read brought into the (small, shared) block cache is not checked
  //     again by a kVerify read while it stays there.
  enum class BlockCheck { kVerify, kCallerVerifies };

  // NotFound if `key` is absent.
  Status Get(std::string_view key, PinnedValue* value, BlockCheck check = BlockCheck::kVerify) const;

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
