// Copyright (c) dcp authors.
//
// The "plain" load (not collective): whole tensors of a step on one process,
// in buffers it allocates, through the same planner and assembler as Get.

#include <algorithm>
#include <new>
#include <set>

#include "api/src/store_impl.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/query/assembler.h"
#include "engine/query/planner.h"

namespace dcp {

PlainTensor::PlainTensor(std::string key, DType dtype, Shape shape)
    : key_(std::move(key)), dtype_(dtype), shape_(std::move(shape)) {
  size_bytes_ = static_cast<uint64_t>(NumElements(shape_)) * DTypeSize(dtype_);
  data_.reset(new std::byte[size_bytes_]);  // uninitialised: every byte is loaded
}

const PlainTensor* PlainState::FindTensor(std::string_view key) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), key,
                             [](const PlainTensor& t, std::string_view k) { return t.key() < k; });
  return it != tensors.end() && it->key() == key ? &*it : nullptr;
}

const ShardedObject* PlainState::FindObject(std::string_view unique_key) const {
  auto it = std::lower_bound(objects.begin(), objects.end(), unique_key,
                             [](const ShardedObject& o, std::string_view k) { return o.unique_key() < k; });
  return it != objects.end() && it->unique_key() == unique_key ? &*it : nullptr;
}

Result<PlainState> Store::LoadPlain(uint64_t step, const std::vector<std::string>& keys, const LoadOptions& options) {
  const std::string what = "plain load of step " + std::to_string(step);
  DCP_ASSIGN_OR_RETURN(auto index, impl_->LoadStepLocal(step));
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
  DCP_RETURN_IF_ERROR(
      impl_->DeletedWhileRead(step, query::ExecuteReadPlan(impl_->stores.get(), m.generation, planner.Finish(), options,
                                                           /*rank=*/-1, impl_->ReadPool(options.read_threads)))
          .Annotate(what));
  for (const manifest::ObjectEntry* o : objects) {  // sorted by unique key, as m.objects
    ShardedObject obj{o->key, "", o->global_shape, o->global_offset, {}};
    DCP_RETURN_IF_ERROR(query::ReadObject(impl_->stores.get(), m.generation, *o, &obj.data).Annotate(what));
    out.objects.push_back(std::move(obj));
  }
  DCP_ASSIGN_OR_RETURN(out.common_state, manifest::DecodeCommonState(m.common_state));
  return out;
}

}  // namespace dcp
