// Copyright (c) dcp authors.

#include "engine/protocol/load.h"

#include <algorithm>
#include <new>
#include <set>

#include "engine/coord/agreement.h"
#include "engine/cuda/device.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/protocol/strict_keys.h"
#include "engine/query/assembler.h"
#include "engine/query/planner.h"
#include "engine/query/read_once.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/store/catalog.h"
#include "engine/wire/wire.h"

namespace dcp::protocol {
namespace {

// `s`, or NotFound if it is data loss and `step` is no longer committed.
Status DeletedWhileRead(const StoreContext& store, uint64_t step, Status s) {
  if (!s.IsDataLoss() || storage::StepExists(store.root(), step)) return s;
  return Status::NotFound("step " + std::to_string(step) + " was deleted while it was being read (" + s.message() +
                          ")");
}

}  // namespace

Result<std::shared_ptr<query::StepIndex>> LoadStepLocal(StoreContext* store, uint64_t step) {
  DCP_RETURN_IF_ERROR(storage::CheckStepIntact(store->root(), step));
  DCP_ASSIGN_OR_RETURN(std::string bytes, storage::ReadManifestFile(store->root(), step));
  return store->IndexFromBytes(step, bytes);
}

namespace {

// Megatron's names of the strict modes (StrictHandling's values index it).
const char* StrictName(StrictHandling mode) {
  static const char* const kNames[] = {"assume_ok_unexpected", "log_unexpected", "log_all",    "raise_unexpected",
                                       "raise_all",            "return_unexpected", "return_all", "ignore_all"};
  const auto i = static_cast<size_t>(mode);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "unknown";
}

// Rank 0 reads the manifest and sends it with its step and the options that
// decide which collectives the get runs (strict, read_once). Every rank then
// names the get by rank 0's step (`*named`) and runs the collectives of rank
// 0's options (`*options` takes them), so that a rank that asked for another
// step (ranks that resolved "the latest step" apart, each from its own view
// of a shared filesystem) or other options fails by name, with the others,
// instead of on a manifest of another step or in a collective no other rank
// runs.
Result<std::shared_ptr<query::StepIndex>> LoadStepCollective(Communicator* comm, StoreContext* store, uint64_t step,
                                                             uint64_t* named, LoadOptions* options) {
  *named = step;
  std::string message;
  if (comm->rank() == 0) {
    Status intact = storage::CheckStepIntact(store->root(), step);
    auto manifest = intact.ok() ? storage::ReadManifestFile(store->root(), step) : Result<std::string>(intact);
    message = wire::Writer()
                  .U64(step)
                  .U8(static_cast<uint8_t>(options->strict))
                  .U8(options->read_once ? 1 : 0)
                  .PutStatus(manifest.status())
                  .Raw(manifest.ok() ? std::string_view(*manifest) : std::string_view())
                  .Finish();
  }
  DCP_RETURN_IF_ERROR(comm->Broadcast(0, &message));
  wire::Reader in(message, "manifest broadcast by rank 0");
  const uint64_t root_step = in.U64();
  const auto root_strict = static_cast<StrictHandling>(in.U8());
  const bool root_read_once = in.U8() != 0;
  Status on_root = in.GetStatus();
  const std::string_view manifest = in.Rest();
  DCP_RETURN_IF_ERROR(in.Finish());
  *named = root_step;
  const LoadOptions mine = *options;
  options->strict = root_strict;
  options->read_once = root_read_once;
  DCP_RETURN_IF_ERROR(on_root);
  const std::string rank = "rank " + std::to_string(comm->rank());
  if (root_step != step) {
    return Status::InvalidArgument(rank + " gets step " + std::to_string(step) + " but rank 0 step " +
                                   std::to_string(root_step) + ": every rank must get the same step");
  }
  if (mine.strict != root_strict) {
    return Status::InvalidArgument(rank + " gets with strict handling '" + StrictName(mine.strict) +
                                   "' but rank 0 with '" + StrictName(root_strict) +
                                   "': every rank must use the same");
  }
  if (mine.read_once != root_read_once) {
    return Status::InvalidArgument(rank + (mine.read_once ? " gets read-once but rank 0 does not"
                                                          : " does not get read-once but rank 0 does") +
                                   ": every rank must use the same");
  }
  return store->IndexFromBytes(step, manifest);
}

}  // namespace

Result<LoadResult> Get(Communicator* comm, StoreContext* store, uint64_t step, StateDict* request,
                       const LoadOptions& options, const Status& caller) {
  sharding::FlatRequest flat;
  Status local = caller;
  if (local.ok()) local = sharding::FlattenForLoad(request, &flat);
  if (local.ok()) local = sharding::ValidateLocalLoad(flat);

  // The first round names the call, as every collective call's does
  // (coord/agreement.h): a rank in a get while another is in a put, or in any
  // other call, fails every rank by name instead of meeting rank 0's
  // broadcast with another collective. It carries whether this rank's request
  // failed, so that no rank reads for a get that will fail; the status itself
  // waits for the end, where rank 0's error on the step (not committed,
  // damaged) is the one named if there is one.
  std::vector<std::string> flags;
  DCP_RETURN_IF_ERROR(coord::AgreeAndGather(comm, Status::OK(), local.ok() ? "" : "x", &flags, {}, "Get"));
  const bool a_request_failed =
      std::any_of(flags.begin(), flags.end(), [](const std::string& f) { return !f.empty(); });
  // Every rank takes part in the broadcast, whatever its local status.
  uint64_t named = step;
  LoadOptions agreed = options;  // strict and read_once: rank 0's from here on
  auto index = LoadStepCollective(comm, store, step, &named, &agreed);
  LoadResult result;
  if (local.ok()) local = index.status();
  // Strict key handling (strict_keys.h): drops unexpected entries, or fails.
  local = ApplyStrictHandling(comm, agreed.strict, step, local.ok() ? &(*index)->manifest() : nullptr, local, &flat,
                              &result);
  base::ThreadPool* pool = store->ReadPool(agreed.read_threads);
  // A read-once load is collective: a rank that failed before planning still
  // takes part (engine/query/read_once.h), and so stops every rank early.
  if (agreed.read_once && !local.ok()) {
    local = query::ExecuteReadOnce(comm, store->stores(), nullptr, query::ReadPlan(), local, agreed, &result.report,
                                   pool);
  }
  if (local.ok() && a_request_failed) {
    // Another rank's request failed: the get fails with its error at the end.
    // Nothing is read; a read-once exchange (collective) stops in its first
    // round, where that rank says it cannot take part.
    if (agreed.read_once) {
      local = query::ExecuteReadOnce(comm, store->stores(), &(*index)->manifest(), query::ReadPlan(), local, agreed,
                                     &result.report, pool);
    }
  } else if (local.ok()) {
    const manifest::StepManifest& m = (*index)->manifest();
    query::ReadPlanner planner(index->get());
    for (const auto& leaf : flat.tensors) {
      local = planner.AddShard(*leaf.item, "state dict entry '" + leaf.path + "'");  // flat ranges, shape mismatch
      if (!local.ok()) break;
    }
    for (size_t i = 0; local.ok() && i < flat.objects.size(); ++i) {
      ShardedObject& o = *flat.objects[i].item;
      const manifest::ObjectEntry* e = m.FindObject(o.unique_key());
      if (e == nullptr) {
        local = Status::NotFound("state dict entry '" + flat.objects[i].path + "': object '" + o.unique_key() +
                                 "' is not in step " + std::to_string(step));
        break;
      }
      local = query::ReadObject(store->stores(), m.generation, *e, &o.data);
    }
    if (agreed.read_once) {
      // Collective: every rank that got here takes part, whatever its status.
      local = query::ExecuteReadOnce(comm, store->stores(), &m, planner.Finish(), local, agreed, &result.report,
                                     pool);
    } else if (local.ok()) {
      const query::ReadPlan plan = planner.Finish();
      local = query::ExecuteReadPlan(store->stores(), m.generation, plan, agreed, comm->rank(), pool);
      if (local.ok()) result.report = LoadReport{plan.reads.size(), plan.record_bytes};
    }
    // Factories' pieces are loaded: merge them into the factories' views.
    if (local.ok()) local = sharding::ApplyFactoryMerges(flat);
    if (local.ok()) {
      auto common = manifest::DecodeCommonState(m.common_state);
      if (common.ok()) result.common_state = std::move(common).value();
      else local = common.status();
    }
  }
  local = DeletedWhileRead(*store, step, std::move(local));
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local, "get of step " + std::to_string(named)));
  return result;
}

Status Read(StoreContext* store, uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
            const LoadOptions& options) {
  const std::string what = "read of '" + std::string(key) + "' from step " + std::to_string(step);
  DCP_RETURN_IF_ERROR(dest.Validate().Annotate(what));
  DCP_RETURN_IF_ERROR(sharding::ValidateDestination(what, dest));
  DCP_RETURN_IF_ERROR(cuda::CheckViewMemory(dest, what));
  DCP_ASSIGN_OR_RETURN(auto index, LoadStepLocal(store, step));
  const manifest::StepManifest& m = index->manifest();
  const manifest::TensorEntry* t = m.FindTensor(key);
  if (t == nullptr) {
    return Status::NotFound(what + ": tensor '" + std::string(key) + "' is not in step " + std::to_string(step));
  }
  if (region.origin.size() != region.shape.size()) {
    return Status::InvalidArgument(what + ": region origin and shape have different ranks");
  }
  query::ReadPlanner planner(index.get());
  DCP_RETURN_IF_ERROR(planner.Add(key, dest.dtype(), t->global_shape, region, dest, what));
  return DeletedWhileRead(*store, step,
                          query::ExecuteReadPlan(store->stores(), m.generation, planner.Finish(), options,
                                                 /*rank=*/-1, store->ReadPool(options.read_threads)));
}

Result<PlainState> LoadPlain(StoreContext* store, uint64_t step, const std::vector<std::string>& keys,
                             const LoadOptions& options) {
  const std::string what = "plain load of step " + std::to_string(step);
  DCP_ASSIGN_OR_RETURN(auto index, LoadStepLocal(store, step));
  const manifest::StepManifest& m = index->manifest();

  // What to load: every tensor and object, or those the keys name.
  std::vector<const manifest::TensorEntry*> tensors;
  std::vector<const manifest::ObjectEntry*> objects;
  if (keys.empty()) {
    for (const auto& t : m.tensors) tensors.push_back(&t);
    for (const auto& o : m.objects) objects.push_back(&o);
  } else {
    const std::set<std::string_view> wanted(keys.begin(), keys.end());
    std::set<std::string_view> found;
    for (std::string_view k : wanted) {
      if (const manifest::TensorEntry* t = m.FindTensor(k)) {
        tensors.push_back(t);
        found.insert(k);
      }
    }
    for (const auto& o : m.objects) {
      if (wanted.count(o.key)) {
        objects.push_back(&o);
        found.insert(o.key);
      }
    }
    for (std::string_view k : wanted) {
      if (!found.count(k)) {
        return Status::NotFound(what + ": key '" + std::string(k) + "' names no tensor or object of step " +
                                std::to_string(step));
      }
    }
  }

  PlainState out;
  out.tensors.reserve(tensors.size());
  query::ReadPlanner planner(index.get());
  for (const manifest::TensorEntry* t : tensors) {  // sorted by key, as m.tensors
    try {
      out.tensors.emplace_back(t->key, t->dtype, t->global_shape);
    } catch (const std::bad_alloc&) {
      return Status::FailedPrecondition(what + ": cannot allocate " + std::to_string(t->raw_bytes()) +
                                        " bytes for tensor '" + t->key + "'");
    }
    const Box whole{Shape(t->global_shape.size(), 0), t->global_shape};
    DCP_RETURN_IF_ERROR(
        planner.Add(t->key, t->dtype, t->global_shape, whole, out.tensors.back().view(), "tensor '" + t->key + "'")
            .Annotate(what));
  }
  DCP_RETURN_IF_ERROR(DeletedWhileRead(*store, step,
                                       query::ExecuteReadPlan(store->stores(), m.generation, planner.Finish(), options,
                                                              /*rank=*/-1, store->ReadPool(options.read_threads)))
                          .Annotate(what));
  for (const manifest::ObjectEntry* o : objects) {  // sorted by unique key, as m.objects
    ShardedObject obj{o->key, "", o->global_shape, o->global_offset, {}};
    DCP_RETURN_IF_ERROR(query::ReadObject(store->stores(), m.generation, *o, &obj.data).Annotate(what));
    out.objects.push_back(std::move(obj));
  }
  DCP_ASSIGN_OR_RETURN(out.common_state, manifest::DecodeCommonState(m.common_state));
  return out;
}

}  // namespace dcp::protocol
