// Starting policies for the servers operators run (examples/presets, built
// into the binary): `sipxdp init --preset NAME [--mgmt CIDR] [--rtp LO-HI]`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp {

std::vector<std::string> preset_names();

// The preset as policy text, with the management prefixes (rules named
// *-mgmt, and sip.trusted) and the RTP range (rule "rtp", DSCP rule
// "rtp-ef") replaced when given. The result is checked with parse_policy.
Result<std::string> preset_policy(const std::string& name, const std::vector<Cidr>& mgmt,
                                  const std::optional<PortRange>& rtp);

}  // namespace sipxdp
