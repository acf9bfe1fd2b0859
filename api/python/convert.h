// Copyright (c) dcp authors.
//
// Conversions between the Python side of the bindings and dcp's C++ types.
//
// The pure-Python package (api/python/dcp) hands the extension a state dict
// as a nested dict of tagged leaves, so that nothing here needs to know torch
// or NumPy (the extension never links LibTorch; see DESIGN.md):
//
//   ("T", key, desc, dtype, local_shape, global_shape, global_offset,
//         prepend_axis_num, replica_id, flat, allow_shape_mismatch)
//       a ShardedTensor; desc = (data_ptr, dtype, shape, strides in elements,
//       device type "cpu" | "cuda", device index, owner: a copy the view
//       reads, kept alive by the tuple, or None), or None for no data; flat
//       = (begin, end) or None
//   ("O", key, data: bytes, global_shape, global_offset, replica_id)
//       a ShardedObject
//   ("V", value)
//       common state: None, bool, int, float, str, bytes, list/tuple, dict
//       with str keys, TensorValue; anything else is a TypeError naming its
//       path (nothing is pickled)
//
// Keys of nested dicts must be str. Every function here needs the GIL.

#ifndef DCP_API_PYTHON_CONVERT_H_
#define DCP_API_PYTHON_CONVERT_H_

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/tensor_view.h"
#include "dcp/value.h"

namespace dcp::python {

namespace py = pybind11;

// A small tensor held in the common state: dtype name, shape, row-major bytes.
struct TensorValue {
  std::string dtype;
  std::vector<int64_t> shape;
  py::bytes data;
};

// A dcp error carried to Python; the module's translator raises the
// exception class of its code (dcp.errors) with the message whole.
struct StatusError {
  Status status;
};

// Throws StatusError for a non-OK status.
void ThrowIfError(const Status& s);
template <typename T>
T ValueOrThrow(Result<T> r) {
  ThrowIfError(r.status());
  return std::move(r).value();
}

// The state dict a Put or Get takes. Throws py::type_error naming the path of
// a leaf that is not a tagged leaf, and of a common-state value that is not
// plain data; StatusError for a malformed tensor descriptor.
StateDict ToStateDict(const py::dict& tree);

// Python value -> dcp::Value (`path` names it in a TypeError).
Value ToValue(const py::handle& obj, const std::string& path);
// dcp::Value -> Python (maps are dicts, lists are lists, tensors TensorValue).
py::object FromValue(const Value& v);

// A tensor descriptor tuple -> TensorView (InvalidArgument naming `what` for
// an unknown dtype or device, negative strides).
TensorView ToView(const py::handle& desc, const std::string& what);

// Every object leaf of `sd` (after a Get): its path (a tuple of keys) ->
// bytes.
py::dict ObjectsOf(const StateDict& sd);

}  // namespace dcp::python

#endif  // DCP_API_PYTHON_CONVERT_H_
