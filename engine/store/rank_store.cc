// Copyright (c) dcp authors.

#include "engine/store/rank_store.h"

#include <rocksdb/db.h>
#include <rocksdb/cache.h>
#include <rocksdb/flush_block_policy.h>
#include <rocksdb/memory_allocator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/convenience.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/mman.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "engine/base/fault_injection.h"
#include "engine/base/file.h"
#include "engine/store/key_layout.h"

namespace dcp::storage {
namespace {

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsCorruption()) return Status::DataLoss(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  return Status::IOError(std::move(msg));
}

// Secondary instances have nothing worth logging and must not write into a
// store they only read.
class NullLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// Records of kLargeRecord bytes or more get a table block of their own, and
// small records share blocks of up to kSmallBlock bytes. A read then fetches
// (and checksums) exactly the record it needs, and damage to one block loses
// at most that record or a few small neighbours.
constexpr size_t kLargeRecord = 16 << 10;
constexpr size_t kSmallBlock = 16 << 10;

class RecordBlockPolicy : public rocksdb::FlushBlockPolicy {
 public:
  bool Update(const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    const size_t entry = key.size() + value.size();
    const bool large = value.size() >= kLargeRecord;
    const bool flush = bytes_ > 0 && (large || large_ || bytes_ + entry > kSmallBlock);
    if (flush) bytes_ = 0;
    bytes_ += entry;
    large_ = large;
    return flush;
  }

 private:
  size_t bytes_ = 0;
  bool large_ = false;
};

class RecordBlockPolicyFactory : public rocksdb::FlushBlockPolicyFactory {
 public:
  const char* Name() const override { return "DcpRecordBlockPolicy"; }
  rocksdb::FlushBlockPolicy* NewFlushBlockPolicy(const rocksdb::BlockBasedTableOptions&,
                                                 const rocksdb::BlockBuilder&) const override {
    return new RecordBlockPolicy();
  }
};

// Reading a chunk record reads its whole table block into a buffer RocksDB
// allocates. A fresh multi-MiB buffer per read means first-touch page faults
// (1-2 GB/s on this class of machine, slower than the disk); this pool hands
// the same buffers back instead. Small allocations go to malloc. The pool
// keeps at most kPoolBytes of idle buffers per process.
class BlockPool : public rocksdb::MemoryAllocator {
 public:
  static constexpr size_t kHeader = 64;  // keeps user memory 64-byte aligned
  static constexpr size_t kMinPooled = size_t{1} << 20;
  static constexpr size_t kGranule = size_t{1} << 20;
  static constexpr size_t kPoolBytes = size_t{32} << 20;

  const char* Name() const override { return "DcpBlockPool"; }

  void* Allocate(size_t size) override {
    size_t cls = 0;
    char* base = nullptr;
    if (size + kHeader >= kMinPooled) {
      cls = (size + kHeader + kGranule - 1) / kGranule * kGranule;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(cls);
        if (it != free_.end() && !it->second.empty()) {
          base = it->second.back();
          it->second.pop_back();
          idle_ -= cls;
        }
      }
      if (base == nullptr) {
        base = static_cast<char*>(std::aligned_alloc(kGranule, cls));
        if (base != nullptr) ::madvise(base, cls, MADV_HUGEPAGE);
      }
    } else {
      base = static_cast<char*>(std::malloc(size + kHeader));
    }
    if (base == nullptr) return nullptr;
    std::memcpy(base, &cls, sizeof(cls));
    return base + kHeader;
  }

  void Deallocate(void* p) override {
    if (p == nullptr) return;
    char* base = static_cast<char*>(p) - kHeader;
    size_t cls = 0;
    std::memcpy(&cls, base, sizeof(cls));
    if (cls != 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_ + cls <= kPoolBytes) {
        free_[cls].push_back(base);
        idle_ += cls;
        return;
      }
    }
    std::free(base);
  }

  ~BlockPool() override {
    for (auto& [cls, list] : free_) {
      for (char* b : list) std::free(b);
    }
  }

 private:
  std::mutex mu_;
  std::map<size_t, std::vector<char*>> free_;  // guarded by mu_
  size_t idle_ = 0;                            // guarded by mu_
};

// RocksDB pins a value in place (no copy) only when its block sits in the
// block cache; a block read around the cache is copied out into a fresh
// buffer. So chunk reads go through a small shared cache: the record is
// pinned in its block, checked and copied once, straight into the
// destination, and the block falls out of the cache soon after.
std::shared_ptr<rocksdb::Cache> SharedBlockCache() {
  static const std::shared_ptr<rocksdb::Cache> cache = [] {
    rocksdb::LRUCacheOptions o;
    o.capacity = 32 << 20;
    o.memory_allocator = std::make_shared<BlockPool>();
    return rocksdb::NewLRUCache(o);
  }();
  return cache;
}

rocksdb::Options BaseOptions() {
  rocksdb::Options o;
  // Records are already encoded (LZ4 where it pays) and checksummed by dcp.
  o.compression = rocksdb::kNoCompression;
  o.bottommost_compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions t;
  t.checksum = rocksdb::kXXH3;
  t.block_size = kSmallBlock;
  t.flush_block_policy_factory = std::make_shared<RecordBlockPolicyFactory>();
  t.block_cache = SharedBlockCache();
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.keep_log_file_num = 3;
  o.max_log_file_size = 4 << 20;
  o.max_open_files = -1;  // required by secondaries; keeps removed files readable
  // Table files stay one generation each (see rank_store.h): only garbage
  // collection compacts, one generation's range at a time.
  o.disable_auto_compactions = true;
  return o;
}

// A secondary instance needs a directory of its own for its info log; with
// the NullLogger it writes nothing there, so every reader shares one empty
// directory (nothing to clean up, nothing left behind by a killed process).
std::string SecondaryDir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/dcp-secondary";
}

}  // namespace

struct PinnedValue::Rep {
  rocksdb::PinnableSlice slice;
};

PinnedValue::PinnedValue() : rep_(std::make_unique<Rep>()) {}
PinnedValue::~PinnedValue() = default;
std::string_view PinnedValue::view() const { return {rep_->slice.data(), rep_->slice.size()}; }

struct RankStore::Rep {
  std::unique_ptr<rocksdb::DB> db;
  std::shared_ptr<rocksdb::Logger> logger;
  rocksdb::Options options;
};

RankStore::RankStore(std::unique_ptr<Rep> rep, std::string path, uint32_t rank, Mode mode)
    : rep_(std::move(rep)), path_(std::move(path)), rank_(rank), mode_(mode) {}

RankStore::~RankStore() {
  if (rep_->db) rep_->db->Close().PermitUncheckedError();
  rep_->db.reset();
}

Result<std::unique_ptr<RankStore>> RankStore::Open(const std::string& path, uint32_t rank, Mode mode) {
  const std::string what = "rank store " + std::to_string(rank) + " at '" + path + "'";
  auto rep = std::make_unique<Rep>();
  rep->options = BaseOptions();
  rocksdb::DB* db = nullptr;
  if (mode == Mode::kWrite) {
    rep->options.create_if_missing = true;
    DCP_RETURN_IF_ERROR(base::CreateDirs(path).Annotate(what));
    // Table files of a put that never committed are garbage.
    const std::string ingest = RankIngestDir(path);
    if (base::IsDirectory(ingest)) {
      DCP_ASSIGN_OR_RETURN(auto stale, base::ListDir(ingest));
      for (const auto& f : stale) DCP_RETURN_IF_ERROR(base::RemoveFile(base::JoinPath(ingest, f)));
    }
    DCP_RETURN_IF_ERROR(base::CreateDirs(ingest).Annotate(what));
    // A new rank store must survive a power loss along with the steps that
    // will point into it: its entry in the parent directory is synced too.
    const size_t slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
      DCP_RETURN_IF_ERROR(base::SyncDir(path.substr(0, slash)).Annotate(what));
    }
    DCP_RETURN_IF_ERROR(base::SyncDir(path).Annotate(what));
    DCP_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(rep->options, path, &db), "cannot open " + what));
    rep->db.reset(db);
    db = nullptr;
    // Whatever the log replayed (a collection killed mid-way) goes into a
    // table file now, where garbage collection can see and finish it.
    DCP_RETURN_IF_ERROR(FromRocks(rep->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  } else {
    if (!base::IsDirectory(path)) return Status::NotFound(what + " does not exist");
    rep->logger = std::make_shared<NullLogger>();
    rep->options.info_log = rep->logger;
    rep->options.create_if_missing = false;
    const std::string secondary = SecondaryDir();
    DCP_RETURN_IF_ERROR(base::CreateDirs(secondary));
    const rocksdb::Status s = rocksdb::DB::OpenAsSecondary(rep->options, path, secondary, &db);
    if (!s.ok()) {
      if (s.IsCorruption()) return Status::DataLoss("cannot open " + what + ": " + s.ToString());
      return Status::IOError("cannot open " + what + ": " + s.ToString());
    }
  }
  if (db != nullptr) rep->db.reset(db);
  return std::unique_ptr<RankStore>(new RankStore(std::move(rep), path, rank, mode));
}

Status RankStore::Get(std::string_view key, PinnedValue* value, BlockCheck check) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = true;  // see SharedBlockCache
  ro.verify_checksums = check == BlockCheck::kVerify;
  value->rep_->slice.Reset();
  const rocksdb::Status s = rep_->db->Get(ro, rep_->db->DefaultColumnFamily(), rocksdb::Slice(key.data(), key.size()),
                                          &value->rep_->slice);
  if (s.IsNotFound()) return Status::NotFound("record '" + std::string(key) + "' not found in rank store " +
                                              std::to_string(rank_) + " at '" + path_ + "'");
  return FromRocks(s, "cannot read record '" + std::string(key) + "' from rank store " + std::to_string(rank_) +
                          " at '" + path_ + "'");
}

Status RankStore::CatchUp() {
  if (mode_ == Mode::kWrite) return Status::OK();
  return FromRocks(rep_->db->TryCatchUpWithPrimary(),
                   "cannot catch up with rank store " + std::to_string(rank_) + " at '" + path_ + "'");
}

struct RankStore::BulkWriter::Rep {
  rocksdb::DB* db = nullptr;
  std::unique_ptr<rocksdb::SstFileWriter> writer;
  std::string file;
  std::string what;
  bool opened = false;
  bool done = false;
};

RankStore::BulkWriter::BulkWriter(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

RankStore::BulkWriter::~BulkWriter() {
  if (!rep_->done) {
    rep_->writer.reset();
    base::RemoveFile(rep_->file).IgnoreError();
  }
}

Status RankStore::BulkWriter::Add(std::string_view key, std::string_view value) {
  if (!rep_->opened) {
    DCP_RETURN_IF_ERROR(FromRocks(rep_->writer->Open(rep_->file), "cannot create table file for " + rep_->what));
    rep_->opened = true;
  }
  DCP_RETURN_IF_ERROR(FromRocks(rep_->writer->Put(rocksdb::Slice(key.data(), key.size()),
                                                  rocksdb::Slice(value.data(), value.size())),
                                "cannot write record '" + std::string(key) + "' to " + rep_->what));
  ++records_;
  return Status::OK();
}

Status RankStore::BulkWriter::Commit() {
  if (!rep_->opened) {
    rep_->done = true;
    return Status::OK();
  }
  DCP_RETURN_IF_ERROR(FromRocks(rep_->writer->Finish(), "cannot finish table file for " + rep_->what));
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  io.write_global_seqno = false;
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->IngestExternalFile({rep_->file}, io), "cannot ingest into " + rep_->what));
  rep_->done = true;
  return Status::OK();
}

Result<std::unique_ptr<RankStore::BulkWriter>> RankStore::NewBulkWriter(std::string_view name) {
  if (mode_ != Mode::kWrite) {
    return Status::FailedPrecondition("rank store " + std::to_string(rank_) + " is open read-only");
  }
  auto rep = std::make_unique<BulkWriter::Rep>();
  rep->db = rep_->db.get();
  rep->writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), rep_->options);
  rep->file = base::JoinPath(RankIngestDir(path_), std::string(name) + ".sst");
  rep->what = "rank store " + std::to_string(rank_) + " at '" + path_ + "'";
  return std::unique_ptr<BulkWriter>(new BulkWriter(std::move(rep)));
}

Result<std::vector<RankStore::TableFile>> RankStore::TableFiles() const {
  std::vector<rocksdb::LiveFileMetaData> meta;
  rep_->db->GetLiveFilesMetaData(&meta);
  std::vector<TableFile> files;
  files.reserve(meta.size());
  for (const auto& m : meta) files.push_back({m.name, m.level, m.size, m.smallestkey, m.largestkey});
  return files;
}

Result<uint64_t> RankStore::NewestGeneration() const {
  DCP_ASSIGN_OR_RETURN(auto files, TableFiles());
  uint64_t newest = 0;
  for (const auto& f : files) {
    if (auto g = GenerationOfKey(f.largest_key)) newest = std::max(newest, *g);
  }
  return newest;
}

Status RankStore::Scan(std::string_view begin, std::string_view end,
                       const std::function<Status(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  const rocksdb::Slice upper(end.data(), end.size());
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro));
  for (it->Seek(rocksdb::Slice(begin.data(), begin.size())); it->Valid(); it->Next()) {
    DCP_RETURN_IF_ERROR(fn(std::string_view(it->key().data(), it->key().size()),
                           std::string_view(it->value().data(), it->value().size())));
  }
  return FromRocks(it->status(), "cannot scan rank store " + std::to_string(rank_) + " at '" + path_ + "'");
}

Status RankStore::DropGeneration(uint64_t generation) {
  if (mode_ != Mode::kWrite) return Status::FailedPrecondition("rank store " + std::to_string(rank_) + " is read-only");
  const std::string what = "rank store " + std::to_string(rank_) + " at '" + path_ + "'";
  const auto [b, e] = GenerationRange(generation);
  const rocksdb::Slice begin(b), end(e);
  DCP_RETURN_IF_ERROR(FromRocks(rocksdb::DeleteFilesInRange(rep_->db.get(), rep_->db->DefaultColumnFamily(), &begin,
                                                            &end, /*include_end=*/false),
                                "cannot drop generation in " + what));
  // Level-0 files (recovered after a crash) are not deleted that way.
  DCP_ASSIGN_OR_RETURN(auto files, TableFiles());
  bool left = false;
  for (const auto& f : files) left = left || (f.smallest_key >= b && f.smallest_key < e);
  if (!left) return Status::OK();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->DeleteRange(wo, rep_->db->DefaultColumnFamily(), begin, end),
                                "cannot delete generation in " + what));
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_range_delete", static_cast<int>(rank_)));
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  return CompactGeneration(generation);
}

Status RankStore::CompactGeneration(uint64_t generation) {
  const auto [b, e] = GenerationRange(generation);
  const rocksdb::Slice begin(b), end(e);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  co.exclusive_manual_compaction = true;
  return FromRocks(rep_->db->CompactRange(co, &begin, &end),
                   "cannot compact rank store " + std::to_string(rank_) + " at '" + path_ + "'");
}

Status RankStore::RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                                    const std::vector<std::pair<std::string, std::string>>& puts) {
  if (mode_ != Mode::kWrite) return Status::FailedPrecondition("rank store " + std::to_string(rank_) + " is read-only");
  const std::string what = "rank store " + std::to_string(rank_) + " at '" + path_ + "'";
  rocksdb::WriteBatch batch;
  for (const std::string& k : keys) DCP_RETURN_IF_ERROR(FromRocks(batch.Delete(k), "cannot delete in " + what));
  for (const auto& [k, v] : puts) DCP_RETURN_IF_ERROR(FromRocks(batch.Put(k, v), "cannot write in " + what));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Write(wo, &batch), "cannot write to " + what));
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  return CompactGeneration(generation);
}

}  // namespace dcp::storage
