// Copyright (c) dcp authors.

#include "engine/manifest/exchange_codec.h"

#include <flatbuffers/flatbuffers.h>

#include "exchange_generated.h"

namespace dcp::manifest {
namespace {

Shape ToShape(const flatbuffers::Vector<int64_t>* v) { return v ? Shape(v->begin(), v->end()) : Shape(); }

}  // namespace

std::string EncodeRankDecl(const RankDecl& d) {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<fb::ShardDecl>> tensors;
  tensors.reserve(d.tensors.size());
  for (const ShardDecl& s : d.tensors) {
    std::optional<fb::FlatRange> range;
    if (s.flattened_range) range.emplace(s.flattened_range->begin, s.flattened_range->end);
    tensors.push_back(fb::CreateShardDecl(b, b.CreateString(s.key), static_cast<uint8_t>(s.dtype),
                                          b.CreateVector(s.global_shape), b.CreateVector(s.box.origin),
                                          b.CreateVector(s.box.shape), s.main_replica,
                                          range ? &*range : nullptr));
  }
  std::vector<flatbuffers::Offset<fb::ObjectDecl>> objects;
  for (const ObjectDecl& o : d.objects) {
    objects.push_back(fb::CreateObjectDecl(b, b.CreateString(o.key), b.CreateVector(o.global_shape),
                                           b.CreateVector(o.global_offset), o.main_replica));
  }
  const fb::Hash128 h(d.common_state_hash.lo, d.common_state_hash.hi);
  fb::FinishRankDeclBuffer(b, fb::CreateRankDecl(b, b.CreateVector(tensors), b.CreateVector(objects), &h));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<RankDecl> DecodeRankDecl(std::string_view bytes, int from_rank) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier verifier(data, bytes.size(), 64, 1u << 30);
  if (bytes.size() < 8 || !fb::RankDeclBufferHasIdentifier(data) || !fb::VerifyRankDeclBuffer(verifier)) {
    return Status::Internal("malformed shard declarations from rank " + std::to_string(from_rank));
  }
  const fb::RankDecl* root = fb::GetRankDecl(data);
  RankDecl d;
  if (root->tensors()) {
    d.tensors.reserve(root->tensors()->size());
    for (const fb::ShardDecl* s : *root->tensors()) {
      ShardDecl t;
      t.key = s->key()->str();
      t.dtype = static_cast<DType>(s->dtype());
      t.global_shape = ToShape(s->global_shape());
      t.box.origin = ToShape(s->origin());
      t.box.shape = ToShape(s->shape());
      t.main_replica = s->main_replica();
      if (const fb::FlatRange* r = s->flattened_range()) t.flattened_range = FlatRange{r->begin(), r->end()};
      d.tensors.push_back(std::move(t));
    }
  }
  if (root->objects()) {
    for (const fb::ObjectDecl* o : *root->objects()) {
      d.objects.push_back({o->key()->str(), ToShape(o->global_shape()), ToShape(o->global_offset()),
                           o->main_replica()});
    }
  }
  if (root->common_state_hash()) {
    d.common_state_hash = {root->common_state_hash()->lo(), root->common_state_hash()->hi()};
  }
  return d;
}

}  // namespace dcp::manifest
