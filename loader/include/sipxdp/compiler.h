// Compiles a Policy into the lookup structures of bpf/include/sipxdp/abi.h.
#pragma once

#include <cstdint>
#include <vector>

#include "sipxdp/abi.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp {

struct Lpm4Entry {
  uint8_t dir;
  std::array<uint8_t, 4> addr;
  uint8_t plen;
  uint32_t cls;
};

struct Lpm6Entry {
  uint8_t dir;
  std::array<uint8_t, 16> addr;
  uint8_t plen;
  uint32_t cls;
};

struct CombEntry {
  uint8_t stage;
  uint32_t a, b, cls;
};

// One generation's worth of policy structures, independent of any kernel.
struct CompiledPolicy {
  sipxdp_policy_hdr hdr{};
  std::vector<uint32_t> port_class;  // SIPXDP_PT_NUM * SIPXDP_PORTS, indexed [table][port]
  std::vector<Lpm4Entry> lpm4;
  std::vector<Lpm6Entry> lpm6;
  std::vector<CombEntry> comb;
  std::vector<sipxdp_rule> cls_rule;   // indexed by class; class 0 is the empty set
  std::vector<uint32_t> rule_counter;  // counter slot of each rule

  uint32_t classes() const { return static_cast<uint32_t>(cls_rule.size()); }
};

// `rule_counter[i]` is the counter slot of rule i (chosen by the caller so
// that counters follow rule names across policy edits).
Result<CompiledPolicy> compile_policy(const Policy& p, const std::vector<uint32_t>& rule_counter);

// Slots 0..n-1 in rule order, for callers with no history (tests, validate).
std::vector<uint32_t> fresh_counters(const Policy& p);

// A packet as the lookup sees it, for the reference model and tests.
struct PacketKey {
  int family = 4;
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;  // host order; dport holds the ICMP type for ICMP
  std::array<uint8_t, 16> src{}, dst{};
};

// First-match evaluation straight from the policy (the slow obvious way).
// Returns the rule index or -1 for the default action.
int reference_match(const Policy& p, const PacketKey& k);

// Evaluation through the compiled tables, mirroring bpf/ingress.bpf.c.
int compiled_match(const CompiledPolicy& c, const PacketKey& k);

}  // namespace sipxdp
