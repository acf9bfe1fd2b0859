// Copyright (c) dcp authors.
//
// Fuzz target: common-state bytes (FlexBuffers) as a manifest carries them.
// Invariants: no crash; a decoded value re-encodes, and that encoding decodes
// to an equal value.

#include <string>

#include "engine/manifest/common_state_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(fuzz::Bytes(data, size));  // FlexBuffers reads in place: aligned copy
  auto v = manifest::DecodeCommonState(bytes);
  if (!v.ok()) return 0;
  auto again = manifest::EncodeCommonState(*v);
  FUZZ_CHECK(again.ok());
  auto v2 = manifest::DecodeCommonState(*again);
  FUZZ_CHECK(v2.ok());
  FUZZ_CHECK(*v2 == *v);
  return 0;
}
