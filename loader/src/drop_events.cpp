// Drop events: decoding, naming, reader slots and the multi-instance stream.
#include "sipxdp/drop_events.h"

#include <arpa/inet.h>
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "datapath_impl.h"

namespace sipxdp {

using namespace detail;

// ---------------------------------------------------------------- decoding

namespace {

struct Reader {
  std::string_view b;
  size_t at = 0;
  bool has(size_t n) const { return at + n <= b.size(); }
  uint8_t u8(size_t off) const { return static_cast<uint8_t>(b[at + off]); }
  uint16_t u16(size_t off) const { return uint16_t(u8(off) << 8 | u8(off + 1)); }
};

std::string addr_text(int family, const char* p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, p, buf, sizeof buf);
  return buf;
}

// The SIP request method or response status of a payload, and its User-Agent.
void decode_sip(std::string_view pl, FrameInfo& out) {
  size_t eol = pl.find("\r\n");
  std::string_view first = pl.substr(0, eol);
  if (first.rfind("SIP/2.0 ", 0) == 0) {
    if (first.size() >= 11 && std::isdigit(static_cast<unsigned char>(first[8])))
      out.sip_method = std::string(first.substr(0, 11));
  } else {
    size_t sp = first.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 32) return;
    if (!std::all_of(first.begin(), first.begin() + sp,
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))
      return;
    std::string_view rest = first.substr(sp + 1);
    // A request line names a URI and ends with SIP/2.0 (unless cut short).
    bool uri = rest.rfind("sip:", 0) == 0 || rest.rfind("sips:", 0) == 0 || rest.rfind("tel:", 0) == 0;
    bool version = rest.size() >= 8 && rest.substr(rest.size() - 8) == " SIP/2.0";
    if (!uri || (!version && eol != std::string_view::npos)) return;
    out.sip_method = std::string(first.substr(0, sp));
  }
  for (size_t pos = eol; pos != std::string_view::npos && pos + 2 < pl.size();) {
    size_t start = pos + 2;
    size_t end = pl.find("\r\n", start);
    std::string_view line = pl.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (line.empty()) break;  // the end of the headers
    constexpr std::string_view kUa = "user-agent";
    if (line.size() > kUa.size() && std::equal(kUa.begin(), kUa.end(), line.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      size_t colon = kUa.size();
      while (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) ++colon;
      if (colon < line.size() && line[colon] == ':') {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        out.user_agent = std::string(v);
        out.user_agent_cut = end == std::string_view::npos;
        return;
      }
    }
    pos = end;
  }
}

}  // namespace

FrameInfo decode_frame(std::string_view frame) {
  FrameInfo out;
  Reader r{frame};
  if (!r.has(14)) return out;
  uint16_t type = r.u16(12);
  r.at = 14;
  for (int i = 0; i < 2 && (type == 0x8100 || type == 0x88a8); ++i) {
    if (!r.has(4)) return out;
    type = r.u16(2);
    r.at += 4;
  }
  size_t l4 = 0, l4_end = frame.size();
  if (type == 0x0800) {
    if (!r.has(20) || (r.u8(0) >> 4) != 4) return out;
    size_t ihl = size_t(r.u8(0) & 0xf) * 4;
    if (ihl < 20) return out;
    out.family = 4;
    out.proto = r.u8(9);
    out.src = addr_text(4, frame.data() + r.at + 12);
    out.dst = addr_text(4, frame.data() + r.at + 16);
    uint16_t frag = r.u16(6);
    if (frag & 0x1fff) out.fragment = true;
    l4_end = std::min(frame.size(), r.at + r.u16(2));
    l4 = r.at + ihl;
  } else if (type == 0x86dd) {
    if (!r.has(40) || (r.u8(0) >> 4) != 6) return out;
    out.family = 6;
    out.src = addr_text(6, frame.data() + r.at + 8);
    out.dst = addr_text(6, frame.data() + r.at + 24);
    l4_end = std::min(frame.size(), r.at + 40 + r.u16(4));
    uint8_t next = r.u8(6);
    r.at += 40;
    for (int i = 0; i < 8; ++i) {
      if (next == 0 || next == 43 || next == 60) {
        if (!r.has(2)) break;
        uint8_t nn = r.u8(0);
        r.at += (size_t(r.u8(1)) + 1) * 8;
        next = nn;
      } else if (next == 44) {
        if (!r.has(8)) break;
        if (r.u16(2) & 0xfff8) out.fragment = true;
        next = r.u8(0);
        r.at += 8;
      } else if (next == 51) {
        if (!r.has(2)) break;
        uint8_t nn = r.u8(0);
        r.at += (size_t(r.u8(1)) + 2) * 4;
        next = nn;
      } else {
        break;
      }
    }
    out.proto = next;
    l4 = r.at;
  } else {
    return out;
  }
  if (out.fragment || l4 >= frame.size()) return out;
  r.at = l4;
  size_t payload = 0;
  if ((out.proto == 6 || out.proto == 17) && r.has(4)) {
    out.sport = r.u16(0);
    out.dport = r.u16(2);
    if (out.proto == 17) {
      payload = l4 + 8;
    } else if (r.has(13)) {
      payload = l4 + size_t(r.u8(12) >> 4) * 4;
    }
  } else if ((out.proto == 1 || out.proto == 58) && r.has(2)) {
    out.icmp_type = r.u8(0);
    out.icmp_code = r.u8(1);
  }
  if (payload && payload < l4_end) decode_sip(frame.substr(payload, l4_end - payload), out);
  return out;
}

// ------------------------------------------------------------------ naming

SlotNames::SlotNames(const Manifest& m) {
  for (auto& r : m.rules) names_[r.counter] = r.name;
  for (auto& p : m.patterns) names_[p.counter] = "scanner:" + escape_bytes(p.pattern);
  for (auto& d : m.dscp) names_[d.counter] = "dscp:" + d.name;
  for (auto& r : m.rate_limits) names_[r.counter] = "ratelimit:" + r.name;
  for (auto& r : m.rate_limits) names_[r.ban_counter] = "ratelimit-bans:" + r.name;
  for (auto& b : builtin_counters()) names_[b.slot] = b.name;
}

std::optional<std::string> SlotNames::find(uint32_t slot) const {
  auto it = names_.find(slot);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

std::string SlotNames::name(uint32_t slot) const {
  auto n = find(slot);
  return n ? *n : "slot " + std::to_string(slot);
}

int64_t monotonic_to_unix_ns() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  return (int64_t(real.tv_sec) - int64_t(mono.tv_sec)) * int64_t(NSEC_PER_SEC) +
         (int64_t(real.tv_nsec) - int64_t(mono.tv_nsec));
}

Event make_event(const RawEvent& raw, const SlotNames& names, const std::string& iface, const std::string& netns,
                 int64_t mono_to_unix_ns) {
  Event e;
  e.iface = iface;
  e.netns = netns;
  e.time_ns = uint64_t(int64_t(raw.h.ts_ns) + mono_to_unix_ns);
  e.cpu = raw.h.cpu;
  e.seq = raw.h.seq;
  e.reason = names.name(raw.h.slot);
  e.pkt_len = raw.h.pkt_len;
  e.frame = raw.data;
  e.info = decode_frame(e.frame);
  return e;
}

namespace {

std::string iso_time(uint64_t ns) {
  time_t s = time_t(ns / NSEC_PER_SEC);
  tm t{};
  gmtime_r(&s, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  char ms[16];
  snprintf(ms, sizeof ms, ".%03uZ", unsigned(ns % NSEC_PER_SEC / 1000000));
  return std::string(buf) + ms;
}

std::string endpoint(const std::string& addr, int port, int family) {
  if (port < 0) return addr;
  return family == 6 ? "[" + addr + "]:" + std::to_string(port) : addr + ":" + std::to_string(port);
}

}  // namespace

nlohmann::ordered_json to_json(const Event& e) {
  nlohmann::ordered_json j;
  j["time"] = iso_time(e.time_ns);
  j["time_ns"] = e.time_ns;
  j["iface"] = e.iface;
  if (!e.netns.empty()) j["netns"] = e.netns;
  j["action"] = "drop";
  j["reason"] = e.reason;
  const FrameInfo& f = e.info;
  if (f.family) {
    j["family"] = f.family == 4 ? "ipv4" : "ipv6";
    j["src"] = f.src;
    j["dst"] = f.dst;
    j["proto"] = protocol_name(f.proto);
  }
  if (f.sport >= 0) j["sport"] = f.sport;
  if (f.dport >= 0) j["dport"] = f.dport;
  if (f.icmp_type >= 0) j["icmp_type"] = f.icmp_type, j["icmp_code"] = f.icmp_code;
  if (f.fragment) j["fragment"] = true;
  if (!f.sip_method.empty()) j["sip_method"] = one_line(f.sip_method);
  if (!f.user_agent.empty()) {
    j["user_agent"] = one_line(f.user_agent);
    if (f.user_agent_cut) j["user_agent_cut"] = true;
  }
  j["len"] = e.pkt_len;
  j["captured"] = e.frame.size();
  j["cpu"] = e.cpu;
  j["seq"] = e.seq;
  return j;
}

std::string event_line(const Event& e) {
  const FrameInfo& f = e.info;
  std::string s = iso_time(e.time_ns) + " " + e.iface + (e.netns.empty() ? "" : "@" + e.netns) + " drop";
  if (f.family) {
    s += " " + protocol_name(f.proto) + " " + endpoint(f.src, f.sport, f.family) + " -> " +
         endpoint(f.dst, f.dport, f.family);
    if (f.icmp_type >= 0) s += " type " + std::to_string(f.icmp_type) + "/" + std::to_string(f.icmp_code);
    if (f.fragment) s += " fragment";
  } else {
    s += " non-IP or cut frame";
  }
  s += " reason=" + e.reason;
  if (!f.sip_method.empty()) s += " sip=" + escape_bytes(f.sip_method);
  if (!f.user_agent.empty()) s += " ua=\"" + escape_bytes(f.user_agent) + (f.user_agent_cut ? "...\"" : "\"");
  s += " len=" + std::to_string(e.pkt_len);
  return s;
}

bool EventFilter::matches(const Event& e) const {
  if (!reasons.empty() && std::none_of(reasons.begin(), reasons.end(), [&](const std::string& r) {
        return fnmatch(r.c_str(), e.reason.c_str(), 0) == 0;
      }))
    return false;
  if (!sources.empty()) {
    if (!e.info.family) return false;
    auto a = parse_cidr(e.info.src);
    if (!a) return false;
    bool in = std::any_of(sources.begin(), sources.end(), [&](const Cidr& c) {
      if (c.family != a->family) return false;
      for (int bit = 0; bit < c.plen; ++bit) {
        int byte = bit / 8, mask = 0x80 >> (bit % 8);
        if ((c.addr[byte] & mask) != (a->addr[byte] & mask)) return false;
      }
      return true;
    });
    if (!in) return false;
  }
  return true;
}

// ------------------------------------------------------- the kernel's side

Result<Datapath::EventCount> Datapath::event_count(uint32_t slot) const {
  std::vector<sipxdp_event_bucket> per(ncpus());
  if (bpf_map_lookup_elem(impl_->fd(M_event_budget), &slot, per.data()) != 0)
    return sys_error("cannot read map event_budget", errno);
  EventCount c;
  for (auto& b : per) {
    c.emitted += b.emitted;
    c.suppressed += b.suppressed;
  }
  return c;
}

Result<uint64_t> Datapath::events_lost() const {
  std::vector<sipxdp_event_stats> per(ncpus());
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(impl_->fd(M_event_stats), &zero, per.data()) != 0)
    return sys_error("cannot read map event_stats", errno);
  uint64_t lost = 0;
  for (auto& s : per) lost += s.lost;
  return lost;
}

Result<std::vector<RawEvent>> Datapath::recent_events() const {
  const size_t stride = array_stride(sizeof(sipxdp_event));
  std::vector<uint8_t> per(stride * size_t(ncpus()));
  std::vector<RawEvent> out;
  for (uint32_t i = 0; i < SIPXDP_EVENT_RECENT; ++i) {
    if (bpf_map_lookup_elem(impl_->fd(M_event_recent), &i, per.data()) != 0)
      return sys_error("cannot read map event_recent", errno);
    for (int cpu = 0; cpu < ncpus(); ++cpu) {
      const auto* ev = reinterpret_cast<const sipxdp_event*>(per.data() + stride * size_t(cpu));
      if (!ev->h.seq) continue;
      RawEvent r;
      r.h = ev->h;
      r.data.assign(reinterpret_cast<const char*>(ev->data), std::min<size_t>(ev->h.cap_len, SIPXDP_EVENT_SNAP_MAX));
      out.push_back(std::move(r));
    }
  }
  std::sort(out.begin(), out.end(), [](const RawEvent& a, const RawEvent& b) {
    return a.h.ts_ns != b.h.ts_ns ? a.h.ts_ns < b.h.ts_ns : a.h.cpu != b.h.cpu ? a.h.cpu < b.h.cpu : a.h.seq < b.h.seq;
  });
  return out;
}

Result<uint64_t> Datapath::applies() const {
  auto st = impl_->read_state();
  if (!st) return st.error();
  return st->applies;
}

// ------------------------------------------------------------ reader slots

namespace {

// Field 22 of /proc/PID/stat: when the process started (clock ticks after boot).
uint64_t process_start(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return 0;
  return std::strtoull(field.c_str(), nullptr, 10);
}

bool owner_alive(const sipxdp_event_owner& o) {
  return o.pid != 0 && process_start(o.pid) == o.start_time;
}

}  // namespace

Result<EventSubscription> EventSubscription::take(const std::string& dir) {
  auto dp = Datapath::open_pinned(dir);
  if (!dp) return dp.error();
  return dp->subscribe_events();
}

Result<EventSubscription> Datapath::subscribe_events() const {
  const Impl& I = *impl_;
  EventSubscription s;
  s.dir_ = I.dir;
  s.readers_.reset(fcntl(I.fd(M_event_readers), F_DUPFD_CLOEXEC, 0));
  s.owners_.reset(fcntl(I.fd(M_event_owners), F_DUPFD_CLOEXEC, 0));
  if (!s.readers_.valid() || !s.owners_.valid()) return sys_error("cannot duplicate a map descriptor", errno);
  auto lock = I.lock();
  if (!lock) return lock.error();
  std::vector<uint32_t> busy;
  std::optional<uint32_t> free_slot;
  for (uint32_t i = 0; i < SIPXDP_EVENT_READERS; ++i) {
    sipxdp_event_owner o{};
    if (bpf_map_lookup_elem(s.owners_.get(), &i, &o) != 0) return sys_error("cannot read map event_owners", errno);
    if (owner_alive(o)) {
      busy.push_back(o.pid);
      continue;
    }
    // Nobody, or a reader that died without giving its slot back.
    if (bpf_map_delete_elem(s.readers_.get(), &i) != 0 && errno != ENOENT)
      return sys_error("cannot clear map event_readers", errno);
    if (!free_slot) free_slot = i;
  }
  if (!free_slot) {
    std::string pids;
    for (auto p : busy) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
    return make_error(std::to_string(SIPXDP_EVENT_READERS) + " readers already follow these events (processes " + pids +
                      "); stop one");
  }
  int ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "sipxdp_events", 0, 0, SIPXDP_EVENT_RING_BYTES, nullptr);
  if (ring < 0) return sys_error("cannot create an event ring buffer", errno);
  s.ring_.reset(ring);
  s.slot_ = *free_slot;
  sipxdp_event_owner me{static_cast<uint32_t>(getpid()), 0, process_start(static_cast<uint32_t>(getpid()))};
  if (bpf_map_update_elem(s.owners_.get(), &s.slot_, &me, BPF_ANY) != 0)
    return sys_error("cannot write map event_owners", errno);
  int rfd = s.ring_.get();
  if (bpf_map_update_elem(s.readers_.get(), &s.slot_, &rfd, BPF_ANY) != 0) {
    int err = errno;
    sipxdp_event_owner none{};
    (void)bpf_map_update_elem(s.owners_.get(), &s.slot_, &none, BPF_ANY);
    return sys_error("cannot write map event_readers", err);
  }
  s.live_ = true;
  return s;
}

void EventSubscription::release() {
  if (!live_) return;
  live_ = false;
  // The instance may be gone (detached): then there is nothing to give back,
  // and no directory to lock.
  std::optional<DirLock> lock;
  if (!dir_.empty())
    if (auto l = DirLock::take(dir_)) lock.emplace(std::move(l.value()));
  sipxdp_event_owner o{};
  if (bpf_map_lookup_elem(owners_.get(), &slot_, &o) == 0 && o.pid == static_cast<uint32_t>(getpid())) {
    (void)bpf_map_delete_elem(readers_.get(), &slot_);
    sipxdp_event_owner none{};
    (void)bpf_map_update_elem(owners_.get(), &slot_, &none, BPF_ANY);
  }
}

EventSubscription::EventSubscription(EventSubscription&& o) noexcept
    : dir_(std::move(o.dir_)),
      readers_(std::move(o.readers_)),
      owners_(std::move(o.owners_)),
      ring_(std::move(o.ring_)),
      slot_(o.slot_),
      live_(std::exchange(o.live_, false)) {}

EventSubscription& EventSubscription::operator=(EventSubscription&& o) noexcept {
  if (this != &o) {
    release();
    dir_ = std::move(o.dir_);
    readers_ = std::move(o.readers_);
    owners_ = std::move(o.owners_);
    ring_ = std::move(o.ring_);
    slot_ = o.slot_;
    live_ = std::exchange(o.live_, false);
  }
  return *this;
}

EventSubscription::~EventSubscription() {
  release();
}

// ------------------------------------------------------------------ stream

struct EventStream::Source {
  EventStream* owner = nullptr;
  std::string dir, iface, netns;
  std::optional<EventSubscription> sub;
  std::optional<Datapath> dp;
  SlotNames names;
  uint64_t names_at = 0;  // monotonic ns of the last refresh

  void refresh_names() {
    if (!dp) return;
    if (auto m = dp->manifest()) names = SlotNames(m.value());
    names_at = monotonic_ns();
  }
};

int event_stream_callback(void* ctx, void* data, size_t size) {
  auto* src = static_cast<EventStream::Source*>(ctx);
  if (size < sizeof(sipxdp_event_hdr)) return 0;
  RawEvent raw;
  std::memcpy(&raw.h, data, sizeof raw.h);
  size_t cap = std::min<size_t>(raw.h.cap_len, size - sizeof raw.h);
  raw.data.assign(static_cast<const char*>(data) + sizeof raw.h, cap);
  // A slot the names do not know, or names older than a few seconds: a
  // policy was applied since.
  if (!src->names.find(raw.h.slot) || monotonic_ns() - src->names_at > 5 * NSEC_PER_SEC) src->refresh_names();
  if (src->owner->fn_)
    (*src->owner->fn_)(make_event(raw, src->names, src->iface, src->netns, src->owner->clock_offset_));
  return 0;
}

EventStream::EventStream() : clock_offset_(monotonic_to_unix_ns()) {}

EventStream::~EventStream() {
  if (rb_) ring_buffer__free(rb_);
}

Status EventStream::add(const std::string& dir, const std::string& iface, const std::string& netns) {
  auto src = std::make_unique<Source>();
  src->owner = this;
  src->dir = dir;
  src->iface = iface;
  src->netns = netns;
  auto dp = Datapath::open_pinned(dir);
  if (!dp) return dp.error();
  src->dp.emplace(std::move(dp.value()));
  auto sub = src->dp->subscribe_events();
  if (!sub) return sub.error();
  src->sub.emplace(std::move(sub.value()));
  src->refresh_names();
  int fd = src->sub->ring_fd();
  if (!rb_) {
    rb_ = ring_buffer__new(fd, event_stream_callback, src.get(), nullptr);
    if (!rb_) return sys_error("cannot map the event ring buffer", errno);
  } else if (ring_buffer__add(rb_, fd, event_stream_callback, src.get()) != 0) {
    return sys_error("cannot map the event ring buffer", errno);
  }
  sources_.push_back(std::move(src));
  return ok_status();
}

Result<int> EventStream::poll(int timeout_ms, const std::function<void(const Event&)>& fn) {
  if (!rb_) return make_error("no instance to follow");
  fn_ = &fn;
  int n = ring_buffer__poll(rb_, timeout_ms);
  fn_ = nullptr;
  if (n < 0 && n != -EINTR) return sys_error("cannot read events", -n);
  return n < 0 ? 0 : n;
}

}  // namespace sipxdp
