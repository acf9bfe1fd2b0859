// Copyright (c) dcp authors.

#include "engine/write/assignment.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <numeric>
#include <queue>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "engine/array/box.h"
#include "engine/codec/checksum.h"
#include "engine/sharding/chunking.h"
#include "engine/sharding/pieces.h"

namespace dcp::write {

namespace {

void AppendHeld(const manifest::ShardDecl& d, std::vector<HeldBox>* out) {
  const uint32_t elem = static_cast<uint32_t>(DTypeSize(d.dtype));
  if (!d.flattened_range) {
    out->push_back({d.key, d.box, elem, d.main_replica});
    return;
  }
  for (Box& b : sharding::FlatRangeBoxes(d.box.shape, d.flattened_range->begin, d.flattened_range->end)) {
    for (size_t a = 0; a < b.origin.size(); ++a) b.origin[a] += d.box.origin[a];
    out->push_back({d.key, std::move(b), elem, d.main_replica});
  }
}

}  // namespace

std::vector<std::vector<HeldBox>> HeldBoxes(const std::vector<manifest::RankDecl>& decls) {
  std::vector<std::vector<HeldBox>> held(decls.size());
  for (size_t r = 0; r < decls.size(); ++r) {
    for (const manifest::ShardDecl& d : decls[r].tensors) AppendHeld(d, &held[r]);
  }
  return held;
}

HeldSets HeldBoxes(const manifest::GlobalDecls& global) {
  HeldSets h;
  h.world = global.ranks.size();
  h.boxes.resize(global.ranks.size() + global.replica_sets.size());
  for (size_t r = 0; r < global.ranks.size(); ++r) {
    for (const manifest::ShardDecl& d : global.ranks[r].tensors) AppendHeld(d, &h.boxes[r]);
    h.sets.push_back({&h.boxes[r], {static_cast<int>(r)}});
  }
  for (size_t s = 0; s < global.replica_sets.size(); ++s) {
    std::vector<HeldBox>& boxes = h.boxes[global.ranks.size() + s];
    for (const manifest::ShardDecl& d : global.replica_sets[s].shards) AppendHeld(d, &boxes);
    h.sets.push_back({&boxes, global.replica_sets[s].holders});
  }
  return h;
}

WriteAssignment WriteAssignment::Compute(const std::vector<std::vector<HeldBox>>& held, uint64_t chunk_bytes) {
  std::vector<HeldSet> sets(held.size());
  for (size_t r = 0; r < held.size(); ++r) sets[r] = {&held[r], {static_cast<int>(r)}};
  return Compute(sets, held.size(), chunk_bytes);
}

WriteAssignment WriteAssignment::Compute(const std::vector<HeldSet>& held, size_t world, uint64_t chunk_bytes) {
  WriteAssignment a;
  a.chunk_bytes_ = chunk_bytes;
  a.bytes_.assign(world, 0);

  // Every held box, grouped by (key, box) in one hashed pass; a set's boxes
  // are visited once whatever the number of ranks holding it (with data
  // parallelism most boxes are replicas). A group's holders are then sorted
  // and its main replica is the lowest rank's. Only the distinct boxes are
  // sorted, by (key, origin, shape).
  std::unordered_map<std::string_view, uint32_t> key_ids;
  for (const HeldSet& set : held) {
    for (const HeldBox& h : *set.boxes) key_ids.emplace(h.key, 0);
  }
  {
    std::vector<std::string_view> keys;
    keys.reserve(key_ids.size());
    for (const auto& [k, id] : key_ids) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < keys.size(); ++i) key_ids[keys[i]] = static_cast<uint32_t>(i);
  }
  struct Group {
    uint32_t key_id;
    const HeldBox* box;   // the first holder's
    const HeldBox* main;  // the lowest main replica's, or null
    int main_rank;
    // The holders: those of the first set that holds the box, until a second
    // set does (then the union, sorted once at the end). Most boxes are held
    // by one set (a rank's own main shards), and need no list of their own.
    const HeldSet* first;
    std::vector<int> holders;
    bool merged = false;
    const std::vector<int>& Holders() const { return merged ? holders : first->ranks; }
  };
  std::vector<Group> groups;
  struct GroupHash {
    const std::vector<Group>* groups;
    size_t operator()(size_t g) const {
      const Group& x = (*groups)[g];
      uint64_t h = x.key_id * 0x9e3779b97f4a7c15ull;
      for (int64_t v : x.box->box.origin) h = (h ^ static_cast<uint64_t>(v)) * 0xff51afd7ed558ccdull;
      for (int64_t v : x.box->box.shape) h = (h ^ static_cast<uint64_t>(v)) * 0xc4ceb9fe1a85ec53ull;
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  struct GroupEq {
    const std::vector<Group>* groups;
    bool operator()(size_t x, size_t y) const {
      const Group& gx = (*groups)[x];
      const Group& gy = (*groups)[y];
      return gx.key_id == gy.key_id && gx.box->box == gy.box->box;
    }
  };
  std::unordered_set<size_t, GroupHash, GroupEq> index(64, GroupHash{&groups}, GroupEq{&groups});
  std::string_view last_key;
  uint32_t last_id = 0;
  for (const HeldSet& set : held) {
    if (set.ranks.empty()) continue;
    for (const HeldBox& h : *set.boxes) {
      if (h.box.num_elements() <= 0) continue;
      if (h.key.data() != last_key.data() || h.key.size() != last_key.size()) {  // pieces share their key
        last_key = h.key;
        last_id = key_ids[h.key];
      }
      // A probe: the candidate group sits at the end until it is known new.
      groups.push_back({last_id, &h, nullptr, -1, &set, {}, false});
      auto [it, fresh] = index.insert(groups.size() - 1);
      if (!fresh) groups.pop_back();
      Group& g = groups[*it];
      if (g.first != &set) {
        if (!g.merged) g.holders = g.first->ranks;
        g.merged = true;
        g.holders.insert(g.holders.end(), set.ranks.begin(), set.ranks.end());
      }
      if (h.main && (g.main == nullptr || set.ranks.front() < g.main_rank)) {
        g.main = &h;
        g.main_rank = set.ranks.front();
      }
    }
  }
  for (Group& g : groups) {
    if (!g.merged) continue;
    std::sort(g.holders.begin(), g.holders.end());
    g.holders.erase(std::unique(g.holders.begin(), g.holders.end()), g.holders.end());
  }
  index.clear();
  // A box held by one rank only adds to its writer's load (order does not
  // matter); only the shared ones are sorted.
  std::vector<size_t> order;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& g = groups[gi];
    if (g.main == nullptr) continue;  // nobody writes a box without a main replica
    if (g.Holders().size() == 1) {
      a.bytes_[static_cast<size_t>(g.main_rank)] +=
          static_cast<uint64_t>(g.main->box.num_elements()) * g.main->elem_size;
      continue;
    }
    order.push_back(gi);
  }
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const Group& gx = groups[x];
    const Group& gy = groups[y];
    return std::tie(gx.key_id, gx.box->box.origin, gx.box->box.shape) <
           std::tie(gy.key_id, gy.box->box.origin, gy.box->box.shape);
  });

  struct Shared {
    const HeldBox* box;
    std::vector<int> holders;
    std::vector<int>* writers;
  };
  std::vector<Shared> shared;
  shared.reserve(order.size());
  for (size_t gi : order) {
    Group& g = groups[gi];
    std::vector<int>& writers = a.writers_[BoxKey{std::string(g.main->key), g.main->box}];
    shared.push_back({g.main, g.merged ? std::move(g.holders) : g.first->ranks, &writers});
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
  // The least-loaded holder (ties to the lower rank). Many boxes share one
  // long holder list (the DP replicas of a model position); such a list gets
  // a min-heap of (bytes, rank) whose entries go stale when their rank takes
  // a chunk elsewhere: a stale top is refreshed and pushed back (loads only
  // grow, so a fresh top is the true minimum). Short lists are scanned.
  constexpr size_t kHeapFrom = 16;
  using Entry = std::pair<uint64_t, int>;
  using Heap = std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>>;
  struct ListHash {
    size_t operator()(const std::vector<int>* v) const {
      return static_cast<size_t>(codec::Checksum64(v->data(), v->size() * sizeof(int)));
    }
  };
  struct ListEq {
    bool operator()(const std::vector<int>* x, const std::vector<int>* y) const { return *x == *y; }
  };
  std::unordered_map<const std::vector<int>*, size_t, ListHash, ListEq> heap_of;
  std::vector<Heap> heaps;
  std::vector<size_t> heap_index(shared.size(), SIZE_MAX);
  for (size_t u = 0; u < shared.size(); ++u) {
    if (shared[u].holders.size() < kHeapFrom) continue;
    auto [it, fresh] = heap_of.emplace(&shared[u].holders, heaps.size());
    if (fresh) heaps.emplace_back();  // filled on first use, with the loads of then
    heap_index[u] = it->second;
  }
  std::vector<bool> filled(heaps.size(), false);
  for (const Item& it : items) {
    const std::vector<int>& holders = shared[it.box].holders;
    int best = holders[0];
    const size_t h = heap_index[it.box];
    if (h == SIZE_MAX) {
      for (int r : holders) {
        if (a.bytes_[static_cast<size_t>(r)] < a.bytes_[static_cast<size_t>(best)]) best = r;
      }
    } else {
      Heap& heap = heaps[h];
      if (!filled[h]) {
        for (int r : holders) heap.push({a.bytes_[static_cast<size_t>(r)], r});
        filled[h] = true;
      }
      while (heap.top().first != a.bytes_[static_cast<size_t>(heap.top().second)]) {
        const int r = heap.top().second;
        heap.pop();
        heap.push({a.bytes_[static_cast<size_t>(r)], r});
      }
      best = heap.top().second;
      heap.pop();
      heap.push({a.bytes_[static_cast<size_t>(best)] + it.bytes, best});
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
