"""`sipxdp import` against iptables itself: the FreeSWITCH reference ruleset
(tests/import/freeswitch.rules, a real iptables-save output) is loaded with
iptables-restore in one server namespace and, imported by sipxdp, attached in
another; the same table of packets goes to both and gets the same verdicts:
ingress accept/drop (ports, sources, scanner strings, ICMP), replies to flows
the server opened (ESTABLISHED against "stateful") and the DSCP marks of the
mangle table against sipxdp's egress marks.

The ruleset is IPv4 (iptables-save); ip6tables is not part of it, so the table
is IPv4 too (the importer's note on IPv6 says what sipxdp does there)."""
import json
import os
import tempfile
import unittest

from netns import CLIENT4, MANAGER4, PEER, PY, SERVER4, SIPXDP, require_tools, sh, topology

RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "import", "freeswitch.rules")


def sip(ua, method="OPTIONS"):
    return (f"{method} sip:100@{SERVER4} SIP/2.0\r\nVia: SIP/2.0/UDP {CLIENT4}:5070;branch=z9hG4bK-d1\r\n"
            f"From: <sip:200@{CLIENT4}>;tag=1\r\nTo: <sip:100@{SERVER4}>\r\nCall-ID: diff@{CLIENT4}\r\n"
            f"CSeq: 1 {method}\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n")


# (id, proto, port, source, payload): UDP probes carry their id; TCP probes are connection attempts.
UDP_PROBES = [
    ("sip-5060-clean", 5060, CLIENT4, sip("Linphone/5.2")),
    ("sip-5060-friendly-scanner", 5060, CLIENT4, sip("friendly-scanner")),
    ("sip-5060-sipcli", 5060, CLIENT4, sip("sipcli/v1.8")),
    ("sip-5060-vax", 5060, CLIENT4, sip("VaxSIPUserAgent/3.1", "REGISTER")),
    ("sip-5060-scanner-from-manager", 5060, MANAGER4, sip("friendly-scanner")),
    ("sip-5060-scanner-in-body", 5060, CLIENT4, sip("Linphone/5.2") + "\r\nX-Note: sipcli\r\n"),
    ("sip-5080-clean", 5080, CLIENT4, sip("Linphone/5.2")),
    ("sip-5080-friendly-scanner", 5080, CLIENT4, sip("friendly-scanner")),
    ("sip-5070-clean", 5070, CLIENT4, sip("Linphone/5.2")),
    ("stun-3478", 3478, CLIENT4, "stun"),
    ("stun-3479", 3479, CLIENT4, "stun"),
    ("udp-5003", 5003, CLIENT4, "x"),
    ("rtp-16383", 16383, CLIENT4, "rtp"),
    ("rtp-16384", 16384, CLIENT4, "rtp"),
    ("rtp-24000", 24000, CLIENT4, "rtp"),
    ("rtp-32768", 32768, CLIENT4, "rtp"),
    ("rtp-32769", 32769, CLIENT4, "rtp"),
    ("udp-9999", 9999, CLIENT4, "x"),
]
TCP_PROBES = [(5060, CLIENT4), (5061, CLIENT4), (6245, CLIENT4), (5002, CLIENT4), (8080, MANAGER4),
              (8080, CLIENT4), (22, CLIENT4), (9999, CLIENT4), (5080, CLIENT4)]

# Flows the server sends (egress): (name, proto, server port, client port); the client counts each
# flow's packets by DSCP value in its INPUT chain.
DSCP_FLOWS = [("udp-5060", "udp", 5060, 7000), ("udp-rtp-20000", "udp", 20000, 7000),
              ("udp-40000", "udp", 40000, 7000), ("tcp-5060", "tcp", 5060, None),
              ("tcp-5061", "tcp", 5061, None), ("tcp-6245", "tcp", 6245, None)]
DSCP_VALUES = {"none": 0, "cs3": 0x18, "ef": 0x2E}


def stop(proc):
    proc.kill()
    proc.communicate()


def run_table(t):
    """Sends the whole table through topology T; returns {probe: verdict}."""
    verdict = {}
    listen = [["udp", p] for p in sorted({p for _, p, _, _ in UDP_PROBES})]
    listen += [["tcp", p] for p in sorted({p for p, _ in TCP_PROBES})]
    probes = [["udp", p, src, payload, pid] for pid, p, src, payload in UDP_PROBES]
    probes += [["tcp", p, src] for p, src in TCP_PROBES]
    sink = t.peer_bg(t.srv, "listen-many", json.dumps(listen), "12")
    assert sink.stdout.readline().strip() == "ready"
    got = json.loads(t.peer(t.cli, "probe-many", SERVER4, json.dumps(probes), timeout=60).stdout)
    heard = json.loads(sink.communicate(timeout=30)[0])
    for pid, *_ in UDP_PROBES:
        verdict[pid] = "accept" if pid in heard["ids"] else "drop"
    for p, src in TCP_PROBES:
        verdict[f"tcp-{p}-from-{src}"] = "accept" if got[f"tcp/{p}/{src}"] else "drop"
    ping = t.ns(t.cli, "ping", "-c", "2", "-i", "0.2", "-W", "1", SERVER4, check=False)
    verdict["icmp-echo"] = "accept" if "2 received" in ping.stdout else "drop"

    # Replies to flows the server opens: a TCP connection and a UDP exchange from port 40000.
    echo = t.peer_bg(t.cli, "tcp-echo", "7001", "6")
    assert echo.stdout.readline().strip() == "ready"
    r = t.ns(t.srv, PY, PEER, "tcp-try", CLIENT4, "7001", "2", check=False).returncode
    verdict["reply-tcp-server-opened"] = "accept" if r == 0 else "drop"
    stop(echo)
    uecho = t.peer_bg(t.cli, "udp-echo", "7002", "5")
    assert uecho.stdout.readline().strip() == "ready"
    r = t.ns(t.srv, PY, PEER, "udp-ask", CLIENT4, "7002", "40000", "2",
             check=False).returncode
    verdict["reply-udp-server-opened"] = "accept" if r == 0 else "drop"
    stop(uecho)

    # DSCP on what the server sends.
    for name, proto, sport, cport in DSCP_FLOWS:
        for label, value in DSCP_VALUES.items():
            t.ns(t.cli, "iptables", "-w", "-A", "INPUT", "-i", t.cli_if, "-p", proto, "--sport", str(sport),
                 "-m", "dscp", "--dscp",
                 str(value), "-m", "comment", "--comment", f"sxdscp-{name}-{label}")
    uecho = t.peer_bg(t.cli, "udp-echo", "7000", "6")
    assert uecho.stdout.readline().strip() == "ready"
    for name, proto, sport, cport in DSCP_FLOWS:
        if proto == "udp":
            t.ns(t.srv, PY, PEER, "udp-ask", CLIENT4, str(cport), str(sport), "1",
                 check=False)
    stop(uecho)
    tcp_ports = [str(s) for _, proto, s, _ in DSCP_FLOWS if proto == "tcp"]
    for port in tcp_ports:
        srv = t.peer_bg(t.srv, "tcp-echo", port, "3")
        assert srv.stdout.readline().strip() == "ready"
        t.ns(t.cli, PY, PEER, "tcp-try", SERVER4, port, "2", check=False)
        stop(srv)
    table = t.ns(t.cli, "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n").stdout
    for name, *_ in DSCP_FLOWS:
        seen = []
        for label in DSCP_VALUES:
            for line in table.splitlines():
                if f"sxdscp-{name}-{label} " in line and int(line.split()[0]) > 0:
                    seen.append(label)
        verdict[f"dscp-{name}"] = "+".join(seen) or "nothing arrived"
    return verdict


class ImportDifferential(unittest.TestCase):
    def setUp(self):
        require_tools(self, "iptables-restore", "iptables")
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_same_verdicts_as_iptables(self):
        with topology() as t:
            with open(RULES) as f:
                t.ns(t.srv, "iptables-restore", input=f.read())
            # The ruleset really is loaded (not a silent no-op).
            self.assertIn("Chain INPUT (policy DROP", t.ns(t.srv, "iptables", "-w", "-L", "INPUT", "-n").stdout)
            by_iptables = run_table(t)

        imported = sh([SIPXDP, "import", RULES])
        policy = os.path.join(self.tmp.name, "imported.json")
        with open(policy, "w") as f:
            f.write(imported.stdout)
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", policy)
            # no netfilter rule in the server namespace: sipxdp alone decides
            self.assertIn("Chain INPUT (policy ACCEPT", t.ns(t.srv, "iptables", "-w", "-L", "INPUT", "-n").stdout)
            by_sipxdp = run_table(t)

        diff = {k: (by_iptables[k], by_sipxdp.get(k)) for k in by_iptables if by_iptables[k] != by_sipxdp.get(k)}
        self.assertEqual(diff, {}, "probe: (iptables, sipxdp)\n" + json.dumps(by_iptables, indent=1))
        # The table discriminates: both verdicts occur, on the probes that matter.
        expect = {"sip-5060-clean": "accept", "sip-5060-friendly-scanner": "drop", "sip-5060-sipcli": "drop",
                  "sip-5060-vax": "drop", "rtp-16384": "accept", "rtp-32769": "drop",
                  f"tcp-8080-from-{MANAGER4}": "accept", f"tcp-8080-from-{CLIENT4}": "drop",
                  f"tcp-22-from-{CLIENT4}": "drop", "icmp-echo": "accept", "reply-tcp-server-opened": "accept",
                  "reply-udp-server-opened": "accept", "dscp-udp-5060": "cs3", "dscp-udp-rtp-20000": "ef",
                  "dscp-udp-40000": "none", "dscp-tcp-5061": "cs3", "dscp-tcp-6245": "none"}
        self.assertEqual({k: by_iptables[k] for k in expect}, expect)


if __name__ == "__main__":
    unittest.main()
