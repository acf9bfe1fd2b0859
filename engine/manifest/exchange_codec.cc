// Copyright (c) dcp authors.

#include "engine/manifest/exchange_codec.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <unordered_map>

#include "engine/manifest/fb_vectors.h"
#include "engine/wire/wire.h"
#include "exchange_generated.h"

namespace dcp::manifest {
namespace {

using internal::ToShape;

}  // namespace

std::string EncodeRankDecl(const RankDecl& d) {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<fb::ShardDecl>> tensors;
  tensors.reserve(d.tensors.size());
  for (const ShardDecl& s : d.tensors) {
    std::optional<fb::FlatRange> range;
    if (s.flattened_range) range.emplace(s.flattened_range->begin, s.flattened_range->end);
    // Children in a fixed order (argument evaluation order is the compiler's):
    // ranks built by different compilers send the same bytes.
    const auto key = b.CreateString(s.key);
    const auto global_shape = b.CreateVector(s.global_shape);
    const auto origin = b.CreateVector(s.box.origin);
    const auto shape = b.CreateVector(s.box.shape);
    tensors.push_back(fb::CreateShardDecl(b, key, static_cast<uint8_t>(s.dtype), global_shape, origin, shape,
                                          s.main_replica, range ? &*range : nullptr));
  }
  std::vector<flatbuffers::Offset<fb::ObjectDecl>> objects;
  for (const ObjectDecl& o : d.objects) {
    const auto key = b.CreateString(o.key);
    const auto global_shape = b.CreateVector(o.global_shape);
    const auto global_offset = b.CreateVector(o.global_offset);
    objects.push_back(fb::CreateObjectDecl(b, key, global_shape, global_offset, o.main_replica));
  }
  const fb::Hash128 h(d.common_state_hash.lo, d.common_state_hash.hi);
  const auto tensor_vector = b.CreateVector(tensors);
  const auto object_vector = b.CreateVector(objects);
  fb::FinishRankDeclBuffer(b, fb::CreateRankDecl(b, tensor_vector, object_vector, &h));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<RankDecl> DecodeRankDecl(std::string_view bytes, int from_rank) {
  std::string aligned;
  bytes = internal::Aligned(bytes, &aligned);
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

bool SameShard(const ShardDecl& a, const ShardDecl& b) {
  if (a.key != b.key || a.dtype != b.dtype || a.global_shape != b.global_shape || !(a.box == b.box) ||
      a.main_replica != b.main_replica || a.flattened_range.has_value() != b.flattened_range.has_value()) {
    return false;
  }
  return !a.flattened_range ||
         (a.flattened_range->begin == b.flattened_range->begin && a.flattened_range->end == b.flattened_range->end);
}

SplitDecl SplitRankDecl(RankDecl d) {
  SplitDecl s;
  s.own.objects = std::move(d.objects);
  s.own.common_state_hash = d.common_state_hash;
  for (ShardDecl& t : d.tensors) (t.main_replica ? s.own.tensors : s.replicas).push_back(std::move(t));
  s.signature.count = s.replicas.size();
  if (!s.replicas.empty()) {
    RankDecl only;
    only.tensors = s.replicas;
    const std::string bytes = EncodeRankDecl(only);
    s.signature.hash = codec::ContentHash128(bytes.data(), bytes.size());
  }
  return s;
}

std::string EncodeSignature(const ReplicaSignature& s) {
  return wire::Writer().U64(s.count).U64(s.hash.lo).U64(s.hash.hi).Finish();
}

Result<ReplicaSignature> DecodeSignature(std::string_view bytes, int from_rank) {
  wire::Reader in(bytes, "replica signature from rank " + std::to_string(from_rank));
  ReplicaSignature s;
  s.count = in.U64();
  s.hash.lo = in.U64();
  s.hash.hi = in.U64();
  DCP_RETURN_IF_ERROR(in.Finish());
  return s;
}

namespace {

struct SignatureHash {
  size_t operator()(const ReplicaSignature& s) const { return static_cast<size_t>(s.hash.lo ^ (s.count * 0x9e3779b97f4a7c15ull)); }
};

}  // namespace

std::vector<int> Representatives(const std::vector<ReplicaSignature>& signatures) {
  std::vector<int> rep(signatures.size(), -1);
  std::unordered_map<ReplicaSignature, int, SignatureHash> first;
  for (size_t r = 0; r < signatures.size(); ++r) {
    if (signatures[r].count == 0) continue;
    rep[r] = first.emplace(signatures[r], static_cast<int>(r)).first->second;
  }
  return rep;
}

std::string EncodeExchangeDecl(const SplitDecl& s, bool representative) {
  if (!representative || s.replicas.empty()) return EncodeRankDecl(s.own);
  RankDecl d = s.own;
  d.tensors.insert(d.tensors.end(), s.replicas.begin(), s.replicas.end());
  return EncodeRankDecl(d);
}

Result<GlobalDecls> AssembleGlobalDecls(const std::vector<ReplicaSignature>& signatures,
                                        const std::vector<std::string>& messages) {
  if (signatures.size() != messages.size()) {
    return Status::Internal("replica signatures from " + std::to_string(signatures.size()) + " ranks but " +
                            "declarations from " + std::to_string(messages.size()));
  }
  const std::vector<int> rep = Representatives(signatures);
  GlobalDecls g;
  g.ranks.resize(messages.size());
  std::vector<int> set_of(messages.size(), -1);  // by representative rank
  for (size_t r = 0; r < messages.size(); ++r) {
    const int rank = static_cast<int>(r);
    DCP_ASSIGN_OR_RETURN(RankDecl d, DecodeRankDecl(messages[r], rank));
    RankDecl& own = g.ranks[r];
    own.objects = std::move(d.objects);
    own.common_state_hash = d.common_state_hash;
    std::vector<ShardDecl> replicas;
    for (ShardDecl& t : d.tensors) (t.main_replica ? own.tensors : replicas).push_back(std::move(t));
    if (rep[r] != rank) {
      if (!replicas.empty()) {
        return Status::Internal("rank " + std::to_string(r) + " sent non-main shards it was not to send");
      }
      if (rep[r] >= 0) g.replica_sets[static_cast<size_t>(set_of[static_cast<size_t>(rep[r])])].holders.push_back(rank);
      continue;
    }
    if (replicas.size() != signatures[r].count) {
      return Status::Internal("rank " + std::to_string(r) + " sent " + std::to_string(replicas.size()) +
                              " non-main shards but signed " + std::to_string(signatures[r].count));
    }
    set_of[r] = static_cast<int>(g.replica_sets.size());
    g.replica_sets.push_back({std::move(replicas), {rank}});
  }
  return g;
}

Status CheckOwnReplicas(const GlobalDecls& global, int rank, const std::vector<ShardDecl>& mine) {
  const std::vector<ShardDecl>* listed = nullptr;
  static const std::vector<ShardDecl> kNone;
  for (const auto& set : global.replica_sets) {
    if (std::binary_search(set.holders.begin(), set.holders.end(), rank)) listed = &set.shards;
  }
  if (listed == nullptr) listed = &kNone;
  bool same = listed->size() == mine.size();
  for (size_t i = 0; same && i < mine.size(); ++i) same = SameShard((*listed)[i], mine[i]);
  if (!same) {
    return Status::InvalidArgument("rank " + std::to_string(rank) +
                                   ": its non-main shards differ from those of the rank whose replica signature it "
                                   "shares (a signature collision); the put cannot proceed");
  }
  return Status::OK();
}

std::vector<RankDecl> ExpandGlobalDecls(const GlobalDecls& global) {
  std::vector<RankDecl> out = global.ranks;
  for (const auto& set : global.replica_sets) {
    for (int r : set.holders) {
      auto& t = out[static_cast<size_t>(r)].tensors;
      t.insert(t.end(), set.shards.begin(), set.shards.end());
    }
  }
  return out;
}

}  // namespace dcp::manifest
