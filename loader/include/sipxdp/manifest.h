// The manifest: what the live policy is and where it came from, stored with
// the instance (the `manifest` map) so that stats, status, dry runs and
// rollback need nothing outside bpffs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sipxdp/compiler.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp {

// A rule as `stats` shows it.
struct RuleInfo {
  std::string name;
  std::string match;
  std::string action;
  uint32_t counter = 0;
  std::string sig;  // Rule::signature(), for diffs
};

struct Manifest {
  std::string iface;
  std::string netns;
  std::string mode;
  std::string policy_path;
  std::string policy_sha256;
  std::string default_action;
  uint64_t applied_at = 0;  // unix seconds
  uint32_t generation = 0;
  std::vector<RuleInfo> rules;
  struct Pattern {
    std::string pattern;
    uint32_t counter = 0;
  };
  std::vector<Pattern> patterns;
  std::string sip_match = "payload";  // where patterns are searched
  struct Dscp {
    std::string name;
    std::string match;
    std::string cls;  // as written in the policy
    uint32_t dscp = 0;
    uint32_t counter = 0;
    std::string sig;  // DscpRule::signature()
  };
  std::vector<Dscp> dscp;
  struct RateLimit {
    std::string name;
    std::string text;  // RateLimit::text()
    uint32_t counter = 0;
    uint32_t ban_counter = 0;
  };
  std::vector<RateLimit> rate_limits;
  bool stateful = false;
  std::string flow_timeouts;  // "tcp 600 udp 60 icmp 30"
  // Every setting outside the rule lists, by name (see policy_settings()).
  std::map<std::string, std::vector<std::string>> settings;
  std::string source;                          // the policy text as applied
  std::string previous_path, previous_source;  // the policy it replaced (for rollback)
};

// Settings of a policy that are not rules, patterns or DSCP rules, each as a
// list of words: "default_action": {"drop"}, "sip.trusted": {"198.18.0.0/24"}.
// Dry runs and apply summaries compare these, so a new policy block only has
// to add its entries here to be shown when it changes.
std::map<std::string, std::vector<std::string>> policy_settings(const Policy& p);
// Whether a setting is a list (shown as items added and removed) or one value.
bool is_list_setting(const std::string& name);

// Where the instance lives (kept across policy writes).
struct InstanceId {
  std::string iface, netns, mode;
};

// The manifest of `p` compiled with `slots`, replacing `previous`.
Manifest describe_policy(const Policy& p, const Slots& slots, const std::string& source, const std::string& path,
                         const InstanceId& where, const Manifest& previous);

// Text form (a JSON description, then the policy texts raw after ASCII
// record separators, which no valid policy contains). The previous policy is
// left out when both would not fit in `max_bytes`.
Result<std::string> encode_manifest(const Manifest& m, size_t max_bytes);
Result<Manifest> decode_manifest(const std::string& text);

// The manifest capacity of one generation (the map's size).
size_t manifest_capacity();

// Fails when `p` (with `source`) is too large to store: validate and apply
// check the same limit.
Status check_manifest_fits(const Policy& p, const std::string& source);

}  // namespace sipxdp
