// Copyright (c) dcp authors.

#include "engine/base/buffer.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace dcp::base {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

void Buffer::Reserve(size_t n) {
  if (n <= capacity_) return;
  size_t cap = n;
  void* p = nullptr;
  if (cap >= kHugePage) {
    cap = (cap + kHugePage - 1) / kHugePage * kHugePage;
    p = std::aligned_alloc(kHugePage, cap);
    if (p != nullptr) ::madvise(p, cap, MADV_HUGEPAGE);
  } else {
    p = std::malloc(cap);
  }
  if (p == nullptr) throw std::bad_alloc();
  if (size_ > 0) std::memcpy(p, data_.get(), size_);
  data_.reset(static_cast<char*>(p));
  capacity_ = cap;
}

void Buffer::Resize(size_t n) {
  Reserve(n);
  size_ = n;
}

}  // namespace dcp::base
