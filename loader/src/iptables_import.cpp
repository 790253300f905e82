// The file is read whole first (structural errors stop the import), then
// translated: how one line translates can depend on lines after it (whether
// an ESTABLISHED accept exists, which interfaces are named, which accepts a
// string drop guards).
#include "sipxdp/iptables_import.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "sipxdp/abi.h"
#include "sipxdp/policy.h"

namespace sipxdp {

namespace {

using ojson = nlohmann::ordered_json;

struct ImportError {
  size_t line;
  std::string msg;
};

// What both iptables and sipxdp can match on.
struct Match {
  std::optional<uint8_t> proto;  // none: any protocol
  std::vector<PortRange> dport, sport, icmp_type;
  std::vector<Cidr> src, dst;
  bool operator==(const Match&) const = default;
};

bool is_port_proto(const std::optional<uint8_t>& p) {
  return p && (*p == IPPROTO_TCP || *p == IPPROTO_UDP);
}

// Ranges: an empty list matches everything.
bool ranges_overlap(const std::vector<PortRange>& a, const std::vector<PortRange>& b) {
  if (a.empty() || b.empty()) return true;
  for (auto& x : a)
    for (auto& y : b)
      if (x.lo <= y.hi && y.lo <= x.hi) return true;
  return false;
}

bool ranges_within(const std::vector<PortRange>& a, const std::vector<PortRange>& b) {
  if (b.empty()) return true;
  if (a.empty()) return false;
  return std::all_of(a.begin(), a.end(), [&](const PortRange& x) {
    return std::any_of(b.begin(), b.end(), [&](const PortRange& y) { return y.lo <= x.lo && x.hi <= y.hi; });
  });
}

std::vector<PortRange> ranges_intersect(const std::vector<PortRange>& a, const std::vector<PortRange>& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  std::vector<PortRange> out;
  for (auto& x : a)
    for (auto& y : b)
      if (x.lo <= y.hi && y.lo <= x.hi) out.push_back({std::max(x.lo, y.lo), std::min(x.hi, y.hi)});
  return out;
}

bool cidr_contains(const Cidr& outer, const Cidr& inner) {
  if (outer.family != inner.family || outer.plen > inner.plen) return false;
  for (int i = 0; i < outer.plen; ++i) {
    uint8_t bit = static_cast<uint8_t>(0x80 >> (i % 8));
    if ((outer.addr[i / 8] & bit) != (inner.addr[i / 8] & bit)) return false;
  }
  return true;
}

bool cidrs_overlap(const std::vector<Cidr>& a, const std::vector<Cidr>& b) {
  if (a.empty() || b.empty()) return true;
  for (auto& x : a)
    for (auto& y : b)
      if (cidr_contains(x, y) || cidr_contains(y, x)) return true;
  return false;
}

bool cidrs_within(const std::vector<Cidr>& a, const std::vector<Cidr>& b) {
  if (b.empty()) return true;
  if (a.empty()) return false;
  return std::all_of(a.begin(), a.end(), [&](const Cidr& x) {
    return std::any_of(b.begin(), b.end(), [&](const Cidr& y) { return cidr_contains(y, x); });
  });
}

std::vector<Cidr> cidrs_intersect(const std::vector<Cidr>& a, const std::vector<Cidr>& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  std::vector<Cidr> out;
  for (auto& x : a)
    for (auto& y : b) {
      const Cidr* c = cidr_contains(x, y) ? &y : cidr_contains(y, x) ? &x : nullptr;
      if (c && std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
    }
  return out;
}

bool overlaps(const Match& a, const Match& b) {
  if (a.proto && b.proto && *a.proto != *b.proto) return false;
  return ranges_overlap(a.dport, b.dport) && ranges_overlap(a.sport, b.sport) &&
         ranges_overlap(a.icmp_type, b.icmp_type) && cidrs_overlap(a.src, b.src) && cidrs_overlap(a.dst, b.dst);
}

// Every packet `a` matches, `b` matches too.
bool within(const Match& a, const Match& b) {
  if (b.proto && a.proto != b.proto) return false;
  return ranges_within(a.dport, b.dport) && ranges_within(a.sport, b.sport) &&
         ranges_within(a.icmp_type, b.icmp_type) && cidrs_within(a.src, b.src) && cidrs_within(a.dst, b.dst);
}

std::optional<Match> intersect(const Match& a, const Match& b) {
  if (!overlaps(a, b)) return std::nullopt;
  Match m;
  m.proto = a.proto ? a.proto : b.proto;
  m.dport = ranges_intersect(a.dport, b.dport);
  m.sport = ranges_intersect(a.sport, b.sport);
  m.icmp_type = ranges_intersect(a.icmp_type, b.icmp_type);
  m.src = cidrs_intersect(a.src, b.src);
  m.dst = cidrs_intersect(a.dst, b.dst);
  return m;
}

Rule as_rule(const Match& m) {
  Rule r;
  if (m.proto) {
    if (auto k = proto_kind(*m.proto))
      r.protos.push_back(*k);
    else
      r.other_protos.push_back(*m.proto);
  }
  r.dport = m.dport;
  r.sport = m.sport;
  r.icmp_type = m.icmp_type;
  r.src = m.src;
  r.dst = m.dst;
  return r;
}

std::string match_text(const Match& m) {
  return as_rule(m).match_text();
}

// Splits a line as iptables-restore does: blanks separate words, double
// quotes group them, and inside quotes a backslash takes the next character.
std::optional<std::vector<std::string>> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false, quoted = false, escaped = false;
  for (char c : s) {
    if (quoted) {
      if (escaped) {
        cur += c;
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quoted) return std::nullopt;
  if (in_word) out.push_back(cur);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What nlohmann can write: the policy is dumped with it.
bool valid_utf8(const std::string& s) {
  try {
    (void)ojson(s).dump();
    return true;
  } catch (const ojson::exception&) {
    return false;
  }
}

// "5060", "16384:32768", ":1023", "1024:"; a reversed range is refused, as iptables refuses it.
std::optional<PortRange> parse_port_range(const std::string& s) {
  auto num = [](const std::string& t) -> std::optional<uint16_t> {
    if (!all_digits(t) || t.size() > 5 || std::stoi(t) > 65535) return std::nullopt;
    return static_cast<uint16_t>(std::stoi(t));
  };
  auto colon = s.find(':');
  if (colon == std::string::npos) {
    auto n = num(s);
    if (!n) return std::nullopt;
    return PortRange{*n, *n};
  }
  std::string a = s.substr(0, colon), b = s.substr(colon + 1);
  PortRange r{0, 65535};
  if (!a.empty()) {
    auto n = num(a);
    if (!n) return std::nullopt;
    r.lo = *n;
  }
  if (!b.empty()) {
    auto n = num(b);
    if (!n) return std::nullopt;
    r.hi = *n;
  }
  if (r.lo > r.hi) return std::nullopt;
  return r;
}

std::optional<std::vector<PortRange>> parse_port_list(const std::string& s) {
  std::vector<PortRange> out;
  for (auto& part : split(s, ',')) {
    auto r = parse_port_range(part);
    if (!r) return std::nullopt;
    out.push_back(*r);
  }
  return out;
}

// "198.18.0.10", "198.18.0.0/24", "10.0.0.0/255.0.0.0". Host bits are cleared,
// as iptables clears them; `cleared` says so.
std::optional<Cidr> parse_address(const std::string& s, bool& cleared) {
  auto slash = s.find('/');
  auto base = parse_cidr(s.substr(0, slash));
  if (!base) return std::nullopt;
  Cidr c = base.value();
  int max = c.family == 4 ? 32 : 128;
  int plen = max;
  if (slash != std::string::npos) {
    std::string p = s.substr(slash + 1);
    if (all_digits(p) && p.size() <= 3) {
      plen = std::stoi(p);
    } else if (in_addr m{}; c.family == 4 && inet_pton(AF_INET, p.c_str(), &m) == 1) {
      uint32_t v = ntohl(m.s_addr);
      plen = std::popcount(v);
      if (v != (plen ? ~0u << (32 - plen) : 0u)) return std::nullopt;
    } else {
      return std::nullopt;
    }
    if (plen > max) return std::nullopt;
  }
  c.plen = static_cast<uint8_t>(plen);
  for (int i = 0; i < max / 8; ++i) {
    int keep = std::clamp(plen - i * 8, 0, 8);
    uint8_t masked = c.addr[i] & static_cast<uint8_t>(0xff00 >> keep);
    if (masked != c.addr[i]) cleared = true;
    c.addr[i] = masked;
  }
  return c;
}

// The literal parts of --hex-string as written, the |..| parts as hex bytes.
std::optional<std::string> decode_hex_string(const std::string& s) {
  std::string out;
  bool hex = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '|') {
      hex = !hex;
    } else if (hex) {
      if (c == ' ') continue;
      if (i + 1 >= s.size() || !std::isxdigit(static_cast<unsigned char>(c)) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 1])))
        return std::nullopt;
      out += static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16));
      ++i;
    } else if (c == '\\' && i + 1 < s.size()) {
      out += s[++i];
    } else {
      out += c;
    }
  }
  if (hex) return std::nullopt;
  return out;
}

struct IcmpName {
  const char* name;
  int type;  // -1: any
  int code;  // -1: any
};

const IcmpName kIcmp4[] = {
    {"any", -1, -1},
    {"echo-reply", 0, -1},
    {"pong", 0, -1},
    {"destination-unreachable", 3, -1},
    {"network-unreachable", 3, 0},
    {"host-unreachable", 3, 1},
    {"protocol-unreachable", 3, 2},
    {"port-unreachable", 3, 3},
    {"fragmentation-needed", 3, 4},
    {"source-route-failed", 3, 5},
    {"network-unknown", 3, 6},
    {"host-unknown", 3, 7},
    {"network-prohibited", 3, 9},
    {"host-prohibited", 3, 10},
    {"tos-network-unreachable", 3, 11},
    {"tos-host-unreachable", 3, 12},
    {"communication-prohibited", 3, 13},
    {"host-precedence-violation", 3, 14},
    {"precedence-cutoff", 3, 15},
    {"source-quench", 4, -1},
    {"redirect", 5, -1},
    {"network-redirect", 5, 0},
    {"host-redirect", 5, 1},
    {"tos-network-redirect", 5, 2},
    {"tos-host-redirect", 5, 3},
    {"echo-request", 8, -1},
    {"ping", 8, -1},
    {"router-advertisement", 9, -1},
    {"router-solicitation", 10, -1},
    {"time-exceeded", 11, -1},
    {"ttl-exceeded", 11, -1},
    {"ttl-zero-during-transit", 11, 0},
    {"ttl-zero-during-reassembly", 11, 1},
    {"parameter-problem", 12, -1},
    {"ip-header-bad", 12, 0},
    {"required-option-missing", 12, 1},
    {"timestamp-request", 13, -1},
    {"timestamp-reply", 14, -1},
    {"address-mask-request", 17, -1},
    {"address-mask-reply", 18, -1},
};

const IcmpName kIcmp6[] = {
    {"any", -1, -1},
    {"destination-unreachable", 1, -1},
    {"no-route", 1, 0},
    {"communication-prohibited", 1, 1},
    {"beyond-scope", 1, 2},
    {"address-unreachable", 1, 3},
    {"port-unreachable", 1, 4},
    {"failed-policy", 1, 5},
    {"reject-route", 1, 6},
    {"packet-too-big", 2, -1},
    {"time-exceeded", 3, -1},
    {"ttl-exceeded", 3, -1},
    {"ttl-zero-during-transit", 3, 0},
    {"ttl-zero-during-reassembly", 3, 1},
    {"parameter-problem", 4, -1},
    {"bad-header", 4, 0},
    {"unknown-header-type", 4, 1},
    {"unknown-option", 4, 2},
    {"echo-request", 128, -1},
    {"ping", 128, -1},
    {"echo-reply", 129, -1},
    {"pong", 129, -1},
    {"router-solicitation", 133, -1},
    {"router-advertisement", 134, -1},
    {"neighbour-solicitation", 135, -1},
    {"neighbor-solicitation", 135, -1},
    {"neighbour-advertisement", 136, -1},
    {"neighbor-advertisement", 136, -1},
    {"redirect", 137, -1},
};

// "8", "3/4", "echo-request": the type (-1: any) and the code (-1: any).
std::optional<std::pair<int, int>> parse_icmp_type(const std::string& s, bool v6) {
  auto slash = s.find('/');
  std::string t = s.substr(0, slash);
  if (all_digits(t) && t.size() <= 3 && std::stoi(t) <= 255) {
    if (slash == std::string::npos) return std::pair{std::stoi(t), -1};
    std::string c = s.substr(slash + 1);
    if (!all_digits(c) || c.size() > 3 || std::stoi(c) > 255) return std::nullopt;
    return std::pair{std::stoi(t), std::stoi(c)};
  }
  std::string n = lower(s);
  if (v6) {
    for (auto& e : kIcmp6)
      if (n == e.name) return std::pair{e.type, e.code};
  } else {
    for (auto& e : kIcmp4)
      if (n == e.name) return std::pair{e.type, e.code};
  }
  return std::nullopt;
}

std::optional<uint8_t> parse_protocol(const std::string& s, bool& any) {
  std::string p = lower(s);
  any = p == "all" || p == "0";
  if (any) return std::nullopt;
  if (all_digits(p) && p.size() <= 3 && std::stoi(p) <= 255) return static_cast<uint8_t>(std::stoi(p));
  if (auto n = protocol_number(p)) return n;
  static const std::map<std::string, uint8_t> more = {{"icmp6", IPPROTO_ICMPV6},
                                                      {"igmp", 2},
                                                      {"ipv6-mh", 135},
                                                      {"mh", 135},
                                                      {"udplite", 136},
                                                      {"vrrp", 112},
                                                      {"ospf", 89},
                                                      {"pim", 103},
                                                      {"dccp", 33}};
  auto it = more.find(p);
  if (it != more.end()) return it->second;
  return std::nullopt;
}

// DSCP class name for a value, as sipxdp policies write them; empty: a plain number.
std::string dscp_class_name(uint8_t v) {
  if (v == 46) return "ef";
  if (v == 44) return "va";
  if (v == 1) return "le";
  if (v % 8 == 0) return "cs" + std::to_string(v / 8);
  int cls = v / 8, drop = (v % 8) / 2;
  if (v % 2 == 0 && cls >= 1 && cls <= 4 && drop >= 1 && drop <= 3)
    return "af" + std::to_string(cls) + std::to_string(drop);
  return "";
}

// iptables reads --set-dscp with strtoul(..., 0): hex, octal or decimal.
std::optional<uint8_t> parse_dscp_value(const std::string& s) {
  int base = 10;
  std::string d = s;
  if (d.size() > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
    base = 16;
    d = d.substr(2);
  } else if (d.size() > 1 && d[0] == '0') {
    base = 8;
    d = d.substr(1);
  }
  if (d.empty() || d.size() > 4) return std::nullopt;
  for (char c : d) {
    int v = std::isdigit(static_cast<unsigned char>(c))    ? c - '0'
            : std::isxdigit(static_cast<unsigned char>(c)) ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                                                           : 99;
    if (v >= base) return std::nullopt;
  }
  long v = std::stol(d, nullptr, base);
  if (v > 63) return std::nullopt;
  return static_cast<uint8_t>(v);
}

std::string port_text(const std::vector<PortRange>& rs) {
  return ranges_text(rs, "_");
}

std::string cidr_name(const Cidr& c) {
  std::string s = c.str();
  auto slash = s.find('/');
  std::string a = s.substr(0, slash);
  std::replace(a.begin(), a.end(), ':', '.');
  if (c.plen != (c.family == 4 ? 32 : 128)) a += "_" + std::to_string(c.plen);
  return a;
}

// "in-udp-5060", "drop-tcp-22-from-203.0.113.0_24", "in-icmp-8".
std::string rule_name_for(const std::string& prefix, const Match& m) {
  std::string n = prefix;
  bool any = true;
  auto add = [&](const std::string& part) {
    n += "-" + part;
    any = false;
  };
  if (m.proto) add(protocol_name(*m.proto));
  if (!m.dport.empty()) add(port_text(m.dport));
  if (!m.sport.empty()) add("sport-" + port_text(m.sport));
  if (!m.icmp_type.empty()) add(port_text(m.icmp_type));
  if (!m.src.empty()) add("from-" + cidr_name(m.src[0]));
  if (!m.dst.empty()) add("to-" + cidr_name(m.dst[0]));
  if (any) n += "-all";
  return n;
}

// "cs3-udp-5060", "ef-udp-16384-32768", "af41-udp-dport-5004-to-198.18.0.0_24".
std::string dscp_name_for(const std::string& cls, const Match& m) {
  std::string n = cls;
  if (m.proto) n += "-" + protocol_name(*m.proto);
  if (!m.sport.empty()) n += "-" + port_text(m.sport);
  if (!m.dport.empty()) n += "-dport-" + port_text(m.dport);
  if (!m.dst.empty()) n += "-to-" + cidr_name(m.dst[0]);
  if (n == cls) n += "-all";
  return n;
}

// "Allow SIP UDP" -> "allow-sip-udp"; empty when nothing of it can be a name.
std::string name_from_comment(const std::string& c) {
  std::string n;
  bool gap = false;
  for (unsigned char ch : c) {
    if (std::isalnum(ch) || ch == '_' || ch == '.') {
      if (gap && !n.empty()) n += '-';
      gap = false;
      n += static_cast<char>(std::tolower(ch));
    } else {
      gap = true;
    }
  }
  return n;
}

std::string unique_name(std::string base, std::set<std::string>& used) {
  auto trim = [](std::string s, size_t max) {
    if (s.size() > max) s.resize(max);
    while (!s.empty() && (s.back() == '-' || s.back() == '_' || s.back() == '.')) s.pop_back();
    return s.empty() ? std::string("rule") : s;
  };
  base = trim(base, 63);
  if (used.insert(base).second) return base;
  for (int k = 2;; ++k) {
    std::string suffix = "-" + std::to_string(k);
    std::string n = trim(base, 63 - suffix.size()) + suffix;
    if (used.insert(n).second) return n;
  }
}

ojson ports_json(const std::vector<PortRange>& rs) {
  auto one = [](const PortRange& r) -> ojson {
    if (r.lo == r.hi) return r.lo;
    return std::to_string(r.lo) + "-" + std::to_string(r.hi);
  };
  if (rs.size() == 1) return one(rs[0]);
  ojson a = ojson::array();
  for (auto& r : rs) a.push_back(one(r));
  return a;
}

ojson cidrs_json(const std::vector<Cidr>& cs) {
  if (cs.size() == 1) return cs[0].str();
  ojson a = ojson::array();
  for (auto& c : cs) a.push_back(c.str());
  return a;
}

ojson proto_json(uint8_t p) {
  std::string n = protocol_name(p);
  if (all_digits(n)) return p;
  return n;
}

bool builtin_chain(const std::string& table, const std::string& chain) {
  static const std::map<std::string, std::set<std::string>> kChains = {
      {"filter", {"INPUT", "FORWARD", "OUTPUT"}},
      {"mangle", {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}},
      {"nat", {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}},
      {"raw", {"PREROUTING", "OUTPUT"}},
      {"security", {"INPUT", "FORWARD", "OUTPUT"}},
  };
  auto it = kChains.find(table);
  if (it != kChains.end()) return it->second.count(chain) > 0;
  static const std::set<std::string> any = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};
  return any.count(chain) > 0;
}

std::string module_problem(const std::string& m) {
  static const std::map<std::string, std::string> why = {
      {"limit", "sipxdp has no rate limits"},
      {"hashlimit", "sipxdp has no rate limits"},
      {"recent", "sipxdp keeps no per-source history; for scanners it bans: sip.ban_seconds, sipxdp ban add"},
      {"connlimit", "sipxdp does not count connections"},
      {"set", "sipxdp reads no ipsets: list the prefixes in src, or ban them with sipxdp ban add"},
      {"iprange", "write the range as CIDR prefixes"},
      {"mac", "sipxdp does not match MAC addresses"},
      {"owner", "XDP sees packets before any socket"},
      {"addrtype", "sipxdp does not match address types: list the addresses in dst"},
      {"length", "sipxdp does not match packet lengths"},
      {"tos", "sipxdp does not match header fields other than protocol, ports, ICMP type and addresses"},
      {"dscp", "sipxdp does not match header fields other than protocol, ports, ICMP type and addresses"},
      {"ttl", "sipxdp does not match header fields other than protocol, ports, ICMP type and addresses"},
      {"hl", "sipxdp does not match header fields other than protocol, ports, ICMP type and addresses"},
      {"ecn", "sipxdp does not match header fields other than protocol, ports, ICMP type and addresses"},
      {"mark", "XDP sees packets before anything marks them"},
      {"connmark", "sipxdp has no connection tracking"},
      {"helper", "sipxdp has no connection tracking helpers"},
      {"pkttype", "sipxdp does not match packet types"},
      {"physdev", "a sipxdp policy applies to the one interface it is attached to"},
      {"time", "sipxdp rules do not depend on the time"},
      {"u32", "sipxdp does not match raw packet bytes"},
      {"bpf", "sipxdp does not run cBPF matches"},
      {"policy", "sipxdp does not match IPsec policies"},
      {"geoip", "sipxdp reads no GeoIP databases: list the prefixes in src"},
      {"sctp", "sipxdp matches ports of tcp and udp only"},
      {"dccp", "sipxdp matches ports of tcp and udp only"},
  };
  auto it = why.find(m);
  return "-m " + m + ": not translated (" + (it != why.end() ? it->second : "sipxdp has no such match") + ")";
}

struct StringMatch {
  std::string pattern;
  bool icase = false;
  bool narrowed = false;  // --from/--to limit where iptables searches
  bool hex = false;
  std::string problem;  // why the pattern cannot be a scanner pattern
};

// One -A line, read.
struct Spec {
  size_t line = 0;
  std::string table, chain;
  Match m;
  std::vector<PortRange> either_port;  // multiport --ports: source or destination
  std::string in_iface, out_iface;
  bool in_negated = false, out_negated = false;
  std::optional<std::set<std::string>> states;
  std::vector<StringMatch> strings;
  std::string comment;
  std::string target;  // empty: no -j
  bool go_to = false;  // -g rather than -j
  std::vector<std::string> target_args;
  std::vector<std::string> problems;  // why it cannot be translated
  std::vector<std::string> diffs;     // how its translation differs
};

struct ChainDecl {
  size_t line;
  std::string policy;  // ACCEPT, DROP, or "-" for a user-defined chain
};

struct Table {
  std::string name;
  size_t line;
  std::map<std::string, ChainDecl> chains;
  std::vector<std::string> chain_order;
};

struct OutRule {
  size_t line;
  std::string name;  // before it is made unique
  Match m;
  Action action;
  bool inspect = false;
  std::string comment;
};

// A string drop: a scanner pattern guarding what it matches from `pos` on.
struct Scanner {
  size_t line;
  size_t pos;  // the index of the first rule after it
  Match m;
  std::string pattern;
  bool icase;
  bool valid = true;
};

struct OutDscp {
  size_t line;
  std::string name;
  Match m;
  uint8_t dscp;
  std::string comment;
};

class Importer {
 public:
  explicit Importer(std::string origin) : origin_(std::move(origin)) {}

  ImportResult run(const std::string& text) {
    read(text);
    translate();
    ImportResult r;
    r.policy = policy();
    std::stable_sort(notes_.begin(), notes_.end(),
                     [](const ImportNote& a, const ImportNote& b) { return a.line < b.line; });
    r.notes = std::move(notes_);
    return r;
  }

 private:
  [[noreturn]] void fail(size_t line, const std::string& msg) { throw ImportError{line, msg}; }

  void note(size_t line, std::string text, bool differently) { notes_.push_back({line, std::move(text), differently}); }

  void read(const std::string& text) {
    Table* cur = nullptr;
    size_t line = 0, last = 0;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string l = text.substr(start, end - start);
      start = end + 1;
      ++line;
      last = line;
      size_t first = l.find_first_not_of(" \t\r");
      if (first == std::string::npos) continue;
      l = l.substr(first);
      if (l[0] == '#') {
        if (l.find("ip6tables-save") != std::string::npos) ipv6_ = true;
        continue;
      }
      // iptables-save -c writes each rule's counters before it.
      if (l[0] == '[') {
        auto close = l.find(']');
        if (close == std::string::npos) fail(line, "unterminated [packets:bytes] counters");
        l = l.substr(close + 1);
        first = l.find_first_not_of(" \t");
        l = first == std::string::npos ? "" : l.substr(first);
        if (l.rfind("-A ", 0) != 0) fail(line, "[packets:bytes] counters must be followed by a -A rule");
      }
      auto words = split_words(l);
      if (!words) fail(line, "unterminated quote");
      if (words->empty()) continue;
      const std::string& w = (*words)[0];
      if (w[0] == '*') {
        if (cur)
          fail(line, "table " + w + " starts before table *" + cur->name + " (line " + std::to_string(cur->line) +
                         ") has its COMMIT");
        std::string name = w.substr(1);
        if (name.empty() || words->size() > 1) fail(line, "a table line is *NAME (*filter, *mangle...)");
        for (auto& t : tables_)
          if (t.name == name)
            fail(line, "table *" + name + " appears twice (line " + std::to_string(t.line) + " and here)");
        tables_.push_back({name, line, {}, {}});
        cur = &tables_.back();
      } else if (w == "COMMIT") {
        if (!cur) fail(line, "COMMIT outside a table");
        if (words->size() > 1) fail(line, "COMMIT takes nothing after it");
        cur = nullptr;
      } else if (w[0] == ':') {
        if (!cur) fail(line, w + " outside a table (no *filter, *mangle... line before it)");
        chain_decl(*cur, *words, line);
      } else if (w == "-A" || w == "--append") {
        if (!cur) fail(line, "-A outside a table (no *filter, *mangle... line before it)");
        if (words->size() < 2) fail(line, "-A needs a chain");
        Spec s;
        s.line = line;
        s.table = cur->name;
        s.chain = (*words)[1];
        if (!cur->chains.count(s.chain) && !builtin_chain(cur->name, s.chain))
          fail(line, "chain " + s.chain + " is not declared in table *" + cur->name + " (no :" + s.chain + " line)");
        parse_rule(s, *words);
        specs_.push_back(std::move(s));
      } else {
        std::string shown = l.size() > 60 ? l.substr(0, 60) + "..." : l;
        fail(line, "not an iptables-save line (expected *table, :chain, -A, COMMIT or #): \"" + shown + "\"");
      }
    }
    if (cur) fail(cur->line, "table *" + cur->name + " has no COMMIT (is the file cut short?)");
    if (tables_.empty())
      fail(last ? last : 1, "no table: iptables-save output holds *filter, *mangle... tables, each ending in COMMIT");
  }

  void chain_decl(Table& t, const std::vector<std::string>& w, size_t line) {
    std::string name = w[0].substr(1);
    if (name.empty()) fail(line, "a chain line is :NAME POLICY [packets:bytes]");
    if (w.size() < 2) fail(line, "chain " + name + " has no policy (ACCEPT, DROP, or - for a user-defined chain)");
    const std::string& policy = w[1];
    bool builtin = builtin_chain(t.name, name);
    if (builtin && policy != "ACCEPT" && policy != "DROP")
      fail(line, "built-in chain " + name + " has policy \"" + policy + "\" (ACCEPT or DROP)");
    if (!builtin && policy != "-")
      fail(line, "chain " + name + " of table *" + t.name + " is not a built-in chain: its policy must be -");
    if (t.chains.count(name)) fail(line, "chain " + name + " is declared twice");
    t.chains[name] = {line, policy};
    t.chain_order.push_back(name);
  }

  void parse_rule(Spec& s, const std::vector<std::string>& a) {
    bool neg = false;
    bool unknown_module = false;
    std::string icmp_value, icmp_opt;
    for (size_t i = 2; i < a.size(); ++i) {
      const std::string& o = a[i];
      if (o == "!") {
        if (neg) fail(s.line, "\"!\" twice");
        neg = true;
        continue;
      }
      bool n = neg;
      neg = false;
      auto value = [&]() -> std::string {
        if (i + 1 >= a.size()) fail(s.line, o + " needs a value");
        return a[++i];
      };
      auto negated = [&](const std::string& what) {
        if (n) s.problems.push_back("! " + what + ": not translated (sipxdp rules have no negation)");
        return n;
      };
      if (o == "-p" || o == "--protocol") {
        std::string v = value();
        if (negated(o + " " + v)) continue;
        bool any = false;
        auto p = parse_protocol(v, any);
        if (!p && !any) s.problems.push_back("-p " + v + ": not translated (unknown protocol)");
        s.m.proto = p;
      } else if (o == "-s" || o == "--source" || o == "--src" || o == "-d" || o == "--destination" || o == "--dst") {
        bool src = o == "-s" || o == "--source" || o == "--src";
        std::string v = value();
        if (negated(o + " " + v)) continue;
        auto& out = src ? s.m.src : s.m.dst;
        for (auto& part : split(v, ',')) {
          bool cleared = false;
          auto c = parse_address(part, cleared);
          if (!c) {
            s.problems.push_back(o + " " + part +
                                 ": not translated (not an address or prefix; names are not resolved)");
            break;
          }
          if (cleared)
            s.diffs.push_back(o + " " + part + " has host bits set: written as " + c->str() + ", as iptables reads it");
          if (std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
        }
      } else if (o == "-i" || o == "--in-interface") {
        s.in_iface = value();
        s.in_negated = n;
      } else if (o == "-o" || o == "--out-interface") {
        s.out_iface = value();
        s.out_negated = n;
      } else if (o == "-m" || o == "--match") {
        std::string m = value();
        static const std::set<std::string> known = {"tcp",       "udp",     "icmp",  "icmp6",     "icmpv6",
                                                    "multiport", "comment", "state", "conntrack", "string"};
        if (m == "string") s.strings.emplace_back();
        if (!known.count(m)) {
          s.problems.push_back(module_problem(m));
          unknown_module = true;
        }
      } else if (o == "-j" || o == "--jump" || o == "-g" || o == "--goto") {
        s.target = value();
        s.go_to = o == "-g" || o == "--goto";
      } else if (o == "--dport" || o == "--destination-port" || o == "--sport" || o == "--source-port") {
        std::string v = value();
        if (negated(o + " " + v)) continue;
        auto r = parse_port_range(v);
        if (!r) {
          s.problems.push_back(o + " " + v + ": not translated (not a port or lo:hi range; names are not resolved)");
          continue;
        }
        (o == "--dport" || o == "--destination-port" ? s.m.dport : s.m.sport) = {*r};
      } else if (o == "--dports" || o == "--destination-ports" || o == "--sports" || o == "--source-ports" ||
                 o == "--ports") {
        std::string v = value();
        if (negated(o + " " + v)) continue;
        auto r = parse_port_list(v);
        if (!r) {
          s.problems.push_back(o + " " + v + ": not translated (not a list of ports or lo:hi ranges)");
          continue;
        }
        if (o == "--ports")
          s.either_port = *r;
        else
          (o == "--dports" || o == "--destination-ports" ? s.m.dport : s.m.sport) = *r;
      } else if (o == "--icmp-type" || o == "--icmpv6-type") {
        icmp_opt = o;
        icmp_value = value();
        negated(o + " " + icmp_value);
      } else if (o == "--comment") {
        std::string v = value();
        s.comment += (s.comment.empty() ? "" : "; ") + v;
      } else if (o == "--state" || o == "--ctstate") {
        std::string v = value();
        if (negated(o + " " + v)) continue;
        std::set<std::string> st;
        for (auto& x : split(v, ',')) st.insert(upper(x));
        s.states = st;
      } else if (o.rfind("--ct", 0) == 0) {
        if (i + 1 < a.size() && a[i + 1][0] != '-') ++i;
        s.problems.push_back("conntrack " + o + ": not translated (sipxdp has no connection tracking)");
      } else if (o == "--string" || o == "--hex-string") {
        std::string v = value();
        if (s.strings.empty()) s.strings.emplace_back();
        StringMatch& st = s.strings.back();
        st.hex = o == "--hex-string";
        if (n) {
          st.problem = "! " + o + ": not translated (sipxdp drops packets that hold a pattern, not those without)";
          continue;
        }
        auto pat = st.hex ? decode_hex_string(v) : std::optional<std::string>(v);
        if (!pat) {
          st.problem = o + " \"" + escape_bytes(v) + "\": not translated (bad |hex| notation)";
          continue;
        }
        st.pattern = *pat;
        std::string shown = "\"" + escape_bytes(st.pattern) + "\"";
        if (st.pattern.size() < SIPXDP_MIN_PATTERN_LEN || st.pattern.size() > SIPXDP_MAX_PATTERN_LEN)
          st.problem = o + " " + shown + ": not translated (" + std::to_string(st.pattern.size()) +
                       " bytes; sipxdp patterns are " + std::to_string(SIPXDP_MIN_PATTERN_LEN) + "-" +
                       std::to_string(SIPXDP_MAX_PATTERN_LEN) + " bytes)";
        else if (!valid_utf8(st.pattern))
          st.problem = o + " " + shown + ": not translated (not UTF-8 text, which a JSON policy cannot hold)";
      } else if (o == "--algo") {
        value();
      } else if (o == "--from" || o == "--to") {
        std::string v = value();
        if (s.strings.empty()) s.strings.emplace_back();
        long off = all_digits(v) && v.size() <= 5 ? std::stol(v) : -1;
        if (o == "--from" ? off != 0 : off < 65535) s.strings.back().narrowed = true;
      } else if (o == "--icase") {
        if (s.strings.empty()) s.strings.emplace_back();
        s.strings.back().icase = true;
      } else if (o == "--tcp-flags" || o == "--syn" || o == "--tcp-option") {
        if (o == "--tcp-flags") {
          value();
          value();
        } else if (o == "--tcp-option") {
          value();
        }
        s.problems.push_back(std::string(n ? "! " : "") + o +
                             ": not translated (sipxdp does not match TCP flags or options)");
      } else if (o == "-f" || o == "--fragment") {
        s.problems.push_back(
            std::string(n ? "! " : "") + o +
            ": not translated (sipxdp gives a datagram's later fragments its first fragment's verdict)");
      } else if (o == "-c" || o == "--set-counters") {
        value();
        if (i + 1 < a.size() && all_digits(a[i + 1])) ++i;
      } else if (o.size() > 1 && o[0] == '-') {
        // Options of a target, or of a match already refused: their values are
        // the words up to the next option.
        std::vector<std::string> words = {o};
        while (i + 1 < a.size() && !(a[i + 1].size() > 1 && a[i + 1][0] == '-') && a[i + 1] != "!")
          words.push_back(a[++i]);
        if (!s.target.empty())
          s.target_args.insert(s.target_args.end(), words.begin(), words.end());
        else if (!unknown_module)
          s.problems.push_back(o + ": not translated (unknown option)");
      } else {
        fail(s.line, "unexpected word \"" + o + "\" (an option was expected)");
      }
    }
    if (neg) fail(s.line, "\"!\" at the end of the rule");
    bool ports = !s.m.dport.empty() || !s.m.sport.empty() || !s.either_port.empty();
    if (ports && !is_port_proto(s.m.proto)) {
      std::string p = s.m.proto ? protocol_name(*s.m.proto) : "any protocol";
      s.problems.push_back("ports of " + p + ": not translated (sipxdp matches ports of tcp and udp only)");
    }
    if (!s.either_port.empty() && (!s.m.dport.empty() || !s.m.sport.empty()))
      s.problems.push_back("--ports with --dport or --sport: not translated");
    if (!icmp_value.empty()) icmp(s, icmp_opt, icmp_value);
  }

  void icmp(Spec& s, const std::string& opt, const std::string& v) {
    bool v6 = s.m.proto == IPPROTO_ICMPV6;
    if (s.m.proto != IPPROTO_ICMP && !v6) {
      s.problems.push_back(opt + ": not translated (needs -p icmp or -p icmpv6)");
      return;
    }
    auto t = parse_icmp_type(v, v6);
    if (!t) {
      s.problems.push_back(opt + " " + v + ": not translated (unknown ICMP type)");
      return;
    }
    if (t->first < 0) return;
    s.m.icmp_type = {{static_cast<uint16_t>(t->first), static_cast<uint16_t>(t->first)}};
    if (t->second >= 0)
      s.diffs.push_back(opt + " " + v + ": matches every code of type " + std::to_string(t->first) +
                        " (sipxdp matches ICMP types, not codes)");
  }

  void translate() {
    const Table* filter = find_table("filter");
    if (filter) {
      auto it = filter->chains.find("INPUT");
      if (it != filter->chains.end()) {
        default_action_ = it->second.policy == "DROP" ? Action::drop : Action::allow;
      } else {
        note(filter->line, "no :INPUT line: default_action allow (iptables's policy until one is set)", true);
      }
      if (ipv6_)
        note(filter->line,
             "ip6tables-save rules: sipxdp applies the rules without addresses, and default_action, to IPv4 too "
             "(the IPv4 rules are in iptables-save output)",
             true);
      else
        note(filter->line,
             "iptables-save rules are for IPv4: sipxdp applies the rules without addresses, and default_action, "
             "to IPv6 too (the IPv6 rules are in ip6tables-save output)",
             true);
    } else {
      note(0, "no *filter table: default_action allow (iptables's policy until one is set)", true);
    }
    for (auto& t : tables_) chain_policy_notes(t);
    collect_interfaces();
    for (auto& s : specs_) {
      if (s.table == "filter" && s.chain == "INPUT")
        input_rule(s);
      else if (s.table == "mangle")
        mangle_rule(s);
      else
        other_rule(s);
    }
    if (!stateful_)
      for (size_t line : new_only_)
        note(line,
             "--state NEW: left out; without an ESTABLISHED accept, iptables let in only the first packet of each "
             "connection here, sipxdp lets in every packet",
             true);
    patterns();
    inspect();
    order_dscp();
  }

  const Table* find_table(const std::string& name) const {
    for (auto& t : tables_)
      if (t.name == name) return &t;
    return nullptr;
  }

  bool user_chain(const std::string& table, const std::string& chain) const {
    const Table* t = find_table(table);
    if (!t) return false;
    auto it = t->chains.find(chain);
    return it != t->chains.end() && it->second.policy == "-";
  }

  void chain_policy_notes(const Table& t) {
    for (auto& name : t.chain_order) {
      const ChainDecl& c = t.chains.at(name);
      if (c.policy != "DROP" || (t.name == "filter" && name == "INPUT")) continue;
      if (t.name == "filter" && name == "OUTPUT")
        note(c.line, ":OUTPUT DROP: not translated (sipxdp does not filter outbound packets)", false);
      else if (t.name == "filter" && name == "FORWARD")
        note(c.line,
             ":FORWARD DROP: not translated (XDP judges packets before routing: packets to be forwarded meet the "
             "INPUT rules)",
             false);
      else
        note(c.line, ":" + name + " DROP of *" + t.name + ": not translated", false);
    }
  }

  void collect_interfaces() {
    for (auto& s : specs_) {
      if (s.table == "filter" && s.chain == "INPUT" && !s.in_iface.empty() && !s.in_negated && s.in_iface != "lo")
        ifaces_.insert(s.in_iface);
      if (s.table == "mangle" && (s.chain == "OUTPUT" || s.chain == "POSTROUTING") && !s.out_iface.empty() &&
          !s.out_negated && s.out_iface != "lo")
        ifaces_.insert(s.out_iface);
    }
  }

  // A policy applies to the interface it is attached to: a rule for one
  // interface keeps its meaning only when no other interface is named.
  bool interface(const Spec& s, const std::string& opt, const std::string& name) {
    if (ifaces_.size() <= 1) {
      note(s.line,
           opt + " " + name + ": translated without it (a sipxdp policy applies to the interface it is attached " +
               "to: attach this one to " + name + ")",
           true);
      return true;
    }
    note(s.line,
         opt + " " + name + ": not translated (the rules name several interfaces: " +
             join(std::vector<std::string>(ifaces_.begin(), ifaces_.end()), ", ") +
             "; a sipxdp policy applies to the one it is attached to: write one policy per interface)",
         false);
    return false;
  }

  void target_note(const Spec& s) {
    const std::string& t = s.target;
    static const std::set<std::string> passing = {
        "MARK", "CONNMARK", "CT",  "NOTRACK", "SECMARK", "CONNSECMARK", "CLASSIFY", "TOS",     "DSCP",    "TTL",
        "HL",   "TCPMSS",   "SET", "TRACE",   "AUDIT",   "IDLETIMER",   "LED",      "RATEEST", "CHECKSUM"};
    std::string jump = (s.go_to ? "-g " : "-j ") + t;
    if (t.empty()) {
      note(s.line, "no -j target (the rule only counts packets): not translated (sipxdp counts every rule)", false);
    } else if (user_chain(s.table, t)) {
      if (t.rfind("f2b-", 0) == 0 || t.rfind("fail2ban", 0) == 0)
        note(s.line,
             jump +
                 ": not translated (fail2ban's chain: give fail2ban sipxdp's action, actionban = sipxdp ban add "
                 "<ip> --seconds <bantime>)",
             false);
      else
        note(s.line, jump + ": not translated (user-defined chains are not followed)", false);
    } else if (t == "LOG" || t == "NFLOG" || t == "ULOG") {
      note(s.line,
           jump +
               ": not translated (sipxdp logs nothing; every rule and the default action have counters: sipxdp "
               "stats)",
           false);
    } else if (passing.count(t)) {
      note(s.line, jump + ": not translated (it does not decide whether the packet passes)", false);
    } else {
      note(s.line, jump + ": not translated (no equivalent in sipxdp)", false);
    }
  }

  bool martian(const Spec& s) const {
    static const Cidr lo4 = parse_cidr("127.0.0.0/8").value(), lo6 = parse_cidr("::1/128").value();
    auto loopback = [&](const std::vector<Cidr>& cs) {
      return !cs.empty() && std::all_of(cs.begin(), cs.end(),
                                        [&](const Cidr& c) { return cidr_contains(lo4, c) || cidr_contains(lo6, c); });
    };
    return s.in_negated && s.in_iface == "lo" && (s.target == "DROP" || s.target == "REJECT") &&
           (loopback(s.m.dst) || loopback(s.m.src));
  }

  std::optional<Action> verdict(const Spec& s, bool& reject) const {
    reject = false;
    if (s.go_to) return std::nullopt;
    if (s.target == "ACCEPT") return Action::allow;
    if (s.target == "DROP") return Action::drop;
    if (s.target == "REJECT") {
      reject = true;
      return Action::drop;
    }
    // RETURN from a built-in chain ends it: the chain's policy decides.
    if (s.target == "RETURN") return default_action_;
    return std::nullopt;
  }

  void input_rule(const Spec& s) {
    if (s.in_iface == "lo" && !s.in_negated) {
      note(s.line, "-i lo: not needed (XDP is attached to one interface; loopback traffic never passes it)", false);
      return;
    }
    if (martian(s)) {
      note(s.line,
           "! -i lo to or from loopback: not needed (sipxdp drops packets to or from 127.0.0.0/8 or ::1 that "
           "arrive on its interface: counter martian)",
           false);
      return;
    }
    bool reject = false;
    auto act = verdict(s, reject);
    if (!act) return target_note(s);
    if (!s.problems.empty()) return note(s.line, join(s.problems, "; "), false);
    if (!s.in_iface.empty() && s.in_negated)
      return note(s.line, "! -i " + s.in_iface + ": not translated (sipxdp rules have no negation)", false);
    if (!s.out_iface.empty()) return note(s.line, "-o in INPUT: not translated", false);
    if (s.states) {
      const auto& st = *s.states;
      std::vector<std::string> other;
      for (auto& x : st)
        if (x != "NEW" && x != "ESTABLISHED" && x != "RELATED") other.push_back(x);
      if (!other.empty())
        return note(s.line, "--state " + join(other, ",") + ": not translated (sipxdp has no connection tracking)",
                    false);
      if (!st.count("NEW")) return established(s, *act);
      // sipxdp judges every packet, not only a connection's first.
      if (!st.count("ESTABLISHED") && *act == Action::allow) new_only_.push_back(s.line);
    }
    if (!s.in_iface.empty() && !interface(s, "-i", s.in_iface)) return;
    if (!s.strings.empty()) return scanner(s, *act, reject);
    if (reject) note(s.line, "REJECT becomes drop: XDP cannot answer (no ICMP error or TCP reset is sent)", true);
    for (auto& d : s.diffs) note(s.line, d, true);
    std::string base = name_from_comment(s.comment);
    auto add = [&](const Match& m) {
      std::string name = base.empty() ? rule_name_for(*act == Action::allow ? "in" : "drop", m) : base;
      rules_.push_back({s.line, name, m, *act, false, s.comment});
    };
    if (s.either_port.empty()) return add(s.m);
    note(s.line,
         "multiport --ports (source or destination port) becomes two rules: one by destination port, one by "
         "source port",
         true);
    Match d = s.m, p = s.m;
    d.dport = s.either_port;
    p.sport = s.either_port;
    add(d);
    add(p);
  }

  void established(const Spec& s, Action act) {
    const auto& st = *s.states;
    if (act != Action::allow || !st.count("ESTABLISHED"))
      return note(s.line,
                  "--state " + join(std::vector<std::string>(st.begin(), st.end()), ",") + " -j " + s.target +
                      ": not translated (sipxdp's only connection state is \"stateful\": replies to flows the "
                      "server opened pass)",
                  false);
    stateful_ = true;
    if (!(s.m == Match{}) || !s.either_port.empty() || !s.in_iface.empty()) {
      std::string what = match_text(s.m);
      if (!s.either_port.empty()) what += " ports " + port_text(s.either_port);
      if (!s.in_iface.empty()) what += " -i " + s.in_iface;
      note(
          s.line,
          "ESTABLISHED limited to " + what + ": \"stateful\": true lets in the replies to every flow the server opened",
          true);
    }
    if (st.count("RELATED"))
      note(s.line,
           "RELATED: \"stateful\" lets in ICMP errors about the server's flows, but follows no connection helper "
           "(nf_conntrack_sip's RTP expectations): open RTP with a port rule",
           true);
    if (std::any_of(rules_.begin(), rules_.end(), [](const OutRule& r) { return r.action == Action::drop; }))
      note(s.line,
           "ESTABLISHED after drop rules: sipxdp lets replies in instead of a drop, so replies now pass the drop "
           "rules before this line",
           true);
  }

  void scanner(const Spec& s, Action act, bool reject) {
    if (act != Action::drop)
      return note(s.line, "-m string -j " + s.target + ": not translated (sipxdp searches patterns only to drop)",
                  false);
    if (s.strings.size() > 1)
      return note(s.line, "-m string twice (both must occur): not translated (a sipxdp pattern stands alone)", false);
    const StringMatch& st = s.strings[0];
    if (!st.problem.empty()) return note(s.line, st.problem, false);
    if (st.pattern.empty()) return note(s.line, "-m string without --string: not translated", false);
    std::vector<Match> ms;
    if (!s.m.proto) {
      for (uint8_t p : {IPPROTO_UDP, IPPROTO_TCP}) {
        Match m = s.m;
        m.proto = p;
        ms.push_back(m);
      }
      note(s.line, "-m string without -p: sipxdp searches UDP and TCP payloads only", true);
    } else if (!is_port_proto(s.m.proto)) {
      return note(
          s.line,
          "-m string on " + protocol_name(*s.m.proto) + ": not translated (sipxdp searches UDP and TCP payloads only)",
          false);
    } else if (!s.either_port.empty()) {
      Match d = s.m, p = s.m;
      d.dport = s.either_port;
      p.sport = s.either_port;
      ms = {d, p};
    } else {
      ms = {s.m};
    }
    if (st.narrowed)
      note(s.line, "--from/--to: ignored (sipxdp searches the UDP/TCP payload, its first 4096 bytes)", true);
    if (reject) note(s.line, "REJECT becomes drop: XDP cannot answer (no ICMP error or TCP reset is sent)", true);
    for (auto& d : s.diffs) note(s.line, d, true);
    if (scanners_.empty())
      note(s.line,
           "-m string drops become sip.scanner_patterns, searched on the rules after them that accept what they "
           "search (inspect_sip); sip.ban_seconds is 0 because iptables drops without banning the source (sipxdp "
           "can: set ban_seconds)",
           true);
    for (auto& m : ms) scanners_.push_back({s.line, rules_.size(), m, st.pattern, st.icase});
  }

  void mangle_rule(const Spec& s) {
    bool out = s.chain == "OUTPUT" || s.chain == "POSTROUTING";
    if (s.target != "DSCP" || s.go_to) {
      if (s.target == "TOS")
        return note(s.line, "-j TOS: not translated (write it as a DSCP rule: class = TOS / 4)", false);
      return note(s.line,
                  "*mangle " + s.chain + " " + (s.target.empty() ? "without -j" : "-j " + s.target) +
                      ": not translated (sipxdp only marks DSCP, on outbound packets)",
                  false);
    }
    if (!out)
      return note(
          s.line,
          "-j DSCP in " + s.chain + ": not translated (sipxdp marks the packets OUTPUT and POSTROUTING would see)",
          false);
    std::optional<uint8_t> dscp;
    for (size_t i = 0; i + 1 < s.target_args.size(); ++i) {
      if (s.target_args[i] == "--set-dscp") dscp = parse_dscp_value(s.target_args[i + 1]);
      if (s.target_args[i] == "--set-dscp-class") dscp = parse_dscp_class(s.target_args[i + 1]);
    }
    if (!dscp) return note(s.line, "-j DSCP without a valid --set-dscp or --set-dscp-class: not translated", false);
    if (!s.problems.empty()) return note(s.line, join(s.problems, "; "), false);
    if (!s.in_iface.empty()) return note(s.line, "-i in " + s.chain + ": not translated", false);
    if (s.out_iface == "lo" && !s.out_negated)
      return note(s.line, "-o lo: not needed (loopback traffic never passes sipxdp's interface)", false);
    if (!s.out_iface.empty() && s.out_negated)
      return note(s.line, "! -o " + s.out_iface + ": not translated (sipxdp rules have no negation)", false);
    if (s.states)
      return note(s.line, "--state on a DSCP rule: not translated (DSCP rules do not match connection states)", false);
    if (!s.strings.empty()) return note(s.line, "-m string on a DSCP rule: not translated", false);
    if (!s.m.src.empty())
      return note(s.line,
                  "-s on a DSCP rule: not translated (DSCP rules match the destination; outbound packets come from "
                  "this host)",
                  false);
    if (!s.m.icmp_type.empty())
      return note(s.line, "ICMP type on a DSCP rule: not translated (DSCP rules match protocol, ports, destination)",
                  false);
    auto too_many = [](const std::vector<PortRange>& v) { return v.size() > SIPXDP_DSCP_RANGES; };
    if (too_many(s.m.sport) || too_many(s.m.dport) || too_many(s.either_port))
      return note(s.line,
                  "more than " + std::to_string(SIPXDP_DSCP_RANGES) +
                      " ports on a DSCP rule: not translated (split it, at most 8 ports or ranges each)",
                  false);
    if (!s.out_iface.empty() && !interface(s, "-o", s.out_iface)) return;
    for (auto& d : s.diffs) note(s.line, d, true);
    std::string cls = dscp_class_name(*dscp);
    std::string base = name_from_comment(s.comment);
    auto add = [&](const Match& m) {
      dscp_.push_back({s.line,
                       base.empty() ? dscp_name_for(cls.empty() ? "dscp" + std::to_string(*dscp) : cls, m) : base, m,
                       *dscp, s.comment});
    };
    if (s.either_port.empty()) return add(s.m);
    note(s.line,
         "multiport --ports (source or destination port) becomes two DSCP rules: one by source port, one by "
         "destination port",
         true);
    Match sp = s.m, dp = s.m;
    sp.sport = s.either_port;
    dp.dport = s.either_port;
    add(sp);
    add(dp);
  }

  void other_rule(const Spec& s) {
    if (s.table == "filter") {
      if (s.chain == "OUTPUT")
        note(s.line, "OUTPUT: not translated (sipxdp does not filter outbound packets)", false);
      else if (s.chain == "FORWARD")
        note(s.line,
             "FORWARD: not translated (XDP judges packets before routing: packets to be forwarded meet the INPUT "
             "rules)",
             false);
      else if (s.chain.rfind("f2b-", 0) == 0 || s.chain.rfind("fail2ban", 0) == 0)
        note(s.line,
             "chain " + s.chain +
                 ": not translated (fail2ban's chain: give fail2ban sipxdp's action, actionban = sipxdp ban add "
                 "<ip> --seconds <bantime>)",
             false);
      else
        note(s.line, "chain " + s.chain + ": not translated (user-defined chains are not followed)", false);
    } else if (s.table == "nat") {
      note(s.line, "*nat: not translated (sipxdp does not rewrite addresses or ports)", false);
    } else if (s.table == "raw") {
      note(s.line, "*raw: not translated (sipxdp has no connection tracking to exempt packets from)", false);
    } else {
      note(s.line, "*" + s.table + ": not translated", false);
    }
  }

  void patterns() {
    bool any_icase = false, all_icase = true;
    for (auto& sc : scanners_) {
      any_icase |= sc.icase;
      all_icase &= sc.icase;
    }
    ignore_case_ = any_icase;
    std::set<size_t> noted;
    if (any_icase && !all_icase)
      for (auto& sc : scanners_)
        if (!sc.icase && noted.insert(sc.line).second)
          note(sc.line,
               "\"" + escape_bytes(sc.pattern) +
                   "\" is matched ignoring case (sip.ignore_case holds for every pattern, and other string drops "
                   "have --icase)",
               true);
    std::set<std::string> seen, refused;
    for (auto& sc : scanners_) {
      std::string key = ignore_case_ ? lower(sc.pattern) : sc.pattern;
      if (refused.count(key)) {
        sc.valid = false;
      } else if (!seen.count(key)) {
        if (patterns_.size() >= SIPXDP_MAX_PATTERNS) {
          sc.valid = false;
          refused.insert(key);
          note(sc.line,
               "\"" + escape_bytes(sc.pattern) + "\": not translated (sipxdp holds at most " +
                   std::to_string(SIPXDP_MAX_PATTERNS) + " patterns)",
               false);
        } else {
          seen.insert(key);
          patterns_.push_back(sc.pattern);
        }
      }
    }
  }

  // The drops' patterns are searched on the allow rules after them that
  // accept what they search; a rule accepting more than that is split, so
  // the rest of it stays unsearched as in iptables.
  void inspect() {
    std::vector<OutRule> out;
    for (size_t i = 0; i < rules_.size(); ++i) {
      OutRule a = rules_[i];
      std::vector<const Scanner*> guards;
      if (a.action == Action::allow)
        for (auto& sc : scanners_)
          if (sc.valid && sc.pos <= i && overlaps(a.m, sc.m)) guards.push_back(&sc);
      if (guards.empty()) {
        out.push_back(std::move(a));
        continue;
      }
      pattern_note(a, guards);
      if (is_port_proto(a.m.proto) && covered(a.m, guards)) {
        a.inspect = true;
        out.push_back(std::move(a));
        continue;
      }
      std::vector<Match> parts;
      for (auto* g : guards) {
        auto x = intersect(a.m, g->m);
        if (x && std::find(parts.begin(), parts.end(), *x) == parts.end()) parts.push_back(*x);
      }
      std::vector<std::string> texts;
      for (auto& p : parts) {
        out.push_back({a.line, a.name + "-inspect", p, Action::allow, true, a.comment});
        texts.push_back(match_text(p));
      }
      note(a.line,
           "split: what the string drops before it search (" + join(texts, "; ") +
               ") is accepted by a rule of its own with inspect_sip, the rest without",
           true);
      out.push_back(std::move(a));
    }
    if (default_action_ == Action::allow) {
      std::vector<Match> done;
      for (auto& sc : scanners_) {
        if (!sc.valid || std::find(done.begin(), done.end(), sc.m) != done.end()) continue;
        done.push_back(sc.m);
        if (std::any_of(out.begin(), out.end(), [&](const OutRule& r) { return within(sc.m, r.m); })) continue;
        out.push_back({sc.line, rule_name_for("scan", sc.m), sc.m, Action::allow, true, ""});
        note(sc.line,
             "default_action is allow: what this drop searches that no rule decides gets a last rule that "
             "searches it (inspect_sip) and allows it",
             true);
      }
    }
    if (out.size() > SIPXDP_MAX_RULES) {
      note(out[SIPXDP_MAX_RULES].line,
           "this rule and the rest: not translated (a policy holds at most " + std::to_string(SIPXDP_MAX_RULES) +
               " rules)",
           false);
      out.resize(SIPXDP_MAX_RULES);
    }
    rules_ = std::move(out);
  }

  // Whether the string drops together search every packet `m` matches
  // (checked port range by port range).
  static bool covered(const Match& m, const std::vector<const Scanner*>& guards) {
    std::vector<Match> pieces;
    if (m.dport.empty()) {
      pieces.push_back(m);
    } else {
      for (auto& r : m.dport) {
        Match p = m;
        p.dport = {r};
        pieces.push_back(p);
      }
    }
    return std::all_of(pieces.begin(), pieces.end(), [&](const Match& p) {
      return std::any_of(guards.begin(), guards.end(), [&](const Scanner* g) { return within(p, g->m); });
    });
  }

  void pattern_note(const OutRule& a, const std::vector<const Scanner*>& guards) {
    std::set<std::string> searched;
    for (auto* g : guards) searched.insert(ignore_case_ ? lower(g->pattern) : g->pattern);
    std::vector<std::string> extra;
    for (auto& p : patterns_)
      if (!searched.count(ignore_case_ ? lower(p) : p)) extra.push_back("\"" + escape_bytes(p) + "\"");
    if (extra.empty()) return;
    note(a.line,
         "inspect_sip searches every pattern: also " + join(extra, ", ") +
             ", which no string drop before this rule searched for here",
         true);
  }

  // iptables applies every matching DSCP target in turn (the last one wins);
  // sipxdp applies the first match.
  void order_dscp() {
    bool conflict = false;
    for (size_t i = 0; i < dscp_.size() && !conflict; ++i)
      for (size_t j = i + 1; j < dscp_.size() && !conflict; ++j)
        conflict = dscp_[i].dscp != dscp_[j].dscp && overlaps(dscp_[i].m, dscp_[j].m);
    if (conflict) {
      std::reverse(dscp_.begin(), dscp_.end());
      note(dscp_.back().line,
           "DSCP rules in reverse order: iptables applies every matching DSCP target, so the last one wins; sipxdp "
           "applies the first match",
           true);
    }
    if (dscp_.size() > SIPXDP_MAX_DSCP_RULES) {
      for (size_t i = SIPXDP_MAX_DSCP_RULES; i < dscp_.size(); ++i)
        note(dscp_[i].line,
             "DSCP rule: not translated (a policy holds at most " + std::to_string(SIPXDP_MAX_DSCP_RULES) +
                 " DSCP rules)",
             false);
      dscp_.resize(SIPXDP_MAX_DSCP_RULES);
    }
  }

  ojson policy() {
    ojson p;
    p["version"] = 1;
    p["description"] = "Imported from " + origin_ + " (" + (ipv6_ ? "ip6tables-save" : "iptables-save") + ")";
    p["default_action"] = action_name(default_action_);
    p["stateful"] = stateful_;
    if (!patterns_.empty()) {
      ojson sip;
      sip["scanner_patterns"] = patterns_;
      sip["ignore_case"] = ignore_case_;
      sip["ban_seconds"] = 0;
      p["sip"] = std::move(sip);
    }
    std::set<std::string> used;
    ojson rules = ojson::array();
    for (auto& r : rules_) {
      ojson j;
      j["name"] = unique_name(r.name, used);
      if (r.m.proto) j["proto"] = proto_json(*r.m.proto);
      if (!r.m.dport.empty()) j["dport"] = ports_json(r.m.dport);
      if (!r.m.sport.empty()) j["sport"] = ports_json(r.m.sport);
      if (!r.m.icmp_type.empty()) j["icmp_type"] = ports_json(r.m.icmp_type);
      if (!r.m.src.empty()) j["src"] = cidrs_json(r.m.src);
      if (!r.m.dst.empty()) j["dst"] = cidrs_json(r.m.dst);
      j["action"] = action_name(r.action);
      if (r.inspect) j["inspect_sip"] = true;
      if (!r.comment.empty()) j["comment"] = text(r.comment);
      rules.push_back(std::move(j));
    }
    p["rules"] = std::move(rules);
    if (!dscp_.empty()) {
      std::set<std::string> dused;
      ojson ds = ojson::array();
      for (auto& d : dscp_) {
        ojson j;
        j["name"] = unique_name(d.name, dused);
        if (d.m.proto) j["proto"] = proto_json(*d.m.proto);
        if (!d.m.sport.empty()) j["sport"] = ports_json(d.m.sport);
        if (!d.m.dport.empty()) j["dport"] = ports_json(d.m.dport);
        if (!d.m.dst.empty()) j["dst"] = cidrs_json(d.m.dst);
        std::string cls = dscp_class_name(d.dscp);
        if (cls.empty())
          j["class"] = d.dscp;
        else
          j["class"] = cls;
        if (!d.comment.empty()) j["comment"] = text(d.comment);
        ds.push_back(std::move(j));
      }
      p["dscp"] = std::move(ds);
    }
    return p;
  }

  // JSON holds UTF-8 only: other bytes of a comment are written escaped.
  static std::string text(const std::string& s) { return valid_utf8(s) ? s : escape_bytes(s); }

  std::string origin_;
  bool ipv6_ = false;
  std::vector<Table> tables_;
  std::vector<Spec> specs_;
  std::vector<ImportNote> notes_;
  std::set<std::string> ifaces_;
  Action default_action_ = Action::allow;
  bool stateful_ = false;
  bool ignore_case_ = false;
  std::vector<size_t> new_only_;
  std::vector<OutRule> rules_;
  std::vector<Scanner> scanners_;
  std::vector<std::string> patterns_;
  std::vector<OutDscp> dscp_;
};

}  // namespace

Result<ImportResult> import_iptables_save(const std::string& text, const std::string& origin) {
  Importer imp(origin);
  try {
    return imp.run(text);
  } catch (const ImportError& e) {
    return make_error(one_line(origin + ":" + std::to_string(e.line) + ": " + e.msg));
  } catch (const std::exception& e) {
    // A case the checks above did not foresee: still one line, never an abort.
    return make_error(one_line(origin + ": " + e.what()));
  }
}

}  // namespace sipxdp
