#include "sipxdp/guard.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "sipxdp/compiler.h"

namespace sipxdp {

PolicyDiff diff_policy(const Manifest& live, const Policy& next) {
  PolicyDiff d;
  std::map<std::string, const RuleInfo*> before;
  for (auto& r : live.rules) before[r.name] = &r;
  std::set<std::string> after;
  std::vector<std::string> kept_new_order;
  for (auto& r : next.rules) {
    after.insert(r.name);
    auto it = before.find(r.name);
    if (it == before.end()) {
      d.added.push_back(r.name);
      continue;
    }
    kept_new_order.push_back(r.name);
    if (it->second->match != r.match_text() || it->second->action != action_name(r.action)) d.changed.push_back(r.name);
  }
  std::vector<std::string> kept_old_order;
  for (auto& r : live.rules) {
    if (after.count(r.name))
      kept_old_order.push_back(r.name);
    else
      d.removed.push_back(r.name);
  }
  // A kept rule moved when its place among the kept rules changed.
  for (size_t i = 0; i < kept_new_order.size(); ++i)
    if (kept_new_order[i] != kept_old_order[i]) d.moved.push_back(kept_new_order[i]);
  std::set<std::string> pats_before, pats_after(next.sip.patterns.begin(), next.sip.patterns.end());
  for (auto& pt : live.patterns) pats_before.insert(pt.pattern);
  for (auto& pt : next.sip.patterns)
    if (!pats_before.count(pt)) d.patterns_added.push_back(pt);
  for (auto& pt : live.patterns)
    if (!pats_after.count(pt.pattern)) d.patterns_removed.push_back(pt.pattern);
  d.default_before = live.default_action;
  d.default_after = action_name(next.default_action);
  return d;
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
  k.proto = 6;
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

}  // namespace sipxdp
