// sipxdp_bench: per-packet cost of the XDP program, measured in the kernel
// with BPF_PROG_TEST_RUN (repeat N, the kernel's own average). Prints a table
// and, with --json FILE, writes it. A benchmark: it prints numbers, it never
// fails on speed.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "packet.h"
#include "sipxdp/datapath.h"

using namespace sipxdp;
using sipxdp::test::PacketBuilder;
using json = nlohmann::json;

namespace {

struct Args {
  int repeat = 1000000;
  int runs = 5;
  std::string json_out;
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

std::string policy(int npatterns, const std::string& match, bool inspect, int ban_seconds) {
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

// Median of `runs` kernel-timed runs of `repeat` repetitions, in ns/packet.
double measure(int prog_fd, const std::vector<uint8_t>& frame, const Args& a, unsigned ifindex, uint32_t* retval) {
  std::vector<double> v;
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
    *retval = opts.retval;
    v.push_back(opts.duration);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
    else {
      std::fprintf(stderr, "usage: sipxdp_bench [--repeat N] [--runs N] [--json FILE]\n");
      return 2;
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

  struct Case {
    std::string name;
    std::vector<uint8_t> frame;
  };
  const char* src = "198.18.7.7";
  auto udp = [&](const std::string& payload, uint16_t dport, const char* s = "198.18.7.7") {
    return PacketBuilder().ipv4(s, "198.18.0.1").udp(5060, dport).payload(payload).build();
  };
  std::vector<Case> sip_cases = {
      {"OPTIONS 400 B, clean", udp(sip_options(false, 400), 5060)},
      {"OPTIONS 400 B, scanner User-Agent", udp(sip_options(true, 400), 5060)},
      {"INVITE 1400 B, clean", udp(sip_invite(1400), 5060)},
  };
  json results = json::array();
  std::printf("sipxdp datapath, BPF_PROG_TEST_RUN, median of %d runs x %d repeats (ns/packet)\n\n", a.runs, a.repeat);
  std::printf("%-36s %-8s %9s %9s %9s\n", "packet", "match", "no scan", "8 pat", "64 pat");
  for (auto& c : sip_cases) {
    for (std::string match : {"payload", "headers"}) {
      double ns[3];
      uint32_t rv[3];
      int i = 0;
      for (auto [np, inspect] : {std::pair{8, false}, std::pair{8, true}, std::pair{64, true}}) {
        std::string text = policy(np, match, inspect, 0);
        auto p = parse_policy(text, "bench.json");
        if (!p || !dp->apply(p.value(), text, "bench.json")) {
          std::fprintf(stderr, "sipxdp_bench: cannot apply the bench policy\n");
          return 1;
        }
        ns[i] = measure(dp->xdp_prog_fd(), c.frame, a, ifindex, &rv[i]);
        results.push_back({{"packet", c.name},
                           {"bytes", c.frame.size()},
                           {"match", match},
                           {"patterns", inspect ? np : 0},
                           {"ns_per_packet", ns[i]},
                           {"verdict", rv[i] == XDP_DROP ? "drop" : "pass"}});
        ++i;
      }
      std::printf("%-36s %-8s %9.1f %9.1f %9.1f   (%s)\n", c.name.c_str(), match.c_str(), ns[0], ns[1], ns[2],
                  rv[1] == XDP_DROP ? "dropped" : "passed");
    }
  }

  std::printf("\n%-36s %9s\n", "other paths (8 patterns, payload)", "ns/pkt");
  {
    std::string text = policy(8, "payload", true, 600);
    auto p = parse_policy(text, "bench.json");
    if (!p || !dp->apply(p.value(), text, "bench.json")) return 1;
    const char* banned = "198.18.66.6";
    uint32_t rv;
    // One scanner packet bans the source; the rest of its packets take the ban path.
    measure(dp->xdp_prog_fd(), udp(sip_options(true, 400), 5060, banned), Args{1, 1, ""}, ifindex, &rv);
    std::vector<Case> other = {
        {"RTP 214 B allowed by port range", udp(std::string(172, '\x80'), 20000)},
        {"scanner OPTIONS from a banned source", udp(sip_options(true, 400), 5060, banned)},
        {"TCP SYN to a closed port (default drop)", PacketBuilder().ipv4(src, "198.18.0.1").tcp(40000, 3306).build()},
        {"ARP (the shortest path: rig floor)", PacketBuilder().ethertype(0x0806).build()},
    };
    for (auto& c : other) {
      double ns = measure(dp->xdp_prog_fd(), c.frame, a, ifindex, &rv);
      std::printf("%-40s %9.1f   (%s)\n", c.name.c_str(), ns, rv == XDP_DROP ? "dropped" : "passed");
      results.push_back({{"packet", c.name},
                         {"bytes", c.frame.size()},
                         {"ns_per_packet", ns},
                         {"verdict", rv == XDP_DROP ? "drop" : "pass"}});
    }
  }
  // Lookup cost against policy size: the compiled tables make it flat.
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
    uint32_t rv;
    auto frame = udp("x", static_cast<uint16_t>(10000 + nrules - 1));
    double ns = measure(dp->xdp_prog_fd(), frame, a, ifindex, &rv);
    std::string name = std::to_string(nrules) + " rules" +
                       (nprefixes ? " + a rule of " + std::to_string(nprefixes) + " source prefixes" : "");
    std::printf("%-52s %9.1f   (%s)\n", name.c_str(), ns, rv == XDP_DROP ? "dropped" : "passed");
    results.push_back({{"packet", "UDP to the last rule"},
                       {"rules", nrules},
                       {"prefixes", nprefixes},
                       {"ns_per_packet", ns},
                       {"verdict", rv == XDP_DROP ? "drop" : "pass"}});
  }
  if (!a.json_out.empty()) {
    std::ofstream(a.json_out) << json{{"datapath", results}}.dump(2) << "\n";
    std::printf("\nwrote %s\n", a.json_out.c_str());
  }
  return 0;
}
