#include "sipxdp/instance.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sipxdp/abi.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sipxdp {

namespace {

// ':' never appears in an interface name, so no instance is called this.
constexpr const char* kStagingPrefix = ":attaching:";

// bpffs refuses names with dots (VLAN devices are eth0.100): they are kept as %2e.
std::string encode(const std::string& n) {
  std::string out;
  for (char c : n) {
    if (c == '.')
      out += "%2e";
    else if (c == '%')
      out += "%25";
    else
      out += c;
  }
  return out;
}

std::string decode(const std::string& n) {
  std::string out;
  for (size_t i = 0; i < n.size(); ++i) {
    if (n[i] == '%' && n.compare(i, 3, "%2e") == 0) {
      out += '.';
      i += 2;
    } else if (n[i] == '%' && n.compare(i, 3, "%25") == 0) {
      out += '%';
      i += 2;
    } else {
      out += n[i];
    }
  }
  return out;
}

std::string ns_link(const char* pid_ns) {
  char buf[64] = {};
  ssize_t n = readlink(pid_ns, buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

bool is_bpffs(const char* path, dev_t* dev = nullptr) {
  struct statfs fs {};
  if (statfs(path, &fs) != 0 || static_cast<uint32_t>(fs.f_type) != BPF_FS_MAGIC) return false;
  struct stat st {};
  if (dev && stat(path, &st) == 0) *dev = st.st_dev;
  return true;
}

// "eth1@ns" -> (eth1, ns); "eth1" -> (eth1, "").
std::pair<std::string, std::string> split_name(const std::string& n) {
  auto at = n.find('@');
  if (at == std::string::npos) return {decode(n), ""};
  return {decode(n.substr(0, at)), decode(n.substr(at + 1))};
}

}  // namespace

std::string pin_root() {
  return "/sys/fs/bpf/sipxdp";
}

std::string pin_dir(const std::string& ifname, const std::string& netns) {
  return pin_root() + "/" + encode(ifname) + (netns.empty() ? "" : "@" + encode(netns));
}

std::string staging_dir(const std::string& ifname, const std::string& netns) {
  return pin_root() + "/" + kStagingPrefix + encode(ifname) + (netns.empty() ? "" : "@" + encode(netns));
}

std::string instance_name(const Instance& in) {
  return in.ifname + (in.netns.empty() ? "" : "@" + in.netns);
}

namespace {

// Kernels that give the initial namespaces fixed inode numbers (6.x) make
// "is this the host's mount namespace" answerable without reading PID 1,
// which sandboxes may forbid.
constexpr ino_t kInitMntNsIno = 0xEFFFFFF8;

bool in_host_mount_ns() {
  struct stat self {};
  if (stat("/proc/self/ns/mnt", &self) == 0 && self.st_ino == kInitMntNsIno) return true;
  std::string one = ns_link("/proc/1/ns/mnt");
  return !one.empty() && one == ns_link("/proc/self/ns/mnt");
}

// Whether a process in another mount namespace has a mount of the BPF
// filesystem `dev`: then that filesystem (and its pins) outlives this process.
bool bpffs_mounted_elsewhere(dev_t dev) {
  std::string self = ns_link("/proc/self/ns/mnt");
  char want[32];
  std::snprintf(want, sizeof(want), " %u:%u ", major(dev), minor(dev));
  DIR* d = opendir("/proc");
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (found || !std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::string pid = std::string("/proc/") + e->d_name;
    std::string ns = ns_link((pid + "/ns/mnt").c_str());
    if (ns.empty() || ns == self) continue;
    FILE* f = std::fopen((pid + "/mountinfo").c_str(), "r");
    if (!f) continue;
    char line[1024];
    while (!found && std::fgets(line, sizeof(line), f)) found = std::strstr(line, want) && std::strstr(line, " - bpf ");
    std::fclose(f);
  }
  closedir(d);
  return found;
}

}  // namespace

Status check_pins_persist() {
  const char* bpffs = "/sys/fs/bpf";
  const std::string advice =
      ": pins made here would vanish with this process (run sipxdp in the host's mount namespace; for a network "
      "namespace use sipxdp --netns NAME, not ip netns exec)";
  bool host = in_host_mount_ns();
  dev_t dev = 0;
  if (!is_bpffs(bpffs, &dev)) {
    if (!host)
      return make_error(std::string(bpffs) +
                        " is not a BPF filesystem in this mount namespace, which is not the host's" + advice);
    if (mount("bpf", bpffs, "bpf", 0, "mode=0700") != 0)
      return sys_error(std::string(bpffs) + " is not a BPF filesystem and mounting one failed", errno);
    return ok_status();
  }
  if (host || bpffs_mounted_elsewhere(dev)) return ok_status();
  return make_error(std::string(bpffs) + " in this mount namespace is a BPF filesystem no other mount namespace has" +
                    advice);
}

Result<std::unique_ptr<NetnsScope>> NetnsScope::enter(const std::string& name) {
  if (name.find('/') != std::string::npos || name == "." || name == "..")
    return make_error("bad network namespace name \"" + name + "\"");
  std::unique_ptr<NetnsScope> s(new NetnsScope());
  if (name.empty()) return s;  // the namespace sipxdp was started in
  s->orig_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!s->orig_.valid()) return sys_error("cannot open /proc/self/ns/net", errno);
  std::string path = "/run/netns/" + name;
  Fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) return sys_error("no network namespace " + name + " (ip netns add " + name + ")", errno);
  if (setns(target.get(), CLONE_NEWNET) != 0) return sys_error("cannot enter network namespace " + name, errno);
  return s;
}

NetnsScope::~NetnsScope() {
  if (orig_.valid()) (void)setns(orig_.get(), CLONE_NEWNET);
}

bool netns_exists(const std::string& name) {
  struct stat st {};
  return !name.empty() && name.find('/') == std::string::npos && stat(("/run/netns/" + name).c_str(), &st) == 0;
}

Result<uint64_t> current_netns_cookie() {
  Fd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return sys_error("cannot create a socket", errno);
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
    return sys_error("cannot read the network namespace cookie", errno);
  return cookie;
}

uint64_t netns_cookie_of(const std::string& name) {
  if (!name.empty() && !netns_exists(name)) return 0;
  auto scope = NetnsScope::enter(name);
  if (!scope) return 0;
  auto c = current_netns_cookie();
  return c ? c.value() : 0;
}

const char* instance_state_name(Instance::State s) {
  switch (s) {
    case Instance::State::ok: return "ok";
    case Instance::State::defunct: return "defunct";
    case Instance::State::orphan: return "orphan";
    case Instance::State::incomplete: return "incomplete";
  }
  return "?";
}

Instance inspect_instance(const std::string& dir) {
  Instance in;
  in.dir = dir;
  std::string base = dir.substr(dir.rfind('/') + 1);
  bool staging = base.rfind(kStagingPrefix, 0) == 0;
  if (staging) base = base.substr(std::string(kStagingPrefix).size());
  std::tie(in.ifname, in.netns) = split_name(base);
  if (staging) {
    in.state = Instance::State::incomplete;
    auto running = RootLock::take(/*wait=*/false);
    in.why =
        running ? "an attach was interrupted before it finished; attach again, or detach" : "an attach is running now";
    return in;
  }
  Fd state(bpf_obj_get((dir + "/state").c_str()));
  sipxdp_state st{};
  uint32_t zero = 0;
  if (!state.valid() || bpf_map_lookup_elem(state.get(), &zero, &st) != 0) {
    in.state = Instance::State::incomplete;
    in.why = "its pins are unreadable (made by another sipxdp version?); detach it";
    return in;
  }
  if (st.abi_version != SIPXDP_ABI_VERSION) {
    in.state = Instance::State::incomplete;
    in.why = "made by another sipxdp version (ABI " + std::to_string(st.abi_version) + "); detach and attach again";
    return in;
  }
  if (!in.netns.empty() && !netns_exists(in.netns)) {
    in.state = Instance::State::orphan;
    in.why = "network namespace " + in.netns + " no longer exists; detach it";
    return in;
  }
  uint64_t cookie = netns_cookie_of(in.netns);
  if (st.netns_cookie && cookie != st.netns_cookie) {
    in.state = Instance::State::orphan;
    in.why = in.netns.empty() ? std::string("attached in another network namespace than the host's")
                              : "network namespace " + in.netns + " was deleted and re-created since attach; detach it";
    return in;
  }
  Fd link(bpf_obj_get((dir + "/xdp_link").c_str()));
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (!link.valid() || bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) {
    in.state = Instance::State::incomplete;
    in.why = "its XDP link pin is missing; detach it";
    return in;
  }
  if (info.xdp.ifindex == 0) {
    in.state = Instance::State::defunct;
    in.why =
        "its XDP program is no longer attached (the interface was removed, or the link was detached); "
        "nothing is filtered: detach it, then attach again";
  }
  return in;
}

std::string instance_xdp_mode(const Instance& in) {
  auto scope = NetnsScope::enter(in.netns);
  unsigned idx = scope ? if_nametoindex(in.ifname.c_str()) : 0;
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (!idx || bpf_xdp_query(static_cast<int>(idx), 0, &q) != 0) return "-";
  switch (q.attach_mode) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
  }
  return "none";
}

std::vector<Instance> list_instances() {
  std::vector<std::string> names;
  if (DIR* d = opendir(pin_root().c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::vector<Instance> out;
  for (auto& n : names) out.push_back(inspect_instance(pin_root() + "/" + n));
  return out;
}

Result<RootLock> RootLock::take(bool wait) {
  RootLock l;
  l.fd_.reset(::open(pin_root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!l.fd_.valid()) return sys_error("cannot open " + pin_root(), errno);
  if (::flock(l.fd_.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) return sys_error("cannot lock " + pin_root(), errno);
  return l;
}

}  // namespace sipxdp
