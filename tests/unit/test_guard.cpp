#include <doctest/doctest.h>

#include "policies.h"

#include "sipxdp/guard.h"

#include <algorithm>

using namespace sipxdp;
using namespace sipxdp::test;

TEST_CASE("SSH_CONNECTION parsing") {
  auto s = parse_ssh_connection("198.18.0.2 40222 198.18.0.1 22");
  REQUIRE(s);
  CHECK(s->str() == "198.18.0.2:40222 -> 198.18.0.1:22");
  auto m = parse_ssh_connection("::ffff:198.18.0.2 1 ::ffff:198.18.0.1 22");
  REQUIRE(m);
  CHECK(m->client.family == 4);
  auto v6 = parse_ssh_connection("2001:db8::2 5 2001:db8::1 2222");
  REQUIRE(v6);
  CHECK(v6->str() == "[2001:db8::2]:5 -> [2001:db8::1]:2222");
  CHECK(!parse_ssh_connection(nullptr));
  CHECK(!parse_ssh_connection("garbage"));
  CHECK(!parse_ssh_connection("198.18.0.2 70000 198.18.0.1 22"));
}

TEST_CASE("lock-out: which policies drop the session") {
  auto s = parse_ssh_connection("198.18.0.2 40222 198.18.0.1 22").value();
  CHECK(!lockout_reason(parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"ssh","proto":"tcp","dport":22,"action":"allow"}]})"),
                        s));
  CHECK(lockout_reason(parse_ok(R"({"version":1,"default_action":"drop","rules":[]})"), s).value() ==
        "no rule allows it and the default action is drop");
  CHECK(lockout_reason(parse_ok(R"({"version":1,"default_action":"allow","rules":[
    {"name":"no-ssh","proto":"tcp","dport":22,"action":"drop"}]})"),
                       s)
            .value() == "rule \"no-ssh\" drops it");
  CHECK(lockout_reason(parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"mgmt","proto":"tcp","dport":22,"src":"198.18.9.0/24","action":"allow"}]})"),
                       s));
  CHECK(!lockout_reason(parse_ok(R"({"version":1,"default_action":"allow","rules":[]})"), s));
}

namespace {

// The manifest an attached instance would hold for `text`, read back from its stored form.
Manifest live_manifest(const std::string& text) {
  Policy p = parse_ok(text);
  Manifest m = describe_policy(p, fresh_counters(p), text, "live.json", {"eth1", "", "auto"}, {});
  auto enc = encode_manifest(m, manifest_capacity());
  REQUIRE(enc.ok());
  auto dec = decode_manifest(enc.value());
  REQUIRE(dec.ok());
  return dec.value();
}

}  // namespace

TEST_CASE("policy diff") {
  Manifest live = live_manifest(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["friendly-scanner","sipcli"]},
    "rules":[
      {"name":"a","proto":"udp","dport":1,"action":"allow"},
      {"name":"b","proto":"udp","dport":2,"action":"allow"},
      {"name":"c","proto":"udp","dport":3,"action":"allow"},
      {"name":"d","proto":"udp","dport":4,"action":"allow"}]})");
  Policy next = parse_ok(R"({"version":1,"default_action":"allow",
    "sip":{"scanner_patterns":["sipcli","iWar"]},
    "rules":[
      {"name":"c","proto":"udp","dport":3,"action":"allow"},
      {"name":"a","proto":"udp","dport":1,"action":"allow"},
      {"name":"b","proto":"udp","dport":2,"action":"drop"},
      {"name":"e","proto":"udp","dport":5,"action":"allow"}]})");
  PolicyDiff d = diff_policy(live, next);
  CHECK(d.rules.added == std::vector<std::string>{"e"});
  CHECK(d.rules.removed == std::vector<std::string>{"d"});
  CHECK(d.rules.changed == std::vector<std::string>{"b"});
  CHECK(d.rules.moved == std::vector<std::string>{"c", "a", "b"});
  CHECK(d.patterns_added == std::vector<std::string>{"iWar"});
  CHECK(d.patterns_removed == std::vector<std::string>{"friendly-scanner"});
  REQUIRE(d.setting("default_action"));
  CHECK(d.setting("default_action")->before == std::vector<std::string>{"drop"});
  CHECK(d.setting("default_action")->after == std::vector<std::string>{"allow"});
  CHECK(!d.setting("sip.pattern_order"));  // the set changed: added/removed say it
  CHECK(!d.empty());
  auto lines = d.lines();
  CHECK(std::find(lines.begin(), lines.end(), "default_action: drop -> allow") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "rules added: e") != lines.end());
}

TEST_CASE("policy diff: DSCP rules and stateful replies") {
  Manifest live = live_manifest(R"({"version":1,"default_action":"drop","stateful":true,
    "dscp":[
      {"name":"sip","proto":"udp","sport":5060,"class":"cs3"},
      {"name":"rtp","proto":"udp","sport":"16384-32768","class":"ef"},
      {"name":"old","proto":"tcp","sport":5061,"class":"cs3"}]})");
  Policy next = parse_ok(R"({"version":1,"default_action":"drop","stateful":false,"flow_timeouts":{"udp":30},
    "dscp":[
      {"name":"rtp","proto":"udp","sport":"16384-32768","class":"ef"},
      {"name":"sip","proto":"udp","sport":5060,"class":"cs5"},
      {"name":"new","proto":"udp","sport":5080,"class":"cs3"}]})");
  PolicyDiff d = diff_policy(live, next);
  CHECK(d.dscp.added == std::vector<std::string>{"new"});
  CHECK(d.dscp.removed == std::vector<std::string>{"old"});
  CHECK(d.dscp.changed == std::vector<std::string>{"sip"});
  CHECK(d.dscp.moved == std::vector<std::string>{"rtp", "sip"});
  REQUIRE(d.setting("stateful"));
  CHECK(d.setting("stateful")->before == std::vector<std::string>{"on"});
  CHECK(d.setting("stateful")->after == std::vector<std::string>{"off"});
  REQUIRE(d.setting("flow_timeouts"));
  CHECK(d.setting("flow_timeouts")->before == std::vector<std::string>{"tcp 600 udp 60 icmp 30"});
  CHECK(d.setting("flow_timeouts")->after == std::vector<std::string>{"tcp 600 udp 30 icmp 30"});
  CHECK(d.rules.added.empty());
  CHECK(!d.empty());
  // The same policy again: nothing changes.
  const char* same = R"({"version":1,"default_action":"drop","stateful":false,
    "dscp":[{"name":"sip","proto":"udp","sport":5060,"class":"cs3"}]})";
  CHECK(diff_policy(live_manifest(same), parse_ok(same)).empty());
  CHECK(diff_policy(live_manifest(same), parse_ok(same)).lines() == std::vector<std::string>{"no change"});
}

TEST_CASE("policy diff: every setting of the sip block shows") {
  const char* base = R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["friendly-scanner","sipcli"],"learned_trust":{"enabled":false},"trusted":["198.18.0.0/24"]},
    "rules":[{"name":"sip","proto":"udp","dport":5060,"action":"allow","inspect_sip":true}]})";
  Manifest live = live_manifest(base);
  CHECK(diff_policy(live, parse_ok(base)).empty());
  auto with = [](const std::string& sip) {
    return std::string(
               R"({"version":1,"default_action":"drop","sip":{"scanner_patterns":["friendly-scanner","sipcli"],)") +
           (sip.find("learned_trust") == std::string::npos ? R"("learned_trust":{"enabled":false},)" : "") + sip +
           R"(},"rules":[{"name":"sip","proto":"udp","dport":5060,"action":"allow","inspect_sip":true}]})";
  };
  struct Case {
    std::string sip, setting, line;
  } cases[] = {
      {R"("trusted":["198.18.0.0/24"],"match":"headers")", "sip.match", "sip.match: payload -> headers"},
      {R"("trusted":["198.18.0.0/24"],"ignore_case":true)", "sip.ignore_case", "sip.ignore_case: off -> on"},
      {R"("trusted":["198.18.0.0/24"],"ban_seconds":0)", "sip.ban_seconds", "sip.ban_seconds: 600 -> 0"},
      {R"("trusted":["198.18.0.0/24"],"fragments":"drop")", "sip.fragments", "sip.fragments: inspect -> drop"},
      {R"("trusted":["0.0.0.0/0"])", "sip.trusted", "sip.trusted: added 0.0.0.0/0; removed 198.18.0.0/24"},
      {R"("trusted":["198.18.0.0/24"],"ipv6_prefix":56)", "sip.ipv6_prefix", "sip.ipv6_prefix: 64 -> 56"},
      {R"("trusted":["198.18.0.0/24"],"rate_limits":[{"name":"reg","methods":["REGISTER"],"requests":16,"per_seconds":2}])",
       "sip.rate_limits", "sip.rate_limits: added reg REGISTER 16/2s"},
      {R"("trusted":["198.18.0.0/24"],"auth_failures":{"max":5})", "sip.auth_failures",
       "sip.auth_failures: off -> 5 in 60s (401,403,407) ban 600s doubling to 86400s"},
      {R"("trusted":["198.18.0.0/24"],"learned_trust":{"max_seconds":600})", "sip.learned_trust",
       "sip.learned_trust: off -> on, at most 600s"},
  };
  for (auto& c : cases) {
    CAPTURE(c.sip);
    PolicyDiff d = diff_policy(live, parse_ok(with(c.sip)));
    REQUIRE(d.settings.size() == 1);
    CHECK(d.settings[0].name == c.setting);
    CHECK(d.lines() == std::vector<std::string>{c.line});
  }
  Policy reordered = parse_ok(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["sipcli","friendly-scanner"],"learned_trust":{"enabled":false},"trusted":["198.18.0.0/24"]},
    "rules":[{"name":"sip","proto":"udp","dport":5060,"action":"allow","inspect_sip":true}]})");
  CHECK(diff_policy(live, reordered).lines() ==
        std::vector<std::string>{"sip.pattern_order reordered: friendly-scanner, sipcli -> sipcli, friendly-scanner"});
}

TEST_CASE("policy diff: long lists are cut") {
  std::string rules;
  for (int i = 0; i < 30; ++i)
    rules += std::string(i ? "," : "") + R"({"name":"r)" + std::to_string(i) + R"(","proto":"udp","dport":)" +
             std::to_string(1000 + i) + R"(,"action":"allow"})";
  Manifest live = live_manifest(R"({"version":1,"default_action":"drop","rules":[)" + rules + "]}");
  PolicyDiff d = diff_policy(live, parse_ok(R"({"version":1,"default_action":"drop","rules":[]})"));
  REQUIRE(d.rules.removed.size() == 30);
  auto lines = d.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("rules removed: r0 r1 ", 0) == 0);
  CHECK(lines[0].find("r19 ... (30 in all)") != std::string::npos);
}

TEST_CASE("policy diff sees an edit past the third prefix of a list") {
  Policy before = parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"mgmt","proto":"tcp","dport":22,"action":"allow",
     "src":["198.18.1.0/24","198.18.2.0/24","198.18.3.0/24","198.18.4.0/24","198.18.5.0/24"]}],
    "dscp":[{"name":"peers","proto":"udp","class":"ef",
     "dst":["198.18.1.0/24","198.18.2.0/24","198.18.3.0/24","198.18.4.0/24"]}]})");
  Policy after = parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"mgmt","proto":"tcp","dport":22,"action":"allow",
     "src":["198.18.1.0/24","198.18.2.0/24","198.18.3.0/24","198.18.4.0/24","198.18.9.0/24"]}],
    "dscp":[{"name":"peers","proto":"udp","class":"ef",
     "dst":["198.18.1.0/24","198.18.2.0/24","198.18.3.0/24","198.18.8.0/24"]}]})");
  // The match texts agree (cut after three prefixes); the signatures do not.
  CHECK(before.rules[0].match_text() == after.rules[0].match_text());
  Manifest live = describe_policy(before, fresh_counters(before), "", "", {}, {});
  PolicyDiff d = diff_policy(live, after);
  CHECK(d.rules.changed == std::vector<std::string>{"mgmt"});
  CHECK(d.dscp.changed == std::vector<std::string>{"peers"});
  CHECK(diff_policy(live, before).empty());
}
