#include "sipxdp/guard.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "sipxdp/compiler.h"

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
  // Signatures cover every prefix; manifests written before them have only
  // the (cut) match text, and then the new side is compared the same way.
  const bool sigs = std::any_of(live.rules.begin(), live.rules.end(), [](auto& r) { return !r.sig.empty(); }) ||
                    std::any_of(live.dscp.begin(), live.dscp.end(), [](auto& r) { return !r.sig.empty(); });
  for (auto& r : live.rules) before.push_back({r.name, sigs ? r.sig : r.match + " " + r.action});
  for (auto& r : next.rules)
    after.push_back({r.name, sigs ? r.signature() : r.match_text() + " " + action_name(r.action)});
  ListDiff rules = diff_list(before, after);
  d.added = rules.added;
  d.removed = rules.removed;
  d.changed = rules.changed;
  d.moved = rules.moved;
  before.clear();
  after.clear();
  for (auto& r : live.dscp) before.push_back({r.name, sigs ? r.sig : r.match + " " + std::to_string(r.dscp)});
  for (auto& r : next.dscp)
    after.push_back({r.name, sigs ? r.signature() : r.match_text() + " " + std::to_string(r.dscp)});
  d.dscp = diff_list(before, after);
  std::set<std::string> pats_before, pats_after(next.sip.patterns.begin(), next.sip.patterns.end());
  for (auto& pt : live.patterns) pats_before.insert(pt.pattern);
  for (auto& pt : next.sip.patterns)
    if (!pats_before.count(pt)) d.patterns_added.push_back(pt);
  for (auto& pt : live.patterns)
    if (!pats_after.count(pt.pattern)) d.patterns_removed.push_back(pt.pattern);
  d.default_before = live.default_action;
  d.default_after = action_name(next.default_action);
  d.stateful_before = live.stateful;
  d.stateful_after = next.flows.stateful;
  d.timeouts_before = live.flow_timeouts.empty() ? flow_timeouts_text(FlowConfig{}) : live.flow_timeouts;
  d.timeouts_after = flow_timeouts_text(next.flows);
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
