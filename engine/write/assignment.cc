// Copyright (c) dcp authors.

#include "engine/write/assignment.h"

#include <algorithm>
#include <tuple>

#include "engine/sharding/chunking.h"

namespace dcp::write {
namespace {

struct Ref {
  const HeldBox* held;
  int rank;
};

bool SameBox(const HeldBox& a, const HeldBox& b) { return a.key == b.key && a.box == b.box; }

}  // namespace

WriteAssignment WriteAssignment::Compute(const std::vector<std::vector<HeldBox>>& held, uint64_t chunk_bytes) {
  WriteAssignment a;
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

}  // namespace dcp::write
