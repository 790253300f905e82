// Policy edits done carefully: what an edit would change, and whether it
// would cut off the SSH session it is run from.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"

namespace sipxdp {

// Names added, removed, changed (match or action) and moved in an ordered list.
struct ListDiff {
  std::vector<std::string> added, removed, changed, moved;
  bool empty() const { return added.empty() && removed.empty() && changed.empty() && moved.empty(); }
};

// A setting (see policy_settings()) whose value changes.
struct SettingChange {
  std::string name;
  std::vector<std::string> before, after;
};

struct PolicyDiff {
  ListDiff rules;  // rule names
  std::vector<std::string> patterns_added, patterns_removed;
  ListDiff dscp;  // DSCP rule names
  std::vector<SettingChange> settings;
  bool empty() const {
    return rules.empty() && patterns_added.empty() && patterns_removed.empty() && dscp.empty() && settings.empty();
  }
  // One line per kind of change ("rules added: a b", "sip.match: payload -> headers");
  // lists longer than `max_names` are cut with a count.
  std::vector<std::string> lines(size_t max_names = 20) const;
  const SettingChange* setting(const std::string& name) const;
};

// A dry run's changes as JSON (for --json).
nlohmann::json to_json(const PolicyDiff& d);

// What applying `next` over the live policy described by `live` changes.
PolicyDiff diff_policy(const Manifest& live, const Policy& next);

// The SSH session of $SSH_CONNECTION ("client port server port").
struct SshSession {
  Cidr client, server;
  uint16_t client_port = 0, server_port = 0;
  std::string str() const;
};
std::optional<SshSession> parse_ssh_connection(const char* value);

// Why `p` would drop the session's packets (the rule or the default), or
// nothing when it lets them through.
std::optional<std::string> lockout_reason(const Policy& p, const SshSession& s);

// The refusal for applying `p` on `iface` (current network namespace) from
// the SSH session `ssh_connection` ($SSH_CONNECTION, may be null): set only
// when the session's server address is on that interface and `p` drops it.
std::optional<std::string> ssh_lockout(const Policy& p, const std::string& iface, const char* ssh_connection);

}  // namespace sipxdp
