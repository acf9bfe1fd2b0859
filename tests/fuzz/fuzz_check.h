// Copyright (c) dcp authors.
//
// What the fuzz targets share: FUZZ_CHECK (an invariant every input must keep:
// a failure aborts, which libFuzzer and the replay runner report as a crash),
// and the input as a string_view.

#ifndef DCP_TESTS_FUZZ_FUZZ_CHECK_H_
#define DCP_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace dcp::fuzz {

inline std::string_view Bytes(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace dcp::fuzz

#endif  // DCP_TESTS_FUZZ_FUZZ_CHECK_H_
