// The kernel side: loading, pinning, attaching, and writing compiled policies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sipxdp/compiler.h"
#include "sipxdp/drop_events.h"
#include "sipxdp/fd.h"
#include "sipxdp/guard.h"
#include "sipxdp/instance.h"
#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp {

enum class XdpMode { auto_, native, generic };
const char* xdp_mode_name(XdpMode m);
Result<XdpMode> parse_xdp_mode(const std::string& s);

struct CounterValue {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// One row of `stats`: a built-in path or a rule.
struct StatRow {
  std::string name;
  std::string match;
  std::string action;
  bool builtin = false;
  CounterValue value;
  bool pattern = false;     // a scanner pattern's hits
  bool dscp = false;        // an egress DSCP rule's marks
  bool rate_limit = false;  // a SIP rate limit's drops ("ratelimit:NAME") or bans ("ratelimit-bans:NAME")
};

struct ApplySummary {
  uint32_t generation = 0;
  size_t rules = 0;
  size_t classes = 0;
  size_t dscp = 0;
  size_t kept = 0, added = 0, removed = 0;
  std::vector<std::pair<std::string, CounterValue>> removed_counts;
  PolicyDiff diff;  // what changed from the policy it replaced
};

// An apply summary as JSON (for --json).
nlohmann::json to_json(const ApplySummary& s);

// Names and descriptions of the built-in counters (abi.h's list), in the order `stats` shows them.
struct BuiltinCounter {
  uint32_t slot;
  const char* name;
  const char* action;
  const char* what;
};
const std::vector<BuiltinCounter>& builtin_counters();

// The maps of one sipxdp instance, owned by fd, whichever way they were found.
class Datapath {
 public:
  Datapath(Datapath&&) noexcept;
  Datapath& operator=(Datapath&&) noexcept;
  ~Datapath();

  // Loads the programs into the kernel without attaching or pinning (tests).
  static Result<Datapath> load(uint32_t flow_table_size = SIPXDP_FLOWS_DEFAULT,
                               uint32_t rate_limit_sources = SIPXDP_RL_SOURCES_DEFAULT);
  // Opens an attached instance from its pins.
  static Result<Datapath> open_pinned(const std::string& dir);

  // Compiles `p` into the spare generation and makes it live with one write.
  // Counters follow rule names: a rule keeps its slot across edits.
  Result<ApplySummary> apply(const Policy& p, const std::string& source, const std::string& path);

  Result<Manifest> manifest() const;
  Result<std::vector<StatRow>> stats() const;
  // The same, for the manifest already read (a scrape reads it once).
  Result<std::vector<StatRow>> stats(const Manifest& m) const;
  Result<CounterValue> counter(uint32_t slot) const;
  Result<uint32_t> active_generation() const;

  // Bans: automatic (a scanner pattern matched) and manual (ban_add).
  struct Ban {
    Cidr prefix;              // an address, an IPv6 prefix (sip.ipv6_prefix), or a manual prefix
    std::string kind;         // "pattern", "ratelimit", "auth", "manual"
    std::string reason;       // the pattern, the rate limit's name, "auth-failures", "manual"
    uint64_t hits = 0;        // packets dropped since the ban
    int64_t seconds_left;     // -1: until removed
    uint64_t since_unix = 0;  // when it was banned (Unix time)
    uint32_t slot = 0;        // the counter slot of what banned it
  };
  // Learned trust: phone flows a 2xx to their REGISTER made trusted, live ones.
  struct TrustedPhone {
    Cidr addr;  // the phone's address (/32 or /128)
    std::string proto;
    uint16_t port = 0;
    int64_t seconds_left = 0;
    uint64_t since_unix = 0;  // first registered (Unix time)
    uint64_t hits = 0;        // packets let in past a ban of its address
  };
  Result<std::vector<TrustedPhone>> learned_trust() const;

  Result<std::vector<Ban>> bans() const;
  Result<std::vector<Ban>> bans(const Manifest& m) const;  // reasons named from `m`
  Status ban_add(const Cidr& prefix, uint32_t seconds);    // seconds 0: until removed
  // Lifts the bans inside `prefix` (or holding it): automatic ones, and
  // manual ones of that prefix or longer. The number lifted.
  Result<size_t> ban_del(const Cidr& prefix);
  Result<size_t> ban_del_all(const std::string& kind = {});  // kind "": every ban
  Result<size_t> ban_del_where(const std::function<bool(const Ban&)>& pick);

  // Drop events (drop_events.h): per reason (counter slot), summed over CPUs.
  struct EventCount {
    uint64_t emitted = 0;
    uint64_t suppressed = 0;  // over the reason's rate: no event made
  };
  Result<EventCount> event_count(uint32_t slot) const;
  // Event copies that readers' full ring buffers refused.
  Result<uint64_t> events_lost() const;
  // The last SIPXDP_EVENT_RECENT events of every CPU, oldest first.
  Result<std::vector<RawEvent>> recent_events() const;
  // Claims one of the SIPXDP_EVENT_READERS reader slots: a ring buffer of the
  // caller's own that every event is copied to, until the subscription ends.
  Result<EventSubscription> subscribe_events() const;
  // Policies applied since the attach (the attach's own included).
  Result<uint64_t> applies() const;

  int xdp_prog_fd() const;  // valid after load()
  int tc_prog_fd() const;   // valid after load()

  // The flow table (stateful replies): its size and how full it is.
  struct FlowTable {
    uint32_t capacity = 0;
    uint64_t entries = 0;  // recorded flows, expired ones included until recycled
    uint64_t live = 0;     // flows still within their timeout
  };
  Result<FlowTable> flow_table() const;
  // Fails when `p` asks for what only a new attach can change (flow_table_size).
  // `live`: the live policy's manifest when the caller has read it already.
  Status check_load_time_settings(const Policy& p, const Manifest* live = nullptr) const;

  // Attach/detach of the XDP program on an interface in the current netns.
  struct AttachOptions {
    std::string ifname;
    std::string netns;  // empty: the caller's; otherwise the command runs inside it
    XdpMode mode = XdpMode::auto_;
  };
  // Pins the maps under pin_dir(), applies `p`, then attaches and pins the link.
  // On any failure nothing is left attached or pinned.
  Status attach_and_pin(const AttachOptions& o, const Policy& p, const std::string& source, const std::string& path);

  // Identity of the attached program (from the pinned link).
  struct LinkInfo {
    uint32_t prog_id = 0;
    uint32_t link_id = 0;
    uint32_t ifindex = 0;
    bool alive = false;
  };
  static Result<LinkInfo> link_info(const std::string& dir);
  // Removes an instance: its egress filter (when its network namespace still
  // exists), its XDP link and its pins. Works on defunct, orphaned and
  // interrupted instances alike.
  static Status detach(const std::string& dir);
  // Removes a sipxdp egress filter left on `ifname` (current network
  // namespace) by an instance whose pins are gone; false when there is none.
  static Result<bool> detach_stray(const std::string& ifname);

  // The maps and programs inside (loader/src/datapath_impl.h).
  struct Impl;

 private:
  Datapath();
  std::unique_ptr<Impl> impl_;
};

// Routes libbpf's messages to a callback (the CLI shows them with --verbose).
void set_libbpf_logger(std::function<void(const std::string&)> fn);
// The last lines libbpf printed (verifier log tail), for error details.
std::string libbpf_log_tail(size_t max_lines = 20);

}  // namespace sipxdp
