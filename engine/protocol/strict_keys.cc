// Copyright (c) dcp authors.

#include "engine/protocol/strict_keys.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "dcp/log.h"
#include "engine/coord/agreement.h"
#include "engine/wire/wire.h"

namespace dcp::protocol {
namespace {

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

// Object keys the engine integrations keep for themselves in a step (DCP's
// planner data, the step directory a step was saved through; docs/format.md
// §5c). A request for the state's keys never asks for them: never missing.
bool IsBookkeepingKey(std::string_view key) { return key == "__torch_dcp__" || key == "__dcp_step_directory__"; }

// The keys whose bit is clear in `bitmap` (bit i of byte i / 8 is keys[i]),
// but bookkeeping keys.
std::vector<std::string_view> Unmarked(const std::vector<std::string_view>& keys, std::string_view bitmap) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(static_cast<unsigned char>(bitmap[i / 8]) & (1u << (i % 8))) && !IsBookkeepingKey(keys[i])) {
      out.push_back(keys[i]);
    }
  }
  return out;
}

// Rank 0: the verdict of every rank's report, and the union of their bitmaps
// (empty unless every rank sent one).
Status Combine(StrictHandling mode, uint64_t step, const std::vector<std::string_view>& keys,
               const std::vector<std::string>& messages, std::string* union_bitmap) {
  const size_t bitmap_bytes = (keys.size() + 7) / 8;
  std::vector<KeyCheckReport> reports(messages.size());
  std::vector<Status> locals;
  for (size_t r = 0; r < messages.size(); ++r) {
    DCP_RETURN_IF_ERROR(DecodeKeyCheckReport(messages[r], static_cast<int>(r), &reports[r]));
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

std::string EncodeKeyCheckReport(const KeyCheckReport& r) {
  wire::Writer w;
  w.PutStatus(r.local).U8(r.has_bitmap ? 1 : 0).Bytes(r.bitmap).Varint(r.unexpected).Varint(r.listed.size());
  for (const std::string& k : r.listed) w.Bytes(k);
  return w.Finish();
}

Status DecodeKeyCheckReport(std::string_view bytes, int from, KeyCheckReport* r) {
  wire::Reader in(bytes, "key-check message from rank " + std::to_string(from));
  r->local = in.GetStatus();
  const uint8_t has = in.U8();
  if (in.ok() && has > 1) in.Fail("bitmap flag " + std::to_string(has));
  r->has_bitmap = has == 1;
  r->bitmap = std::string(in.Bytes());
  r->unexpected = in.Varint();
  const uint64_t listed = in.Count(1);
  if (in.ok() && (listed > kListedKeys || listed > r->unexpected)) {
    in.Fail(std::to_string(listed) + " listed keys of " + std::to_string(r->unexpected));
  }
  r->listed.clear();
  for (uint64_t i = 0; in.ok() && i < listed; ++i) r->listed.emplace_back(in.Bytes());
  return in.Finish();
}

std::string EncodeKeyCheckVerdict(const Status& verdict, std::string_view union_bitmap) {
  return wire::EncodeResult(verdict, union_bitmap);
}

Status DecodeKeyCheckVerdict(std::string_view bytes, Status* verdict, std::string* union_bitmap) {
  wire::Reader in(bytes, "key-check verdict from rank 0");
  *verdict = in.GetStatus();
  *union_bitmap = verdict->ok() ? std::string(in.Rest()) : std::string();
  return in.Finish();
}

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
    KeyCheckReport mine;
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
    DCP_RETURN_IF_ERROR(comm->Gather(0, EncodeKeyCheckReport(mine), &messages));
    std::string verdict;
    if (comm->rank() == 0) {
      std::string union_bitmap;
      const Status s = Combine(mode, step, keys, messages, &union_bitmap);
      verdict = EncodeKeyCheckVerdict(s, union_bitmap);
    }
    DCP_RETURN_IF_ERROR(comm->Broadcast(0, &verdict));
    Status agreed;
    std::string union_bitmap;
    DCP_RETURN_IF_ERROR(DecodeKeyCheckVerdict(verdict, &agreed, &union_bitmap));
    DCP_RETURN_IF_ERROR(agreed);
    if (NeedsMissing(mode)) {
      if (union_bitmap.size() != bitmap.size()) {
        return Status::Internal("malformed key-check verdict from rank 0: a bitmap of " +
                                std::to_string(union_bitmap.size()) + " bytes, expected " +
                                std::to_string(bitmap.size()));
      }
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
    Log(LogLevel::kWarning, what + ": rank " + std::to_string(comm->rank()) + " requested " +
                                Plural(unexpected.size(), "key") + " not in the step (not loaded): " +
                                ListKeys(unexpected, unexpected.size()));
  }
  if (mode == StrictHandling::kLogAll && !missing.empty() && comm->rank() == 0) {
    Log(LogLevel::kWarning, what + ": " + Plural(missing.size(), "key") +
                                " of the step requested by no rank (missing): " + ListKeys(missing, missing.size()));
  }
  if (mode == StrictHandling::kReturnUnexpected || mode == StrictHandling::kReturnAll) {
    result->unexpected_keys.assign(unexpected.begin(), unexpected.end());
  }
  if (mode == StrictHandling::kReturnAll) result->missing_keys.assign(missing.begin(), missing.end());
  return Status::OK();
}

}  // namespace dcp::protocol
