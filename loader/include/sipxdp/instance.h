// Where sipxdp instances live (bpffs pins) and whether each one is whole:
// an instance is a directory /sys/fs/bpf/sipxdp/IFACE[@NETNS]; attach builds
// it under a staging name and renames it into place as its last step, so a
// directory under the final name is always complete.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sipxdp/fd.h"
#include "sipxdp/result.h"

namespace sipxdp {

// /sys/fs/bpf/sipxdp and /sys/fs/bpf/sipxdp/<ifname>[@<netns>].
std::string pin_root();
std::string pin_dir(const std::string& ifname, const std::string& netns);
// Where an attach builds the instance before renaming it into place.
std::string staging_dir(const std::string& ifname, const std::string& netns);

// Fails unless pins made now outlive this process: /sys/fs/bpf must be a
// BPF filesystem shared with the host (PID 1's mount namespace). Mounts one
// only when this is the host's mount namespace and none is mounted.
Status check_pins_persist();

// Runs the rest of the scope in a named network namespace (/run/netns/NAME),
// keeping the mount namespace (pins land in the host's bpffs). An empty name
// stays in the namespace sipxdp was started in (the host's).
class NetnsScope {
 public:
  static Result<std::unique_ptr<NetnsScope>> enter(const std::string& name);
  ~NetnsScope();

 private:
  NetnsScope() = default;
  Fd orig_;
};

// Whether /run/netns/NAME exists.
bool netns_exists(const std::string& name);
// The cookie of the calling thread's network namespace (never reused).
Result<uint64_t> current_netns_cookie();
// The cookie of a named network namespace ("": the one sipxdp was started in); 0 when it does not exist.
uint64_t netns_cookie_of(const std::string& name);

// An instance as found under pin_root().
struct Instance {
  enum class State {
    ok,          // attached and filtering
    defunct,     // its XDP link is detached (the interface was removed, or the link detached)
    orphan,      // its network namespace is gone (or was re-created)
    incomplete,  // an attach was interrupted (or is running now)
  };
  std::string ifname, netns;
  std::string dir;
  State state = State::ok;
  std::string why;  // what is wrong, for status and for refusals
};

const char* instance_state_name(Instance::State s);
// "IFACE" or "IFACE@NETNS".
std::string instance_name(const Instance& in);

// How the XDP program of a whole instance is attached: native, generic,
// offload, multi, none ("-" when it cannot be told).
std::string instance_xdp_mode(const Instance& in);

// Every instance of every network namespace, sorted by directory name.
std::vector<Instance> list_instances();
// The instance at `dir` (whole or staging), with its state.
Instance inspect_instance(const std::string& dir);

// Serialises attaches (and the clean-up of interrupted ones): an flock on
// pin_root(), released by the kernel if the holder dies.
class RootLock {
 public:
  static Result<RootLock> take(bool wait = true);

 private:
  Fd fd_;
};

}  // namespace sipxdp
