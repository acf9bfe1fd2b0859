// Copyright (c) dcp authors.

#include "engine/sharding/flatten.h"

#include <exception>
#include <set>
#include <utility>

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

std::string FactoryWhere(const std::string& path, const ShardedTensorFactory& f) {
  return "state dict entry '" + path + "' (factory '" + f.key + "')";
}

// A build's pieces are tensors, objects and dicts of them: a Value would
// silently become common state, and factories do not nest.
Status CheckPieces(const StateDict& pieces, const std::string& prefix) {
  DCP_RETURN_IF_ERROR(CheckUniqueKeys(pieces, prefix));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string path = Join(prefix, pieces.key(i));
    switch (pieces.kind(i)) {
      case StateDict::Kind::kTensor:
      case StateDict::Kind::kObject: break;
      case StateDict::Kind::kValue:
        return Status::InvalidArgument("state dict entry '" + path +
                                       "': a factory's build made a common-state value (pieces may be tensors, "
                                       "objects and dicts of them)");
      case StateDict::Kind::kFactory:
        return Status::InvalidArgument("state dict entry '" + path +
                                       "': a factory's build made a factory (factories do not nest)");
      case StateDict::Kind::kDict: DCP_RETURN_IF_ERROR(CheckPieces(pieces.dict(i), path)); break;
    }
  }
  return Status::OK();
}

// Builds `f` (the entry at `path`) into `pieces`. Builds are the caller's
// code: an exception becomes an error rather than leaving the other ranks
// waiting in the next collective.
Status Build(const std::string& path, const ShardedTensorFactory& f, FactoryPhase phase, FactoryArena* arena,
             StateDict* pieces) {
  if (!f.build) return Status::InvalidArgument(FactoryWhere(path, f) + " has no build function");
  Status s;
  try {
    s = f.build(f, phase, arena, pieces);
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("build threw: ") + e.what());
  } catch (...) {
    s = Status::Internal("build threw a non-standard exception");
  }
  DCP_RETURN_IF_ERROR(s.Annotate(FactoryWhere(path, f)));
  return CheckPieces(*pieces, path);
}

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
      case StateDict::Kind::kFactory: {
        auto built = std::make_unique<BuiltFactory>();
        built->path = path;
        built->factory = &sd.factory(i);
        DCP_RETURN_IF_ERROR(Build(path, sd.factory(i), FactoryPhase::kSave, &built->arena, &built->pieces));
        const StateDict& pieces = built->pieces;
        out->factories.push_back(std::move(built));
        Value none = Value::Map();  // pieces hold no values (CheckPieces)
        DCP_RETURN_IF_ERROR(WalkSave(pieces, path, out, &none));
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
      case StateDict::Kind::kFactory: {
        auto built = std::make_unique<BuiltFactory>();
        built->path = path;
        built->factory = &sd->factory(i);
        DCP_RETURN_IF_ERROR(Build(path, sd->factory(i), FactoryPhase::kLoad, &built->arena, &built->pieces));
        StateDict* pieces = &built->pieces;
        out->factories.push_back(std::move(built));
        DCP_RETURN_IF_ERROR(WalkLoad(pieces, path, out));
        break;
      }
    }
  }
  return Status::OK();
}

Status ExpandWalk(const StateDict& sd, const std::string& prefix, StateDict* out,
                  std::vector<std::unique_ptr<FactoryArena>>* arenas) {
  DCP_RETURN_IF_ERROR(CheckUniqueKeys(sd, prefix));
  for (size_t i = 0; i < sd.size(); ++i) {
    const std::string path = Join(prefix, sd.key(i));
    switch (sd.kind(i)) {
      case StateDict::Kind::kTensor: out->Add(sd.key(i), sd.tensor(i)); break;
      case StateDict::Kind::kObject: out->Add(sd.key(i), sd.object(i)); break;
      case StateDict::Kind::kValue: out->Add(sd.key(i), sd.value(i)); break;
      case StateDict::Kind::kDict: {
        StateDict child;
        DCP_RETURN_IF_ERROR(ExpandWalk(sd.dict(i), path, &child, arenas));
        out->Add(sd.key(i), std::move(child));
        break;
      }
      case StateDict::Kind::kFactory: {
        arenas->push_back(std::make_unique<FactoryArena>());
        StateDict pieces;
        DCP_RETURN_IF_ERROR(Build(path, sd.factory(i), FactoryPhase::kSave, arenas->back().get(), &pieces));
        out->Add(sd.key(i), std::move(pieces));
        break;
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status FlattenForSave(const StateDict& sd, FlatState* out) { return WalkSave(sd, "", out, &out->common); }

Status FlattenForLoad(StateDict* sd, FlatRequest* out) { return WalkLoad(sd, "", out); }

namespace {

// Paths (relative to the factory) of the pieces that are, or are not, still
// leaves of the request.
void SortPieces(const StateDict& pieces, const std::string& prefix, const std::set<const void*>& leaves,
                std::vector<std::string>* kept, std::vector<std::string>* dropped) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string path = Join(prefix, pieces.key(i));
    const void* item = nullptr;
    switch (pieces.kind(i)) {
      case StateDict::Kind::kTensor: item = &pieces.tensor(i); break;
      case StateDict::Kind::kObject: item = &pieces.object(i); break;
      case StateDict::Kind::kDict: SortPieces(pieces.dict(i), path, leaves, kept, dropped); continue;
      case StateDict::Kind::kValue:
      case StateDict::Kind::kFactory: continue;  // refused when built
    }
    (leaves.count(item) ? kept : dropped)->push_back(path);
  }
}

}  // namespace

Status ApplyFactoryMerges(const FlatRequest& request) {
  std::set<const void*> leaves;
  for (const auto& leaf : request.tensors) leaves.insert(leaf.item);
  for (const auto& leaf : request.objects) leaves.insert(leaf.item);
  for (const auto& built : request.factories) {
    const ShardedTensorFactory& f = *built->factory;
    if (!f.merge) continue;
    std::vector<std::string> kept, dropped;
    SortPieces(built->pieces, "", leaves, &kept, &dropped);
    if (!dropped.empty()) {
      if (kept.empty()) continue;  // the whole factory was unexpected: left untouched
      std::string names;
      for (const std::string& d : dropped) names += (names.empty() ? "'" : ", '") + d + "'";
      return Status::InvalidArgument(FactoryWhere(built->path, f) + ": pieces " + names +
                                     " were not loaded (unexpected keys), and the merge needs every piece");
    }
    Status s;
    try {
      s = f.merge(f, built->pieces);
    } catch (const std::exception& e) {
      s = Status::Internal(std::string("merge threw: ") + e.what());
    } catch (...) {
      s = Status::Internal("merge threw a non-standard exception");
    }
    DCP_RETURN_IF_ERROR(s.Annotate(FactoryWhere(built->path, f)));
  }
  return Status::OK();
}

Status ExpandFactoriesForSave(const StateDict& sd, StateDict* out,
                              std::vector<std::unique_ptr<FactoryArena>>* arenas) {
  return ExpandWalk(sd, "", out, arenas);
}

}  // namespace dcp::sharding
