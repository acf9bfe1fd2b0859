// Copyright (c) dcp authors.
//
// Payloads for communicator tests (in-process and MPI): bytes that say who
// sent them to whom in which round, of uneven sizes (empty included), so a
// collective that delivers the wrong message, or the right one truncated, is
// caught.

#ifndef DCP_TESTS_ENGINE_COORD_COLLECTIVE_PAYLOADS_H_
#define DCP_TESTS_ENGINE_COORD_COLLECTIVE_PAYLOADS_H_

#include <cstddef>
#include <string>
#include <vector>

namespace dcp::testing {

// `size` bytes derived from (from, to, round).
inline std::string Payload(int from, int to, int round, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(from * 31 + to * 7 + round * 3 + static_cast<int>(i));
  return s;
}

// 0..78 bytes; 0 for (0, 0).
inline size_t SizeFor(int from, int to) { return static_cast<size_t>((from * 5 + to * 3) % 7) * 13; }

// {f(0), ..., f(n-1)}: what a collective should have delivered.
template <typename F>
std::vector<std::string> Expected(int n, F f) {
  std::vector<std::string> v;
  for (int r = 0; r < n; ++r) v.push_back(f(r));
  return v;
}

}  // namespace dcp::testing

#endif  // DCP_TESTS_ENGINE_COORD_COLLECTIVE_PAYLOADS_H_
