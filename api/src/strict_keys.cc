// Copyright (c) dcp authors.

#include "api/src/strict_keys.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include "engine/coord/agreement.h"

namespace dcp {
namespace {

// Keys named in one error or log line before "and N more".
constexpr size_t kListedKeys = 16;
// Ranks named in one error before "and N more ranks".
constexpr size_t kListedRanks = 8;

bool NeedsMissing(StrictHandling mode) {
  return mode == StrictHandling::kLogAll || mode == StrictHandling::kRaiseAll || mode == StrictHandling::kReturnAll;
}
bool Raises(StrictHandling mode) {
  return mode == StrictHandling::kRaiseUnexpected || mode == StrictHandling::kRaiseAll;
}
bool Collective(StrictHandling mode) { return Raises(mode) || NeedsMissing(mode); }

// "'a', 'b', 'c' and 5 more" (the first kListedKeys of `total` keys).
template <typename Keys>
std::string ListKeys(const Keys& keys, size_t total) {
  std::string out;
  size_t n = 0;
  for (const auto& k : keys) {
    if (n == kListedKeys) break;
    if (n++ > 0) out += ", ";
    out += '\'';
    out += k;
    out += '\'';
  }
  if (total > n) out += " and " + std::to_string(total - n) + " more";
  return out;
}

std::string Plural(size_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

// Little-endian framing of the gathered and broadcast messages.
class Writer {
 public:
  void U64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
  void Bytes(std::string_view b) {
    U64(b.size());
    out_.append(b);
  }
  std::string Finish() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U64(uint64_t* v) {
    if (in_.size() < sizeof(*v)) return false;
    std::memcpy(v, in_.data(), sizeof(*v));
    in_.remove_prefix(sizeof(*v));
    return true;
  }
  bool Bytes(std::string_view* b) {
    uint64_t n = 0;
    if (!U64(&n) || n > in_.size()) return false;
    *b = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// The keys whose bit is clear in `bitmap` (bit i of byte i / 8 is keys[i]).
std::vector<std::string_view> Unmarked(const std::vector<std::string_view>& keys, std::string_view bitmap) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(static_cast<unsigned char>(bitmap[i / 8]) & (1u << (i % 8)))) out.push_back(keys[i]);
  }
  return out;
}

// What one rank sends rank 0.
struct RankReport {
  Status local;
  bool has_bitmap = false;  // the rank's request was checked (local OK)
  std::string bitmap;       // the step's keys it requested (NeedsMissing)
  uint64_t unexpected = 0;  // how many unexpected keys (raise modes)
  std::vector<std::string> listed;  // the first kListedKeys of them
};

std::string EncodeReport(const RankReport& r) {
  Writer w;
  w.Bytes(coord::EncodeStatus(r.local));
  w.U64(r.has_bitmap ? 1 : 0);
  w.Bytes(r.bitmap);
  w.U64(r.unexpected);
  w.U64(r.listed.size());
  for (const std::string& k : r.listed) w.Bytes(k);
  return w.Finish();
}

Status DecodeReport(std::string_view bytes, int rank, RankReport* r) {
  Reader in(bytes);
  std::string_view status, bitmap;
  uint64_t has = 0, listed = 0;
  const Status malformed = Status::Internal("malformed key-check message from rank " + std::to_string(rank));
  if (!in.Bytes(&status) || !in.U64(&has) || !in.Bytes(&bitmap) || !in.U64(&r->unexpected) || !in.U64(&listed) ||
      listed > kListedKeys) {
    return malformed;
  }
  r->local = coord::DecodeStatus(status);
  r->has_bitmap = has != 0;
  r->bitmap = std::string(bitmap);
  for (uint64_t i = 0; i < listed; ++i) {
    std::string_view k;
    if (!in.Bytes(&k)) return malformed;
    r->listed.emplace_back(k);
  }
  return in.done() ? Status::OK() : malformed;
}

// Rank 0: the verdict of every rank's report, and the union of their bitmaps
// (empty unless every rank sent one).
Status Combine(StrictHandling mode, uint64_t step, const std::vector<std::string_view>& keys,
               const std::vector<std::string>& messages, std::string* union_bitmap) {
  const size_t bitmap_bytes = (keys.size() + 7) / 8;
  std::vector<RankReport> reports(messages.size());
  std::vector<Status> locals;
  for (size_t r = 0; r < messages.size(); ++r) {
    DCP_RETURN_IF_ERROR(DecodeReport(messages[r], static_cast<int>(r), &reports[r]));
    locals.push_back(reports[r].local);
  }
  // A failure before the check (the same as the get would report) wins.
  DCP_RETURN_IF_ERROR(coord::CombineStatuses(locals));

  std::vector<std::string_view> missing;
  if (NeedsMissing(mode)) {
    union_bitmap->assign(bitmap_bytes, '\0');
    for (size_t r = 0; r < reports.size(); ++r) {
      if (!reports[r].has_bitmap || reports[r].bitmap.size() != bitmap_bytes) {
        return Status::Internal("rank " + std::to_string(r) + " sent a key bitmap of " +
                                std::to_string(reports[r].bitmap.size()) + " bytes; expected " +
                                std::to_string(bitmap_bytes));
      }
      for (size_t i = 0; i < bitmap_bytes; ++i) (*union_bitmap)[i] |= reports[r].bitmap[i];
    }
    missing = Unmarked(keys, *union_bitmap);
  }
  if (!Raises(mode)) return Status::OK();

  std::string unexpected;
  size_t ranks = 0;
  for (size_t r = 0; r < reports.size(); ++r) {
    if (reports[r].unexpected == 0) continue;
    if (ranks++ < kListedRanks) {
      unexpected += ranks > 1 ? "; rank " : "rank ";
      unexpected += std::to_string(r);
      unexpected += ": ";
      unexpected += ListKeys(reports[r].listed, reports[r].unexpected);
    }
  }
  if (ranks > kListedRanks) unexpected += "; and " + Plural(ranks - kListedRanks, "more rank");
  const std::string missing_text = mode == StrictHandling::kRaiseAll && !missing.empty()
                                       ? "missing keys (in step " + std::to_string(step) + ", requested by no rank): " +
                                             ListKeys(missing, missing.size())
                                       : "";
  if (ranks > 0) {
    return Status::NotFound("strict key handling: unexpected keys (requested, not in step " + std::to_string(step) +
                            "): " + unexpected + (missing_text.empty() ? "" : "; " + missing_text));
  }
  if (!missing_text.empty()) return Status::InvalidArgument("strict key handling: " + missing_text);
  return Status::OK();
}

template <typename Leaves>
void DropUnexpected(const std::set<std::string>& unexpected, Leaves* leaves) {
  leaves->erase(std::remove_if(leaves->begin(), leaves->end(),
                               [&](const auto& leaf) { return unexpected.count(leaf.item->key) > 0; }),
                leaves->end());
}

}  // namespace

std::vector<std::string_view> StepKeys(const manifest::StepManifest& m) {
  std::vector<std::string_view> keys;
  keys.reserve(m.tensors.size() + m.objects.size());
  for (const auto& t : m.tensors) keys.push_back(t.key);
  for (const auto& o : m.objects) keys.push_back(o.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

Status ApplyStrictHandling(Communicator* comm, StrictHandling mode, uint64_t step, const manifest::StepManifest* m,
                           const Status& local, sharding::FlatRequest* request, LoadResult* result) {
  if (mode == StrictHandling::kAssumeOkUnexpected) return local;
  const std::string what = "get of step " + std::to_string(step);

  // This rank's unexpected keys, and the step's keys it requested.
  std::vector<std::string_view> keys;
  std::set<std::string> unexpected;
  std::string bitmap;
  if (local.ok()) {
    keys = StepKeys(*m);
    bitmap.assign((keys.size() + 7) / 8, '\0');
    auto mark = [&](const std::string& key) {
      auto it = std::lower_bound(keys.begin(), keys.end(), std::string_view(key));
      if (it == keys.end() || *it != key) {
        unexpected.insert(key);
        return;
      }
      const size_t i = static_cast<size_t>(it - keys.begin());
      bitmap[i / 8] = static_cast<char>(bitmap[i / 8] | (1u << (i % 8)));
    };
    for (const auto& leaf : request->tensors) mark(leaf.item->key);
    for (const auto& leaf : request->objects) mark(leaf.item->key);
  }

  std::vector<std::string_view> missing;
  if (Collective(mode)) {
    RankReport mine;
    mine.local = local;
    mine.has_bitmap = local.ok() && NeedsMissing(mode);
    if (mine.has_bitmap) mine.bitmap = bitmap;
    if (Raises(mode)) {
      mine.unexpected = unexpected.size();
      for (const std::string& k : unexpected) {
        if (mine.listed.size() == kListedKeys) break;
        mine.listed.push_back(k);
      }
    }
    std::vector<std::string> messages;
    DCP_RETURN_IF_ERROR(comm->Gather(0, EncodeReport(mine), &messages));
    // Rank 0 broadcasts [verdict][union bitmap].
    std::string verdict;
    if (comm->rank() == 0) {
      std::string union_bitmap;
      const Status s = Combine(mode, step, keys, messages, &union_bitmap);
      Writer w;
      w.Bytes(coord::EncodeStatus(s));
      w.Bytes(s.ok() ? union_bitmap : "");
      verdict = w.Finish();
    }
    DCP_RETURN_IF_ERROR(comm->Broadcast(0, &verdict));
    Reader in(verdict);
    std::string_view status, union_bitmap;
    if (!in.Bytes(&status) || !in.Bytes(&union_bitmap) || !in.done()) {
      return Status::Internal("malformed key-check verdict from rank 0");
    }
    DCP_RETURN_IF_ERROR(coord::DecodeStatus(status));
    if (NeedsMissing(mode)) {
      if (union_bitmap.size() != bitmap.size()) return Status::Internal("malformed key-check verdict from rank 0");
      missing = Unmarked(keys, union_bitmap);
    }
  } else if (!local.ok()) {
    return local;
  }

  // The load goes on without the unexpected entries.
  DropUnexpected(unexpected, &request->tensors);
  DropUnexpected(unexpected, &request->objects);
  const bool log = mode == StrictHandling::kLogUnexpected || mode == StrictHandling::kLogAll;
  if (log && !unexpected.empty()) {
    std::fprintf(stderr, "dcp: %s: rank %d requested %s not in the step (not loaded): %s\n", what.c_str(),
                 comm->rank(), Plural(unexpected.size(), "key").c_str(),
                 ListKeys(unexpected, unexpected.size()).c_str());
  }
  if (mode == StrictHandling::kLogAll && !missing.empty() && comm->rank() == 0) {
    std::fprintf(stderr, "dcp: %s: %s of the step requested by no rank (missing): %s\n", what.c_str(),
                 Plural(missing.size(), "key").c_str(), ListKeys(missing, missing.size()).c_str());
  }
  if (mode == StrictHandling::kReturnUnexpected || mode == StrictHandling::kReturnAll) {
    result->unexpected_keys.assign(unexpected.begin(), unexpected.end());
  }
  if (mode == StrictHandling::kReturnAll) result->missing_keys.assign(missing.begin(), missing.end());
  return Status::OK();
}

}  // namespace dcp
