// Copyright (c) dcp authors.
//
// Device buffers for the CUDA tests.

#ifndef DCP_TESTS_ENGINE_CUDA_CUDA_UTIL_H_
#define DCP_TESTS_ENGINE_CUDA_CUDA_UTIL_H_

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace dcp::testing {

// cudaMalloc'd bytes, freed on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  void Upload(const std::string& host) const {
    if (cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice) != cudaSuccess) {
      throw std::runtime_error("upload failed");
    }
  }
  std::string Download() const {
    std::string host(bytes_, '\0');
    if (cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost) != cudaSuccess) {
      throw std::runtime_error("download failed");
    }
    return host;
  }
  void Fill(int byte) const { cudaMemset(ptr_, byte, bytes_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

}  // namespace dcp::testing

#endif  // DCP_TESTS_ENGINE_CUDA_CUDA_UTIL_H_
