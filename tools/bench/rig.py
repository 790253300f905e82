#!/usr/bin/env python3
"""Whole-system benchmark: receivers compared on one veth pair.

Two private network namespaces, a sender and a receiver, joined by a veth
pair (198.18.0.2 -> 198.18.0.1). The sender (sxblast, pinned to CPU 0)
sends N copies of a prepared frame with BPF_PROG_TEST_RUN in live-frames
mode: its XDP program returns XDP_TX, so each frame lands in the receiving
veth's XDP ring without an skb, as fast as the kernel can make them. The
receiving veth has GRO on and threaded NAPI, its NAPI thread pinned to
CPU 1: the receiver's whole work (XDP program, or skb + GRO + netfilter +
UDP) runs on a core of its own. When the receiver is slower than the sender
the ring overflows and the excess is dropped at the sender's veth
(tx_queue_0_xdp_xmit_errors), so

    rate = frames the receiver's NAPI took from its ring / sender's time

(rx_queue_0_xdp_packets of the receiving veth, before and after a run). Each
packet taken is processed to its verdict in the same NAPI poll; the filter's
own counters (iptables/nft rule counters, sipxdp stats, xdp-filter stats)
are read too and must agree. When the receiver keeps up with the sender
(90% or more of the frames taken: marked *), the row is near the sender's
rate: a lower bound of the receiver's.

Receivers, each in a fresh pair of namespaces:
  iptables         the reference ruleset (reference.rules) via iptables-restore
                   (iptables 1.8 "nf_tables" backend: xt string match via nft_compat)
  iptables-legacy  the same file through iptables-legacy-restore (x_tables)
  nftables         reference.nft: the same rules, without the string drops
                   (nftables has no payload search)
  xdp-filter       ports only (policy deny; the reference's ports allowed)
  sipxdp           examples/freeswitch.json (bans on, 600 s), native XDP
  sipxdp-bans-off  the same with sip.ban_seconds 0 (scanner frames only)
  sipxdp-events-off the same with drop events off (SYN and random scanners only)
  xdp-drop         a bare XDP_DROP program: the rig's limit
"""
import argparse
import json
import os
import re
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Namespaces, in_net, in_ns, log, median_spread, require_root, sh, stop_on_signals  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SENDER4, RECEIVER4 = "198.18.0.2", "198.18.0.1"
SCANNER4 = "198.18.0.66"  # the single-source scanner, never the legitimate sender
S_IF, R_IF = "sxbs0", "sxbr0"
SENDER_CPU, RECEIVER_CPU = 0, 1


# ---------------------------------------------------------------- frames

def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def aton(a):
    return bytes(int(x) for x in a.split("."))


def ipv4(src, dst, proto, l4):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, aton(src), aton(dst))
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + l4


def ether(dmac, smac, payload):
    return bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + b"\x08\x00" + payload


def udp(sport, dport, payload):
    # Checksum 0 (none, allowed for IPv4): it stays valid when the sender
    # rewrites the source address.
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp_syn(src, dst, sport, dport):
    h = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = aton(src) + aton(dst) + struct.pack("!BBH", 0, 6, len(h))
    return h[:16] + struct.pack("!H", checksum(pseudo + h)) + h[18:]


def sip_options(scanner, src, size=400):
    ua = "friendly-scanner" if scanner else "Linphone/5.2.0 (belle-sip/5.2.0)"
    m = (f"OPTIONS sip:100@{RECEIVER4} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {src}:5060;branch=z9hG4bK-2087-1-0;rport\r\n"
         "Max-Forwards: 70\r\n"
         f"To: <sip:100@{RECEIVER4}>\r\n"
         f"From: <sip:100@{src}>;tag=6336313233303030\r\n"
         f"User-Agent: {ua}\r\n"
         f"Call-ID: 933790930100342274883069@{src}\r\n"
         f"Contact: <sip:100@{src}:5060>\r\n"
         "CSeq: 1 OPTIONS\r\n"
         "Accept: application/sdp\r\n")
    pad = "X-Pad: " + "a" * max(0, size - len(m) - 7 - 4 - 20)
    return (m + pad + "\r\nContent-Length: 0\r\n\r\n").encode()


# name, description, builder(dmac, smac) -> bytes, random sources
def frame_kinds():
    return [
        ("scanner", "SIP OPTIONS, User-Agent friendly-scanner, one source",
         lambda d, s: ether(d, s, ipv4(SCANNER4, RECEIVER4, 17, udp(5060, 5060, sip_options(True, SCANNER4)))),
         False),
        ("scanner-random", "the same from a new source each frame (131,072 sources, more than the ban table)",
         lambda d, s: ether(d, s, ipv4(SCANNER4, RECEIVER4, 17, udp(5060, 5060, sip_options(True, SCANNER4)))),
         True),
        ("options", "SIP OPTIONS, legitimate (allowed, no socket listens)",
         lambda d, s: ether(d, s, ipv4(SENDER4, RECEIVER4, 17, udp(5060, 5060, sip_options(False, SENDER4)))),
         False),
        ("rtp", "RTP, 172-byte payload to port 20000 (allowed, no socket listens)",
         lambda d, s: ether(d, s, ipv4(SENDER4, RECEIVER4, 17, udp(40000, 20000, b"\x80" * 172))), False),
        ("syn", "TCP SYN to port 3306 (denied: default drop)",
         lambda d, s: ether(d, s, ipv4(SENDER4, RECEIVER4, 6, tcp_syn(SENDER4, RECEIVER4, 40000, 3306))), False),
    ]


# ---------------------------------------------------------------- receivers

class Receiver:
    name = ""
    frames = None  # None: every frame kind
    note = ""

    def __init__(self, rig):
        self.rig = rig

    def setup(self):
        pass

    def teardown(self):
        pass

    def count(self):
        """Packets the filter itself says it judged (its counters), or None."""
        return None


def ipt_count(save_cmd, ns):
    out = sh(in_net(ns, save_cmd, "-c", "-t", "filter")).stdout
    total = 0
    for line in out.splitlines():
        m = re.match(r":INPUT \S+ \[(\d+):\d+\]", line)
        if m:
            total += int(m.group(1))
            continue
        m = re.match(r"\[(\d+):\d+\] -A INPUT .* -j (ACCEPT|DROP|REJECT)", line)
        if m:
            total += int(m.group(1))
    return total


class Iptables(Receiver):
    name = "iptables"
    restore, save = "iptables-restore", "iptables-save"
    note = "reference.rules, nf_tables backend"

    def setup(self):
        with open(os.path.join(HERE, "reference.rules")) as f:
            sh(in_net(self.rig.rns, self.restore), input=f.read())

    def count(self):
        return ipt_count(self.save, self.rig.rns)


class IptablesLegacy(Iptables):
    name = "iptables-legacy"
    restore, save = "iptables-legacy-restore", "iptables-legacy-save"
    note = "reference.rules, x_tables"


class Nftables(Receiver):
    name = "nftables"
    note = "reference.nft: no string match, scanner frames accepted"

    def setup(self):
        sh(in_net(self.rig.rns, "nft", "-f", os.path.join(HERE, "reference.nft")))

    def count(self):
        data = json.loads(sh(in_net(self.rig.rns, "nft", "-j", "list", "table", "ip", "filter")).stdout)
        rules = [x["rule"] for x in data["nftables"] if "rule" in x and x["rule"]["chain"] == "INPUT"]
        total = 0
        for i, r in enumerate(rules):
            ctr = next((e["counter"]["packets"] for e in r["expr"] if "counter" in e), 0)
            verdict = any(k in e for e in r["expr"] for k in ("accept", "drop", "reject"))
            if verdict or i == len(rules) - 1:  # the last rule counts what the policy drops
                total += ctr
        return total


class XdpFilter(Receiver):
    name = "xdp-filter"
    note = "ports only, policy deny, native XDP"
    PIN = "/sys/fs/bpf/xdp-filter"
    UDP_PORTS = [3478, 3479, 5003, 5060, 5080] + list(range(16384, 32769))
    TCP_PORTS = [5002, 5060, 5061, 6245]

    def setup(self):
        if os.path.exists(self.PIN):
            raise RuntimeError(f"{self.PIN} exists (another xdp-filter is loaded on this host): skipped")
        self.made_xdp_dir = not os.path.exists("/sys/fs/bpf/xdp")
        sh(in_net(self.rig.rns, "xdp-filter", "load", R_IF, "--mode", "native", "--policy", "deny"))
        # One `xdp-filter port` per port is 4 ms: 16,385 RTP ports are written
        # into its port map in one bpftool batch instead (key: the port in
        # network order; value: dst | tcp (4) or udp (8) flags, every CPU).
        flags = {}
        for p in self.UDP_PORTS:
            flags[p] = flags.get(p, 2) | 8
        for p in self.TCP_PORTS:
            flags[p] = flags.get(p, 2) | 4
        lines = []
        for p, v in flags.items():
            key = " ".join(f"{b:02x}" for b in struct.pack("!H", p) + b"\0\0")
            val = " ".join(f"{b:02x}" for b in struct.pack("<Q", v))
            lines.append(f"map update pinned {self.PIN}/filter_ports key hex {key} value hex {val}")
        with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        try:
            sh(["bpftool", "batch", "file", f.name])
        finally:
            os.unlink(f.name)

    def count(self):
        out = sh(in_net(self.rig.rns, "xdp-filter", "status")).stdout
        return sum(int(m.group(1)) for m in re.finditer(r"XDP_(?:ABORTED|DROP|PASS|TX|REDIRECT)\s+(\d+) pkts", out))

    def teardown(self):
        sh(in_net(self.rig.rns, "xdp-filter", "unload", R_IF), check=False)
        if getattr(self, "made_xdp_dir", False):
            try:
                os.rmdir("/sys/fs/bpf/xdp")  # libxdp's directory, made by this run, empty again
            except OSError:
                pass


class Sipxdp(Receiver):
    name = "sipxdp"
    note = "examples/freeswitch.json, bans 600 s, native XDP"
    ban_seconds = None
    events = None  # the policy's "events" block, when not the default

    def setup(self):
        path = os.path.join(ROOT, "examples", "freeswitch.json")
        if self.ban_seconds is not None or self.events is not None:
            with open(path) as f:
                p = json.load(f)
            if self.ban_seconds is not None:
                p["sip"]["ban_seconds"] = self.ban_seconds
            if self.events is not None:
                p["events"] = self.events
            path = os.path.join(self.rig.tmp, f"freeswitch-{self.name}.json")
            with open(path, "w") as f:
                json.dump(p, f)
        sh([self.rig.sipxdp, "--netns", self.rig.rns, "attach", R_IF, "--policy", path, "--mode", "native"])

    def stats(self):
        return json.loads(sh([self.rig.sipxdp, "--netns", self.rig.rns, "stats", "--json"]).stdout)[0]

    def count(self):
        s = self.stats()
        rows = [r for r in s["builtin"] if r["name"] != "egress"] + s["rules"] + s["patterns"]
        return sum(r["packets"] for r in rows)

    def breakdown(self):
        s = self.stats()
        rows = [r for r in s["builtin"] if r["name"] != "egress"] + s["rules"] + s["patterns"]
        return {r["name"]: r["packets"] for r in rows if r["packets"]}

    def teardown(self):
        sh([self.rig.sipxdp, "--netns", self.rig.rns, "detach", R_IF], check=False)


class SipxdpBansOff(Sipxdp):
    name = "sipxdp-bans-off"
    note = "the same, sip.ban_seconds 0: every scanner frame searched"
    ban_seconds = 0
    frames = ["scanner", "scanner-random"]


class SipxdpEventsOff(Sipxdp):
    name = "sipxdp-events-off"
    note = "the same with events.drops false: what the drop events cost under a flood (sipxdp has them on)"
    events = {"drops": False}
    frames = ["syn", "scanner-random"]


class XdpDrop(Receiver):
    name = "xdp-drop"
    note = "bare XDP_DROP (the rig's limit)"

    def setup(self):
        sh(in_ns(self.rig.rns, self.rig.sxblast, "drop", R_IF))

    def count(self):
        return self.rig.veth_stats(self.rig.rns, R_IF).get("rx_queue_0_xdp_drops", 0)

    def teardown(self):
        sh(in_ns(self.rig.rns, self.rig.sxblast, "undrop", R_IF), check=False)


RECEIVERS = [Iptables, IptablesLegacy, Nftables, XdpFilter, Sipxdp, SipxdpBansOff, SipxdpEventsOff, XdpDrop]


# ---------------------------------------------------------------- the rig

class Rig:
    """One pair of namespaces (sender, receiver) and the veth between them."""

    def __init__(self, args, nss, tmp, index):
        self.args = args
        self.nss = nss
        self.tmp = tmp
        self.index = index
        self.sipxdp = args.sipxdp
        self.sxblast = args.sxblast
        self.sns = self.rns = None

    def up(self):
        self.sns = self.nss.add(f"sxbS{os.getpid()}-{self.index}")
        self.rns = self.nss.add(f"sxbR{os.getpid()}-{self.index}")
        sh(["ip", "link", "add", S_IF, "netns", self.sns, "type", "veth", "peer", "name", R_IF, "netns", self.rns])
        sh(in_ns(self.sns, "ip", "addr", "add", f"{SENDER4}/24", "dev", S_IF))
        sh(in_ns(self.rns, "ip", "addr", "add", f"{RECEIVER4}/24", "dev", R_IF))
        for ns, ifname in ((self.sns, S_IF), (self.rns, R_IF)):
            sh(in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"))
            sh(in_ns(ns, "ip", "link", "set", ifname, "up"))
        # Allowed frames reach UDP and find no socket: no ICMP errors back (they
        # would cost the receiver and load the sender); no reverse-path check
        # for the random sources, which are routed back through the veth.
        sh(in_ns(self.rns, "sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=0"))
        sh(in_ns(self.rns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"))
        sh(in_ns(self.rns, "sysctl", "-qw", f"net.ipv4.conf.{R_IF}.rp_filter=0"))
        sh(in_ns(self.rns, "ip", "route", "add", "198.18.0.0/15", "dev", R_IF))
        self.smac = self.mac(self.sns, S_IF)
        self.rmac = self.mac(self.rns, R_IF)
        sh(in_ns(self.rns, "ip", "neigh", "replace", SENDER4, "lladdr", self.smac, "dev", R_IF, "nud", "permanent"))
        sh(in_ns(self.rns, "ethtool", "-K", R_IF, "gro", "on"))
        sh(in_ns(self.rns, "sh", "-c", f"echo 1 > /sys/class/net/{R_IF}/threaded"))

    def down(self):
        for ns in (self.sns, self.rns):
            if ns:
                self.nss.remove(ns)
        self.sns = self.rns = None

    @staticmethod
    def mac(ns, ifname):
        return json.loads(sh(in_ns(ns, "ip", "-j", "link", "show", ifname)).stdout)[0]["address"]

    @staticmethod
    def veth_stats(ns, ifname):
        out = sh(in_ns(ns, "ethtool", "-S", ifname)).stdout
        return {k.strip(): int(v) for k, v in re.findall(r"^\s*(\S+):\s+(\d+)$", out, re.M)}

    def taken(self):
        return self.veth_stats(self.rns, R_IF)["rx_queue_0_xdp_packets"]

    def send(self, frame_path, count, random_src):
        cmd = in_ns(self.sns, "taskset", "-c", str(SENDER_CPU), self.sxblast, "send", S_IF, frame_path, str(count),
                    "--batch", "128")
        if random_src:
            cmd.append("--random-src")
        return json.loads(sh(cmd).stdout)


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def background_busy(wait_max=1.0, quiet=0.25, sample=0.1):
    """Share of the CPUs busy while the rig is idle (other users of the machine).

    Waits up to `wait_max` seconds for it to fall to `quiet`; returns the last sample."""
    deadline = time.time() + wait_max
    while True:
        t0, i0 = cpu_times()
        time.sleep(sample)
        t1, i1 = cpu_times()
        busy = 1 - (i1 - i0) / max(1, t1 - t0)
        if busy <= quiet or time.time() > deadline:
            return busy


def pin_napi_threads():
    """Pins the receiving veths' NAPI threads to the receiver CPU; returns how many."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm.startswith(f"napi/{R_IF}-"):
                os.sched_setaffinity(int(pid), {RECEIVER_CPU})
                n += 1
        except OSError:
            continue
    return n


class Cell:
    """One receiver on one kind of frame: its runs."""

    def __init__(self, rig, receiver, kind, builder, random_src):
        self.rig, self.receiver, self.kind, self.random_src = rig, receiver, kind, random_src
        self.frame = builder(rig.rmac, rig.smac)
        self.path = os.path.join(rig.tmp, f"{receiver.name}-{kind}.bin")
        with open(self.path, "wb") as f:
            f.write(self.frame)
        self.runs = []
        self.counted = 0
        self.sipxdp_counters = {}

    def run(self, count):
        f0 = self.receiver.count()
        b0 = self.receiver.breakdown() if isinstance(self.receiver, Sipxdp) else {}
        before = self.rig.taken()
        busy = background_busy()
        s = self.rig.send(self.path, count, self.random_src)
        time.sleep(0.05)  # the receiver drains its ring (256 frames)
        taken = self.rig.taken() - before
        f1 = self.receiver.count()
        if f0 is not None:
            self.counted += f1 - f0
        if b0 or isinstance(self.receiver, Sipxdp):
            for k, v in self.receiver.breakdown().items():
                if v - b0.get(k, 0):
                    self.sipxdp_counters[k] = self.sipxdp_counters.get(k, 0) + v - b0.get(k, 0)
        self.runs.append({"sent": s["sent"], "seconds": s["seconds"], "sender_pps": s["pps"], "taken": taken,
                          "pps": taken / s["seconds"], "background_busy": busy})

    def result(self):
        med, lo, hi = median_spread([r["pps"] for r in self.runs])
        taken = sum(r["taken"] for r in self.runs)
        cell = {
            "receiver": self.receiver.name, "frames": self.kind, "bytes": len(self.frame),
            "random_sources": self.random_src,
            "pps": med, "pps_min": lo, "pps_max": hi,
            "sender_pps": median_spread([r["sender_pps"] for r in self.runs])[0],
            "taken_fraction": taken / sum(r["sent"] for r in self.runs),
            "veth_taken": taken,
            "filter_counted": None if self.receiver.count() is None else self.counted,
            "background_busy": median_spread([r["background_busy"] for r in self.runs])[0],
            "runs": self.runs,
        }
        if self.sipxdp_counters:
            cell["sipxdp_counters"] = self.sipxdp_counters
        return cell


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build directory")
    ap.add_argument("--count", type=int, default=2000000, help="frames per run")
    ap.add_argument("--warmup", type=int, default=300000, help="frames sent before the runs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--receivers", default=",".join(r.name for r in RECEIVERS))
    ap.add_argument("--frames", default=",".join(k[0] for k in frame_kinds()))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    args.sipxdp = os.path.join(args.build, "cli", "sipxdp")
    args.sxblast = os.path.join(args.build, "tools", "bench", "sxblast")
    require_root()
    stop_on_signals()
    if os.cpu_count() < 2:
        sys.exit("rig.py needs two CPUs (sender and receiver)")
    if not os.listdir("/sys/fs/bpf") and sh(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=False).returncode:
        sys.exit("cannot mount bpffs on /sys/fs/bpf")
    wanted_r = args.receivers.split(",")
    wanted_f = args.frames.split(",")
    cells, skipped, receivers = [], {}, []
    nss = Namespaces(args.sipxdp)
    for prefix in ("sxbS", "sxbR"):
        nss.sweep(prefix)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sxbench") as tmp:
        try:
            # Every receiver gets its own pair of namespaces, all set up first;
            # the runs then go round the cells, so background load on this
            # machine falls on every receiver alike.
            for i, cls in enumerate(c for c in RECEIVERS if c.name in wanted_r):
                rig = Rig(args, nss, tmp, i)
                rig.up()
                receiver = cls(rig)
                try:
                    receiver.setup()
                except Exception as e:  # a missing tool: the row is left out, said so
                    skipped[cls.name] = str(e)
                    log(f"rig: {cls.name} skipped: {e}")
                    receiver.teardown()
                    rig.down()
                    continue
                receivers.append(receiver)
                for kind, desc, builder, random_src in frame_kinds():
                    if kind in wanted_f and (not cls.frames or kind in cls.frames):
                        cells.append(Cell(rig, receiver, kind, builder, random_src))
            pin_napi_threads()
            for c in cells:
                c.rig.send(c.path, args.warmup, c.random_src)
            for n in range(args.runs):
                pin_napi_threads()
                for c in cells:
                    c.run(args.count)
                log(f"rig: round {n + 1}/{args.runs} done ({time.time() - started:.0f} s)")
            results = [c.result() for c in cells]
        finally:
            for r in receivers:
                try:
                    r.teardown()
                except Exception as e:
                    log(f"rig: teardown of {r.name}: {e}")
            nss.close()
    result = {
        "method": "veth pair between two namespaces; sender: BPF_PROG_TEST_RUN live frames + XDP_TX on CPU "
                  f"{SENDER_CPU}; receiver: threaded NAPI on CPU {RECEIVER_CPU}; pps = frames the receiving veth "
                  "took from its XDP ring (rx_queue_0_xdp_packets) / sender time; median of runs, taken in turn",
        "count": args.count, "runs": args.runs, "seconds": time.time() - started,
        "receivers": {cls.name: cls.note for cls in RECEIVERS if cls.name in wanted_r and cls.name not in skipped},
        "frames": {k[0]: k[1] for k in frame_kinds() if k[0] in wanted_f},
        "skipped": skipped, "cells": results,
    }
    print_tables(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rig": result}, f, indent=2)


def cell_of(result, receiver, kind):
    return next((c for c in result["cells"] if c["receiver"] == receiver and c["frames"] == kind), None)


def print_tables(result):
    kinds = list(result["frames"])
    receivers = list(result["receivers"])
    print(f"\nveth rig: packets per second handled by the receiver (Mpps, median of {result['runs']} runs "
          f"of {result['count']:,} frames;\n"
          "* = took 90% or more of what was sent: near the sender's rate, a lower bound)")
    print(f"{'receiver':17}" + "".join(f"{k:>16}" for k in kinds))
    for r in receivers:
        row = f"{r:17}"
        for k in kinds:
            c = cell_of(result, r, k)
            row += f"{'-':>16}" if not c else f"{c['pps'] / 1e6:>15.3f}{'*' if c['taken_fraction'] >= 0.9 else ' '}"
        print(row)
    for base in ("iptables", "xdp-drop"):
        print(f"\nratio to {base}")
        print(f"{'receiver':17}" + "".join(f"{k:>16}" for k in kinds))
        for r in receivers:
            row = f"{r:17}"
            for k in kinds:
                c, b = cell_of(result, r, k), cell_of(result, base, k)
                row += f"{'-':>16}" if not c or not b else f"{c['pps'] / b['pps']:>15.2f}x"
            print(row)
    print("\nper cell: spread (min-max Mpps), share of the sent frames the receiver took, the sender's rate,")
    print("and the filter's own count / frames the receiving veth took (1.000: the two agree)")
    for c in result["cells"]:
        chk = "-" if c["filter_counted"] is None else f"{c['filter_counted'] / max(1, c['veth_taken']):.3f}"
        extra = ""
        if "sipxdp_counters" in c:
            extra = "  sipxdp: " + ", ".join(f"{k} {v}" for k, v in sorted(c["sipxdp_counters"].items()))
        print(f"  {c['receiver']:16} {c['frames']:15} {c['pps_min'] / 1e6:6.3f}-{c['pps_max'] / 1e6:<6.3f} "
              f"took {c['taken_fraction'] * 100:5.1f}%  sender {c['sender_pps'] / 1e6:5.2f} Mpps  "
              f"counter/veth {chk}{extra}")
    busy = [r["background_busy"] for c in result["cells"] for r in c["runs"]]
    if busy:
        print(f"\nother load on the machine just before each run (share of all CPUs busy while the rig idled): "
              f"median {statistics.median(busy) * 100:.0f}%, max {max(busy) * 100:.0f}%")
    for name, why in result["skipped"].items():
        print(f"  {name}: skipped: {why}")


if __name__ == "__main__":
    main()
