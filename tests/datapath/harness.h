// The datapath test harness: a loaded (not attached) sipxdp, its counters by
// name, and BPF_PROG_TEST_RUN of built frames.
#pragma once

#include <bpf/bpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sipxdp/abi.h"
#include "sipxdp/datapath.h"

extern unsigned g_test_ifindex;  // a veth device in this process's private netns

namespace sipxdp::test {

// Runs one frame through the program (BPF_PROG_TEST_RUN); returns the XDP verdict.
inline int run_frame(int prog_fd, const std::vector<uint8_t>& frame) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(frame.size());
  ctx.ingress_ifindex = g_test_ifindex;
  std::vector<uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = static_cast<uint32_t>(out.size()),
              .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  REQUIRE_MESSAGE(err == 0, "bpf_prog_test_run_opts: " << std::string(strerror(errno)));
  return static_cast<int>(opts.retval);
}

// Runs one frame through the TC egress program; returns the TC verdict and
// leaves the frame as the program wrote it in `out`.
inline int run_tc_frame(int prog_fd, const std::vector<uint8_t>& frame, std::vector<uint8_t>& out) {
  out.assign(frame.size() + 256, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = static_cast<uint32_t>(out.size()),
              .repeat = 1);
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  REQUIRE_MESSAGE(err == 0, "bpf_prog_test_run_opts (tc): " << std::string(strerror(errno)));
  out.resize(opts.data_size_out);
  return static_cast<int>(opts.retval);
}

struct Harness {
  Datapath dp;
  std::map<std::string, uint32_t> slot;  // counter name -> slot

  static Harness make(const std::string& policy_text) {
    auto dp = Datapath::load();
    REQUIRE_MESSAGE(dp.ok(), (dp.ok() ? "" : dp.error().message() + "\n" + dp.error().detail));
    Harness h{std::move(dp.value()), {}};
    h.apply(policy_text);
    return h;
  }

  void apply(const std::string& text) {
    auto p = parse_policy(text, "fixture.json");
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().what));
    auto s = dp.apply(p.value(), text, "fixture.json");
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    slot.clear();
    for (auto& b : builtin_counters()) slot[b.name] = b.slot;
    auto m = dp.manifest();
    REQUIRE(m.ok());
    for (auto& r : m->rules) slot[r.name] = r.counter;
    for (auto& pt : m->patterns) slot["scanner:" + pt.pattern] = pt.counter;
    for (auto& d : m->dscp) slot["dscp:" + d.name] = d.counter;
    for (auto& r : m->rate_limits) {
      slot["ratelimit:" + r.name] = r.counter;
      slot["ratelimit-bans:" + r.name] = r.ban_counter;
    }
  }

  std::map<std::string, CounterValue> snapshot() {
    std::map<std::string, CounterValue> out;
    for (auto& [name, s] : slot) {
      auto v = dp.counter(s);
      REQUIRE(v.ok());
      out[name] = v.value();
    }
    return out;
  }

  int run(const std::vector<uint8_t>& frame) { return run_frame(dp.xdp_prog_fd(), frame); }
  int run_tc(const std::vector<uint8_t>& frame, std::vector<uint8_t>& out) {
    return run_tc_frame(dp.tc_prog_fd(), frame, out);
  }

  // Runs one frame; exactly the counters in `moved` must move, each by one
  // packet and the frame's bytes.
  void expect_counters(const char* desc, const std::vector<uint8_t>& frame, const std::vector<std::string>& moved,
                       const std::function<void()>& run_it) {
    std::string what = desc;
    CAPTURE(what);
    for (auto& m : moved) REQUIRE_MESSAGE(slot.count(m), "no counter " << m);
    auto before = snapshot();
    run_it();
    auto after = snapshot();
    for (auto& entry : after) {
      const std::string& name = entry.first;  // clang 14 cannot capture a structured binding
      const CounterValue& v = entry.second;
      uint64_t dp_ = v.packets - before[name].packets, db = v.bytes - before[name].bytes;
      if (std::find(moved.begin(), moved.end(), name) != moved.end()) {
        CHECK_MESSAGE(dp_ == 1, desc << ": counter " << name << " moved by " << dp_ << " packets, want 1");
        CHECK_MESSAGE(db == frame.size(), desc << ": counter " << name << " moved by " << db << " bytes");
      } else {
        CHECK_MESSAGE(dp_ == 0, desc << ": counter " << name << " moved by " << dp_ << " packets, want 0");
      }
    }
  }

  // Runs one frame through XDP; exactly `counter` must move, by one packet and the frame's bytes.
  void expect(const char* desc, const std::vector<uint8_t>& frame, int verdict, const std::string& counter) {
    int got = -1;
    expect_counters(desc, frame, {counter}, [&] { got = run(frame); });
    CHECK_MESSAGE(got == verdict, desc << ": verdict " << got << ", want " << verdict);
  }
};

inline constexpr int PASS = XDP_PASS, DROP = XDP_DROP;
inline const char* kClient = "198.18.7.7";
inline const char* kServer = "198.18.0.1";
inline const char* kClient6 = "2001:db8:77::7";
inline const char* kServer6 = "2001:db8::1";

}  // namespace sipxdp::test
