#include <doctest/doctest.h>

#include "policies.h"

#include "sipxdp/guard.h"

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

TEST_CASE("policy diff") {
  Manifest live;
  live.default_action = "drop";
  live.rules = {{"a", "udp dport 1", "allow", 512},
                {"b", "udp dport 2", "allow", 513},
                {"c", "udp dport 3", "allow", 514},
                {"d", "udp dport 4", "allow", 515}};
  live.patterns = {{"friendly-scanner", 600}, {"sipcli", 601}};
  Policy next = parse_ok(R"({"version":1,"default_action":"allow",
    "sip":{"scanner_patterns":["sipcli","iWar"]},
    "rules":[
      {"name":"c","proto":"udp","dport":3,"action":"allow"},
      {"name":"a","proto":"udp","dport":1,"action":"allow"},
      {"name":"b","proto":"udp","dport":2,"action":"drop"},
      {"name":"e","proto":"udp","dport":5,"action":"allow"}]})");
  PolicyDiff d = diff_policy(live, next);
  CHECK(d.added == std::vector<std::string>{"e"});
  CHECK(d.removed == std::vector<std::string>{"d"});
  CHECK(d.changed == std::vector<std::string>{"b"});
  CHECK(d.moved == std::vector<std::string>{"c", "a", "b"});
  CHECK(d.patterns_added == std::vector<std::string>{"iWar"});
  CHECK(d.patterns_removed == std::vector<std::string>{"friendly-scanner"});
  CHECK(d.default_before == "drop");
  CHECK(d.default_after == "allow");
  CHECK(!d.empty());
}

TEST_CASE("policy diff: DSCP rules and stateful replies") {
  Manifest live;
  live.default_action = "drop";
  live.stateful = true;
  live.dscp = {{"sip", "udp sport 5060", "cs3", 24, 520},
               {"rtp", "udp sport 16384-32768", "ef", 46, 521},
               {"old", "tcp sport 5061", "cs3", 24, 522}};
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
  CHECK(d.stateful_before);
  CHECK_FALSE(d.stateful_after);
  CHECK(d.timeouts_before == "tcp 600 udp 60 icmp 30");
  CHECK(d.timeouts_after == "tcp 600 udp 30 icmp 30");
  CHECK(d.added.empty());
  CHECK(!d.empty());
  // The same policy again: nothing changes.
  Manifest same;
  same.default_action = "drop";
  same.dscp = {{"sip", "udp sport 5060", "cs3", 24, 520}};
  CHECK(diff_policy(same, parse_ok(R"({"version":1,"default_action":"drop","stateful":false,
    "dscp":[{"name":"sip","proto":"udp","sport":5060,"class":"cs3"}]})"))
            .empty());
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
  Manifest live;
  live.default_action = "drop";
  live.rules = {{"mgmt", before.rules[0].match_text(), "allow", 512, before.rules[0].signature()}};
  live.dscp = {{"peers", before.dscp[0].match_text(), "ef", 46, 513, before.dscp[0].signature()}};
  live.stateful = true;
  PolicyDiff d = diff_policy(live, after);
  CHECK(d.changed == std::vector<std::string>{"mgmt"});
  CHECK(d.dscp.changed == std::vector<std::string>{"peers"});
  CHECK(diff_policy(live, before).empty());
}
