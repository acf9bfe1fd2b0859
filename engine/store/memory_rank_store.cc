// Copyright (c) dcp authors.

#include "engine/store/memory_rank_store.h"

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/store/key_layout.h"

namespace dcp::storage {

namespace {

using Value = std::shared_ptr<const std::string>;

struct Record {
  Value value;
  uint64_t table = 0;  // the table file (committed bulk writer) that holds it
};

struct Database {
  std::mutex mu;
  std::map<std::string, Record, std::less<>> records;  // guarded by mu
  uint64_t next_table = 1;                             // guarded by mu
  uint64_t writer_epoch = 0;  // the epoch of the open writer instance; 0: none. Guarded by mu
};

std::string What(const std::string& path, uint32_t rank) {
  return "rank store " + std::to_string(rank) + " at '" + path + "'";
}

std::string TableName(uint64_t table) {
  char name[32];
  std::snprintf(name, sizeof(name), "%06llu.sst", static_cast<unsigned long long>(table));
  return name;
}

}  // namespace

struct MemoryBackend::Shared {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Database>> databases;  // guarded by mu
  std::atomic<uint64_t> epoch{1};                              // Crash() starts a new one
};

namespace {

// A value pinned by a reference to the stored string.
struct ValuePin : PinnedValue::Pin {
  explicit ValuePin(Value v) : value(std::move(v)) {}
  Value value;
};

class MemoryRankStore : public RankStore {
 public:
  MemoryRankStore(std::shared_ptr<MemoryBackend::Shared> shared, std::shared_ptr<Database> db, uint64_t epoch,
                  std::string path, uint32_t rank, Mode mode)
      : RankStore(std::move(path), rank, mode), shared_(std::move(shared)), db_(std::move(db)), epoch_(epoch) {}

  ~MemoryRankStore() override {
    if (mode() != Mode::kWrite) return;
    std::lock_guard<std::mutex> lock(db_->mu);
    if (db_->writer_epoch == epoch_) db_->writer_epoch = 0;
  }

  // IOError once the backend crashed after this instance was opened.
  Status Alive() const {
    if (shared_->epoch.load(std::memory_order_acquire) == epoch_) return Status::OK();
    return Status::IOError(What() + ": the store crashed (memory backend); reopen it");
  }

  Status Writable() const {
    DCP_RETURN_IF_ERROR(Alive());
    if (mode() != Mode::kWrite) return Status::FailedPrecondition(What() + " is open read-only");
    return Status::OK();
  }

  Status Get(std::string_view key, PinnedValue* value, bool /*fill_cache*/) const override {
    value->Reset();
    DCP_RETURN_IF_ERROR(Alive());
    Value v;
    {
      std::lock_guard<std::mutex> lock(db_->mu);
      auto it = db_->records.find(key);
      if (it == db_->records.end()) {
        return Status::NotFound("record '" + std::string(key) + "' not found in " + What());
      }
      v = it->second.value;
    }
    const std::string_view view(*v);
    value->Reset(view, std::make_unique<ValuePin>(std::move(v)));
    return Status::OK();
  }

  Status CatchUp() override { return Alive(); }

  Result<std::unique_ptr<BulkWriter>> NewBulkWriter(std::string_view name) override;

  Result<std::vector<TableFile>> TableFiles() const override {
    DCP_RETURN_IF_ERROR(Alive());
    std::map<uint64_t, TableFile> tables;
    {
      std::lock_guard<std::mutex> lock(db_->mu);
      for (const auto& [key, r] : db_->records) {
        TableFile& t = tables[r.table];
        if (t.name.empty()) {
          t.name = TableName(r.table);
          t.level = 1;
          t.smallest_key = key;
        }
        t.largest_key = key;
        t.size += key.size() + r.value->size();
      }
    }
    std::vector<TableFile> files;
    files.reserve(tables.size());
    for (auto& [n, t] : tables) files.push_back(std::move(t));
    return files;
  }

  Status Scan(std::string_view begin, std::string_view end,
              const std::function<Status(std::string_view, std::string_view)>& fn) const override {
    DCP_RETURN_IF_ERROR(Alive());
    // A snapshot, so that fn may call back into the store.
    std::vector<std::pair<std::string, Value>> range;
    {
      std::lock_guard<std::mutex> lock(db_->mu);
      for (auto it = db_->records.lower_bound(begin); it != db_->records.end() && it->first < end; ++it) {
        range.emplace_back(it->first, it->second.value);
      }
    }
    for (const auto& [k, v] : range) DCP_RETURN_IF_ERROR(fn(k, *v));
    return Status::OK();
  }

  Status DropGeneration(uint64_t generation) override {
    DCP_RETURN_IF_ERROR(Writable());
    const auto [b, e] = GenerationRange(generation);
    std::lock_guard<std::mutex> lock(db_->mu);
    db_->records.erase(db_->records.lower_bound(b), db_->records.lower_bound(e));
    return Status::OK();
  }

  Status CompactGeneration(uint64_t generation) override {
    DCP_RETURN_IF_ERROR(Writable());
    std::lock_guard<std::mutex> lock(db_->mu);
    CompactLocked(generation);
    return Status::OK();
  }

  Status RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                           const std::vector<std::pair<std::string, std::string>>& puts) override {
    DCP_RETURN_IF_ERROR(Writable());
    std::lock_guard<std::mutex> lock(db_->mu);
    for (const std::string& k : keys) db_->records.erase(k);
    for (const auto& [k, v] : puts) db_->records[k] = Record{std::make_shared<const std::string>(v), 0};
    CompactLocked(generation);
    return Status::OK();
  }

  const std::shared_ptr<Database>& db() const { return db_; }
  uint64_t epoch() const { return epoch_; }
  const std::shared_ptr<MemoryBackend::Shared>& shared() const { return shared_; }

 private:
  // As RocksDB's compaction of the range: its records end up in one new table.
  void CompactLocked(uint64_t generation) {
    const auto [b, e] = GenerationRange(generation);
    auto first = db_->records.lower_bound(b);
    const auto last = db_->records.lower_bound(e);
    if (first == last) return;
    const uint64_t table = db_->next_table++;
    for (; first != last; ++first) first->second.table = table;
  }

  const std::shared_ptr<MemoryBackend::Shared> shared_;
  const std::shared_ptr<Database> db_;
  const uint64_t epoch_;
};

class MemoryBulkWriter : public RankStore::BulkWriter {
 public:
  explicit MemoryBulkWriter(const MemoryRankStore* store, std::string what)
      : shared_(store->shared()), db_(store->db()), epoch_(store->epoch()), what_(std::move(what)) {}

  Status Add(std::string_view key, std::string_view value) override {
    if (committed_) return Status::FailedPrecondition("bulk writer for " + what_ + " was already committed");
    if (!batch_.empty() && key <= batch_.back().first) {
      return Status::InvalidArgument("cannot write record '" + std::string(key) + "' to " + what_ +
                                     ": keys must be strictly increasing");
    }
    batch_.emplace_back(std::string(key), std::make_shared<const std::string>(value));
    ++records_;
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::OK();
    if (shared_->epoch.load(std::memory_order_acquire) != epoch_) {
      return Status::IOError(what_ + ": the store crashed (memory backend); the batch is lost");
    }
    committed_ = true;
    if (batch_.empty()) return Status::OK();
    std::lock_guard<std::mutex> lock(db_->mu);
    const uint64_t table = db_->next_table++;
    for (auto& [k, v] : batch_) db_->records[std::move(k)] = Record{std::move(v), table};
    batch_.clear();
    return Status::OK();
  }

  uint64_t records() const override { return records_; }

 private:
  const std::shared_ptr<MemoryBackend::Shared> shared_;
  const std::shared_ptr<Database> db_;
  const uint64_t epoch_;
  const std::string what_;
  std::vector<std::pair<std::string, Value>> batch_;
  uint64_t records_ = 0;
  bool committed_ = false;
};

Result<std::unique_ptr<RankStore::BulkWriter>> MemoryRankStore::NewBulkWriter(std::string_view /*name*/) {
  DCP_RETURN_IF_ERROR(Writable());
  return std::unique_ptr<BulkWriter>(new MemoryBulkWriter(this, What()));
}

}  // namespace

MemoryBackend::MemoryBackend() : shared_(std::make_shared<Shared>()) {}
MemoryBackend::~MemoryBackend() = default;

Result<std::unique_ptr<RankStore>> MemoryBackend::Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                                       const RankStoreOptions& /*options*/) {
  std::shared_ptr<Database> db;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    auto it = shared_->databases.find(path);
    if (it != shared_->databases.end()) {
      db = it->second;
    } else if (mode == RankStore::Mode::kWrite) {
      db = std::make_shared<Database>();
      shared_->databases.emplace(path, db);
    } else {
      return Status::NotFound(What(path, rank) + " does not exist");
    }
  }
  const uint64_t epoch = shared_->epoch.load(std::memory_order_acquire);
  if (mode == RankStore::Mode::kWrite) {
    std::lock_guard<std::mutex> lock(db->mu);
    if (db->writer_epoch == epoch) {
      return Status::IOError("cannot open " + What(path, rank) + ": it is open for writing by another instance");
    }
    db->writer_epoch = epoch;
  }
  return std::unique_ptr<RankStore>(new MemoryRankStore(shared_, std::move(db), epoch, path, rank, mode));
}

Status MemoryBackend::CheckMetadata(const std::string& path, uint32_t rank) {
  if (!Exists(path)) return Status::NotFound(What(path, rank) + " does not exist");
  return Status::OK();
}

Result<RankStore::RepairReport> MemoryBackend::Repair(const std::string& path, uint32_t rank) {
  if (!Exists(path)) return Status::NotFound(What(path, rank) + " does not exist");
  return RankStore::RepairReport{};
}

void MemoryBackend::Crash() { shared_->epoch.fetch_add(1, std::memory_order_acq_rel); }

bool MemoryBackend::Exists(const std::string& path) const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->databases.count(path) > 0;
}

}  // namespace dcp::storage
