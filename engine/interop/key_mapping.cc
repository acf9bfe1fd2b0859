// Copyright (c) dcp authors.

#include "engine/interop/key_mapping.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include "engine/base/file.h"

namespace dcp::interop {
namespace {

using Json = nlohmann::json;

// RE2 (linear time, no recursion) compiles an expression into at most this
// much memory; a larger one is refused.
constexpr int64_t kMaxRegexMemory = 8 << 20;

// "a, b, c and 7 more": names for messages.
std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 10);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

// The highest {N} a template refers to (-1 if none); -2 if malformed.
int HighestGroup(const std::string& t) {
  int high = -1;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '{') continue;
    size_t j = i + 1;
    while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
    if (j == i + 1 || j >= t.size() || t[j] != '}' || j - i > 4) return -2;
    high = std::max(high, std::stoi(t.substr(i + 1, j - i - 1)));
    i = j;
  }
  return high;
}

// The match's groups: [0] the whole name, [k] group k (empty if it took no part).
using Groups = std::vector<re2::StringPiece>;

std::string Expand(const std::string& t, const Groups& m) {
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      const size_t j = t.find('}', i);
      const re2::StringPiece g = m[static_cast<size_t>(std::stoi(t.substr(i + 1, j - i - 1)))];
      out.append(g.data() != nullptr ? g.data() : "", g.size());
      i = j;
    } else {
      out += t[i];
    }
  }
  return out;
}

}  // namespace

struct KeyMapping::Rule {
  enum class Kind { kRename, kSplit, kConcat };
  size_t index = 0;
  std::string pattern;
  std::unique_ptr<RE2> re;
  Kind kind = Kind::kRename;
  std::string to;
  int axis = 0;
  struct Part {
    std::string to;
    int64_t size = -1;  // -1: equal parts
  };
  std::vector<Part> into;
  int by = 0;
  std::vector<std::string> order;

  std::string Name() const { return "rule " + std::to_string(index) + " ('" + pattern + "')"; }
};

KeyMapping::KeyMapping() = default;
KeyMapping::~KeyMapping() = default;
KeyMapping::KeyMapping(KeyMapping&&) noexcept = default;
KeyMapping& KeyMapping::operator=(KeyMapping&&) noexcept = default;
size_t KeyMapping::rules() const { return rules_.size(); }

Result<KeyMapping> KeyMapping::Read(const std::string& path) {
  DCP_ASSIGN_OR_RETURN(std::string text, base::ReadFile(path, 16 << 20));
  return Parse(text, path);
}

Result<KeyMapping> KeyMapping::Parse(std::string_view text, const std::string& path) {
  auto bad = [&](const std::string& what) { return Status::InvalidArgument("rules file '" + path + "': " + what); };
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return bad(std::string("not JSON (") + e.what() + ")");
  }
  auto list = doc.is_object() ? doc.find("rules") : doc.end();
  if (!doc.is_object() || list == doc.end() || !list->is_array()) return bad("expected {\"rules\": [...]}");
  KeyMapping mapping;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& j = (*list)[i];
    auto rule = std::make_unique<Rule>();
    rule->index = i;
    if (!j.is_object() || !j.contains("match") || !j["match"].is_string()) {
      return bad("rule " + std::to_string(i) + " has no \"match\" string");
    }
    rule->pattern = j["match"].get<std::string>();
    RE2::Options re_options;
    re_options.set_log_errors(false);
    re_options.set_max_mem(kMaxRegexMemory);
    rule->re = std::make_unique<RE2>(rule->pattern, re_options);
    if (!rule->re->ok()) {
      return bad(rule->Name() + ": not a regular expression (" + rule->re->error() + ")");
    }
    const int groups = rule->re->NumberOfCapturingGroups();
    auto check_template = [&](const Json& t, const char* field) -> Status {
      if (!t.is_string() || t.get<std::string>().empty()) {
        return bad(rule->Name() + ": \"" + field + "\" is not a non-empty string");
      }
      const int high = HighestGroup(t.get<std::string>());
      if (high == -2) return bad(rule->Name() + ": template '" + t.get<std::string>() + "' has a malformed {N}");
      if (high > groups) {
        return bad(rule->Name() + ": template '" + t.get<std::string>() + "' refers to group " +
                   std::to_string(high) + " but the expression has " + std::to_string(groups));
      }
      return Status::OK();
    };
    auto axis_of = [&](const Json& o) -> Result<int> {
      if (!o.contains("axis")) return 0;
      if (!o["axis"].is_number_unsigned() || o["axis"].get<uint64_t>() > 63) {
        return bad(rule->Name() + ": \"axis\" is not an axis number");
      }
      return static_cast<int>(o["axis"].get<uint64_t>());
    };
    if (j.contains("split")) {
      const Json& s = j["split"];
      rule->kind = Rule::Kind::kSplit;
      if (!s.is_object() || !s.contains("into") || !s["into"].is_array() || s["into"].empty()) {
        return bad(rule->Name() + ": \"split\" needs \"into\": [{\"to\": ...}, ...]");
      }
      DCP_ASSIGN_OR_RETURN(rule->axis, axis_of(s));
      size_t sized = 0;
      for (const Json& p : s["into"]) {
        if (!p.is_object() || !p.contains("to")) return bad(rule->Name() + ": a split part has no \"to\"");
        DCP_RETURN_IF_ERROR(check_template(p["to"], "to"));
        Rule::Part part;
        part.to = p["to"].get<std::string>();
        if (p.contains("size")) {
          if (!p["size"].is_number_unsigned() || p["size"].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
            return bad(rule->Name() + ": a split part's \"size\" is not a non-negative integer");
          }
          part.size = static_cast<int64_t>(p["size"].get<uint64_t>());
          ++sized;
        }
        rule->into.push_back(std::move(part));
      }
      if (sized != 0 && sized != rule->into.size()) {
        return bad(rule->Name() + ": give every split part a size, or none (equal parts)");
      }
    } else if (j.contains("concat")) {
      const Json& c = j["concat"];
      rule->kind = Rule::Kind::kConcat;
      if (!j.contains("to")) return bad(rule->Name() + ": a concat rule needs \"to\"");
      DCP_RETURN_IF_ERROR(check_template(j["to"], "to"));
      rule->to = j["to"].get<std::string>();
      if (!c.is_object() || !c.contains("by") || !c["by"].is_number_unsigned() || !c.contains("order") ||
          !c["order"].is_array() || c["order"].empty()) {
        return bad(rule->Name() + ": \"concat\" needs \"by\" (a group number) and \"order\" (its values)");
      }
      rule->by = static_cast<int>(std::min<uint64_t>(c["by"].get<uint64_t>(), 1000));
      if (rule->by < 1 || rule->by > groups) {
        return bad(rule->Name() + ": concat \"by\" is group " + std::to_string(rule->by) + " but the expression has " +
                   std::to_string(groups));
      }
      for (const Json& v : c["order"]) {
        if (!v.is_string()) return bad(rule->Name() + ": concat \"order\" holds a value that is not a string");
        if (std::find(rule->order.begin(), rule->order.end(), v.get<std::string>()) != rule->order.end()) {
          return bad(rule->Name() + ": concat \"order\" names '" + v.get<std::string>() + "' twice");
        }
        rule->order.push_back(v.get<std::string>());
      }
      DCP_ASSIGN_OR_RETURN(rule->axis, axis_of(c));
    } else {
      if (!j.contains("to")) return bad(rule->Name() + ": needs \"to\", \"split\" or \"concat\"");
      DCP_RETURN_IF_ERROR(check_template(j["to"], "to"));
      rule->to = j["to"].get<std::string>();
    }
    mapping.rules_.push_back(std::move(rule));
  }
  return mapping;
}

Result<std::vector<Destination>> KeyMapping::Apply(const std::vector<SourceTensor>& sources,
                                                   bool keep_unmatched) const {
  std::vector<Destination> out;
  std::vector<std::string> unmatched;
  // Concat destinations: name -> (rule, group value -> source).
  struct Gathered {
    const Rule* rule = nullptr;
    std::map<std::string, size_t> parts;
  };
  std::map<std::string, Gathered> concats;
  auto whole = [](size_t i, const SourceTensor& s, const std::string& name) {
    Destination d;
    d.name = name;
    d.dtype = s.dtype;
    d.shape = s.shape;
    d.slices.push_back({i, 0, s.shape.empty() ? 1 : s.shape[0], 0});
    return d;
  };
  for (size_t i = 0; i < sources.size(); ++i) {
    const SourceTensor& s = sources[i];
    const Rule* rule = nullptr;
    Groups m;
    for (const auto& r : rules_) {
      m.assign(static_cast<size_t>(r->re->NumberOfCapturingGroups()) + 1, re2::StringPiece());
      if (r->re->Match(s.name, 0, s.name.size(), RE2::ANCHOR_BOTH, m.data(), static_cast<int>(m.size()))) {
        rule = r.get();
        break;
      }
    }
    if (rule == nullptr) {
      if (keep_unmatched) out.push_back(whole(i, s, s.name));
      else unmatched.push_back(s.name);
      continue;
    }
    const std::string what = "tensor '" + s.name + "' (" + rule->Name() + ")";
    switch (rule->kind) {
      case Rule::Kind::kRename:
        out.push_back(whole(i, s, Expand(rule->to, m)));
        break;
      case Rule::Kind::kSplit: {
        if (rule->axis >= static_cast<int>(s.shape.size())) {
          return Status::InvalidArgument(what + ": cannot split axis " + std::to_string(rule->axis) + " of shape " +
                                         ShapeToString(s.shape));
        }
        const int64_t extent = s.shape[rule->axis];
        const int64_t parts = static_cast<int64_t>(rule->into.size());
        int64_t total = 0;
        for (const auto& p : rule->into) total += p.size < 0 ? 0 : p.size;
        const bool equal = rule->into[0].size < 0;
        if (equal ? extent % parts != 0 : total != extent) {
          return Status::InvalidArgument(what + ": axis " + std::to_string(rule->axis) + " of length " +
                                         std::to_string(extent) + " does not split into " +
                                         (equal ? std::to_string(parts) + " equal parts"
                                                : "parts of " + std::to_string(total) + " in all"));
        }
        int64_t at = 0;
        for (const auto& p : rule->into) {
          const int64_t n = equal ? extent / parts : p.size;
          Destination d;
          d.name = Expand(p.to, m);
          d.dtype = s.dtype;
          d.shape = s.shape;
          d.shape[rule->axis] = n;
          d.axis = rule->axis;
          d.slices.push_back({i, at, n, 0});
          at += n;
          out.push_back(std::move(d));
        }
        break;
      }
      case Rule::Kind::kConcat: {
        const std::string value(m[static_cast<size_t>(rule->by)].data() != nullptr ? m[static_cast<size_t>(rule->by)].data() : "",
                                m[static_cast<size_t>(rule->by)].size());
        if (std::find(rule->order.begin(), rule->order.end(), value) == rule->order.end()) {
          return Status::InvalidArgument(what + ": group " + std::to_string(rule->by) + " is '" + value +
                                         "', which the rule's concat order does not name");
        }
        Gathered& g = concats[Expand(rule->to, m)];
        if (g.rule != nullptr && g.rule != rule) {
          return Status::InvalidArgument(what + ": destination '" + Expand(rule->to, m) +
                                         "' is also the concat of another rule");
        }
        g.rule = rule;
        if (!g.parts.emplace(value, i).second) {
          return Status::InvalidArgument(what + ": destination '" + Expand(rule->to, m) + "' already has its '" +
                                         value + "' part from tensor '" + sources[g.parts[value]].name + "'");
        }
        break;
      }
    }
  }
  if (!unmatched.empty()) {
    return Status::InvalidArgument(std::to_string(unmatched.size()) + " tensor(s) match no rule: " +
                                   NameList(unmatched) + " (add rules, or keep them under their names)");
  }
  for (const auto& [name, g] : concats) {
    const Rule& rule = *g.rule;
    Destination d;
    d.name = name;
    d.axis = rule.axis;
    std::vector<std::string> missing;
    for (const std::string& v : rule.order) {
      auto it = g.parts.find(v);
      if (it == g.parts.end()) {
        missing.push_back(v);
        continue;
      }
      const SourceTensor& s = sources[it->second];
      const std::string what = "tensor '" + s.name + "' (part '" + v + "' of '" + name + "')";
      if (rule.axis >= static_cast<int>(s.shape.size())) {
        return Status::InvalidArgument(what + ": cannot concatenate along axis " + std::to_string(rule.axis) +
                                       " of shape " + ShapeToString(s.shape));
      }
      if (d.slices.empty()) {
        d.dtype = s.dtype;
        d.shape = s.shape;
        d.shape[rule.axis] = 0;
      } else {
        Shape other = s.shape, so_far = d.shape;
        other[rule.axis] = so_far[rule.axis] = 0;
        if (s.dtype != d.dtype || other != so_far) {
          return Status::InvalidArgument(what + ": dtype " + std::string(DTypeName(s.dtype)) + " shape " +
                                         ShapeToString(s.shape) + " does not fit the parts before it");
        }
      }
      d.slices.push_back({it->second, 0, s.shape[rule.axis], d.shape[rule.axis]});
      d.shape[rule.axis] += s.shape[rule.axis];
    }
    if (!missing.empty()) {
      return Status::InvalidArgument("concat destination '" + name + "' (" + rule.Name() +
                                     ") lacks its parts " + NameList(missing));
    }
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const Destination& a, const Destination& b) { return a.name < b.name; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].name == out[i - 1].name) {
      return Status::InvalidArgument("two tensors would both become '" + out[i].name + "' (from '" +
                                     sources[out[i - 1].slices[0].source].name + "' and '" +
                                     sources[out[i].slices[0].source].name + "')");
    }
  }
  return out;
}

}  // namespace dcp::interop
