// The maps every instance pins, from one list: the id enum, the pin names
// and the skeleton lookup are all made from it. A map listed here that the
// BPF object lacks fails to compile; one the object adds must be listed here
// or in SIPXDP_UNPINNED_MAPS (checked in datapath_impl.h).
#pragma once

#define SIPXDP_PINNED_MAPS(X) \
  X(state)                    \
  X(policy_hdr)               \
  X(port_class)               \
  X(lpm4)                     \
  X(lpm6)                     \
  X(comb)                     \
  X(cls_rule)                 \
  X(counters)                 \
  X(manifest)                 \
  X(rcu_sync)                 \
  X(sip_cfg)                  \
  X(sip_patterns)             \
  X(sip_tables)               \
  X(bans4)                    \
  X(bans6)                    \
  X(ban_prefixes4)            \
  X(ban_prefixes6)            \
  X(ban_hint)                 \
  X(frags)                    \
  X(flows)                    \
  X(flow_hint)                \
  X(dscp_rules)               \
  X(tcp_tails)                \
  X(event_cfg)                \
  X(event_budget)             \
  X(event_stats)              \
  X(event_recent)             \
  X(event_readers)            \
  X(event_owners)             \
  X(rate_limits)              \
  X(rl_state)                 \
  X(auth_fails)               \
  X(trust_learned)            \
  X(trust_hint)

// Maps of the object that are not pinned: per-CPU scratch space, the egress
// program's fragment memory, and the constants (.rodata).
#define SIPXDP_UNPINNED_MAPS(X) \
  X(scratch)                    \
  X(out_frags)                  \
  X(resp_scratch)               \
  X(rodata)

namespace sipxdp::detail {

enum MapId {
#define SIPXDP_X_ID(name) M_##name,
  SIPXDP_PINNED_MAPS(SIPXDP_X_ID)
#undef SIPXDP_X_ID
      M_NUM
};

inline constexpr const char* kMapNames[] = {
#define SIPXDP_X_NAME(name) #name,
    SIPXDP_PINNED_MAPS(SIPXDP_X_NAME)
#undef SIPXDP_X_NAME
};

static_assert(sizeof(kMapNames) / sizeof(kMapNames[0]) == M_NUM);

}  // namespace sipxdp::detail
