// Copyright (c) dcp authors.

#include "api/python/convert.h"

#include <pybind11/stl.h>

#include <cmath>
#include <limits>

#include "dcp/sharded.h"

namespace dcp::python {
namespace {

Shape ToShape(const py::handle& seq, const std::string& what) {
  Shape s;
  for (const py::handle& v : seq) s.push_back(py::cast<int64_t>(v));
  (void)what;
  return s;
}

std::string Join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

void AddLeaf(StateDict* sd, const std::string& key, const py::handle& leaf, const std::string& path) {
  if (!py::isinstance<py::tuple>(leaf) || py::len(leaf) < 2 || !py::isinstance<py::str>(leaf[py::int_(0)])) {
    throw py::type_error("state dict entry '" + path + "' is not a dcp leaf");
  }
  const py::tuple t = py::reinterpret_borrow<py::tuple>(leaf);
  const std::string tag = py::cast<std::string>(t[0]);
  if (tag == "V") {
    sd->Add(key, ToValue(t[1], path));
    return;
  }
  if (tag == "O" && t.size() == 6) {
    ShardedObject o;
    o.key = py::cast<std::string>(t[1]);
    o.data = py::cast<std::string>(t[2]);
    o.global_shape = ToShape(t[3], path);
    o.global_offset = ToShape(t[4], path);
    o.replica_id = ToShape(t[5], path);
    sd->Add(key, std::move(o));
    return;
  }
  if (tag == "T" && t.size() == 11) {
    ShardedTensor s;
    s.key = py::cast<std::string>(t[1]);
    const std::string what = "tensor '" + s.key + "' (entry '" + path + "')";
    auto dtype = DTypeFromName(py::cast<std::string>(t[3]));
    if (!dtype) ThrowIfError(Status::InvalidArgument(what + ": unknown dtype " + py::cast<std::string>(t[3])));
    s.dtype = *dtype;
    if (!t[2].is_none()) s.data = ToView(t[2], what);
    else s.data = TensorView(static_cast<void*>(nullptr), s.dtype, Shape(0));
    s.local_shape = ToShape(t[4], path);
    s.global_shape = ToShape(t[5], path);
    s.global_offset = ToShape(t[6], path);
    s.prepend_axis_num = py::cast<int>(t[7]);
    s.replica_id = ToShape(t[8], path);
    if (!t[9].is_none()) {
      const py::tuple r = py::reinterpret_borrow<py::tuple>(t[9]);
      s.flattened_range = FlatRange{py::cast<int64_t>(r[0]), py::cast<int64_t>(r[1])};
    }
    s.allow_shape_mismatch = py::cast<bool>(t[10]);
    sd->Add(key, std::move(s));
    return;
  }
  throw py::type_error("state dict entry '" + path + "' is a malformed dcp leaf");
}

void Fill(StateDict* sd, const py::dict& tree, const std::string& path) {
  for (const auto& [k, v] : tree) {
    if (!py::isinstance<py::str>(k)) throw py::type_error("state dict key under '" + path + "' is not a str");
    const std::string key = py::cast<std::string>(k);
    const std::string p = Join(path, key);
    if (py::isinstance<py::dict>(v)) {
      Fill(&sd->Child(key), py::reinterpret_borrow<py::dict>(v), p);
    } else {
      AddLeaf(sd, key, v, p);
    }
  }
}

void CollectObjects(const StateDict& sd, std::vector<std::string>* path, py::dict* out) {
  for (size_t i = 0; i < sd.size(); ++i) {
    path->push_back(sd.key(i));
    if (sd.kind(i) == StateDict::Kind::kDict) {
      CollectObjects(sd.dict(i), path, out);
    } else if (sd.kind(i) == StateDict::Kind::kObject) {
      py::tuple key(path->size());
      for (size_t j = 0; j < path->size(); ++j) key[j] = py::str((*path)[j]);
      (*out)[key] = py::bytes(sd.object(i).data);
    }
    path->pop_back();
  }
}

}  // namespace

void ThrowIfError(const Status& s) {
  if (!s.ok()) throw StatusError{s};
}

Value ToValue(const py::handle& obj, const std::string& path) {
  if (obj.is_none()) return Value::Null();
  if (py::isinstance<py::bool_>(obj)) return Value(py::cast<bool>(obj));
  if (py::isinstance<py::int_>(obj)) {
    try {
      return Value(py::cast<int64_t>(obj));
    } catch (const py::cast_error&) {
      throw py::type_error("common state '" + path + "' is an int outside the 64-bit range");
    }
  }
  if (py::isinstance<py::float_>(obj)) return Value(py::cast<double>(obj));
  if (py::isinstance<py::str>(obj)) return Value(py::cast<std::string>(obj));
  if (py::isinstance<py::bytes>(obj)) return Value::Bytes(py::cast<std::string>(obj));
  if (py::isinstance<py::bytearray>(obj) || py::isinstance<py::memoryview>(obj)) {
    auto b = py::reinterpret_steal<py::bytes>(PyBytes_FromObject(obj.ptr()));
    if (!b) throw py::error_already_set();
    return Value::Bytes(py::cast<std::string>(b));
  }
  if (py::isinstance<TensorValue>(obj)) {
    const TensorValue& t = py::cast<const TensorValue&>(obj);
    auto dtype = DTypeFromName(t.dtype);
    if (!dtype) throw py::type_error("common state '" + path + "' is a tensor of unsupported dtype " + t.dtype);
    std::string data = t.data;
    if (static_cast<int64_t>(data.size()) != NumElements(t.shape) * static_cast<int64_t>(DTypeSize(*dtype))) {
      throw py::value_error("common state '" + path + "': tensor bytes do not match its shape");
    }
    return Value::Tensor(*dtype, t.shape, std::move(data));
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    Value list = Value::List();
    size_t i = 0;
    for (const py::handle& item : obj) list.Append(ToValue(item, path + "[" + std::to_string(i++) + "]"));
    return list;
  }
  if (py::isinstance<py::dict>(obj)) {
    Value map = Value::Map();
    for (const auto& [k, v] : py::reinterpret_borrow<py::dict>(obj)) {
      if (!py::isinstance<py::str>(k)) {
        throw py::type_error("common state '" + path + "' has a key that is not a str (" +
                             std::string(py::str(py::type::of(k).attr("__name__"))) + ")");
      }
      std::string key = py::cast<std::string>(k);
      Value child = ToValue(v, Join(path, key));
      map.AppendEntry(std::move(key), std::move(child));  // a dict's keys are unique
    }
    return map;
  }
  const std::string type = py::str(py::type::of(obj).attr("__qualname__"));
  throw py::type_error("common state '" + path + "' is of type '" + type +
                       "', which dcp does not store (plain values only: None, bool, int, float, str, bytes, lists, "
                       "dicts with str keys, tensors; nothing is pickled)");
}

py::object FromValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return py::none();
    case Value::Kind::kBool:
      return py::bool_(v.as_bool());
    case Value::Kind::kInt:
      return py::int_(v.as_int());
    case Value::Kind::kFloat:
      return py::float_(v.as_float());
    case Value::Kind::kString:
      return py::str(v.as_string());
    case Value::Kind::kBytes:
      return py::bytes(v.as_string());
    case Value::Kind::kList: {
      py::list l;
      for (size_t i = 0; i < v.size(); ++i) l.append(FromValue(v.at(i)));
      return l;
    }
    case Value::Kind::kMap: {
      py::dict d;
      for (size_t i = 0; i < v.size(); ++i) d[py::str(v.keys()[i])] = FromValue(v.at(i));
      return d;
    }
    case Value::Kind::kTensor:
      return py::cast(TensorValue{std::string(DTypeName(v.tensor_dtype())), v.tensor_shape(), py::bytes(v.as_string())});
  }
  return py::none();
}

TensorView ToView(const py::handle& desc, const std::string& what) {
  const py::tuple d = py::reinterpret_borrow<py::tuple>(desc);
  // (ptr, dtype, shape, strides, device, index, owner): the owner (a copy the
  // view reads, or None) lives as long as the descriptor; C++ does not use it.
  if (d.size() != 7) ThrowIfError(Status::InvalidArgument(what + ": malformed tensor descriptor"));
  const uintptr_t ptr = py::cast<uintptr_t>(d[0]);
  auto dtype = DTypeFromName(py::cast<std::string>(d[1]));
  if (!dtype) ThrowIfError(Status::InvalidArgument(what + ": dtype " + py::cast<std::string>(d[1]) + " is not supported"));
  const Shape shape = ToShape(d[2], what);
  const Shape strides = ToShape(d[3], what);
  for (int64_t s : strides) {
    if (s < 0) ThrowIfError(Status::InvalidArgument(what + ": negative strides are not supported"));
  }
  const std::string device = py::cast<std::string>(d[4]);
  Device dev;
  if (device == "cuda") dev = Device::Cuda(py::cast<int>(d[5]));
  else if (device != "cpu") ThrowIfError(Status::InvalidArgument(what + ": device '" + device + "' is not supported"));
  return TensorView(reinterpret_cast<void*>(ptr), *dtype, shape, strides, dev);
}

StateDict ToStateDict(const py::dict& tree) {
  StateDict sd;
  Fill(&sd, tree, "");
  return sd;
}

py::dict ObjectsOf(const StateDict& sd) {
  py::dict out;
  std::vector<std::string> path;
  CollectObjects(sd, &path, &out);
  return out;
}

}  // namespace dcp::python
