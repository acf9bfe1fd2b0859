// Copyright (c) dcp authors.
//
// The only translation unit of dcp that includes LibTorch headers.

#include "dcp/torch.h"

#include <torch/torch.h>

#include <optional>

namespace dcp::torch_adapter {
namespace {

std::optional<DType> FromTorch(at::ScalarType t) {
  switch (t) {
    case at::kBool: return DType::kBool;
    case at::kByte: return DType::kUInt8;
    case at::kChar: return DType::kInt8;
    case at::kShort: return DType::kInt16;
    case at::kInt: return DType::kInt32;
    case at::kLong: return DType::kInt64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kComplexFloat: return DType::kComplex64;
    case at::kComplexDouble: return DType::kComplex128;
    default: return std::nullopt;
  }
}

std::optional<at::ScalarType> ToTorch(DType d) {
  switch (d) {
    case DType::kBool: return at::kBool;
    case DType::kUInt8: return at::kByte;
    case DType::kInt8: return at::kChar;
    case DType::kInt16: return at::kShort;
    case DType::kInt32: return at::kInt;
    case DType::kInt64: return at::kLong;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat64: return at::kDouble;
    case DType::kComplex64: return at::kComplexFloat;
    case DType::kComplex128: return at::kComplexDouble;
    default: return std::nullopt;  // fp8 and unsigned >8-bit: not in this LibTorch
  }
}

Result<ShardedTensor> WithPrepended(std::string key, const at::Tensor& tensor,
                                    std::vector<AxisFragmentation> fragmentation, int extra_axis,
                                    const ParallelRanks& ranks, ReplicaId replica) {
  const int prepend = static_cast<int>(fragmentation.size());
  if (extra_axis >= 0) {
    if (ranks.tp_size < 1 || ranks.tp_rank < 0 || ranks.tp_rank >= ranks.tp_size) {
      return Status::InvalidArgument("key '" + key + "': tp_rank " + std::to_string(ranks.tp_rank) +
                                     " is outside tp_size " + std::to_string(ranks.tp_size));
    }
    fragmentation.push_back({extra_axis + prepend, ranks.tp_rank, ranks.tp_size});
  }
  return Sharded(std::move(key), tensor, std::move(fragmentation), std::move(replica), prepend);
}

}  // namespace

Result<TensorView> ViewOf(const at::Tensor& t) {
  if (!t.defined()) return Status::InvalidArgument("tensor is undefined");
  if (t.layout() != at::kStrided) {
    return Status::InvalidArgument("tensor has layout " + c10::str(t.layout()) +
                                   "; only strided (dense) tensors can be checkpointed");
  }
  const auto dtype = FromTorch(t.scalar_type());
  if (!dtype) {
    return Status::InvalidArgument(std::string("torch dtype ") + c10::toString(t.scalar_type()) +
                                   " cannot be stored by dcp");
  }
  // A conjugate or negative view's memory holds the values before the lazy
  // conjugation or negation: its bytes are not the tensor's values.
  if (t.is_conj() || t.is_neg()) {
    return Status::InvalidArgument(std::string("tensor is a lazily ") + (t.is_conj() ? "conjugated" : "negated") +
                                   " view; resolve it first (resolve_conj() / resolve_neg())");
  }
  Device device;
  if (t.is_cuda()) device = Device::Cuda(t.device().index());
  else if (!t.is_cpu()) return Status::InvalidArgument("tensor is on " + t.device().str() + "; dcp handles CPU and CUDA");
  Shape shape(t.sizes().begin(), t.sizes().end());
  Shape strides(t.strides().begin(), t.strides().end());
  for (int64_t s : strides) {
    if (s < 0) return Status::InvalidArgument("tensor has a negative stride");
  }
  return TensorView(t.data_ptr(), *dtype, std::move(shape), std::move(strides), device);
}

Result<ShardedTensor> Sharded(std::string key, const at::Tensor& tensor, std::vector<AxisFragmentation> fragmentation,
                              ReplicaId replica_id, int prepend_axis_num) {
  auto view = ViewOf(tensor);
  if (!view.ok()) return view.status().Annotate("key '" + key + "'");
  return ShardedTensorFromRankOffsets(std::move(key), *view, std::move(fragmentation), std::move(replica_id),
                                      prepend_axis_num);
}

Result<ShardedTensor> TpShardedTensor(std::string key, const at::Tensor& tensor, int tp_axis,
                                      const ParallelRanks& ranks, std::vector<AxisFragmentation> prepend_offsets,
                                      std::optional<ReplicaId> replica_id) {
  ReplicaId replica = replica_id ? *replica_id : ReplicaId{0, 0, ranks.dp_rank};
  return WithPrepended(std::move(key), tensor, std::move(prepend_offsets), tp_axis, ranks, std::move(replica));
}

Result<ShardedTensor> ReplicatedShardedTensor(std::string key, const at::Tensor& tensor, const ParallelRanks& ranks,
                                              std::vector<AxisFragmentation> prepend_offsets,
                                              std::optional<ReplicaId> replica_id) {
  ReplicaId replica = replica_id ? *replica_id : ReplicaId{0, ranks.tp_rank, ranks.dp_rank};
  return WithPrepended(std::move(key), tensor, std::move(prepend_offsets), -1, ranks, std::move(replica));
}

Result<StateDict> StateDictFromModule(const torch::nn::Module& module, const ShardingRule& rule) {
  StateDict sd;
  auto add = [&](const std::string& name, const at::Tensor& t) -> Status {
    DCP_ASSIGN_OR_RETURN(std::optional<ShardedTensor> shard, rule(name, t));
    if (shard) sd.Add(name, std::move(*shard));
    return Status::OK();
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) DCP_RETURN_IF_ERROR(add(p.key(), p.value()));
  for (const auto& b : module.named_buffers(/*recurse=*/true)) DCP_RETURN_IF_ERROR(add(b.key(), b.value()));
  return sd;
}

Result<at::Tensor> AllocateFor(ShardedTensor* request, const c10::Device& device) {
  const auto type = ToTorch(request->dtype);
  if (!type) {
    return Status::InvalidArgument("key '" + request->key + "': dtype " + std::string(DTypeName(request->dtype)) +
                                   " has no equivalent in this LibTorch");
  }
  at::Tensor t = at::empty(at::IntArrayRef(request->local_shape), at::TensorOptions().dtype(*type).device(device));
  DCP_ASSIGN_OR_RETURN(request->data, ViewOf(t));
  return t;
}

}  // namespace dcp::torch_adapter
