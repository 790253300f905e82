// Policy generations: which counter slot each named counter of a new policy
// takes. A pure function, so the rule it follows is tested without a kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sipxdp/compiler.h"
#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp {

struct SlotPlan {
  Slots slots;                    // for compile_policy
  std::vector<uint32_t> fresh;    // slots that start counting from zero
  size_t kept = 0, added = 0;     // rules whose name the live policy has, and the others
  std::vector<RuleInfo> removed;  // live rules the new policy no longer has (with their slots)
};

// Counters follow names: a rule, pattern or DSCP rule of `next` whose name
// the live policy (`live`, empty when none) also has keeps its slot; any
// other takes the lowest slot that no live counter uses (so packets still
// being judged by the live generation never count on a new name).
Result<SlotPlan> plan_slots(const Manifest& live, const Policy& next);

}  // namespace sipxdp
