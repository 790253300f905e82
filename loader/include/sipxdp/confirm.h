// Commit-confirmed policy edits: `apply --confirm SECONDS` leaves a detached
// timer that puts the previous policy back unless `confirm` stops it first;
// `rollback` puts it back now.
#pragma once

#include <string>

#include "sipxdp/datapath.h"
#include "sipxdp/result.h"

namespace sipxdp {

// Starts the timer for the instance at `dir`: after `seconds`, if the policy
// whose text has `applied_sha256` is still live, the previous one comes back.
// The timer is a detached process (it outlives the terminal that ran apply).
Status start_confirm_timer(const std::string& dir, unsigned seconds, const std::string& applied_sha256);

// Stops a pending timer; true when there was one.
bool cancel_pending_rollback(const std::string& dir);

// Applies the policy the live one replaced (stored in the manifest).
Result<ApplySummary> rollback(const std::string& dir);

}  // namespace sipxdp
