"""Fail-open states and evasions found by outside testing (issue 10), with real traffic.

Attach killed half-way, a private bpffs, deleted namespaces, scanner patterns
hidden in fragments or split across TCP segments, reordered fragments, and
IPv4-mapped loopback.
"""
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import unittest

from netns import (CLIENT4, CLIENT6, PY, SERVER4, SERVER6, SIPXDP, Topology, require_root, sh, topology,
                   write_policy)

PIN_ROOT = "/sys/fs/bpf/sipxdp"

POLICY = {
    "version": 1,
    "default_action": "drop",
    "sip": {"ban_seconds": 0},
    "rules": [
        {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": True},
        {"name": "sip-tcp", "proto": "tcp", "dport": 5060, "action": "allow", "inspect_sip": True},
        {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
        {"name": "ping", "proto": "icmp", "icmp_type": 8, "action": "allow"},
    ],
}

# Scapy in the client namespace: send the IP payload `data` (UDP header
# included, built whole so its checksum is right) as fragments cut at `cuts`,
# in `order`.
FRAG_SEND = r"""
import sys, json
from scapy.all import IP, IPv6, IPv6ExtHdrFragment, UDP, Raw, send, raw
a = json.loads(sys.argv[1])
body = a["payload"].encode("latin-1")
if a["v6"]:
    whole = IPv6(src=a["src"], dst=a["dst"]) / UDP(sport=40000, dport=a["dport"]) / Raw(body)
    data = raw(whole)[40:]
else:
    whole = IP(src=a["src"], dst=a["dst"]) / UDP(sport=40000, dport=a["dport"]) / Raw(body)
    data = raw(whole)[20:]
cuts = a["cuts"] + [len(data)]
pieces, start = [], 0
for end in cuts:
    pieces.append((start, data[start:end], end != len(data)))
    start = end
for i in a["order"]:
    off, chunk, more = pieces[i]
    if a["v6"]:
        pkt = IPv6(src=a["src"], dst=a["dst"]) / IPv6ExtHdrFragment(nh=17, offset=off // 8, m=int(more), id=a["id"]) / Raw(chunk)
    else:
        pkt = IP(src=a["src"], dst=a["dst"], proto=17, id=a["id"], frag=off // 8, flags="MF" if more else 0) / Raw(chunk)
    send(pkt, verbose=False)
"""


def sip(n, what="", at=0):
    filler = ("OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.2:5060;branch=z9hG4bK-1\r\n"
              "Record-Route: <sip:proxy.example.net;lr>\r\nMax-Forwards: 70\r\nCall-ID: 1-2-3@198.18.0.2\r\n")
    s = (filler * (n // len(filler) + 1))[:n]
    if what:
        s = s[:at] + what + s[at + len(what):]
    return s


class Hardening(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.policy = write_policy(self.tmp.name, "p.json", POLICY)

    def tearDown(self):
        self.tmp.cleanup()

    # ---- fail-open states ----------------------------------------------

    def test_attach_killed_at_random_points_is_whole_or_absent(self):
        """20 attaches killed with SIGKILL soon after their pins appear: never a half-made instance."""
        with topology() as t:
            seen = {"whole": 0, "interrupted": 0}
            rng = random.Random(20261201)
            for trial in range(20):
                p = subprocess.Popen([SIPXDP, "--netns", t.srv, "attach", t.srv_if, "--policy", self.policy],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t0 = time.time()
                while time.time() - t0 < 20:
                    if os.path.isdir(PIN_ROOT) and any(n.endswith(f"{t.srv_if}@{t.srv}") for n in os.listdir(PIN_ROOT)):
                        break
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0, 0.04))
                p.send_signal(signal.SIGKILL)
                p.wait()
                whole = os.path.isdir(f"{PIN_ROOT}/{t.srv_if}@{t.srv}")
                status = json.loads(t.sipxdp("status", "--json").stdout)
                apply = t.sipxdp("apply", self.policy, "--iface", t.srv_if, check=False)
                if whole:
                    seen["whole"] += 1
                    self.assertEqual(status[0]["state"], "ok", status)
                    self.assertEqual(apply.returncode, 0, apply.stderr)
                    self.assertIsNotNone(t.prog_id(), "a whole instance filters")
                else:
                    seen["interrupted"] += 1
                    # Reported as such, never as attached; apply refuses.
                    self.assertTrue(all(s["state"] != "ok" for s in status), status)
                    self.assertEqual(apply.returncode, 1)
                    self.assertIn("interrupted", apply.stderr)
                    self.assertEqual(len(apply.stderr.strip().splitlines()), 1)
                    # A new attach repairs it.
                    t.sipxdp("attach", t.srv_if, "--policy", self.policy)
                t.sipxdp("detach", t.srv_if)
                filters = t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout
                qdiscs = t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout
                self.assertEqual(filters.strip(), "", f"trial {trial}: filters left")
                self.assertNotIn("clsact", qdiscs, f"trial {trial}: clsact left")
                self.assertIsNone(t.prog_id(), f"trial {trial}: XDP left")
                self.assertFalse([n for n in os.listdir(PIN_ROOT) if t.srv in n], f"trial {trial}: pins left")
            print(f"kill -9 trials: {seen}")
            self.assertGreater(seen["interrupted"], 0, "the kills must land inside attach")

    def test_private_bpffs_is_refused_and_a_stray_filter_is_removed(self):
        with topology() as t:
            r = sh(["unshare", "-m", "sh", "-c",
                    f"umount /sys/fs/bpf && {SIPXDP} --netns {t.srv} attach {t.srv_if} --policy {self.policy}"],
                   check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("would vanish with this process", r.stderr)
            r = sh(["unshare", "-m", "sh", "-c",
                    f"umount /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf && "
                    f"{SIPXDP} --netns {t.srv} attach {t.srv_if} --policy {self.policy}"], check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("would vanish with this process", r.stderr)
            self.assertIsNone(t.prog_id())
            self.assertEqual(t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout.strip(), "")
            # A private mount namespace that still sees the host's bpffs is fine.
            r = sh(["unshare", "-m", SIPXDP, "--netns", t.srv, "attach", t.srv_if, "--policy", self.policy])
            self.assertIsNotNone(t.prog_id())
            # Pins gone behind sipxdp's back: the filter stays; attach names it, detach removes it.
            sh(["rm", "-rf", f"{PIN_ROOT}/{t.srv_if}@{t.srv}"])
            self.assertIn("tc_egress", t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout)
            r = t.sipxdp("attach", t.srv_if, "--policy", self.policy, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"sipxdp detach {t.srv_if} removes it", r.stderr)
            r = t.sipxdp("detach", t.srv_if)
            self.assertIn("removed the sipxdp egress filter", r.stdout)
            self.assertEqual(t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout.strip(), "")
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)

    def test_deleted_namespace_leaves_an_orphan_that_detach_removes(self):
        t = Topology().up()
        try:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            sh(["ip", "netns", "del", t.srv])
            time.sleep(0.3)
            # The host view lists the orphan, with what to do.
            st = json.loads(sh([SIPXDP, "status", "--json"]).stdout)
            mine = [s for s in st if s["netns"] == t.srv]
            self.assertEqual(len(mine), 1, st)
            self.assertEqual(mine[0]["state"], "orphan")
            self.assertIn("no longer exists", mine[0]["problem"])
            self.assertIn("NOT FILTERING", sh([SIPXDP, "status"]).stdout)
            r = t.sipxdp("apply", self.policy, "--iface", t.srv_if, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no longer exists", r.stderr)
            t.sipxdp("detach", "--all")
            self.assertFalse(os.path.exists(f"{PIN_ROOT}/{t.srv_if}@{t.srv}"))

            # Re-created under the same name: detach still works (nothing of ours is there).
            sh(["ip", "netns", "add", t.srv])
            sh(["ip", "link", "add", t.srv_if, "netns", t.srv, "type", "veth", "peer", "name", "sxtmp0"])
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            sh(["ip", "netns", "del", t.srv])
            sh(["ip", "netns", "add", t.srv])
            sh(["ip", "link", "add", t.srv_if, "netns", t.srv, "type", "veth", "peer", "name", "sxtmp1"])
            st = json.loads(sh([SIPXDP, "status", "--json"]).stdout)
            self.assertEqual([s["state"] for s in st if s["netns"] == t.srv], ["orphan"])
            self.assertIn("re-created", [s for s in st if s["netns"] == t.srv][0]["problem"])
            t.sipxdp("detach", t.srv_if)
            self.assertNotIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
        finally:
            t.down()

    # ---- the policy's path ------------------------------------------------

    def test_validate_checks_what_apply_checks_and_dry_runs_show_every_block(self):
        big = os.path.join(self.tmp.name, "big.json")
        with open(big, "w") as f:  # about 18 MB: one rule with a million /32 sources
            f.write('{"version":1,"default_action":"drop","rules":[{"name":"m","proto":"tcp","dport":22,"src":[')
            f.write(",".join(f'"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32"' for i in range(1000000)))
            f.write('],"action":"allow"}]}')
        r = sh([SIPXDP, "validate", big], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(), f"sipxdp: cannot read policy {big}: larger than 8 MiB (the limit for a policy file)")
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            trusting = dict(POLICY, sip={"ban_seconds": 0, "trusted": ["0.0.0.0/0"], "match": "headers"})
            p2 = write_policy(self.tmp.name, "trusting.json", trusting)
            out = t.sipxdp("apply", p2, "--dry-run").stdout
            self.assertIn("sip.trusted: added 0.0.0.0/0", out)
            self.assertIn("sip.match: payload -> headers", out)
            self.assertNotIn("no change", out)
            out = t.sipxdp("apply", p2).stdout
            self.assertIn("sip.trusted: added 0.0.0.0/0", out)
            # Removing many rules: the summary stays short.
            many = dict(POLICY, rules=POLICY["rules"] + [
                {"name": f"x{i}", "proto": "udp", "dport": 40000 + i, "action": "allow"} for i in range(40)])
            t.sipxdp("apply", write_policy(self.tmp.name, "many.json", many))
            out = t.sipxdp("apply", self.policy).stdout.splitlines()
            self.assertLess(len(out), 30, out)
            self.assertIn("and 20 more removed rules had counted", out[-1])

    # ---- evasions --------------------------------------------------------

    def send_frags(self, t, payload, cuts, order, ident, dport=5060, v6=False):
        args = {"payload": payload, "cuts": cuts, "order": order, "id": ident, "dport": dport, "v6": v6,
                "src": CLIENT6 if v6 else CLIENT4, "dst": SERVER6 if v6 else SERVER4}
        t.ns(t.cli, PY, "-c", FRAG_SEND, json.dumps(args))

    def grab(self, t, send, port=5060, v6=False):
        sink = t.peer_bg(t.srv, "udp-grab", str(port), "2.5", "v6" if v6 else "v4")
        self.assertEqual(sink.stdout.readline().strip(), "ready")
        send()
        out, _ = sink.communicate(timeout=10)
        return json.loads(out)

    def test_scanner_patterns_hidden_in_fragments_never_arrive(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            pat = "friendly-scanner"
            # (name, body for a cut at c, cuts, order); c fits a 1,500-byte MTU in both families.
            cases = [
                ("tiny first fragment", lambda c: sip(1200, "User-Agent: " + pat, 400), lambda c: [8], [0, 1]),
                ("pattern in the later fragment", lambda c: sip(2200, "User-Agent: " + pat, 1800), lambda c: [c],
                 [0, 1]),
                ("pattern across the boundary", lambda c: sip(2200, pat, c - 8 - 7), lambda c: [c], [0, 1]),
                ("pattern across the boundary, later first", lambda c: sip(2200, pat, c - 8 - 7), lambda c: [c],
                 [1, 0]),
                ("pattern in a later fragment sent first", lambda c: sip(2200, pat, 1700), lambda c: [c], [1, 0]),
            ]
            for i, (name, body, cuts, order) in enumerate(cases):
                for v6 in (False, True):
                    c = 1448 if v6 else 1480
                    got = self.grab(t, lambda: self.send_frags(t, body(c), cuts(c), order, 500 + i, v6=v6), v6=v6)
                    self.assertEqual(got["marked"], 0, f"{name} (v6={v6}) was delivered: {got}")
            c = t.counts()
            self.assertGreaterEqual(c["scanner:friendly-scanner"][0] + c["fragment"][0], 10)

    def test_reordered_legitimate_fragments_arrive_and_overlaps_do_not_open_a_port(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            clean = sip(3600)
            for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]):
                got = self.grab(t, lambda: self.send_frags(t, clean, [1480, 2960], order, 900 + order[0] * 10 + order[1]))
                self.assertEqual(got["datagrams"], 1, f"order {order}: {got}")
            for v6 in (False, True):
                got = self.grab(t, lambda: self.send_frags(t, clean, [1448, 2896], [2, 0, 1], 950, v6=v6), v6=v6)
                self.assertEqual(got["datagrams"], 1, f"v6={v6}: {got}")
            self.assertGreater(t.counts()["fragment-early"][0], 0)

            # Later fragments first, then a first fragment to a denied port: nothing arrives anywhere.
            def denied_datagram():
                self.send_frags(t, clean, [1480, 2960], [1, 2], 960, dport=5070)
                self.send_frags(t, clean, [1480, 2960], [0], 960, dport=5070)
            self.assertEqual(self.grab(t, denied_datagram, port=5070)["datagrams"], 0)
            # The later fragments of an allowed datagram, then a first fragment for a denied port
            # with the same ID: the first fragment is judged on its own ports and dropped.
            def swapped_first():
                self.send_frags(t, clean, [1480, 2960], [1, 2], 961, dport=5060)
                self.send_frags(t, clean, [1480, 2960], [0], 961, dport=5070)
            self.assertEqual(self.grab(t, swapped_first, port=5070)["datagrams"], 0)
            # An overlapping later fragment carrying a pattern over an allowed datagram's bytes.
            body = sip(2200)
            def overlap():
                self.send_frags(t, body, [1480], [0], 962)
                self.send_frags(t, sip(2200, "friendly-scanner", 1200), [1200 - 8], [1], 962)
                self.send_frags(t, body, [1480], [1], 962)
            got = self.grab(t, overlap)
            self.assertEqual(got["marked"], 0, got)

    def test_pattern_split_across_tcp_segments(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            sink = t.peer_bg(t.srv, "tcp-grab", "5060", "6")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            t.peer(t.cli, "tcp-parts", SERVER4, "5060", "0.3",
                   "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nUser-Agent: friendly-",
                   "scanner\r\nCall-ID: 1@x\r\n\r\n", timeout=30)
            out, _ = sink.communicate(timeout=15)
            got = json.loads(out)
            self.assertFalse(got["marked"], got)
            self.assertGreater(got["bytes"], 0, "the first segment arrived")
            self.assertGreater(t.counts()["scanner:friendly-scanner"][0], 0)

    def test_ipv4_mapped_loopback_is_martian(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            before = t.counts()["martian"][0]
            sink = t.peer_bg(t.srv, "udp-grab", "5060", "2.5", "v6")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            t.ns(t.cli, PY, "-c",
                 "from scapy.all import IPv6, UDP, Raw, send\n"
                 f"for s in ('::ffff:127.0.0.1', '::127.0.0.1', '::1'):\n"
                 f"    send(IPv6(src=s, dst='{SERVER6}')/UDP(sport=1, dport=5060)/Raw(b'x'), verbose=False)")
            out, _ = sink.communicate(timeout=10)
            self.assertEqual(json.loads(out)["datagrams"], 0)
            self.assertEqual(t.counts()["martian"][0] - before, 3)


if __name__ == "__main__":
    unittest.main()
