// The plain first-match evaluation of a policy: the model the compiled
// tables (and the kernel) are checked against, and what the SSH guard asks.
#pragma once

#include <array>
#include <cstdint>

#include "sipxdp/policy.h"

namespace sipxdp {

// A packet as the lookup sees it.
struct PacketKey {
  int family = 4;
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;  // host order; dport holds the ICMP type for ICMP
  std::array<uint8_t, 16> src{}, dst{};
};

// The index of the first rule of `p` that matches `k`, or -1 for the default.
int reference_match(const Policy& p, const PacketKey& k);

// Whether prefix c holds address a of the given family.
bool prefix_contains(const Cidr& c, int family, const std::array<uint8_t, 16>& a);

}  // namespace sipxdp
