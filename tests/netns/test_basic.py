"""sipxdp attached in a server namespace, real traffic from a client namespace."""
import os
import tempfile
import time
import unittest

from netns import CLIENT4, MANAGER4, PY, SERVER4, SERVER6, SIPXDP, require_root, sh, topology, udp_exchange, write_policy

POLICY = {
    "version": 1,
    "default_action": "drop",
    "rules": [
        {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow"},
        {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
        {"name": "esl", "proto": "tcp", "dport": 8021, "src": [MANAGER4 + "/32"], "action": "allow"},
        {"name": "ping", "proto": "icmp", "icmp_type": 8, "action": "allow"},
        {"name": "ping6", "proto": "icmpv6", "icmp_type": 128, "action": "allow"},
        {"name": "web", "proto": "tcp", "dport": 8080, "action": "allow"},
    ],
}


class Basic(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.policy = write_policy(self.tmp.name, "p.json", POLICY)

    def tearDown(self):
        self.tmp.cleanup()

    def test_allowed_passes_denied_drops_counters_exact(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            all4 = t.count_out("-p", "all")
            all6 = t.count_out("-6", "-p", "all")
            before = t.counts()

            self.assertEqual(udp_exchange(t, 5060, 200), 200)
            self.assertEqual(udp_exchange(t, 20000, 150), 150)
            self.assertEqual(udp_exchange(t, 5070, 100), 0)
            self.assertEqual(udp_exchange(t, 5080, 50, host=SERVER6, v6=True), 50)

            ping = t.ns(t.cli, "ping", "-c", "20", "-i", "0.01", "-W", "1", SERVER4, check=False)
            self.assertIn("20 received", ping.stdout)
            ping6 = t.ns(t.cli, "ping", "-6", "-c", "10", "-i", "0.01", "-W", "1", SERVER6, check=False)
            self.assertIn("10 received", ping6.stdout)

            echo = t.peer_bg(t.srv, "tcp-echo", "8080", "20")
            self.assertEqual(echo.stdout.readline().strip(), "ready")
            echo21 = t.peer_bg(t.srv, "tcp-echo", "8021", "20")
            self.assertEqual(echo21.stdout.readline().strip(), "ready")
            web = t.count_out("-p", "tcp", "--dport", "8080")
            web6 = t.count_out("-6", "-p", "tcp", "--dport", "8080")
            esl = t.count_out("-s", MANAGER4, "-p", "tcp", "--dport", "8021")
            t.peer(t.cli, "tcp-try", SERVER4, "8080", "3")
            t.peer(t.cli, "tcp-try", SERVER6, "8080", "3")
            # ESL from the client address is denied, from the manager address allowed.
            denied = t.ns(t.cli, "/usr/bin/python3", "-c",
                          "import socket; s=socket.create_connection(('%s', 8021), timeout=1.5)" % SERVER4,
                          check=False)
            self.assertNotEqual(denied.returncode, 0, "ESL from a non-manager address got through")
            allowed = t.ns(t.cli, "/usr/bin/python3", "-c",
                           "import socket; s=socket.create_connection(('%s', 8021), timeout=3, "
                           "source_address=('%s', 0)); s.sendall(b'x'); assert s.recv(1) == b'x'" % (SERVER4, MANAGER4),
                           check=False)
            self.assertEqual(allowed.returncode, 0, allowed.stderr)
            time.sleep(0.3)
            for p in (echo, echo21):
                p.kill()
                p.communicate()

            after = t.counts()
            d = {k: after[k][0] - before[k][0] for k in after}
            self.assertEqual(d["sip-udp"], 250)
            self.assertEqual(d["rtp"], 150)
            self.assertEqual(d["ping"], 20)
            self.assertEqual(d["ping6"], 10)
            self.assertEqual(d["web"], web.packets() + web6.packets())
            self.assertGreater(d["web"], 0)
            # ESL: the manager's packets on the rule, the client's SYN retries on default.
            sent = sum(d[k] for k in d if k not in ("non-ip", "egress"))  # egress: the server's own packets
            self.assertEqual(sent, all4.packets() + all6.packets(),
                             f"every IP packet the client sent is counted exactly once: {d}")
            self.assertGreater(d["esl"], 0)
            self.assertEqual(d["esl"], esl.packets())
            self.assertGreaterEqual(d["default"], 100 + 1, "the denied UDP and the refused ESL SYN")

    def test_apply_changes_behaviour_same_program(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            prog = t.prog_id()
            self.assertIsNotNone(prog)
            self.assertEqual(udp_exchange(t, 5060, 20), 20)
            deny = dict(POLICY, rules=[{"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "drop"}]
                        + POLICY["rules"][1:])
            t.sipxdp("apply", write_policy(self.tmp.name, "deny.json", deny), "--iface", t.srv_if)
            self.assertEqual(t.prog_id(), prog, "apply must not reload the program")
            bpftool = sh(["bpftool", "prog", "show", "id", str(prog)]).stdout
            self.assertIn("xdp_ingress", bpftool)
            self.assertEqual(udp_exchange(t, 5060, 20), 0)
            c = t.counts()
            self.assertEqual(c["sip-udp"][0], 40, "sip-udp keeps its counter across apply")
            t.sipxdp("apply", self.policy)
            self.assertEqual(udp_exchange(t, 5060, 20), 20)
            self.assertEqual(t.prog_id(), prog)

    def test_bad_policy_changes_nothing(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            status = t.sipxdp("status", "--json").stdout
            bad = os.path.join(self.tmp.name, "bad.json")
            with open(bad, "w") as f:
                f.write('{"version": 1, "default_action": "drop", "rules": [\n'
                        '  {"name": "rtp", "proto": "udp", "dport": "32768-16384", "action": "allow"}\n]}\n')
            r = t.sipxdp("apply", bad, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.strip(),
                             f'sipxdp: {bad}:2:44: rule "rtp": port range 32768-16384 is reversed (low-high)')
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)
            self.assertEqual(t.sipxdp("status", "--json").stdout, status)
            self.assertEqual(udp_exchange(t, 5060, 10), 10)

    def test_attach_twice_and_detach_leaves_nothing(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy, "--mode", "generic")
            st = t.sipxdp("status", "--json").stdout
            self.assertIn('"mode": "generic"', st)
            again = t.sipxdp("attach", t.srv_if, "--policy", self.policy, check=False)
            self.assertEqual(again.returncode, 1)
            self.assertIn("is already attached", again.stderr)
            self.assertEqual(len(again.stderr.strip().splitlines()), 1)
            pins = f"/sys/fs/bpf/sipxdp/{t.srv_if}@{t.srv}"
            self.assertTrue(os.path.isdir(pins))
            self.assertTrue(os.path.exists(pins + "/xdp_link"))
            t.sipxdp("detach", t.srv_if)
            self.assertFalse(os.path.exists(pins))
            self.assertIsNone(t.prog_id())
            self.assertEqual(udp_exchange(t, 5070, 5), 5, "nothing filters after detach")
            missing = t.sipxdp("detach", t.srv_if, check=False)
            self.assertEqual(missing.returncode, 1)

    def test_attach_errors_are_one_line(self):
        with topology() as t:
            r = t.sipxdp("attach", "nosuchif0", "--policy", self.policy, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.strip(), f"sipxdp: no interface nosuchif0 in network namespace {t.srv}")
            r = sh([SIPXDP, "--netns", "sx-no-such-ns", "attach", "x", "--policy", self.policy], check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no network namespace sx-no-such-ns", r.stderr)
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/sipxdp/nosuchif0@{t.srv}"))

    def test_fragmented_datagrams(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.policy)
            before = t.counts()
            # 3,000-byte SIP INVITEs: three fragments each on a 1,500-byte MTU.
            sink = t.peer_bg(t.srv, "udp-sink", "5060", "3", "v4")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            t.peer(t.cli, "udp-send", SERVER4, "5060", "10", "3000", "invite")
            out, _ = sink.communicate(timeout=10)
            self.assertEqual(int(out.strip()), 10, "allowed fragmented datagrams arrive whole")
            sink = t.peer_bg(t.srv, "udp-sink", "5070", "3", "v4")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            t.peer(t.cli, "udp-send", SERVER4, "5070", "10", "3000", "invite")
            out, _ = sink.communicate(timeout=10)
            self.assertEqual(int(out.strip()), 0, "denied fragmented datagrams do not")
            after = t.counts()
            # Every fragment counts on its datagram's rule: three per datagram.
            self.assertEqual(after["sip-udp"][0] - before["sip-udp"][0], 30)
            self.assertGreaterEqual(after["default"][0] - before["default"][0], 30)
            self.assertEqual(after["fragment"][0], before["fragment"][0])
            # A forged later fragment alone goes to the kernel's reassembly
            # (on its own counter), which cannot complete it: nothing arrives.
            sink = t.peer_bg(t.srv, "udp-sink", "5060", "3", "v4")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            t.ns(t.cli, PY, "-c",
                 "from scapy.all import IP, Raw, send; "
                 f"send(IP(src='{CLIENT4}', dst='{SERVER4}', proto=17, id=4242, frag=185, flags=0)"
                 "/Raw(b'x' * 200), verbose=False)")
            out, _ = sink.communicate(timeout=10)
            self.assertEqual(int(out.strip()), 0)
            self.assertEqual(t.counts()["fragment-early"][0] - after["fragment-early"][0], 1)

    def test_validate(self):
        r = sh([SIPXDP, "validate", self.policy])
        self.assertIn("ok, 6 rules", r.stdout)


if __name__ == "__main__":
    unittest.main()
