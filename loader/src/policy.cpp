#include "sipxdp/policy.h"

#include "sipxdp/abi.h"
#include "sipxdp/fd.h"
#include "sipxdp/json_reader.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

namespace sipxdp {

using json = nlohmann::json;

namespace {

using Path = JsonPath;

// Raised inside the parser, turned into an Error with a position at the top.
struct PolicyError {
  Path path;
  bool at_key;
  std::string rule;  // empty outside a rule
  std::string msg;
  std::string kind = "rule";  // what `rule` names: "rule", "rate limit"
};

class Parser {
 public:
  Policy run(const json& doc) {
    Policy p;
    if (!doc.is_object()) fail({}, "the policy must be a JSON object");
    static const std::set<std::string> known = {"version", "default_action", "description", "rules",
                                                "sip",     "dscp",           "stateful",    "flow_timeouts",
                                                "events",  "flow_table_size"};
    for (auto& [k, v] : doc.items()) {
      if (!known.count(k)) fail({k}, "unknown field \"" + k + "\"", true);
    }
    if (!doc.contains("version")) fail({}, "missing \"version\" (use 1)");
    if (!doc["version"].is_number_integer() || doc["version"].get<int64_t>() != 1)
      fail({"version"}, "unsupported version " + json_brief(doc["version"]) + " (this sipxdp reads version 1)");
    if (!doc.contains("default_action")) fail({}, "missing \"default_action\" (\"allow\" or \"drop\")");
    p.default_action = action(doc["default_action"], {"default_action"});
    if (doc.contains("description")) {
      if (!doc["description"].is_string()) fail({"description"}, "\"description\" must be a string");
      p.description = doc["description"].get<std::string>();
    }
    p.sip.patterns = SipConfig::default_patterns();
    if (doc.contains("sip")) sip(doc["sip"], p.sip);
    if (doc.contains("rules")) {
      const json& rules = doc["rules"];
      if (!rules.is_array()) fail({"rules"}, "\"rules\" must be an array");
      if (rules.size() > SIPXDP_MAX_RULES)
        fail({"rules"},
             "too many rules: " + std::to_string(rules.size()) + " (at most " + std::to_string(SIPXDP_MAX_RULES) + ")");
      std::set<std::string> names;
      for (size_t i = 0; i < rules.size(); ++i) {
        Rule r = rule(rules[i], {"rules", i});
        if (!names.insert(r.name).second)
          fail({"rules", i, "name"}, "duplicate rule name (rule names must be unique)", false, r.name);
        p.rules.push_back(std::move(r));
      }
    }
    if (doc.contains("dscp")) {
      const json& ds = doc["dscp"];
      if (!ds.is_array()) fail({"dscp"}, "\"dscp\" must be an array of DSCP rules");
      if (ds.size() > SIPXDP_MAX_DSCP_RULES)
        fail({"dscp"}, "too many DSCP rules: " + std::to_string(ds.size()) + " (at most " +
                           std::to_string(SIPXDP_MAX_DSCP_RULES) + ")");
      std::set<std::string> names;
      for (size_t i = 0; i < ds.size(); ++i) {
        DscpRule r = dscp_rule(ds[i], {"dscp", i});
        if (!names.insert(r.name).second)
          fail({"dscp", i, "name"}, "duplicate DSCP rule name (DSCP rule names must be unique)", false, r.name);
        p.dscp.push_back(std::move(r));
      }
      cur_rule_.clear();
    }
    flows(doc, p.flows);
    if (doc.contains("events")) events(doc["events"], p.events);
    // Without a "sip" block, the default patterns matter only to rules that inspect.
    if (!doc.contains("sip") && std::none_of(p.rules.begin(), p.rules.end(), [](auto& r) { return r.inspect_sip; }))
      p.sip.patterns.clear();
    return p;
  }

 private:
  [[noreturn]] void fail(Path path, std::string msg, bool at_key = false, std::string rule = {}) {
    throw PolicyError{std::move(path), at_key, rule.empty() ? cur_rule_ : rule, std::move(msg), cur_kind_};
  }

 public:
  std::vector<PolicyError> warnings;

 private:
  void warn(Path path, std::string msg) { warnings.push_back({std::move(path), false, cur_rule_, std::move(msg)}); }

  Action action(const json& v, const Path& at) {
    if (v.is_string()) {
      std::string s = v.get<std::string>();
      if (s == "allow") return Action::allow;
      if (s == "drop") return Action::drop;
    }
    fail(at, "action must be \"allow\" or \"drop\", not " + json_brief(v));
  }

  // `at` with one more key.
  static Path under(Path at, const std::string& k) {
    at.push_back(k);
    return at;
  }

  void sip(const json& v, SipConfig& out) {
    const Path at = {"sip"};
    auto sub = [&](const std::string& k) { return under(at, k); };
    if (!v.is_object()) fail(at, "\"sip\" must be a JSON object");
    static const std::set<std::string> known = {
        "scanner_patterns", "ignore_case",        "ban_seconds", "trusted",       "match",        "fragments",
        "rate_limits",      "rate_limit_sources", "ipv6_prefix", "auth_failures", "learned_trust"};
    for (auto& [k, x] : v.items())
      if (!known.count(k)) fail(sub(k), "sip: unknown field \"" + k + "\"", true);
    if (v.contains("scanner_patterns")) {
      const json& ps = v["scanner_patterns"];
      if (!ps.is_array()) fail(sub("scanner_patterns"), "sip.scanner_patterns must be a list of strings");
      if (ps.size() > SIPXDP_MAX_PATTERNS)
        fail(sub("scanner_patterns"), "sip.scanner_patterns: " + std::to_string(ps.size()) + " patterns, at most " +
                                          std::to_string(SIPXDP_MAX_PATTERNS));
      out.patterns.clear();
      std::set<std::string> seen;
      for (size_t i = 0; i < ps.size(); ++i) {
        Path p = sub("scanner_patterns");
        p.push_back(i);
        if (!ps[i].is_string()) fail(p, "sip.scanner_patterns: a pattern must be a string, not " + json_brief(ps[i]));
        std::string pat = ps[i].get<std::string>();
        if (pat.size() < SIPXDP_MIN_PATTERN_LEN || pat.size() > SIPXDP_MAX_PATTERN_LEN)
          fail(p, "sip.scanner_patterns: \"" + pat + "\" is " + std::to_string(pat.size()) + " bytes; patterns are " +
                      std::to_string(SIPXDP_MIN_PATTERN_LEN) + "-" + std::to_string(SIPXDP_MAX_PATTERN_LEN) + " bytes");
        if (!seen.insert(pat).second) fail(p, "sip.scanner_patterns: \"" + pat + "\" is listed twice");
        out.patterns.push_back(pat);
      }
    }
    flag(v, at, "ignore_case", out.ignore_case);
    if (out.ignore_case) {
      std::set<std::string> folded;
      for (size_t i = 0; i < out.patterns.size(); ++i) {
        std::string f = out.patterns[i];
        for (auto& ch : f) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        Path p = sub("scanner_patterns");
        p.push_back(i);
        if (!folded.insert(f).second)
          fail(p, "sip.scanner_patterns: \"" + out.patterns[i] + "\" repeats another pattern when case is ignored");
      }
    }
    whole(v, at, "ban_seconds", 0, 365 * 86400, "seconds", out.ban_seconds);
    if (v.contains("trusted")) {
      const json& t = v["trusted"];
      if (!t.is_array()) fail(sub("trusted"), "sip.trusted must be a list of CIDRs");
      for (size_t i = 0; i < t.size(); ++i) {
        Path p = sub("trusted");
        p.push_back(i);
        out.trusted.push_back(cidr(t[i], p));
      }
    }
    if (v.contains("match")) {
      const json& m = v["match"];
      if (m == "payload")
        out.match = SipMatch::payload;
      else if (m == "headers")
        out.match = SipMatch::headers;
      else
        fail(sub("match"), "sip.match must be \"payload\" or \"headers\", not " + json_brief(m));
    }
    if (v.contains("fragments")) {
      const json& f = v["fragments"];
      if (f == "inspect")
        out.fragments = SipFragments::inspect;
      else if (f == "drop")
        out.fragments = SipFragments::drop;
      else
        fail(sub("fragments"), "sip.fragments must be \"inspect\" or \"drop\", not " + json_brief(f));
    }
    whole(v, at, "ipv6_prefix", 32, 128, "bits", out.ipv6_prefix);
    if (v.contains("rate_limit_sources")) {
      uint32_t n = 0;
      whole(v, at, "rate_limit_sources", 1024, 1 << 24, "sources", n);
      out.rate_limit_sources = n;
    }
    if (v.contains("rate_limits")) rate_limits(v["rate_limits"], sub("rate_limits"), out.rate_limits);
    if (v.contains("auth_failures")) auth_failures(v["auth_failures"], sub("auth_failures"), out.auth_failures);
    if (v.contains("learned_trust")) {
      const json& t = v["learned_trust"];
      const Path tat = sub("learned_trust");
      if (!t.is_object()) fail(tat, "sip.learned_trust must be a JSON object like {\"enabled\": true}");
      known_fields(t, tat, {"enabled", "max_seconds"});
      flag(t, tat, "enabled", out.learned_trust.enabled);
      whole(t, tat, "max_seconds", 60, 7 * 86400, "seconds", out.learned_trust.max_seconds);
    }
    pattern_warnings(out);
  }

  // "a.b.c" for a path of object keys.
  static std::string dotted(const Path& at) {
    std::string s;
    for (auto& e : at) {
      if (auto* k = std::get_if<std::string>(&e))
        s += (s.empty() ? "" : ".") + *k;
      else
        s += "[" + std::to_string(std::get<size_t>(e)) + "]";
    }
    return s;
  }

  // Object `v` (at `at`) holds only `names`.
  void known_fields(const json& v, const Path& at, const std::set<std::string>& names) {
    std::string list;
    for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
    for (auto& [k, x] : v.items())
      if (!names.count(k)) fail(under(at, k), dotted(at) + ": unknown field \"" + k + "\" (" + list + ")", true);
  }

  // v[k], when given, a whole number from lo to hi.
  void whole(const json& v, const Path& at, const char* k, int64_t lo, int64_t hi, const char* what, uint32_t& dst) {
    if (!v.contains(k)) return;
    const json& n = v[k];
    if (!n.is_number_integer() || n.get<int64_t>() < lo || n.get<int64_t>() > hi)
      fail(under(at, k), dotted(under(at, k)) + " must be a whole number of " + what + " from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
    dst = static_cast<uint32_t>(n.get<int64_t>());
  }

  void flag(const json& v, const Path& at, const char* k, bool& dst) {
    if (!v.contains(k)) return;
    if (!v[k].is_boolean()) fail(under(at, k), dotted(under(at, k)) + " must be true or false");
    dst = v[k].get<bool>();
  }

  void rate_limits(const json& v, const Path& at, std::vector<RateLimit>& out) {
    if (!v.is_array()) fail(at, "sip.rate_limits must be a list of rate limits");
    if (v.size() > SIPXDP_MAX_RATE_LIMITS)
      fail(at, "sip.rate_limits: " + std::to_string(v.size()) + " limits, at most " +
                   std::to_string(SIPXDP_MAX_RATE_LIMITS));
    std::set<std::string> names;
    for (size_t i = 0; i < v.size(); ++i) {
      Path lat = at;
      lat.push_back(i);
      const json& l = v[i];
      if (!l.is_object())
        fail(lat,
             "a rate limit must be a JSON object like {\"name\": \"register-flood\", \"methods\": "
             "[\"REGISTER\"], \"requests\": 16, \"per_seconds\": 2}");
      RateLimit r;
      cur_kind_ = "rate limit";
      cur_rule_.clear();
      if (l.contains("name") && l["name"].is_string()) cur_rule_ = l["name"].get<std::string>();
      known_fields(l, lat, {"name", "methods", "requests", "per_seconds", "ban_seconds", "comment"});
      if (!l.contains("name") || !l["name"].is_string() || l["name"].get<std::string>().empty())
        fail(lat, "a rate limit needs a \"name\" (a non-empty string)");
      r.name = l["name"].get<std::string>();
      for (char c : r.name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
          fail(under(lat, "name"), "rate limit names use letters, digits, '-', '_' and '.' only", false, r.name);
      if (!names.insert(r.name).second) fail(under(lat, "name"), "duplicate rate limit name", false, r.name);
      cur_rule_ = r.name;
      if (!l.contains("methods")) fail(lat, "a rate limit needs \"methods\" (e.g. [\"REGISTER\"], or [\"*\"])");
      const json& ms = l["methods"];
      if (!ms.is_array() || ms.empty())
        fail(under(lat, "methods"), "\"methods\" must be a non-empty list of SIP methods, or [\"*\"]");
      for (size_t k = 0; k < ms.size(); ++k) {
        Path mat = under(lat, "methods");
        mat.push_back(k);
        if (!ms[k].is_string()) fail(mat, "a method must be a string, not " + json_brief(ms[k]));
        std::string m = ms[k].get<std::string>();
        uint32_t bit = 0;
        if (m == "*") {
          bit = (1u << SIPXDP_M_NUM) - 1;
        } else {
          for (uint32_t b = 0; b < SIPXDP_M_NUM; ++b)
            if (m == sip_method_name(b)) bit = 1u << b;
          if (!bit)
            fail(mat, "unknown SIP method \"" + one_line(m) +
                          "\" (INVITE, ACK, BYE, CANCEL, REGISTER, OPTIONS, SUBSCRIBE, NOTIFY, PUBLISH, MESSAGE, "
                          "INFO, PRACK, UPDATE, REFER, OTHER, or *; methods are upper case)");
        }
        if (r.methods & bit) fail(mat, "method \"" + m + "\" is listed twice");
        r.methods |= bit;
        r.method_names.push_back(m);
      }
      if (!l.contains("requests")) fail(lat, "a rate limit needs \"requests\"");
      if (!l.contains("per_seconds")) fail(lat, "a rate limit needs \"per_seconds\"");
      whole(l, lat, "requests", 1, 1000000, "requests", r.requests);
      whole(l, lat, "per_seconds", 1, 86400, "seconds", r.per_seconds);
      whole(l, lat, "ban_seconds", 0, 365 * 86400, "seconds", r.ban_seconds);
      if (l.contains("comment") && !l["comment"].is_string())
        fail(under(lat, "comment"), "\"comment\" must be a string");
      out.push_back(std::move(r));
    }
    cur_rule_.clear();
    cur_kind_ = "rule";
  }

  void auth_failures(const json& v, const Path& at, AuthFailures& out) {
    if (!v.is_object())
      fail(at,
           "sip.auth_failures must be a JSON object like {\"max\": 10, \"window_seconds\": 60, "
           "\"ban_seconds\": 600}");
    known_fields(v, at,
                 {"enabled", "max", "window_seconds", "ban_seconds", "escalate", "max_ban_seconds", "responses"});
    out.enabled = true;
    flag(v, at, "enabled", out.enabled);
    whole(v, at, "max", 1, 100000, "responses", out.max);
    whole(v, at, "window_seconds", 1, 86400, "seconds", out.window_seconds);
    whole(v, at, "ban_seconds", 1, 365 * 86400, "seconds", out.ban_seconds);
    flag(v, at, "escalate", out.escalate);
    whole(v, at, "max_ban_seconds", 1, 365 * 86400, "seconds", out.max_ban_seconds);
    if (out.max_ban_seconds < out.ban_seconds)
      fail(under(at, v.contains("max_ban_seconds") ? "max_ban_seconds" : "ban_seconds"),
           "sip.auth_failures.max_ban_seconds (" + std::to_string(out.max_ban_seconds) +
               ") is shorter than ban_seconds (" + std::to_string(out.ban_seconds) + ")");
    if (v.contains("responses")) {
      const json& rs = v["responses"];
      Path rat = under(at, "responses");
      if (!rs.is_array() || rs.empty() || rs.size() > SIPXDP_MAX_AUTH_CODES)
        fail(rat, "sip.auth_failures.responses must be a list of 1 to " + std::to_string(SIPXDP_MAX_AUTH_CODES) +
                      " SIP response codes (e.g. [401, 403, 407])");
      out.responses.clear();
      for (size_t i = 0; i < rs.size(); ++i) {
        Path cat = rat;
        cat.push_back(i);
        if (!rs[i].is_number_integer() || rs[i].get<int64_t>() < 300 || rs[i].get<int64_t>() > 699)
          fail(cat,
               "sip.auth_failures.responses: a response code must be a number from 300 to 699 (2xx responses "
               "clear failures), not " +
                   json_brief(rs[i]));
        auto c = static_cast<uint16_t>(rs[i].get<int64_t>());
        if (std::find(out.responses.begin(), out.responses.end(), c) != out.responses.end())
          fail(cat, "response " + std::to_string(c) + " is listed twice");
        out.responses.push_back(c);
      }
    }
  }

  // Patterns that are valid but likely to drop legitimate traffic, or never match.
  void pattern_warnings(const SipConfig& sip) {
    static const std::set<std::string> words = {
        "accept",  "account", "admin",   "agent",    "allow",   "audio",  "auth",    "call",    "client",
        "contact", "content", "data",    "device",   "expires", "from",   "guest",   "invite",  "message",
        "network", "notify",  "options", "password", "phone",   "proxy",  "public",  "realm",   "register",
        "request", "route",   "server",  "service",  "session", "status", "subject", "support", "system",
        "test",    "unknown", "user",    "video",    "voice",   "voip",   "agent"};
    for (size_t i = 0; i < sip.patterns.size(); ++i) {
      const std::string& pat = sip.patterns[i];
      Path at = {"sip", "scanner_patterns", i};
      std::string q = escape_bytes(pat);
      if (pat.size() < 5)
        warn(at, "pattern \"" + q + "\" is " + std::to_string(pat.size()) +
                     " bytes: a pattern this short is likely to occur in legitimate SIP messages");
      std::string folded = pat;
      for (auto& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (sip.ignore_case && words.count(folded))
        warn(at, "pattern \"" + q + "\" is a common word: with ignore_case it will match legitimate messages");
      if (std::any_of(pat.begin(), pat.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        warn(at, "pattern \"" + q + "\" has non-ASCII bytes (ignore_case folds ASCII letters only)");
      if (pat.find_first_of("\r\n") != std::string::npos)
        warn(at, "pattern \"" + q + "\" contains CR or LF" +
                     std::string(sip.match == SipMatch::headers
                                     ? ": in headers mode lines are searched one at a time, so it can never match"
                                     : ": it can only match across a line break"));
    }
  }

  Rule rule(const json& v, Path at) {
    cur_rule_.clear();
    if (!v.is_object()) fail(at, "a rule must be a JSON object");
    static const std::set<std::string> known = {"name", "proto", "dport",  "sport",   "icmp_type",
                                                "src",  "dst",   "action", "comment", "inspect_sip"};
    Rule r;
    if (v.contains("name") && v["name"].is_string()) cur_rule_ = v["name"].get<std::string>();
    for (auto& [k, x] : v.items()) {
      Path p = at;
      p.push_back(k);
      if (!known.count(k)) fail(p, "unknown field \"" + k + "\"", true);
    }
    auto sub = [&](const char* k) {
      Path p = at;
      p.push_back(std::string(k));
      return p;
    };
    if (!v.contains("name")) fail(at, "rule #" + std::to_string(std::get<size_t>(at[1]) + 1) + " has no \"name\"");
    r.name = name(v["name"], sub("name"));
    if (!v.contains("action")) fail(at, "missing \"action\" (\"allow\" or \"drop\")");
    r.action = action(v["action"], sub("action"));
    if (v.contains("comment")) {
      if (!v["comment"].is_string()) fail(sub("comment"), "\"comment\" must be a string");
      r.comment = v["comment"].get<std::string>();
    }
    bool any_proto = true;
    if (v.contains("proto")) protos(v["proto"], sub("proto"), r, any_proto);
    auto only = [&](std::initializer_list<ProtoKind> allowed) {
      if (any_proto || !r.other_protos.empty()) return false;
      return std::all_of(r.protos.begin(), r.protos.end(),
                         [&](ProtoKind k) { return std::find(allowed.begin(), allowed.end(), k) != allowed.end(); });
    };
    for (const char* f : {"dport", "sport"}) {
      if (!v.contains(f)) continue;
      if (!only({ProtoKind::tcp, ProtoKind::udp}))
        fail(sub(f), std::string("\"") + f + "\" needs \"proto\" tcp or udp (or a list of them)");
      (std::strcmp(f, "dport") == 0 ? r.dport : r.sport) = ports(v[f], sub(f), 65535, "port");
    }
    if (v.contains("icmp_type")) {
      if (!only({ProtoKind::icmp, ProtoKind::icmpv6}))
        fail(sub("icmp_type"), "\"icmp_type\" needs \"proto\" icmp or icmpv6");
      r.icmp_type = ports(v["icmp_type"], sub("icmp_type"), 255, "ICMP type");
    }
    if (v.contains("inspect_sip")) {
      if (!v["inspect_sip"].is_boolean()) fail(sub("inspect_sip"), "\"inspect_sip\" must be true or false");
      r.inspect_sip = v["inspect_sip"].get<bool>();
      if (r.inspect_sip && !only({ProtoKind::tcp, ProtoKind::udp}))
        fail(sub("inspect_sip"), "\"inspect_sip\" needs \"proto\" udp or tcp (or a list of them)");
    }
    for (const char* f : {"src", "dst"})
      if (v.contains(f)) (std::strcmp(f, "src") == 0 ? r.src : r.dst) = cidrs(v[f], sub(f), f);
    return r;
  }

  void flows(const json& doc, FlowConfig& out) {
    if (doc.contains("stateful")) {
      if (!doc["stateful"].is_boolean()) fail({"stateful"}, "\"stateful\" must be true or false");
      out.stateful = doc["stateful"].get<bool>();
    }
    if (doc.contains("flow_timeouts")) {
      const json& t = doc["flow_timeouts"];
      if (!t.is_object())
        fail({"flow_timeouts"}, "\"flow_timeouts\" must be an object like {\"udp\": 60, \"tcp\": 600}");
      static const char* const kinds[] = {"tcp", "udp", "icmp"};
      for (auto& [key, x] : t.items()) {
        const std::string& k = key;  // a structured binding cannot be captured before C++20 in clang 14
        Path at = {"flow_timeouts", k};
        auto it = std::find_if(std::begin(kinds), std::end(kinds), [&](const char* n) { return k == n; });
        if (it == std::end(kinds)) fail(at, "flow_timeouts: unknown protocol \"" + k + "\" (tcp, udp, icmp)", true);
        whole(t, {"flow_timeouts"}, k.c_str(), 1, 7 * 86400, "seconds", out.timeout_s[it - std::begin(kinds)]);
      }
    }
    if (doc.contains("flow_table_size")) {
      uint32_t n = 0;
      whole(doc, {}, "flow_table_size", 1024, 1 << 24, "flows", n);
      out.table_size = n;
    }
  }

  void events(const json& v, EventsConfig& out) {
    const Path at = {"events"};
    auto sub = [&](const std::string& k) { return under(at, k); };
    if (!v.is_object()) fail(at, "\"events\" must be a JSON object like {\"drops\": true, \"rate\": 10}");
    static const std::set<std::string> known = {"drops", "rate", "burst", "snaplen"};
    for (auto& [k, x] : v.items())
      if (!known.count(k)) fail(sub(k), "events: unknown field \"" + k + "\" (drops, rate, burst, snaplen)", true);
    flag(v, at, "drops", out.drops);
    whole(v, at, "rate", 1, 100000, "events per second", out.rate);
    whole(v, at, "burst", 1, 100000, "events", out.burst);
    whole(v, at, "snaplen", SIPXDP_EVENT_SNAP_MIN, SIPXDP_EVENT_SNAP_MAX, "bytes", out.snaplen);
  }

  DscpRule dscp_rule(const json& v, Path at) {
    cur_rule_.clear();
    if (!v.is_object()) fail(at, "a DSCP rule must be a JSON object");
    static const std::set<std::string> known = {"name", "proto", "sport", "dport", "dst", "class", "comment"};
    DscpRule r;
    if (v.contains("name") && v["name"].is_string()) cur_rule_ = v["name"].get<std::string>();
    auto sub = [&](const char* k) {
      Path p = at;
      p.push_back(std::string(k));
      return p;
    };
    for (auto& [k, x] : v.items()) {
      Path p = at;
      p.push_back(k);
      if (!known.count(k)) fail(p, "unknown field \"" + k + "\" in a DSCP rule", true);
    }
    if (!v.contains("name")) fail(at, "DSCP rule #" + std::to_string(std::get<size_t>(at[1]) + 1) + " has no \"name\"");
    r.name = name(v["name"], sub("name"));
    if (!v.contains("class")) fail(at, "missing \"class\" (cs0-cs7, af11-af43, ef, va, le, or 0-63)");
    const json& c = v["class"];
    std::optional<uint8_t> dscp;
    if (c.is_string()) {
      r.class_name = c.get<std::string>();
      dscp = parse_dscp_class(r.class_name);
    } else if (c.is_number_integer() && c.get<int64_t>() >= 0 && c.get<int64_t>() <= 63) {
      r.class_name = std::to_string(c.get<int64_t>());
      dscp = static_cast<uint8_t>(c.get<int64_t>());
    }
    if (!dscp) fail(sub("class"), "unknown DSCP class " + json_brief(c) + " (cs0-cs7, af11-af43, ef, va, le, or 0-63)");
    r.dscp = *dscp;
    if (v.contains("comment")) {
      if (!v["comment"].is_string()) fail(sub("comment"), "\"comment\" must be a string");
      r.comment = v["comment"].get<std::string>();
    }
    if (v.contains("proto")) {
      Rule tmp;
      bool any = true;
      if (v["proto"].is_array()) fail(sub("proto"), "a DSCP rule matches one protocol (write one rule per protocol)");
      protos(v["proto"], sub("proto"), tmp, any);
      if (!any) {
        if (!tmp.other_protos.empty()) {
          r.proto = tmp.other_protos[0];
        } else {
          r.proto = protocol_of(tmp.protos[0]);
        }
      }
    }
    for (const char* f : {"sport", "dport"}) {
      if (!v.contains(f)) continue;
      if (r.proto != IPPROTO_TCP && r.proto != IPPROTO_UDP)
        fail(sub(f), std::string("\"") + f + "\" needs \"proto\" tcp or udp");
      auto rs = ports(v[f], sub(f), 65535, "port");
      if (rs.size() > SIPXDP_DSCP_RANGES)
        fail(sub(f), std::string("\"") + f + "\": " + std::to_string(rs.size()) + " ports or ranges, at most " +
                         std::to_string(SIPXDP_DSCP_RANGES) + " in a DSCP rule");
      (std::strcmp(f, "sport") == 0 ? r.sport : r.dport) = rs;
    }
    if (v.contains("dst")) r.dst = cidrs(v["dst"], sub("dst"), "dst");
    return r;
  }

  std::string name(const json& v, const Path& at) {
    if (!v.is_string()) fail(at, "\"name\" must be a string");
    std::string n = v.get<std::string>();
    if (n.empty() || n.size() > 63 || !std::all_of(n.begin(), n.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        }))
      fail(at, "rule names are 1-63 characters of A-Z a-z 0-9 - _ .");
    return n;
  }

  std::vector<Cidr> cidrs(const json& x, const Path& p, const char* f) {
    std::vector<Cidr> out;
    if (x.is_string()) {
      out.push_back(cidr(x, p));
    } else if (x.is_array()) {
      if (x.empty()) fail(p, std::string("\"") + f + "\" is an empty list (omit it to match any address)");
      for (size_t i = 0; i < x.size(); ++i) {
        Path q = p;
        q.push_back(i);
        out.push_back(cidr(x[i], q));
      }
    } else {
      fail(p, std::string("\"") + f + "\" must be a CIDR string or a list of them");
    }
    return out;
  }

  void protos(const json& v, const Path& at, Rule& r, bool& any) {
    auto one = [&](const json& x, const Path& p) {
      int num = -1;
      if (x.is_string()) {
        std::string s = x.get<std::string>();
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        if (s == "any" || s == "all") return void(any = true);
        auto n = protocol_number(s);
        if (!n) fail(p, "unknown protocol \"" + s + "\" (tcp, udp, icmp, icmpv6, any, or a number 0-255)");
        num = *n;
      } else if (x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() <= 255) {
        num = static_cast<int>(x.get<int64_t>());
      } else {
        fail(p, "protocol must be a name or a number 0-255, not " + json_brief(x));
      }
      any = false;
      auto kind = proto_kind(static_cast<uint8_t>(num));
      if (!kind) {
        if (std::find(r.other_protos.begin(), r.other_protos.end(), num) == r.other_protos.end())
          r.other_protos.push_back(static_cast<uint8_t>(num));
        return;
      }
      ProtoKind k = *kind;
      if (std::find(r.protos.begin(), r.protos.end(), k) == r.protos.end()) r.protos.push_back(k);
    };
    if (v.is_array()) {
      if (v.empty()) fail(at, "\"proto\" is an empty list");
      bool saw_any = false;
      for (size_t i = 0; i < v.size(); ++i) {
        Path p = at;
        p.push_back(i);
        one(v[i], p);
        saw_any |= any;
      }
      if (saw_any) {
        any = true;
        r.protos.clear();
        r.other_protos.clear();
      }
    } else {
      one(v, at);
    }
  }

  std::vector<PortRange> ports(const json& v, const Path& at, int max, const char* what) {
    std::vector<PortRange> out;
    auto num = [&](const std::string& s, const Path& p) -> int {
      if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit))
        fail(p, std::string("bad ") + what + " \"" + s + "\" (a number, \"lo-hi\", or a list of them)");
      int n = std::stoi(s);
      if (n > max) fail(p, std::string(what) + " " + s + " is out of range (0-" + std::to_string(max) + ")");
      return n;
    };
    auto one = [&](const json& x, const Path& p) {
      if (x.is_number_integer()) {
        int64_t n = x.get<int64_t>();
        if (n < 0 || n > max)
          fail(p, std::string(what) + " " + std::to_string(n) + " is out of range (0-" + std::to_string(max) + ")");
        out.push_back({static_cast<uint16_t>(n), static_cast<uint16_t>(n)});
      } else if (x.is_string()) {
        std::string s = x.get<std::string>();
        auto dash = s.find_first_of("-:");
        if (dash == std::string::npos) {
          int n = num(s, p);
          out.push_back({static_cast<uint16_t>(n), static_cast<uint16_t>(n)});
        } else {
          int lo = num(s.substr(0, dash), p), hi = num(s.substr(dash + 1), p);
          if (lo > hi) fail(p, std::string(what) + " range " + s + " is reversed (low-high)");
          out.push_back({static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)});
        }
      } else {
        fail(p, std::string(what) + " must be a number, a \"lo-hi\" string, or a list of them, not " + json_brief(x));
      }
    };
    if (v.is_array()) {
      if (v.empty()) fail(at, std::string("empty ") + what + " list (omit the field to match any)");
      for (size_t i = 0; i < v.size(); ++i) {
        Path p = at;
        p.push_back(i);
        one(v[i], p);
      }
    } else {
      one(v, at);
    }
    return out;
  }

  Cidr cidr(const json& v, const Path& at) {
    if (!v.is_string()) fail(at, "address must be a CIDR string, not " + json_brief(v));
    auto c = parse_cidr(v.get<std::string>());
    if (!c) fail(at, c.error().what);
    if (auto v4 = embedded_ipv4(c.value()))
      warn(at, "\"" + v.get<std::string>() + "\" is an IPv4-" + (c->addr[10] ? "mapped" : "compatible") +
                   " IPv6 prefix; packets on the wire never carry such addresses (sipxdp drops mapped loopback "
                   "as martian): write the IPv4 prefix " +
                   v4->str());
    return c.value();
  }

  std::string cur_rule_;
  std::string cur_kind_ = "rule";  // what cur_rule_ names in errors
};

// The first `max` prefixes and how many more.
std::string cidr_list_text(const std::vector<Cidr>& cs, size_t max) {
  std::string t;
  size_t shown = std::min<size_t>(cs.size(), max);
  for (size_t i = 0; i < shown; ++i) t += (i ? "," : "") + cs[i].str();
  if (cs.size() > shown) t += ",+" + std::to_string(cs.size() - shown);
  return t;
}

}  // namespace

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == 4 ? AF_INET : AF_INET6, addr.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(plen);
}

Result<Cidr> parse_cidr(const std::string& s) {
  Cidr c;
  std::string a = s;
  int plen = -1;
  auto slash = s.find('/');
  if (slash != std::string::npos) {
    a = s.substr(0, slash);
    std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit))
      return make_error("bad prefix length in \"" + s + "\"");
    plen = std::stoi(p);
  }
  if (inet_pton(AF_INET, a.c_str(), c.addr.data()) == 1) {
    c.family = 4;
    if (plen < 0) plen = 32;
    if (plen > 32)
      return make_error("prefix length /" + std::to_string(plen) + " is too long for IPv4 in \"" + s + "\"");
  } else if (inet_pton(AF_INET6, a.c_str(), c.addr.data()) == 1) {
    c.family = 6;
    if (plen < 0) plen = 128;
    if (plen > 128)
      return make_error("prefix length /" + std::to_string(plen) + " is too long for IPv6 in \"" + s + "\"");
  } else {
    return make_error("\"" + s + "\" is not an IPv4 or IPv6 address or CIDR");
  }
  c.plen = static_cast<uint8_t>(plen);
  Cidr masked = c;
  int bytes = c.family == 4 ? 4 : 16;
  for (int i = 0; i < bytes; ++i) {
    int keep = std::clamp(plen - i * 8, 0, 8);
    masked.addr[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  if (masked.addr != c.addr) return make_error("\"" + s + "\" has host bits set (did you mean " + masked.str() + "?)");
  return c;
}

const char* sip_method_name(uint32_t bit) {
  switch (bit) {
#define SIPXDP_X_METHOD(id, b, name) \
  case b: return name;
    SIPXDP_SIP_METHODS(SIPXDP_X_METHOD)
#undef SIPXDP_X_METHOD
  }
  return nullptr;
}

bool learned_trust_active(const Policy& p) {
  const SipConfig& sip = p.sip;
  const bool inspects = std::any_of(p.rules.begin(), p.rules.end(), [](const Rule& r) { return r.inspect_sip; });
  return sip.learned_trust.enabled && inspects &&
         (!sip.rate_limits.empty() || sip.auth_failures.enabled || (sip.ban_seconds && !sip.patterns.empty()));
}

std::string RateLimit::text() const {
  std::string m;
  for (auto& n : method_names) m += (m.empty() ? "" : ",") + n;
  return m + " " + std::to_string(requests) + "/" + std::to_string(per_seconds) + "s" +
         (ban_seconds ? " ban " + std::to_string(ban_seconds) + "s" : "");
}

const std::vector<std::string>& SipConfig::default_patterns() {
  static const std::vector<std::string> v = {"friendly-scanner", "VaxSIPUserAgent",  "sipcli",    "sipvicious",
                                             "sip-scan",         "User-Agent: iWar", "sundayddr", "sipsak"};
  return v;
}

std::string flow_timeouts_text(const FlowConfig& f) {
  return "tcp " + std::to_string(f.timeout_s[0]) + " udp " + std::to_string(f.timeout_s[1]) + " icmp " +
         std::to_string(f.timeout_s[2]);
}

std::optional<uint8_t> parse_dscp_class(const std::string& in) {
  std::string s = in;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "ef") return 46;
  if (s == "va") return 44;
  if (s == "le") return 1;
  if (s == "be" || s == "default") return 0;
  if (s.size() == 3 && s.compare(0, 2, "cs") == 0 && s[2] >= '0' && s[2] <= '7')
    return static_cast<uint8_t>((s[2] - '0') * 8);
  if (s.size() == 4 && s.compare(0, 2, "af") == 0 && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' && s[3] <= '3')
    return static_cast<uint8_t>((s[2] - '0') * 8 + (s[3] - '0') * 2);
  if (!s.empty() && s.size() <= 2 && std::all_of(s.begin(), s.end(), ::isdigit) && std::stoi(s) <= 63)
    return static_cast<uint8_t>(std::stoi(s));
  return std::nullopt;
}

std::string DscpRule::match_text(size_t max_prefixes) const {
  std::string s;
  auto add = [&](const std::string& w) {
    if (!s.empty()) s += " ";
    s += w;
  };
  add(proto == 0 ? "any" : protocol_name(proto));
  if (!sport.empty()) add("sport " + ranges_text(sport));
  if (!dport.empty()) add("dport " + ranges_text(dport));
  if (!dst.empty()) add("dst " + cidr_list_text(dst, max_prefixes));
  return s;
}

const char* action_name(Action a) {
  return a == Action::allow ? "allow" : "drop";
}

namespace {

const struct {
  const char* name;
  uint8_t number;
} kProtocols[] = {
    {"tcp", IPPROTO_TCP}, {"udp", IPPROTO_UDP}, {"icmp", IPPROTO_ICMP}, {"icmpv6", IPPROTO_ICMPV6},
    {"gre", IPPROTO_GRE}, {"esp", IPPROTO_ESP}, {"ah", IPPROTO_AH},     {"sctp", IPPROTO_SCTP},
};

}  // namespace

std::optional<uint8_t> protocol_number(const std::string& name) {
  if (name == "ipv6-icmp") return IPPROTO_ICMPV6;
  for (auto& p : kProtocols)
    if (name == p.name) return p.number;
  return std::nullopt;
}

std::string protocol_name(uint8_t number) {
  for (auto& p : kProtocols)
    if (number == p.number) return p.name;
  return std::to_string(number);
}

std::optional<ProtoKind> proto_kind(uint8_t number) {
  switch (number) {
    case IPPROTO_TCP: return ProtoKind::tcp;
    case IPPROTO_UDP: return ProtoKind::udp;
    case IPPROTO_ICMP: return ProtoKind::icmp;
    case IPPROTO_ICMPV6: return ProtoKind::icmpv6;
  }
  return std::nullopt;
}

uint8_t protocol_of(ProtoKind k) {
  switch (k) {
    case ProtoKind::tcp: return IPPROTO_TCP;
    case ProtoKind::udp: return IPPROTO_UDP;
    case ProtoKind::icmp: return IPPROTO_ICMP;
    case ProtoKind::icmpv6: return IPPROTO_ICMPV6;
  }
  return 0;
}

const char* proto_kind_name(ProtoKind k) {
  switch (k) {
    case ProtoKind::tcp: return "tcp";
    case ProtoKind::udp: return "udp";
    case ProtoKind::icmp: return "icmp";
    case ProtoKind::icmpv6: return "icmpv6";
  }
  return "?";
}

std::string Rule::signature() const {
  return sha256_hex(match_text(SIZE_MAX) + " " + action_name(action)).substr(0, 16);
}

std::string DscpRule::signature() const {
  return sha256_hex(match_text(SIZE_MAX) + " " + std::to_string(dscp)).substr(0, 16);
}

std::string Rule::match_text(size_t max_prefixes) const {
  std::string s;
  auto add = [&](const std::string& w) {
    if (!s.empty()) s += " ";
    s += w;
  };
  if (protos.empty() && other_protos.empty()) {
    add("any");
  } else {
    std::string p;
    for (auto k : protos) p += (p.empty() ? "" : ",") + std::string(proto_kind_name(k));
    for (auto n : other_protos) p += (p.empty() ? "" : ",") + std::to_string(n);
    add(p);
  }
  if (!dport.empty()) add("dport " + ranges_text(dport));
  if (!sport.empty()) add("sport " + ranges_text(sport));
  if (!icmp_type.empty()) add("type " + ranges_text(icmp_type));
  auto cidrs = [&](const char* w, const std::vector<Cidr>& cs) {
    if (!cs.empty()) add(std::string(w) + " " + cidr_list_text(cs, max_prefixes));
  };
  cidrs("src", src);
  cidrs("dst", dst);
  if (inspect_sip) add("inspect-sip");
  return s;
}

Result<Policy> parse_policy(const std::string& text, const std::string& origin) {
  auto doc = read_json(text, origin);
  if (!doc) return doc.error();
  auto where = [&](const PolicyError& e) {
    size_t off = doc->pos.find(e.path, e.at_key);
    std::string at = origin;
    if (off != JsonPositions::npos) at += ":" + line_col(text, off);
    std::string rule = e.rule.empty() ? "" : e.kind + " \"" + e.rule + "\": ";
    return one_line(at + ": " + rule + e.msg);
  };
  Parser parser;
  try {
    Policy p = parser.run(doc->root);
    for (auto& w : parser.warnings) p.warnings.push_back(where(w));
    return p;
  } catch (const PolicyError& e) {
    return make_error(where(e));
  } catch (const std::exception& e) {
    // A type the checks above did not foresee: still one line, never an abort.
    return make_error(one_line(origin + ": " + e.what()));
  }
}

Result<std::string> read_policy_text(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys_error("cannot read policy " + path, errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return sys_error("cannot read policy " + path, errno);
  if (S_ISDIR(st.st_mode)) return make_error("cannot read policy " + path + ": it is a directory");
  // Read with a bound whatever the file claims (/dev/zero, a FIFO...).
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("cannot read policy " + path, errno);
    }
    if (n == 0) break;
    if (text.size() + size_t(n) > kMaxPolicyBytes)
      return make_error("cannot read policy " + path + ": larger than " + std::to_string(kMaxPolicyBytes >> 20) +
                        " MiB (the limit for a policy file)");
    text.append(buf, size_t(n));
  }
  return text;
}

Result<Policy> load_policy_file(const std::string& path, std::string* text_out) {
  auto text = read_policy_text(path);
  if (!text) return text.error();
  auto p = parse_policy(text.value(), path);
  if (p && text_out) *text_out = std::move(text.value());
  return p;
}

std::string escape_bytes(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char b[8];
          std::snprintf(b, sizeof(b), "\\x%02x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string one_line(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

std::optional<Cidr> embedded_ipv4(const Cidr& c) {
  if (c.family != 6 || c.plen < 96) return std::nullopt;
  for (int i = 0; i < 10; ++i)
    if (c.addr[i]) return std::nullopt;
  bool mapped = c.addr[10] == 0xff && c.addr[11] == 0xff;
  bool compat = c.addr[10] == 0 && c.addr[11] == 0 && c.addr[12] != 0;
  if (!mapped && !compat) return std::nullopt;
  Cidr v4;
  v4.family = 4;
  std::copy_n(c.addr.begin() + 12, 4, v4.addr.begin());
  v4.plen = static_cast<uint8_t>(c.plen - 96);
  return v4;
}

std::string ranges_text(const std::vector<PortRange>& rs, const char* sep) {
  std::string s;
  for (auto& r : rs) {
    if (!s.empty()) s += sep;
    s += std::to_string(r.lo);
    if (r.hi != r.lo) s += "-" + std::to_string(r.hi);
  }
  return s;
}

}  // namespace sipxdp
