// Copyright (c) dcp authors.
//
// Fuzz target: dcp-inspect's region syntax ("[0:4, -2:]", dump/diff --region).
// The first bytes give a tensor shape (up to 4 axes); the rest is the text.
// Invariants: no crash; a region that resolves lies inside the tensor.

#include <string>

#include "engine/inspect/dump.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t rank = data[0] % 5;
  if (size < 1 + rank) return 0;
  Shape shape;
  for (size_t i = 0; i < rank; ++i) shape.push_back(data[1 + i]);
  const std::string_view text = fuzz::Bytes(data + 1 + rank, size - 1 - rank);

  auto spec = inspect::ParseRegionSpec(text);
  if (!spec.ok()) return 0;
  auto box = inspect::ResolveRegion(*spec, shape, "fuzz");
  if (!box.ok()) return 0;
  FUZZ_CHECK(box->rank() == static_cast<int>(shape.size()));
  for (size_t a = 0; a < shape.size(); ++a) {
    FUZZ_CHECK(box->origin[a] >= 0 && box->shape[a] >= 0);
    FUZZ_CHECK(box->origin[a] + box->shape[a] <= shape[a]);
  }
  return 0;
}
