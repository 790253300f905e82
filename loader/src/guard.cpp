#include "sipxdp/guard.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "sipxdp/reference.h"

namespace sipxdp {

namespace {

// `before` and `after` are (name, what it does) in policy order.
ListDiff diff_list(const std::vector<std::pair<std::string, std::string>>& before,
                   const std::vector<std::pair<std::string, std::string>>& after) {
  ListDiff d;
  std::map<std::string, std::string> old(before.begin(), before.end());
  std::set<std::string> names;
  std::vector<std::string> kept_new_order, kept_old_order;
  for (auto& [name, what] : after) {
    names.insert(name);
    auto it = old.find(name);
    if (it == old.end()) {
      d.added.push_back(name);
      continue;
    }
    kept_new_order.push_back(name);
    if (it->second != what) d.changed.push_back(name);
  }
  for (auto& [name, what] : before) {
    if (names.count(name))
      kept_old_order.push_back(name);
    else
      d.removed.push_back(name);
  }
  // A kept entry moved when its place among the kept entries changed.
  for (size_t i = 0; i < kept_new_order.size(); ++i)
    if (kept_new_order[i] != kept_old_order[i]) d.moved.push_back(kept_new_order[i]);
  return d;
}

}  // namespace

PolicyDiff diff_policy(const Manifest& live, const Policy& next) {
  PolicyDiff d;
  std::vector<std::pair<std::string, std::string>> before, after;
  for (auto& r : live.rules) before.push_back({r.name, r.sig});
  for (auto& r : next.rules) after.push_back({r.name, r.signature()});
  d.rules = diff_list(before, after);
  before.clear();
  after.clear();
  for (auto& r : live.dscp) before.push_back({r.name, r.sig});
  for (auto& r : next.dscp) after.push_back({r.name, r.signature()});
  d.dscp = diff_list(before, after);
  std::set<std::string> pats_before, pats_after(next.sip.patterns.begin(), next.sip.patterns.end());
  for (auto& pt : live.patterns) pats_before.insert(pt.pattern);
  for (auto& pt : next.sip.patterns)
    if (!pats_before.count(pt)) d.patterns_added.push_back(pt);
  for (auto& pt : live.patterns)
    if (!pats_after.count(pt.pattern)) d.patterns_removed.push_back(pt.pattern);
  auto now = policy_settings(next);
  std::set<std::string> names;
  for (auto& [k, v] : live.settings) names.insert(k);
  for (auto& [k, v] : now) names.insert(k);
  for (auto& k : names) {
    auto b = live.settings.find(k);
    auto a = now.find(k);
    std::vector<std::string> bv = b == live.settings.end() ? std::vector<std::string>{} : b->second;
    std::vector<std::string> av = a == now.end() ? std::vector<std::string>{} : a->second;
    if (bv == av) continue;
    // Patterns added or removed are listed on their own; their order only matters when the set is the same.
    if (k == "sip.pattern_order" && (!d.patterns_added.empty() || !d.patterns_removed.empty())) continue;
    d.settings.push_back({k, bv, av});
  }
  return d;
}

nlohmann::json to_json(const PolicyDiff& d) {
  auto list = [](const ListDiff& l) {
    return nlohmann::json{{"added", l.added}, {"removed", l.removed}, {"changed", l.changed}, {"moved", l.moved}};
  };
  nlohmann::json settings = nlohmann::json::array();
  for (auto& s : d.settings) settings.push_back({{"name", s.name}, {"before", s.before}, {"after", s.after}});
  return {{"empty", d.empty()},
          {"rules", list(d.rules)},
          {"patterns", {{"added", d.patterns_added}, {"removed", d.patterns_removed}}},
          {"dscp", list(d.dscp)},
          {"settings", settings},
          {"lines", d.lines(SIZE_MAX)}};
}

const SettingChange* PolicyDiff::setting(const std::string& name) const {
  for (auto& s : settings)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

std::string join_cut(const std::vector<std::string>& v, size_t max, const char* sep = " ") {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? sep : "") + v[i];
  if (v.size() > max) out += std::string(sep) + "... (" + std::to_string(v.size()) + " in all)";
  return out;
}

}  // namespace

std::vector<std::string> PolicyDiff::lines(size_t max) const {
  std::vector<std::string> out;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (!v.empty()) out.push_back(std::string(what) + ": " + join_cut(v, max));
  };
  list("rules added", rules.added);
  list("rules removed", rules.removed);
  list("rules changed", rules.changed);
  list("rules moved", rules.moved);
  list("patterns added", patterns_added);
  list("patterns removed", patterns_removed);
  list("dscp rules added", dscp.added);
  list("dscp rules removed", dscp.removed);
  list("dscp rules changed", dscp.changed);
  list("dscp rules moved", dscp.moved);
  for (auto& s : settings) {
    bool scalar = !is_list_setting(s.name);
    if (scalar) {
      out.push_back(s.name + ": " + (s.before.empty() ? "-" : s.before[0]) + " -> " +
                    (s.after.empty() ? "-" : s.after[0]));
      continue;
    }
    std::multiset<std::string> b(s.before.begin(), s.before.end()), a(s.after.begin(), s.after.end());
    if (a == b) {
      out.push_back(s.name + " reordered: " + join_cut(s.before, max, ", ") + " -> " + join_cut(s.after, max, ", "));
      continue;
    }
    std::vector<std::string> added, removed;
    for (auto& x : s.after)
      if (!b.count(x)) added.push_back(x);
    for (auto& x : s.before)
      if (!a.count(x)) removed.push_back(x);
    std::string line = s.name + ":";
    if (!added.empty()) line += " added " + join_cut(added, max);
    if (!removed.empty()) line += std::string(added.empty() ? "" : ";") + " removed " + join_cut(removed, max);
    out.push_back(line);
  }
  if (out.empty()) out.push_back("no change");
  return out;
}

std::string SshSession::str() const {
  auto addr = [](const Cidr& c) {
    std::string s = c.str();
    s = s.substr(0, s.find('/'));
    return c.family == 6 ? "[" + s + "]" : s;
  };
  return addr(client) + ":" + std::to_string(client_port) + " -> " + addr(server) + ":" + std::to_string(server_port);
}

std::optional<SshSession> parse_ssh_connection(const char* value) {
  if (!value) return std::nullopt;
  std::istringstream in(value);
  std::string c, s;
  unsigned cp = 0, sp = 0;
  if (!(in >> c >> cp >> s >> sp) || cp > 65535 || sp > 65535) return std::nullopt;
  auto strip = [](std::string a) {  // "::ffff:198.18.0.2" as sshd may print it
    if (a.rfind("::ffff:", 0) == 0 && a.find('.') != std::string::npos) a = a.substr(7);
    return a;
  };
  auto cc = parse_cidr(strip(c)), sc = parse_cidr(strip(s));
  if (!cc || !sc) return std::nullopt;
  SshSession out;
  out.client = cc.value();
  out.server = sc.value();
  out.client_port = static_cast<uint16_t>(cp);
  out.server_port = static_cast<uint16_t>(sp);
  return out;
}

std::optional<std::string> lockout_reason(const Policy& p, const SshSession& s) {
  PacketKey k;
  k.family = s.client.family;
  k.proto = IPPROTO_TCP;
  k.sport = s.client_port;
  k.dport = s.server_port;
  k.src = s.client.addr;
  k.dst = s.server.addr;
  int r = reference_match(p, k);
  if (r >= 0) {
    if (p.rules[r].action == Action::allow) return std::nullopt;
    return "rule \"" + p.rules[r].name + "\" drops it";
  }
  if (p.default_action == Action::allow) return std::nullopt;
  return "no rule allows it and the default action is drop";
}

std::optional<std::string> ssh_lockout(const Policy& p, const std::string& iface, const char* ssh_connection) {
  auto ssh = parse_ssh_connection(ssh_connection);
  if (!ssh) return std::nullopt;
  bool on_iface = false;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) == 0) {
    for (ifaddrs* i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || iface != i->ifa_name) continue;
      if (i->ifa_addr->sa_family == AF_INET && ssh->server.family == 4)
        on_iface |=
            std::memcmp(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, ssh->server.addr.data(), 4) == 0;
      if (i->ifa_addr->sa_family == AF_INET6 && ssh->server.family == 6)
        on_iface |=
            std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, ssh->server.addr.data(), 16) == 0;
    }
    freeifaddrs(ifa);
  }
  if (!on_iface) return std::nullopt;
  auto why = lockout_reason(p, *ssh);
  if (!why) return std::nullopt;
  return "refusing: this policy would drop your SSH session " + ssh->str() + " (" + *why +
         "); fix the policy, or use --force";
}

}  // namespace sipxdp
