// sipxdp_bench: per-packet cost of the XDP ingress and TC egress programs,
// measured in the kernel with BPF_PROG_TEST_RUN (repeat N: the kernel's own
// average per run; the median of several runs is reported). An empty program
// run the same way gives the rig floor, to subtract. Prints tables and, with
// --json FILE, writes them. A benchmark: it prints numbers, it never fails on
// speed (a verdict other than the expected one is flagged, not fatal).
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "packet.h"
#include "sipxdp/datapath.h"

#ifndef SIPXDP_SOURCE_DIR
#define SIPXDP_SOURCE_DIR "."
#endif

using namespace sipxdp;
using sipxdp::test::PacketBuilder;
using json = nlohmann::json;

namespace {

// A 64-byte frame at 10 Gb/s: (64 + 8 preamble + 12 gap) * 8 bit / 10 Gb/s.
constexpr double kBudgetNs = 67.2;

struct Args {
  int repeat = 1000000;
  int runs = 5;
  std::string json_out;
  std::string policy = SIPXDP_SOURCE_DIR "/examples/freeswitch.json";
  bool quick = false;  // skip the scanner-matcher and policy-size tables
};

struct Timing {
  double median = 0, min = 0, max = 0;
  uint32_t retval = 0;
  std::vector<uint8_t> out;  // the frame as the program left it (TC)
};

std::string sip_options(bool scanner, size_t size) {
  std::string ua = scanner ? "friendly-scanner" : "Linphone/5.2.0 (belle-sip/5.2.0)";
  std::string m =
      "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 198.18.7.7:5060;branch=z9hG4bK-2087-1-0;rport\r\n"
      "Max-Forwards: 70\r\n"
      "To: <sip:100@198.18.0.1>\r\n"
      "From: <sip:100@198.18.7.7>;tag=6336313233303030\r\n"
      "User-Agent: " +
      ua +
      "\r\n"
      "Call-ID: 933790930100342274883069@198.18.7.7\r\n"
      "Contact: <sip:100@198.18.7.7:5060>\r\n"
      "CSeq: 1 OPTIONS\r\n"
      "Accept: application/sdp\r\n";
  std::string pad = "X-Pad: ";
  while (m.size() + pad.size() + 4 + 20 < size) pad += 'a';
  m += pad + "\r\nContent-Length: 0\r\n\r\n";
  return m;
}

// A request of `method` (no body) padded to about `size` bytes, as a phone sends it.
std::string sip_request(const std::string& method, size_t size) {
  std::string m = method +
                  " sip:sipxdp.test SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP 198.18.7.7:5070;branch=z9hG4bK-5521-1-0;rport\r\n"
                  "Max-Forwards: 70\r\n"
                  "To: <sip:1001@sipxdp.test>\r\n"
                  "From: <sip:1001@sipxdp.test>;tag=6336313233303031\r\n"
                  "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n"
                  "Call-ID: 933790930100342274883070@198.18.7.7\r\n"
                  "Contact: <sip:1001@198.18.7.7:5070>\r\n"
                  "CSeq: 2 " +
                  method + "\r\nExpires: 120\r\n";
  std::string pad = "X-Pad: ";
  while (m.size() + pad.size() + 4 + 20 < size) pad += 'a';
  return m + pad + "\r\nContent-Length: 0\r\n\r\n";
}

// The server's response `code` to a `cseq_method` request, with `extra` header lines.
std::string sip_response(int code, const std::string& cseq_method, const std::string& extra) {
  return "SIP/2.0 " + std::to_string(code) + (code == 401 ? " Unauthorized" : " OK") +
         "\r\n"
         "Via: SIP/2.0/UDP 198.18.7.7:5070;branch=z9hG4bK-5521-1-0;rport=5070;received=198.18.7.7\r\n"
         "From: <sip:1001@sipxdp.test>;tag=6336313233303031\r\n"
         "To: <sip:1001@sipxdp.test>;tag=b27e1a1d33761e85846fc98f5f3a7e58.9a2c\r\n"
         "Call-ID: 933790930100342274883070@198.18.7.7\r\n"
         "CSeq: 2 " +
         cseq_method + "\r\n" + extra +
         (code == 401 ? "WWW-Authenticate: Digest realm=\"sipxdp.test\", nonce=\"Z2Jc4WdiW7X0hUVb1fXUhhmDc3V0pJ1W\", "
                        "qop=\"auth\"\r\n"
                      : "") +
         "Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n";
}

std::string sip_invite(size_t size) {
  std::string sdp =
      "v=0\r\no=alice 2890844526 2890844526 IN IP4 198.18.7.7\r\ns=call\r\nc=IN IP4 198.18.7.7\r\nt=0 0\r\n"
      "m=audio 49170 RTP/AVP 0 8 9 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:9 G722/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"
      "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
  std::string h =
      "INVITE sip:1000@198.18.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 198.18.7.7:5060;branch=z9hG4bK776asdhds;rport\r\n"
      "Max-Forwards: 70\r\n"
      "To: \"Bob\" <sip:1000@198.18.0.1>\r\n"
      "From: \"Alice\" <sip:2000@198.18.7.7>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@pc33.example.net\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Contact: <sip:2000@198.18.7.7:5060;transport=udp>\r\n"
      "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n"
      "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n"
      "Supported: replaces, outbound, gruu, path\r\n"
      "Content-Type: application/sdp\r\n";
  std::string pad = "P-Padding: ";
  size_t fixed = h.size() + sdp.size() + 40;
  while (fixed + pad.size() < size) pad += 'b';
  h += pad + "\r\nContent-Length: " + std::to_string(sdp.size()) + "\r\n\r\n";
  std::string m = h + sdp;
  if (m.size() > size) m.resize(size);
  return m;
}

std::string scan_policy(int npatterns, const std::string& match, bool inspect, int ban_seconds) {
  std::string pats =
      R"("friendly-scanner", "VaxSIPUserAgent", "sipcli", "sipvicious", "sip-scan", "iWar", "sundayddr", "sipsak")";
  for (int i = 8; i < npatterns; ++i) pats += ", \"scanner-" + std::to_string(i * 7919 % 100000) + "\"";
  return R"({"version": 1, "default_action": "drop",
    "sip": {"scanner_patterns": [)" +
         pats + R"(], "match": ")" + match + R"(", "ban_seconds": )" + std::to_string(ban_seconds) + R"(},
    "rules": [
      {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow", "inspect_sip": )" +
         (inspect ? "true" : "false") + R"(},
      {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
      {"name": "ssh", "proto": "tcp", "dport": 22, "action": "allow"}
    ]})";
}

std::string ipv4_str(uint32_t v) {
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." + std::to_string((v >> 8) & 255) + "." +
         std::to_string(v & 255);
}

// The n-th /32 of the source-restricted rule: 198.18.4.0 onwards, inside 198.18.0.0/15.
uint32_t listed_source(int i) {
  return 0xc6120400u + static_cast<uint32_t>(i);
}

// A program of two instructions (r0 = ret; exit): what the rig costs by itself.
int load_empty(bpf_prog_type type, int ret) {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = ret;
  insns[1].code = BPF_JMP | BPF_EXIT;
  return bpf_prog_load(type, "bench_floor", "GPL", insns, 2, nullptr);
}

Timing summarize(std::vector<double> v, uint32_t retval) {
  std::sort(v.begin(), v.end());
  Timing t;
  t.median = v[v.size() / 2];
  t.min = v.front();
  t.max = v.back();
  t.retval = retval;
  return t;
}

// Median of `runs` kernel-timed runs of `repeat` repetitions, in ns/packet.
Timing measure_xdp(int prog_fd, const std::vector<uint8_t>& frame, const Args& a, unsigned ifindex) {
  std::vector<double> v;
  uint32_t retval = 0;
  for (int r = 0; r < a.runs; ++r) {
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = ifindex;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = a.repeat);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
      std::perror("bpf_prog_test_run_opts");
      std::exit(1);
    }
    retval = opts.retval;
    v.push_back(opts.duration);
  }
  return summarize(v, retval);
}

// The TC program needs no ctx: the kernel builds an skb from data_in. It
// reuses that skb for every repeat, so the first repeat writes the mark and
// the rest find it written; data_out shows the frame after the runs.
Timing measure_tc(int prog_fd, const std::vector<uint8_t>& frame, const Args& a) {
  std::vector<double> v;
  uint32_t retval = 0;
  std::vector<uint8_t> out(frame.size() + 256);
  uint32_t out_size = 0;
  for (int r = 0; r < a.runs; ++r) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .repeat = a.repeat);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
      std::perror("bpf_prog_test_run_opts (tc)");
      std::exit(1);
    }
    retval = opts.retval;
    out_size = opts.data_size_out;
    v.push_back(opts.duration);
  }
  Timing t = summarize(v, retval);
  out.resize(out_size);
  t.out = out;
  return t;
}

const char* xdp_verdict(uint32_t rv) {
  switch (rv) {
    case XDP_DROP: return "drop";
    case XDP_PASS: return "pass";
    case XDP_TX: return "tx";
    default: return "other";
  }
}

bool apply_text(Datapath& dp, const std::string& text, const std::string& origin) {
  auto p = parse_policy(text, origin);
  if (!p) {
    std::fprintf(stderr, "sipxdp_bench: %s: %s\n", origin.c_str(), p.error().message().c_str());
    return false;
  }
  auto s = dp.apply(p.value(), text, origin);
  if (!s) {
    std::fprintf(stderr, "sipxdp_bench: cannot apply %s: %s\n", origin.c_str(), s.error().message().c_str());
    return false;
  }
  return true;
}

// DSCP of an IPv4 or IPv6 frame (Ethernet header of 14 bytes).
int frame_dscp(const std::vector<uint8_t>& f) {
  if (f.size() < 16) return -1;
  if (f[12] == 0x08 && f[13] == 0x00) return f[15] >> 2;
  if (f[12] == 0x86 && f[13] == 0xdd) return ((f[14] & 0x0f) << 2) | (f[15] >> 6);
  return -1;
}

void print_row(const std::string& name, const Timing& t, double floor, const std::string& verdict,
               const std::string& want) {
  double net = t.median - floor;
  std::string flag = verdict == want ? "" : "  UNEXPECTED (wanted " + want + ")";
  std::printf("%-50s %7.1f %7.1f %7.2f  %5.1f-%-7.1f %s%s\n", name.c_str(), t.median, net, t.median / kBudgetNs, t.min,
              t.max, verdict.c_str(), flag.c_str());
}

void print_header(const char* title) {
  std::printf("\n%-50s %7s %7s %7s  %-13s %s\n", title, "ns/pkt", "-floor", "/67.2", "min-max", "verdict");
}

json row_json(const std::string& name, const std::vector<uint8_t>& frame, const Timing& t, double floor,
              const std::string& verdict, const std::string& want) {
  return {{"case", name},
          {"bytes", frame.size()},
          {"ns_per_packet", t.median},
          {"ns_min", t.min},
          {"ns_max", t.max},
          {"ns_minus_floor", t.median - floor},
          {"budget_fraction", t.median / kBudgetNs},
          {"verdict", verdict},
          {"expected", want}};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--repeat" && i + 1 < argc)
      a.repeat = std::atoi(argv[++i]);
    else if (s == "--runs" && i + 1 < argc)
      a.runs = std::atoi(argv[++i]);
    else if (s == "--json" && i + 1 < argc)
      a.json_out = argv[++i];
    else if (s == "--policy" && i + 1 < argc)
      a.policy = argv[++i];
    else if (s == "--quick")
      a.quick = true;
    else {
      std::fprintf(stderr,
                   "usage: sipxdp_bench [--repeat N] [--runs N] [--policy FILE] [--quick] [--json FILE]\n"
                   "  --quick: only the paths of the policy, prefixes and DSCP (no matcher and size tables)\n");
      return 2;
    }
  }
  if (a.repeat < 1 || a.runs < 1) return 2;
  std::string fs_text;
  {
    std::ifstream in(a.policy);
    std::stringstream ss;
    ss << in.rdbuf();
    fs_text = ss.str();
    if (!in || fs_text.empty()) {
      std::fprintf(stderr, "sipxdp_bench: cannot read %s\n", a.policy.c_str());
      return 1;
    }
  }
  // A private network namespace with a veth: the frames' ingress device.
  if (unshare(CLONE_NEWNET) != 0 ||
      std::system("ip link add sxb0 type veth peer name sxb1 && ip link set sxb0 up && ip link set sxb1 up") != 0) {
    std::fprintf(stderr, "sipxdp_bench: needs root (a private netns with a veth pair)\n");
    return 1;
  }
  unsigned ifindex = if_nametoindex("sxb0");
  auto dp = Datapath::load();
  if (!dp) {
    std::fprintf(stderr, "sipxdp_bench: %s\n", dp.error().message().c_str());
    return 1;
  }
  int xdp_floor_fd = load_empty(BPF_PROG_TYPE_XDP, XDP_PASS);
  int tc_floor_fd = load_empty(BPF_PROG_TYPE_SCHED_CLS, TC_ACT_OK);
  if (xdp_floor_fd < 0 || tc_floor_fd < 0) {
    std::perror("sipxdp_bench: cannot load the empty programs");
    return 1;
  }
  json out = json::object();
  std::printf("sipxdp datapath, BPF_PROG_TEST_RUN: median of %d runs x %d repeats, ns/packet\n", a.runs, a.repeat);
  std::printf("(-floor: minus the empty program's cost; /67.2: share of a 64-byte frame's time at 10 Gb/s)\n");

  auto udp = [&](const std::string& payload, uint16_t dport, const char* s = "198.18.7.7") {
    return PacketBuilder().ipv4(s, "198.18.0.1").udp(5060, dport).payload(payload).build();
  };
  auto rtp = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").udp(40000, 20000).payload(172, 0x80).build();

  // 1. The paths of the real policy (examples/freeswitch.json).
  json fs = json::parse(fs_text);
  json fs_noban = fs;
  fs_noban["sip"]["ban_seconds"] = 0;
  Timing floor = measure_xdp(xdp_floor_fd, rtp, a, ifindex);
  json paths = json::array();
  print_header("paths of examples/freeswitch.json (XDP ingress)");
  print_row("rig floor: empty XDP program (RTP frame)", floor, floor.median, xdp_verdict(floor.retval), "pass");
  paths.push_back(
      row_json("rig floor: empty XDP program", rtp, floor, floor.median, xdp_verdict(floor.retval), "pass"));
  struct Case {
    std::string name;
    std::vector<uint8_t> frame;
    std::string want;
    bool noban = false;
  };
  const char* banned = "198.18.66.6";
  std::vector<Case> cases = {
      {"RTP allowed (port range)", rtp, "pass"},
      {"SIP OPTIONS allowed (scanned, clean)", udp(sip_options(false, 400), 5060), "pass"},
      {"SIP OPTIONS scanner, dropped by pattern", udp(sip_options(true, 400), 5060), "drop", true},
      {"scanner OPTIONS from a banned source", udp(sip_options(true, 400), 5060, banned), "drop"},
      {"TCP SYN to a closed port (default drop)",
       PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").tcp(40000, 3306).build(), "drop"},
      {"SIP INVITE allowed (scanned, clean)", udp(sip_invite(1400), 5060), "pass"},
  };
  if (!apply_text(*dp, fs_text, a.policy)) return 1;
  {
    // One scanner packet bans its source; the rest of its packets take the ban path.
    Args once = a;
    once.runs = 1;
    once.repeat = 1;
    measure_xdp(dp->xdp_prog_fd(), udp(sip_options(true, 400), 5060, banned), once, ifindex);
  }
  for (bool noban : {false, true}) {
    if (noban && !apply_text(*dp, fs_noban.dump(), "freeswitch.json with ban_seconds 0")) return 1;
    for (auto& c : cases) {
      if (c.noban != noban) continue;
      Timing t = measure_xdp(dp->xdp_prog_fd(), c.frame, a, ifindex);
      std::string name = c.name + " " + std::to_string(c.frame.size()) + " B" + (noban ? ", bans off" : "");
      print_row(name, t, floor.median, xdp_verdict(t.retval), c.want);
      paths.push_back(row_json(name, c.frame, t, floor.median, xdp_verdict(t.retval), c.want));
    }
  }
  {
    // Diagnostic: the same RTP frame when no rule restricts addresses (esl
    // removed), so the address stage (LPM + class pair) is skipped.
    json p = fs_noban;
    json rules = json::array();
    for (auto& r : p["rules"])
      if (r["name"] != "esl") rules.push_back(r);
    p["rules"] = rules;
    if (!apply_text(*dp, p.dump(), "freeswitch.json without esl")) return 1;
    Timing t = measure_xdp(dp->xdp_prog_fd(), rtp, a, ifindex);
    std::string name = "RTP allowed " + std::to_string(rtp.size()) + " B, policy without esl (no src rule)";
    print_row(name, t, floor.median, xdp_verdict(t.retval), "pass");
    paths.push_back(row_json(name, rtp, t, floor.median, xdp_verdict(t.retval), "pass"));
  }
  out["floor_xdp_ns"] = floor.median;
  out["paths"] = paths;

  // 2. A source-restricted rule (esl) of 10, 1,000 and 100,000 /32 prefixes.
  json prefixes = json::array();
  print_header("esl rule with N source prefixes (tcp 8021)");
  for (int n : {10, 1000, 100000}) {
    json p = fs_noban;
    json src = json::array();
    for (int i = 0; i < n; ++i) src.push_back(ipv4_str(listed_source(i)) + "/32");
    for (auto& r : p["rules"])
      if (r["name"] == "esl") r["src"] = src;
    std::string text = p.dump();
    if (!apply_text(*dp, text, "freeswitch.json, esl with " + std::to_string(n) + " prefixes")) return 1;
    std::string listed = ipv4_str(listed_source(n - 1));
    auto in = PacketBuilder().ipv4(listed.c_str(), "198.18.0.1").tcp(40000, 8021).build();
    auto outside = PacketBuilder().ipv4("198.18.2.200", "198.18.0.1").tcp(40000, 8021).build();
    for (auto& [what, frame, want] : {std::tuple{"a listed source, allowed", in, "pass"},
                                      std::tuple{"an unlisted source, default drop", outside, "drop"}}) {
      Timing t = measure_xdp(dp->xdp_prog_fd(), frame, a, ifindex);
      std::string name = std::to_string(n) + " prefixes: SYN from " + what;
      print_row(name, t, floor.median, xdp_verdict(t.retval), want);
      json j = row_json(name, frame, t, floor.median, xdp_verdict(t.retval), want);
      j["prefixes"] = n;
      prefixes.push_back(j);
    }
  }
  out["prefixes"] = prefixes;

  // 3. Drop events: the default drop (a SYN to a closed port) with events
  // off, on but over the rate (what a flood costs: the bucket says no), and
  // on with credit for every packet (the event written: recent slot, one
  // reader's ring buffer).
  json events = json::array();
  print_header("drop events (TCP SYN to a closed port, default drop)");
  {
    auto syn = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").tcp(40000, 3306).build();
    auto with_events = [&](const std::string& block) {
      json p = fs_noban;
      p["events"] = json::parse(block);
      return p.dump();
    };
    struct EvCase {
      std::string name, events;
      int repeat;  // 0: a.repeat
      bool reader;
    };
    // With credit for every packet: burst covers the repeats (the bucket
    // starts full), so each packet makes its event.
    int made_n = std::min(a.repeat, 100000);
    std::vector<EvCase> evcases = {
        {"events off", R"({"drops": false})", 0, false},
        {"events on, over the rate (suppressed)", R"({"rate": 10, "burst": 50})", 0, false},
        {"events on, every drop makes one, no reader", R"({"rate": 100000, "burst": 100000, "snaplen": 64})", made_n,
         false},
        {"events on, every drop makes one, one reader", R"({"rate": 100000, "burst": 100000, "snaplen": 64})", made_n,
         true},
    };
    for (auto& c : evcases) {
      if (!apply_text(*dp, with_events(c.events), "freeswitch.json with events " + c.events)) return 1;
      std::optional<EventSubscription> sub;
      if (c.reader) {
        auto s = dp->subscribe_events();
        if (!s) {
          std::fprintf(stderr, "sipxdp_bench: %s\n", s.error().message().c_str());
          return 1;
        }
        sub.emplace(std::move(s.value()));
      }
      Args ea = a;
      if (c.repeat) ea.repeat = c.repeat;
      std::vector<double> v;
      uint32_t rv = 0;
      for (int r = 0; r < a.runs; ++r) {
        // A fresh policy apply does not refill the buckets: wait out the rate.
        if (c.repeat) usleep(1100000);
        Args one = ea;
        one.runs = 1;
        Timing t1 = measure_xdp(dp->xdp_prog_fd(), syn, one, ifindex);
        v.push_back(t1.median);
        rv = t1.retval;
      }
      Timing t = summarize(v, rv);
      std::string name = c.name + " " + std::to_string(syn.size()) + " B";
      print_row(name, t, floor.median, xdp_verdict(t.retval), "drop");
      json j = row_json(name, syn, t, floor.median, xdp_verdict(t.retval), "drop");
      j["repeat"] = ea.repeat;
      j["setting"] = c.name;
      events.push_back(j);
    }
  }
  out["events"] = events;

  // 3b. SIP defences (issue 14): the rate-limit path of a REGISTER (XDP) and
  // the parse of the server's responses (TC egress).
  json sipdef = json::array();
  print_header("SIP rate limits (XDP ingress, REGISTER 5060)");
  {
    auto reg = udp(sip_request("REGISTER", 450), 5060);
    auto invite = udp(sip_request("INVITE", 450), 5060);
    auto reg_tcp = PacketBuilder()
                       .ipv4("198.18.7.7", "198.18.0.1")
                       .tcp(40000, 5060, 0x18, 1)
                       .payload(sip_request("REGISTER", 450))
                       .build();
    auto with_sip = [&](const std::string& limits) {
      json p = fs_noban;
      p["sip"]["rate_limits"] = json::parse(limits);
      return p.dump();
    };
    // Within the limit: credit for far more than the repeats; over: one a day, no ban.
    const std::string wide = R"({"name": "reg", "methods": ["REGISTER"], "requests": 1000000, "per_seconds": 1})";
    json four = json::array();
    for (auto [name, methods] : {std::pair{"a", json{"REGISTER"}}, std::pair{"b", json{"REGISTER", "INVITE"}},
                                 std::pair{"c", json{"*"}}, std::pair{"d", json{"REGISTER", "OPTIONS"}}}) {
      json l = json::parse(wide);
      l["name"] = name;
      l["methods"] = methods;
      four.push_back(l);
    }
    struct RlCase {
      std::string name, limits;
      std::vector<uint8_t> frame;
      std::string want;
    };
    for (auto& c :
         {RlCase{"REGISTER, no rate limits", "[]", reg, "pass"},
          RlCase{"REGISTER, 1 limit, within it", "[" + wide + "]", reg, "pass"},
          RlCase{"REGISTER, 4 limits counting it, within them", four.dump(), reg, "pass"},
          RlCase{"REGISTER, over the limit (dropped, no ban)",
                 R"([{"name": "reg", "methods": ["REGISTER"], "requests": 1, "per_seconds": 86400}])", reg, "drop"},
          RlCase{"INVITE, a REGISTER-only limit", "[" + wide + "]", invite, "pass"},
          RlCase{"REGISTER over TCP, 1 limit (request lines searched)", "[" + wide + "]", reg_tcp, "pass"},
          RlCase{"REGISTER over TCP, no rate limits", "[]", reg_tcp, "pass"}}) {
      if (!apply_text(*dp, with_sip(c.limits), "freeswitch.json with rate limits")) return 1;
      // "Within the limit" holds 1,000,000 requests at once: the runs stay inside it.
      Args ra = a;
      ra.repeat = std::min(a.repeat, 100000);
      Timing t = measure_xdp(dp->xdp_prog_fd(), c.frame, ra, ifindex);
      std::string name = c.name + " " + std::to_string(c.frame.size()) + " B";
      print_row(name, t, floor.median, xdp_verdict(t.retval), c.want);
      sipdef.push_back(row_json(name, c.frame, t, floor.median, xdp_verdict(t.retval), c.want));
    }
  }
  {
    print_header("SIP responses on egress (TC): auth failures, learned trust");
    json p = fs_noban;
    // Failures counted but never enough to ban within the repeats.
    p["sip"]["auth_failures"] = {{"max", 100000}, {"window_seconds", 1}, {"ban_seconds", 1}};
    std::string on = p.dump();
    p["sip"].erase("auth_failures");
    p["sip"]["learned_trust"] = {{"enabled", false}};
    std::string off = p.dump();
    auto out4 = [&](const std::string& payload) {
      return PacketBuilder().ipv4("198.18.0.1", "198.18.7.7").udp(5060, 5070).payload(payload).build();
    };
    auto rtp_out = PacketBuilder().ipv4("198.18.0.1", "198.18.7.7").udp(20000, 40000).payload(172, 0x80).build();
    Timing tc0 = measure_tc(tc_floor_fd, rtp_out, a);
    struct RespCase {
      std::string name;
      const std::string* policy;
      std::vector<uint8_t> frame;
    };
    for (auto& c :
         {RespCase{"RTP, responses not read", &off, rtp_out}, RespCase{"RTP, responses read (not SIP)", &on, rtp_out},
          RespCase{"401 to REGISTER (an auth failure)", &on, out4(sip_response(401, "REGISTER", ""))},
          RespCase{"200 to OPTIONS (headers walked)", &on, out4(sip_response(200, "OPTIONS", ""))},
          RespCase{"200 to REGISTER (trust learned)", &on,
                   out4(sip_response(200, "REGISTER", "Contact: <sip:1001@198.18.7.7:5070>;expires=120\r\n"))}}) {
      if (!apply_text(*dp, *c.policy, "freeswitch.json with SIP responses")) return 1;
      Timing t = measure_tc(dp->tc_prog_fd(), c.frame, a);
      std::string name = c.name + " " + std::to_string(c.frame.size()) + " B";
      bool goes_on = t.retval == TC_ACT_OK || static_cast<int32_t>(t.retval) == TC_ACT_UNSPEC;
      print_row(name, t, tc0.median, goes_on ? "ok" : "tc", "ok");
      json j = row_json(name, c.frame, t, tc0.median, goes_on ? "ok" : "tc", "ok");
      j["hook"] = "tc";
      sipdef.push_back(j);
    }
  }
  out["sip_defences"] = sipdef;

  // 4. DSCP marking on egress (TC program), IPv4 and IPv6.
  if (!apply_text(*dp, fs_text, a.policy)) return 1;
  json dscp = json::array();
  auto rtp4_out = PacketBuilder().ipv4("198.18.0.1", "198.18.7.7").udp(20000, 40000).payload(172, 0x80).build();
  auto rtp6_out = PacketBuilder().ipv6("2001:db8::1", "2001:db8::7").udp(20000, 40000).payload(172, 0x80).build();
  auto sip4_out =
      PacketBuilder().ipv4("198.18.0.1", "198.18.7.7").udp(5060, 5060).payload(sip_options(false, 400)).build();
  Timing tc_floor = measure_tc(tc_floor_fd, rtp4_out, a);
  print_header("egress (TC): DSCP marks of examples/freeswitch.json");
  print_row("rig floor: empty TC program (RTP frame)", tc_floor, tc_floor.median, "ok", "ok");
  dscp.push_back(row_json("rig floor: empty TC program", rtp4_out, tc_floor, tc_floor.median, "ok", "ok"));
  struct TcCase {
    std::string name;
    std::vector<uint8_t> frame;
    int want_dscp;
  };
  for (auto& c : {TcCase{"RTP IPv4 -> EF (46)", rtp4_out, 46}, TcCase{"RTP IPv6 -> EF (46)", rtp6_out, 46},
                  TcCase{"SIP IPv4 -> CS3 (24)", sip4_out, 24}}) {
    Timing t = measure_tc(dp->tc_prog_fd(), c.frame, a);
    int got = frame_dscp(t.out);
    // TC_ACT_OK or TC_ACT_UNSPEC (the next filter decides): the packet goes on.
    bool goes_on = t.retval == TC_ACT_OK || static_cast<int32_t>(t.retval) == TC_ACT_UNSPEC;
    std::string verdict = goes_on ? "dscp " + std::to_string(got) : "tc " + std::to_string(t.retval);
    std::string want = "dscp " + std::to_string(c.want_dscp);
    std::string name = c.name + " " + std::to_string(c.frame.size()) + " B";
    print_row(name, t, tc_floor.median, verdict, want);
    dscp.push_back(row_json(name, c.frame, t, tc_floor.median, verdict, want));
  }
  out["floor_tc_ns"] = tc_floor.median;
  out["dscp"] = dscp;

  if (!a.quick) {
    // 5. The scanner matcher: payload length, match mode and pattern count.
    std::vector<Case> sip_cases = {
        {"OPTIONS, clean", udp(sip_options(false, 400), 5060), "pass"},
        {"OPTIONS, scanner User-Agent", udp(sip_options(true, 400), 5060), "drop"},
        {"INVITE, clean", udp(sip_invite(1400), 5060), "pass"},
    };
    json scanner = json::array();
    std::printf("\n%-36s %-8s %9s %9s %9s  (ns/pkt, bans off)\n", "scanner matcher", "match", "no scan", "8 pat",
                "64 pat");
    for (auto& c : sip_cases) {
      c.name += " " + std::to_string(c.frame.size()) + " B";
      for (std::string match : {"payload", "headers"}) {
        double ns[3];
        uint32_t rv[3];
        int i = 0;
        for (auto [np, inspect] : {std::pair{8, false}, std::pair{8, true}, std::pair{64, true}}) {
          if (!apply_text(*dp, scan_policy(np, match, inspect, 0), "bench.json")) return 1;
          Timing t = measure_xdp(dp->xdp_prog_fd(), c.frame, a, ifindex);
          ns[i] = t.median;
          rv[i] = t.retval;
          scanner.push_back({{"packet", c.name},
                             {"bytes", c.frame.size()},
                             {"match", match},
                             {"patterns", inspect ? np : 0},
                             {"ns_per_packet", t.median},
                             {"verdict", xdp_verdict(t.retval)}});
          ++i;
        }
        std::printf("%-36s %-8s %9.1f %9.1f %9.1f   (%s)\n", c.name.c_str(), match.c_str(), ns[0], ns[1], ns[2],
                    xdp_verdict(rv[1]));
      }
    }
    out["scanner"] = scanner;

    // 6. Lookup cost against policy size: the compiled tables make it flat.
    json sizes = json::array();
    std::printf("\n%-52s %9s\n", "policy size (packet: UDP to the last rule's port)", "ns/pkt");
    for (auto [nrules, nprefixes] : {std::pair{5, 0}, std::pair{5000, 0}, std::pair{5000, 100000}}) {
      Policy p;
      p.default_action = Action::drop;
      for (int i = 0; i < nrules; ++i) {
        Rule r;
        r.name = "r" + std::to_string(i);
        r.protos = {ProtoKind::udp};
        r.dport = {{static_cast<uint16_t>(10000 + i), static_cast<uint16_t>(10000 + i)}};
        r.action = Action::allow;
        p.rules.push_back(r);
      }
      if (nprefixes) {
        Rule block;
        block.name = "blocklist";
        block.action = Action::drop;
        for (int i = 0; i < nprefixes; ++i) {
          Cidr c;
          uint32_t v = (100u << 24) | (uint32_t(i) << 8);
          c.addr = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
          c.plen = 24;
          block.src.push_back(c);
        }
        p.rules.insert(p.rules.begin(), block);
      }
      if (!dp->apply(p, "", "bench")) {
        std::fprintf(stderr, "sipxdp_bench: cannot apply the size policy\n");
        return 1;
      }
      auto frame = udp("x", static_cast<uint16_t>(10000 + nrules - 1));
      Timing t = measure_xdp(dp->xdp_prog_fd(), frame, a, ifindex);
      std::string name = std::to_string(nrules) + " rules" +
                         (nprefixes ? " + a rule of " + std::to_string(nprefixes) + " /24 source prefixes" : "");
      std::printf("%-52s %9.1f   (%s)\n", name.c_str(), t.median, xdp_verdict(t.retval));
      sizes.push_back({{"packet", "UDP to the last rule"},
                       {"rules", nrules},
                       {"prefixes", nprefixes},
                       {"ns_per_packet", t.median},
                       {"verdict", xdp_verdict(t.retval)}});
    }
    out["policy_size"] = sizes;
  }
  // 7. Where `apply` spends its time, in process (no process start, no CLI):
  // parse_policy, compile_policy, and Datapath::apply (compile + map writes +
  // the wait for readers of the old generation).
  {
    json cp = json::array();
    std::printf("\n%-34s %10s %10s %10s  (ms, median of %d)\n", "apply, in process", "parse", "compile", "apply",
                a.runs);
    for (auto [label, nrules, nprefixes] :
         {std::tuple{"10 rules", 10, 0}, std::tuple{"1,000 rules", 1000, 0}, std::tuple{"10,000 rules", 10000, 0},
          std::tuple{"100,000 source prefixes", 0, 100000}}) {
      json p = {{"version", 1}, {"default_action", "drop"}, {"rules", json::array()}};
      for (int i = 0; i < nrules; ++i)
        p["rules"].push_back(
            {{"name", "r" + std::to_string(i)}, {"proto", "udp"}, {"dport", 10000 + i}, {"action", "allow"}});
      if (nprefixes) {
        json src = json::array();
        for (int i = 0; i < nprefixes; ++i) src.push_back(ipv4_str(listed_source(i)) + "/32");
        p["rules"].push_back({{"name", "esl"}, {"proto", "tcp"}, {"dport", 8021}, {"action", "allow"}, {"src", src}});
      }
      std::string text = p.dump();
      std::vector<double> tp, tc, ta;
      for (int r = 0; r < std::max(3, std::min(a.runs, 5)); ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto pol = parse_policy(text, "bench.json");
        auto t1 = std::chrono::steady_clock::now();
        if (!pol) return 1;
        auto c = compile_policy(pol.value(), fresh_counters(pol.value()));
        auto t2 = std::chrono::steady_clock::now();
        if (!c) return 1;
        if (!apply_text(*dp, fs_text, a.policy)) return 1;  // a small live policy to replace
        auto t3 = std::chrono::steady_clock::now();
        if (!dp->apply(pol.value(), text, "bench.json")) {
          std::fprintf(stderr, "sipxdp_bench: cannot apply the %s policy\n", label);
          return 1;
        }
        auto t4 = std::chrono::steady_clock::now();
        auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
        tp.push_back(ms(t1 - t0));
        tc.push_back(ms(t2 - t1));
        ta.push_back(ms(t4 - t3));
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      std::printf("%-34s %10.1f %10.1f %10.1f\n", label, median(tp), median(tc), median(ta));
      cp.push_back({{"policy", label}, {"parse_ms", median(tp)}, {"compile_ms", median(tc)}, {"apply_ms", median(ta)}});
    }
    out["apply_in_process"] = cp;
  }
  out["repeat"] = a.repeat;
  out["runs"] = a.runs;
  out["budget_ns"] = kBudgetNs;
  if (!a.json_out.empty()) {
    std::ofstream(a.json_out) << json{{"datapath", out}}.dump(2) << "\n";
    std::printf("\nwrote %s\n", a.json_out.c_str());
  }
  close(xdp_floor_fd);
  close(tc_floor_fd);
  return 0;
}
