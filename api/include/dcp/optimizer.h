// Copyright (c) dcp authors.
//
// Optimizer state in a checkpoint, as Megatron-Core's
// dist_checkpointing/optimizer.py lays it out: each per-parameter state
// (Adam's exp_avg and exp_avg_sq, fp32 master weights) is a sharded tensor
// keyed "optimizer.state.<state name>.<model key>" with the parameter's
// sharding (global shape, offset, prepended axes, replica id), so it reshards
// on load exactly like the parameter. Its dtype is the state view's own (fp32
// moments of a bf16 weight are fine).
//
// A parameter that is a factory (dcp/factory.h) gives a factory: the same
// build and merge with the state's key and view swapped in (a SwiGLU weight's
// moments are saved as w and v halves too).
//
// Distributed optimizers keep a contiguous slice of each parameter's flat
// state per data-parallel rank; FlatOptimizerStateTensor makes that slice's
// entry with a flattened range (see ShardedTensor::flattened_range).
//
// All functions are pure; the results view the caller's memory.

#ifndef DCP_OPTIMIZER_H_
#define DCP_OPTIMIZER_H_

#include <map>
#include <string>
#include <string_view>

#include "dcp/factory.h"
#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/tensor_view.h"

namespace dcp {

// The usual state names.
inline constexpr std::string_view kExpAvg = "exp_avg";
inline constexpr std::string_view kExpAvgSq = "exp_avg_sq";
inline constexpr std::string_view kFp32Param = "fp32_param";

// "optimizer.state.<state_name>.<model_key>".
std::string OptimizerStateKey(std::string_view state_name, std::string_view model_key);

// The entry for state `state_name` of parameter `param`: `param` with key
// OptimizerStateKey(state_name, param.key), data `state` and dtype
// state.dtype(); everything else (geometry, flattened range, replica id,
// allow_shape_mismatch) is the parameter's.
//
// Returns InvalidArgument naming the state and the parameter's key if
// state_name is empty, the view is malformed, or its shape differs from
// param.local_shape (for a flat parameter: if it is not 1-D with
// flattened_range->size() elements).
Result<ShardedTensor> OptimizerStateTensor(const ShardedTensor& param, std::string_view state_name,
                                           const TensorView& state);

// The same for a factory parameter: a copy of `param` with the state's key
// and view. Returns InvalidArgument naming the state and the key if
// state_name is empty, the view is malformed, or its shape differs from
// param.data's.
Result<ShardedTensorFactory> OptimizerStateFactory(const ShardedTensorFactory& param, std::string_view state_name,
                                                   const TensorView& state);

// Per parameter, by its path in the model state dict ("decoder.fc1.weight"):
// state name -> the state's local view.
using OptimizerStateViews = std::map<std::string, std::map<std::string, TensorView>>;

// The optimizer sub-state-dict for `model`: for every parameter named in
// `states`, a dict at the parameter's position in `model`'s nesting, holding
// one entry per state name (OptimizerStateTensor / OptimizerStateFactory).
// So a parameter at "decoder.fc1" gives entries "decoder.fc1.exp_avg", ...;
// add the result under a key of its own ("optimizer"). Parameters without
// states are left out.
//
// Returns InvalidArgument naming the path if a path of `states` names no
// entry of `model`, names a dict, object or value, or names two entries
// (keys with dots can make paths ambiguous), or with the errors above,
// prefixed with the path.
Result<StateDict> OptimizerStateDict(const StateDict& model, const OptimizerStateViews& states);

// The distributed optimizer's entry for one data-parallel slice of a
// parameter's state: `param`'s geometry (it must not be flat itself) with
// flattened_range `range` of the row-major flattening of param's local
// shape, key OptimizerStateKey(state_name, param.key) and data `flat_state`
// (1-D, range.size() elements).
//
// The replica id is param's with its last element, the data-parallel one in
// Megatron's (PP, TP, DP) convention, set to 0: data-parallel ranks hold
// disjoint ranges of the same parameter, so each is the main replica of its
// own range, while replication along the other components (a TP-replicated
// layernorm) still writes one copy. An empty replica id stays empty.
//
// Returns InvalidArgument naming the state and key if state_name is empty,
// `param` already has a flattened range, the range is not within
// [0, prod(param.local_shape)] or begin > end, or the view is malformed, not
// 1-D, or not range.size() elements long.
Result<ShardedTensor> FlatOptimizerStateTensor(const ShardedTensor& param, std::string_view state_name,
                                               FlatRange range, const TensorView& flat_state);

}  // namespace dcp

#endif  // DCP_OPTIMIZER_H_
