// Copyright (c) dcp authors.

#include "engine/sharding/validation.h"

#include <map>
#include <set>
#include <utility>

#include "engine/array/box.h"
#include "engine/array/box_index.h"
#include "engine/cuda/device.h"

namespace dcp::sharding {
namespace {

std::string Where(const std::string& path, const std::string& key, const Shape& offset) {
  return "state dict entry '" + path + "' (key '" + key + "' at offset " + ShapeToString(offset) + ")";
}

}  // namespace

Status ValidateTensorLeaf(const std::string& path, const ShardedTensor& t) {
  const std::string where = Where(path, t.key, t.global_offset);
  auto bad = [&](const std::string& what) { return Status::InvalidArgument(where + ": " + what); };
  if (Status s = manifest::CheckKeySyntax(t.key); !s.ok()) return bad(s.message());
  if (Status s = t.data.Validate(); !s.ok()) return bad(s.message());
  if (Status s = cuda::CheckViewMemory(t.data, where); !s.ok()) return s;
  if (DTypeSize(t.dtype) == 0) return bad("invalid declared dtype");
  if (t.data.dtype() != t.dtype) {
    return bad("view dtype " + std::string(DTypeName(t.data.dtype())) + " differs from declared dtype " +
               std::string(DTypeName(t.dtype)));
  }
  if (t.flattened_range) return bad("flattened ranges are not supported yet");
  if (t.data.shape() != t.local_shape) {
    return bad("view shape " + ShapeToString(t.data.shape()) + " differs from declared local shape " +
               ShapeToString(t.local_shape));
  }
  if (t.prepend_axis_num < 0) return bad("prepend_axis_num is negative");
  const size_t rank = t.local_shape.size() + static_cast<size_t>(t.prepend_axis_num);
  if (t.global_shape.size() != rank || t.global_offset.size() != rank) {
    return bad("global shape " + ShapeToString(t.global_shape) + " and global offset " +
               ShapeToString(t.global_offset) + " must have " + std::to_string(rank) + " axes (local shape " +
               ShapeToString(t.local_shape) + " plus " + std::to_string(t.prepend_axis_num) + " prepended)");
  }
  for (int64_t d : t.global_shape) {
    if (d < 0) return bad("global shape " + ShapeToString(t.global_shape) + " has a negative extent");
  }
  const Box box = t.global_box();
  if (!array::IsWithin(box, t.global_shape)) {
    return bad("region " + box.ToString() + " at offset " + ShapeToString(t.global_offset) +
               " lies outside global shape " + ShapeToString(t.global_shape));
  }
  return Status::OK();
}

Status ValidateObjectLeaf(const std::string& path, const ShardedObject& o) {
  const std::string where = "state dict entry '" + path + "' (object '" + o.key + "' at offset " +
                            ShapeToString(o.global_offset) + ")";
  auto bad = [&](const std::string& what) { return Status::InvalidArgument(where + ": " + what); };
  if (Status s = manifest::CheckKeySyntax(o.key); !s.ok()) return bad(s.message());
  if (o.global_shape.size() != o.global_offset.size()) {
    return bad("global shape " + ShapeToString(o.global_shape) + " and global offset " +
               ShapeToString(o.global_offset) + " have different ranks");
  }
  for (size_t d = 0; d < o.global_shape.size(); ++d) {
    if (o.global_offset[d] < 0 || o.global_offset[d] >= o.global_shape[d]) {
      return bad("offset " + ShapeToString(o.global_offset) + " lies outside grid " + ShapeToString(o.global_shape));
    }
  }
  if (o.data.size() > kMaxObjectBytes) {
    return bad("holds " + std::to_string(o.data.size()) + " bytes, over the limit of " +
               std::to_string(kMaxObjectBytes));
  }
  return Status::OK();
}

namespace {

// `unique`: a (key, offset) or object cell may appear once (saves); loads may
// ask for the same region into several destinations.
template <typename Tensors, typename Objects>
Status ValidateLeaves(const Tensors& tensors, const Objects& objects, bool unique) {
  std::map<std::pair<std::string, Shape>, std::string> seen;
  for (const auto& leaf : tensors) {
    DCP_RETURN_IF_ERROR(ValidateTensorLeaf(leaf.path, *leaf.item));
    if (!unique) continue;
    auto [it, fresh] = seen.emplace(std::make_pair(leaf.item->key, leaf.item->global_offset), leaf.path);
    if (!fresh) {
      return Status::InvalidArgument("key '" + leaf.item->key + "' at offset " +
                                     ShapeToString(leaf.item->global_offset) + " appears twice on this rank (entries '" +
                                     it->second + "' and '" + leaf.path + "')");
    }
  }
  std::map<std::string, std::string> cells;
  for (const auto& leaf : objects) {
    DCP_RETURN_IF_ERROR(ValidateObjectLeaf(leaf.path, *leaf.item));
    if (!unique) continue;
    auto [it, fresh] = cells.emplace(leaf.item->unique_key(), leaf.path);
    if (!fresh) {
      return Status::InvalidArgument("object '" + it->first + "' appears twice on this rank (entries '" + it->second +
                                     "' and '" + leaf.path + "')");
    }
  }
  return Status::OK();
}

}  // namespace

Status ValidateLocalSave(const FlatState& state) { return ValidateLeaves(state.tensors, state.objects, true); }
Status ValidateLocalLoad(const FlatRequest& request) {
  return ValidateLeaves(request.tensors, request.objects, false);
}

manifest::RankDecl DeclareState(const FlatState& state, const codec::Hash128& common_state_hash) {
  manifest::RankDecl d;
  d.common_state_hash = common_state_hash;
  for (const auto& leaf : state.tensors) {
    const ShardedTensor& t = *leaf.item;
    d.tensors.push_back({t.key, t.dtype, t.global_shape, t.global_box(), t.is_main_replica()});
  }
  for (const auto& leaf : state.objects) {
    const ShardedObject& o = *leaf.item;
    d.objects.push_back({o.key, o.global_shape, o.global_offset, o.is_main_replica()});
  }
  return d;
}

namespace {

struct Ref {
  int rank;
  size_t index;
};

std::string Describe(const manifest::ShardDecl& s) {
  return std::string(DTypeName(s.dtype)) + " " + ShapeToString(s.global_shape);
}

Status CheckTensorKey(const std::string& key, const std::vector<Ref>& refs,
                      const std::vector<manifest::RankDecl>& decls, manifest::TensorEntry* entry) {
  const manifest::ShardDecl& first = decls[refs[0].rank].tensors[refs[0].index];
  std::vector<Box> boxes;
  std::vector<int> owners;
  for (const Ref& r : refs) {
    const manifest::ShardDecl& s = decls[r.rank].tensors[r.index];
    if (s.dtype != first.dtype || s.global_shape != first.global_shape) {
      return Status::InvalidArgument("key '" + key + "': rank " + std::to_string(refs[0].rank) + " declares " +
                                     Describe(first) + " but rank " + std::to_string(r.rank) + " declares " +
                                     Describe(s));
    }
    if (!array::IsWithin(s.box, s.global_shape)) {  // local validation already refused this
      return Status::InvalidArgument("key '" + key + "': rank " + std::to_string(r.rank) + " declares region " +
                                     s.box.ToString() + " outside " + ShapeToString(s.global_shape));
    }
    if (s.main_replica) {
      boxes.push_back(s.box);
      owners.push_back(r.rank);
    }
  }
  const array::CoverProblem p = array::CheckExactCover(first.global_shape, boxes);
  if (p.kind == array::CoverProblem::Kind::kOverlap) {
    const int a = owners[p.first], b = owners[p.second];
    return Status::InvalidArgument("key '" + key + "': main replicas " +
                                   (a == b ? "on rank " + std::to_string(a)
                                           : "on ranks " + std::to_string(a) + " and " + std::to_string(b)) +
                                   " overlap at " + p.region.ToString() + " (offsets " +
                                   ShapeToString(boxes[p.first].origin) + " and " +
                                   ShapeToString(boxes[p.second].origin) + ")");
  }
  if (p.kind == array::CoverProblem::Kind::kHole) {
    std::string msg = "key '" + key + "': main replicas leave " + std::to_string(p.uncovered_elements) + " of " +
                      std::to_string(NumElements(first.global_shape)) + " elements uncovered (a hole in coverage";
    if (!p.region.shape.empty() || first.global_shape.empty()) msg += " at " + p.region.ToString();
    msg += ")";
    return Status::InvalidArgument(std::move(msg));
  }
  entry->key = key;
  entry->dtype = first.dtype;
  entry->global_shape = first.global_shape;
  return Status::OK();
}

}  // namespace

Result<std::vector<manifest::TensorEntry>> ValidateGlobal(const std::vector<manifest::RankDecl>& decls) {
  std::map<std::string, std::vector<Ref>> by_key;
  for (int r = 0; r < static_cast<int>(decls.size()); ++r) {
    for (size_t i = 0; i < decls[r].tensors.size(); ++i) by_key[decls[r].tensors[i].key].push_back({r, i});
  }
  std::vector<manifest::TensorEntry> entries;
  entries.reserve(by_key.size());
  for (const auto& [key, refs] : by_key) {
    manifest::TensorEntry e;
    DCP_RETURN_IF_ERROR(CheckTensorKey(key, refs, decls, &e));
    entries.push_back(std::move(e));
  }

  // Objects: per key one grid; per cell exactly one main replica; no cell missing.
  struct Cells {
    Shape grid;
    int grid_rank = -1;
    std::map<Shape, int> main_owner;  // offset -> rank
    std::set<Shape> any;
  };
  std::map<std::string, Cells> objects;
  for (int r = 0; r < static_cast<int>(decls.size()); ++r) {
    for (const manifest::ObjectDecl& o : decls[r].objects) {
      Cells& c = objects[o.key];
      if (c.grid_rank < 0) {
        c.grid = o.global_shape;
        c.grid_rank = r;
      } else if (c.grid != o.global_shape) {
        return Status::InvalidArgument("object '" + o.key + "': rank " + std::to_string(c.grid_rank) +
                                       " declares grid " + ShapeToString(c.grid) + " but rank " + std::to_string(r) +
                                       " declares " + ShapeToString(o.global_shape));
      }
      c.any.insert(o.global_offset);
      if (!o.main_replica) continue;
      auto [it, fresh] = c.main_owner.emplace(o.global_offset, r);
      if (!fresh) {
        return Status::InvalidArgument("object '" + o.key + "' cell " + ShapeToString(o.global_offset) +
                                       " has main replicas on ranks " + std::to_string(it->second) + " and " +
                                       std::to_string(r));
      }
    }
  }
  for (const auto& [key, c] : objects) {
    for (const Shape& off : c.any) {
      if (!c.main_owner.count(off)) {
        return Status::InvalidArgument("object '" + key + "' cell " + ShapeToString(off) + " has no main replica");
      }
    }
    const int64_t cells = NumElements(c.grid);
    if (static_cast<int64_t>(c.main_owner.size()) != cells) {
      return Status::InvalidArgument("object '" + key + "': " + std::to_string(cells - static_cast<int64_t>(c.main_owner.size())) +
                                     " of " + std::to_string(cells) + " cells of grid " + ShapeToString(c.grid) +
                                     " are missing");
    }
  }
  return entries;
}

}  // namespace dcp::sharding
