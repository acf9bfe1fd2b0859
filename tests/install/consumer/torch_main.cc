// dcp::torch through an installed dcp: the view of a LibTorch tensor.
#include <ATen/ATen.h>

#include <cstdio>

#include "dcp/torch.h"

int main() {
  const at::Tensor t = at::arange(6, at::kInt).reshape({2, 3});
  auto view = dcp::torch_adapter::ViewOf(t);
  if (!view.ok()) return std::puts(view.status().ToString().c_str()), 1;
  if (view->shape() != dcp::Shape{2, 3} || view->dtype() != dcp::DType::kInt32) return std::puts("wrong view"), 1;
  std::puts("consumer_torch OK");
  return 0;
}
