// Saves and reads back one tensor through an installed dcp.
#include <cstdio>
#include <vector>

#include "dcp/dcp.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto store = dcp::Store::Open(argv[1], nullptr);
  if (!store.ok()) return std::puts(store.status().ToString().c_str()), 1;
  std::vector<int32_t> v = {1, 2, 3, 4, 5, 6};
  dcp::StateDict sd;
  sd.Add("v", dcp::ShardedTensor::Whole("v", dcp::TensorView(v.data(), dcp::DType::kInt32, {2, 3})));
  if (auto s = (*store)->Put(1, sd); !s.ok()) return std::puts(s.ToString().c_str()), 1;
  std::vector<int32_t> out(3);
  auto s = (*store)->Read(1, "v", dcp::Box{{1, 0}, {1, 3}}, dcp::TensorView(out.data(), dcp::DType::kInt32, {1, 3}));
  if (!s.ok() || out != std::vector<int32_t>{4, 5, 6}) return std::puts(s.ToString().c_str()), 1;
  std::puts("consumer OK");
  return 0;
}
