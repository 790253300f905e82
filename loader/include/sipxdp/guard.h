// Policy edits done carefully: what an edit would change, and whether it
// would cut off the SSH session it is run from.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sipxdp/datapath.h"
#include "sipxdp/policy.h"

namespace sipxdp {

// Names added, removed, changed (match or action) and moved in an ordered list.
struct ListDiff {
  std::vector<std::string> added, removed, changed, moved;
  bool empty() const { return added.empty() && removed.empty() && changed.empty() && moved.empty(); }
};

struct PolicyDiff {
  std::vector<std::string> added, removed, changed, moved;  // rule names
  std::vector<std::string> patterns_added, patterns_removed;
  ListDiff dscp;                              // DSCP rule names
  std::string default_before, default_after;  // equal when unchanged
  bool stateful_before = false, stateful_after = false;
  std::string timeouts_before, timeouts_after;  // flow timeouts, equal when unchanged
  bool empty() const {
    return added.empty() && removed.empty() && changed.empty() && moved.empty() && patterns_added.empty() &&
           patterns_removed.empty() && dscp.empty() && default_before == default_after &&
           stateful_before == stateful_after && timeouts_before == timeouts_after;
  }
};

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

}  // namespace sipxdp
