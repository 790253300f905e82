"""Real SIP scanners (sipvicious svmap) and real SIP clients (sipp) against sipxdp."""
import json
import os
import subprocess
import tempfile
import time
import unittest

from netns import CLIENT4, MANAGER4, SERVER4, require_root, topology, udp_exchange, write_policy

SIPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")


def policy(**sip):
    cfg = {"ban_seconds": 600, "trusted": [MANAGER4 + "/32"]}
    cfg.update(sip)
    return {
        "version": 1,
        "default_action": "drop",
        "sip": cfg,
        "rules": [
            {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow", "inspect_sip": True},
            {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
        ],
    }


class Sipp:
    """A sipp server in the server namespace and clients from the trusted manager address."""

    def __init__(self, t):
        self.t = t
        self.uas = subprocess.Popen(
            ["ip", "netns", "exec", t.srv, "sipp", "-sf", os.path.join(SIPP_DIR, "uas_mix.xml"), "-i", SERVER4,
             "-p", "5060", "-nostdin", "-timeout", "60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def run_calls(self, n, port):
        r = self.t.ns(self.t.cli, "sipp", "-sf", os.path.join(SIPP_DIR, "uac_mix.xml"), "-i", MANAGER4, "-p",
                      str(port), "-m", str(n), "-r", "20", "-timeout", "20", "-timeout_error", "-nostdin",
                      f"{SERVER4}:5060", check=False, timeout=40)
        out = r.stdout + r.stderr
        ok = [l for l in out.splitlines() if "Successful call" in l]
        failed = [l for l in out.splitlines() if "Failed call" in l]
        return r.returncode, ok[-1] if ok else "", failed[-1] if failed else ""

    def stop(self):
        self.uas.kill()
        self.uas.wait()


class Scanner(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_svmap_finds_nothing_sipp_passes_before_during_after(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", write_policy(self.tmp.name, "p.json", policy()))
            sent = t.count_out("-s", CLIENT4, "-p", "udp", "-m", "multiport", "--dports", "5060,5080")
            sipp = Sipp(t)
            try:
                rc, ok, failed = sipp.run_calls(5, 5070)
                self.assertEqual(rc, 0, f"sipp before the scan: {ok} / {failed}")
                self.assertEqual(int(ok.split("|")[-1]), 5, ok)

                # svmap from an untrusted address, while sipp calls from the trusted one.
                during = subprocess.Popen(
                    ["ip", "netns", "exec", t.cli, "sipp", "-sf", os.path.join(SIPP_DIR, "uac_mix.xml"), "-i",
                     MANAGER4, "-p", "5072", "-m", "10", "-r", "10", "-timeout", "20", "-timeout_error",
                     "-nostdin", f"{SERVER4}:5060"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                scan = t.ns(t.cli, "svmap", SERVER4, "-p", "5060,5080", check=False, timeout=60)
                out = scan.stdout + scan.stderr
                self.assertIn("found nothing", out)
                dout, _ = during.communicate(timeout=60)
                self.assertEqual(during.returncode, 0, f"sipp during the scan failed:\n{dout[-800:]}")

                rc, ok, failed = sipp.run_calls(5, 5074)
                self.assertEqual(rc, 0, f"sipp after the scan: {ok} / {failed}")
                self.assertEqual(int(ok.split("|")[-1]), 5, ok)
            finally:
                sipp.stop()

            c = t.counts()
            n = sent.packets()
            self.assertGreaterEqual(n, 2)
            # The first svmap packet is dropped on its pattern and bans the source; every later one on `banned`.
            self.assertEqual(c["scanner:friendly-scanner"][0], 1)
            self.assertEqual(c["banned"][0], n - 1)
            self.assertEqual(c["scanner:sipvicious"][0], 0, "the earliest-listed pattern takes the packet")
            bans = json.loads(t.sipxdp("bans", t.srv_if, "--json").stdout)
            self.assertEqual([b["address"] for b in bans], [CLIENT4 + "/32"])
            self.assertEqual(bans[0]["reason"], "friendly-scanner")
            self.assertEqual(bans[0]["hits"], n - 1)
            self.assertGreater(bans[0]["seconds_left"], 500)
            # sipp's traffic all passed on the rule; none of it on a pattern.
            self.assertGreater(c["sip-udp"][0], 0)
            text = t.sipxdp("stats", t.srv_if).stdout
            self.assertIn("scanner:friendly-scanner", text)
            self.assertIn("(banned)", text)

    def test_ban_expires(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", write_policy(self.tmp.name, "p.json", policy(ban_seconds=2)))
            scanner = ["/usr/bin/python3", "-c",
                       "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("
                       f"b'OPTIONS sip:100@{SERVER4} SIP/2.0\\r\\nUser-Agent: friendly-scanner\\r\\n\\r\\n', "
                       f"('{SERVER4}', 5060))"]
            t.ns(t.cli, *scanner)
            c = t.counts()
            self.assertEqual(c["scanner:friendly-scanner"][0], 1)
            send = ["/usr/bin/python3", "-c",
                    f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'OPTIONS', ('{SERVER4}', 5060))"]
            t.ns(t.cli, *send)
            time.sleep(0.2)
            self.assertEqual(t.counts()["banned"][0], 1, "inside the 2 s the source is banned")
            time.sleep(2.2)
            before = t.counts()
            t.ns(t.cli, *send)
            time.sleep(0.2)
            after = t.counts()
            self.assertEqual(after["banned"][0], before["banned"][0], "the ban has expired")
            self.assertEqual(after["sip-udp"][0], before["sip-udp"][0] + 1)
            self.assertEqual(t.sipxdp("bans", t.srv_if).stdout.strip(), f"no bans on {t.srv_if}")

    def test_manual_ban_cli(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", write_policy(self.tmp.name, "p.json", policy()))
            self.assertEqual(udp_exchange(t, 5060, 5), 5)
            t.sipxdp("ban", "add", CLIENT4, "--seconds", "60")
            self.assertEqual(udp_exchange(t, 5060, 5), 0)
            bans = t.sipxdp("bans").stdout
            self.assertIn(f"{CLIENT4}/32", bans)
            self.assertIn("manual", bans)
            t.sipxdp("ban", "del", CLIENT4)
            self.assertEqual(udp_exchange(t, 5060, 5), 5)
            r = t.sipxdp("ban", "del", CLIENT4, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.strip(), f"sipxdp: {CLIENT4}/32 is not banned")
            r = t.sipxdp("ban", "add", "198.18.0.300", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("is not an IPv4 or IPv6 address", r.stderr)


if __name__ == "__main__":
    unittest.main()
