// Copyright (c) dcp authors.

#include "dcp/factory.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "dcp/state_dict.h"

namespace dcp {

// One allocation; 64-byte aligned (a cache line, and enough for any dtype and
// for vectorised copies).
struct FactoryArena::Block {
  static constexpr std::align_val_t kAlign{64};
  explicit Block(size_t n) : bytes(n), data(n > 0 ? ::operator new(n, kAlign) : nullptr) {
    if (n > 0) std::memset(data, 0, n);
  }
  ~Block() {
    if (data != nullptr) ::operator delete(data, kAlign);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  size_t bytes;
  void* data;
};

FactoryArena::FactoryArena() = default;
FactoryArena::~FactoryArena() = default;

TensorView FactoryArena::Allocate(DType dtype, const Shape& shape) {
  const size_t n = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  blocks_.push_back(std::make_unique<Block>(n));
  bytes_ += n;
  return TensorView(blocks_.back()->data, dtype, shape);
}

namespace {

struct SwiGluLayout {
  int64_t tp_rank;
  int64_t tp_size;
  int prepend_axis_num;
  std::vector<AxisFragmentation> other_axes;
};

std::string SwiGluError(const std::string& key, const std::string& what) {
  return "SwiGLU factory '" + key + "': " + what;
}

// Checks what does not depend on the other axes: a well-formed view of at
// least one axis whose first extent is even.
Status CheckSwiGluView(const std::string& key, const TensorView& data) {
  if (Status s = data.Validate(); !s.ok()) return Status::InvalidArgument(SwiGluError(key, s.message()));
  if (data.rank() < 1) return Status::InvalidArgument(SwiGluError(key, "the local tensor is 0-d"));
  if (data.shape()[0] % 2 != 0) {
    return Status::InvalidArgument(SwiGluError(key, "output extent " + std::to_string(data.shape()[0]) +
                                                        " of local shape " + ShapeToString(data.shape()) +
                                                        " is odd (expected the w rows, then as many v rows)"));
  }
  return Status::OK();
}

// The two halves of `data` along its first axis: w, then v.
std::pair<TensorView, TensorView> Halves(const TensorView& data) {
  Box half{Shape(data.shape().size(), 0), data.shape()};
  half.shape[0] /= 2;
  const TensorView w = data.Slice(half);
  half.origin[0] = half.shape[0];
  return {w, data.Slice(half)};
}

Status BuildSwiGlu(const SwiGluLayout& layout, const ShardedTensorFactory& f, StateDict* pieces) {
  DCP_RETURN_IF_ERROR(CheckSwiGluView(f.key, f.data));
  const auto [w, v] = Halves(f.data);
  const int output_axis = layout.prepend_axis_num;
  auto piece = [&](const TensorView& half, int64_t fragment) -> Result<ShardedTensor> {
    std::vector<AxisFragmentation> axes = layout.other_axes;
    axes.push_back({output_axis, fragment, 2 * layout.tp_size});
    return ShardedTensorFromRankOffsets(f.key, half, std::move(axes), f.replica_id, layout.prepend_axis_num);
  };
  DCP_ASSIGN_OR_RETURN(ShardedTensor wt, piece(w, layout.tp_rank));
  DCP_ASSIGN_OR_RETURN(ShardedTensor vt, piece(v, layout.tp_rank + layout.tp_size));
  pieces->Add("w", std::move(wt)).Add("v", std::move(vt));
  return Status::OK();
}

bool SameView(const TensorView& a, const TensorView& b) {
  return a.data() == b.data() && a.dtype() == b.dtype() && a.shape() == b.shape() && a.strides() == b.strides() &&
         a.device() == b.device();
}

// "'w' tensor 'fc1' [4, 8]" for each entry of `loaded`.
std::string DescribePieces(const StateDict& loaded, const std::pair<TensorView, TensorView>& halves) {
  if (loaded.empty()) return "no pieces";
  std::string out;
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (i > 0) out += ", ";
    out += "'" + loaded.key(i) + "' ";
    switch (loaded.kind(i)) {
      case StateDict::Kind::kTensor: {
        const ShardedTensor& t = loaded.tensor(i);
        out += "tensor '" + t.key + "' " + ShapeToString(t.data.shape());
        if (!SameView(t.data, halves.first) && !SameView(t.data, halves.second)) out += " (not a view of the destination)";
        break;
      }
      case StateDict::Kind::kObject: out += "object '" + loaded.object(i).key + "'"; break;
      case StateDict::Kind::kValue: out += "value"; break;
      case StateDict::Kind::kDict: out += "dict of " + std::to_string(loaded.dict(i).size()) + " entries"; break;
      case StateDict::Kind::kFactory: out += "factory '" + loaded.factory(i).key + "'"; break;
    }
  }
  return out;
}

Status MergeSwiGlu(const ShardedTensorFactory& f, const StateDict& loaded) {
  DCP_RETURN_IF_ERROR(CheckSwiGluView(f.key, f.data));
  const auto halves = Halves(f.data);
  auto is_piece = [&](const std::string& name, const TensorView& half) {
    const size_t i = loaded.Find(name);
    if (i == StateDict::npos || loaded.kind(i) != StateDict::Kind::kTensor) return false;
    const ShardedTensor& t = loaded.tensor(i);
    return t.key == f.key && t.local_shape == half.shape() && SameView(t.data, half);
  };
  if (loaded.size() == 2 && is_piece("w", halves.first) && is_piece("v", halves.second)) return Status::OK();
  return Status::InvalidArgument(SwiGluError(
      f.key, "merge expected pieces 'w' and 'v', tensors '" + f.key + "' " + ShapeToString(halves.first.shape()) +
                 " viewing the two halves of the destination " + ShapeToString(f.data.shape()) + ", got " +
                 DescribePieces(loaded, halves)));
}

}  // namespace

Result<ShardedTensorFactory> SwiGluFactory(std::string key, TensorView data, int64_t tp_rank, int64_t tp_size,
                                           ReplicaId replica_id, int prepend_axis_num,
                                           std::vector<AxisFragmentation> other_axes) {
  DCP_RETURN_IF_ERROR(CheckSwiGluView(key, data));
  if (tp_size < 1) return Status::InvalidArgument(SwiGluError(key, "tp_size " + std::to_string(tp_size) + " < 1"));
  if (tp_rank < 0 || tp_rank >= tp_size) {
    return Status::InvalidArgument(SwiGluError(
        key, "tp_rank " + std::to_string(tp_rank) + " is outside [0, " + std::to_string(tp_size) + ")"));
  }
  if (prepend_axis_num < 0) return Status::InvalidArgument(SwiGluError(key, "prepend_axis_num is negative"));
  for (const AxisFragmentation& a : other_axes) {
    if (a.axis == prepend_axis_num) {
      return Status::InvalidArgument(SwiGluError(
          key, "other_axes names axis " + std::to_string(a.axis) + ", the output axis the factory splits"));
    }
  }
  auto layout = std::make_shared<const SwiGluLayout>(SwiGluLayout{tp_rank, tp_size, prepend_axis_num, other_axes});

  ShardedTensorFactory f;
  f.key = std::move(key);
  f.data = std::move(data);
  f.replica_id = std::move(replica_id);
  f.build = [layout](const ShardedTensorFactory& self, FactoryPhase, FactoryArena*, StateDict* pieces) {
    return BuildSwiGlu(*layout, self, pieces);
  };
  f.merge = MergeSwiGlu;
  // Refuse bad axes now rather than at the first put.
  StateDict probe;
  DCP_RETURN_IF_ERROR(BuildSwiGlu(*layout, f, &probe));
  return f;
}

}  // namespace dcp
