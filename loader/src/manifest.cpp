#include "sipxdp/manifest.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "sipxdp/abi.h"

namespace sipxdp {

using json = nlohmann::json;

namespace {

constexpr char kSourceSep = '\x1e';

std::string on_off(bool b) {
  return b ? "on" : "off";
}

}  // namespace

size_t manifest_capacity() {
  return size_t(SIPXDP_MANIFEST_CHUNKS) * SIPXDP_MANIFEST_CHUNK - 1;  // a NUL ends the text
}

std::map<std::string, std::vector<std::string>> policy_settings(const Policy& p) {
  std::map<std::string, std::vector<std::string>> s;
  s["default_action"] = {action_name(p.default_action)};
  s["stateful"] = {on_off(p.flows.stateful)};
  s["flow_timeouts"] = {flow_timeouts_text(p.flows)};
  s["flow_table_size"] = {p.flows.table_size ? std::to_string(*p.flows.table_size) : "default"};
  s["sip.match"] = {p.sip.match == SipMatch::headers ? "headers" : "payload"};
  s["sip.ignore_case"] = {on_off(p.sip.ignore_case)};
  s["sip.ban_seconds"] = {std::to_string(p.sip.ban_seconds)};
  s["sip.fragments"] = {p.sip.fragments == SipFragments::drop ? "drop" : "inspect"};
  s["events.drops"] = {on_off(p.events.drops)};
  s["events.rate"] = {std::to_string(p.events.rate) + "/s"};
  s["events.burst"] = {std::to_string(p.events.burst)};
  s["events.snaplen"] = {std::to_string(p.events.snaplen)};
  s["sip.ipv6_prefix"] = {std::to_string(p.sip.ipv6_prefix)};
  s["sip.rate_limit_sources"] = {p.sip.rate_limit_sources ? std::to_string(*p.sip.rate_limit_sources) : "default"};
  auto& rl = s["sip.rate_limits"];
  for (auto& r : p.sip.rate_limits) rl.push_back(r.name + " " + r.text());
  const AuthFailures& a = p.sip.auth_failures;
  std::string codes;
  for (auto c : a.responses) codes += (codes.empty() ? "" : ",") + std::to_string(c);
  s["sip.auth_failures"] = {a.enabled
                                ? std::to_string(a.max) + " in " + std::to_string(a.window_seconds) + "s (" + codes +
                                      ") ban " + std::to_string(a.ban_seconds) + "s" +
                                      (a.escalate ? " doubling to " + std::to_string(a.max_ban_seconds) + "s" : "")
                                : "off"};
  s["sip.learned_trust"] = {learned_trust_active(p)
                                ? "on, at most " + std::to_string(p.sip.learned_trust.max_seconds) + "s"
                            : p.sip.learned_trust.enabled ? "off (nothing to exempt from: no rate limits, auth "
                                                            "failures or pattern bans on an inspect_sip rule)"
                                                          : "off"};
  auto& t = s["sip.trusted"];
  for (auto& c : p.sip.trusted) t.push_back(c.str());
  // The order of the patterns decides which one counts a packet holding several.
  auto& order = s["sip.pattern_order"];
  for (auto& pt : p.sip.patterns) order.push_back(escape_bytes(pt));
  return s;
}

bool is_list_setting(const std::string& name) {
  return name == "sip.trusted" || name == "sip.pattern_order" || name == "sip.rate_limits";
}

Manifest describe_policy(const Policy& p, const Slots& slots, const std::string& source, const std::string& path,
                         const InstanceId& where, const Manifest& previous) {
  Manifest m;
  m.iface = where.iface;
  m.netns = where.netns;
  m.mode = where.mode;
  m.policy_path = path;
  m.policy_sha256 = sha256_hex(source);
  m.default_action = action_name(p.default_action);
  m.applied_at = static_cast<uint64_t>(time(nullptr));
  for (size_t i = 0; i < p.rules.size(); ++i)
    m.rules.push_back({p.rules[i].name, p.rules[i].match_text(), action_name(p.rules[i].action), slots.rules[i],
                       p.rules[i].signature()});
  for (size_t i = 0; i < p.sip.patterns.size(); ++i) m.patterns.push_back({p.sip.patterns[i], slots.patterns[i]});
  m.sip_match = p.sip.match == SipMatch::headers ? "headers" : "payload";
  for (size_t i = 0; i < p.dscp.size(); ++i)
    m.dscp.push_back({p.dscp[i].name, p.dscp[i].match_text(), p.dscp[i].class_name, p.dscp[i].dscp, slots.dscp[i],
                      p.dscp[i].signature()});
  for (size_t i = 0; i < p.sip.rate_limits.size(); ++i)
    m.rate_limits.push_back(
        {p.sip.rate_limits[i].name, p.sip.rate_limits[i].text(), slots.rate_limits[i], slots.rate_limit_bans[i]});
  m.stateful = p.flows.stateful;
  m.flow_timeouts = flow_timeouts_text(p.flows);
  m.settings = policy_settings(p);
  m.source = source;
  m.previous_path = previous.policy_path;
  m.previous_source = previous.source;
  return m;
}

Result<std::string> encode_manifest(const Manifest& m, size_t max_bytes) {
  json j;
  j["abi"] = SIPXDP_ABI_VERSION;
  j["iface"] = m.iface;
  j["netns"] = m.netns;
  j["mode"] = m.mode;
  j["policy_path"] = m.policy_path;
  j["policy_sha256"] = m.policy_sha256;
  j["default_action"] = m.default_action;
  j["applied_at"] = m.applied_at;
  j["rules"] = json::array();
  for (auto& r : m.rules)
    j["rules"].push_back(
        {{"name", r.name}, {"match", r.match}, {"action", r.action}, {"counter", r.counter}, {"sig", r.sig}});
  j["patterns"] = json::array();
  for (auto& pt : m.patterns) j["patterns"].push_back({{"pattern", pt.pattern}, {"counter", pt.counter}});
  j["sip_match"] = m.sip_match;
  j["dscp"] = json::array();
  for (auto& d : m.dscp)
    j["dscp"].push_back({{"name", d.name},
                         {"match", d.match},
                         {"class", d.cls},
                         {"dscp", d.dscp},
                         {"counter", d.counter},
                         {"sig", d.sig}});
  j["rate_limits"] = json::array();
  for (auto& r : m.rate_limits)
    j["rate_limits"].push_back(
        {{"name", r.name}, {"text", r.text}, {"counter", r.counter}, {"ban_counter", r.ban_counter}});
  j["stateful"] = m.stateful;
  j["flow_timeouts"] = m.flow_timeouts;
  j["settings"] = m.settings;
  j["previous_path"] = m.previous_path;
  // Invalid UTF-8 (a pattern of raw bytes) is replaced, never thrown over.
  std::string meta = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string text = meta + kSourceSep + m.source + kSourceSep + m.previous_source;
  if (text.size() > max_bytes) text = meta + kSourceSep + m.source;
  if (text.size() > max_bytes)
    return make_error("policy too large to store: " + std::to_string(text.size()) +
                      " bytes of manifest (its description and text), at most " + std::to_string(max_bytes));
  return text;
}

Result<Manifest> decode_manifest(const std::string& text) {
  Manifest m;
  if (text.empty()) return m;
  std::string meta = text, sources;
  if (size_t rs = meta.find(kSourceSep); rs != std::string::npos) {
    sources = meta.substr(rs + 1);
    meta.resize(rs);
  }
  try {
    json j = json::parse(meta);
    if (j.value("abi", 0) != SIPXDP_ABI_VERSION)
      return make_error("the stored manifest was written by another sipxdp version; detach and attach again");
    m.iface = j.value("iface", "");
    m.netns = j.value("netns", "");
    m.mode = j.value("mode", "");
    m.policy_path = j.value("policy_path", "");
    m.policy_sha256 = j.value("policy_sha256", "");
    m.default_action = j.value("default_action", "");
    m.applied_at = j.value("applied_at", uint64_t(0));
    m.previous_path = j.value("previous_path", "");
    size_t rs = sources.find(kSourceSep);
    m.source = sources.substr(0, rs);
    if (rs != std::string::npos) m.previous_source = sources.substr(rs + 1);
    for (auto& r : j.at("rules"))
      m.rules.push_back({r.at("name"), r.at("match"), r.at("action"), r.at("counter"), r.at("sig")});
    for (auto& r : j.value("patterns", json::array())) m.patterns.push_back({r.at("pattern"), r.at("counter")});
    m.sip_match = j.value("sip_match", "payload");
    for (auto& r : j.value("dscp", json::array()))
      m.dscp.push_back({r.at("name"), r.at("match"), r.at("class"), r.at("dscp"), r.at("counter"), r.at("sig")});
    for (auto& r : j.value("rate_limits", json::array()))
      m.rate_limits.push_back({r.at("name"), r.at("text"), r.at("counter"), r.at("ban_counter")});
    m.stateful = j.value("stateful", false);
    m.flow_timeouts = j.value("flow_timeouts", "");
    if (j.contains("settings")) m.settings = j.at("settings").get<std::map<std::string, std::vector<std::string>>>();
  } catch (const std::exception& e) {
    return make_error(std::string("the stored manifest is unreadable: ") + e.what());
  }
  return m;
}

Status check_manifest_fits(const Policy& p, const std::string& source) {
  Slots slots = fresh_counters(p);
  Manifest m = describe_policy(p, slots, source, "", {}, {});
  auto t = encode_manifest(m, manifest_capacity());
  if (!t) return t.error();
  return ok_status();
}

}  // namespace sipxdp
