// Copyright (c) dcp authors.

#include "engine/inspect/verify.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "engine/base/buffer.h"
#include "engine/base/thread_pool.h"
#include "engine/codec/chunk_codec.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/query/assembler.h"
#include "engine/store/key_layout.h"
#include "engine/store/rank_store.h"

namespace dcp::inspect {
namespace {

// Who refers to a record: a step's tensor chunk or object.
struct Referent {
  uint64_t step = 0;
  std::string key;
  std::optional<Shape> offset;
};

// One distinct record to read: (rank, record key) with what the manifests
// expect of it.
struct RecordJob {
  std::string record_key;
  manifest::RecordRef ref;
  uint64_t generation = 0;  // the newest referring step's (for catching up read instances)
  std::vector<Referent> referents;
};

// Checks a record read with outcome `s` and bytes `record` against what the
// manifests expect of it.
Status CheckRecord(const Status& s, std::string_view record, const manifest::RecordRef& ref) {
  if (s.IsNotFound()) return Status::DataLoss("record is missing: " + s.message());
  DCP_RETURN_IF_ERROR(s);
  DCP_ASSIGN_OR_RETURN(codec::ChunkHeader h, codec::ParseChunkHeader(record));
  std::string mismatch;
  if (h.raw_size != ref.raw_size) {
    mismatch += " raw size " + std::to_string(h.raw_size) + " (manifest: " + std::to_string(ref.raw_size) + ")";
  }
  if (h.record_size() != ref.stored_size) {
    mismatch +=
        " stored size " + std::to_string(h.record_size()) + " (manifest: " + std::to_string(ref.stored_size) + ")";
  }
  if (h.codec != ref.codec) {
    mismatch += std::string(" codec ") + codec::ChunkCodecName(h.codec) +
                " (manifest: " + codec::ChunkCodecName(ref.codec) + ")";
  }
  if (h.checksum != ref.checksum) {
    mismatch += " checksum " + h.checksum.ToHex() + " (manifest: " + ref.checksum.ToHex() + ")";
  }
  if (!mismatch.empty()) return Status::DataLoss("record does not match the manifest:" + mismatch);
  if (h.codec == codec::ChunkCodec::kRaw) return codec::RawChunkPayload(record, h).status();
  thread_local base::Buffer scratch;
  scratch.Resize(h.raw_size);
  return codec::DecodeChunk(record, h, scratch.data(), h.raw_size);
}

// What a record can at most hold in memory while it is checked (a corrupt
// manifest may claim any size).
uint64_t JobCost(const RecordJob& job) {
  return std::min(job.ref.stored_size, codec::kMaxChunkRawSize + codec::kChunkHeaderSize) +
         std::min(job.ref.raw_size, codec::kMaxChunkRawSize);
}

class Verifier {
 public:
  Verifier(StoreReader* reader, const VerifyOptions& options) : reader_(reader), options_(options) {}

  // Checks a step's manifest and queues its records.
  void AddStep(uint64_t step, const LoadedStep& loaded) {
    const manifest::StepManifest& m = loaded.manifest();
    report_.steps.push_back(step);
    if (!loaded.order.ok()) AddProblem(Problem::Kind::kInvariant, step, "", {}, {}, loaded.order.message());
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      const manifest::TensorEntry& t = m.tensors[i];
      ++report_.tensors;
      if (!loaded.tensor_status[i].ok()) {
        AddProblem(Problem::Kind::kInvariant, step, t.key, {}, {}, loaded.tensor_status[i].message());
      }
      for (const manifest::ChunkEntry& c : t.chunks) {
        ++report_.chunks;
        const Referent who{step, t.key, c.box.origin};
        if (CheckReference(m, c.record, who)) {
          Queue(storage::ChunkRecordKey(c.record.generation, t.key, c.box.origin), c.record, m.generation, who);
        }
      }
    }
    for (size_t i = 0; i < m.objects.size(); ++i) {
      const manifest::ObjectEntry& o = m.objects[i];
      ++report_.objects;
      const Referent who{step, o.unique_key(), std::nullopt};
      if (!loaded.object_status[i].ok()) {
        AddProblem(Problem::Kind::kInvariant, step, who.key, {}, {}, loaded.object_status[i].message());
      }
      if (CheckReference(m, o.record, who)) {
        Queue(storage::ObjectRecordKey(o.record.generation, who.key), o.record, m.generation, who);
      }
    }
    auto common = manifest::DecodeCommonState(m.common_state);
    if (!common.ok()) AddProblem(Problem::Kind::kCommonState, step, "", {}, {}, common.status().message());
  }

  void AddUnreadableStep(uint64_t step, const Status& s) {
    report_.steps.push_back(step);
    AddProblem(Problem::Kind::kManifest, step, "", {}, {}, s.message());
  }

  VerifyReport Run() {
    const auto t0 = std::chrono::steady_clock::now();
    VerifyProgress progress;
    progress.records_total = jobs_.size();
    for (const RecordJob& j : jobs_) progress.bytes_total += j.ref.stored_size;
    if (options_.progress) options_.progress(progress);
    if (!jobs_.empty()) {
      // In the stores' physical order, small records in runs.
      std::sort(jobs_.begin(), jobs_.end(), [](const RecordJob& a, const RecordJob& b) {
        return a.ref.store_rank != b.ref.store_rank ? a.ref.store_rank < b.ref.store_rank
                                                    : a.record_key < b.record_key;
      });
      struct Task {
        query::TaskRange range;  // jobs_[range.begin, range.end)
        uint64_t cost = 0;
      };
      std::vector<Task> tasks;
      for (const query::TaskRange& r : query::SplitIntoTasks(
               jobs_.size(), options_.max_inflight_bytes, [&](size_t i) { return jobs_[i].ref.stored_size; },
               [&](size_t i) {
                 return jobs_[i].ref.store_rank == jobs_[i - 1].ref.store_rank &&
                        jobs_[i].record_key != jobs_[i - 1].record_key;
               })) {
        Task t{r};
        for (size_t i = r.begin; i < r.end; ++i) t.cost += JobCost(jobs_[i]);
        tasks.push_back(t);
      }
      const int threads = std::min<int>(base::ResolveThreadCount(options_.threads), static_cast<int>(tasks.size()));
      base::ThreadPool pool(threads);
      base::ByteBudget budget(std::max<uint64_t>(options_.max_inflight_bytes, 1));
      base::TaskGroup group(&pool);
      for (const Task& task : tasks) {
        budget.Acquire(task.cost);
        group.Run([&, task] {
          query::StoreSet* stores = reader_->stores();
          const query::TaskRange& r = task.range;
          const uint32_t rank = jobs_[r.begin].ref.store_rank;
          if (r.readahead == 0) {
            const RecordJob& job = jobs_[r.begin];
            storage::PinnedValue value;
            const Status s = stores->Get(rank, job.generation, job.record_key, &value);
            Done(job, CheckRecord(s, value.view(), job.ref), &progress);
          } else {
            std::vector<std::string> keys;
            uint64_t generation = 0;
            for (size_t i = r.begin; i < r.end; ++i) {
              keys.push_back(jobs_[i].record_key);
              generation = std::max(generation, jobs_[i].generation);
            }
            // Every record is checked: a failure is a problem, not the end of the run.
            Status s = stores->ReadRun(rank, generation, keys, r.readahead,
                                       [&](size_t i, const Status& read, std::string_view record) {
                                         const RecordJob& job = jobs_[r.begin + i];
                                         Done(job, CheckRecord(read, record, job.ref), &progress);
                                         return Status::OK();
                                       });
            (void)s;  // fn never fails
          }
          budget.Release(task.cost);
          return Status::OK();
        });
      }
      group.Wait().IgnoreError();  // tasks report through problems
    }
    report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::sort(report_.problems.begin(), report_.problems.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.step, a.key, a.offset, a.kind) < std::tie(b.step, b.key, b.offset, b.kind);
    });
    return std::move(report_);
  }

 private:
  // Accounts for a record checked with outcome `s`.
  void Done(const RecordJob& job, const Status& s, VerifyProgress* progress) {
    std::lock_guard<std::mutex> lock(mu_);
    ++progress->records_done;
    progress->bytes_done += job.ref.stored_size;
    if (s.ok()) {
      report_.stored_bytes += job.ref.stored_size;
      report_.raw_bytes += job.ref.raw_size;
    } else {
      for (const Referent& r : job.referents) {
        report_.problems.push_back({Problem::Kind::kRecord, r.step, r.key, r.offset, job.ref.store_rank, s.message()});
      }
    }
    ++report_.records_read;
    if (options_.progress) options_.progress(*progress);
  }

  void AddProblem(Problem::Kind kind, uint64_t step, std::string key, std::optional<Shape> offset,
                  std::optional<uint32_t> rank, std::string message) {
    report_.problems.push_back({kind, step, std::move(key), std::move(offset), rank, std::move(message)});
  }

  // False (after recording the problem) if the reference cannot be right.
  bool CheckReference(const manifest::StepManifest& m, const manifest::RecordRef& ref, const Referent& who) {
    if (manifest::StepGenerationOf(ref.generation) > m.generation) {
      AddProblem(Problem::Kind::kReference, who.step, who.key, who.offset, ref.store_rank,
                 fmt::format("refers to a record of generation {:016x}, newer than the step's {:016x}", ref.generation,
                             m.generation));
      return false;
    }
    if (manifest::WrittenByStep(ref, m) && ref.store_rank >= m.world_size) {
      AddProblem(Problem::Kind::kReference, who.step, who.key, who.offset, ref.store_rank,
                 "refers to rank store " + std::to_string(ref.store_rank) + " for a record of this step, which " +
                     std::to_string(m.world_size) + " ranks saved");
      return false;
    }
    return true;
  }

  void Queue(std::string record_key, const manifest::RecordRef& ref, uint64_t generation, Referent who) {
    // The same record with the same expectations is read once, whichever
    // steps refer to it.
    auto id = std::make_tuple(ref.store_rank, record_key, ref.checksum.lo, ref.checksum.hi, ref.raw_size,
                              ref.stored_size, static_cast<int>(ref.codec));
    auto [it, fresh] = index_.emplace(std::move(id), jobs_.size());
    if (fresh) jobs_.push_back({std::move(record_key), ref, generation, {}});
    RecordJob& job = jobs_[it->second];
    job.generation = std::max(job.generation, generation);
    job.referents.push_back(std::move(who));
  }

  StoreReader* reader_;
  const VerifyOptions& options_;
  VerifyReport report_;
  std::vector<RecordJob> jobs_;
  // Queue's index of jobs_ (Run sorts jobs_; nothing is queued after).
  std::map<std::tuple<uint32_t, std::string, uint64_t, uint64_t, uint64_t, uint64_t, int>, size_t> index_;
  std::mutex mu_;
};

}  // namespace

const char* ProblemKindName(Problem::Kind kind) {
  switch (kind) {
    case Problem::Kind::kManifest: return "manifest";
    case Problem::Kind::kInvariant: return "invariant";
    case Problem::Kind::kReference: return "reference";
    case Problem::Kind::kRecord: return "record";
    case Problem::Kind::kCommonState: return "common state";
  }
  return "unknown";
}

Result<VerifyReport> Verify(StoreReader* reader, const VerifyOptions& options) {
  std::vector<uint64_t> steps;
  if (options.step) {
    steps.push_back(*options.step);
  } else {
    DCP_ASSIGN_OR_RETURN(steps, reader->Steps());
  }
  Verifier v(reader, options);
  for (uint64_t step : steps) {
    auto loaded = reader->Load(step);
    if (loaded.ok()) {
      v.AddStep(step, **loaded);
    } else if (loaded.status().IsNotFound()) {
      if (options.step) return loaded.status();  // asked for a step that is not committed
      // Otherwise it was removed after it was listed: nothing to verify.
    } else {
      v.AddUnreadableStep(step, loaded.status());
    }
  }
  return v.Run();
}

}  // namespace dcp::inspect
