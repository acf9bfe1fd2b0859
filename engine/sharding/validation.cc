// Copyright (c) dcp authors.

#include "engine/sharding/validation.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "engine/array/box.h"
#include "engine/array/box_index.h"
#include "engine/cuda/device.h"

namespace dcp::sharding {
namespace {

std::string Where(const std::string& path, const std::string& key, const Shape& offset) {
  return "state dict entry '" + path + "' (key '" + key + "' at offset " + ShapeToString(offset) + ")";
}

std::string RangeText(const FlatRange& r) {
  return "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")";
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
  if (t.flattened_range) {
    // The view holds a slice of the flattened local box, not the box.
    for (int64_t d : t.local_shape) {
      if (d < 0) return bad("local shape " + ShapeToString(t.local_shape) + " has a negative extent");
    }
    const FlatRange r = *t.flattened_range;
    const int64_t numel = NumElements(t.local_shape);
    if (r.begin < 0 || r.begin > r.end || r.end > numel) {
      return bad("flattened range " + RangeText(r) + " is not within [0, " + std::to_string(numel) +
                 "] of local shape " + ShapeToString(t.local_shape));
    }
    if (t.data.rank() != 1 || t.data.shape()[0] != r.size()) {
      return bad("view shape " + ShapeToString(t.data.shape()) + " must be 1-D with " + std::to_string(r.size()) +
                 " elements for flattened range " + RangeText(r));
    }
  } else if (t.data.shape() != t.local_shape) {
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

Status ValidateDestination(const std::string& what, const TensorView& view) {
  const int axis = view.SharedAxis();
  if (axis < 0) return Status::OK();
  const auto a = static_cast<size_t>(axis);
  return Status::InvalidArgument(what + ": the destination view has stride 0 on axis " + std::to_string(axis) +
                                 " of extent " + std::to_string(view.shape()[a]) +
                                 ", so its elements share memory (a broadcast or expand()ed view); a load would "
                                 "write several elements into one: load into a tensor of its own (clone() it)");
}

namespace {

// `unique`: a (key, offset) or object cell may appear once (saves); loads may
// ask for the same region into several destinations, but each destination's
// elements must be its own.
template <typename Tensors, typename Objects>
Status ValidateLeaves(const Tensors& tensors, const Objects& objects, bool unique) {
  // A shard is (key, offset), and for a flat shard its range (Megatron's _ShardId).
  using ShardId = std::tuple<std::string, Shape, bool, int64_t, int64_t>;
  std::map<ShardId, std::string> seen;
  for (const auto& leaf : tensors) {
    const ShardedTensor& t = *leaf.item;
    DCP_RETURN_IF_ERROR(ValidateTensorLeaf(leaf.path, t));
    if (!unique) {
      DCP_RETURN_IF_ERROR(ValidateDestination(Where(leaf.path, t.key, t.global_offset), t.data));
      continue;
    }
    // A shard without elements writes nothing and may share its offset (an
    // empty piece of an irregular split sits where the next one starts).
    if (t.flattened_range ? t.flattened_range->size() == 0 : t.global_box().num_elements() == 0) continue;
    const FlatRange r = t.flattened_range.value_or(FlatRange{});
    auto [it, fresh] = seen.emplace(ShardId{t.key, t.global_offset, t.flattened_range.has_value(), r.begin, r.end},
                                    leaf.path);
    if (!fresh) {
      return Status::InvalidArgument("key '" + t.key + "' at offset " + ShapeToString(t.global_offset) +
                                     (t.flattened_range ? " with flattened range " + RangeText(r) : "") +
                                     " appears twice on this rank (entries '" + it->second + "' and '" + leaf.path +
                                     "')");
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
    d.tensors.push_back({t.key, t.dtype, t.global_shape, t.global_box(), t.is_main_replica(), t.flattened_range});
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
  const manifest::ShardDecl* shard;
};

std::string Describe(const manifest::ShardDecl& s) {
  return std::string(DTypeName(s.dtype)) + " " + ShapeToString(s.global_shape);
}

// The main replicas' flattened ranges at one offset must tile the box's
// flattening [0, numel) exactly. `ranges` (range, rank) are sorted here.
Status CheckTiling(const std::string& key, const Shape& offset, int64_t numel,
                   std::vector<std::pair<FlatRange, int>>* ranges) {
  std::sort(ranges->begin(), ranges->end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.begin, a.first.end, a.second) < std::tie(b.first.begin, b.first.end, b.second);
  });
  const std::string where = "key '" + key + "' at offset " + ShapeToString(offset) + ": flattened ranges ";
  auto hole = [&](int64_t from, int64_t to) {
    return Status::InvalidArgument(where + "leave [" + std::to_string(from) + ", " + std::to_string(to) + ") of [0, " +
                                   std::to_string(numel) + ") uncovered");
  };
  int64_t covered = 0;           // [0, covered) is tiled so far
  const std::pair<FlatRange, int>* last = nullptr;  // the range that reaches `covered`
  for (const auto& entry : *ranges) {
    const FlatRange& r = entry.first;
    if (r.size() == 0) continue;  // holds nothing
    if (r.begin < covered) {
      return Status::InvalidArgument(where + RangeText(last->first) + " (rank " + std::to_string(last->second) +
                                     ") and " + RangeText(r) + " (rank " + std::to_string(entry.second) +
                                     ") overlap");
    }
    if (r.begin > covered) return hole(covered, r.begin);
    covered = r.end;
    last = &entry;
  }
  if (covered < numel) return hole(covered, numel);
  return Status::OK();
}

Status CheckTensorKey(const std::string& key, const std::vector<Ref>& refs, manifest::TensorEntry* entry) {
  const manifest::ShardDecl& first = *refs[0].shard;
  const bool flat = first.flattened_range.has_value();
  std::vector<Box> boxes;
  std::vector<int> owners;
  // Flat shards by offset: the box, who declared it first, the main replicas' ranges.
  struct FlatGroup {
    Shape shape;
    int rank = -1;
    std::vector<std::pair<FlatRange, int>> ranges;
  };
  std::map<Shape, FlatGroup> groups;
  for (const Ref& r : refs) {
    const manifest::ShardDecl& s = *r.shard;
    if (s.dtype != first.dtype || s.global_shape != first.global_shape) {
      return Status::InvalidArgument("key '" + key + "': rank " + std::to_string(refs[0].rank) + " declares " +
                                     Describe(first) + " but rank " + std::to_string(r.rank) + " declares " +
                                     Describe(s));
    }
    if (s.flattened_range.has_value() != flat) {
      return Status::InvalidArgument("key '" + key + "' mixes flattened and non-flattened shards (ranks " +
                                     std::to_string(refs[0].rank) + " and " + std::to_string(r.rank) + ")");
    }
    if (!array::IsWithin(s.box, s.global_shape)) {  // local validation already refused this
      return Status::InvalidArgument("key '" + key + "': rank " + std::to_string(r.rank) + " declares region " +
                                     s.box.ToString() + " outside " + ShapeToString(s.global_shape));
    }
    if (!flat) {
      if (s.main_replica) {
        boxes.push_back(s.box);
        owners.push_back(r.rank);
      }
      continue;
    }
    const FlatRange& range = *s.flattened_range;
    if (range.begin < 0 || range.begin > range.end || range.end > s.box.num_elements()) {  // as above
      return Status::InvalidArgument("key '" + key + "': rank " + std::to_string(r.rank) + " declares flattened range " +
                                     RangeText(range) + " outside region " + s.box.ToString());
    }
    auto [g, fresh] = groups.try_emplace(s.box.origin);
    if (fresh) {
      g->second.shape = s.box.shape;
      g->second.rank = r.rank;
    } else if (g->second.shape != s.box.shape) {
      return Status::InvalidArgument("key '" + key + "': flattened shards at offset " + ShapeToString(s.box.origin) +
                                     " declare regions of shape " + ShapeToString(g->second.shape) + " (rank " +
                                     std::to_string(g->second.rank) + ") and " + ShapeToString(s.box.shape) +
                                     " (rank " + std::to_string(r.rank) + ")");
    }
    if (s.main_replica) g->second.ranges.emplace_back(range, r.rank);
  }
  // Each flat box whose main replicas tile it counts once in the cover below;
  // a box with no main replica is a hole there.
  for (auto& [origin, g] : groups) {
    if (g.ranges.empty()) continue;
    DCP_RETURN_IF_ERROR(CheckTiling(key, origin, NumElements(g.shape), &g.ranges));
    boxes.push_back(Box{origin, g.shape});
    owners.push_back(g.ranges.front().second);
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
  if (p.kind == array::CoverProblem::Kind::kInexact) {
    const int64_t total = NumElements(first.global_shape);
    return Status::InvalidArgument("key '" + key + "': main replicas do not cover the tensor exactly (" +
                                   std::to_string(total - p.uncovered_elements) + " elements in shards for " +
                                   std::to_string(total) + ")");
  }
  entry->key = key;
  entry->dtype = first.dtype;
  entry->global_shape = first.global_shape;
  return Status::OK();
}

using RefsByKey = std::map<std::string_view, std::vector<Ref>>;

Result<std::vector<manifest::TensorEntry>> CheckTensors(const RefsByKey& by_key) {
  std::vector<manifest::TensorEntry> entries;
  entries.reserve(by_key.size());
  for (const auto& [key, refs] : by_key) {
    manifest::TensorEntry e;
    DCP_RETURN_IF_ERROR(CheckTensorKey(std::string(key), refs, &e));
    entries.push_back(std::move(e));
  }
  return entries;
}

Status CheckObjects(const std::vector<manifest::RankDecl>& decls) {
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
  return Status::OK();
}

}  // namespace

Result<std::vector<manifest::TensorEntry>> ValidateGlobal(const std::vector<manifest::RankDecl>& decls) {
  RefsByKey by_key;
  for (int r = 0; r < static_cast<int>(decls.size()); ++r) {
    for (const manifest::ShardDecl& t : decls[r].tensors) by_key[t.key].push_back({r, &t});
  }
  DCP_ASSIGN_OR_RETURN(std::vector<manifest::TensorEntry> entries, CheckTensors(by_key));
  DCP_RETURN_IF_ERROR(CheckObjects(decls));
  return entries;
}

Result<std::vector<manifest::TensorEntry>> ValidateGlobal(const manifest::GlobalDecls& global) {
  // In rank order, as the plain exchange: each rank's own shards, then the
  // set it represents (its holders hold the same shards: checked once).
  RefsByKey by_key;
  size_t next_set = 0;
  for (int r = 0; r < static_cast<int>(global.ranks.size()); ++r) {
    for (const manifest::ShardDecl& t : global.ranks[r].tensors) by_key[t.key].push_back({r, &t});
    while (next_set < global.replica_sets.size() && global.replica_sets[next_set].holders.front() == r) {
      for (const manifest::ShardDecl& t : global.replica_sets[next_set].shards) by_key[t.key].push_back({r, &t});
      ++next_set;
    }
  }
  DCP_ASSIGN_OR_RETURN(std::vector<manifest::TensorEntry> entries, CheckTensors(by_key));
  DCP_RETURN_IF_ERROR(CheckObjects(global.ranks));
  return entries;
}

}  // namespace dcp::sharding
