// Copyright (c) dcp authors.

#include "engine/inspect/diff.h"

#include <cstring>
#include <map>
#include <set>

#include "engine/base/buffer.h"
#include "engine/inspect/inspect.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/sharding/chunking.h"

namespace dcp::inspect {
namespace {

uint64_t CountDifferent(const char* a, const char* b, uint64_t elements, size_t elem_size) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < elements; ++i, a += elem_size, b += elem_size) {
    if (std::memcmp(a, b, elem_size) != 0) ++n;
  }
  return n;
}

class TensorComparer {
 public:
  TensorComparer(StoreReader* reader, const LoadedStep& a, const LoadedStep& b, const DiffOptions& options)
      : reader_(reader), a_(a), b_(b), options_(options) {}

  // Fills d.changed_bytes and the counters for two entries of the same dtype
  // and global shape.
  Status Compare(const manifest::TensorEntry& ta, const manifest::TensorEntry& tb, TensorDiff* d) {
    std::map<std::pair<Shape, Shape>, const manifest::ChunkEntry*> b_chunks;
    for (const manifest::ChunkEntry& c : tb.chunks) b_chunks.emplace(std::make_pair(c.box.origin, c.box.shape), &c);
    for (const manifest::ChunkEntry& c : ta.chunks) {
      auto it = b_chunks.find(std::make_pair(c.box.origin, c.box.shape));
      if (it != b_chunks.end()) {
        ++d->chunks_by_checksum;
        if (it->second->record.checksum == c.record.checksum) continue;
        if (!options_.exact) {
          d->changed_bytes += c.record.raw_size;
          d->exact = false;
          continue;
        }
      }
      DCP_RETURN_IF_ERROR(CompareRegion(ta, tb, c.box, d));
    }
    return Status::OK();
  }

 private:
  // Decodes `region` from both steps block by block and counts the elements
  // that differ.
  Status CompareRegion(const manifest::TensorEntry& ta, const manifest::TensorEntry& tb, const Box& region,
                       TensorDiff* d) {
    const size_t elem = DTypeSize(ta.dtype);
    for (const Box& block : sharding::ChunkBox(region, elem, std::max<uint64_t>(options_.block_bytes, elem))) {
      const uint64_t n = static_cast<uint64_t>(block.num_elements());
      buf_a_.Resize(n * elem);
      buf_b_.Resize(n * elem);
      DCP_RETURN_IF_ERROR(reader_->ReadRegion(a_, ta, block, buf_a_.data()));
      DCP_RETURN_IF_ERROR(reader_->ReadRegion(b_, tb, block, buf_b_.data()));
      d->changed_bytes += CountDifferent(buf_a_.data(), buf_b_.data(), n, elem) * elem;
      d->bytes_decoded += 2 * n * elem;
    }
    return Status::OK();
  }

  StoreReader* reader_;
  const LoadedStep& a_;
  const LoadedStep& b_;
  const DiffOptions& options_;
  base::Buffer buf_a_, buf_b_;
};

Status DiffCommonState(const LoadedStep& a, const LoadedStep& b, DiffReport* r) {
  DCP_ASSIGN_OR_RETURN(Value va, manifest::DecodeCommonState(a.manifest().common_state));
  DCP_ASSIGN_OR_RETURN(Value vb, manifest::DecodeCommonState(b.manifest().common_state));
  r->common_state_changed = va != vb;
  if (!r->common_state_changed) return Status::OK();
  if (va.kind() != Value::Kind::kMap || vb.kind() != Value::Kind::kMap) return Status::OK();
  std::set<std::string> keys(va.keys().begin(), va.keys().end());
  keys.insert(vb.keys().begin(), vb.keys().end());
  for (const std::string& k : keys) {
    const Value* x = va.Find(k);
    const Value* y = vb.Find(k);
    if (x == nullptr || y == nullptr || *x != *y) r->common_keys_changed.push_back(k);
  }
  return Status::OK();
}

}  // namespace

const char* ChangeName(Change change) {
  switch (change) {
    case Change::kSame: return "same";
    case Change::kChanged: return "changed";
    case Change::kAdded: return "added";
    case Change::kRemoved: return "removed";
    case Change::kRetyped: return "retyped";
  }
  return "unknown";
}

Result<DiffReport> Diff(StoreReader* reader, uint64_t step_a, uint64_t step_b, const DiffOptions& options) {
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> a, reader->Load(step_a));
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> b, reader->Load(step_b));
  DiffReport r;
  r.step_a = step_a;
  r.step_b = step_b;
  r.keys_glob = options.keys_glob;

  std::set<std::string> keys;
  for (const auto* step : {a.get(), b.get()}) {
    for (const manifest::TensorEntry& t : step->manifest().tensors) {
      if (KeyMatches(options.keys_glob, t.key)) keys.insert(t.key);
    }
  }
  TensorComparer comparer(reader, *a, *b, options);
  for (const std::string& key : keys) {
    TensorDiff d;
    d.key = key;
    const manifest::TensorEntry* ta = a->FindTensor(key);
    const manifest::TensorEntry* tb = b->FindTensor(key);
    if (ta) {
      d.dtype_a = ta->dtype;
      d.shape_a = ta->global_shape;
    }
    if (tb) {
      d.dtype_b = tb->dtype;
      d.shape_b = tb->global_shape;
    }
    d.bytes = std::max(ta ? ta->raw_bytes() : 0, tb ? tb->raw_bytes() : 0);
    if (ta == nullptr || tb == nullptr) {
      d.change = ta ? Change::kRemoved : Change::kAdded;
      d.changed_bytes = d.bytes;
    } else if (ta->dtype != tb->dtype || ta->global_shape != tb->global_shape) {
      d.change = Change::kRetyped;
      d.changed_bytes = d.bytes;
    } else {
      DCP_ASSIGN_OR_RETURN(ta, reader->Tensor(*a, key));  // refuses broken entries
      DCP_ASSIGN_OR_RETURN(tb, reader->Tensor(*b, key));
      DCP_RETURN_IF_ERROR(comparer.Compare(*ta, *tb, &d));
      d.change = d.changed_bytes ? Change::kChanged : Change::kSame;
    }
    r.bytes += d.bytes;
    r.changed_bytes += d.changed_bytes;
    r.exact = r.exact && d.exact;
    r.tensors.push_back(std::move(d));
  }

  std::map<std::string, std::pair<const manifest::ObjectEntry*, const manifest::ObjectEntry*>> objects;
  for (const manifest::ObjectEntry& o : a->manifest().objects) objects[o.unique_key()].first = &o;
  for (const manifest::ObjectEntry& o : b->manifest().objects) objects[o.unique_key()].second = &o;
  for (const auto& [uk, pair] : objects) {
    const auto [oa, ob] = pair;
    const std::string& key = oa ? oa->key : ob->key;
    if (!KeyMatches(options.keys_glob, key) && !KeyMatches(options.keys_glob, uk)) continue;
    ObjectDiff od;
    od.unique_key = uk;
    od.size_a = oa ? oa->record.raw_size : 0;
    od.size_b = ob ? ob->record.raw_size : 0;
    if (!oa || !ob) {
      od.change = oa ? Change::kRemoved : Change::kAdded;
    } else if (oa->record.checksum != ob->record.checksum || oa->record.raw_size != ob->record.raw_size) {
      od.change = Change::kChanged;
    }
    r.objects.push_back(std::move(od));
  }
  DCP_RETURN_IF_ERROR(DiffCommonState(*a, *b, &r));
  return r;
}

}  // namespace dcp::inspect
