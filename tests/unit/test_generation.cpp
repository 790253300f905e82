// The slot planner: counters follow names across policy edits.
#include <doctest/doctest.h>

#include <set>

#include "policies.h"
#include "sipxdp/generation.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

Manifest live_of(const Policy& p, const SlotPlan& plan) {
  return describe_policy(p, plan.slots, "", "", {}, {});
}

}  // namespace

TEST_CASE("slot plan: a first policy takes consecutive slots, all fresh") {
  Policy p = parse_ok(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["aaaa1","bbbb2"]},
    "rules":[{"name":"a","proto":"udp","dport":1,"action":"allow","inspect_sip":true},{"name":"b","action":"drop"}],
    "dscp":[{"name":"d","proto":"udp","sport":1,"class":"ef"}]})");
  auto plan = plan_slots(Manifest{}, p);
  REQUIRE(plan.ok());
  CHECK(plan->slots.rules == std::vector<uint32_t>{512, 513});
  CHECK(plan->slots.patterns == std::vector<uint32_t>{514, 515});
  CHECK(plan->slots.dscp == std::vector<uint32_t>{516});
  CHECK(plan->fresh == std::vector<uint32_t>{512, 513, 514, 515, 516});
  CHECK(plan->added == 2);
  CHECK(plan->kept == 0);
  CHECK(plan->removed.empty());
}

TEST_CASE("slot plan: names keep their slots; new names never take a live slot") {
  Policy before = parse_ok(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["aaaa1","bbbb2"]},
    "rules":[{"name":"a","proto":"udp","dport":1,"action":"allow","inspect_sip":true},
             {"name":"b","action":"drop"},{"name":"c","action":"drop"}],
    "dscp":[{"name":"d","proto":"udp","sport":1,"class":"ef"}]})");
  auto first = plan_slots(Manifest{}, before);
  REQUIRE(first.ok());
  Manifest live = live_of(before, first.value());
  Policy after = parse_ok(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["cccc3","aaaa1"]},
    "rules":[{"name":"c","action":"drop"},{"name":"x","action":"drop"},
             {"name":"a","proto":"udp","dport":2,"action":"allow","inspect_sip":true}],
    "dscp":[{"name":"e","proto":"udp","sport":1,"class":"ef"},{"name":"d","proto":"udp","sport":1,"class":"cs3"}]})");
  auto plan = plan_slots(live, after);
  REQUIRE(plan.ok());
  // c and a keep theirs (514, 512); x is new and takes no live slot.
  CHECK(plan->slots.rules[0] == 514);
  CHECK(plan->slots.rules[2] == 512);
  std::set<uint32_t> live_slots = {512, 513, 514, 515, 516, 517};
  CHECK(!live_slots.count(plan->slots.rules[1]));
  CHECK(plan->slots.patterns[1] == 515);  // aaaa1 keeps its slot
  CHECK(!live_slots.count(plan->slots.patterns[0]));
  CHECK(plan->slots.dscp[1] == 517);  // d keeps its slot though its class changed
  CHECK(!live_slots.count(plan->slots.dscp[0]));
  CHECK(plan->fresh.size() == 3);
  for (uint32_t s : plan->fresh) CHECK(!live_slots.count(s));
  CHECK(plan->kept == 2);
  CHECK(plan->added == 1);
  REQUIRE(plan->removed.size() == 1);
  CHECK(plan->removed[0].name == "b");
  CHECK(plan->removed[0].counter == 513);
  // Every slot of the new policy is distinct.
  std::set<uint32_t> all;
  for (auto v : {plan->slots.rules, plan->slots.patterns, plan->slots.dscp})
    for (auto s : v) CHECK(all.insert(s).second);
}

TEST_CASE("slot plan: the largest policy fits beside the largest live one") {
  Policy big;
  big.default_action = Action::drop;
  for (int i = 0; i < SIPXDP_MAX_RULES; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    big.rules.push_back(r);
  }
  auto first = plan_slots(Manifest{}, big);
  REQUIRE(first.ok());
  Policy other = big;
  for (auto& r : other.rules) r.name = "n" + r.name;  // every name new
  auto second = plan_slots(live_of(big, first.value()), other);
  REQUIRE(second.ok());
  CHECK(second->fresh.size() == size_t(SIPXDP_MAX_RULES));
  CHECK(second->removed.size() == size_t(SIPXDP_MAX_RULES));
}
