// Copyright (c) dcp authors.

#include "engine/manifest/common_state_codec.h"

#include <flatbuffers/flexbuffers.h>

#include <algorithm>
#include <vector>

namespace dcp::manifest {
namespace {

Status Build(const Value& v, flexbuffers::Builder* b, int depth);

Status BuildTensor(const Value& v, flexbuffers::Builder* b) {
  for (int64_t d : v.tensor_shape()) {
    if (d < 0) return Status::InvalidArgument("common-state tensor has a negative extent");
  }
  const uint64_t expected = static_cast<uint64_t>(NumElements(v.tensor_shape())) * DTypeSize(v.tensor_dtype());
  if (DTypeSize(v.tensor_dtype()) == 0 || expected != v.as_string().size()) {
    return Status::InvalidArgument("common-state tensor of " + std::string(DTypeName(v.tensor_dtype())) +
                                   ShapeToString(v.tensor_shape()) + " holds " +
                                   std::to_string(v.as_string().size()) + " bytes, expected " +
                                   std::to_string(expected));
  }
  // Keys in sorted order, as FlexBuffers maps require.
  const size_t start = b->StartMap();
  b->String(kTensorMarkerKey, std::string(DTypeName(v.tensor_dtype())));
  b->Key("data");
  b->Blob(v.as_string().data(), v.as_string().size());
  const size_t shape = b->StartVector("shape");
  for (int64_t d : v.tensor_shape()) b->Int(d);
  b->EndVector(shape, false, false);
  b->EndMap(start);
  return Status::OK();
}

Status Build(const Value& v, flexbuffers::Builder* b, int depth) {
  if (depth > kMaxCommonStateDepth) return Status::InvalidArgument("common state is nested too deeply");
  switch (v.kind()) {
    case Value::Kind::kNull: b->Null(); return Status::OK();
    case Value::Kind::kBool: b->Bool(v.as_bool()); return Status::OK();
    case Value::Kind::kInt: b->Int(v.as_int()); return Status::OK();
    case Value::Kind::kFloat: b->Double(v.as_float()); return Status::OK();
    case Value::Kind::kString: b->String(v.as_string()); return Status::OK();
    case Value::Kind::kBytes: b->Blob(v.as_string().data(), v.as_string().size()); return Status::OK();
    case Value::Kind::kTensor: return BuildTensor(v, b);
    case Value::Kind::kList: {
      const size_t start = b->StartVector();
      for (size_t i = 0; i < v.size(); ++i) DCP_RETURN_IF_ERROR(Build(v.at(i), b, depth + 1));
      b->EndVector(start, false, false);
      return Status::OK();
    }
    case Value::Kind::kMap: {
      std::vector<size_t> order(v.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return v.keys()[x] < v.keys()[y]; });
      const size_t start = b->StartMap();
      for (size_t i : order) {
        const std::string& k = v.keys()[i];
        if (k == kTensorMarkerKey) {
          return Status::InvalidArgument("common-state map key '" + k + "' is reserved");
        }
        if (k.find('\0') != std::string::npos) {
          return Status::InvalidArgument("common-state map key contains a NUL byte");
        }
        b->Key(k);
        DCP_RETURN_IF_ERROR(Build(v.at(i), b, depth + 1));
      }
      b->EndMap(start);
      return Status::OK();
    }
  }
  return Status::Internal("unknown value kind");
}

// Calls f(element) for every element of an untyped, typed or fixed-size typed
// vector (AsVector() alone reads the typed kinds as empty vectors).
template <typename F>
Status ForEachElement(const flexbuffers::Reference& r, F f) {
  const auto each = [&](const auto& vec) {
    for (size_t i = 0; i < vec.size(); ++i) DCP_RETURN_IF_ERROR(f(vec[i]));
    return Status::OK();
  };
  if (r.IsTypedVector()) return each(r.AsTypedVector());
  if (r.IsFixedTypedVector()) return each(r.AsFixedTypedVector());
  return each(r.AsVector());
}

Result<Value> Parse(const flexbuffers::Reference& r, int depth) {
  if (depth > kMaxCommonStateDepth) return Status::DataLoss("common state is nested too deeply");
  if (r.IsNull()) return Value();
  if (r.IsBool()) return Value(r.AsBool());
  if (r.IsInt() || r.IsUInt()) return Value(r.AsInt64());
  if (r.IsFloat()) return Value(r.AsDouble());
  if (r.IsString()) return Value(r.AsString().str());
  if (r.IsBlob()) {
    const auto blob = r.AsBlob();
    return Value::Bytes(std::string(reinterpret_cast<const char*>(blob.data()), blob.size()));
  }
  if (r.IsMap()) {
    const auto map = r.AsMap();
    const auto marker = map[kTensorMarkerKey];
    if (!marker.IsNull()) {
      const auto dtype = DTypeFromName(marker.AsString().str());
      const auto shape_ref = map["shape"];
      const auto data_ref = map["data"];
      if (!dtype || !shape_ref.IsAnyVector() || !data_ref.IsBlob()) {
        return Status::DataLoss("common state holds a malformed tensor");
      }
      Shape shape;
      DCP_RETURN_IF_ERROR(ForEachElement(shape_ref, [&](const flexbuffers::Reference& e) {
        // Integers only: AsInt64 converts floats (out of range: undefined).
        if (!e.IsInt() && !e.IsUInt()) return Status::DataLoss("common state holds a malformed tensor");
        if (e.IsUInt() && e.AsUInt64() > static_cast<uint64_t>(INT64_MAX)) {
          return Status::DataLoss("common-state tensor byte count does not match its shape");
        }
        const int64_t d = e.AsInt64();
        if (d < 0) return Status::DataLoss("common-state tensor has a negative extent");
        shape.push_back(d);
        return Status::OK();
      }));
      // A Value tensor's element count must fit in int64, computed as
      // NumElements does (a zero extent after an overflow does not rescue it).
      int64_t elements = 1;
      bool overflow = false;
      for (int64_t d : shape) overflow = __builtin_mul_overflow(elements, d, &elements) || overflow;
      if (overflow) {
        return Status::DataLoss("common-state tensor byte count does not match its shape (its element count overflows)");
      }
      const auto blob = data_ref.AsBlob();
      // Bound the product before trusting it.
      uint64_t n = DTypeSize(*dtype);
      for (int64_t d : shape) {
        if (d != 0 && n > blob.size() / static_cast<uint64_t>(d) + 1) n = UINT64_MAX;
        else n *= static_cast<uint64_t>(d);
      }
      if (n != blob.size()) return Status::DataLoss("common-state tensor byte count does not match its shape");
      return Value::Tensor(*dtype, std::move(shape),
                           std::string(reinterpret_cast<const char*>(blob.data()), blob.size()));
    }
    Value out = Value::Map();
    const auto keys = map.Keys();
    const auto values = map.Values();
    // Keys are strictly increasing (as FlexBuffers maps are written, and as
    // lookups in them assume): checked, so entries append in constant time
    // (a lookup per key made decoding quadratic: 100k keys took 8 s).
    std::string_view previous;
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string_view key = keys[i].AsKey();
      if (i > 0 && !(previous < key)) return Status::DataLoss("common-state map keys are not strictly increasing");
      // Only a tensor's map holds the marker (a null marker is not a tensor):
      // refused as the encoder refuses it, so every decoded value re-encodes.
      if (key == kTensorMarkerKey) return Status::DataLoss("common state holds a malformed tensor");
      previous = key;
      DCP_ASSIGN_OR_RETURN(Value child, Parse(values[i], depth + 1));
      out.AppendEntry(std::string(key), std::move(child));
    }
    return out;
  }
  if (r.IsAnyVector()) {
    Value out = Value::List();
    DCP_RETURN_IF_ERROR(ForEachElement(r, [&](const flexbuffers::Reference& e) {
      DCP_ASSIGN_OR_RETURN(Value child, Parse(e, depth + 1));
      out.Append(std::move(child));
      return Status::OK();
    }));
    return out;
  }
  return Status::DataLoss("common state holds an unsupported FlexBuffers type " + std::to_string(r.GetType()));
}

}  // namespace

Result<std::string> EncodeCommonState(const Value& v) {
  flexbuffers::Builder b;
  DCP_RETURN_IF_ERROR(Build(v, &b, 0));
  b.Finish();
  const auto& buf = b.GetBuffer();
  return std::string(reinterpret_cast<const char*>(buf.data()), buf.size());
}

Result<Value> DecodeCommonState(std::string_view bytes) {
  if (bytes.empty()) return Value::Map();
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  // The verifier counts every vector as a level (strings, blobs and a
  // tensor's map and shape included): allow the deepest document
  // EncodeCommonState writes, and let Parse enforce kMaxCommonStateDepth.
  flexbuffers::Verifier verifier(data, bytes.size(), /*reuse_tracker=*/nullptr, /*_check_alignment=*/true,
                                 /*max_depth=*/kMaxCommonStateDepth + 2);
  if (!verifier.VerifyBuffer()) {
    return Status::DataLoss("common state failed FlexBuffers verification");
  }
  return Parse(flexbuffers::GetRoot(data, bytes.size()), 0);
}

}  // namespace dcp::manifest
