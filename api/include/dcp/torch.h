// Copyright (c) dcp authors.
//
// The LibTorch adapter (target dcp::torch, built when LibTorch is found):
// torch::Tensor state in and out of dcp.
//
// A ShardedTensor made from a torch tensor views the tensor's storage (any
// supported dtype, strided or not, CPU or CUDA): saving reads it in place,
// loading writes into it in place. Keep the tensor alive (and, for loads,
// unaliased) while dcp uses the view. CUDA tensors are copied on dcp's own
// streams, which do not wait for torch's: synchronize the tensor's stream
// (e.g. torch::cuda::synchronize()) before a put or get reads or writes it
// (the Python package does this itself). Helpers mirror Megatron-Core's
// make_tp_sharded_tensor_for_checkpoint / make_sharded_tensor_for_checkpoint,
// and build a state dict from a module's parameters and buffers under a
// caller-supplied sharding rule.
//
// This header declares torch types only by name; include <torch/torch.h> (or
// <ATen/ATen.h>) to call it. Errors: InvalidArgument for an undefined or
// sparse tensor, a lazily conjugated or negated view, a dtype dcp cannot
// store (complex32, quantized, ...) or one torch cannot hold (e.g. fp8 on an
// old LibTorch), naming the key.

#ifndef DCP_TORCH_H_
#define DCP_TORCH_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/tensor_view.h"

namespace at {
class Tensor;
}  // namespace at
namespace c10 {
struct Device;
}  // namespace c10
namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace dcp::torch_adapter {

// The view of a tensor's elements (data pointer, dtype, sizes, strides, device).
// A lazily conjugated or negated view (is_conj() / is_neg()) is refused: its
// memory does not hold its values.
Result<TensorView> ViewOf(const at::Tensor& tensor);

// A shard of global tensor `key` viewing `tensor`: ShardedTensorFromRankOffsets
// over the tensor's view.
Result<ShardedTensor> Sharded(std::string key, const at::Tensor& tensor,
                              std::vector<AxisFragmentation> fragmentation = {}, ReplicaId replica_id = {},
                              int prepend_axis_num = 0);

// This rank's place in tensor and data parallelism.
struct ParallelRanks {
  int tp_rank = 0;
  int tp_size = 1;
  int dp_rank = 0;
};

// Megatron's make_tp_sharded_tensor_for_checkpoint: `tensor` is this rank's
// 1/tp_size piece along `tp_axis` (of the local tensor); `prepend_offsets`
// place it on virtual leading axes (e.g. {0, layer, num_layers}). Replica id
// (0, 0, dp_rank) unless given.
Result<ShardedTensor> TpShardedTensor(std::string key, const at::Tensor& tensor, int tp_axis, const ParallelRanks& ranks,
                                      std::vector<AxisFragmentation> prepend_offsets = {},
                                      std::optional<ReplicaId> replica_id = std::nullopt);

// Megatron's make_sharded_tensor_for_checkpoint: replicated over tensor
// parallelism; replica id (0, tp_rank, dp_rank) unless given.
Result<ShardedTensor> ReplicatedShardedTensor(std::string key, const at::Tensor& tensor, const ParallelRanks& ranks,
                                              std::vector<AxisFragmentation> prepend_offsets = {},
                                              std::optional<ReplicaId> replica_id = std::nullopt);

// Decides how one parameter or buffer (by its dotted module name) is sharded;
// nullopt leaves it out of the checkpoint.
using ShardingRule =
    std::function<Result<std::optional<ShardedTensor>>(const std::string& name, const at::Tensor& tensor)>;

// Every parameter and buffer of `module` (recursively, by dotted name, e.g.
// "layers.0.weight") that `rule` keeps, as a flat state dict keyed by name.
// The shards view the module's tensors: a Get into this dict loads the
// module in place.
Result<StateDict> StateDictFromModule(const torch::nn::Module& module, const ShardingRule& rule);

// A new tensor of `request`'s dtype and local shape on `device`, and points
// request->data at it (for loads into fresh tensors).
Result<at::Tensor> AllocateFor(ShardedTensor* request, const c10::Device& device);

}  // namespace dcp::torch_adapter

#endif  // DCP_TORCH_H_
