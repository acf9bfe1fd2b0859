// Copyright (c) dcp authors.
//
// The get protocol (collective): rank 0 reads the step manifest and
// broadcasts it; every rank verifies it, plans its own reads through the
// chunk index, reads and assembles them; all ranks agree on the outcome.
// Read (not collective) runs the same planning and assembly for one region.

#include "api/src/store_impl.h"
#include "engine/coord/agreement.h"
#include "engine/protocol/strict_keys.h"
#include "engine/cuda/device.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/query/assembler.h"
#include "engine/query/planner.h"
#include "engine/query/read_once.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/store/catalog.h"

namespace dcp {

Result<LoadResult> Store::Impl::Get(uint64_t step, StateDict* request, const LoadOptions& options) {
  const std::string what = "get of step " + std::to_string(step);
  sharding::FlatRequest flat;
  Status local = sharding::FlattenForLoad(request, &flat);
  if (local.ok()) local = sharding::ValidateLocalLoad(flat);

  // Every rank takes part in the broadcast, whatever its local status.
  auto index = LoadStepCollective(step);
  LoadResult result;
  if (local.ok()) local = index.status();
  // Strict key handling (protocol/strict_keys.h): drops unexpected entries, or fails.
  local = protocol::ApplyStrictHandling(comm, options.strict, step, local.ok() ? &(*index)->manifest() : nullptr, local, &flat,
                              &result);
  // A read-once load is collective: a rank that failed before planning still
  // takes part (engine/query/read_once.h), and so stops every rank early.
  if (options.read_once && !local.ok()) {
    local = query::ExecuteReadOnce(comm, stores.get(), nullptr, query::ReadPlan(), local, options, &result.report,
                                   ReadPool(options.read_threads));
  }
  if (local.ok()) {
    const manifest::StepManifest& m = (*index)->manifest();
    query::ReadPlanner planner(index->get());
    for (const auto& leaf : flat.tensors) {
      const ShardedTensor& t = *leaf.item;
      local = planner.AddShard(t, "state dict entry '" + leaf.path + "'");  // flat ranges, shape mismatch
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
      local = query::ReadObject(stores.get(), m.generation, *e, &o.data);
    }
    if (options.read_once) {
      // Collective: every rank that got here takes part, whatever its status.
      local = query::ExecuteReadOnce(comm, stores.get(), &m, planner.Finish(), local, options, &result.report,
                                     ReadPool(options.read_threads));
    } else if (local.ok()) {
      const query::ReadPlan plan = planner.Finish();
      local = query::ExecuteReadPlan(stores.get(), m.generation, plan, options, comm->rank(),
                                     ReadPool(options.read_threads));
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
  local = DeletedWhileRead(step, std::move(local));
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local).Annotate(what));
  return result;
}

Status Store::Impl::DeletedWhileRead(uint64_t step, Status s) const {
  // Records of a step that retention or DeleteStep removed under a reader go
  // missing: that is the step not being there, not damage.
  if (!s.IsDataLoss() || storage::StepExists(root, step)) return s;
  return Status::NotFound("step " + std::to_string(step) + " was deleted while it was being read (" + s.message() +
                          ")");
}

Status Store::Impl::Read(uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
                         const LoadOptions& options) {
  const std::string what = "read of '" + std::string(key) + "' from step " + std::to_string(step);
  DCP_RETURN_IF_ERROR(dest.Validate().Annotate(what));
  DCP_RETURN_IF_ERROR(cuda::CheckViewMemory(dest, what));
  DCP_ASSIGN_OR_RETURN(auto index, LoadStepLocal(step));
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
  return DeletedWhileRead(step, query::ExecuteReadPlan(stores.get(), m.generation, planner.Finish(), options,
                                                       /*rank=*/-1, ReadPool(options.read_threads)));
}

}  // namespace dcp
