// Copyright (c) dcp authors.

#include "engine/manifest/manifest.h"

#include <algorithm>

#include "dcp/sharded.h"
#include "engine/array/box.h"
#include "engine/array/box_index.h"

namespace dcp::manifest {

uint64_t TensorEntry::raw_bytes() const {
  uint64_t n = 0;
  for (const auto& c : chunks) n += c.record.raw_size;
  return n;
}

uint64_t TensorEntry::stored_bytes() const {
  uint64_t n = 0;
  for (const auto& c : chunks) n += c.record.stored_size;
  return n;
}

std::string ObjectEntry::unique_key() const { return ObjectUniqueKey(key, global_offset, global_shape); }

const TensorEntry* StepManifest::FindTensor(std::string_view key) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), key,
                             [](const TensorEntry& t, std::string_view k) { return t.key < k; });
  return it != tensors.end() && it->key == key ? &*it : nullptr;
}

const ObjectEntry* StepManifest::FindObject(std::string_view unique_key) const {
  auto it = std::lower_bound(objects.begin(), objects.end(), unique_key,
                             [](const ObjectEntry& o, std::string_view k) { return o.unique_key() < k; });
  return it != objects.end() && it->unique_key() == unique_key ? &*it : nullptr;
}

void StepManifest::Canonicalize() {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  std::sort(objects.begin(), objects.end(),
            [](const auto& a, const auto& b) { return a.unique_key() < b.unique_key(); });
}

StepMetadata Describe(const StepManifest& m) {
  StepMetadata md;
  StepInfo& info = md.info;
  info.step = m.step;
  info.generation = m.generation;
  info.commit_time_ns = m.commit_time_ns;
  info.world_size = m.world_size;
  info.num_tensors = m.tensors.size();
  info.num_objects = m.objects.size();
  for (const TensorEntry& t : m.tensors) {
    TensorInfo ti;
    ti.key = t.key;
    ti.dtype = t.dtype;
    ti.global_shape = t.global_shape;
    ti.num_chunks = t.chunks.size();
    ti.raw_bytes = t.raw_bytes();
    ti.stored_bytes = t.stored_bytes();
    info.num_chunks += ti.num_chunks;
    info.raw_bytes += ti.raw_bytes;
    info.stored_bytes += ti.stored_bytes;
    for (const ChunkEntry& c : t.chunks) {
      if (WrittenByStep(c.record, m)) info.unique_bytes += c.record.stored_size;
    }
    md.tensors.push_back(std::move(ti));
  }
  for (const ObjectEntry& o : m.objects) {
    ObjectInfo oi;
    oi.key = o.key;
    oi.unique_key = o.unique_key();
    oi.global_shape = o.global_shape;
    oi.global_offset = o.global_offset;
    oi.size = o.record.raw_size;
    info.raw_bytes += o.record.raw_size;
    info.stored_bytes += o.record.stored_size;
    if (WrittenByStep(o.record, m)) info.unique_bytes += o.record.stored_size;
    md.objects.push_back(std::move(oi));
  }
  return md;
}

Status CheckKeySyntax(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > 1024) {
    return Status::InvalidArgument("key '" + std::string(key.substr(0, 64)) + "...' is longer than 1024 bytes");
  }
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("key contains a control byte");
  }
  return Status::OK();
}

namespace {

Status CheckRecord(const RecordRef& r, const std::string& what) {
  if (r.stored_size < codec::kChunkHeaderSize) {
    return Status::DataLoss(what + " has a stored size smaller than a record header");
  }
  if (r.raw_size > codec::kMaxChunkRawSize) return Status::DataLoss(what + " has an oversized record");
  return Status::OK();
}

}  // namespace

Status CheckManifestInvariants(const StepManifest& m) {
  if (m.format_version != kManifestFormatVersion) {
    return Status::DataLoss("manifest format version " + std::to_string(m.format_version) + " is not supported");
  }
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorEntry& t = m.tensors[i];
    const std::string what = "manifest tensor '" + t.key + "'";
    if (!CheckKeySyntax(t.key).ok()) return Status::DataLoss("manifest holds a malformed tensor key");
    if (i > 0 && !(m.tensors[i - 1].key < t.key)) {
      return Status::DataLoss("manifest tensors are not sorted and unique at '" + t.key + "'");
    }
    if (!IsValidDType(static_cast<uint8_t>(t.dtype))) return Status::DataLoss(what + " has an invalid dtype");
    // Bound the size before any box arithmetic multiplies extents: a product
    // that wraps would let a small chunk pass as covering a huge tensor.
    int64_t bytes = static_cast<int64_t>(DTypeSize(t.dtype));
    for (int64_t d : t.global_shape) {
      if (d < 0) return Status::DataLoss(what + " has a negative extent");
      if (d > 0 && bytes > INT64_MAX / d) {
        return Status::DataLoss(what + " has global shape " + ShapeToString(t.global_shape) +
                                " whose size overflows 64 bits");
      }
      bytes *= d;
    }
    std::vector<Box> boxes;
    boxes.reserve(t.chunks.size());
    for (const ChunkEntry& c : t.chunks) {
      // Named only on failure: every rank checks every chunk of the step.
      auto cw = [&] { return what + " chunk at " + c.box.ToString(); };
      if (!array::IsWithin(c.box, t.global_shape) || c.box.num_elements() == 0) {
        return Status::DataLoss(cw() + " lies outside global shape " + ShapeToString(t.global_shape) + " or is empty");
      }
      if (c.record.raw_size != static_cast<uint64_t>(c.box.num_elements()) * DTypeSize(t.dtype)) {
        return Status::DataLoss(cw() + " has raw size " + std::to_string(c.record.raw_size) + " for " +
                                std::to_string(c.box.num_elements()) + " elements");
      }
      if (!CheckRecord(c.record, std::string()).ok()) return CheckRecord(c.record, cw());
      boxes.push_back(c.box);
    }
    const array::CoverProblem p = array::CheckExactCover(t.global_shape, boxes);
    if (p.kind == array::CoverProblem::Kind::kOverlap) {
      return Status::DataLoss(what + " has overlapping chunks at " + p.region.ToString());
    }
    if (p.kind == array::CoverProblem::Kind::kHole) {
      return Status::DataLoss(what + " chunks leave " + std::to_string(p.uncovered_elements) +
                              " elements uncovered (e.g. " + p.region.ToString() + ")");
    }
    if (p.kind == array::CoverProblem::Kind::kInexact) {
      return Status::DataLoss(what + " chunks do not cover it exactly (" +
                              std::to_string(NumElements(t.global_shape) - p.uncovered_elements) +
                              " elements in chunks for " + std::to_string(NumElements(t.global_shape)) + ")");
    }
  }
  std::string prev;
  for (size_t i = 0; i < m.objects.size(); ++i) {
    const ObjectEntry& o = m.objects[i];
    const std::string uk = o.unique_key();
    if (!CheckKeySyntax(o.key).ok()) return Status::DataLoss("manifest holds a malformed object key");
    if (i > 0 && !(prev < uk)) return Status::DataLoss("manifest objects are not sorted and unique at '" + uk + "'");
    if (o.global_shape.size() != o.global_offset.size()) {
      return Status::DataLoss("manifest object '" + uk + "' has offset and shape of different ranks");
    }
    for (size_t d = 0; d < o.global_shape.size(); ++d) {
      if (o.global_offset[d] < 0 || o.global_offset[d] >= o.global_shape[d]) {
        return Status::DataLoss("manifest object '" + uk + "' lies outside its grid");
      }
    }
    DCP_RETURN_IF_ERROR(CheckRecord(o.record, "manifest object '" + uk + "'"));
    prev = uk;
  }
  return Status::OK();
}

}  // namespace dcp::manifest
