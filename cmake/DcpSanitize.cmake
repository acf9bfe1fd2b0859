# Sanitizer and fuzzer builds (issue 15). Both apply to every target of the build,
# so that the libraries the tests and fuzzers link are instrumented too.
#   -DDCP_SANITIZE=address,undefined   ASan + UBSan; any UBSan finding is fatal
#   -DDCP_SANITIZE=thread              TSan
#   -DDCP_FUZZ=ON                      libFuzzer targets in tests/fuzz (clang only);
#                                      combine with address,undefined
# Foreign libraries (RocksDB, MPI, LibTorch) are Debian's, not instrumented.
set(DCP_SANITIZE "" CACHE STRING "Sanitizers to build with: address,undefined or thread (empty: none)")
option(DCP_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

if(DCP_SANITIZE)
  if(NOT DCP_SANITIZE MATCHES "^(address|undefined|address,undefined|undefined,address|thread)$")
    message(FATAL_ERROR "DCP_SANITIZE='${DCP_SANITIZE}': use address,undefined or thread")
  endif()
  set(DCP_SANITIZE_FLAGS -fsanitize=${DCP_SANITIZE} -fno-omit-frame-pointer)
  if(DCP_SANITIZE MATCHES "undefined")
    # Every UBSan finding fails the test that hit it.
    list(APPEND DCP_SANITIZE_FLAGS -fno-sanitize-recover=all)
  endif()
  add_compile_options(${DCP_SANITIZE_FLAGS})
  add_link_options(${DCP_SANITIZE_FLAGS})
  message(STATUS "dcp: sanitizers: ${DCP_SANITIZE}")
endif()

if(DCP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "DCP_FUZZ needs clang (libFuzzer), e.g. -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  # Coverage instrumentation everywhere; -fsanitize=fuzzer (libFuzzer's main) only on
  # the fuzz targets themselves.
  add_compile_options(-fsanitize=fuzzer-no-link)
  message(STATUS "dcp: libFuzzer targets: ON")
endif()
