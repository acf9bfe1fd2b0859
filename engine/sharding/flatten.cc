// Copyright (c) dcp authors.

#include "engine/sharding/flatten.h"

#include <set>

namespace dcp::sharding {
namespace {

std::string Join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

Status CheckUniqueKeys(const StateDict& sd, const std::string& prefix) {
  std::set<std::string> seen;
  for (size_t i = 0; i < sd.size(); ++i) {
    if (!seen.insert(sd.key(i)).second) {
      return Status::InvalidArgument("duplicate state dict key '" + Join(prefix, sd.key(i)) + "'");
    }
  }
  return Status::OK();
}

// Returns true if `sd` holds any Value leaf (so empty sub-maps are omitted).
Status WalkSave(const StateDict& sd, const std::string& prefix, FlatState* out, Value* common) {
  DCP_RETURN_IF_ERROR(CheckUniqueKeys(sd, prefix));
  for (size_t i = 0; i < sd.size(); ++i) {
    const std::string path = Join(prefix, sd.key(i));
    switch (sd.kind(i)) {
      case StateDict::Kind::kTensor: out->tensors.push_back({path, &sd.tensor(i)}); break;
      case StateDict::Kind::kObject: out->objects.push_back({path, &sd.object(i)}); break;
      case StateDict::Kind::kValue: common->Set(sd.key(i), sd.value(i)); break;
      case StateDict::Kind::kDict: {
        Value child = Value::Map();
        DCP_RETURN_IF_ERROR(WalkSave(sd.dict(i), path, out, &child));
        if (child.size() > 0) common->Set(sd.key(i), std::move(child));
        break;
      }
    }
  }
  return Status::OK();
}

Status WalkLoad(StateDict* sd, const std::string& prefix, FlatRequest* out) {
  DCP_RETURN_IF_ERROR(CheckUniqueKeys(*sd, prefix));
  for (size_t i = 0; i < sd->size(); ++i) {
    const std::string path = Join(prefix, sd->key(i));
    switch (sd->kind(i)) {
      case StateDict::Kind::kTensor: out->tensors.push_back({path, &sd->tensor(i)}); break;
      case StateDict::Kind::kObject: out->objects.push_back({path, &sd->object(i)}); break;
      case StateDict::Kind::kValue: break;
      case StateDict::Kind::kDict: DCP_RETURN_IF_ERROR(WalkLoad(&sd->dict(i), path, out)); break;
    }
  }
  return Status::OK();
}

}  // namespace

Status FlattenForSave(const StateDict& sd, FlatState* out) { return WalkSave(sd, "", out, &out->common); }

Status FlattenForLoad(StateDict* sd, FlatRequest* out) { return WalkLoad(sd, "", out); }

}  // namespace dcp::sharding
