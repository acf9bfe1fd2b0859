// Copyright (c) dcp authors.
//
// Key mapping: how the tensors of a source checkpoint become the tensors of a
// dcp step (e.g. Hugging Face names -> Megatron-Core names), from a rules
// file applied on the way in.
//
// A rules file is JSON: {"rules": [rule, ...]}. The first rule whose `match`
// (an RE2 regular expression: linear time, no backreferences; matched against
// the whole name) matches
// a source tensor decides what becomes of it; `{N}` in a template is the
// match's N-th group ({0}: the whole name). Three kinds of rule:
//
//   {"match": R, "to": T}
//       rename: the tensor becomes T.
//   {"match": R, "split": {"axis": A, "into": [{"to": T1, "size": S1}, ...]}}
//       one source becomes several destinations, consecutive slices along
//       axis A (default 0) of the given sizes, which must add up to the
//       source's extent; without sizes, equal parts (e.g. a fused QKV).
//   {"match": R, "to": T, "concat": {"axis": A, "by": G, "order": [V1, ...]}}
//       the sources that map to the same T become one destination, their
//       slices along axis A (default 0) in the order of their group G's
//       values (e.g. gate and up -> a SwiGLU fc1). Every value in `order`
//       must come exactly once, and the sources must agree on dtype and on
//       every other axis.
//
// Sources that no rule matches are an error naming them, unless kept
// (keep_unmatched: under their own names). Two destinations of one name are
// an error. A rules file is checked as input: malformed rules are
// InvalidArgument naming the rule (its index) and what is wrong; RE2 bounds
// the time and memory of matching (an expression needing more than 8 MiB
// compiled is refused).

#ifndef DCP_ENGINE_INTEROP_KEY_MAPPING_H_
#define DCP_ENGINE_INTEROP_KEY_MAPPING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"

namespace dcp::interop {

// A source tensor as the mapping sees it.
struct SourceTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
};

// A destination tensor: slices of sources laid along `axis`. A slice is
// [source_begin, source_begin + length) of source `source` along `axis`,
// placed at dest_begin; the slices tile the destination's extent in order.
struct Destination {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  int axis = 0;
  struct Slice {
    size_t source = 0;  // index into the sources given to Apply
    int64_t source_begin = 0;
    int64_t length = 0;
    int64_t dest_begin = 0;
  };
  std::vector<Slice> slices;
};

class KeyMapping {
 public:
  // Parses a rules file's JSON (`path` names it in errors).
  static Result<KeyMapping> Parse(std::string_view json, const std::string& path);
  // Reads and parses a rules file.
  static Result<KeyMapping> Read(const std::string& path);
  // No rules: every source keeps its name (with keep_unmatched).
  KeyMapping();
  ~KeyMapping();
  KeyMapping(KeyMapping&&) noexcept;
  KeyMapping& operator=(KeyMapping&&) noexcept;

  // The destinations of `sources`, sorted by name. InvalidArgument naming the
  // tensors for unmatched sources (unless keep_unmatched), a split or concat
  // that does not fit, or two destinations of one name.
  Result<std::vector<Destination>> Apply(const std::vector<SourceTensor>& sources, bool keep_unmatched) const;

  size_t rules() const;

 private:
  struct Rule;
  std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace dcp::interop

#endif  // DCP_ENGINE_INTEROP_KEY_MAPPING_H_
