// Copyright (c) dcp authors.

#include "engine/protocol/put.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "dcp/log.h"
#include "engine/base/fault_injection.h"
#include "engine/codec/checksum.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/protocol/commit.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/wire/wire.h"
#include "engine/write/assignment.h"
#include "engine/write/shard_writer.h"

namespace dcp::protocol {
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

// Points `request` at the session's part: its generation, and the base step
// whose records it may reference (those the store finds usable).
void PrepareRequest(StoreContext* store, const PutSession& s, write::WriteRequest* request) {
  request->generation = s.generation + s.parts;  // each part its own key range
  request->part = 0;
  request->base = s.options.incremental ? s.base.get() : nullptr;
  if (request->base != nullptr) {
    request->reference_ok = [store, base_generation = request->base->generation](const manifest::RecordRef& ref,
                                                                                const std::string& key) {
      return store->record_check().Usable(store->stores(), base_generation, ref, key);
    };
  }
}

// The report of a part's write; also added to the session's.
SaveReport Report(const write::WriteStats& stats, SaveReport* session) {
  SaveReport r;
  r.chunks_written = stats.chunks;
  r.objects_written = stats.objects;
  r.raw_bytes_written = stats.raw_bytes;
  r.stored_bytes_written = stats.stored_bytes;
  r.chunks_referenced = stats.chunks_referenced;
  r.raw_bytes_referenced = stats.raw_bytes_referenced;
  r.base_records_unusable = stats.base_records_unusable;
  session->chunks_written += r.chunks_written;
  session->objects_written += r.objects_written;
  session->raw_bytes_written += r.raw_bytes_written;
  session->stored_bytes_written += r.stored_bytes_written;
  session->chunks_referenced += r.chunks_referenced;
  session->raw_bytes_referenced += r.raw_bytes_referenced;
  session->base_records_unusable += r.base_records_unusable;
  return r;
}

// The start of a step every rank sends: its step and the options every rank
// must share (the write assignment's, and overwrite, which rank 0 applies).
wire::Writer StartOf(uint64_t step, const SaveOptions& options) {
  wire::Writer w;
  w.U64(step).U8(options.fully_parallel ? 1 : 0).U64(options.chunk_bytes).U8(options.overwrite ? 1 : 0);
  return w;
}

}  // namespace

uint64_t StepOfRank0(const std::vector<std::string>& payloads, uint64_t own) {
  if (payloads.empty()) return own;
  wire::Reader first(payloads[0], "step of rank 0");
  const uint64_t step = first.U64();
  return first.ok() ? step : own;
}

Result<std::unique_ptr<PutSession>> BeginStep(Communicator* c, StoreContext* store, uint64_t step,
                                              const SaveOptions& options, const Status& caller, std::string_view call,
                                              std::string_view rider, std::vector<std::string>* riders) {
  const std::string what = "put of step " + std::to_string(step);
  const std::string& root = store->root();
  Status local = caller;
  if (local.ok() && (options.chunk_bytes < 1 || options.chunk_bytes > codec::kMaxChunkRawSize)) {
    local = Status::InvalidArgument("chunk_bytes " + std::to_string(options.chunk_bytes) + " is outside [1, " +
                                    std::to_string(codec::kMaxChunkRawSize) + "]");
  }
  if (local.ok() && c->rank() == 0 && !options.overwrite && storage::StepExists(root, step)) {
    local = Status::AlreadyExists("step " + std::to_string(step) + " already exists in store '" + root +
                                  "' (set SaveOptions::overwrite to replace it)");
  }
  if (local.ok()) local = base::CheckFaultPoint("put.validate", c->rank());

  // Rank 0: the generation, riding on the status agreement (one all-gather),
  // and whether a base manifest follows. Parts get generation + part: the
  // low bits start clear. The generation is rank 0's clock, but never below
  // what this store already used (a clock that stepped back must not reuse
  // an older put's record keys).
  std::string start;
  std::string base_bytes;                                 // rank 0: the base manifest file
  std::shared_ptr<const manifest::StepManifest> base;     // rank 0: decoded once
  if (local.ok() && c->rank() == 0) {
    uint64_t seen = 0;
    auto latest = storage::LatestStep(root);
    if (latest.ok() && latest->has_value()) {
      auto bytes = storage::ReadManifestFile(root, **latest);
      if (bytes.ok()) {
        auto m = manifest::DecodeManifest(*bytes, "latest manifest");
        if (m.ok()) {
          seen = m->generation;
          // Nothing of a step a repair found damaged is referenced; a base
          // that does not decode only costs deduplication.
          auto damage = storage::StepDamage(root, **latest);
          if (options.incremental && damage.ok() && !damage->has_value()) {
            base_bytes = std::move(bytes).value();
            base = std::make_shared<const manifest::StepManifest>(std::move(m).value());
          }
        }
      }
    }
    if (auto newest = store->own()->NewestGeneration(); newest.ok()) seen = std::max(seen, *newest);
    const uint64_t generation = std::max(manifest::StepGenerationOf(NowNanos()),
                                         manifest::StepGenerationOf(seen) + manifest::kGenerationParts);
    start = StartOf(step, options).U64(generation).U8(base != nullptr ? 1 : 0).Bytes(rider).Finish();
  } else {
    start = StartOf(step, options).Bytes(rider).Finish();
  }
  std::vector<std::string> all;
  if (Status agreed = coord::AgreeAndGather(c, local, start, &all, {}, call); !agreed.ok()) {
    // Without payloads: another call on some rank, or the transport (as is).
    return all.empty() ? agreed : agreed.Annotate("put of step " + std::to_string(StepOfRank0(all, step)));
  }
  wire::Reader in(all[0], "start of step " + std::to_string(step) + " from rank 0");
  const uint64_t first_step = in.U64();
  const bool first_parallel = in.U8() != 0;
  const uint64_t first_chunk_bytes = in.U64();
  const bool first_overwrite = in.U8() != 0;
  auto session = std::make_unique<PutSession>();
  session->comm = c;
  session->step = step;
  session->options = options;
  session->generation = in.U64();
  const bool has_base = in.U8() != 0;
  std::vector<std::string> rode(all.size());
  rode[0] = in.Bytes();
  DCP_RETURN_IF_ERROR(in.Finish().Annotate(what));
  // Every rank's step, so that ranks that resolved "the next step" apart
  // (each from its own view of a shared filesystem) fail together instead of
  // writing one step under two numbers; and the options every rank must
  // share, from which each computes the same write assignment. The same
  // bytes, the same verdict.
  for (int r = 1; r < static_cast<int>(all.size()); ++r) {
    wire::Reader theirs(all[r], "start of step from rank " + std::to_string(r));
    const uint64_t their_step = theirs.U64();
    const bool their_parallel = theirs.U8() != 0;
    const uint64_t their_chunk_bytes = theirs.U64();
    const bool their_overwrite = theirs.U8() != 0;
    rode[r] = theirs.Bytes();
    DCP_RETURN_IF_ERROR(theirs.Finish().Annotate(what));
    const std::string rank = "rank " + std::to_string(r);
    if (their_step != first_step) {
      return Status::InvalidArgument(rank + " saves step " + std::to_string(their_step) + " but rank 0 step " +
                                     std::to_string(first_step) + ": every rank must save the same step");
    }
    // (Named by the step from here on: every rank has the same one.)
    if (their_parallel != first_parallel) {
      return Status::InvalidArgument(what + ": " + rank +
                                     (their_parallel ? " saves fully parallel but rank 0 does not"
                                                     : " does not save fully parallel but rank 0 does") +
                                     ": every rank must use the same");
    }
    if (their_chunk_bytes != first_chunk_bytes) {
      return Status::InvalidArgument(what + ": " + rank + " saves with chunk_bytes " +
                                     std::to_string(their_chunk_bytes) + " but rank 0 with " +
                                     std::to_string(first_chunk_bytes) + ": every rank must use the same");
    }
    if (their_overwrite != first_overwrite) {
      // Rank 0 checks whether the step exists, for every rank.
      return Status::InvalidArgument(what + ": " + rank +
                                     (their_overwrite ? " saves with overwrite but rank 0 without"
                                                      : " saves without overwrite but rank 0 with") +
                                     ": every rank must use the same");
    }
  }
  if (has_base) {
    // A broadcast, not a part of the all-gather: a ring all-gather would pass
    // a manifest of many MB through every rank in turn.
    DCP_RETURN_IF_ERROR(c->Broadcast(0, &base_bytes).Annotate(what));
    if (c->rank() != 0) {
      // Every rank decodes the same bytes rank 0 decoded: the same verdict.
      auto decoded = manifest::DecodeManifest(base_bytes, "base manifest");
      if (decoded.ok()) base = std::make_shared<const manifest::StepManifest>(std::move(decoded).value());
    }
    session->base = std::move(base);
  }
  if (riders != nullptr) *riders = std::move(rode);
  return session;
}

namespace {

// Step A of a part (put.h) on this rank: its verdict, and what the exchange
// sends for it.
struct LocalPart {
  Status status;
  sharding::FlatState flat;
  codec::Hash128 common_hash;
  std::string common_encoded;  // rank 0 keeps it: a one-part step commits these bytes
  manifest::SplitDecl mine;    // declarations: main shards, and the non-main ones sent once per set
};

// Local only, so that Put can run it before its start round. Nothing of
// `state` is looked at where `local` (the caller's verdict) failed.
void ValidateLocalPart(const StateDict& state, const Status& local, LocalPart* part) {
  part->status = local;
  if (part->status.ok()) part->status = sharding::FlattenForSave(state, &part->flat);
  if (part->status.ok()) part->status = sharding::ValidateLocalSave(part->flat);
  if (part->status.ok()) {
    auto encoded = manifest::EncodeCommonState(part->flat.common);
    if (encoded.ok()) {
      part->common_hash = codec::ContentHash128(encoded->data(), encoded->size());
      part->common_encoded = std::move(encoded).value();
    } else {
      part->status = encoded.status();
    }
  }
  if (part->status.ok()) part->mine = manifest::SplitRankDecl(sharding::DeclareState(part->flat, part->common_hash));
}

// Step A's verdict and replica signature as Put's start round carries them
// for every rank (its rider).
std::string SignedPart(const LocalPart& part) {
  return wire::Writer()
      .PutStatus(part.status)
      .Raw(part.status.ok() ? manifest::EncodeSignature(part.mine.signature) : std::string())
      .Finish();
}

// The agreement on step A from every rank's SignedPart, as the exchange's
// first all-gather would reach it (coord::AgreeAndGather's rule; a malformed
// message is its rank's failure); `signatures` gets each rank's signature.
Status AgreeOnSignedParts(const std::vector<std::string>& signed_parts, std::vector<std::string>* signatures) {
  std::vector<Status> statuses(signed_parts.size());
  signatures->assign(signed_parts.size(), std::string());
  for (size_t r = 0; r < signed_parts.size(); ++r) {
    wire::Reader in(signed_parts[r], "signed declarations");
    Status status = in.GetStatus();
    const std::string_view signature = in.Rest();
    Status read = in.Finish();
    statuses[r] = read.ok() ? std::move(status) : std::move(read);
    if (read.ok()) (*signatures)[r] = std::string(signature);
  }
  return coord::CombineStatuses(statuses);
}

// Steps B and C of a part whose step A is `part`. `signed_parts`: every
// rank's SignedPart, gathered already (by Put's start round); null: the
// exchange's first all-gather carries the agreement on A.
Status WriteValidatedPart(Communicator* c, StoreContext* store, PutSession* session, LocalPart* part,
                          const std::vector<std::string>* signed_parts, const std::string& what, SaveReport* report,
                          Status* unagreed) {
  const int rank = c->rank();
  sharding::FlatState& flat = part->flat;
  manifest::SplitDecl& mine = part->mine;
  // B. Exchange declarations, non-main replicas sent once per distinct set
  // (manifest/exchange_codec.h: two all-gathers, the first carrying the
  // agreement on A, unless Put's start round carried it); validate the
  // global picture everywhere.
  std::vector<std::string> all;
  if (signed_parts == nullptr) {
    const Status& local = part->status;
    DCP_RETURN_IF_ERROR(
        coord::AgreeAndGather(c, local, local.ok() ? manifest::EncodeSignature(mine.signature) : "", &all, what));
  } else {
    DCP_RETURN_IF_ERROR(AgreeOnSignedParts(*signed_parts, &all).Annotate(what));
  }
  PutSession& s = *session;
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
  // Everything up to here is computed from the same all-gathered bytes on
  // every rank, so a failure is the same on every rank and needs no
  // agreement round. Only whether this rank's own non-main shards match its
  // set is local: that rides on the write's outcome (below).
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
  DCP_RETURN_IF_ERROR(global.Annotate(what));
  const Status own_replicas = manifest::CheckOwnReplicas(decls, rank, mine.replicas);
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
  PrepareRequest(store, s, &request);
  // Fully parallel: replicated boxes' chunks spread over their holders, the
  // same assignment on every rank (engine/write/assignment.h). Without any
  // non-main shard nothing is replicated, and every main replica is written
  // whole by its rank, as the assignment would have it.
  std::optional<write::WriteAssignment> assignment;
  const bool replicated = std::any_of(decls.replica_sets.begin(), decls.replica_sets.end(),
                                      [](const auto& set) { return !set.shards.empty(); });
  if (s.options.fully_parallel && replicated) {
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
  // A rank whose replicas do not match writes nothing and fails the part
  // (the other ranks' records of it are then garbage for GC).
  Status written = own_replicas.ok() ? write::WriteShards(store->own(), request, s.options, &s.fragment, &stats,
                                                          store->WritePool(s.options.encode_threads))
                                     : own_replicas;
  if (written.ok()) store->record_check().AddWritten(store->own()->rank(), request.generation);
  ++s.parts;
  if (unagreed != nullptr) {
    // Put: the commit's gather carries this rank's outcome.
    *unagreed = written;
  } else {
    Status agreed = coord::AgreeOnStatus(c, written, what);
    if (!agreed.ok()) {
      s.broken = agreed;
      return agreed;
    }
  }
  for (auto& e : entries) s.tensors.emplace(e.key, std::move(e));
  s.object_cells.insert(cells.begin(), cells.end());
  if (rank == 0) {
    MergeCommon(flat.common, &s.common);
    s.common_encoded = s.parts == 1 ? std::move(part->common_encoded) : std::string();
  }
  const SaveReport part_report = Report(stats, &s.report);
  if (report != nullptr) *report = part_report;
  return Status::OK();
}

// "put of step N" (and the part, after the first), for messages.
std::string PartWhat(const PutSession* session) {
  return "put of step " + std::to_string(session != nullptr ? session->step : 0) +
         (session != nullptr && session->parts > 0 ? " (part " + std::to_string(session->parts) + ")" : "");
}

}  // namespace

Status WritePart(Communicator* c, StoreContext* store, PutSession* session, const StateDict& state,
                 const Status& caller, SaveReport* report, Status* unagreed) {
  Status local = caller;
  if (local.ok() && (session == nullptr || session->comm != c)) {
    local = Status::FailedPrecondition("no write session is open (BeginStep first)");
  }
  if (local.ok() && !session->broken.ok()) {
    local = Status::FailedPrecondition("the write session failed (" + session->broken.message() +
                                       "); AbortStep and start again");
  }
  if (local.ok() && session->parts + 1 >= manifest::kGenerationParts) {
    local = Status::FailedPrecondition("step " + std::to_string(session->step) + " already has " +
                                       std::to_string(session->parts) + " parts, the most one step may have");
  }
  LocalPart part;
  ValidateLocalPart(state, local, &part);
  return WriteValidatedPart(c, store, session, &part, nullptr, PartWhat(session), report, unagreed);
}

Status WriteLocalPart(StoreContext* store, PutSession* session, std::vector<manifest::TensorEntry> entries,
                      write::WriteRequest request, const Value& common, SaveReport* report) {
  PutSession& s = *session;
  const std::string what = "put of step " + std::to_string(s.step);
  if (s.comm->size() != 1 || s.parts != 0) {
    return Status::Internal(what + ": a local part needs a one-process session with no part yet");
  }
  for (const auto& e : entries) {
    if (s.tensors.count(e.key)) return Status::InvalidArgument(what + ": tensor '" + e.key + "' is declared twice");
  }
  DCP_ASSIGN_OR_RETURN(s.common_encoded, manifest::EncodeCommonState(common));
  PrepareRequest(store, s, &request);
  write::WriteStats stats;
  Status written = write::WriteShards(store->own(), request, s.options, &s.fragment, &stats,
                                      store->WritePool(s.options.encode_threads));
  ++s.parts;
  if (!written.ok()) {
    s.broken = written;
    return written.Annotate(what);
  }
  store->record_check().AddWritten(store->own()->rank(), request.generation);
  for (auto& e : entries) s.tensors.emplace(e.key, std::move(e));
  s.common = common;
  Report(stats, &s.report);
  if (report != nullptr) *report = s.report;
  return Status::OK();
}

Status Commit(StoreContext* store, std::unique_ptr<PutSession> s, const Status& written, SaveReport* report) {
  Communicator* c = s->comm;
  const std::string what = "put of step " + std::to_string(s->step);
  CommitRequest request;
  request.root = store->root();
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
  DCP_RETURN_IF_ERROR(CommitStep(c, request, prepared, std::move(s->fragment)).Annotate(what));
  if (report != nullptr) *report = s->report;
  return Status::OK();
}

Status Put(Communicator* c, StoreContext* store, uint64_t step, const StateDict& state, const SaveOptions& options,
           const Status& local, SaveReport* report) {
  // Step A runs before the start round, and its verdict and signature ride
  // on it: one round less than BeginStep and WritePart. The start's own
  // failures still come first (the agreement on A is reached after them,
  // from the same bytes on every rank).
  LocalPart part;
  ValidateLocalPart(state, local, &part);
  std::vector<std::string> signed_parts;
  DCP_ASSIGN_OR_RETURN(std::unique_ptr<PutSession> session,
                       BeginStep(c, store, step, options, local, "Put", SignedPart(part), &signed_parts));
  Status written;
  // Every rank failed the same way, or none did: every rank drops the session.
  DCP_RETURN_IF_ERROR(WriteValidatedPart(c, store, session.get(), &part, &signed_parts, PartWhat(session.get()),
                                         nullptr, &written));
  return Commit(store, std::move(session), written, report);
}

}  // namespace dcp::protocol
