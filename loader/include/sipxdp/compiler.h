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
  std::vector<uint32_t> rules;            // one per rule
  std::vector<uint32_t> patterns;         // one per sip.scanner_patterns entry
  std::vector<uint32_t> dscp;             // one per DSCP rule
  std::vector<uint32_t> rate_limits;      // one per sip.rate_limits entry: requests dropped
  std::vector<uint32_t> rate_limit_bans;  // and sources it banned
};

// One generation's worth of policy structures, independent of any kernel.
struct CompiledPolicy {
  sipxdp_policy_hdr hdr{};
  std::vector<uint32_t> port_class;  // SIPXDP_PT_NUM * SIPXDP_PORTS, indexed [table][port]
  std::vector<Lpm4Entry> lpm4;
  std::vector<Lpm6Entry> lpm6;
  std::vector<CombEntry> comb;
  std::vector<sipxdp_rule> cls_rule;  // indexed by class; class 0 is the empty set
  std::vector<int> cls_first;         // the first rule of each class (-1: none), for tests

  // Scanner patterns: settings, patterns (lowercased with ignore_case) and the
  // scan tables; all zero when no rule inspects SIP.
  sipxdp_sip_cfg sip_cfg{};
  std::vector<sipxdp_pattern> patterns;
  std::shared_ptr<sipxdp_scan_tables> tables;

  // SIP rate limits, in order (rate_limits[gen]).
  std::vector<sipxdp_rate_limit> rate_limits;

  // DSCP rules in order (their destinations are lpm entries under SIPXDP_DIR_DSCP).
  std::vector<sipxdp_dscp_rule> dscp;

  // Drop events: written to event_cfg when the generation goes live.
  sipxdp_event_cfg events{};

  uint32_t classes() const { return static_cast<uint32_t>(cls_rule.size()); }
};

Result<CompiledPolicy> compile_policy(const Policy& p, const Slots& slots);

// Consecutive slots, for callers with no history (tests, validate).
Slots fresh_counters(const Policy& p);

}  // namespace sipxdp
