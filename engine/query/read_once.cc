// Copyright (c) dcp authors.

#include "engine/query/read_once.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/buffer.h"
#include "engine/base/thread_pool.h"
#include "engine/query/assembler.h"
#include "engine/query/read_once_messages.h"
#include "engine/query/read_once_schedule.h"
#include "engine/store/rank_store.h"

namespace dcp::query {
namespace {

// Ordinals of the manifest's chunks: tensor i's chunk j is base[i] + j.
class Ordinals {
 public:
  explicit Ordinals(const manifest::StepManifest& m) : m_(m) {
    base_.reserve(m.tensors.size() + 1);
    uint64_t n = 0;
    for (const auto& t : m.tensors) {
      base_.push_back(n);
      n += t.chunks.size();
    }
    base_.push_back(n);
  }
  uint64_t total() const { return base_.back(); }
  ChunkOrdinal Of(const ChunkRead& r) const {
    const size_t t = static_cast<size_t>(r.tensor - m_.tensors.data());
    return base_[t] + static_cast<uint64_t>(r.chunk - r.tensor->chunks.data());
  }
  const manifest::ChunkEntry& Chunk(ChunkOrdinal c) const {
    const size_t t = static_cast<size_t>(std::upper_bound(base_.begin(), base_.end(), c) - base_.begin()) - 1;
    return m_.tensors[t].chunks[c - base_[t]];
  }

 private:
  const manifest::StepManifest& m_;
  std::vector<uint64_t> base_;
};

// This rank's error state and counters, shared by its tasks.
class Progress {
 public:
  void Fail(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_.ok()) status_ = std::move(s);
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  std::atomic<uint64_t> chunks_read{0}, bytes_read{0};
  std::atomic<uint64_t> chunks_sent{0}, bytes_sent{0};
  std::atomic<uint64_t> chunks_received{0}, bytes_received{0};

 private:
  mutable std::mutex mu_;
  Status status_;
  std::atomic<bool> failed_{false};
};

// Direct reads under a byte budget, in tasks (PlanReadTasks: the stores'
// physical order, small records in runs), launched as earlier ones finish
// (from the finishing task itself), so that the calling thread never blocks
// on them while it runs the exchange rounds.
class DirectReads {
 public:
  DirectReads(std::vector<const ChunkRead*> reads, uint64_t limit, StoreSet* stores, uint64_t generation, int rank,
              base::ThreadPool* pool, Progress* progress)
      : limit_(std::max<uint64_t>(limit, 1)), tasks_(PlanReadTasks(std::move(reads), limit_)), stores_(stores),
        generation_(generation), rank_(rank), group_(pool), progress_(progress) {}

  void Pump() {
    std::lock_guard<std::mutex> lock(mu_);
    while (next_ < tasks_.size() && !progress_->failed()) {
      const ReadTask* task = &tasks_[next_];
      if (inflight_ > 0 && inflight_ + task->cost > limit_) break;
      inflight_ += task->cost;
      ++next_;
      group_.Run([this, task] {
        if (!progress_->failed()) {
          Status s = ExecuteReadTask(stores_, generation_, *task, rank_);
          if (s.ok()) {
            progress_->chunks_read.fetch_add(task->reads.size(), std::memory_order_relaxed);
            progress_->bytes_read.fetch_add(task->stored, std::memory_order_relaxed);
          } else {
            progress_->Fail(std::move(s));
          }
        }
        {
          std::lock_guard<std::mutex> l(mu_);
          inflight_ -= task->cost;
        }
        Pump();
        return Status::OK();
      });
    }
  }

  void Wait() { group_.Wait().IgnoreError(); }

 private:
  const uint64_t limit_;
  const std::vector<ReadTask> tasks_;
  StoreSet* const stores_;
  const uint64_t generation_;
  const int rank_;
  base::TaskGroup group_;
  Progress* const progress_;
  std::mutex mu_;
  size_t next_ = 0;        // guarded by mu_
  uint64_t inflight_ = 0;  // guarded by mu_
};

// A record this rank reads as the reader of a shared chunk. Its bytes,
// checked and decoded here, wait to be sent in the staging buffer, at a place
// set aside by the manifest's stored size: one buffer, reused from round to
// round (no allocation, no fresh pages per record). A round's records are in
// its messages before the next round's reads start, so one buffer is enough
// and holds no more than the records did.
struct Fetched {
  const SharedChunk* shared = nullptr;
  const ChunkRead* read = nullptr;  // this rank's own use of the chunk
  uint64_t offset = 0, size = 0;    // its place in the staging buffer
  std::string spill;                // the record if its size is not the manifest's
  bool spilled = false;
  bool ok = false;
};

// A record received in a round, to check and decode. They are decoded in
// tasks of neighbours (SplitIntoTasks: a record of 1 MiB or more alone,
// smaller ones in runs), so that handing a task to a thread costs little
// against its work.
struct Received {
  const ChunkRead* read;
  std::string_view record;
  int sender;
};

}  // namespace

Status ExecuteReadOnce(Communicator* comm, StoreSet* stores, const manifest::StepManifest* m, const ReadPlan& plan,
                       const Status& local, const LoadOptions& options, LoadReport* report,
                       base::ThreadPool* shared_pool) {
  const int me = comm->rank();
  const int n = comm->size();
  const bool can = local.ok() && m != nullptr;

  // 1. Needs.
  std::unique_ptr<Ordinals> ordinals;
  std::vector<std::pair<ChunkOrdinal, const ChunkRead*>> mine;  // by ordinal
  if (can) {
    ordinals = std::make_unique<Ordinals>(*m);
    mine.reserve(plan.reads.size());
    for (const ChunkRead& r : plan.reads) mine.emplace_back(ordinals->Of(r), &r);
    std::sort(mine.begin(), mine.end());
  }
  std::vector<ChunkOrdinal> my_needs;
  my_needs.reserve(mine.size());
  for (const auto& [c, r] : mine) my_needs.push_back(c);
  const uint64_t my_budget = std::max<uint64_t>(options.max_inflight_bytes / 4, 1);
  std::vector<std::string> gathered;
  DCP_RETURN_IF_ERROR(
      comm->AllGather(EncodeReadOnceNeeds(!can, my_budget, can ? ordinals->total() : 0, my_needs), &gathered));
  if (!can) return local;  // every rank sees the flag and skips the rest
  std::vector<std::vector<ChunkOrdinal>> needs(static_cast<size_t>(n));
  uint64_t budget = my_budget;
  for (int r = 0; r < n; ++r) {
    // Every rank decodes the same bytes (its own included): a malformed
    // message fails all alike, and a failed rank stops all alike.
    ReadOnceNeeds d;
    DCP_RETURN_IF_ERROR(DecodeReadOnceNeeds(gathered[static_cast<size_t>(r)], r, ordinals->total(), &d));
    if (d.failed) return Status::OK();  // that rank reports its own error
    budget = std::min(budget, std::max<uint64_t>(d.budget, 1));
    needs[static_cast<size_t>(r)] = std::move(d.chunks);
  }
  gathered.clear();

  // 2. The schedule, the same on every rank.
  const ReadOnceSchedule schedule =
      PlanReadOnce(needs, [&](ChunkOrdinal c) { return ordinals->Chunk(c).record.stored_size; }, budget);
  needs.clear();
  auto my_read = [&](ChunkOrdinal c) -> const ChunkRead* {
    auto it = std::lower_bound(mine.begin(), mine.end(), std::make_pair(c, static_cast<const ChunkRead*>(nullptr)));
    return it != mine.end() && it->first == c ? it->second : nullptr;
  };

  // 3. Direct reads in the background, in plan order (store by store).
  Progress progress;
  std::unique_ptr<base::ThreadPool> own_pool;
  base::ThreadPool& pool = *base::SharedOrOwn(shared_pool, base::ResolveThreadCount(options.read_threads), &own_pool);
  std::vector<const ChunkRead*> direct;
  {
    const auto& d = schedule.direct[static_cast<size_t>(me)];
    for (const ChunkRead& r : plan.reads) {
      if (std::binary_search(d.begin(), d.end(), ordinals->Of(r))) direct.push_back(&r);
    }
  }
  DirectReads direct_reads(std::move(direct), options.max_inflight_bytes / 2, stores, m->generation, me, &pool,
                           &progress);
  direct_reads.Pump();

  // Rounds: fetch(k + 1) overlaps exchange and decode of round k. A round's
  // records are read in tasks (runs of neighbours), each record kept to send.
  base::Buffer staging;
  auto fetch = [&](size_t k, std::vector<std::unique_ptr<Fetched>>* out, base::TaskGroup* group) {
    out->clear();
    std::vector<const ChunkRead*> reads;
    std::map<const ChunkRead*, Fetched*> by_read;
    uint64_t staged = 0;
    for (size_t i = schedule.round_begin(k); i < schedule.round_end[k]; ++i) {
      const SharedChunk& sc = schedule.shared[i];
      if (sc.reader != me) continue;
      auto f = std::make_unique<Fetched>();
      f->shared = &sc;
      f->read = my_read(sc.chunk);  // a reader is always one of the chunk's needers
      f->offset = staged;
      f->size = f->read->chunk->record.stored_size;
      staged += f->size;
      reads.push_back(f->read);
      by_read[f->read] = f.get();
      out->push_back(std::move(f));
    }
    staging.Resize(0);  // nothing in it is kept: growing it copies nothing
    staging.Resize(staged);
    char* const base = staging.data();
    auto tasks = std::make_shared<std::vector<ReadTask>>(PlanReadTasks(std::move(reads), budget));
    for (const ReadTask& task : *tasks) {
      std::vector<Fetched*> targets;
      for (const ChunkRead* r : task.reads) targets.push_back(by_read.at(r));
      group->Run([&, base, tasks, task = &task, targets = std::move(targets)] {
        if (progress.failed()) return Status::OK();  // sends "unavailable"
        Status s = ExecuteReadTask(stores, m->generation, *task, me, [&](size_t i, std::string_view record) {
          Fetched* f = targets[i];
          if (record.size() == f->size) {
            std::memcpy(base + f->offset, record.data(), record.size());
          } else {
            // Checked against the manifest all the same, only not the size
            // the schedule set aside for it.
            f->spill.assign(record);
            f->spilled = true;
          }
          f->ok = true;
        });
        if (!s.ok()) {
          progress.Fail(std::move(s));
          return Status::OK();
        }
        progress.chunks_read.fetch_add(task->reads.size(), std::memory_order_relaxed);
        progress.bytes_read.fetch_add(task->stored, std::memory_order_relaxed);
        return Status::OK();
      });
    }
  };

  Status comm_status;
  // Kept across rounds: a round's messages reuse the last round's buffers.
  std::vector<std::string> send(static_cast<size_t>(n)), recv;
  const size_t rounds = schedule.rounds();
  std::vector<std::unique_ptr<Fetched>> fetched[2];
  std::unique_ptr<base::TaskGroup> fetching[2];
  std::vector<Received> received;
  if (rounds > 0) {
    fetching[0] = std::make_unique<base::TaskGroup>(&pool);
    fetch(0, &fetched[0], fetching[0].get());
  }
  auto record_of = [&](const Fetched& f) {
    return f.spilled ? std::string_view(f.spill) : std::string_view(staging.data() + f.offset, f.size);
  };
  for (size_t k = 0; k < rounds; ++k) {
    const size_t cur = k % 2, nxt = (k + 1) % 2;
    fetching[cur]->Wait().IgnoreError();

    // Messages of round k (read_once_messages.h): the flag, then this rank's
    // records for each peer in schedule order.
    std::vector<wire::Writer> writers;
    {
      std::vector<size_t> bytes(static_cast<size_t>(n), 1);
      for (const auto& f : fetched[cur]) {
        const uint64_t size = f->spilled ? f->spill.size() : f->size;
        for (int r : f->shared->receivers) bytes[static_cast<size_t>(r)] += size + kReadOnceEntryBytes;
      }
      writers.reserve(static_cast<size_t>(n));
      for (int r = 0; r < n; ++r) writers.emplace_back(std::move(send[r])).Reserve(bytes[r]);
    }
    for (wire::Writer& w : writers) w.U8(progress.failed() ? kReadOnceFailed : 0);
    for (const auto& f : fetched[cur]) {
      for (int r : f->shared->receivers) {
        wire::Writer* msg = &writers[static_cast<size_t>(r)];
        if (f->ok) {
          const std::string_view rec = record_of(*f);
          PutReadOnceRecord(msg, f->shared->chunk, rec);
          progress.chunks_sent.fetch_add(1, std::memory_order_relaxed);
          progress.bytes_sent.fetch_add(rec.size(), std::memory_order_relaxed);
        } else {
          PutReadOnceUnavailable(msg, f->shared->chunk);
        }
      }
    }
    for (int r = 0; r < n; ++r) send[r] = writers[r].Finish();
    writers.clear();
    fetched[cur].clear();  // the staging buffer is free for round k + 1
    if (k + 1 < rounds) {
      fetching[nxt] = std::make_unique<base::TaskGroup>(&pool);
      fetch(k + 1, &fetched[nxt], fetching[nxt].get());
    }

    comm_status = comm->AllToAll(send, &recv);
    if (!comm_status.ok()) break;

    bool any_failed = false;
    std::vector<wire::Reader> from;
    from.reserve(recv.size());
    // The sender and round are named only on failure (no strings per peer
    // and round on this path).
    auto malformed = [k](const wire::Reader& in, size_t sender) {
      return in.Finish().Annotate("from rank " + std::to_string(sender) + " in round " + std::to_string(k));
    };
    for (size_t p = 0; p < recv.size(); ++p) {
      from.emplace_back(recv[p], "read-once message");
      uint8_t flag = from.back().U8();
      if (!from.back().ok()) {
        progress.Fail(malformed(from.back(), p));
        flag = kReadOnceFailed;
      }
      any_failed = any_failed || (flag & kReadOnceFailed) != 0;
    }
    {
      received.clear();
      for (size_t i = schedule.round_begin(k); i < schedule.round_end[k]; ++i) {
        const SharedChunk& sc = schedule.shared[i];
        if (!std::binary_search(sc.receivers.begin(), sc.receivers.end(), me)) continue;
        wire::Reader& in = from[static_cast<size_t>(sc.reader)];
        std::string_view rec;
        if (!GetReadOnceEntry(&in, sc.chunk, &rec)) {
          if (in.ok()) continue;  // its reader failed and says so in its flag
          progress.Fail(malformed(in, static_cast<size_t>(sc.reader)));
          break;
        }
        progress.chunks_received.fetch_add(1, std::memory_order_relaxed);
        progress.bytes_received.fetch_add(rec.size(), std::memory_order_relaxed);
        received.push_back({my_read(sc.chunk), rec, sc.reader});
      }
      base::TaskGroup decoding(&pool);
      const std::vector<TaskRange> tasks = SplitIntoTasks(
          received.size(), options.max_inflight_bytes, [&](size_t j) { return received[j].record.size(); },
          [](size_t) { return true; });
      for (const TaskRange& t : tasks) {
        decoding.Run([&, begin = t.begin, end = t.end] {
          for (size_t j = begin; j < end && !progress.failed(); ++j) {
            const Received& r = received[j];
            auto h = CheckChunkRecord(r.record, *r.read, r.sender);
            Status s = h.ok() ? DecodeChunkRecord(r.record, *h, *r.read, r.sender) : h.status();
            if (!s.ok()) progress.Fail(std::move(s));
          }
          return Status::OK();
        });
      }
      decoding.Wait().IgnoreError();
    }
    // Every rank saw the same flags: all stop after the same round.
    if (any_failed) break;
  }
  for (auto& g : fetching) {
    if (g) g->Wait().IgnoreError();
  }
  direct_reads.Wait();
  if (report != nullptr) {
    report->chunks_read += progress.chunks_read;
    report->bytes_read += progress.bytes_read;
    report->chunks_sent += progress.chunks_sent;
    report->bytes_sent += progress.bytes_sent;
    report->chunks_received += progress.chunks_received;
    report->bytes_received += progress.bytes_received;
  }
  if (!comm_status.ok()) return comm_status;
  return progress.status();
}

}  // namespace dcp::query
