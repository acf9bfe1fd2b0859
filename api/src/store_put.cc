// Copyright (c) dcp authors.
//
// The put protocol (collective), in four agreement points:
//   A. local validation (view vs declaration, offsets, duplicates, step exists)
//   B. exchange of shard declarations; global validation on every rank
//   C. each rank writes its main-replica chunks into its own rank store
//   D. commit: rank 0 merges the fragments and publishes the manifest

#include <chrono>
#include <cstdio>
#include <cstring>

#include "api/src/store_impl.h"
#include "engine/base/fault_injection.h"
#include "engine/codec/checksum.h"
#include "engine/coord/agreement.h"
#include "engine/coord/commit.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/store/catalog.h"
#include "engine/write/shard_writer.h"

namespace dcp {
namespace {

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

Status Store::Impl::Put(Communicator* comm, uint64_t step, const StateDict& state, const SaveOptions& options,
                        SaveReport* report) {
  const int rank = comm->rank();
  const std::string what = "put of step " + std::to_string(step);

  // A. Local validation.
  sharding::FlatState flat;
  std::string common_bytes;
  codec::Hash128 common_hash;
  Status local;
  if (own == nullptr) local = Status::FailedPrecondition("store '" + root + "' was opened read-only");
  if (local.ok() && async_ != nullptr && comm == this->comm) {
    local = Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                       " has not been collected (call WaitForPut first)");
  }
  if (local.ok()) local = sharding::FlattenForSave(state, &flat);
  if (local.ok()) local = sharding::ValidateLocalSave(flat);
  if (local.ok()) {
    auto encoded = manifest::EncodeCommonState(flat.common);
    if (encoded.ok()) {
      common_bytes = std::move(encoded).value();
      common_hash = codec::ContentHash128(common_bytes.data(), common_bytes.size());
    } else {
      local = encoded.status();
    }
  }
  if (local.ok() && rank == 0 && !options.overwrite && storage::StepExists(root, step)) {
    local = Status::AlreadyExists("step " + std::to_string(step) + " already exists in store '" + root +
                                  "' (set SaveOptions::overwrite to replace it)");
  }
  if (local.ok()) local = base::CheckFaultPoint("put.validate", rank);
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local).Annotate(what));

  // B. Exchange declarations, validate the global picture everywhere. The
  // generation rides along with rank 0's declaration.
  std::vector<std::string> all;
  const uint64_t proposed_generation = NowNanos();
  std::string mine = manifest::EncodeRankDecl(sharding::DeclareState(flat, common_hash));
  mine.append(reinterpret_cast<const char*>(&proposed_generation), sizeof(proposed_generation));
  DCP_RETURN_IF_ERROR(comm->AllGather(mine, &all));
  std::vector<manifest::RankDecl> decls;
  decls.reserve(all.size());
  Status global;
  uint64_t generation = 0;
  for (int r = 0; r < static_cast<int>(all.size()) && global.ok(); ++r) {
    std::string_view bytes = all[r];
    if (bytes.size() < sizeof(uint64_t)) {
      global = Status::Internal("truncated declaration from rank " + std::to_string(r));
      break;
    }
    if (r == 0) std::memcpy(&generation, bytes.data() + bytes.size() - sizeof(uint64_t), sizeof(uint64_t));
    auto d = manifest::DecodeRankDecl(bytes.substr(0, bytes.size() - sizeof(uint64_t)), r);
    if (d.ok()) decls.push_back(std::move(d).value());
    else global = d.status();
  }
  std::vector<manifest::TensorEntry> skeleton_tensors;
  if (global.ok()) {
    auto v = sharding::ValidateGlobal(decls);
    if (v.ok()) skeleton_tensors = std::move(v).value();
    else global = v.status();
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, global).Annotate(what));
  if (rank == 0) {
    for (size_t r = 1; r < decls.size(); ++r) {
      if (decls[r].common_state_hash != decls[0].common_state_hash) {
        std::fprintf(stderr, "dcp: %s: common state of rank %zu differs from rank 0's; rank 0's copy is saved\n",
                     what.c_str(), r);
        break;
      }
    }
  }

  // C. Write this rank's main replicas.
  std::vector<const ShardedTensor*> tensors;
  for (const auto& leaf : flat.tensors) {
    if (leaf.item->is_main_replica() && leaf.item->global_box().num_elements() > 0) tensors.push_back(leaf.item);
  }
  std::vector<const ShardedObject*> objects;
  for (const auto& leaf : flat.objects) {
    if (leaf.item->is_main_replica()) objects.push_back(leaf.item);
  }
  manifest::StepManifest fragment;
  write::WriteStats stats;
  Status written = write::WriteShards(own.get(), generation, tensors, objects, options, &fragment, &stats);

  // D. Commit.
  coord::CommitRequest request;
  request.root = root;
  if (rank == 0) {
    request.skeleton.step = step;
    request.skeleton.generation = generation;
    request.skeleton.world_size = static_cast<uint32_t>(comm->size());
    request.skeleton.tensors = std::move(skeleton_tensors);
    request.skeleton.common_state = std::move(common_bytes);
  }
  DCP_RETURN_IF_ERROR(coord::CommitStep(comm, request, written, fragment).Annotate(what));
  if (report != nullptr) {
    report->chunks_written = stats.chunks;
    report->objects_written = stats.objects;
    report->raw_bytes_written = stats.raw_bytes;
    report->stored_bytes_written = stats.stored_bytes;
  }
  return Status::OK();
}

}  // namespace dcp

namespace dcp {

Store::Impl::~Impl() {
  if (async_ != nullptr && async_->thread.joinable()) async_->thread.join();
}

Status Store::Impl::PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options) {
  const std::string what = "async put of step " + std::to_string(step);
  Status local;
  if (own == nullptr) local = Status::FailedPrecondition("store '" + root + "' was opened read-only");
  if (local.ok() && async_ != nullptr) {
    local = Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                       " is still in flight (call WaitForPut first)");
  }
  if (local.ok() && !comm->SupportsConcurrentDuplicates()) {
    local = Status::FailedPrecondition(
        "the communicator cannot run collectives on a background thread (MPI needs MPI_THREAD_MULTIPLE)");
  }
  sharding::FlatState flat;
  if (local.ok()) local = sharding::FlattenForSave(state, &flat);
  if (local.ok()) local = sharding::ValidateLocalSave(flat);
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local).Annotate(what));

  if (async_comm_ == nullptr) {
    auto dup = comm->Duplicate();
    Status s = dup.status();
    if (dup.ok()) async_comm_ = std::move(dup).value();
    DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, s).Annotate(what));
  }
  // The snapshot: after it, the caller's tensors are no longer read.
  DCP_RETURN_IF_ERROR(
      coord::AgreeOnStatus(comm, snapshot_.Take(state, options.encode_threads)).Annotate(what));

  async_ = std::make_unique<AsyncPut>();
  async_->step = step;
  AsyncPut* a = async_.get();
  a->thread = std::thread([this, a, step, options] {
    SaveReport report;
    Status s = Put(async_comm_.get(), step, snapshot_.state(), options, &report);
    std::lock_guard<std::mutex> lock(a->mu);
    a->outcome = std::move(s);
    a->report = report;
    a->done = true;
  });
  return Status::OK();
}

Status Store::Impl::Collect(SaveReport* report) {
  async_->thread.join();
  Status outcome = async_->outcome;
  if (report != nullptr) *report = async_->report;
  async_.reset();
  return outcome;
}

Status Store::Impl::WaitForPut(SaveReport* report) {
  if (async_ == nullptr) return Status::FailedPrecondition("no async put to wait for");
  return Collect(report);
}

std::optional<Status> Store::Impl::PollPut(SaveReport* report) {
  if (async_ == nullptr) return Status::FailedPrecondition("no async put to poll");
  {
    std::lock_guard<std::mutex> lock(async_->mu);
    if (!async_->done) return std::nullopt;
  }
  return Collect(report);
}

}  // namespace dcp
