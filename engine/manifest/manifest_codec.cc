// Copyright (c) dcp authors.

#include "engine/manifest/manifest_codec.h"

#include <flatbuffers/flatbuffers.h>

#include "engine/codec/frame.h"
#include "engine/manifest/fb_vectors.h"
#include "manifest_generated.h"

namespace dcp::manifest {
namespace {

// Manifests above this size are refused before verification (untrusted input).
constexpr size_t kMaxVerifierTables = 1u << 30;

fb::RecordRef ToFb(const RecordRef& r) {
  return fb::RecordRef(r.generation, r.raw_size, r.stored_size, fb::Hash128(r.checksum.lo, r.checksum.hi),
                       r.store_rank, static_cast<uint8_t>(r.codec));
}

Result<RecordRef> FromFb(const fb::RecordRef* r, const std::string& what) {
  if (r == nullptr) return Status::DataLoss(what + " has no record reference");
  if (!codec::IsValidChunkCodec(r->codec())) {
    return Status::DataLoss(what + " has unknown codec " + std::to_string(r->codec()));
  }
  RecordRef out;
  out.generation = r->generation();
  out.raw_size = r->raw_size();
  out.stored_size = r->stored_size();
  out.checksum = {r->checksum().lo(), r->checksum().hi()};
  out.store_rank = r->store_rank();
  out.codec = static_cast<codec::ChunkCodec>(r->codec());
  return out;
}

using internal::Int64Range;
using internal::ToShape;

}  // namespace

std::string EncodeManifestPayload(const StepManifest& m) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  tensors.reserve(m.tensors.size());
  for (const TensorEntry& t : m.tensors) {
    const size_t r = t.global_shape.size();
    std::vector<int64_t> boxes;
    boxes.reserve(t.chunks.size() * 2 * r);
    std::vector<fb::RecordRef> refs;
    refs.reserve(t.chunks.size());
    for (const ChunkEntry& c : t.chunks) {
      boxes.insert(boxes.end(), c.box.origin.begin(), c.box.origin.end());
      boxes.insert(boxes.end(), c.box.shape.begin(), c.box.shape.end());
      refs.push_back(ToFb(c.record));
    }
    // Children in a fixed order (argument evaluation order is the compiler's):
    // the same manifest encodes to the same bytes whatever built dcp.
    const auto key = b.CreateString(t.key);
    const auto global_shape = b.CreateVector(t.global_shape);
    const auto chunk_boxes = b.CreateVector(boxes);
    const auto chunks = b.CreateVectorOfStructs(refs);
    tensors.push_back(fb::CreateTensor(b, key, static_cast<uint8_t>(t.dtype), global_shape, chunk_boxes, chunks));
  }
  std::vector<flatbuffers::Offset<fb::Object>> objects;
  for (const ObjectEntry& o : m.objects) {
    const fb::RecordRef ref = ToFb(o.record);
    const auto key = b.CreateString(o.key);
    const auto global_shape = b.CreateVector(o.global_shape);
    const auto global_offset = b.CreateVector(o.global_offset);
    objects.push_back(fb::CreateObject(b, key, global_shape, global_offset, &ref));
  }
  auto common = b.CreateVector(reinterpret_cast<const uint8_t*>(m.common_state.data()), m.common_state.size());
  const auto tensor_vector = b.CreateVector(tensors);
  const auto object_vector = b.CreateVector(objects);
  auto root = fb::CreateManifest(b, m.format_version, m.step, m.generation, m.commit_time_ns, m.world_size,
                                 tensor_vector, object_vector, common);
  fb::FinishManifestBuffer(b, root);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::string EncodeManifest(const StepManifest& m) {
  return codec::FrameBlob(kManifestMagic, m.format_version, EncodeManifestPayload(m));
}

Result<StepManifest> DecodeManifestPayload(std::string_view payload, std::string_view what_v) {
  const std::string what(what_v);
  std::string aligned;
  payload = internal::Aligned(payload, &aligned);
  const auto* data = reinterpret_cast<const uint8_t*>(payload.data());
  if (payload.size() < 8 || !fb::ManifestBufferHasIdentifier(data)) {
    return Status::DataLoss(what + " is not a manifest (bad FlatBuffers identifier)");
  }
  flatbuffers::Verifier verifier(data, payload.size(), /*max_depth=*/64, kMaxVerifierTables);
  if (!fb::VerifyManifestBuffer(verifier)) {
    return Status::DataLoss(what + " failed FlatBuffers verification");
  }
  const fb::Manifest* root = fb::GetManifest(data);
  StepManifest m;
  m.format_version = root->format_version();
  m.step = root->step();
  m.generation = root->generation();
  m.commit_time_ns = root->commit_time_ns();
  m.world_size = root->world_size();
  if (root->tensors()) {
    m.tensors.reserve(root->tensors()->size());
    for (const fb::Tensor* t : *root->tensors()) {
      TensorEntry e;
      e.key = t->key()->str();
      const std::string tw = what + ": tensor '" + e.key + "'";
      e.dtype = static_cast<DType>(t->dtype());
      e.global_shape = ToShape(t->global_shape());
      if (!internal::StructsAligned(t->chunks())) return Status::DataLoss(tw + " has misaligned chunk records");
      const size_t r = e.global_shape.size();
      const size_t n = t->chunks() ? t->chunks()->size() : 0;
      const size_t nbox = t->chunk_boxes() ? t->chunk_boxes()->size() : 0;
      if (nbox != n * 2 * r) {
        return Status::DataLoss(tw + " has " + std::to_string(nbox) + " box coordinates for " + std::to_string(n) +
                                " chunks of rank " + std::to_string(r));
      }
      // chunk_boxes may be absent when it would be empty (0-d chunks).
      e.chunks.resize(n);
      for (size_t i = 0; i < n; ++i) {
        ChunkEntry& c = e.chunks[i];
        c.box.origin = nbox ? Int64Range(*t->chunk_boxes(), 2 * r * i, r) : Shape();
        c.box.shape = nbox ? Int64Range(*t->chunk_boxes(), 2 * r * i + r, r) : Shape();
        DCP_ASSIGN_OR_RETURN(c.record, FromFb(t->chunks()->Get(static_cast<flatbuffers::uoffset_t>(i)), tw));
      }
      m.tensors.push_back(std::move(e));
    }
  }
  if (root->objects()) {
    for (const fb::Object* o : *root->objects()) {
      ObjectEntry e;
      e.key = o->key()->str();
      e.global_shape = ToShape(o->global_shape());
      e.global_offset = ToShape(o->global_offset());
      DCP_ASSIGN_OR_RETURN(e.record, FromFb(o->record(), what + ": object '" + e.key + "'"));
      m.objects.push_back(std::move(e));
    }
  }
  if (root->common_state()) {
    m.common_state.assign(reinterpret_cast<const char*>(root->common_state()->data()), root->common_state()->size());
  }
  return m;
}

Result<StepManifest> DecodeManifest(std::string_view bytes, std::string_view what_v) {
  const std::string what(what_v);
  DCP_ASSIGN_OR_RETURN(codec::Unframed u, codec::UnframeBlob(bytes, kManifestMagic, what));
  if (u.payload_version != kManifestFormatVersion) {
    return Status::DataLoss(what + " has unsupported manifest format version " + std::to_string(u.payload_version));
  }
  DCP_ASSIGN_OR_RETURN(StepManifest m, DecodeManifestPayload(u.payload, what));
  DCP_RETURN_IF_ERROR(CheckManifestInvariants(m).Annotate(what));
  return m;
}

}  // namespace dcp::manifest
