// Copyright (c) dcp authors.

#include "engine/store/rocksdb_rank_store.h"

#include <rocksdb/db.h>
#include <rocksdb/cache.h>
#include <rocksdb/flush_block_policy.h>
#include <rocksdb/memory_allocator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/sst_file_writer.h>
#include <unistd.h>
#include <rocksdb/convenience.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <mutex>
#include <vector>

#include "dcp/log.h"
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

// RocksDB's own info log (a LOG file in every rank store) is never written:
// it is one more file to damage, readers must not write into a store they
// only read, and on a full disk RocksDB's log writer aborted the process
// (an assertion in WritableFileWriter) instead of failing. Warnings and
// errors go to dcp's log sink (dcp/log.h), named after the rank store; the
// rest is dropped.
class SinkLogger : public rocksdb::Logger {
 public:
  SinkLogger(std::string what, rocksdb::InfoLogLevel level) : rocksdb::Logger(level), what_(std::move(what)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    Log(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? LogLevel::kError : LogLevel::kWarning,
        what_ + ": rocksdb: " + line);
  }

 private:
  const std::string what_;
};

std::shared_ptr<rocksdb::Logger> Logger(const std::string& what, rocksdb::InfoLogLevel level) {
  return std::make_shared<SinkLogger>(what, level);
}

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
// allocates. A fresh buffer per read costs more than the read: malloc's free
// of a 16 KiB block consolidates and trims the heap, and the next one
// first-touches new pages (page faults were a quarter of a 16 KiB-record
// load), and a fresh multi-MiB buffer faults in at 1-2 GB/s, slower than the
// disk. This pool hands the same buffers back instead: sizes from 4 KiB are
// rounded up to 4 KiB (to 1 MiB from 1 MiB) and kept per size. Smaller
// allocations go to malloc. The pool keeps at most kPoolBytes of idle buffers
// per process.
class BlockPool : public rocksdb::MemoryAllocator {
 public:
  static constexpr size_t kHeader = 64;  // keeps user memory 64-byte aligned
  static constexpr size_t kMinPooled = size_t{4} << 10;
  static constexpr size_t kSmallGranule = size_t{4} << 10;
  static constexpr size_t kLarge = size_t{1} << 20;
  static constexpr size_t kLargeGranule = size_t{1} << 20;
  static constexpr size_t kPoolBytes = size_t{32} << 20;

  const char* Name() const override { return "DcpBlockPool"; }

  void* Allocate(size_t size) override {
    size_t cls = 0;
    char* base = nullptr;
    if (size + kHeader >= kMinPooled) {
      const size_t granule = size + kHeader >= kLarge ? kLargeGranule : kSmallGranule;
      cls = (size + kHeader + granule - 1) / granule * granule;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(cls);
        if (it != free_.end() && !it->second.empty()) {
          base = it->second.back();
          it->second.pop_back();
          idle_ -= cls;
        }
      }
      if (base == nullptr && cls >= kLarge) {
        base = static_cast<char*>(std::aligned_alloc(kLargeGranule, cls));
        if (base != nullptr) ::madvise(base, cls, MADV_HUGEPAGE);
      } else if (base == nullptr) {
        base = static_cast<char*>(std::aligned_alloc(kHeader, cls));
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
  // No fallocate: RocksDB preallocates its MANIFEST (4 MiB) and log (~70 MiB)
  // ahead of use, and an open that failed on a nearly full disk left that
  // space reserved, so the store could not be opened again after space was
  // freed. dcp writes little through either.
  o.allow_fallocate = false;
  o.manifest_preallocation_size = 0;
  o.max_log_file_size = 4 << 20;
  o.max_open_files = -1;  // required by secondaries; keeps removed files readable
  // Table files stay one generation each (see rank_store.h): only garbage
  // collection compacts, one generation's range at a time.
  o.disable_auto_compactions = true;
  // Loads read a put's records in key order, which is their order in its
  // table file: let the kernel read ahead (RocksDB's default advises random
  // access, one disk request per record).
  o.advise_random_on_open = false;
  return o;
}

// A secondary instance needs a directory of its own for its info log; with
// no info log it writes nothing there, so every reader of one user shares one
// empty directory (nothing to clean up, nothing left behind by a killed
// process), created private to the user.
Status MakeSecondaryScratchDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::OK();
  return base::CreateDirs(dir);  // $TMPDIR itself is missing
}

std::string What(const std::string& path, uint32_t rank) {
  return "rank store " + std::to_string(rank) + " at '" + path + "'";
}

// What a rank store directory holds, by file name.
struct DirContents {
  bool current = false;
  std::vector<std::string> manifests;  // RocksDB MANIFEST-* files
  std::vector<std::string> tables;     // *.sst directly in the directory
  bool wal = false;
  bool rebuild_pending = false;  // an interrupted Rebuild left files in rebuild/
  // True if RocksDB has ever written a database here; false for a directory
  // dcp created but RocksDB never populated (a fresh store, or one whose
  // creation was interrupted).
  bool has_database() const { return current || !manifests.empty() || !tables.empty() || wal || rebuild_pending; }
};

Result<DirContents> ScanRankDir(const std::string& path) {
  DirContents c;
  DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(path));
  for (const auto& n : names) {
    if (n == "CURRENT") c.current = true;
    else if (n.rfind("MANIFEST-", 0) == 0) c.manifests.push_back(n);
    else if (IsTableFileName(n)) c.tables.push_back(n);
    else if (n.size() > 4 && n.compare(n.size() - 4, 4, ".log") == 0) c.wal = true;
  }
  const std::string rebuild = RankRebuildDir(path);
  if (base::IsDirectory(rebuild)) {
    DCP_ASSIGN_OR_RETURN(auto pending, base::ListDir(rebuild));
    c.rebuild_pending = !pending.empty();
  }
  return c;
}

// The table files (names) the rank store's RocksDB metadata lists, from a
// read-only instance that checks everything it opens (CURRENT, the MANIFEST,
// every listed table file's footer, index and properties). Changes nothing.
// DataLoss naming what is wrong otherwise.
Result<std::set<std::string>> ListedTables(const std::string& path, uint32_t rank) {
  rocksdb::Options o = BaseOptions();
  o.info_log = Logger(What(path, rank), rocksdb::InfoLogLevel::FATAL_LEVEL);
  o.create_if_missing = false;
  o.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, path, &raw);
  if (!s.ok()) return Status::DataLoss(What(path, rank) + " is damaged: " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<rocksdb::LiveFileMetaData> meta;
  db->GetLiveFilesMetaData(&meta);
  std::set<std::string> names;
  for (const auto& m : meta) names.insert(m.name.substr(m.name.find_last_of('/') + 1));  // "/000008.sst"
  db->Close().PermitUncheckedError();
  return names;
}

// Moves table files of the rank directory that its metadata does not list
// into quarantine/. RocksDB would delete them on open; they are either the
// leftovers of a put killed between linking its file and recording it
// (garbage, which CollectGarbage removes) or records a damaged MANIFEST lost
// track of (which Repair brings back).
Result<uint64_t> QuarantineUnlisted(const std::string& path, const DirContents& contents,
                                    const std::set<std::string>& listed) {
  uint64_t moved = 0;
  const std::string quarantine = RankQuarantineDir(path);
  for (const auto& t : contents.tables) {
    if (listed.count(t)) continue;
    DCP_RETURN_IF_ERROR(base::CreateDirs(quarantine));
    std::string to = base::JoinPath(quarantine, t);
    for (int i = 1; base::PathExists(to); ++i) to = base::JoinPath(quarantine, t + "." + std::to_string(i));
    DCP_RETURN_IF_ERROR(base::RenameFile(base::JoinPath(path, t), to));
    ++moved;
  }
  if (moved > 0) {
    DCP_RETURN_IF_ERROR(base::SyncDir(quarantine));
    DCP_RETURN_IF_ERROR(base::SyncDir(path));
  }
  return moved;
}

uint64_t CountEntries(const std::string& dir) {
  auto names = base::ListDir(dir);
  return names.ok() ? names->size() : 0;
}

// Moves `file` into the rank store's lost/ directory (never over another file).
Status SetAside(const std::string& path, const std::string& file) {
  const std::string lost = RankLostDir(path);
  DCP_RETURN_IF_ERROR(base::CreateDirs(lost));
  const std::string name = file.substr(file.find_last_of('/') + 1);
  std::string to = base::JoinPath(lost, name);
  for (int i = 1; base::PathExists(to); ++i) to = base::JoinPath(lost, name + "." + std::to_string(i));
  return base::RenameFile(file, to);
}

// The number of a table file name ("000012.sst" -> 12); large for others, so
// that they sort last.
uint64_t TableNumber(const std::string& name) {
  uint64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') break;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// RocksDB's RepairDB cannot be used: it refuses every table file made by
// SstFileWriter (no column family in its properties), which is every put's.
// Instead, the database is made anew and its table files are ingested again,
// oldest first (so where a later file rewrote a record, e.g. a generation's
// index after a collection, the later one wins): a file SstFileWriter made
// that verifies whole is ingested as it is (linked, no copy); any other file
// (RocksDB's own flush and compaction outputs, or a damaged file) has its
// readable records copied into a new table file, which is ingested, and the
// original moves to lost/ together with the old metadata and logs. Nothing is
// deleted. An interrupted rebuild leaves its files in rebuild/, where the next
// one picks them up.
Status Rebuild(const std::string& path, uint32_t rank, RankStore::RepairReport* report) {
  const std::string what = What(path, rank);
  const std::string work = RankRebuildDir(path);
  DCP_RETURN_IF_ERROR(base::CreateDirs(work));
  DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(path));
  for (const auto& n : names) {
    const std::string f = base::JoinPath(path, n);
    if (IsTableFileName(n)) {
      std::string to = base::JoinPath(work, n);
      for (int i = 1; base::PathExists(to); ++i) to = base::JoinPath(work, std::to_string(i) + "-" + n);
      DCP_RETURN_IF_ERROR(base::RenameFile(f, to));
    } else if (n == "CURRENT" || n.rfind("MANIFEST-", 0) == 0 || n.rfind("OPTIONS-", 0) == 0 || n == "IDENTITY" ||
               (n.size() > 4 && n.compare(n.size() - 4, 4, ".log") == 0)) {
      DCP_RETURN_IF_ERROR(SetAside(path, f));
    }
  }
  DCP_RETURN_IF_ERROR(base::SyncDir(work));
  DCP_RETURN_IF_ERROR(base::SyncDir(path));

  rocksdb::Options o = BaseOptions();
  o.info_log = Logger(what, rocksdb::InfoLogLevel::ERROR_LEVEL);
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  DCP_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, path, &raw), "cannot create a new database for " + what));
  std::unique_ptr<rocksdb::DB> db(raw);

  DCP_ASSIGN_OR_RETURN(auto files, base::ListDir(work));
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(TableNumber(a), a) < std::make_pair(TableNumber(b), b);
  });
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  io.write_global_seqno = false;
  io.verify_checksums_before_ingest = true;
  for (const auto& n : files) {
    const std::string f = base::JoinPath(work, n);
    if (n.find(".rebuilt") != std::string::npos) {  // a copy an interrupted rebuild made
      DCP_RETURN_IF_ERROR(base::RemoveFile(f));
      continue;
    }
    rocksdb::SstFileReader reader(o);
    rocksdb::Status s = reader.Open(f);
    const bool opened = s.ok();  // GetTableProperties crashes on a reader that did not open
    bool external = false;
    if (opened) {
      const auto props = reader.GetTableProperties();
      external = props != nullptr && props->user_collected_properties.count("rocksdb.external_sst_file.version") > 0;
      s = reader.VerifyChecksum();
    }
    if (s.ok() && external && db->IngestExternalFile({f}, io).ok()) {
      ++report->tables_recovered;
      continue;
    }
    // Copy what reads back (checksums verified) into a new file.
    uint64_t copied = 0;
    if (opened) {
      const std::string copy = RebuiltTableFilePath(f);
      rocksdb::SstFileWriter writer(rocksdb::EnvOptions(o), o);
      rocksdb::ReadOptions ro;
      ro.verify_checksums = true;
      std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(ro));
      rocksdb::Status w = writer.Open(copy);
      for (it->SeekToFirst(); w.ok() && it->Valid(); it->Next()) {
        w = writer.Put(it->key(), it->value());
        ++copied;
      }
      if (w.ok() && copied > 0) w = writer.Finish();
      if (w.ok() && copied > 0) w = db->IngestExternalFile({copy}, io);
      if (!w.ok() || copied == 0) {
        copied = 0;
        base::RemoveFile(copy).IgnoreError();
      }
    }
    if (copied > 0) ++report->tables_recovered;
    DCP_RETURN_IF_ERROR(SetAside(path, f));
  }
  DCP_RETURN_IF_ERROR(FromRocks(db->Close(), "cannot close " + what));
  db.reset();
  DCP_RETURN_IF_ERROR(base::SyncDir(RankLostDir(path)));
  base::RemoveFile(work).IgnoreError();
  if (::rmdir(work.c_str()) != 0 && errno != ENOENT) return base::ErrnoStatus(errno, "cannot remove", work);
  report->action = "database rebuilt from its table files (" + std::to_string(report->tables_recovered) +
                   " ingested again)";
  return Status::OK();
}

// A value pinned in its table block (in the block cache), no copy.
struct SlicePin : PinnedValue::Pin {
  rocksdb::PinnableSlice slice;
};

class RocksDbRankStore : public RankStore {
 public:
  struct Rep {
    std::unique_ptr<rocksdb::DB> db;
    rocksdb::Options options;
  };
  RocksDbRankStore(std::unique_ptr<Rep> rep, std::string path, uint32_t rank, Mode mode)
      : RankStore(std::move(path), rank, mode), rep_(std::move(rep)) {}
  ~RocksDbRankStore() override {
    if (rep_->db) rep_->db->Close().PermitUncheckedError();
    rep_->db.reset();
  }

  Status Get(std::string_view key, PinnedValue* value, bool fill_cache) const override;
  Status ReadRun(const std::vector<std::string>& keys, uint64_t readahead, const RunFn& fn) const override;
  Status CatchUp() override;
  Result<std::unique_ptr<BulkWriter>> NewBulkWriter(std::string_view name) override;
  Result<std::vector<TableFile>> TableFiles() const override;
  Status Scan(std::string_view begin, std::string_view end,
              const std::function<Status(std::string_view, std::string_view)>& fn) const override;
  Status DropGeneration(uint64_t generation) override;
  Status CompactGeneration(uint64_t generation) override;
  Status RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                           const std::vector<std::pair<std::string, std::string>>& puts) override;

 private:
  std::unique_ptr<Rep> rep_;
};

// Builds one table file (SstFileWriter) and ingests it on Commit.
class RocksDbBulkWriter : public RankStore::BulkWriter {
 public:
  struct Rep;
  explicit RocksDbBulkWriter(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
  ~RocksDbBulkWriter() override;  // removes the table file unless committed
  Status Add(std::string_view key, std::string_view value) override;
  Status Commit() override;
  uint64_t records() const override { return records_; }

 private:
  std::unique_ptr<Rep> rep_;
  uint64_t records_ = 0;
};

Status CheckMetadataImpl(const std::string& path, uint32_t rank) {
  if (!base::IsDirectory(path)) return Status::NotFound(What(path, rank) + " does not exist");
  DCP_ASSIGN_OR_RETURN(DirContents contents, ScanRankDir(path));
  if (!contents.has_database()) return Status::OK();
  Status s = ListedTables(path, rank).status();
  if (s.ok()) return s;
  // Name the table file at fault where the metadata itself still reads.
  rocksdb::Options o = BaseOptions();
  o.info_log = Logger(What(path, rank), rocksdb::InfoLogLevel::FATAL_LEVEL);
  o.paranoid_checks = false;
  o.max_open_files = 4096;  // table files are not opened
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(o, path, &raw).ok()) return s;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<rocksdb::LiveFileMetaData> meta;
  db->GetLiveFilesMetaData(&meta);
  for (const auto& m : meta) {
    const std::string name = m.name.substr(m.name.find_last_of('/') + 1);
    const std::string file = base::JoinPath(path, name);
    struct stat st;
    if (::stat(file.c_str(), &st) != 0) {
      return Status::DataLoss(What(path, rank) + " is damaged: table file " + name + " is missing");
    }
    if (static_cast<uint64_t>(st.st_size) != m.size) {
      return Status::DataLoss(What(path, rank) + " is damaged: table file " + name + " is " +
                              std::to_string(st.st_size) + " bytes, its metadata says " + std::to_string(m.size));
    }
  }
  return s;
}

Result<RankStore::RepairReport> RepairImpl(const std::string& path, uint32_t rank) {
  const std::string what = What(path, rank);
  if (!base::IsDirectory(path)) return Status::NotFound(what + " does not exist");
  RankStore::RepairReport report;
  DCP_ASSIGN_OR_RETURN(DirContents contents, ScanRankDir(path));
  // Table files set aside earlier come back: the repair judges them by their
  // contents.
  const std::string quarantine = RankQuarantineDir(path);
  if (base::IsDirectory(quarantine)) {
    DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(quarantine));
    for (const auto& n : names) {
      if (!IsTableFileName(n) || base::PathExists(base::JoinPath(path, n))) continue;
      DCP_RETURN_IF_ERROR(base::RenameFile(base::JoinPath(quarantine, n), base::JoinPath(path, n)));
      contents.tables.push_back(n);
      ++report.tables_restored;
    }
  }
  std::sort(contents.tables.begin(), contents.tables.end());
  if (!contents.has_database()) return report;
  auto listed = ListedTables(path, rank);
  if (!contents.rebuild_pending && listed.ok() && listed->size() == contents.tables.size()) {
    return report;  // nothing to repair
  }
  report.problem = contents.rebuild_pending ? "an earlier repair was interrupted"
                   : listed.ok()            ? std::to_string(contents.tables.size() - listed->size()) +
                                       " table files are not listed in its metadata"
                                            : listed.status().message();
  // A missing or damaged CURRENT with an intact MANIFEST: point CURRENT at
  // the newest MANIFEST that opens consistently and lists every table file.
  std::sort(contents.manifests.rbegin(), contents.manifests.rend());
  const std::string current = base::JoinPath(path, "CURRENT");
  auto old_current = base::ReadFile(current, 4096);
  for (const auto& m : contents.rebuild_pending ? std::vector<std::string>{} : contents.manifests) {
    DCP_RETURN_IF_ERROR(base::WriteFileAtomic(current, current + ".dcp-repair", m + "\n"));
    auto tables = ListedTables(path, rank);
    if (tables.ok() && tables->size() == contents.tables.size()) {
      report.action = "CURRENT now names " + m;
      report.tables_recovered = tables->size();
      return report;
    }
  }
  if (old_current.ok()) {
    DCP_RETURN_IF_ERROR(base::WriteFileAtomic(current, current + ".dcp-repair", *old_current));
  }
  // Otherwise the database is rebuilt around its table files.
  const uint64_t lost_before = CountEntries(RankLostDir(path));
  DCP_RETURN_IF_ERROR(Rebuild(path, rank, &report));
  report.files_set_aside = CountEntries(RankLostDir(path)) - lost_before;
  return report;
}

Result<std::unique_ptr<RankStore>> OpenImpl(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                            const RankStoreOptions& options) {
  using Mode = RankStore::Mode;
  const std::string what = What(path, rank);
  auto rep = std::make_unique<RocksDbRankStore::Rep>();
  rep->options = BaseOptions();
  rocksdb::DB* db = nullptr;
  if (mode == Mode::kWrite) {
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

    // RocksDB, opened for writing, creates a new empty database where CURRENT
    // is missing and deletes every table file its MANIFEST does not list: on
    // a damaged store, every earlier step's records. So the metadata is
    // checked first, with a read-only instance that changes nothing; a
    // damaged store is repaired (nothing deleted) or refused, and table files
    // the metadata does not list are set aside, never handed to RocksDB.
    DCP_ASSIGN_OR_RETURN(DirContents contents, ScanRankDir(path));
    if (contents.has_database()) {
      auto listed = contents.rebuild_pending
                        ? Result<std::set<std::string>>(Status::DataLoss(what + ": an earlier repair was interrupted"))
                        : ListedTables(path, rank);
      if (!listed.ok()) {
        if (!options.repair) {
          return Status::DataLoss(listed.status().message() +
                                  " (nothing was changed; `dcp-inspect ROOT repair` rebuilds it from its table files)");
        }
        DCP_ASSIGN_OR_RETURN(RankStore::RepairReport repaired, RepairImpl(path, rank));
        Log(LogLevel::kWarning, what + ": repaired (" + repaired.problem + "): " + repaired.action + "; " +
                                    std::to_string(repaired.tables_recovered) + " table files in use, " +
                                    std::to_string(repaired.files_set_aside) + " files set aside in " +
                                    RankLostDir(path));
        DCP_ASSIGN_OR_RETURN(contents, ScanRankDir(path));
        listed = ListedTables(path, rank);
        if (!listed.ok()) return listed.status().Annotate("after repair");
      }
      DCP_RETURN_IF_ERROR(QuarantineUnlisted(path, contents, *listed).status().Annotate(what));
    }
    rep->options.create_if_missing = !contents.has_database();
    rep->options.info_log = Logger(what, rocksdb::InfoLogLevel::ERROR_LEVEL);
    DCP_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(rep->options, path, &db), "cannot open " + what));
    rep->db.reset(db);
    db = nullptr;
    // Whatever the log replayed (a collection killed mid-way) goes into a
    // table file now, where garbage collection can see and finish it.
    DCP_RETURN_IF_ERROR(FromRocks(rep->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  } else if (mode == Mode::kSalvage) {
    if (!base::IsDirectory(path)) return Status::NotFound(what + " does not exist");
    rep->options.info_log = Logger(what, rocksdb::InfoLogLevel::FATAL_LEVEL);
    rep->options.create_if_missing = false;
    rep->options.paranoid_checks = false;  // open what is there; a missing table file is not fatal
    // Not -1: RocksDB would then serve a read-only store whose files sit in
    // one level with CompactedDBImpl, which crashes reading a missing file.
    // Table files are opened as records are read.
    rep->options.max_open_files = 4096;
    const rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rep->options, path, &db);
    if (!s.ok()) return Status::DataLoss("cannot open " + what + ": " + s.ToString());
  } else {
    if (!base::IsDirectory(path)) return Status::NotFound(what + " does not exist");
    rep->options.info_log = Logger(what, rocksdb::InfoLogLevel::FATAL_LEVEL);
    rep->options.create_if_missing = false;
    const std::string secondary = SecondaryScratchDir();
    DCP_RETURN_IF_ERROR(MakeSecondaryScratchDir(secondary));
    const rocksdb::Status s = rocksdb::DB::OpenAsSecondary(rep->options, path, secondary, &db);
    if (!s.ok()) {
      if (s.IsCorruption()) return Status::DataLoss("cannot open " + what + ": " + s.ToString());
      return Status::IOError("cannot open " + what + ": " + s.ToString());
    }
  }
  if (db != nullptr) rep->db.reset(db);
  return std::unique_ptr<RankStore>(new RocksDbRankStore(std::move(rep), path, rank, mode));
}

Status RocksDbRankStore::Get(std::string_view key, PinnedValue* value, bool fill_cache) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = fill_cache;  // see SharedBlockCache
  ro.verify_checksums = true;
  // The pin of the previous read is reused: no allocation per record.
  auto* pin = dynamic_cast<SlicePin*>(value->pin());
  if (pin == nullptr) {
    auto fresh = std::make_unique<SlicePin>();
    pin = fresh.get();
    value->Reset({}, std::move(fresh));
  }
  value->set_view({});
  pin->slice.Reset();
  const rocksdb::Status s = rep_->db->Get(ro, rep_->db->DefaultColumnFamily(), rocksdb::Slice(key.data(), key.size()),
                                          &pin->slice);
  if (s.ok()) value->set_view(std::string_view(pin->slice.data(), pin->slice.size()));
  if (s.IsNotFound()) return Status::NotFound("record '" + std::string(key) + "' not found in " + What());
  return FromRocks(s, "cannot read record '" + std::string(key) + "' from " + What());
}

Status RocksDbRankStore::CatchUp() {
  if (mode() == Mode::kWrite) return Status::OK();
  return FromRocks(rep_->db->TryCatchUpWithPrimary(),
                   "cannot catch up with " + What());
}

struct RocksDbBulkWriter::Rep {
  rocksdb::DB* db = nullptr;
  std::unique_ptr<rocksdb::SstFileWriter> writer;
  std::string file;
  std::string what;
  bool opened = false;
  bool done = false;
};

RocksDbBulkWriter::~RocksDbBulkWriter() {
  if (!rep_->done) {
    rep_->writer.reset();
    base::RemoveFile(rep_->file).IgnoreError();
  }
}

Status RocksDbBulkWriter::Add(std::string_view key, std::string_view value) {
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

Status RocksDbBulkWriter::Commit() {
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

Result<std::unique_ptr<RankStore::BulkWriter>> RocksDbRankStore::NewBulkWriter(std::string_view name) {
  if (mode() != Mode::kWrite) {
    return Status::FailedPrecondition(What() + " is open read-only");
  }
  auto rep = std::make_unique<RocksDbBulkWriter::Rep>();
  rep->db = rep_->db.get();
  rep->writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(rep_->options), rep_->options);
  rep->file = IngestFilePath(path(), name);
  rep->what = What();
  return std::unique_ptr<BulkWriter>(new RocksDbBulkWriter(std::move(rep)));
}

Status RocksDbRankStore::ReadRun(const std::vector<std::string>& keys, uint64_t readahead, const RunFn& fn) const {
  if (keys.empty()) return Status::OK();
  // Blocks are read `readahead` bytes at a time and copied out of that
  // buffer; they do not go through the block cache (each is read once).
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.verify_checksums = true;
  ro.readahead_size = readahead;
  const std::string upper = keys.back() + '\0';  // the least key after the last one
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;
  for (size_t i = 0; i < keys.size(); ++i) {
    const rocksdb::Slice key(keys[i]);
    if (it == nullptr) it.reset(rep_->db->NewIterator(ro));
    // The next record is usually the one wanted; else seek (from the index).
    if (!it->Valid() || it->key() != key) it->Seek(key);
    Status s;
    std::string_view value;
    if (it->Valid() && it->key() == key) {
      value = std::string_view(it->value().data(), it->value().size());
    } else if (!it->status().ok()) {
      s = FromRocks(it->status(), "cannot read record '" + keys[i] + "' from " + What());
      it.reset();  // a damaged block: the next key starts afresh
    } else {
      s = Status::NotFound("record '" + keys[i] + "' not found in " + What());
    }
    DCP_RETURN_IF_ERROR(fn(i, s, value));
    if (s.ok()) it->Next();
  }
  return Status::OK();
}

Result<std::vector<RankStore::TableFile>> RocksDbRankStore::TableFiles() const {
  std::vector<rocksdb::LiveFileMetaData> meta;
  rep_->db->GetLiveFilesMetaData(&meta);
  std::vector<TableFile> files;
  files.reserve(meta.size());
  for (const auto& m : meta) files.push_back({m.name, m.level, m.size, m.smallestkey, m.largestkey});
  return files;
}

Status RocksDbRankStore::Scan(std::string_view begin, std::string_view end,
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
  return FromRocks(it->status(), "cannot scan " + What());
}

Status RocksDbRankStore::DropGeneration(uint64_t generation) {
  if (mode() != Mode::kWrite) return Status::FailedPrecondition(What() + " is open read-only");
  const std::string what = What();
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
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("gc.after_range_delete", static_cast<int>(rank())));
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  return CompactGeneration(generation);
}

Status RocksDbRankStore::CompactGeneration(uint64_t generation) {
  const auto [b, e] = GenerationRange(generation);
  const rocksdb::Slice begin(b), end(e);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  co.exclusive_manual_compaction = true;
  return FromRocks(rep_->db->CompactRange(co, &begin, &end),
                   "cannot compact " + What());
}

Status RocksDbRankStore::RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                                    const std::vector<std::pair<std::string, std::string>>& puts) {
  if (mode() != Mode::kWrite) return Status::FailedPrecondition(What() + " is open read-only");
  const std::string what = What();
  rocksdb::WriteBatch batch;
  for (const std::string& k : keys) DCP_RETURN_IF_ERROR(FromRocks(batch.Delete(k), "cannot delete in " + what));
  for (const auto& [k, v] : puts) DCP_RETURN_IF_ERROR(FromRocks(batch.Put(k, v), "cannot write in " + what));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Write(wo, &batch), "cannot write to " + what));
  DCP_RETURN_IF_ERROR(FromRocks(rep_->db->Flush(rocksdb::FlushOptions()), "cannot flush " + what));
  return CompactGeneration(generation);
}

class RocksDbBackendImpl : public RankStoreBackend {
 public:
  std::string Name() const override { return "rocksdb"; }
  Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                          const RankStoreOptions& options) override {
    return OpenImpl(path, rank, mode, options);
  }
  Status CheckMetadata(const std::string& path, uint32_t rank) override { return CheckMetadataImpl(path, rank); }
  Result<RankStore::RepairReport> Repair(const std::string& path, uint32_t rank) override {
    return RepairImpl(path, rank);
  }
};

}  // namespace

RankStoreBackend* RocksDbBackend() {
  static RocksDbBackendImpl* const backend = new RocksDbBackendImpl();
  return backend;
}

RankStoreBackend* DefaultBackend() { return RocksDbBackend(); }

}  // namespace dcp::storage
