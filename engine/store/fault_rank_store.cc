// Copyright (c) dcp authors.

#include "engine/store/fault_rank_store.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <utility>
#include <vector>

namespace dcp::storage {

using Op = FaultBackend::Op;
using When = FaultBackend::When;

namespace {

constexpr int kOps = static_cast<int>(Op::kRewrite) + 1;

std::string What(const std::string& path, uint32_t rank) {
  return "rank store " + std::to_string(rank) + " at '" + path + "'";
}

struct Rule {
  enum class Kind { kError, kShortWrite, kCrash } kind = Kind::kError;
  Op op = Op::kOpen;
  int rank = -1;
  int nth = 1;
  int times = 1;  // kForever: unbounded
  uint64_t keep = 0;
  When when = When::kBefore;
  int seen = 0;
};

// What one call is to do.
struct Decision {
  Status status;                  // not OK: fail now, doing nothing
  bool crash_after = false;       // complete the call, then crash
  bool short_write = false;       // Commit: only `keep` records
  uint64_t keep = 0;
};

}  // namespace

struct FaultBackend::State {
  explicit State(std::function<void()> hook) : on_crash(std::move(hook)) {}

  // Counts a call of `op` on `rank`'s store `what` against every rule.
  Decision Enter(Op op, uint32_t rank, const std::string& what) {
    Decision d;
    bool crash_now = false;
    std::string crash_at;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++calls[static_cast<int>(op)];
      if (crashed) {
        d.status = CrashedLocked(what);
        return d;
      }
      for (Rule& r : rules) {
        if (r.op != op || (r.rank >= 0 && static_cast<uint32_t>(r.rank) != rank)) continue;
        const int n = ++r.seen;
        if (n < r.nth || (r.times != kForever && n >= r.nth + r.times)) continue;
        const std::string call = std::string(OpName(op)) + " #" + std::to_string(n);
        switch (r.kind) {
          case Rule::Kind::kError:
            if (d.status.ok()) {
              d.status = Status::IOError("injected I/O error in " + call + " of " + what + " (fault backend)");
            }
            break;
          case Rule::Kind::kShortWrite:
            d.short_write = true;
            d.keep = r.keep;
            break;
          case Rule::Kind::kCrash:
            if (r.when == When::kBefore) {
              crash_now = true;
            } else {
              d.crash_after = true;
            }
            crash_at = call;
            break;
        }
      }
      if (crash_now) {
        crashed = true;
        crash_what = "at " + crash_at + " of " + what;
        d.status = CrashedLocked(what);
      } else if (d.crash_after) {
        pending_crash = crash_at + " of " + what;
      }
    }
    if (crash_now) RunHook();
    return d;
  }

  // The call of a kAfter crash completed: crash now.
  Status CrashAfter(const std::string& what) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!crashed) {
        crashed = true;
        crash_what = "after " + pending_crash;
      }
    }
    RunHook();
    std::lock_guard<std::mutex> lock(mu);
    return CrashedLocked(what);
  }

  void CrashNow() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (crashed) return;
      crashed = true;
      crash_what = "on request";
    }
    RunHook();
  }

  Status CrashedLocked(const std::string& what) const {
    return Status::IOError(what + ": the store crashed (fault backend, " + crash_what + ")");
  }

  void RunHook() {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu);
      hook = std::move(on_crash);
      on_crash = nullptr;
    }
    if (hook) hook();
  }

  mutable std::mutex mu;
  std::vector<Rule> rules;            // guarded by mu
  std::array<uint64_t, kOps> calls{};  // guarded by mu
  bool crashed = false;               // guarded by mu
  std::string crash_what;             // guarded by mu
  std::string pending_crash;          // guarded by mu
  std::function<void()> on_crash;     // guarded by mu; runs once
};

namespace {

using State = FaultBackend::State;

// Runs `call` as operation `op`: fails or crashes where a rule says so.
template <typename F>
auto Guarded(State* state, Op op, uint32_t rank, const std::string& what, F&& call) -> decltype(call()) {
  Decision d = state->Enter(op, rank, what);
  if (!d.status.ok()) return d.status;
  auto result = call();
  if (d.crash_after) return state->CrashAfter(what);
  return result;
}

class FaultBulkWriter : public RankStore::BulkWriter {
 public:
  FaultBulkWriter(std::shared_ptr<State> state, std::unique_ptr<RankStore::BulkWriter> base, uint32_t rank,
                  std::string what)
      : state_(std::move(state)), base_(std::move(base)), rank_(rank), what_(std::move(what)) {}

  Status Add(std::string_view key, std::string_view value) override {
    return Guarded(state_.get(), Op::kAdd, rank_, what_, [&]() -> Status {
      if (!batch_.empty() && key <= batch_.back().first) {
        return Status::InvalidArgument("cannot write record '" + std::string(key) + "' to " + what_ +
                                       ": keys must be strictly increasing");
      }
      batch_.emplace_back(std::string(key), std::string(value));
      return Status::OK();
    });
  }

  Status Commit() override {
    Decision d = state_->Enter(Op::kCommit, rank_, what_);
    if (!d.status.ok()) return d.status;
    const size_t n = d.short_write ? std::min<size_t>(batch_.size(), d.keep) : batch_.size();
    Status s;
    for (size_t i = 0; i < n && s.ok(); ++i) s = base_->Add(batch_[i].first, batch_[i].second);
    if (s.ok()) s = base_->Commit();
    if (d.crash_after) return state_->CrashAfter(what_);
    if (!s.ok()) return s;
    if (d.short_write && n < batch_.size()) {
      return Status::IOError("short write to " + what_ + ": only " + std::to_string(n) + " of " +
                             std::to_string(batch_.size()) + " records were committed (fault backend)");
    }
    return Status::OK();
  }

  uint64_t records() const override { return batch_.size(); }

 private:
  const std::shared_ptr<State> state_;
  const std::unique_ptr<RankStore::BulkWriter> base_;
  const uint32_t rank_;
  const std::string what_;
  std::vector<std::pair<std::string, std::string>> batch_;
};

class FaultRankStore : public RankStore {
 public:
  FaultRankStore(std::shared_ptr<State> state, std::unique_ptr<RankStore> base)
      : RankStore(base->path(), base->rank(), base->mode()), state_(std::move(state)), base_(std::move(base)) {}

  Status Get(std::string_view key, PinnedValue* value, bool fill_cache) const override {
    return Guarded(state_.get(), Op::kGet, rank(), What(), [&] { return base_->Get(key, value, fill_cache); });
  }
  Status CatchUp() override {
    return Guarded(state_.get(), Op::kCatchUp, rank(), What(), [&] { return base_->CatchUp(); });
  }
  Result<std::unique_ptr<BulkWriter>> NewBulkWriter(std::string_view name) override {
    return Guarded(state_.get(), Op::kNewBulkWriter, rank(), What(),
                   [&]() -> Result<std::unique_ptr<BulkWriter>> {
                     DCP_ASSIGN_OR_RETURN(auto w, base_->NewBulkWriter(name));
                     return std::unique_ptr<BulkWriter>(new FaultBulkWriter(state_, std::move(w), rank(), What()));
                   });
  }
  Result<std::vector<TableFile>> TableFiles() const override {
    return Guarded(state_.get(), Op::kTableFiles, rank(), What(), [&] { return base_->TableFiles(); });
  }
  Status Scan(std::string_view begin, std::string_view end,
              const std::function<Status(std::string_view, std::string_view)>& fn) const override {
    return Guarded(state_.get(), Op::kScan, rank(), What(), [&] { return base_->Scan(begin, end, fn); });
  }
  Status DropGeneration(uint64_t generation) override {
    return Guarded(state_.get(), Op::kDrop, rank(), What(), [&] { return base_->DropGeneration(generation); });
  }
  Status CompactGeneration(uint64_t generation) override {
    return Guarded(state_.get(), Op::kCompact, rank(), What(), [&] { return base_->CompactGeneration(generation); });
  }
  Status RewriteGeneration(uint64_t generation, const std::vector<std::string>& keys,
                           const std::vector<std::pair<std::string, std::string>>& puts) override {
    return Guarded(state_.get(), Op::kRewrite, rank(), What(),
                   [&] { return base_->RewriteGeneration(generation, keys, puts); });
  }

 private:
  const std::shared_ptr<State> state_;
  const std::unique_ptr<RankStore> base_;
};

}  // namespace

std::string_view FaultBackend::OpName(Op op) {
  switch (op) {
    case Op::kOpen: return "open";
    case Op::kCheckMetadata: return "check_metadata";
    case Op::kRepair: return "repair";
    case Op::kGet: return "get";
    case Op::kCatchUp: return "catch_up";
    case Op::kNewBulkWriter: return "new_bulk_writer";
    case Op::kAdd: return "add";
    case Op::kCommit: return "commit";
    case Op::kTableFiles: return "table_files";
    case Op::kScan: return "scan";
    case Op::kDrop: return "drop";
    case Op::kCompact: return "compact";
    case Op::kRewrite: return "rewrite";
  }
  return "?";
}

FaultBackend::FaultBackend(RankStoreBackend* base, std::function<void()> on_crash)
    : base_(base), state_(std::make_shared<State>(std::move(on_crash))) {}
FaultBackend::~FaultBackend() = default;

void FaultBackend::FailAt(Op op, int nth, int rank, int times) {
  Rule r;
  r.kind = Rule::Kind::kError;
  r.op = op;
  r.nth = nth;
  r.rank = rank;
  r.times = times;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.push_back(r);
}

void FaultBackend::ShortWriteAt(uint64_t keep, int nth, int rank) {
  Rule r;
  r.kind = Rule::Kind::kShortWrite;
  r.op = Op::kCommit;
  r.nth = nth;
  r.rank = rank;
  r.keep = keep;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.push_back(r);
}

void FaultBackend::CrashAt(Op op, int nth, int rank, When when) {
  Rule r;
  r.kind = Rule::Kind::kCrash;
  r.op = op;
  r.nth = nth;
  r.rank = rank;
  r.when = when;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.push_back(r);
}

void FaultBackend::Crash() { state_->CrashNow(); }

bool FaultBackend::crashed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->crashed;
}

void FaultBackend::Disarm() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.clear();
}

uint64_t FaultBackend::calls(Op op) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->calls[static_cast<int>(op)];
}

std::string FaultBackend::Name() const { return "fault(" + base_->Name() + ")"; }

Result<std::unique_ptr<RankStore>> FaultBackend::Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                                      const RankStoreOptions& options) {
  return Guarded(state_.get(), Op::kOpen, rank, What(path, rank), [&]() -> Result<std::unique_ptr<RankStore>> {
    DCP_ASSIGN_OR_RETURN(auto store, base_->Open(path, rank, mode, options));
    return std::unique_ptr<RankStore>(new FaultRankStore(state_, std::move(store)));
  });
}

Status FaultBackend::CheckMetadata(const std::string& path, uint32_t rank) {
  return Guarded(state_.get(), Op::kCheckMetadata, rank, What(path, rank),
                 [&] { return base_->CheckMetadata(path, rank); });
}

Result<RankStore::RepairReport> FaultBackend::Repair(const std::string& path, uint32_t rank) {
  return Guarded(state_.get(), Op::kRepair, rank, What(path, rank), [&] { return base_->Repair(path, rank); });
}

}  // namespace dcp::storage
