// Compiles a Policy into the lookup structures of bpf/include/sipxdp/abi.h.
#pragma once

#include <cstdint>
#include <memory>
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

// Counter slots for the named counters of a policy (chosen by the caller so
// that counters follow names across policy edits).
struct Slots {
  std::vector<uint32_t> rules;     // one per rule
  std::vector<uint32_t> patterns;  // one per sip.scanner_patterns entry
  std::vector<uint32_t> dscp;      // one per DSCP rule
};

// One generation's worth of policy structures, independent of any kernel.
struct CompiledPolicy {
  sipxdp_policy_hdr hdr{};
  std::vector<uint32_t> port_class;  // SIPXDP_PT_NUM * SIPXDP_PORTS, indexed [table][port]
  std::vector<Lpm4Entry> lpm4;
  std::vector<Lpm6Entry> lpm6;
  std::vector<CombEntry> comb;
  std::vector<sipxdp_rule> cls_rule;   // indexed by class; class 0 is the empty set
  std::vector<int> cls_first;          // the first rule of each class (-1: none), for tests
  std::vector<uint32_t> rule_counter;  // counter slot of each rule

  // Scanner patterns: settings, patterns (lowercased with ignore_case) and the
  // scan tables; all zero when no rule inspects SIP.
  sipxdp_sip_cfg sip_cfg{};
  std::vector<sipxdp_pattern> patterns;
  std::shared_ptr<sipxdp_scan_tables> tables;

  // DSCP rules in order (their destinations are lpm entries under SIPXDP_DIR_DSCP).
  std::vector<sipxdp_dscp_rule> dscp;

  uint32_t classes() const { return static_cast<uint32_t>(cls_rule.size()); }
};

Result<CompiledPolicy> compile_policy(const Policy& p, const Slots& slots);

// Consecutive slots, for callers with no history (tests, validate).
Slots fresh_counters(const Policy& p);

// The first pattern found in `payload` by the compiled tables (mirroring the
// kernel's scan), or -1. For tests of the compiler.
int compiled_scan(const CompiledPolicy& c, const std::string& payload);

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
