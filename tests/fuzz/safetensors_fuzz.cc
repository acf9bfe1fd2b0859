// Copyright (c) dcp authors.
//
// Fuzz target: what dcp-import reads from outside (engine/interop): a
// safetensors header, a sharded model's index, and a key mapping rules file
// applied to tensor names. The first byte picks which:
//   0: header JSON (the next 2 bytes: the data length); a header that parses
//      tiles its data exactly and re-encodes to the same tensors;
//   1: index JSON; every tensor's file is one of the listed files;
//   2: rules JSON, NUL, then source names (one per line, at most 64 bytes
//      each, shapes from the names' bytes); destinations that come out are
//      sorted, distinct, and tiled by their slices along their axis.

#include <algorithm>
#include <string>
#include <vector>

#include "engine/interop/key_mapping.h"
#include "engine/interop/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

namespace {

void Header(std::string_view in) {
  if (in.size() < 2) return;
  const uint64_t data_bytes = static_cast<uint8_t>(in[0]) | (static_cast<uint64_t>(static_cast<uint8_t>(in[1])) << 8);
  auto f = interop::ParseSafetensorsHeader(in.substr(2), data_bytes, "fuzz");
  if (!f.ok()) return;
  uint64_t at = 0;
  for (const auto& t : f->tensors) {
    FUZZ_CHECK(t.offset == at);
    FUZZ_CHECK(t.bytes == static_cast<uint64_t>(NumElements(t.shape)) * DTypeSize(t.dtype));
    at += t.bytes;
  }
  FUZZ_CHECK(at == data_bytes);
  auto encoded = interop::EncodeSafetensorsHeader(f->tensors, f->metadata);
  if (!encoded.ok()) return;  // a name or value that is not UTF-8, "__metadata__"
  auto back = interop::ParseSafetensorsHeader(std::string_view(*encoded).substr(8), data_bytes, "again");
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->tensors.size() == f->tensors.size());
  for (size_t i = 0; i < back->tensors.size(); ++i) {
    FUZZ_CHECK(back->tensors[i].name == f->tensors[i].name);
    FUZZ_CHECK(back->tensors[i].shape == f->tensors[i].shape);
    FUZZ_CHECK(back->tensors[i].offset == f->tensors[i].offset);
  }
  FUZZ_CHECK(back->metadata == f->metadata);
}

void Index(std::string_view in) {
  auto index = interop::ParseSafetensorsIndex(in, "fuzz");
  if (!index.ok()) return;
  for (const auto& [name, file] : index->weight_map) {
    FUZZ_CHECK(std::binary_search(index->files.begin(), index->files.end(), file));
    FUZZ_CHECK(file.find('/') == std::string::npos);
  }
}

void Rules(std::string_view in) {
  const size_t nul = in.find('\0');
  if (nul == std::string_view::npos || nul > 512) return;  // std::regex backtracks: keep patterns small
  auto mapping = interop::KeyMapping::Parse(in.substr(0, nul), "fuzz");
  if (!mapping.ok()) return;
  std::vector<interop::SourceTensor> sources;
  std::string_view rest = in.substr(nul + 1);
  while (!rest.empty() && sources.size() < 16) {
    const size_t nl = rest.find('\n');
    const std::string name(rest.substr(0, std::min<size_t>(nl, 64)));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    Shape shape;
    for (size_t i = 0; i < std::min<size_t>(name.size(), 2); ++i) shape.push_back(static_cast<uint8_t>(name[i]) % 7);
    sources.push_back({name, DType::kFloat32, shape});
  }
  auto ds = mapping->Apply(sources, true);
  if (!ds.ok()) return;
  for (size_t i = 0; i < ds->size(); ++i) {
    const interop::Destination& d = (*ds)[i];
    if (i > 0) FUZZ_CHECK((*ds)[i - 1].name < d.name);
    FUZZ_CHECK(!d.slices.empty());
    if (d.shape.empty()) continue;
    FUZZ_CHECK(d.axis >= 0 && d.axis < static_cast<int>(d.shape.size()));
    int64_t at = 0;
    for (const auto& s : d.slices) {
      FUZZ_CHECK(s.dest_begin == at && s.length >= 0 && s.source < sources.size());
      const Shape& src = sources[s.source].shape;
      FUZZ_CHECK(s.source_begin >= 0 && s.source_begin + s.length <= src[d.axis]);
      at += s.length;
    }
    FUZZ_CHECK(at == d.shape[d.axis]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in = fuzz::Bytes(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: Header(in); break;
    case 1: Index(in); break;
    default: Rules(in); break;
  }
  return 0;
}
