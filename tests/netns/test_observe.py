"""Watching it with real tools: Debian's Prometheus scrapes the exporter (run
under its unit's capabilities) and its HTTP API must return what
`stats --json` says after known traffic; promtool checks the exposition;
`events` and `capture` tell who a real scanner (svmap) is and why it was
dropped, and tshark reads the capture back; under a flood the events' rate
limit is exact (made + suppressed = drops)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from netns import CLIENT4, MANAGER4, SERVER4, SIPXDP, require_tools, sh, topology, udp_exchange, write_policy
from test_service import EXPORTER_UNIT, MainProcess, unit_commands

SXSEND = os.environ.get("SXSEND", "sxsend")
GRAFANA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "grafana", "sipxdp.json")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def policy(**events):
    doc = {
        "version": 1,
        "default_action": "drop",
        "sip": {"ban_seconds": 600, "trusted": [MANAGER4 + "/32"]},
        "rules": [
            {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow", "inspect_sip": True},
            {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
            {"name": "no-telnet", "proto": "tcp", "dport": 23, "action": "drop"},
            {"name": "ping", "proto": "icmp", "icmp_type": 8, "action": "allow"},
        ],
        "dscp": [{"name": "sip-cs3", "proto": "udp", "sport": 5060, "class": "cs3"}],
    }
    if events:
        doc["events"] = events
    return doc


class Observe(unittest.TestCase):
    def setUp(self):
        require_tools(self, "prometheus", "promtool", "tshark", "svmap")
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def exporter(self):
        """The exporter unit's ExecStart, under its capabilities, on a free loopback port."""
        cmds, caps = unit_commands(EXPORTER_UNIT, "")
        port = free_port()
        argv = [a.replace("${SIPXDP_EXPORTER_LISTEN}", f"127.0.0.1:{port}") for a in cmds["ExecStart"]]
        self.assertIn("exporter", argv)
        self.assertNotIn("net_admin", caps)
        return MainProcess(argv, caps, self.tmp.name, self.tmp.name).started(), port

    def prometheus(self, target_port):
        port = free_port()
        cfg = os.path.join(self.tmp.name, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: sipxdp\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{target_port}']\n")
        sh(["promtool", "check", "config", cfg])
        proc = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                                 f"--storage.tsdb.path={os.path.join(self.tmp.name, 'tsdb')}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if "Ready" in http_get(base + "/-/ready"):
                    return proc, base
            except OSError:
                pass
            if proc.poll() is not None:
                raise AssertionError("prometheus exited: " + proc.stderr.read())
            time.sleep(0.2)
        proc.kill()
        raise AssertionError("prometheus did not become ready")

    @staticmethod
    def query(base, q, netns=None):
        """An instant query; with netns, only the series of that instance's namespace."""
        if netns:
            q = q.replace("}", f',netns="{netns}"}}') if "{" in q else q + f'{{netns="{netns}"}}'
        out = json.loads(http_get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})))
        assert out["status"] == "success", out
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance", "__name__"))):
                float(r["value"][1]) for r in out["data"]["result"]}

    def wait_scrapes(self, base, n=2):
        """Waits until Prometheus has scraped the exporter n more times (the
        exporter counts the scrapes it serves: exposer_scrapes_total)."""
        def scrapes():
            r = self.query(base, "exposer_scrapes_total")
            return max(r.values()) if r else 0
        start = scrapes()
        for _ in range(100):
            if scrapes() >= start + n:
                return
            time.sleep(0.2)
        self.fail("Prometheus stopped scraping")

    def settled_stats(self, t, base):
        """`stats --json` once the counters hold still across two scrapes: the
        kernel's own traffic (neighbour discovery, multicast reports) may move
        built-in counters at any time, and a scrape is a moment."""
        for _ in range(10):
            before = t.stats()
            self.wait_scrapes(base, 2)
            after = t.stats()
            if before == after:
                return after
        self.fail("the counters never held still for two scrapes")

    def test_prometheus_scrapes_what_stats_says(self):
        with topology() as t:
            path = write_policy(self.tmp.name, "p.json", policy())
            t.sipxdp("attach", t.srv_if, "--policy", path)
            exporter, eport = self.exporter()
            prom = None
            try:
                text = http_get(f"http://127.0.0.1:{eport}/metrics")
                r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
                self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), "promtool check metrics")
                prom, base = self.prometheus(eport)

                # Known traffic: SIP allowed, a closed port, telnet, ping, a scanner (then banned).
                self.assertEqual(udp_exchange(t, 5060, 20), 20)
                self.assertEqual(udp_exchange(t, 5070, 7), 0)
                t.ns(t.cli, "python3", "-c", "import socket; s=socket.socket(); s.settimeout(0.5);\n"
                     "try: s.connect(('198.18.0.1', 23))\nexcept OSError: pass", check=False)
                t.ns(t.cli, "ping", "-c", "3", "-i", "0.2", SERVER4)
                t.ns(t.cli, "svmap", SERVER4, "-p", "5060", check=False, timeout=60)
                self.assertEqual(udp_exchange(t, 5060, 4), 0, "the scanner is banned")
                stats = self.settled_stats(t, base)
                want_rules = {(("action", r["action"]), ("iface", t.srv_if), ("netns", t.srv), ("rule", r["name"])):
                              float(r["packets"]) for r in stats["rules"]}
                self.assertEqual(self.query(base, "sipxdp_rule_packets_total", t.srv), want_rules)
                want_bytes = {k: float(r["bytes"]) for k, r in zip(want_rules, stats["rules"])}
                self.assertEqual(self.query(base, "sipxdp_rule_bytes_total", t.srv), want_bytes)
                want_builtin = {(("action", b["action"]), ("iface", t.srv_if), ("netns", t.srv), ("path", b["name"])):
                                float(b["packets"]) for b in stats["builtin"]}
                self.assertEqual(self.query(base, "sipxdp_builtin_packets_total", t.srv), want_builtin)
                drops = self.query(base, "sipxdp_drops_total", t.srv)
                by_reason = {dict(k)["reason"]: v for k, v in drops.items()}
                counts = t.counts()
                self.assertEqual(by_reason["default"], counts["default"][0])
                self.assertEqual(by_reason["banned"], counts["banned"][0])
                self.assertEqual(by_reason["scanner:friendly-scanner"], counts["scanner:friendly-scanner"][0])
                self.assertEqual(by_reason["banned"], 4)
                self.assertEqual(by_reason["scanner:friendly-scanner"], 1)
                self.assertGreaterEqual(counts["default"][0], 7)
                self.assertEqual(counts["no-telnet"][0], 1)
                dscp = self.query(base, "sipxdp_dscp_marked_packets_total", t.srv)
                self.assertEqual(list(dscp.keys()),
                                 [(("class", "cs3"), ("iface", t.srv_if), ("netns", t.srv), ("rule", "sip-cs3"))])
                bans = self.query(base, "sipxdp_bans", t.srv)
                self.assertEqual(bans[(("iface", t.srv_if), ("netns", t.srv), ("reason", "scanner:friendly-scanner"))], 1)
                status = json.loads(t.sipxdp("status", "--json").stdout)[0]
                info = self.query(base, "sipxdp_policy_info", t.srv)
                self.assertEqual([dict(k)["sha256"] for k in info], [status["sha256"]])
                self.assertEqual(list(self.query(base, "sipxdp_policy_applies_total", t.srv).values()), [1.0])
                self.assertEqual(list(self.query(base, "sipxdp_instance_filtering", t.srv).values()), [1.0])
                self.assertEqual(self.query(base, "sipxdp_flow_table_capacity", t.srv)[(("iface", t.srv_if),
                                                                                  ("netns", t.srv))], 65536)
                events = {dict(k)["reason"]: v for k, v in self.query(base, "sipxdp_events_total", t.srv).items()}
                self.assertGreaterEqual(events["default"], 7)

                # Every query of the Grafana dashboard in examples/ returns data.
                with open(GRAFANA) as f:
                    dash = json.load(f)
                for panel in dash["panels"]:
                    for target in panel["targets"]:
                        got = self.query(base, target["expr"])
                        self.assertTrue(got, f"dashboard panel {panel['title']!r}: {target['expr']} returns nothing")

                # apply: counters kept by name stay monotonic; a removed rule's series goes.
                before = self.query(base, 'sipxdp_rule_packets_total{rule="sip-udp"}', t.srv)
                doc = policy()
                doc["rules"] = [r for r in doc["rules"] if r["name"] != "rtp"]
                t.sipxdp("apply", write_policy(self.tmp.name, "p2.json", doc))
                t.sipxdp("ban", "del", CLIENT4 + "/32")
                self.assertEqual(udp_exchange(t, 5060, 5), 5)
                self.settled_stats(t, base)
                after = self.query(base, 'sipxdp_rule_packets_total{rule="sip-udp"}', t.srv)
                self.assertEqual(list(after.values())[0], list(before.values())[0] + 5)
                self.assertEqual(self.query(base, 'sipxdp_rule_packets_total{rule="rtp"}', t.srv), {})
                self.assertEqual(list(self.query(base, "sipxdp_policy_applies_total", t.srv).values()), [2.0])
            finally:
                if prom:
                    prom.terminate()
                    prom.wait(timeout=20)
                    prom.stderr.close()
                self.assertEqual(exporter.stop(), 0, exporter.lines)

    def test_events_and_capture_name_a_real_scanner(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", write_policy(self.tmp.name, "p.json", policy()))
            pcap = os.path.join(self.tmp.name, "drops.pcapng")
            # --src: the client's drops only (not the IPv6 multicast reports the default drops too).
            follow = subprocess.Popen([SIPXDP, "--netns", t.srv, "events", "--follow", "--json", "--count", "6",
                                       "--src", CLIENT4 + "/32", "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            capture = subprocess.Popen([SIPXDP, "--netns", t.srv, "capture", t.srv_if, "-w", pcap, "--count", "6",
                                        "--src", "198.18.0.0/24", "--snaplen", "512", "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
            self.assertIn("capturing drops on", capture.stdout.readline())
            time.sleep(0.5)  # both have their ring buffers
            t.ns(t.cli, "svmap", SERVER4, "-p", "5060", check=False, timeout=60)
            self.assertEqual(udp_exchange(t, 5070, 6, host=SERVER4), 0)
            out, err = follow.communicate(timeout=60)
            self.assertEqual(follow.returncode, 0, err)
            evs = [json.loads(l) for l in out.splitlines()]
            self.assertEqual(len(evs), 6)
            first = evs[0]
            self.assertEqual(first["reason"], "scanner:friendly-scanner")
            self.assertEqual((first["src"], first["dst"], first["proto"], first["dport"]),
                             (CLIENT4, SERVER4, "udp", 5060))
            self.assertEqual(first["sip_method"], "OPTIONS")
            self.assertEqual(first["user_agent"], "friendly-scanner")
            self.assertEqual((first["iface"], first["netns"]), (t.srv_if, t.srv))
            self.assertTrue(all(e["reason"] == "banned" for e in evs[1:]), evs)
            cout, cerr = capture.communicate(timeout=60)
            self.assertEqual(capture.returncode, 0, cerr)
            self.assertIn("captured 6 dropped packets", cout)
            r = sh(["tshark", "-r", pcap, "-T", "fields", "-E", "separator=|", "-e", "frame.comment", "-e",
                    "ip.src", "-e", "udp.dstport", "-e", "sip.Method", "-e", "sip.User-Agent",
                    "-e", "frame.interface_name"])
            rows = [l.split("|") for l in r.stdout.splitlines()]
            self.assertEqual(len(rows), 6, r.stdout)
            self.assertEqual(rows[0][0].split(" ua=")[0],
                             f"sipxdp: drop reason=scanner:friendly-scanner iface={t.srv_if}@{t.srv} sip=OPTIONS")
            self.assertEqual(rows[0][1:6], [CLIENT4, "5060", "OPTIONS", "friendly-scanner", f"{t.srv_if}@{t.srv}"])
            self.assertTrue(all(row[0].startswith("sipxdp: drop reason=banned") for row in rows[1:]), rows)

            # The recent events, filtered.
            recent = t.sipxdp("events", t.srv_if, "--reason", "scanner:*").stdout.splitlines()
            self.assertEqual(len(recent), 1, recent)
            self.assertRegex(recent[0], r"drop udp 198\.18\.0\.2:\d+ -> 198\.18\.0\.1:5060 "
                                        r"reason=scanner:friendly-scanner sip=OPTIONS ua=\"friendly-scanner\"")
            self.assertEqual(t.sipxdp("events", "--src", "198.18.9.0/24").stdout, "")
            self.assertEqual(len(t.sipxdp("events", "--json", "-n", "3").stdout.splitlines()), 3)
            bad = t.sipxdp("events", "--src", "198.18.0.0/33", check=False)
            self.assertEqual(bad.returncode, 1)
            self.assertEqual(len(bad.stderr.strip().splitlines()), 1)

    def test_events_off_and_the_rate_limit_under_a_flood(self):
        if not shutil.which(SXSEND) and not os.path.exists(SXSEND):
            self.fail("sxsend is missing")
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy",
                     write_policy(self.tmp.name, "p.json", policy(drops=False)))
            r = t.sipxdp("events", "--follow", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn('makes no drop events ("events": {"drops": false})', r.stderr)
            t.sipxdp("apply", write_policy(self.tmp.name, "p2.json", policy(rate=5, burst=20)))
            before = t.counts()["default"][0]
            start = time.monotonic()
            r = t.ns(t.cli, SXSEND, SERVER4, "5999", "200000", "0", timeout=120)
            seconds = time.monotonic() - start
            time.sleep(0.3)
            drops = t.counts()["default"][0] - before
            self.assertGreater(drops, 100000, r.stdout)
            port = free_port()
            ex = subprocess.Popen([SIPXDP, "exporter", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                                  text=True)
            try:
                self.assertIn("serving metrics", ex.stdout.readline())
                m = http_get(f"http://127.0.0.1:{port}/metrics")
            finally:
                ex.send_signal(signal.SIGTERM)
                ex.communicate(timeout=10)

            def value(name):
                for line in m.splitlines():
                    if line.startswith(name + "{") and f'netns="{t.srv}"' in line and 'reason="default"' in line:
                        return float(line.split()[-1])
                self.fail(f"no {name} for reason default")

            made, suppressed = value("sipxdp_events_total"), value("sipxdp_events_suppressed_total")
            self.assertEqual(made + suppressed, drops, "every drop is an event or a suppressed one")
            self.assertGreaterEqual(made, 20, "the burst")
            self.assertLessEqual(made, os.cpu_count() * (20 + 5 * (seconds + 1)), "burst + rate x time, per CPU")

if __name__ == "__main__":
    unittest.main()
