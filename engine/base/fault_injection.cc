// Copyright (c) dcp authors.

#include "engine/base/fault_injection.h"

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
};

struct Registry {
  std::mutex mu;
  std::vector<Armed> armed;
  std::atomic<bool> any{false};
};

Registry& Get() {
  static Registry* r = [] {
    auto* reg = new Registry();
    if (const char* env = std::getenv("DCP_FAULT_POINTS")) {
      std::string spec(env);
      size_t start = 0;
      while (start <= spec.size()) {
        size_t end = spec.find(',', start);
        if (end == std::string::npos) end = spec.size();
        std::string item = spec.substr(start, end - start);
        if (!item.empty()) {
          int rank = -1;
          const size_t at = item.find('@');
          if (at != std::string::npos) {
            rank = std::atoi(item.c_str() + at + 1);
            item.resize(at);
          }
          reg->armed.push_back({item, rank});
        }
        start = end + 1;
      }
      reg->any = !reg->armed.empty();
    }
    return reg;
  }();
  return *r;
}

}  // namespace

void ArmFaultPoint(std::string name, int rank) {
  Registry& r = Get();
  std::lock_guard<std::mutex> lock(r.mu);
  r.armed.push_back({std::move(name), rank});
  r.any = true;
}

void DisarmAllFaultPoints() {
  Registry& r = Get();
  std::lock_guard<std::mutex> lock(r.mu);
  r.armed.clear();
  r.any = false;
}

Status CheckFaultPoint(std::string_view name, int rank) {
  Registry& r = Get();
  if (!r.any.load(std::memory_order_relaxed)) return Status::OK();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const Armed& a : r.armed) {
    if (a.name == name && (a.rank < 0 || a.rank == rank)) {
      return Status::IOError("injected fault at '" + std::string(name) + "' on rank " + std::to_string(rank));
    }
  }
  return Status::OK();
}

}  // namespace dcp::base
