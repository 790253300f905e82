#include "sipxdp/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "sipxdp/skeleton.h"
#include "sipxdp_bpf.skel.h"

namespace sipxdp {

static_assert(sizeof(sipxdp_lpm4_key) == 12);
static_assert(sizeof(sipxdp_lpm6_key) == 24);
static_assert(sizeof(sipxdp_comb_key) == 12);
static_assert(sizeof(sipxdp_rule) == 24);
static_assert(sizeof(sipxdp_policy_hdr) == 32);
static_assert(sizeof(sipxdp_flow_key) == 40);
static_assert(sizeof(sipxdp_flow) == 8);
static_assert(sizeof(sipxdp_dscp_rule) == 80);
static_assert(sizeof(sipxdp_state) == 32);
static_assert(sizeof(sipxdp_pattern) == 72);
static_assert(sizeof(sipxdp_sip_cfg) == 24);
static_assert(sizeof(sipxdp_ban) == 32);
static_assert(sizeof(sipxdp_ban6_key) == 16);
static_assert(sizeof(sipxdp_frag_key) == 40);
static_assert(sizeof(sipxdp_edge) == 68);
static_assert(sizeof(sipxdp_frag_state) == 160);
static_assert(sizeof(sipxdp_stream_tail) == 72);
static_assert(sizeof(sipxdp_counter) == 16);
static_assert(sizeof(sipxdp_manifest_chunk) == SIPXDP_MANIFEST_CHUNK);

using json = nlohmann::json;

namespace {

constexpr const char* kLinkPin = "xdp_link";
constexpr const char* kTcPin = "tc_egress";  // the egress program, to recognise our filter

// The pinned maps, by name; also the order in which they are pinned.
const char* const kMapNames[] = {"state",         "policy_hdr",    "port_class", "lpm4",     "lpm6",
                                 "comb",          "cls_rule",      "counters",   "manifest", "rcu_sync",
                                 "sip_cfg",       "sip_patterns",  "sip_tables", "bans4",    "bans6",
                                 "ban_prefixes4", "ban_prefixes6", "ban_hint",   "frags",    "flows",
                                 "flow_hint",     "dscp_rules",    "tcp_tails"};
enum MapId {
  M_STATE,
  M_HDR,
  M_PORT,
  M_LPM4,
  M_LPM6,
  M_COMB,
  M_CLS,
  M_CTR,
  M_MANIFEST,
  M_RCU,
  M_SIP_CFG,
  M_SIP_PAT,
  M_SIP_TABLES,
  M_BANS4,
  M_BANS6,
  M_BANP4,
  M_BANP6,
  M_HINT,
  M_FRAGS,
  M_FLOWS,
  M_FLOW_HINT,
  M_DSCP,
  M_TCP_TAILS,
  M_NUM
};

std::mutex log_mu;
std::function<void(const std::string&)> log_fn;
std::deque<std::string> log_tail;

int libbpf_print(enum libbpf_print_level, const char* fmt, va_list ap) {
  // One message can be a whole verifier log (megabytes): size it first.
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string s(size_t(n) + 1, '\0');
  vsnprintf(s.data(), s.size(), fmt, ap);
  s.resize(size_t(n));
  std::lock_guard<std::mutex> g(log_mu);
  // Kept line by line, so the tail of a verifier log is its last lines.
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) {
      log_tail.push_back(line);
      if (log_tail.size() > 200) log_tail.pop_front();
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  while (!s.empty() && s.back() == '\n') s.pop_back();
  if (log_fn) log_fn(s);
  return 0;
}

struct LogInit {
  LogInit() { libbpf_set_print(libbpf_print); }
} log_init;

// One generation flip must never see another apply half-way: a simple
// advisory lock on the pin directory serialises policy writers.
class DirLock {
 public:
  static Result<DirLock> take(const std::string& dir) {
    DirLock l;
    l.fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!l.fd_.valid()) return sys_error("cannot open " + dir, errno);
    if (::flock(l.fd_.get(), LOCK_EX) != 0) return sys_error("cannot lock " + dir, errno);
    return l;
  }

 private:
  Fd fd_;
};

Status mkdir_p(const std::string& path) {
  std::string cur;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      cur = path.substr(0, i);
      if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("cannot create " + cur, errno);
    }
  }
  return ok_status();
}

void remove_dir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      ::unlink((dir + "/" + n).c_str());
    }
    closedir(d);
  }
  ::rmdir(dir.c_str());
}

// Calls fn(key) for every key of a hash or LPM map.
template <typename Key, typename Fn>
void for_each_key(int fd, Fn&& fn) {
  Key cur{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    cur = next;
    prev = &cur;
    fn(cur);
  }
}

size_t array_stride(size_t value_size) {
  return (value_size + 7) & ~size_t(7);
}

// A writable view of a BPF_F_MMAPABLE array map.
class Mapping {
 public:
  static Result<Mapping> map(int fd, size_t bytes, const char* name) {
    long page = sysconf(_SC_PAGESIZE);
    size_t len = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return sys_error(std::string("cannot mmap map ") + name, errno);
    Mapping m;
    m.p_ = static_cast<uint8_t*>(p);
    m.len_ = len;
    return m;
  }
  Mapping() = default;
  Mapping(Mapping&& o) noexcept : p_(std::exchange(o.p_, nullptr)), len_(o.len_) {}
  ~Mapping() {
    if (p_) munmap(p_, len_);
  }
  uint8_t* data() const { return p_; }

 private:
  uint8_t* p_ = nullptr;
  size_t len_ = 0;
};

int ncpus() {
  static int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

}  // namespace

struct Datapath::Impl {
  Skeleton<sipxdp_bpf> skel;
  Fd maps[M_NUM];
  std::string dir;  // pin directory, when opened from pins

  int fd(MapId m) const { return maps[m].get(); }

  Result<sipxdp_state> read_state() const {
    uint32_t zero = 0;
    sipxdp_state st{};
    if (bpf_map_lookup_elem(fd(M_STATE), &zero, &st) != 0) return sys_error("cannot read map state", errno);
    return st;
  }

  Result<std::string> read_manifest_text(uint32_t gen) const {
    std::string out;
    sipxdp_manifest_chunk ch;
    for (uint32_t i = 0; i < SIPXDP_MANIFEST_CHUNKS; ++i) {
      uint32_t key = gen * SIPXDP_MANIFEST_CHUNKS + i;
      if (bpf_map_lookup_elem(fd(M_MANIFEST), &key, &ch) != 0) {
        if (errno == ENOENT) break;
        return sys_error("cannot read map manifest", errno);
      }
      const uint8_t* end = static_cast<const uint8_t*>(std::memchr(ch.data, 0, sizeof(ch.data)));
      out.append(reinterpret_cast<const char*>(ch.data), end ? end - ch.data : sizeof(ch.data));
      if (end) break;
    }
    return out;
  }

  // Writes the text NUL-terminated, then frees the chunks past its end.
  Status write_manifest_text(uint32_t gen, const std::string& text) const {
    if (text.size() > manifest_capacity())
      return make_error("policy too large to store (" + std::to_string(text.size()) + " bytes of manifest, at most " +
                        std::to_string(manifest_capacity()) + ")");
    sipxdp_manifest_chunk ch;
    uint32_t i = 0;
    for (size_t off = 0; off <= text.size(); off += sizeof(ch.data), ++i) {
      std::memset(ch.data, 0, sizeof(ch.data));
      size_t n = std::min(sizeof(ch.data), text.size() - off);
      std::memcpy(ch.data, text.data() + off, n);
      uint32_t key = gen * SIPXDP_MANIFEST_CHUNKS + i;
      if (bpf_map_update_elem(fd(M_MANIFEST), &key, &ch, BPF_ANY) != 0)
        return sys_error("cannot write map manifest", errno);
      if (n < sizeof(ch.data)) {
        ++i;
        break;
      }
    }
    for (; i < SIPXDP_MANIFEST_CHUNKS; ++i) {
      uint32_t key = gen * SIPXDP_MANIFEST_CHUNKS + i;
      if (bpf_map_delete_elem(fd(M_MANIFEST), &key) != 0) {
        if (errno == ENOENT) break;
        return sys_error("cannot clear map manifest", errno);
      }
    }
    return ok_status();
  }

  // Deletes every key of generation `gen` from a hash or LPM map.
  template <typename Key>
  Status clear_gen(MapId m, uint8_t gen) const {
    std::vector<Key> doomed;
    for_each_key<Key>(fd(m), [&](const Key& k) {
      if (k.gen == gen) doomed.push_back(k);
    });
    for (auto& d : doomed)
      if (bpf_map_delete_elem(fd(m), &d) != 0 && errno != ENOENT)
        return sys_error(std::string("cannot clear map ") + kMapNames[m], errno);
    return ok_status();
  }

  // Returns once no packet can still be judged by a generation older than now.
  Status wait_for_readers() const {
    Fd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr));
    if (!inner.valid()) return sys_error("cannot create map for RCU sync", errno);
    uint32_t zero = 0;
    int ifd = inner.get();
    if (bpf_map_update_elem(fd(M_RCU), &zero, &ifd, BPF_ANY) != 0) return sys_error("cannot write map rcu_sync", errno);
    return ok_status();
  }
};

Datapath::Datapath() : impl_(std::make_unique<Impl>()) {}
Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;
Datapath::~Datapath() = default;

const char* xdp_mode_name(XdpMode m) {
  switch (m) {
    case XdpMode::auto_: return "auto";
    case XdpMode::native: return "native";
    case XdpMode::generic: return "generic";
  }
  return "?";
}

Result<XdpMode> parse_xdp_mode(const std::string& s) {
  if (s == "auto") return XdpMode::auto_;
  if (s == "native" || s == "drv") return XdpMode::native;
  if (s == "generic" || s == "skb") return XdpMode::generic;
  return make_error("unknown XDP mode \"" + s + "\" (auto, native or generic)");
}

const std::vector<BuiltinCounter>& builtin_counters() {
  static const std::vector<BuiltinCounter> v = {
      {SIPXDP_CTR_ESTABLISHED, "established", "allow", "replies to flows this host opened"},
      {SIPXDP_CTR_BANNED, "banned", "drop", "source banned (sipxdp bans)"},
      {SIPXDP_CTR_NONIP, "non-ip", "allow", "non-IP frames (ARP...)"},
      {SIPXDP_CTR_IPV6_ND, "ipv6-nd", "allow", "ICMPv6 neighbour discovery"},
      {SIPXDP_CTR_MALFORMED, "malformed", "drop", "truncated or malformed headers"},
      {SIPXDP_CTR_MARTIAN, "martian", "drop", "127.0.0.0/8 or ::1 from outside"},
      {SIPXDP_CTR_FRAGMENT, "fragment", "drop", "fragments of datagrams that cannot be searched whole"},
      {SIPXDP_CTR_FRAG_EARLY, "fragment-early", "allow", "later fragments before their first: to reassembly"},
      {SIPXDP_CTR_NO_POLICY, "no-policy", "allow", "no policy loaded"},
      {SIPXDP_CTR_DEFAULT, "default", "", "no rule matched"},
      {SIPXDP_CTR_EGRESS, "egress", "pass", "outbound packets (TC egress)"},
  };
  return v;
}

Result<Datapath> Datapath::load(uint32_t flow_table_size) {
  Datapath dp;
  auto& skel = dp.impl_->skel;
  skel = Skeleton<sipxdp_bpf>::open();
  if (!skel) return sys_error("cannot open the BPF object", errno);
  if (int e = bpf_map__set_max_entries(skel->maps.flows, flow_table_size); e != 0)
    return sys_error("cannot size the flow table", -e);
  int err = skel.load();
  if (err) {
    Error e = sys_error("the kernel refused to load the XDP program", err);
    e.detail = libbpf_log_tail();
    if (e.err == EPERM) e.what += " (run as root, with CAP_BPF and CAP_NET_ADMIN)";
    return e;
  }
  struct bpf_map* maps[M_NUM] = {
      skel->maps.state,         skel->maps.policy_hdr, skel->maps.port_class, skel->maps.lpm4,
      skel->maps.lpm6,          skel->maps.comb,       skel->maps.cls_rule,   skel->maps.counters,
      skel->maps.manifest,      skel->maps.rcu_sync,   skel->maps.sip_cfg,    skel->maps.sip_patterns,
      skel->maps.sip_tables,    skel->maps.bans4,      skel->maps.bans6,      skel->maps.ban_prefixes4,
      skel->maps.ban_prefixes6, skel->maps.ban_hint,   skel->maps.frags,      skel->maps.flows,
      skel->maps.flow_hint,     skel->maps.dscp_rules, skel->maps.tcp_tails};
  for (int i = 0; i < M_NUM; ++i) {
    int fd = fcntl(bpf_map__fd(maps[i]), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return sys_error("cannot dup map fd", errno);
    dp.impl_->maps[i].reset(fd);
  }
  // Not attached: nothing reads either generation.
  sipxdp_state st{.active_gen = 0, .abi_version = SIPXDP_ABI_VERSION, .settled = 1};
  uint32_t zero = 0;
  if (bpf_map_update_elem(dp.impl_->fd(M_STATE), &zero, &st, BPF_ANY) != 0)
    return sys_error("cannot write map state", errno);
  return dp;
}

Result<Datapath> Datapath::open_pinned(const std::string& dir) {
  struct stat sb {};
  if (stat(dir.c_str(), &sb) != 0) return sys_error("no sipxdp instance at " + dir, errno);
  Datapath dp;
  dp.impl_->dir = dir;
  for (int i = 0; i < M_NUM; ++i) {
    std::string path = dir + "/" + kMapNames[i];
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return sys_error("cannot open pinned map " + path, errno);
    dp.impl_->maps[i].reset(fd);
  }
  auto st = dp.impl_->read_state();
  if (!st) return st.error();
  if (st->abi_version != SIPXDP_ABI_VERSION)
    return make_error("the instance at " + dir + " was made by another sipxdp version (ABI " +
                      std::to_string(st->abi_version) + ", this one speaks " + std::to_string(SIPXDP_ABI_VERSION) +
                      "); detach and attach again");
  return dp;
}

int Datapath::xdp_prog_fd() const {
  return impl_->skel ? bpf_program__fd(impl_->skel->progs.xdp_ingress) : -1;
}

int Datapath::tc_prog_fd() const {
  return impl_->skel ? bpf_program__fd(impl_->skel->progs.tc_egress) : -1;
}

Status Datapath::check_load_time_settings(const Policy& p) const {
  // The flow table's size is fixed when the program is loaded.
  if (!p.flows.table_size) return ok_status();
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(impl_->fd(M_FLOWS), &info, &len) != 0) return sys_error("cannot query map flows", errno);
  if (info.max_entries != *p.flows.table_size)
    return make_error("flow_table_size " + std::to_string(*p.flows.table_size) + " differs from the attached table (" +
                      std::to_string(info.max_entries) + " flows); it can only change on attach (detach, then attach)");
  return ok_status();
}

Result<Datapath::FlowTable> Datapath::flow_table() const {
  const Impl& I = *impl_;
  FlowTable t;
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(I.fd(M_FLOWS), &info, &len) != 0) return sys_error("cannot query map flows", errno);
  t.capacity = info.max_entries;
  auto st = I.read_state();
  if (!st) return st.error();
  sipxdp_policy_hdr hdr{};
  uint32_t gen = st->active_gen & 1;
  if (bpf_map_lookup_elem(I.fd(M_HDR), &gen, &hdr) != 0) return sys_error("cannot read map policy_hdr", errno);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  uint64_t now = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  // Batched, bucket by bucket: a key walk restarts from the first key when
  // its current key is recycled under churn; a batch walk does not.
  std::vector<sipxdp_flow_key> keys(8192);
  std::vector<sipxdp_flow> vals(keys.size());
  uint32_t token = 0;
  bool first = true;
  for (;;) {
    uint32_t n = static_cast<uint32_t>(keys.size()), next = 0;
    int err =
        bpf_map_lookup_batch(I.fd(M_FLOWS), first ? nullptr : &token, &next, keys.data(), vals.data(), &n, nullptr);
    if (err && errno != ENOENT) return sys_error("cannot read map flows", errno);
    for (uint32_t i = 0; i < n; ++i) {
      const sipxdp_flow_key& k = keys[i];
      ++t.entries;
      uint32_t kind = k.proto == IPPROTO_TCP                                   ? SIPXDP_FLOW_TCP
                      : k.proto == IPPROTO_UDP                                 ? SIPXDP_FLOW_UDP
                      : (k.proto == IPPROTO_ICMP || k.proto == IPPROTO_ICMPV6) ? SIPXDP_FLOW_ICMP
                                                                               : SIPXDP_FLOW_OTHER;
      if (int64_t(now - vals[i].seen_ns) <= int64_t(hdr.flow_timeout_s[kind]) * 1000000000ll) ++t.live;
    }
    if (err) break;  // ENOENT: that was the last batch
    token = next;
    first = false;
  }
  t.entries = std::min<uint64_t>(t.entries, t.capacity);
  t.live = std::min(t.live, t.entries);
  return t;
}

Result<uint32_t> Datapath::active_generation() const {
  auto st = impl_->read_state();
  if (!st) return st.error();
  return st->active_gen & 1;
}

Result<Manifest> Datapath::manifest() const {
  auto gen = active_generation();
  if (!gen) return gen.error();
  auto text = impl_->read_manifest_text(gen.value());
  if (!text) return text.error();
  auto m = decode_manifest(text.value());
  if (!m) return m.error();
  m->generation = gen.value();
  return m;
}

Result<CounterValue> Datapath::counter(uint32_t slot) const {
  std::vector<sipxdp_counter> per(ncpus());
  if (bpf_map_lookup_elem(impl_->fd(M_CTR), &slot, per.data()) != 0)
    return sys_error("cannot read map counters", errno);
  CounterValue v;
  for (auto& c : per) {
    v.packets += c.packets;
    v.bytes += c.bytes;
  }
  return v;
}

Result<std::vector<StatRow>> Datapath::stats() const {
  auto m = manifest();
  if (!m) return m.error();
  std::vector<StatRow> rows;
  for (auto& r : m->rules) {
    auto v = counter(r.counter);
    if (!v) return v.error();
    rows.push_back({r.name, r.match, r.action, false, v.value()});
  }
  for (auto& pt : m->patterns) {
    auto v = counter(pt.counter);
    if (!v) return v.error();
    std::string q = escape_bytes(pt.pattern);
    StatRow row{"scanner:" + q, (m->sip_match == "headers" ? "header contains \"" : "payload contains \"") + q + "\"",
                "drop", false, v.value()};
    row.pattern = true;
    rows.push_back(row);
  }
  for (auto& d : m->dscp) {
    auto v = counter(d.counter);
    if (!v) return v.error();
    StatRow row{"dscp:" + d.name, d.match + " -> dscp " + std::to_string(d.dscp), d.cls, false, v.value()};
    row.dscp = true;
    rows.push_back(row);
  }
  for (auto& b : builtin_counters()) {
    auto v = counter(b.slot);
    if (!v) return v.error();
    std::string action = b.action;
    if (b.slot == SIPXDP_CTR_DEFAULT) action = m->default_action.empty() ? "allow" : m->default_action;
    rows.push_back({b.name, b.what, action, true, v.value()});
  }
  return rows;
}

Result<ApplySummary> Datapath::apply(const Policy& p, const std::string& source, const std::string& path) {
  Impl& I = *impl_;
  std::optional<DirLock> lock;
  if (!I.dir.empty()) {
    auto l = DirLock::take(I.dir);
    if (!l) return l.error();
    lock.emplace(std::move(l.value()));
  }
  // The spare generation may still be read by packets if an earlier apply
  // died between its flip and its wait: then wait here before reusing it.
  auto st = I.read_state();
  if (!st) return st.error();
  if (!st->settled) SIPXDP_TRY(I.wait_for_readers());
  uint32_t live = st->active_gen & 1, spare = live ^ 1;

  // Counters follow rule names; a new rule never takes a slot the live
  // generation still counts on.
  Manifest old;
  bool hdr_valid = false;
  {
    sipxdp_policy_hdr hdr{};
    if (bpf_map_lookup_elem(I.fd(M_HDR), &live, &hdr) != 0) return sys_error("cannot read map policy_hdr", errno);
    auto m = manifest();
    if (m)
      old = std::move(m.value());
    else if (hdr.flags & SIPXDP_HDR_VALID)
      return m.error();
    hdr_valid = hdr.flags & SIPXDP_HDR_VALID;
    if (!hdr_valid) old.rules.clear();
  }
  std::map<std::string, uint32_t> old_slot;
  std::set<uint32_t> used;
  for (auto& r : old.rules) {
    old_slot[r.name] = r.counter;
    used.insert(r.counter);
  }
  std::map<std::string, uint32_t> old_pat_slot;
  for (auto& pt : old.patterns) {
    old_pat_slot[pt.pattern] = pt.counter;
    used.insert(pt.counter);
  }
  for (auto& d : old.dscp) used.insert(d.counter);
  ApplySummary sum;
  std::vector<uint32_t> slots(p.rules.size());
  std::vector<bool> fresh(p.rules.size(), false);
  std::set<std::string> new_names;
  for (size_t i = 0; i < p.rules.size(); ++i) {
    new_names.insert(p.rules[i].name);
    auto it = old_slot.find(p.rules[i].name);
    if (it != old_slot.end()) {
      slots[i] = it->second;
      ++sum.kept;
    } else {
      fresh[i] = true;
      ++sum.added;
    }
  }
  uint32_t next = SIPXDP_CTR_RULE_BASE;
  for (size_t i = 0; i < p.rules.size(); ++i) {
    if (!fresh[i]) continue;
    while (used.count(next)) ++next;
    if (next >= SIPXDP_CTR_MAX) return make_error("out of counter slots");
    slots[i] = next;
    used.insert(next);
  }
  for (auto& r : old.rules) {
    if (new_names.count(r.name)) continue;
    ++sum.removed;
    auto v = counter(r.counter);
    sum.removed_counts.push_back({r.name, v ? v.value() : CounterValue{}});
  }
  std::vector<uint32_t> reset;  // slots that start counting from zero
  // The old slot of each name, or a free one (counting from zero).
  auto slots_for = [&](const std::vector<std::string>& names,
                       const std::map<std::string, uint32_t>& old_of) -> Result<std::vector<uint32_t>> {
    std::vector<uint32_t> out;
    for (auto& n : names) {
      if (auto it = old_of.find(n); it != old_of.end()) {
        out.push_back(it->second);
        continue;
      }
      while (used.count(next)) ++next;
      if (next >= SIPXDP_CTR_MAX) return make_error("out of counter slots");
      out.push_back(next);
      used.insert(next);
      reset.push_back(next);
    }
    return out;
  };
  auto pat_slots = slots_for(p.sip.patterns, old_pat_slot);
  if (!pat_slots) return pat_slots.error();
  std::map<std::string, uint32_t> old_dscp_slot;
  std::vector<std::string> dscp_names;
  for (auto& d : old.dscp) old_dscp_slot[d.name] = d.counter;
  for (auto& d : p.dscp) dscp_names.push_back(d.name);
  auto dscp_slots = slots_for(dscp_names, old_dscp_slot);
  if (!dscp_slots) return dscp_slots.error();
  for (size_t i = 0; i < p.rules.size(); ++i)
    if (fresh[i]) reset.push_back(slots[i]);

  SIPXDP_TRY(check_load_time_settings(p));

  auto compiled = compile_policy(p, Slots{slots, pat_slots.value(), dscp_slots.value()});
  if (!compiled) return compiled.error();
  const CompiledPolicy& c = compiled.value();

  // Fill the spare generation. Nothing here is visible to packets until the flip.
  SIPXDP_TRY(I.clear_gen<sipxdp_lpm4_key>(M_LPM4, spare));
  SIPXDP_TRY(I.clear_gen<sipxdp_lpm6_key>(M_LPM6, spare));
  SIPXDP_TRY(I.clear_gen<sipxdp_comb_key>(M_COMB, spare));
  {
    const size_t stride = array_stride(sizeof(uint32_t));
    auto m = Mapping::map(I.fd(M_PORT), stride * SIPXDP_PORT_CLASS_ENTRIES, "port_class");
    if (!m) return m.error();
    for (uint32_t t = 0; t < SIPXDP_PT_NUM; ++t) {
      uint8_t* base = m->data() + stride * sipxdp_port_index(spare, t, 0);
      const uint32_t* src = c.port_class.data() + size_t(t) * SIPXDP_PORTS;
      for (uint32_t port = 0; port < SIPXDP_PORTS; ++port)
        std::memcpy(base + stride * port, &src[port], sizeof(uint32_t));
    }
  }
  for (auto& e : c.lpm4) {
    sipxdp_lpm4_key k{};
    k.prefixlen = SIPXDP_LPM_HDR_BITS + e.plen;
    k.gen = static_cast<uint8_t>(spare);
    k.dir = e.dir;
    std::memcpy(k.addr, e.addr.data(), 4);
    if (bpf_map_update_elem(I.fd(M_LPM4), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map lpm4", errno);
  }
  for (auto& e : c.lpm6) {
    sipxdp_lpm6_key k{};
    k.prefixlen = SIPXDP_LPM_HDR_BITS + e.plen;
    k.gen = static_cast<uint8_t>(spare);
    k.dir = e.dir;
    std::memcpy(k.addr, e.addr.data(), 16);
    if (bpf_map_update_elem(I.fd(M_LPM6), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map lpm6", errno);
  }
  for (auto& e : c.comb) {
    sipxdp_comb_key k{};
    k.gen = static_cast<uint8_t>(spare);
    k.stage = e.stage;
    k.a = e.a;
    k.b = e.b;
    if (bpf_map_update_elem(I.fd(M_COMB), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map comb", errno);
  }
  {
    const size_t stride = array_stride(sizeof(sipxdp_rule));
    auto m = Mapping::map(I.fd(M_CLS), stride * SIPXDP_GENS * SIPXDP_MAX_CLASSES, "cls_rule");
    if (!m) return m.error();
    uint8_t* base = m->data() + stride * size_t(spare) * SIPXDP_MAX_CLASSES;
    std::memset(base, 0, stride * SIPXDP_MAX_CLASSES);
    for (size_t i = 0; i < c.cls_rule.size(); ++i) std::memcpy(base + stride * i, &c.cls_rule[i], sizeof(sipxdp_rule));
  }
  {
    std::vector<sipxdp_counter> zeros(ncpus());
    for (uint32_t slot : reset)
      if (bpf_map_update_elem(I.fd(M_CTR), &slot, zeros.data(), BPF_ANY) != 0)
        return sys_error("cannot reset map counters", errno);
  }
  if (bpf_map_update_elem(I.fd(M_SIP_CFG), &spare, &c.sip_cfg, BPF_ANY) != 0)
    return sys_error("cannot write map sip_cfg", errno);
  for (uint32_t i = 0; i < SIPXDP_MAX_PATTERNS; ++i) {
    uint32_t key = spare * SIPXDP_MAX_PATTERNS + i;
    sipxdp_pattern pat = i < c.patterns.size() ? c.patterns[i] : sipxdp_pattern{};
    if (bpf_map_update_elem(I.fd(M_SIP_PAT), &key, &pat, BPF_ANY) != 0)
      return sys_error("cannot write map sip_patterns", errno);
  }
  if (bpf_map_update_elem(I.fd(M_SIP_TABLES), &spare, c.tables.get(), BPF_ANY) != 0)
    return sys_error("cannot write map sip_tables", errno);
  for (uint32_t i = 0; i < SIPXDP_MAX_DSCP_RULES; ++i) {
    uint32_t key = spare * SIPXDP_MAX_DSCP_RULES + i;
    sipxdp_dscp_rule r = i < c.dscp.size() ? c.dscp[i] : sipxdp_dscp_rule{};
    if (bpf_map_update_elem(I.fd(M_DSCP), &key, &r, BPF_ANY) != 0)
      return sys_error("cannot write map dscp_rules", errno);
  }
  {
    Manifest next = describe_policy(p, Slots{slots, pat_slots.value(), dscp_slots.value()}, source, path,
                                    {old.iface, old.netns, old.mode}, old);
    auto text = encode_manifest(next, manifest_capacity());
    if (!text) return text.error();
    SIPXDP_TRY(I.write_manifest_text(spare, text.value()));
  }
  if (bpf_map_update_elem(I.fd(M_HDR), &spare, &c.hdr, BPF_ANY) != 0)
    return sys_error("cannot write map policy_hdr", errno);

  // The flip: one write, after which every new packet sees only the new policy.
  // (The fence orders the mmap-ed table stores before it.)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Re-read: ban add/del (same lock) may have changed manual_bans since.
  st = I.read_state();
  if (!st) return st.error();
  sipxdp_state ns = st.value();
  ns.active_gen = spare;
  ns.settled = 0;
  uint32_t zero = 0;
  if (bpf_map_update_elem(I.fd(M_STATE), &zero, &ns, BPF_ANY) != 0) return sys_error("cannot write map state", errno);
  SIPXDP_TRY(I.wait_for_readers());
  ns.settled = 1;
  if (bpf_map_update_elem(I.fd(M_STATE), &zero, &ns, BPF_ANY) != 0) return sys_error("cannot write map state", errno);

  sum.generation = spare;
  if (hdr_valid) sum.diff = diff_policy(old, p);
  sum.rules = p.rules.size();
  sum.dscp = p.dscp.size();
  sum.classes = c.classes();
  return sum;
}

namespace {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the clock of bpf_ktime_get_coarse_ns()
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

int64_t seconds_left(const sipxdp_ban& b, uint64_t now) {
  if (!b.expires_ns) return -1;
  return b.expires_ns > now ? int64_t((b.expires_ns - now + 999999999ull) / 1000000000ull) : 0;
}

}  // namespace

namespace {

// Counts manual bans so the program can skip their lookup when there are none.
Status recount_manual_bans(const Fd* maps) {
  uint32_t n = 0;
  for_each_key<sipxdp_ban_lpm4>(maps[M_BANP4].get(), [&](const sipxdp_ban_lpm4&) { ++n; });
  for_each_key<sipxdp_ban_lpm6>(maps[M_BANP6].get(), [&](const sipxdp_ban_lpm6&) { ++n; });
  uint32_t zero = 0;
  sipxdp_state st{};
  if (bpf_map_lookup_elem(maps[M_STATE].get(), &zero, &st) != 0) return sys_error("cannot read map state", errno);
  st.manual_bans = n;
  if (bpf_map_update_elem(maps[M_STATE].get(), &zero, &st, BPF_ANY) != 0)
    return sys_error("cannot write map state", errno);
  return ok_status();
}

}  // namespace

Result<std::vector<Datapath::Ban>> Datapath::bans() const {
  const Impl& I = *impl_;
  std::map<uint32_t, std::string> pattern_of;
  if (auto m = manifest())
    for (auto& pt : m->patterns) pattern_of[pt.counter] = pt.pattern;
  auto reason = [&](uint32_t r) -> std::string {
    if (r == SIPXDP_BAN_MANUAL) return "manual";
    auto it = pattern_of.find(r);
    return it != pattern_of.end() ? it->second : "pattern (since removed)";
  };
  std::vector<Ban> out;
  uint64_t now = monotonic_ns();
  // Expired entries are hidden. Automatic ones are left to the LRU (deleting
  // one here could delete a fresh ban the kernel just wrote); expired manual
  // ones are removed, under the instance lock, so the program can skip the
  // prefix lookup again once none are left.
  auto walk = [&](MapId m, auto key, int family, auto plen_of, bool tidy) {
    using Key = decltype(key);
    std::vector<Key> expired;
    for_each_key<Key>(I.fd(m), [&](const Key& k) {
      sipxdp_ban b{};
      if (bpf_map_lookup_elem(I.fd(m), &k, &b) != 0) return;
      if (seconds_left(b, now) == 0) {
        if (tidy) expired.push_back(k);
        return;
      }
      Ban x;
      x.prefix.family = family;
      x.prefix.plen = plen_of(k, x.prefix.addr.data());
      x.reason = reason(b.reason);
      x.hits = b.hits;
      x.seconds_left = seconds_left(b, now);
      out.push_back(x);
    });
    for (auto& e : expired) bpf_map_delete_elem(I.fd(m), &e);
    return expired.size();
  };
  auto exact = [](const auto& k, uint8_t* addr) {
    std::memcpy(addr, &k, sizeof(k));
    return uint8_t(sizeof(k) * 8);
  };
  auto prefix = [](const auto& k, uint8_t* addr) {
    std::memcpy(addr, k.addr, sizeof(k.addr));
    return uint8_t(k.prefixlen);
  };
  std::optional<DirLock> lock;
  if (!I.dir.empty())
    if (auto l = DirLock::take(I.dir)) lock.emplace(std::move(l.value()));
  walk(M_BANS4, uint32_t{}, 4, exact, false);
  walk(M_BANS6, sipxdp_ban6_key{}, 6, exact, false);
  size_t removed = walk(M_BANP4, sipxdp_ban_lpm4{}, 4, prefix, true);
  removed += walk(M_BANP6, sipxdp_ban_lpm6{}, 6, prefix, true);
  if (removed) SIPXDP_TRY(recount_manual_bans(I.maps));
  return out;
}

Status Datapath::ban_add(const Cidr& c, uint32_t seconds) {
  Impl& I = *impl_;
  std::optional<DirLock> lock;
  if (!I.dir.empty()) {
    auto l = DirLock::take(I.dir);
    if (!l) return l.error();
    lock.emplace(std::move(l.value()));
  }
  uint64_t now = monotonic_ns();
  sipxdp_ban b{};
  b.expires_ns = seconds ? now + uint64_t(seconds) * 1000000000ull : 0;
  b.since_ns = now;
  b.reason = SIPXDP_BAN_MANUAL;
  int err;
  if (c.family == 4) {
    sipxdp_ban_lpm4 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 4);
    err = bpf_map_update_elem(I.fd(M_BANP4), &k, &b, BPF_ANY);
  } else {
    sipxdp_ban_lpm6 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 16);
    err = bpf_map_update_elem(I.fd(M_BANP6), &k, &b, BPF_ANY);
  }
  if (err) return sys_error("cannot ban " + c.str(), errno);
  return recount_manual_bans(I.maps);
}

Status Datapath::ban_del(const Cidr& c) {
  Impl& I = *impl_;
  std::optional<DirLock> lock;
  if (!I.dir.empty()) {
    auto l = DirLock::take(I.dir);
    if (!l) return l.error();
    lock.emplace(std::move(l.value()));
  }
  bool found = false;
  if (c.family == 4) {
    sipxdp_ban_lpm4 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 4);
    found |= bpf_map_delete_elem(I.fd(M_BANP4), &k) == 0;
  } else {
    sipxdp_ban_lpm6 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 16);
    found |= bpf_map_delete_elem(I.fd(M_BANP6), &k) == 0;
  }
  if (c.family == 4 && c.plen == 32) {
    uint32_t k;
    std::memcpy(&k, c.addr.data(), 4);
    found |= bpf_map_delete_elem(I.fd(M_BANS4), &k) == 0;
  } else if (c.family == 6 && c.plen == 128) {
    sipxdp_ban6_key k;
    std::memcpy(k.addr, c.addr.data(), 16);
    found |= bpf_map_delete_elem(I.fd(M_BANS6), &k) == 0;
  }
  if (!found) return make_error(c.str() + " is not banned");
  return recount_manual_bans(I.maps);
}

namespace {

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof(b), "%x", v);
  return b;
}

// A netlink dump of tc objects (qdiscs or filters) of ifindex under `parent`
// (0: any); calls fn for each message. False when the dump failed.
template <typename Fn>
bool tc_dump(uint16_t type, int ifindex, uint32_t parent, Fn&& fn) {
  Fd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) return false;
  struct {
    nlmsghdr nh;
    tcmsg tc;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = type;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  req.tc.tcm_parent = parent;
  if (::send(sock.get(), &req, sizeof(req), 0) < 0) return false;
  for (;;) {
    alignas(nlmsghdr) char buf[16384];
    ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
    if (n <= 0) return false;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      fn(h);
    }
  }
}

// Whether ifindex has a clsact qdisc (-1: cannot tell).
int clsact_exists(int ifindex) {
  int found = 0;
  bool ok = tc_dump(RTM_GETQDISC, ifindex, 0, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWQDISC) return;
    auto* tc = static_cast<tcmsg*>(NLMSG_DATA(h));
    if (tc->tcm_ifindex != ifindex || tc->tcm_parent != TC_H_CLSACT) return;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*tc)));
    for (auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(tc) + NLMSG_ALIGN(sizeof(*tc))); RTA_OK(a, len);
         a = RTA_NEXT(a, len))
      if (a->rta_type == TCA_KIND && std::strcmp(static_cast<const char*>(RTA_DATA(a)), "clsact") == 0) found = 1;
  });
  return ok ? found : -1;
}

// How many TC filters sit under the clsact qdisc of ifindex (ingress and
// egress); -1 when it cannot be told.
int clsact_filters(int ifindex) {
  int total = 0;
  for (uint32_t minor : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS})
    if (!tc_dump(RTM_GETTFILTER, ifindex, TC_H_MAKE(TC_H_CLSACT, minor),
                 [&](nlmsghdr* h) { total += h->nlmsg_type == RTM_NEWTFILTER; }))
      return -1;
  return total;
}

// Removes our egress filter if it is still ours (the pinned program), and the
// clsact qdisc if sipxdp created it.
Status detach_tc(int state_fd, const std::string& dir) {
  uint32_t zero = 0;
  sipxdp_state st{};
  if (bpf_map_lookup_elem(state_fd, &zero, &st) != 0) return sys_error("cannot read map state", errno);
  if (!(st.tc_flags & SIPXDP_TC_ATTACHED) || !st.tc_ifindex) return ok_status();
  int ifindex = static_cast<int>(st.tc_ifindex);
  uint32_t ours = 0;
  {
    Fd prog(bpf_obj_get((dir + "/" + kTcPin).c_str()));
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (prog.valid() && bpf_obj_get_info_by_fd(prog.get(), &info, &len) == 0) ours = info.id;
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  int err = bpf_tc_query(&hook, &q);
  if (err == -ENODEV) {  // the interface is gone, and its filters and qdiscs with it
    st.tc_flags = 0;
    st.tc_ifindex = 0;
    bpf_map_update_elem(state_fd, &zero, &st, BPF_ANY);
    return ok_status();
  }
  if (err == 0 && ours && q.prog_id == ours) {
    LIBBPF_OPTS(bpf_tc_opts, d, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    err = bpf_tc_detach(&hook, &d);
    if (err && err != -ENOENT && err != -ENODEV) return sys_error("cannot detach the TC egress filter", -err);
  }
  // Our clsact goes with us, unless someone has put filters of their own on
  // it since. (The caller checked that this is the attach's network
  // namespace, where interface indexes are not reused.)
  if ((st.tc_flags & SIPXDP_TC_OWN_CLSACT) && clsact_filters(ifindex) == 0) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    err = bpf_tc_hook_destroy(&hook);
    if (err && err != -ENOENT && err != -EINVAL && err != -ENODEV)
      return sys_error("cannot remove the clsact qdisc", -err);
  }
  st.tc_flags = 0;
  st.tc_ifindex = 0;
  bpf_map_update_elem(state_fd, &zero, &st, BPF_ANY);
  return ok_status();
}

// Removes a sipxdp egress filter found on an interface of the current
// network namespace (by its handle, priority and program name): one left by
// an instance whose pins are gone.
Result<bool> remove_stray_filter(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  if (bpf_tc_query(&hook, &q) != 0 || !q.prog_id) return false;
  Fd prog(bpf_prog_get_fd_by_id(q.prog_id));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (!prog.valid() || bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) return false;
  if (std::string(info.name) != "tc_egress") return false;
  LIBBPF_OPTS(bpf_tc_opts, d, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  int err = bpf_tc_detach(&hook, &d);
  if (err && err != -ENOENT) return sys_error("cannot remove the sipxdp egress filter", -err);
  return true;
}

}  // namespace

Status Datapath::attach_and_pin(const AttachOptions& o, const Policy& p, const std::string& source,
                                const std::string& path) {
  Impl& I = *impl_;
  if (!I.skel) return make_error("internal: attach needs a freshly loaded program");
  std::string where = o.netns.empty() ? "" : " in network namespace " + o.netns;
  unsigned ifindex = if_nametoindex(o.ifname.c_str());
  if (ifindex == 0) return make_error("no interface " + o.ifname + where);
  if (o.ifname == "lo") return make_error("refusing to attach to the loopback interface");

  SIPXDP_TRY(check_pins_persist());
  SIPXDP_TRY(mkdir_p(pin_root()));
  auto lock = RootLock::take();
  if (!lock) return lock.error();
  // Attaches killed half-way left staging directories; none is being
  // written now (we hold the lock), so undo what they made.
  for (auto& in : list_instances())
    if (in.state == Instance::State::incomplete && in.dir == staging_dir(in.ifname, in.netns))
      SIPXDP_TRY(detach(in.dir));

  std::string dir = pin_dir(o.ifname, o.netns);
  struct stat sb {};
  if (stat(dir.c_str(), &sb) == 0) {
    Instance in = inspect_instance(dir);
    std::string hint = in.state == Instance::State::ok ? "use apply, or detach first" : in.why;
    return make_error(o.ifname + where + " is already attached (pins at " + dir + "); " + hint);
  }
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) == 0 && q.prog_id != 0)
    return make_error(o.ifname + where + " already has an XDP program (id " + std::to_string(q.prog_id) +
                      ") that sipxdp did not attach; remove it first");
  {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, tq, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    if (bpf_tc_query(&hook, &tq) == 0 && tq.prog_id)
      return make_error(o.ifname + where + " has a TC egress filter at handle 0x" + hex(SIPXDP_TC_HANDLE) +
                        " priority " + std::to_string(SIPXDP_TC_PRIORITY) +
                        " (a sipxdp instance whose pins are gone leaves one: sipxdp detach " + o.ifname +
                        " removes it)");
  }
  auto cookie = current_netns_cookie();
  if (!cookie) return cookie.error();

  // Built under a staging name and renamed into place last: a directory under
  // the final name is always a whole instance.
  std::string staging = staging_dir(o.ifname, o.netns);
  if (::mkdir(staging.c_str(), 0700) != 0) return sys_error("cannot create " + staging, errno);
  I.dir = staging;
  bool tc_on = false;
  auto fail = [&](Error e) -> Status {
    if (tc_on) (void)detach_tc(I.fd(M_STATE), staging);
    remove_dir(staging);
    I.dir.clear();
    return e;
  };
  {
    auto st = I.read_state();
    if (!st) return fail(st.error());
    sipxdp_state ns = st.value();
    ns.netns_cookie = cookie.value();
    uint32_t zero = 0;
    if (bpf_map_update_elem(I.fd(M_STATE), &zero, &ns, BPF_ANY) != 0)
      return fail(sys_error("cannot write map state", errno));
  }
  // Record where this instance lives before any policy write copies it forward.
  {
    Manifest m;
    m.iface = o.ifname;
    m.netns = o.netns;
    m.mode = xdp_mode_name(o.mode);
    auto text = encode_manifest(m, manifest_capacity());
    if (!text) return fail(text.error());
    for (uint32_t gen = 0; gen < SIPXDP_GENS; ++gen)
      if (auto s = I.write_manifest_text(gen, text.value()); !s) return fail(s.error());
  }
  for (int i = 0; i < M_NUM; ++i) {
    std::string at = staging + "/" + kMapNames[i];
    if (bpf_obj_pin(I.fd(static_cast<MapId>(i)), at.c_str()) != 0)
      return fail(sys_error("cannot pin map at " + at, errno));
  }

  // The policy is live before the first packet reaches the program.
  if (auto a = apply(p, source, path); !a) return fail(a.error());

  // TC egress first: recording flows and marking DSCP is harmless on its own,
  // and a failed XDP attach below undoes it.
  std::string tc_path = staging + "/" + kTcPin;
  if (bpf_obj_pin(tc_prog_fd(), tc_path.c_str()) != 0)
    return fail(sys_error("cannot pin program at " + tc_path, errno));
  {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = BPF_TC_EGRESS);
    // Recorded before the qdisc and the filter exist, so that a detach after
    // a crash anywhere from here on finds (and removes) what this attach made.
    int had = clsact_exists(static_cast<int>(ifindex));
    if (had < 0) return fail(make_error("cannot list the qdiscs of " + o.ifname + where));
    auto st = I.read_state();
    if (!st) return fail(st.error());
    sipxdp_state ns = st.value();
    ns.tc_flags = SIPXDP_TC_ATTACHED | (had ? 0u : SIPXDP_TC_OWN_CLSACT);
    ns.tc_ifindex = ifindex;
    uint32_t zero = 0;
    if (bpf_map_update_elem(I.fd(M_STATE), &zero, &ns, BPF_ANY) != 0)
      return fail(sys_error("cannot write map state", errno));
    tc_on = true;
    int err = bpf_tc_hook_create(&hook);
    if (err == -EEXIST && !had) {  // someone else made one meanwhile: it is theirs
      ns.tc_flags &= ~SIPXDP_TC_OWN_CLSACT;
      if (bpf_map_update_elem(I.fd(M_STATE), &zero, &ns, BPF_ANY) != 0)
        return fail(sys_error("cannot write map state", errno));
    } else if (err && err != -EEXIST) {
      return fail(sys_error("cannot create the clsact qdisc on " + o.ifname + where, -err));
    }
    LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = tc_prog_fd(), .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    err = bpf_tc_attach(&hook, &to);
    if (err) {
      Error e = sys_error("cannot attach the TC egress filter on " + o.ifname + where, -err);
      if (err == -EEXIST)
        e.what += " (a filter already holds handle 0x" + hex(SIPXDP_TC_HANDLE) + " priority " +
                  std::to_string(SIPXDP_TC_PRIORITY) + ")";
      return fail(e);
    }
  }

  uint32_t flags = o.mode == XdpMode::native ? XDP_FLAGS_DRV_MODE : o.mode == XdpMode::generic ? XDP_FLAGS_SKB_MODE : 0;
  LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
  // Until the link is pinned, only this process holds it: if it dies the
  // program detaches with it.
  Fd link(bpf_link_create(xdp_prog_fd(), static_cast<int>(ifindex), BPF_XDP, &lo));
  if (!link.valid()) {
    int e = errno;
    std::string why = "cannot attach XDP to " + o.ifname + where + " in " + xdp_mode_name(o.mode) + " mode";
    if (e == EOPNOTSUPP || e == EINVAL) why += " (the driver may lack native XDP; try --mode generic)";
    Error err = sys_error(why, e);
    err.detail = libbpf_log_tail();
    return fail(err);
  }
  std::string link_path = staging + "/" + kLinkPin;
  if (bpf_obj_pin(link.get(), link_path.c_str()) != 0) return fail(sys_error("cannot pin link at " + link_path, errno));
  if (::rename(staging.c_str(), dir.c_str()) != 0) {
    Error e = sys_error("cannot rename " + staging + " to " + dir, errno);
    (void)bpf_link_detach(link.get());
    return fail(e);
  }
  I.dir = dir;
  return ok_status();
}

Result<Datapath::LinkInfo> Datapath::link_info(const std::string& dir) {
  std::string path = dir + "/" + kLinkPin;
  Fd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) return sys_error("cannot open pinned link " + path, errno);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return sys_error("cannot query link " + path, errno);
  LinkInfo li;
  li.prog_id = info.prog_id;
  li.link_id = info.id;
  li.ifindex = info.xdp.ifindex;
  li.alive = info.xdp.ifindex != 0;
  return li;
}

Status Datapath::detach(const std::string& dir) {
  struct stat sb {};
  if (stat(dir.c_str(), &sb) != 0) return sys_error("nothing attached at " + dir, errno);
  Instance in = inspect_instance(dir);
  // The egress filter first, found through the state map: it must go even
  // when the XDP link is already gone. It lives in the instance's network
  // namespace; if that namespace is gone, so is the filter.
  Fd state(bpf_obj_get((dir + "/state").c_str()));
  uint32_t zero = 0;
  sipxdp_state st{};
  if (state.valid() && bpf_map_lookup_elem(state.get(), &zero, &st) == 0 && (st.tc_flags & SIPXDP_TC_ATTACHED) &&
      (in.netns.empty() || netns_exists(in.netns))) {
    auto scope = NetnsScope::enter(in.netns);
    if (!scope) return scope.error();
    auto cookie = current_netns_cookie();
    if (!cookie) return cookie.error();
    if (cookie.value() == st.netns_cookie) SIPXDP_TRY(detach_tc(state.get(), dir));
  }
  std::string link_path = dir + "/" + kLinkPin;
  Fd fd(bpf_obj_get(link_path.c_str()));
  // Detach explicitly: another process holding the link must not keep it attached.
  if (fd.valid() && bpf_link_detach(fd.get()) != 0 && errno != EINVAL && errno != ENOLINK)
    return sys_error("cannot detach link " + link_path, errno);
  remove_dir(dir);
  if (stat(dir.c_str(), &sb) == 0) return make_error("could not remove every pin under " + dir);
  return ok_status();
}

Result<bool> Datapath::detach_stray(const std::string& ifname) {
  unsigned ifindex = if_nametoindex(ifname.c_str());
  if (!ifindex) return false;
  return remove_stray_filter(static_cast<int>(ifindex));
}

void set_libbpf_logger(std::function<void(const std::string&)> fn) {
  std::lock_guard<std::mutex> g(log_mu);
  log_fn = std::move(fn);
}

std::string libbpf_log_tail(size_t max_lines) {
  std::lock_guard<std::mutex> g(log_mu);
  std::string out;
  size_t start = log_tail.size() > max_lines ? log_tail.size() - max_lines : 0;
  for (size_t i = start; i < log_tail.size(); ++i) out += log_tail[i] + "\n";
  return out;
}

}  // namespace sipxdp
