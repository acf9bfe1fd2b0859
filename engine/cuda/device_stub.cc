// Copyright (c) dcp authors.
//
// engine/cuda/device.h without CUDA: host memory only.

#include <cstdlib>
#include <new>

#include "engine/cuda/device.h"

namespace dcp::cuda {

bool Built() { return false; }

int DeviceCount() { return 0; }

Status CheckViewMemory(const TensorView& view, const std::string& what) {
  if (view.device().is_host()) return Status::OK();
  return Status::InvalidArgument(what + ": view is on " + view.device().ToString() +
                                 " but this build of dcp has no CUDA support");
}

PinnedBuffer::PinnedBuffer() = default;
PinnedBuffer::~PinnedBuffer() { std::free(data_); }

Status PinnedBuffer::Reserve(size_t bytes) {
  if (bytes <= capacity_) return Status::OK();
  void* p = std::realloc(data_, bytes);
  if (p == nullptr) return Status::IOError("cannot allocate " + std::to_string(bytes) + " bytes of staging memory");
  data_ = static_cast<char*>(p);
  capacity_ = bytes;
  return Status::OK();
}

struct Stream::Rep {};
Stream::Stream() : rep_(std::make_unique<Rep>()) {}
Stream::~Stream() = default;

Status CopyToHost(const TensorView&, void*, Stream*) {
  return Status::Unimplemented("this build of dcp has no CUDA support");
}

Status CopyToDevice(const void*, const TensorView&, Stream*) {
  return Status::Unimplemented("this build of dcp has no CUDA support");
}

}  // namespace dcp::cuda
