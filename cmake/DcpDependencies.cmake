# Every foreign package dcp uses, found once. See shared toolchain notes for
# the pitfalls (FlatBuffers config name, RocksDB leaking GFLAGS settings).

find_package(Threads REQUIRED)
find_package(RocksDB 7 CONFIG REQUIRED)      # RocksDB::rocksdb-shared
find_package(FlatBuffers CONFIG REQUIRED)    # upper-case config name; flatbuffers::flatc
find_package(MPI REQUIRED COMPONENTS CXX)    # MPI::MPI_CXX, MPIEXEC_EXECUTABLE
find_package(PkgConfig REQUIRED)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)        # PkgConfig::LZ4
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)  # headers (used inline)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)            # PkgConfig::RE2 (engine/interop's rules)

if(DCP_BUILD_TESTS)
  find_package(Catch2 2 CONFIG REQUIRED)     # Catch2 v2: <catch2/catch.hpp>
  include(Catch)
endif()
# CLI11: dcp-inspect's command line (engine/inspect/cli.cc), the demo, benchmarks.
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  # Debian's libcli11-dev ships the single header without a CMake config.
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()
# engine/inspect renders tables (fmt) and JSON (nlohmann-json).
find_package(nlohmann_json 3 CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)

# Optional features, auto-detected.
set(DCP_CUDA_ENABLED OFF)
if(DCP_WITH_CUDA)
  find_package(CUDAToolkit QUIET)  # the image's CUDA 13 at /usr/local/cuda (nvcc on PATH)
  if(CUDAToolkit_FOUND)
    set(DCP_CUDA_ENABLED ON)
  endif()
endif()
message(STATUS "dcp: CUDA device memory support: ${DCP_CUDA_ENABLED}")

set(DCP_TORCH_ENABLED OFF)
if(DCP_WITH_TORCH)
  # RocksDB's config leaks GFLAGS_USE_TARGET_NAMESPACE=ON, which breaks
  # Caffe2's gflags lookup ("IMPORTED_LOCATION not set for target gflags").
  set(GFLAGS_USE_TARGET_NAMESPACE OFF)
  find_package(Torch QUIET)
  if(Torch_FOUND)
    set(DCP_TORCH_ENABLED ON)
  endif()
endif()
message(STATUS "dcp: LibTorch adapter: ${DCP_TORCH_ENABLED}")
