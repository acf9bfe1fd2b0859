// Copyright (c) dcp authors.

#include "engine/write/assignment.h"

#include <algorithm>
#include <tuple>

#include "engine/array/box.h"
#include "engine/sharding/chunking.h"
#include "engine/sharding/pieces.h"

namespace dcp::write {
namespace {

struct Ref {
  const HeldBox* held;
  int rank;
};

bool SameBox(const HeldBox& a, const HeldBox& b) { return a.key == b.key && a.box == b.box; }

}  // namespace

std::vector<std::vector<HeldBox>> HeldBoxes(const std::vector<manifest::RankDecl>& decls) {
  std::vector<std::vector<HeldBox>> held(decls.size());
  for (size_t r = 0; r < decls.size(); ++r) {
    for (const manifest::ShardDecl& d : decls[r].tensors) {
      const uint32_t elem = static_cast<uint32_t>(DTypeSize(d.dtype));
      if (!d.flattened_range) {
        held[r].push_back({d.key, d.box, elem, d.main_replica});
        continue;
      }
      for (Box& b : sharding::FlatRangeBoxes(d.box.shape, d.flattened_range->begin, d.flattened_range->end)) {
        for (size_t a = 0; a < b.origin.size(); ++a) b.origin[a] += d.box.origin[a];
        held[r].push_back({d.key, std::move(b), elem, d.main_replica});
      }
    }
  }
  return held;
}

WriteAssignment WriteAssignment::Compute(const std::vector<std::vector<HeldBox>>& held, uint64_t chunk_bytes) {
  WriteAssignment a;
  a.chunk_bytes_ = chunk_bytes;
  a.bytes_.assign(held.size(), 0);

  // Every held box, grouped by (key, box); holders ascending within a group.
  std::vector<Ref> refs;
  for (size_t r = 0; r < held.size(); ++r) {
    for (const HeldBox& h : held[r]) {
      if (h.box.num_elements() > 0) refs.push_back({&h, static_cast<int>(r)});
    }
  }
  std::sort(refs.begin(), refs.end(), [](const Ref& x, const Ref& y) {
    return std::tie(x.held->key, x.held->box.origin, x.held->box.shape, x.rank) <
           std::tie(y.held->key, y.held->box.origin, y.held->box.shape, y.rank);
  });

  struct Shared {
    const HeldBox* box;
    std::vector<int> holders;
    std::vector<int>* writers;
  };
  std::vector<Shared> shared;
  for (size_t i = 0; i < refs.size();) {
    size_t j = i + 1;
    while (j < refs.size() && SameBox(*refs[j].held, *refs[i].held)) ++j;
    const HeldBox* main = nullptr;
    int main_rank = -1;
    std::vector<int> holders;
    for (size_t k = i; k < j; ++k) {
      if (refs[k].held->main && main == nullptr) {
        main = refs[k].held;
        main_rank = refs[k].rank;
      }
      if (holders.empty() || holders.back() != refs[k].rank) holders.push_back(refs[k].rank);
    }
    i = j;
    if (main == nullptr) continue;  // nobody writes a box without a main replica
    if (holders.size() == 1) {
      a.bytes_[static_cast<size_t>(main_rank)] +=
          static_cast<uint64_t>(main->box.num_elements()) * main->elem_size;
      continue;
    }
    std::vector<int>& writers = a.writers_[BoxKey{std::string(main->key), main->box}];
    shared.push_back({main, std::move(holders), &writers});
  }

  // The chunks of shared boxes, fewest holders first, then largest.
  struct Item {
    size_t box;
    size_t chunk;
    uint64_t bytes;
  };
  std::vector<Item> items;
  for (size_t u = 0; u < shared.size(); ++u) {
    const HeldBox& h = *shared[u].box;
    const auto chunks =
        sharding::ChunkBox(h.box, h.elem_size, std::max<uint64_t>(chunk_bytes, h.elem_size));
    shared[u].writers->assign(chunks.size(), -1);
    for (size_t c = 0; c < chunks.size(); ++c) {
      items.push_back({u, c, static_cast<uint64_t>(chunks[c].num_elements()) * h.elem_size});
    }
  }
  std::sort(items.begin(), items.end(), [&](const Item& x, const Item& y) {
    return std::make_tuple(shared[x.box].holders.size(), y.bytes, x.box, x.chunk) <
           std::make_tuple(shared[y.box].holders.size(), x.bytes, y.box, y.chunk);
  });
  for (const Item& it : items) {
    const std::vector<int>& holders = shared[it.box].holders;
    int best = holders[0];
    for (int r : holders) {
      if (a.bytes_[static_cast<size_t>(r)] < a.bytes_[static_cast<size_t>(best)]) best = r;
    }
    (*shared[it.box].writers)[it.chunk] = best;
    a.bytes_[static_cast<size_t>(best)] += it.bytes;
  }
  return a;
}

const std::vector<int>* WriteAssignment::Writers(std::string_view key, const Box& box) const {
  auto it = writers_.find(BoxKey{std::string(key), box});
  return it != writers_.end() ? &it->second : nullptr;
}

void WriteAssignment::AddTensor(const ShardedTensor& t, int rank, WriteRequest* request) const {
  const size_t elem = DTypeSize(t.dtype);
  for (sharding::Piece& p : sharding::PiecesOf(t)) {
    const std::vector<int>* writers = Writers(t.key, p.box);
    if (writers == nullptr) {
      if (t.is_main_replica()) request->tensors.push_back({&t, std::move(p)});
      continue;
    }
    const std::vector<Box> chunks = sharding::ChunkBox(p.box, elem, std::max<uint64_t>(chunk_bytes_, elem));
    for (size_t i = 0; i < chunks.size() && i < writers->size(); ++i) {
      if ((*writers)[i] != rank) continue;
      const TensorView data = p.data.Slice(array::RelativeTo(chunks[i], p.box.origin));
      request->tensors.push_back({&t, sharding::Piece{chunks[i], data}});
    }
  }
}

}  // namespace dcp::write
