// Copyright (c) dcp authors.
//
// FaultBackend: a rank store backend that wraps another one and injects
// failures where a test asks for them, programmatically (RocksDB's
// FaultInjectionTestFS; no environment variables, nothing armed process-wide).
// Every store it opens forwards to a store of the wrapped backend; each call
// is one operation (Op) that the test can make fail:
//
//   FailAt      the nth call of an operation (optionally: on one rank's
//               stores) returns IOError and does nothing.
//   ShortWriteAt
//               the nth BulkWriter::Commit makes only the first `keep`
//               records of its batch (in key order) durable and visible, as
//               one ingestion, and then returns IOError saying so: a table
//               file that was cut short and still ingested. The caller must
//               treat the put as failed; the records that made it are
//               garbage of an uncommitted put (nothing references them).
//   CrashAt     at the nth call of an operation (before it does anything, or
//               after it completed) the backend "crashes": that call and every
//               later call of every store it opened, and of the backend,
//               return IOError saying the store crashed. on_crash runs once;
//               over a MemoryBackend pass [&] { memory.Crash(); } so that
//               what bulk writers had not committed is lost and the writer
//               locks are released, as when a process dies. A test then opens
//               fresh stores on the wrapped backend (or a new FaultBackend) and
//               checks recovery, all in one process.
//
// A bulk writer of this backend keeps its records until Commit and then adds
// them to the wrapped backend's bulk writer (that is how a short write can
// cut the batch): tests only, never on a load path.
//
// Calls are counted per rule from the moment it is armed; `rank` < 0 matches
// every rank. Errors name the operation, the rank and the path, and say
// "fault backend".
//
// Thread safety: thread-safe; arming while stores are in use is allowed. The
// wrapped backend must outlive this one and its stores.

#ifndef DCP_ENGINE_STORE_FAULT_RANK_STORE_H_
#define DCP_ENGINE_STORE_FAULT_RANK_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/store/rank_store.h"

namespace dcp::storage {

class FaultBackend : public RankStoreBackend {
 public:
  // The operations, one per call of RankStoreBackend, RankStore and
  // RankStore::BulkWriter.
  enum class Op {
    kOpen,
    kCheckMetadata,
    kRepair,
    kGet,
    kCatchUp,
    kNewBulkWriter,
    kAdd,
    kCommit,
    kTableFiles,  // NewestGeneration too
    kScan,
    kDrop,
    kCompact,
    kRewrite,
  };
  // "open", "get", "commit", ...
  static std::string_view OpName(Op op);

  enum class When { kBefore, kAfter };
  static constexpr int kForever = -1;

  explicit FaultBackend(RankStoreBackend* base, std::function<void()> on_crash = nullptr);
  ~FaultBackend() override;

  // Calls nth .. nth + times - 1 (counting from 1; times kForever: every
  // call from the nth on) of `op` on rank `rank`'s stores return IOError.
  void FailAt(Op op, int nth = 1, int rank = -1, int times = 1);
  // The nth Commit on `rank`'s stores commits only the first `keep` records.
  void ShortWriteAt(uint64_t keep, int nth = 1, int rank = -1);
  // The nth call of `op` on `rank`'s stores crashes the backend, before the
  // call does anything or after it completed.
  void CrashAt(Op op, int nth = 1, int rank = -1, When when = When::kBefore);
  // Crashes now.
  void Crash();
  bool crashed() const;
  // Disarms every rule (a crash stays).
  void Disarm();
  // Calls of `op` seen so far, all ranks (failed ones included).
  uint64_t calls(Op op) const;

  std::string Name() const override;
  Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                          const RankStoreOptions& options) override;
  Status CheckMetadata(const std::string& path, uint32_t rank) override;
  Result<RankStore::RepairReport> Repair(const std::string& path, uint32_t rank) override;

  struct State;  // the rules and the crash, shared with the stores opened

 private:
  RankStoreBackend* const base_;
  std::shared_ptr<State> state_;
};

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_FAULT_RANK_STORE_H_
