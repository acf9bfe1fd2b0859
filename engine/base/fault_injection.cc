// Copyright (c) dcp authors.

#include "engine/base/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace dcp::base {
namespace {

struct Armed {
  std::string name;
  int rank;
  bool crash;
  int hit;       // crashes: on which hit
  int seen = 0;  // crashes: hits so far
};

struct Registry {
  std::mutex mu;
  std::vector<Armed> armed;
  std::atomic<bool> any{false};
};

// "name[#hit][@rank],..." from an environment variable.
void Parse(const char* env, bool crash, std::vector<Armed>* out) {
  if (env == nullptr) return;
  std::string spec(env);
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(start, end - start);
    if (!item.empty()) {
      int rank = -1, hit = 1;
      const size_t at = item.find('@');
      if (at != std::string::npos) {
        rank = std::atoi(item.c_str() + at + 1);
        item.resize(at);
      }
      const size_t hash = item.find('#');
      if (hash != std::string::npos) {
        hit = std::max(1, std::atoi(item.c_str() + hash + 1));
        item.resize(hash);
      }
      out->push_back({item, rank, crash, hit});
    }
    start = end + 1;
  }
}

Registry& Get() {
  static Registry* r = [] {
    auto* reg = new Registry();
    Parse(std::getenv("DCP_FAULT_POINTS"), false, &reg->armed);
    Parse(std::getenv("DCP_CRASH_POINTS"), true, &reg->armed);
    reg->any = !reg->armed.empty();
    return reg;
  }();
  return *r;
}

}  // namespace

void ArmFaultPoint(std::string name, int rank) {
  Registry& r = Get();
  std::lock_guard<std::mutex> lock(r.mu);
  r.armed.push_back({std::move(name), rank, false, 1});
  r.any = true;
}

void ArmCrashPoint(std::string name, int hit, int rank) {
  Registry& r = Get();
  std::lock_guard<std::mutex> lock(r.mu);
  r.armed.push_back({std::move(name), rank, true, hit});
  r.any = true;
}

void DisarmAllFaultPoints() {
  Registry& r = Get();
  std::lock_guard<std::mutex> lock(r.mu);
  r.armed.clear();
  r.any = false;
}

#if DCP_FAULT_INJECTION
Status CheckFaultPoint(std::string_view name, int rank) {
  Registry& r = Get();
  if (!r.any.load(std::memory_order_relaxed)) return Status::OK();
  std::lock_guard<std::mutex> lock(r.mu);
  for (Armed& a : r.armed) {
    if (a.name != name || (a.rank >= 0 && a.rank != rank)) continue;
    if (a.crash) {
      if (++a.seen == a.hit) ::kill(::getpid(), SIGKILL);  // as `kill -9` would
      continue;
    }
    return Status::IOError("injected fault at '" + std::string(name) + "' on rank " + std::to_string(rank));
  }
  return Status::OK();
}
#endif  // DCP_FAULT_INJECTION

}  // namespace dcp::base
