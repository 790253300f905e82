// The Datapath core: loading the BPF object, opening an instance from its
// pins, reading its state, manifest and counters. (Policy writes are in
// generation.cpp, attach and detach in attach.cpp, bans in bans.cpp.)
#include <dirent.h>
#include <sys/stat.h>

#include <cstdarg>
#include <deque>
#include <map>
#include <mutex>

#include "datapath_impl.h"

namespace sipxdp {

using namespace detail;

namespace {

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

}  // namespace

namespace detail {

int ncpus() {
  static int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * NSEC_PER_SEC + uint64_t(ts.tv_nsec);
}

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

Status update_state_fd(int fd, const std::function<void(sipxdp_state&)>& edit) {
  uint32_t zero = 0;
  sipxdp_state st{};
  if (bpf_map_lookup_elem(fd, &zero, &st) != 0) return sys_error("cannot read map state", errno);
  edit(st);
  if (bpf_map_update_elem(fd, &zero, &st, BPF_ANY) != 0) return sys_error("cannot write map state", errno);
  return ok_status();
}

}  // namespace detail

Result<sipxdp_state> Datapath::Impl::read_state() const {
  uint32_t zero = 0;
  sipxdp_state st{};
  if (bpf_map_lookup_elem(fd(M_state), &zero, &st) != 0) return sys_error("cannot read map state", errno);
  return st;
}

Status Datapath::Impl::update_state(const std::function<void(sipxdp_state&)>& edit) const {
  return update_state_fd(fd(M_state), edit);
}

Result<std::string> Datapath::Impl::read_manifest_text(uint32_t gen) const {
  std::string out;
  sipxdp_manifest_chunk ch;
  for (uint32_t i = 0; i < SIPXDP_MANIFEST_CHUNKS; ++i) {
    uint32_t key = gen * SIPXDP_MANIFEST_CHUNKS + i;
    if (bpf_map_lookup_elem(fd(M_manifest), &key, &ch) != 0) {
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
Status Datapath::Impl::write_manifest_text(uint32_t gen, const std::string& text) const {
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
    if (bpf_map_update_elem(fd(M_manifest), &key, &ch, BPF_ANY) != 0)
      return sys_error("cannot write map manifest", errno);
    if (n < sizeof(ch.data)) {
      ++i;
      break;
    }
  }
  for (; i < SIPXDP_MANIFEST_CHUNKS; ++i) {
    uint32_t key = gen * SIPXDP_MANIFEST_CHUNKS + i;
    if (bpf_map_delete_elem(fd(M_manifest), &key) != 0) {
      if (errno == ENOENT) break;
      return sys_error("cannot clear map manifest", errno);
    }
  }
  return ok_status();
}

// An update of a map-in-map returns only after an RCU grace period: once it
// returns, no packet is still being judged by the generation before the flip.
Status Datapath::Impl::wait_for_readers() const {
  Fd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr));
  if (!inner.valid()) return sys_error("cannot create map for RCU sync", errno);
  uint32_t zero = 0;
  int ifd = inner.get();
  if (bpf_map_update_elem(fd(M_rcu_sync), &zero, &ifd, BPF_ANY) != 0)
    return sys_error("cannot write map rcu_sync", errno);
  return ok_status();
}

Result<std::optional<DirLock>> Datapath::Impl::lock() const {
  if (dir.empty()) return std::optional<DirLock>();
  auto l = DirLock::take(dir);
  if (!l) return l.error();
  return std::optional<DirLock>(std::move(l.value()));
}

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
#define SIPXDP_X_ROW(id, slot, name, action, what) {slot, name, action, what},
      SIPXDP_BUILTIN_COUNTERS(SIPXDP_X_ROW)
#undef SIPXDP_X_ROW
  };
  return v;
}

Result<Datapath> Datapath::load(uint32_t flow_table_size, uint32_t rate_limit_sources) {
  Datapath dp;
  auto& skel = dp.impl_->skel;
  skel = Skeleton<sipxdp_bpf>::open();
  if (!skel) return sys_error("cannot open the BPF object", errno);
  if (int e = bpf_map__set_max_entries(skel->maps.flows, flow_table_size); e != 0)
    return sys_error("cannot size the flow table", -e);
  if (int e = bpf_map__set_max_entries(skel->maps.rl_state, rate_limit_sources); e != 0)
    return sys_error("cannot size the rate-limit table", -e);
  int err = skel.load();
  if (err) {
    Error e = sys_error("the kernel refused to load the XDP program", err);
    e.detail = libbpf_log_tail();
    if (e.err == EPERM) e.what += " (run as root, with CAP_BPF and CAP_NET_ADMIN)";
    return e;
  }
  for (int i = 0; i < M_NUM; ++i) {
    int fd = fcntl(bpf_map__fd(skel->maps.*kSkelMaps[i]), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return sys_error("cannot dup map fd", errno);
    dp.impl_->maps[i].reset(fd);
  }
  // Not attached: nothing reads either generation.
  SIPXDP_TRY(dp.impl_->update_state(
      [](sipxdp_state& s) { s = sipxdp_state{.active_gen = 0, .abi_version = SIPXDP_ABI_VERSION, .settled = 1}; }));
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

Status Datapath::check_load_time_settings(const Policy& p, const Manifest* live) const {
  // Table sizes are fixed when the program is loaded.
  auto check = [&](MapId map, const std::optional<uint32_t>& want, const char* setting, const char* what) -> Status {
    if (!want) return ok_status();
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(impl_->fd(map), &info, &len) != 0)
      return sys_error(std::string("cannot query map ") + kMapNames[map], errno);
    if (info.max_entries != *want)
      return make_error(std::string(setting) + " " + std::to_string(*want) + " differs from the attached table (" +
                        std::to_string(info.max_entries) + " " + what +
                        "); it can only change on attach (detach, then attach)");
    return ok_status();
  };
  SIPXDP_TRY(check(M_flows, p.flows.table_size, "flow_table_size", "flows"));
  SIPXDP_TRY(check(M_rl_state, p.sip.rate_limit_sources, "sip.rate_limit_sources", "sources"));
  // IPv6 bans, rate-limit buckets and auth-failure counts are keyed by the
  // prefix: another one would leave the live ones unmatched (bans lifted
  // without a word).
  Result<Manifest> read = live ? Result<Manifest>(Manifest{}) : manifest();
  if (!read) return read.error();
  const Manifest& m = live ? *live : read.value();
  auto it = m.settings.find("sip.ipv6_prefix");
  if (it != m.settings.end() && !it->second.empty() && it->second[0] != std::to_string(p.sip.ipv6_prefix))
    return make_error("sip.ipv6_prefix " + std::to_string(p.sip.ipv6_prefix) + " differs from the live policy's (" +
                      it->second[0] +
                      "); IPv6 bans, rate limits and auth failures are kept per prefix, so it can only change on "
                      "attach (detach, then attach)");
  return ok_status();
}

Result<Datapath::FlowTable> Datapath::flow_table() const {
  const Impl& I = *impl_;
  FlowTable t;
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(I.fd(M_flows), &info, &len) != 0) return sys_error("cannot query map flows", errno);
  t.capacity = info.max_entries;
  auto st = I.read_state();
  if (!st) return st.error();
  sipxdp_policy_hdr hdr{};
  uint32_t gen = st->active_gen & 1;
  if (bpf_map_lookup_elem(I.fd(M_policy_hdr), &gen, &hdr) != 0) return sys_error("cannot read map policy_hdr", errno);
  uint64_t now = monotonic_ns();
  // Batched, bucket by bucket: a key walk restarts from the first key when
  // its current key is recycled under churn; a batch walk does not.
  std::vector<sipxdp_flow_key> keys(8192);
  std::vector<sipxdp_flow> vals(keys.size());
  uint32_t token = 0;
  bool first = true;
  for (;;) {
    uint32_t n = static_cast<uint32_t>(keys.size()), next = 0;
    int err =
        bpf_map_lookup_batch(I.fd(M_flows), first ? nullptr : &token, &next, keys.data(), vals.data(), &n, nullptr);
    if (err && errno != ENOENT) return sys_error("cannot read map flows", errno);
    for (uint32_t i = 0; i < n; ++i) {
      const sipxdp_flow_key& k = keys[i];
      ++t.entries;
      uint32_t kind = sipxdp_flow_kind(k.proto);
      if (kind < SIPXDP_FLOW_KINDS &&
          int64_t(now - vals[i].seen_ns) <= int64_t(hdr.flow_timeout_s[kind]) * int64_t(NSEC_PER_SEC))
        ++t.live;
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
  if (bpf_map_lookup_elem(impl_->fd(M_counters), &slot, per.data()) != 0)
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
  return stats(m.value());
}

Result<std::vector<StatRow>> Datapath::stats(const Manifest& m) const {
  // Every counter up to the highest slot in use, in batches (one system call
  // per few thousand slots instead of one per slot).
  uint32_t top = 0;
  for (auto& r : m.rules) top = std::max(top, r.counter);
  for (auto& p : m.patterns) top = std::max(top, p.counter);
  for (auto& d : m.dscp) top = std::max(top, d.counter);
  for (auto& r : m.rate_limits) top = std::max({top, r.counter, r.ban_counter});
  for (auto& b : builtin_counters()) top = std::max(top, b.slot);
  const size_t n = size_t(top) + 1, cpus = size_t(ncpus());
  std::vector<sipxdp_counter> per(n * cpus);
  std::vector<uint32_t> keys(n);
  for (uint32_t done = 0; done < n;) {
    uint32_t count = static_cast<uint32_t>(std::min<size_t>(n - done, 4096)), out_batch = 0;
    uint32_t in_batch = done;
    int err = bpf_map_lookup_batch(impl_->fd(M_counters), done ? &in_batch : nullptr, &out_batch, keys.data() + done,
                                   per.data() + size_t(done) * cpus, &count, nullptr);
    if (err && errno != ENOENT) return sys_error("cannot read map counters", errno);
    if (count == 0) return make_error("cannot read map counters: short batch");
    done += count;
    if (err) break;
  }
  auto value = [&](uint32_t slot) {
    CounterValue v;
    for (size_t c = 0; c < cpus; ++c) {
      v.packets += per[size_t(slot) * cpus + c].packets;
      v.bytes += per[size_t(slot) * cpus + c].bytes;
    }
    return v;
  };
  std::vector<StatRow> rows;
  rows.reserve(m.rules.size() + m.patterns.size() + m.dscp.size() + builtin_counters().size());
  for (auto& r : m.rules) rows.push_back({r.name, r.match, r.action, false, value(r.counter)});
  for (auto& pt : m.patterns) {
    std::string q = escape_bytes(pt.pattern);
    StatRow row{"scanner:" + q, (m.sip_match == "headers" ? "header contains \"" : "payload contains \"") + q + "\"",
                "drop", false, value(pt.counter)};
    row.pattern = true;
    rows.push_back(row);
  }
  for (auto& d : m.dscp) {
    StatRow row{"dscp:" + d.name, d.match + " -> dscp " + std::to_string(d.dscp), d.cls, false, value(d.counter)};
    row.dscp = true;
    rows.push_back(row);
  }
  for (auto& r : m.rate_limits) {
    StatRow drop{"ratelimit:" + r.name, r.text, "drop", false, value(r.counter)};
    StatRow ban{"ratelimit-bans:" + r.name, "sources banned by " + r.name, "ban", false, value(r.ban_counter)};
    drop.rate_limit = ban.rate_limit = true;
    rows.push_back(drop);
    rows.push_back(ban);
  }
  for (auto& b : builtin_counters()) {
    std::string action = b.action;
    if (b.slot == SIPXDP_CTR_DEFAULT) action = m.default_action.empty() ? "allow" : m.default_action;
    rows.push_back({b.name, b.what, action, true, value(b.slot)});
  }
  return rows;
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
