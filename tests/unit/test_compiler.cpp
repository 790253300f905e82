#include <doctest/doctest.h>

#include "policies.h"

#include <algorithm>
#include <random>

#include "compiled.h"
#include "model.h"
#include "sipxdp/compiler.h"

using namespace sipxdp;
using namespace sipxdp::test;

TEST_CASE("compiled lookup agrees with first-match on the example") {
  Policy p = parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"sip-udp","proto":"udp","dport":[5060,5080],"action":"allow"},
    {"name":"rtp","proto":"udp","dport":"16384-32768","action":"allow"},
    {"name":"esl","proto":"tcp","dport":8021,"src":["198.18.0.10/32","2001:db8:5::10/128"],"action":"allow"},
    {"name":"ping","proto":"icmp","icmp_type":8,"action":"allow"},
    {"name":"ssh","proto":"tcp","dport":22,"action":"allow"}]})");
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  struct Case {
    PacketKey k;
    int rule;
  } cases[] = {
      {v4(17, 40000, 5060, "203.0.113.1"), 0},   {v4(17, 40000, 5080, "203.0.113.1"), 0},
      {v4(17, 40000, 5070, "203.0.113.1"), -1},  {v4(17, 5060, 16384, "203.0.113.1"), 1},
      {v4(17, 5060, 32768, "203.0.113.1"), 1},   {v4(17, 5060, 32769, "203.0.113.1"), -1},
      {v4(6, 40000, 8021, "198.18.0.10"), 2},    {v4(6, 40000, 8021, "198.18.0.11"), -1},
      {v6(6, 40000, 8021, "2001:db8:5::10"), 2}, {v6(6, 40000, 8021, "2001:db8:5::11"), -1},
      {v4(1, 0, 8, "203.0.113.1"), 3},           {v4(1, 0, 0, "203.0.113.1"), -1},
      {v6(58, 0, 128, "2001:db8::1"), -1},       {v4(6, 1, 22, "203.0.113.1"), 4},
      {v4(6, 1, 5060, "203.0.113.1"), -1},       {v4(47, 0, 0, "203.0.113.1"), -1},
  };
  for (auto& cs : cases) {
    CHECK(reference_match(p, cs.k) == cs.rule);
    CHECK(compiled_match(c.value(), cs.k) == cs.rule);
  }
  CHECK(c->hdr.flags == (SIPXDP_HDR_VALID | SIPXDP_HDR_SRC | SIPXDP_HDR_STATEFUL));
  CHECK(c->hdr.default_action == SIPXDP_ACT_DROP);
}

TEST_CASE("random policies: compiled lookup equals first-match") {
  std::mt19937 rng(20261125);
  for (int round = 0; round < 300; ++round) {
    Policy p = random_policy(rng, 1 + static_cast<int>(rng() % 12));
    auto c = compile_policy(p, fresh_counters(p));
    REQUIRE(c.ok());
    for (int i = 0; i < 200; ++i) {
      PacketKey k = random_packet(rng);
      int want = reference_match(p, k), got = compiled_match(c.value(), k);
      if (want != got) {
        FAIL("round " << round << " packet " << i << ": proto " << int(k.proto) << " sport " << k.sport << " dport "
                      << k.dport << " family " << k.family << ": reference " << want << ", compiled " << got);
      }
    }
  }
}

TEST_CASE("counters are the caller's slots") {
  Policy p = parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"a","proto":"udp","dport":1,"action":"allow"},{"name":"b","proto":"udp","dport":2,"action":"drop"}]})");
  Slots slots = fresh_counters(p);
  slots.rules = {900, 777};
  auto c = compile_policy(p, slots);
  REQUIRE(c.ok());
  uint32_t ca = c->port_class[size_t(SIPXDP_PT_UDP) * SIPXDP_PORTS + 1];
  uint32_t cb = c->port_class[size_t(SIPXDP_PT_UDP) * SIPXDP_PORTS + 2];
  CHECK(c->cls_rule[ca].counter == 900);
  CHECK(c->cls_rule[ca].action == SIPXDP_ACT_ALLOW);
  CHECK(c->cls_rule[cb].counter == 777);
  CHECK(c->cls_rule[cb].action == SIPXDP_ACT_DROP);
  CHECK(c->port_class[size_t(SIPXDP_PT_UDP) * SIPXDP_PORTS + 3] == 0);
  slots.rules = {1};
  CHECK(!compile_policy(p, slots).ok());
}

TEST_CASE("5,000 rules and 100,000 prefixes compile into bounded tables") {
  Policy p;
  p.default_action = Action::drop;
  for (int i = 0; i < 5000; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    r.protos = {i % 2 ? ProtoKind::udp : ProtoKind::tcp};
    r.dport = {{static_cast<uint16_t>(1000 + i), static_cast<uint16_t>(1000 + i)}};
    r.action = Action::allow;
    p.rules.push_back(r);
  }
  Rule big;
  big.name = "blocklist";
  big.action = Action::drop;
  for (uint32_t i = 0; i < 100000; ++i) {
    Cidr c;
    c.family = 4;
    uint32_t a = (100u << 24) | (i << 8);
    c.addr[0] = a >> 24, c.addr[1] = a >> 16, c.addr[2] = a >> 8, c.addr[3] = a;
    c.plen = 24;
    big.src.push_back(c);
  }
  p.rules.insert(p.rules.begin(), big);
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  CHECK(c->lpm4.size() == 100001);
  CHECK(c->classes() < 20000);
  // A blocked source is dropped whatever the port; others reach the port rules.
  PacketKey k = v4(6, 1, 1000, "100.0.5.9");
  CHECK(compiled_match(c.value(), k) == 0);
  k = v4(6, 1, 1000, "198.18.0.1");
  CHECK(compiled_match(c.value(), k) == 1);
  k = v4(17, 1, 1001, "198.18.0.1");
  CHECK(compiled_match(c.value(), k) == 2);
}

TEST_CASE("class explosion is a clear error, not a hang") {
  // 300 rules each on its own port and 300 rules each on its own source:
  // 90,000 combinations exceed the class limit.
  Policy p;
  p.default_action = Action::drop;
  for (int i = 0; i < 300; ++i) {
    Rule r;
    r.name = "p" + std::to_string(i);
    r.protos = {ProtoKind::udp};
    r.dport = {{static_cast<uint16_t>(2000 + i), static_cast<uint16_t>(2000 + i)}};
    r.action = Action::allow;
    p.rules.push_back(r);
    Rule s;
    s.name = "s" + std::to_string(i);
    s.src = {parse_cidr("198.18." + std::to_string(i / 200) + "." + std::to_string(i % 200)).value()};
    s.action = Action::allow;
    p.rules.push_back(s);
  }
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(!c.ok());
  CHECK(c.error().what.find("policy too complex") == 0);
}

TEST_CASE("rules with their own port and source compile to one combination each") {
  // 16,384 such rules once took 69 s: the compiler tried every pair of classes.
  Policy p;
  p.default_action = Action::drop;
  for (int i = 0; i < 16384; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    r.protos = {ProtoKind::udp};
    r.dport = {{static_cast<uint16_t>(1000 + i), static_cast<uint16_t>(1000 + i)}};
    char a[32];
    std::snprintf(a, sizeof(a), "198.%d.%d.%d/32", 18 + (i >> 16), (i >> 8) & 255, i & 255);
    r.src = {parse_cidr(a).value()};
    r.action = Action::allow;
    p.rules.push_back(r);
  }
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  CHECK(c->comb.size() == 16384);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    int r = static_cast<int>(rng() % 16384);
    char a[32];
    std::snprintf(a, sizeof(a), "198.%d.%d.%d", 18 + (r >> 16), (r >> 8) & 255, r & 255);
    CHECK(compiled_match(c.value(), v4(17, 1, static_cast<uint16_t>(1000 + r), a)) == r);
    CHECK(compiled_match(c.value(), v4(17, 1, static_cast<uint16_t>(1000 + (r + 1) % 16384), a)) == -1);
  }
}

TEST_CASE("a rule every class holds is not multiplied into the combinations") {
  // 2,000 own-source rules and a catch-all at the end: the catch-all is each
  // class's wild part, not a combination per address.
  Policy p;
  for (int i = 0; i < 2000; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    r.protos = {ProtoKind::tcp};
    r.dport = {{22, 22}};
    char a[32];
    std::snprintf(a, sizeof(a), "198.18.%d.%d/32", i >> 8, i & 255);
    r.src = {parse_cidr(a).value()};
    r.action = Action::allow;
    p.rules.push_back(r);
  }
  Rule last;
  last.name = "rest";
  last.protos = {ProtoKind::tcp};
  last.action = Action::drop;
  p.rules.push_back(last);
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  CHECK(c->comb.size() <= 2001);
  CHECK(compiled_match(c.value(), v4(6, 1, 22, "198.18.3.4")) == 3 * 256 + 4);
  CHECK(compiled_match(c.value(), v4(6, 1, 22, "198.19.0.1")) == 2000);
  CHECK(compiled_match(c.value(), v4(6, 1, 23, "198.18.0.1")) == 2000);
}
