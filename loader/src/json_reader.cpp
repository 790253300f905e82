#include "sipxdp/json_reader.h"

#include "sipxdp/policy.h"

#include <cstring>
#include <iterator>

namespace sipxdp {

using json = nlohmann::json;

namespace {

// An input iterator over the text that publishes how far nlohmann's lexer
// has read: SAX events carry no positions, but each one arrives just after
// its token was read, so the token can be found by looking back from there.
class CountingIt {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIt(const char* p, const char** read) : p_(p), read_(read) {}
  reference operator*() const { return *p_; }
  CountingIt& operator++() {
    *read_ = ++p_;
    return *this;
  }
  CountingIt operator++(int) {
    CountingIt t = *this;
    ++*this;
    return t;
  }
  bool operator==(const CountingIt& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIt& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  const char** read_;
};

bool number_char(char c) {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

}  // namespace

std::string line_col(const std::string& text, size_t off) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < off && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

std::string json_brief(const json& v, size_t max_chars) {
  std::string s;
  switch (v.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: {
      const std::string& str = v.get_ref<const std::string&>();
      if (str.size() <= max_chars) return json(str).dump();
      return json(str.substr(0, max_chars)).dump() + "...";
    }
    default: s = v.dump(); break;
  }
  if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
  return s;
}

size_t JsonPositions::find(const JsonPath& path, bool key) const {
  if (nodes_.empty()) return npos;
  uint32_t cur = 0;
  for (size_t d = 0; d < path.size(); ++d) {
    uint32_t child = nodes_[cur].first_child;
    if (auto* k = std::get_if<std::string>(&path[d])) {
      while (child != npos && (nodes_[child].key_off == npos || nodes_[child].key != *k)) child = nodes_[child].next;
    } else {
      size_t n = std::get<size_t>(path[d]);
      while (child != npos && n-- > 0) child = nodes_[child].next;
    }
    if (child == npos) return npos;
    cur = child;
  }
  const Node& n = nodes_[cur];
  if (key && !path.empty() && n.key_off != npos) return n.key_off;
  return n.value_off;
}

// Builds the DOM and the positions, and refuses what a policy must not hold.
class JsonSax {
 public:
  JsonSax(const std::string& text, const char** read, size_t max_depth)
      : text_(text), read_(read), max_depth_(max_depth) {}

  bool null() { return value(nullptr, read() - 4); }
  bool boolean(bool v) { return value(v, read() - (v ? 4 : 5)); }
  bool number_integer(json::number_integer_t v) { return value(v, number_start()); }
  bool number_unsigned(json::number_unsigned_t v) { return value(v, number_start()); }
  bool number_float(json::number_float_t v, const std::string&) { return value(v, number_start()); }
  bool string(std::string& v) { return value(std::move(v), string_start()); }
  bool binary(json::binary_t&) { return fail(read(), "binary values are not JSON"); }

  bool start_object(size_t) { return open(json::object(), read() - 1); }
  bool start_array(size_t) { return open(json::array(), read() - 1); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& k) {
    size_t at = string_start();
    json& obj = *stack_.back().value;
    if (obj.contains(k)) {
      return fail(at, "duplicate key \"" + k + "\" (first at " + line_col(text_, first_key_off(k)) + ")");
    }
    pending_key_ = std::move(k);
    pending_key_off_ = static_cast<uint32_t>(at);
    return true;
  }

  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    if (!error_.empty()) return false;
    std::string what = ex.what();
    if (ex.id == 406) {  // number overflow: point at the number
      size_t end = std::min(position, text_.size());
      size_t i = end;
      while (i > 0 && !number_char(text_[i - 1])) --i;
      while (i > 0 && number_char(text_[i - 1])) --i;
      error_off_ = i;
      auto q = what.find("number overflow");
      error_ = q == std::string::npos ? "number out of range" : "number out of range (" + what.substr(q) + ")";
      return false;
    }
    // "[json.exception.parse_error.101] parse error at line 3, column 13: syntax error ..."
    error_off_ = position > 0 ? position - 1 : 0;
    auto p = what.find("parse error");
    auto colon = what.find(": ", p == std::string::npos ? 0 : p);
    error_ = colon == std::string::npos ? what : what.substr(colon + 2);
    return false;
  }

  json take_root() { return std::move(root_); }
  JsonPositions take_positions() { return std::move(pos_); }
  const std::string& error() const { return error_; }
  size_t error_off() const { return error_off_; }

 private:
  struct Frame {
    json* value;
    uint32_t node;
  };

  size_t read() const { return static_cast<size_t>(*read_ - text_.data()); }

  // The lexer read one character past a number (unless the text ended there).
  size_t number_start() const {
    size_t i = read();
    if (i > 0 && !number_char(text_[i - 1])) --i;
    while (i > 0 && number_char(text_[i - 1])) --i;
    return i;
  }

  // The lexer stopped just after the closing quote: the opening one is the
  // last quote before it that no backslash escapes.
  size_t string_start() const {
    size_t close = read() - 1;
    for (size_t i = close; i-- > 0;) {
      if (text_[i] != '"') continue;
      size_t bs = 0;
      while (i > bs && text_[i - 1 - bs] == '\\') ++bs;
      if (bs % 2 == 0) return i;
    }
    return 0;
  }

  // Where key `k` of the innermost open object was written.
  size_t first_key_off(const std::string& k) const {
    const auto& nodes = pos_.nodes_;
    for (uint32_t c = nodes[stack_.back().node].first_child; c != JsonPositions::npos; c = nodes[c].next)
      if (nodes[c].key == k) return nodes[c].key_off;
    return 0;
  }

  uint32_t add_node(size_t off) {
    JsonPositions::Node n;
    n.value_off = static_cast<uint32_t>(off);
    if (!stack_.empty() && stack_.back().value->is_object()) {
      n.key_off = pending_key_off_;
      n.key = pending_key_;
    }
    uint32_t id = static_cast<uint32_t>(pos_.nodes_.size());
    pos_.nodes_.push_back(std::move(n));
    if (!stack_.empty()) {
      auto& parent = pos_.nodes_[stack_.back().node];
      if (parent.last_child == JsonPositions::npos)
        parent.first_child = id;
      else
        pos_.nodes_[parent.last_child].next = id;
      parent.last_child = id;
    }
    return id;
  }

  // Places a finished or just-opened value in its parent; returns it.
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back().value;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[pending_key_];
    slot = std::move(v);
    return &slot;
  }

  bool value(json&& v, size_t off) {
    add_node(off);
    place(std::move(v));
    return true;
  }

  bool open(json&& v, size_t off) {
    if (stack_.size() >= max_depth_) return fail(off, "nested deeper than " + std::to_string(max_depth_) + " levels");
    uint32_t node = add_node(off);
    json* where = place(std::move(v));
    stack_.push_back({where, node});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  bool fail(size_t off, std::string msg) {
    if (error_.empty()) {
      error_ = std::move(msg);
      error_off_ = off;
    }
    return false;
  }

  const std::string& text_;
  const char** read_;
  size_t max_depth_;
  json root_;
  JsonPositions pos_;
  std::vector<Frame> stack_;
  std::string pending_key_;
  uint32_t pending_key_off_ = JsonPositions::npos;
  std::string error_;
  size_t error_off_ = 0;
};

Result<JsonDoc> read_json(const std::string& text, const std::string& origin, size_t max_depth) {
  const char* read = text.data();
  JsonSax sax(text, &read, max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(CountingIt(text.data(), &read), CountingIt(text.data() + text.size(), &read), &sax,
                         json::input_format_t::json, /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::exception& e) {
    // sax_parse reports through the handler; anything thrown is a bug in a
    // corner we did not foresee, and still must not abort the program.
    return make_error(one_line(origin + ": invalid JSON: " + e.what()));
  }
  if (!ok || !sax.error().empty()) {
    std::string why = sax.error().empty() ? "unreadable" : sax.error();
    return make_error(one_line(origin + ":" + line_col(text, sax.error_off()) + ": invalid JSON: " + why));
  }
  JsonDoc d;
  d.root = sax.take_root();
  d.pos = sax.take_positions();
  return d;
}

}  // namespace sipxdp
