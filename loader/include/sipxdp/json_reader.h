// Strict JSON for policies: every value keeps its place in the text, duplicate
// keys are errors, nesting depth is bounded, and no input can abort the parse
// (numbers out of range, deep nesting and stray bytes are all errors).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "sipxdp/result.h"

namespace sipxdp {

// A step into a JSON value: an object key or an array index.
using JsonPathElem = std::variant<std::string, size_t>;
using JsonPath = std::vector<JsonPathElem>;

// Where each value of a document starts, kept beside nlohmann's DOM (which
// keeps none). Nodes are in document order; children of a node are linked.
class JsonPositions {
 public:
  static constexpr uint32_t npos = std::numeric_limits<uint32_t>::max();

  // Offset of the value at `path` (of its key, when `key` is set and the last
  // step is an object key); npos when the path does not exist.
  size_t find(const JsonPath& path, bool key = false) const;

 private:
  friend class JsonSax;
  struct Node {
    uint32_t key_off = npos;  // the key's opening quote (object members)
    uint32_t value_off = 0;   // the value's first character
    uint32_t first_child = npos, last_child = npos, next = npos;
    std::string key;
  };
  std::vector<Node> nodes_;
};

struct JsonDoc {
  nlohmann::json root;
  JsonPositions pos;
};

inline constexpr size_t kJsonMaxDepth = 64;

// Parses `text`; errors read "origin:line:col: invalid JSON: ...".
Result<JsonDoc> read_json(const std::string& text, const std::string& origin, size_t max_depth = kJsonMaxDepth);

// "line:col" (1-based) of a byte offset.
std::string line_col(const std::string& text, size_t off);

// A short, single-line rendering of a value for error messages: never the
// whole of a large or deep value.
std::string json_brief(const nlohmann::json& v, size_t max_chars = 40);

}  // namespace sipxdp
