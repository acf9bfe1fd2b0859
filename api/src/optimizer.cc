// Copyright (c) dcp authors.

#include "dcp/optimizer.h"

#include <set>
#include <utility>
#include <vector>

namespace dcp {
namespace {

std::string Where(std::string_view state_name, const std::string& key) {
  return "optimizer state '" + std::string(state_name) + "' of parameter '" + key + "'";
}

Status CheckStateView(std::string_view state_name, const std::string& key, const TensorView& state) {
  if (state_name.empty()) {
    return Status::InvalidArgument("optimizer state of parameter '" + key + "': the state name is empty");
  }
  if (Status s = state.Validate(); !s.ok()) return Status::InvalidArgument(Where(state_name, key) + ": " + s.message());
  return Status::OK();
}

Status ShapeMismatch(std::string_view state_name, const std::string& key, const Shape& got, const Shape& want) {
  return Status::InvalidArgument(Where(state_name, key) + ": view shape " + ShapeToString(got) +
                                 " differs from the parameter's local shape " + ShapeToString(want));
}

}  // namespace

std::string OptimizerStateKey(std::string_view state_name, std::string_view model_key) {
  std::string key = "optimizer.state.";
  key += state_name;
  key += '.';
  key += model_key;
  return key;
}

Result<ShardedTensor> OptimizerStateTensor(const ShardedTensor& param, std::string_view state_name,
                                           const TensorView& state) {
  DCP_RETURN_IF_ERROR(CheckStateView(state_name, param.key, state));
  if (param.flattened_range) {
    const int64_t want = param.flattened_range->size();
    if (state.rank() != 1 || state.num_elements() != want) {
      return Status::InvalidArgument(Where(state_name, param.key) + ": view shape " + ShapeToString(state.shape()) +
                                     " is not the 1-D slice of " + std::to_string(want) +
                                     " elements of the parameter's flattened range");
    }
  } else if (state.shape() != param.local_shape) {
    return ShapeMismatch(state_name, param.key, state.shape(), param.local_shape);
  }
  ShardedTensor t = param;
  t.key = OptimizerStateKey(state_name, param.key);
  t.data = state;
  t.dtype = state.dtype();
  return t;
}

Result<ShardedTensorFactory> OptimizerStateFactory(const ShardedTensorFactory& param, std::string_view state_name,
                                                   const TensorView& state) {
  DCP_RETURN_IF_ERROR(CheckStateView(state_name, param.key, state));
  if (state.shape() != param.data.shape()) return ShapeMismatch(state_name, param.key, state.shape(), param.data.shape());
  ShardedTensorFactory f = param;
  f.key = OptimizerStateKey(state_name, param.key);
  f.data = state;
  return f;
}

namespace {

std::string Join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

const char* KindName(StateDict::Kind k) {
  switch (k) {
    case StateDict::Kind::kTensor: return "tensor";
    case StateDict::Kind::kObject: return "object";
    case StateDict::Kind::kValue: return "value";
    case StateDict::Kind::kDict: return "dict";
    case StateDict::Kind::kFactory: return "factory";
  }
  return "entry";
}

// Walks `model`, adding to `out` the states of every parameter named in
// `states`; records every path it matched in `matched`.
Status Walk(const StateDict& model, const std::string& prefix, const OptimizerStateViews& states, StateDict* out,
            std::set<std::string>* matched) {
  for (size_t i = 0; i < model.size(); ++i) {
    const std::string path = Join(prefix, model.key(i));
    const StateDict::Kind kind = model.kind(i);
    auto it = states.find(path);
    if (it != states.end()) {
      if (!matched->insert(path).second) {
        return Status::InvalidArgument("optimizer state for '" + path +
                                       "': the path names two entries of the model state dict");
      }
      if (kind != StateDict::Kind::kTensor && kind != StateDict::Kind::kFactory) {
        return Status::InvalidArgument("optimizer state for '" + path + "': the model state dict entry is a " +
                                       KindName(kind) + ", not a tensor or factory");
      }
      StateDict per_param;
      for (const auto& [name, view] : it->second) {
        if (kind == StateDict::Kind::kTensor) {
          auto t = OptimizerStateTensor(model.tensor(i), name, view);
          if (!t.ok()) return t.status().Annotate("state dict entry '" + path + "'");
          per_param.Add(name, std::move(t).value());
        } else {
          auto f = OptimizerStateFactory(model.factory(i), name, view);
          if (!f.ok()) return f.status().Annotate("state dict entry '" + path + "'");
          per_param.Add(name, std::move(f).value());
        }
      }
      out->Add(model.key(i), std::move(per_param));
      continue;
    }
    if (kind == StateDict::Kind::kDict) {
      StateDict child;
      DCP_RETURN_IF_ERROR(Walk(model.dict(i), path, states, &child, matched));
      if (!child.empty()) out->Add(model.key(i), std::move(child));
    }
  }
  return Status::OK();
}

}  // namespace

Result<StateDict> OptimizerStateDict(const StateDict& model, const OptimizerStateViews& states) {
  StateDict out;
  std::set<std::string> matched;
  DCP_RETURN_IF_ERROR(Walk(model, "", states, &out, &matched));
  for (const auto& [path, per_param] : states) {
    if (!matched.count(path)) {
      return Status::InvalidArgument("optimizer state for '" + path +
                                     "': no parameter at that path in the model state dict");
    }
  }
  return out;
}

Result<ShardedTensor> FlatOptimizerStateTensor(const ShardedTensor& param, std::string_view state_name,
                                               FlatRange range, const TensorView& flat_state) {
  DCP_RETURN_IF_ERROR(CheckStateView(state_name, param.key, flat_state));
  const std::string where = Where(state_name, param.key);
  if (param.flattened_range) {
    return Status::InvalidArgument(where + ": the parameter already has a flattened range (pass the whole local "
                                           "parameter's entry)");
  }
  const int64_t numel = NumElements(param.local_shape);
  if (range.begin < 0 || range.begin > range.end || range.end > numel) {
    return Status::InvalidArgument(where + ": flattened range [" + std::to_string(range.begin) + ", " +
                                   std::to_string(range.end) + ") is not within the " + std::to_string(numel) +
                                   " elements of local shape " + ShapeToString(param.local_shape));
  }
  if (flat_state.rank() != 1 || flat_state.num_elements() != range.size()) {
    return Status::InvalidArgument(where + ": view shape " + ShapeToString(flat_state.shape()) +
                                   " is not the 1-D slice of " + std::to_string(range.size()) +
                                   " elements of flattened range [" + std::to_string(range.begin) + ", " +
                                   std::to_string(range.end) + ")");
  }
  ShardedTensor t = param;
  t.key = OptimizerStateKey(state_name, param.key);
  t.data = flat_state;
  t.dtype = flat_state.dtype();
  t.flattened_range = range;
  if (!t.replica_id.empty()) t.replica_id.back() = 0;
  return t;
}

}  // namespace dcp
