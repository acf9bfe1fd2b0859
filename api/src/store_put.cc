// Copyright (c) dcp authors.
//
// The put protocol (collective), as a write session:
//   BeginStep  rank 0 checks the step, picks the generation and reads the
//              base step (the latest committed one) for incremental writes;
//              all ranks receive both
//   PutPart    A. local validation (view vs declaration, offsets, duplicates)
//              B. exchange of shard declarations; global validation on every
//                 rank, including that the part's keys are new to the step
//              C. each rank writes its main-replica chunks into its own rank
//                 store (skipping chunks unchanged since the base step)
//   CommitStep rank 0 merges the fragments and publishes the manifest
// Put is one session with one part; PutAsync runs Put on a background thread.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>

#include "api/src/store_impl.h"
#include "dcp/log.h"
#include "engine/base/fault_injection.h"
#include "engine/codec/checksum.h"
#include "engine/coord/agreement.h"
#include "engine/protocol/commit.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/wire/wire.h"
#include "engine/write/assignment.h"
#include "engine/write/shard_writer.h"

namespace dcp {
namespace {

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// Merges map `from` into map `into` (nested maps merge, other values replace).
void MergeCommon(const Value& from, Value* into) {
  for (size_t i = 0; i < from.size(); ++i) {
    const std::string& k = from.keys()[i];
    Value* existing = into->Find(k);
    if (existing != nullptr && existing->kind() == Value::Kind::kMap && from.at(i).kind() == Value::Kind::kMap) {
      MergeCommon(from.at(i), existing);
    } else {
      into->Set(k, from.at(i));
    }
  }
}

}  // namespace


Status Store::Impl::Busy(Communicator* c) const {
  if (own == nullptr) return Status::FailedPrecondition("store '" + root + "' was opened read-only");
  // The async put's own thread (c == async_comm_) never reads async_: the
  // caller's thread sets it once that thread runs (TSan found the race).
  if (c == comm && async_ != nullptr) {
    return Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                      " has not been collected (call WaitForPut first)");
  }
  return Status::OK();
}

Status Store::Impl::BeginStep(Communicator* c, uint64_t step, const SaveOptions& options) {
  const std::string what = "put of step " + std::to_string(step);
  Status local = Busy(c);
  if (local.ok() && session_ != nullptr) {
    local = Status::FailedPrecondition("a write session for step " + std::to_string(session_->step) +
                                       " is open (CommitStep or AbortStep first)");
  }
  if (local.ok() && (options.chunk_bytes < 1 || options.chunk_bytes > codec::kMaxChunkRawSize)) {
    local = Status::InvalidArgument("chunk_bytes " + std::to_string(options.chunk_bytes) + " is outside [1, " +
                                    std::to_string(codec::kMaxChunkRawSize) + "]");
  }
  if (local.ok() && c->rank() == 0 && !options.overwrite && storage::StepExists(root, step)) {
    local = Status::AlreadyExists("step " + std::to_string(step) + " already exists in store '" + root +
                                  "' (set SaveOptions::overwrite to replace it)");
  }
  if (local.ok()) local = base::CheckFaultPoint("put.validate", c->rank());

  // Rank 0: the generation and the base step's manifest, riding on the
  // status agreement (one all-gather). Parts get generation + part: the low
  // bits start clear. The generation is rank 0's clock, but never below what
  // this store already used (a clock that stepped back must not reuse an
  // older put's record keys).
  std::string start;
  std::shared_ptr<const manifest::StepManifest> decoded_base;  // rank 0: decoded once
  if (local.ok() && c->rank() == 0) {
    uint64_t seen = 0;
    std::string base;
    auto latest = storage::LatestStep(root);
    if (latest.ok() && latest->has_value()) {
      auto bytes = storage::ReadManifestFile(root, **latest);
      if (bytes.ok()) {
        auto m = manifest::DecodeManifest(*bytes, "latest manifest");
        if (m.ok()) seen = m->generation;
        // Nothing of a step a repair found damaged is referenced.
        auto damage = storage::StepDamage(root, **latest);
        if (options.incremental && damage.ok() && !damage->has_value()) {
          base = std::move(bytes).value();
          if (m.ok()) decoded_base = std::make_shared<const manifest::StepManifest>(std::move(m).value());
        }
      }
    }
    if (auto newest = own->NewestGeneration(); newest.ok()) seen = std::max(seen, *newest);
    const uint64_t generation = std::max(manifest::StepGenerationOf(NowNanos()),
                                         manifest::StepGenerationOf(seen) + manifest::kGenerationParts);
    start = wire::Writer().U64(generation).Raw(base).Finish();
  }
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(coord::AgreeAndGather(c, local, start, &all).Annotate(what));
  wire::Reader in(all[0], "start of step " + std::to_string(step) + " from rank 0");
  auto session = std::make_unique<Session>();
  session->comm = c;
  session->step = step;
  session->options = options;
  session->generation = in.U64();
  const std::string_view base_bytes = in.Rest();
  DCP_RETURN_IF_ERROR(in.Finish().Annotate(what));
  if (decoded_base != nullptr) {
    session->base = std::move(decoded_base);  // rank 0 decoded these very bytes
  } else if (!base_bytes.empty()) {
    // Every rank decodes the same bytes: the same verdict everywhere. A base
    // that does not decode only costs deduplication.
    auto base = manifest::DecodeManifest(base_bytes, "base manifest");
    if (base.ok()) session->base = std::make_shared<const manifest::StepManifest>(std::move(base).value());
  }
  session_ = std::move(session);
  return Status::OK();
}

Status Store::Impl::PutPart(Communicator* c, const StateDict& state, SaveReport* report) {
  // Agreed first: when busy, the session belongs to the async put's thread.
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(c, Busy(c)).Annotate("put"));
  return WritePart(c, state, report, nullptr);
}

Status Store::Impl::WritePart(Communicator* c, const StateDict& state, SaveReport* report, Status* unagreed) {
  Status local;
  if (session_ == nullptr || session_->comm != c) {
    local = Status::FailedPrecondition("no write session is open (BeginStep first)");
  }
  if (local.ok() && !session_->broken.ok()) {
    local = Status::FailedPrecondition("the write session failed (" + session_->broken.message() +
                                       "); AbortStep and start again");
  }
  if (local.ok() && session_->parts + 1 >= manifest::kGenerationParts) {
    local = Status::FailedPrecondition("step " + std::to_string(session_->step) + " already has " +
                                       std::to_string(session_->parts) + " parts, the most one step may have");
  }
  const std::string what =
      "put of step " + std::to_string(session_ != nullptr ? session_->step : 0) +
      (session_ != nullptr && session_->parts > 0 ? " (part " + std::to_string(session_->parts) + ")" : "");
  const int rank = c->rank();

  // A. Local validation.
  sharding::FlatState flat;
  codec::Hash128 common_hash;
  std::string common_encoded;  // rank 0 keeps it: a one-part step commits these bytes
  if (local.ok()) local = sharding::FlattenForSave(state, &flat);
  if (local.ok()) local = sharding::ValidateLocalSave(flat);
  if (local.ok()) {
    auto encoded = manifest::EncodeCommonState(flat.common);
    if (encoded.ok()) {
      common_hash = codec::ContentHash128(encoded->data(), encoded->size());
      common_encoded = std::move(encoded).value();
    } else {
      local = encoded.status();
    }
  }
  // B. Exchange declarations, non-main replicas sent once per distinct set
  // (manifest/exchange_codec.h: two all-gathers, the first carrying the
  // agreement on A); validate the global picture everywhere.
  manifest::SplitDecl mine;
  if (local.ok()) mine = manifest::SplitRankDecl(sharding::DeclareState(flat, common_hash));
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(
      coord::AgreeAndGather(c, local, local.ok() ? manifest::EncodeSignature(mine.signature) : "", &all)
          .Annotate(what));
  Session& s = *session_;
  Status global;
  std::vector<manifest::ReplicaSignature> signatures;
  for (int r = 0; r < static_cast<int>(all.size()) && global.ok(); ++r) {
    auto sig = manifest::DecodeSignature(all[r], r);
    if (sig.ok()) signatures.push_back(*sig);
    else global = sig.status();
  }
  const bool representative = global.ok() && manifest::Representatives(signatures)[rank] == rank;
  DCP_RETURN_IF_ERROR(c->AllGather(manifest::EncodeExchangeDecl(mine, representative), &all));
  manifest::GlobalDecls decls;
  if (global.ok()) {
    auto g = manifest::AssembleGlobalDecls(signatures, all);
    if (g.ok()) decls = std::move(g).value();
    else global = g.status();
  }
  all.clear();
  if (global.ok()) global = manifest::CheckOwnReplicas(decls, rank, mine.replicas);
  std::vector<manifest::TensorEntry> entries;
  if (global.ok()) {
    auto v = sharding::ValidateGlobal(decls);
    if (v.ok()) entries = std::move(v).value();
    else global = v.status();
  }
  std::set<std::string> cells;
  for (size_t r = 0; global.ok() && r < decls.ranks.size(); ++r) {
    for (const auto& o : decls.ranks[r].objects) cells.insert(ObjectUniqueKey(o.key, o.global_offset, o.global_shape));
  }
  for (const auto& e : entries) {
    if (global.ok() && s.tensors.count(e.key)) {
      global = Status::InvalidArgument("key '" + e.key + "' was already written by an earlier part of step " +
                                       std::to_string(s.step));
    }
  }
  for (const auto& cell : cells) {
    if (global.ok() && s.object_cells.count(cell)) {
      global = Status::InvalidArgument("object '" + cell + "' was already written by an earlier part of step " +
                                       std::to_string(s.step));
    }
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(c, global).Annotate(what));
  if (rank == 0) {
    for (size_t r = 1; r < decls.ranks.size(); ++r) {
      if (decls.ranks[r].common_state_hash != decls.ranks[0].common_state_hash) {
        Log(LogLevel::kWarning,
            what + ": common state of rank " + std::to_string(r) + " differs from rank 0's; rank 0's copy is saved");
        break;
      }
    }
  }

  // C. Write this rank's main replicas.
  write::WriteRequest request;
  request.generation = s.generation + s.parts;  // each part its own key range
  request.part = 0;
  request.base = s.options.incremental ? s.base.get() : nullptr;
  if (request.base != nullptr) {
    request.reference_ok = [this, base_generation = request.base->generation](const manifest::RecordRef& ref,
                                                                              const std::string& key) {
      return record_check.Usable(stores.get(), base_generation, ref, key);
    };
  }
  // Fully parallel: replicated boxes' chunks spread over their holders, the
  // same assignment on every rank (engine/write/assignment.h).
  std::optional<write::WriteAssignment> assignment;
  if (s.options.fully_parallel) {
    assignment = write::WriteAssignment::Compute(write::HeldBoxes(decls), s.options.chunk_bytes);
  }
  for (const auto& leaf : flat.tensors) {
    if (assignment) {
      assignment->AddTensor(*leaf.item, rank, &request);
    } else if (leaf.item->is_main_replica()) {
      request.AddTensor(*leaf.item);  // its pieces (flat ranges: boxes)
    }
  }
  for (const auto& leaf : flat.objects) {
    if (leaf.item->is_main_replica()) request.objects.push_back(leaf.item);
  }
  write::WriteStats stats;
  Status written = write::WriteShards(own.get(), request, s.options, &s.fragment, &stats,
                                      WritePool(s.options.encode_threads));
  if (written.ok()) record_check.AddWritten(own->rank(), request.generation);
  ++s.parts;
  if (unagreed != nullptr) {
    // Put: the commit's gather carries this rank's outcome.
    *unagreed = written;
  } else {
    Status agreed = coord::AgreeOnStatus(c, written).Annotate(what);
    if (!agreed.ok()) {
      s.broken = agreed;
      return agreed;
    }
  }
  for (auto& e : entries) s.tensors.emplace(e.key, std::move(e));
  s.object_cells.insert(cells.begin(), cells.end());
  if (rank == 0) {
    MergeCommon(flat.common, &s.common);
    s.common_encoded = s.parts == 1 ? std::move(common_encoded) : std::string();
  }
  SaveReport part_report;
  part_report.chunks_written = stats.chunks;
  part_report.objects_written = stats.objects;
  part_report.raw_bytes_written = stats.raw_bytes;
  part_report.stored_bytes_written = stats.stored_bytes;
  part_report.chunks_referenced = stats.chunks_referenced;
  part_report.raw_bytes_referenced = stats.raw_bytes_referenced;
  part_report.base_records_unusable = stats.base_records_unusable;
  s.report.chunks_written += stats.chunks;
  s.report.objects_written += stats.objects;
  s.report.raw_bytes_written += stats.raw_bytes;
  s.report.stored_bytes_written += stats.stored_bytes;
  s.report.chunks_referenced += stats.chunks_referenced;
  s.report.raw_bytes_referenced += stats.raw_bytes_referenced;
  s.report.base_records_unusable += stats.base_records_unusable;
  if (report != nullptr) *report = part_report;
  return Status::OK();
}

Status Store::Impl::CommitStep(Communicator* c, SaveReport* report) {
  Status local = Busy(c);
  if (local.ok() && (session_ == nullptr || session_->comm != c)) {
    local = Status::FailedPrecondition("no write session is open (BeginStep first)");
  }
  if (local.ok() && !session_->broken.ok()) {
    local = Status::FailedPrecondition("the write session failed (" + session_->broken.message() +
                                       "); AbortStep and start again");
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(c, local).Annotate("commit"));
  return Commit(c, Status::OK(), report);
}

Status Store::Impl::Commit(Communicator* c, const Status& written, SaveReport* report) {
  std::unique_ptr<Session> s = std::move(session_);
  const std::string what = "put of step " + std::to_string(s->step);
  protocol::CommitRequest request;
  request.root = root;
  Status prepared = written;
  if (c->rank() == 0 && prepared.ok()) {
    request.skeleton.step = s->step;
    request.skeleton.generation = s->generation;
    request.skeleton.world_size = static_cast<uint32_t>(c->size());
    for (auto& [key, e] : s->tensors) request.skeleton.tensors.push_back(std::move(e));
    if (s->parts == 1) {
      request.skeleton.common_state = std::move(s->common_encoded);  // the one part's, encoded once
    } else {
      auto common = manifest::EncodeCommonState(s->common);
      if (common.ok()) request.skeleton.common_state = std::move(common).value();
      else prepared = common.status();
    }
  }
  // A rank's failed write fails the commit (its status rides on the gather).
  DCP_RETURN_IF_ERROR(protocol::CommitStep(c, request, prepared, s->fragment).Annotate(what));
  if (report != nullptr) *report = s->report;
  return Status::OK();
}

Status Store::Impl::AbortStep(Communicator* c) {
  Status local = Busy(c);
  if (local.ok() && (session_ == nullptr || session_->comm != c)) {
    local = Status::FailedPrecondition("no write session is open");
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(c, local).Annotate("abort"));
  session_.reset();  // its records are garbage for CollectGarbage
  return Status::OK();
}

// Six collective rounds: BeginStep's all-gather; the part's two all-gathers
// and its validation agreement; the commit's gather and broadcast, which
// carry each rank's write outcome.
Status Store::Impl::Put(Communicator* c, uint64_t step, const StateDict& state, const SaveOptions& options,
                        SaveReport* report) {
  DCP_RETURN_IF_ERROR(BeginStep(c, step, options));
  Status written;
  Status s = WritePart(c, state, nullptr, &written);
  if (!s.ok()) {
    session_.reset();  // every rank failed the same way: every rank drops the session
    return s;
  }
  return Commit(c, written, report);
}

Store::Impl::Impl() = default;

Store::Impl::~Impl() {
  if (async_ != nullptr && async_->thread.joinable()) async_->thread.join();
}

Status Store::Impl::PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options) {
  const std::string what = "async put of step " + std::to_string(step);
  Status local = Busy(comm);
  if (local.ok() && async_ != nullptr) {
    local = Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                       " is still in flight (call WaitForPut first)");
  }
  if (local.ok() && session_ != nullptr) {
    local = Status::FailedPrecondition("a write session for step " + std::to_string(session_->step) + " is open");
  }
  if (local.ok() && !comm->SupportsConcurrentDuplicates()) {
    local = Status::FailedPrecondition(
        "the communicator cannot run collectives on a background thread (MPI needs MPI_THREAD_MULTIPLE)");
  }
  // Factories are built now, while the caller's tensors may still be read;
  // the snapshot copies their pieces like any other tensor.
  StateDict expanded;
  std::vector<std::unique_ptr<FactoryArena>> factory_buffers;
  if (local.ok()) local = sharding::ExpandFactoriesForSave(state, &expanded, &factory_buffers);
  sharding::FlatState flat;
  if (local.ok()) local = sharding::FlattenForSave(expanded, &flat);
  if (local.ok()) local = sharding::ValidateLocalSave(flat);
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local).Annotate(what));

  if (async_comm_ == nullptr) {
    auto dup = comm->Duplicate();
    Status s = dup.status();
    if (dup.ok()) async_comm_ = std::move(dup).value();
    s = coord::AgreeOnStatus(comm, s);
    if (!s.ok()) {
      async_comm_.reset();  // every rank is back where it started
      return s.Annotate(what);
    }
  }
  // The snapshot: after it, the caller's tensors are no longer read.
  DCP_RETURN_IF_ERROR(
      coord::AgreeOnStatus(comm, snapshot_.Take(expanded, options.encode_threads, WritePool(options.encode_threads)))
          .Annotate(what));

  auto a = std::make_unique<AsyncPut>();
  a->step = step;
  AsyncPut* raw = a.get();
  try {
    a->thread = std::thread([this, raw, step, options] {
      SaveReport report;
      Status s;
      try {
        SaveOptions main_only = options;
        main_only.fully_parallel = false;  // the snapshot stages main replicas only
        s = Put(async_comm_.get(), step, snapshot_.state(), main_only, &report);
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("async put failed: ") + e.what());
      }
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->outcome = std::move(s);
      raw->report = report;
      raw->done = true;
    });
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot start the async put's thread: ") + e.what());
  }
  async_ = std::move(a);
  last_outcome_.reset();
  return Status::OK();
}

Status Store::Impl::Collect(SaveReport* report) {
  async_->thread.join();
  last_outcome_ = std::make_pair(async_->outcome, async_->report);
  async_.reset();
  if (report != nullptr) *report = last_outcome_->second;
  return last_outcome_->first;
}

Status Store::Impl::WaitForPut(SaveReport* report) {
  if (async_ == nullptr) {
    if (!last_outcome_) return Status::FailedPrecondition("no async put to wait for");
    if (report != nullptr) *report = last_outcome_->second;  // collected already (PollPut)
    return last_outcome_->first;
  }
  return Collect(report);
}

std::optional<Status> Store::Impl::PollPut(SaveReport* report) {
  if (async_ == nullptr) {
    if (!last_outcome_) return Status::FailedPrecondition("no async put to poll");
    if (report != nullptr) *report = last_outcome_->second;
    return last_outcome_->first;
  }
  {
    std::lock_guard<std::mutex> lock(async_->mu);
    if (!async_->done) return std::nullopt;
  }
  return Collect(report);
}

}  // namespace dcp
