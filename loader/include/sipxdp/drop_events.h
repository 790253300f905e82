// Drop events: what the XDP program says about the packets it drops
// (bpf/include/sipxdp/events.h), read back and made readable: who was
// dropped, by which rule, pattern or built-in verdict, and for SIP, which
// request and User-Agent. Read by `sipxdp events`, `capture`, the service's
// journal lines and the exporter.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sipxdp/abi.h"
#include "sipxdp/fd.h"
#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

struct ring_buffer;  // libbpf's

namespace sipxdp {

// An event as the kernel wrote it.
struct RawEvent {
  sipxdp_event_hdr h{};
  std::string data;  // the frame's first h.cap_len bytes
};

// What a frame's first bytes say (as far as they go).
struct FrameInfo {
  int family = 0;  // 4 or 6; 0: not IP, or cut before the IP header
  std::string src, dst;
  uint8_t proto = 0;  // IP protocol (the last header's)
  int sport = -1, dport = -1;
  int icmp_type = -1, icmp_code = -1;
  bool fragment = false;  // a fragment after the first: no ports
  // SIP (a UDP or TCP payload that starts as a SIP message).
  std::string sip_method;  // "REGISTER"; for a response, "SIP/2.0 401"
  std::string user_agent;  // the User-Agent header's value, as far as captured
  bool user_agent_cut = false;
};
FrameInfo decode_frame(std::string_view frame);

// The name of each counter slot as `stats` names its row: the rule's name,
// "scanner:PATTERN", "dscp:NAME", or the built-in's name.
class SlotNames {
 public:
  SlotNames() = default;
  explicit SlotNames(const Manifest& m);
  std::optional<std::string> find(uint32_t slot) const;
  std::string name(uint32_t slot) const;  // "slot N" when the policy has no such slot

 private:
  std::map<uint32_t, std::string> names_;
};

struct Event {
  std::string iface, netns;  // the instance
  uint64_t time_ns = 0;      // Unix time
  uint32_t cpu = 0;
  uint64_t seq = 0;  // per CPU, from 1
  std::string reason;
  uint32_t pkt_len = 0;
  std::string frame;  // the captured bytes
  FrameInfo info;
};

// CLOCK_REALTIME minus CLOCK_MONOTONIC now: added to the kernel's time stamps.
int64_t monotonic_to_unix_ns();
Event make_event(const RawEvent& raw, const SlotNames& names, const std::string& iface, const std::string& netns,
                 int64_t mono_to_unix_ns);

nlohmann::ordered_json to_json(const Event& e);
// One line: "2026-12-01T03:04:05.123Z sxs0 drop udp 198.18.0.2:5062 -> 198.18.0.1:5060
// reason=scanner:friendly-scanner sip=OPTIONS ua="friendly-scanner" len=410".
std::string event_line(const Event& e);

// The filters of `events` and `capture`.
struct EventFilter {
  std::vector<std::string> reasons;  // shell patterns (fnmatch): "scanner:*", "default"
  std::vector<Cidr> sources;
  bool matches(const Event& e) const;
};

class Datapath;

// A reader of an instance's events: a ring buffer of its own in one of the
// instance's SIPXDP_EVENT_READERS reader slots, given back when destroyed
// (a slot whose reader died is taken over by the next reader).
class EventSubscription {
 public:
  EventSubscription(EventSubscription&&) noexcept;
  EventSubscription& operator=(EventSubscription&&) noexcept;
  ~EventSubscription();
  int ring_fd() const { return ring_.get(); }
  uint32_t slot() const { return slot_; }

  // Claims a free reader slot of the instance at `dir` (its pin directory).
  static Result<EventSubscription> take(const std::string& dir);

 private:
  friend class Datapath;
  EventSubscription() = default;
  void release();
  std::string dir_;
  Fd readers_, owners_, ring_;
  uint32_t slot_ = 0;
  bool live_ = false;
};

// Events of several instances, as they come.
class EventStream {
 public:
  EventStream();
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Follows the instance at `dir` (pin directory) named iface[@netns].
  Status add(const std::string& dir, const std::string& iface, const std::string& netns);
  // Waits up to timeout_ms for events; calls fn for each. Returns how many.
  Result<int> poll(int timeout_ms, const std::function<void(const Event&)>& fn);

  struct Source;

 private:
  std::vector<std::unique_ptr<Source>> sources_;
  ::ring_buffer* rb_ = nullptr;
  const std::function<void(const Event&)>* fn_ = nullptr;
  int64_t clock_offset_ = 0;
  friend int event_stream_callback(void* ctx, void* data, size_t size);
};

}  // namespace sipxdp
