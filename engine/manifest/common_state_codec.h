// Copyright (c) dcp authors.
//
// Common state <-> FlexBuffers: plain data only (never code, never pickle).
//
// Mapping: null, bool, int (int64), float (double), string, bytes (blob),
// list (vector) and map (map; keys come back sorted, as FlexBuffers stores
// them) map one to one. A small tensor is a map
//   {"__dcp_tensor__": "<dtype name>", "shape": [..], "data": <blob>}
// and that key is reserved: a user map holding it is refused at encode.
//
// Decoding runs the FlexBuffers verifier, bounds nesting depth, and checks
// every tensor's dtype and byte count; failures are DataLoss.
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_MANIFEST_COMMON_STATE_CODEC_H_
#define DCP_ENGINE_MANIFEST_COMMON_STATE_CODEC_H_

#include <string>
#include <string_view>

#include "dcp/status.h"
#include "dcp/value.h"

namespace dcp::manifest {

constexpr char kTensorMarkerKey[] = "__dcp_tensor__";
constexpr int kMaxCommonStateDepth = 64;

// InvalidArgument if a map uses the reserved key, a tensor's data size does not
// match its dtype and shape, or nesting is deeper than kMaxCommonStateDepth.
Result<std::string> EncodeCommonState(const Value& v);

// An empty string decodes to an empty map.
Result<Value> DecodeCommonState(std::string_view bytes);

}  // namespace dcp::manifest

#endif  // DCP_ENGINE_MANIFEST_COMMON_STATE_CODEC_H_
