"""SIP rate limits, auth-failure bans and learned trust against a real
registrar (Debian's Kamailio with digest auth, tests/netns/sip/kamailio.cfg)
and real phones, guessers and floods (sipp scenarios in tests/netns/sip/).
"""
import csv
import json
import os
import subprocess
import tempfile
import time
import unittest

from netns import CLIENT4, SERVER4, require_tools, topology, write_policy

SIP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sip")
PHONE4, OTHER4 = "198.18.0.20", "198.18.0.21"  # more addresses on the client side


def kamailio_modules():
    """The module directory of Debian's kamailio package."""
    out = subprocess.run(["dpkg", "-L", "kamailio"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.endswith("/modules/tm.so"):
            return os.path.dirname(line)
    raise AssertionError("kamailio's modules were not found (dpkg -L kamailio)")


def policy(limits=None, auth=None, trust=True):
    sip = {"learned_trust": {"enabled": trust}}
    if limits is not None:
        sip["rate_limits"] = limits
    if auth is not None:
        sip["auth_failures"] = auth
    return {"version": 1, "default_action": "drop", "sip": sip,
            "rules": [{"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": True},
                      {"name": "sip-tcp", "proto": "tcp", "dport": 5060, "action": "allow", "inspect_sip": True}]}


class Registrar:
    """Kamailio in the server namespace, listening on SERVER4:5060 (UDP and TCP)."""

    def __init__(self, t, tmp):
        self.t = t
        self.run = tempfile.mkdtemp(dir=tmp)
        self.log = open(os.path.join(self.run, "kamailio.log"), "w+")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", t.srv, "kamailio", "-f", os.path.join(SIP_DIR, "kamailio.cfg"),
             "-L", kamailio_modules(), "-DD", "-E", "-m", "64", "-M", "8", "-n", "2", "-Y", self.run,
             "-P", os.path.join(self.run, "kamailio.pid"), "-l", f"udp:{SERVER4}:5060", "-l", f"tcp:{SERVER4}:5060"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            self.log.seek(0)
            if "SIPXDP-KAMAILIO-READY" in self.log.read():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        self.stop()
        raise AssertionError(f"kamailio did not start: {self.log.read()[-2000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Sipp:
    """One sipp run from the client namespace; counts from its statistics file."""

    seq = 0

    def __init__(self, t, tmp, scenario, local_ip, port, *extra, transport="u1"):
        Sipp.seq += 1
        self.stf = os.path.join(tmp, f"sipp{Sipp.seq}.csv")
        self.cmd = ["ip", "netns", "exec", t.cli, "sipp", "-sf", os.path.join(SIP_DIR, scenario), "-t", transport,
                    "-i", local_ip, "-p", str(port), f"{SERVER4}:5060", "-nostdin", "-trace_stat", "-stf", self.stf,
                    "-fd", "1", *extra]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=os.path.dirname(self.stf))
        return self

    def wait(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        self.out = out + err
        return self.counts()

    def run(self, timeout=120):
        return self.start().wait(timeout)

    def counts(self):
        with open(self.stf) as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        last = rows[-1]
        return {k: int(last[f"{k}(C)"]) for k in ("OutgoingCall", "SuccessfulCall", "FailedCall", "FailedTimeoutOnRecv")}


class SipDefences(unittest.TestCase):
    def setUp(self):
        require_tools(self, "kamailio", "sipp", "dpkg")
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def attach(self, t, doc):
        for a in (PHONE4, OTHER4):
            t.ns(t.cli, "ip", "addr", "add", f"{a}/24", "dev", t.cli_if)
        t.sipxdp("attach", t.srv_if, "--policy", write_policy(self.tmp.name, "p.json", doc))
        reg = Registrar(t, self.tmp.name)
        self.addCleanup(reg.stop)
        return reg

    def counters(self, t):
        s = t.stats()
        return {r["name"]: r["packets"] for r in s["rules"] + s["rate_limits"] + s["builtin"]}

    def bans(self, t):
        return json.loads(t.sipxdp("bans", t.srv_if, "--json").stdout)

    def test_brute_force_banned_after_max_while_a_phone_keeps_registering(self):
        with topology() as t:
            self.attach(t, policy(auth={"max": 10, "window_seconds": 60, "ban_seconds": 600}))
            # A phone on another address registers twice a second for 6 s, over TCP.
            phone = Sipp(t, self.tmp.name, "uac_register.xml", PHONE4, 5070, "-m", "12", "-r", "2",
                         transport="t1").start()
            time.sleep(1)
            # The guesser: REGISTER, 401, REGISTER with a wrong password, 401; 50 a second.
            brute = Sipp(t, self.tmp.name, "uac_brute.xml", CLIENT4, 5080, "-m", "100", "-r", "50").run()
            p = phone.wait()
            self.assertEqual(p["SuccessfulCall"], 12, phone.out[-1500:])
            # Two 401s a try: the 5th try's second 401 is the 10th, and bans.
            self.assertLessEqual(brute["SuccessfulCall"], 6, brute)
            self.assertGreaterEqual(brute["SuccessfulCall"], 4, brute)
            self.assertGreaterEqual(brute["FailedTimeoutOnRecv"], 94, brute)
            c = self.counters(t)
            self.assertEqual(c["auth-bans"], 1, c)
            # 10, plus at most a request already past XDP when the ban was made; the phone's one 401 per call.
            self.assertGreaterEqual(c["auth-failures"], 10 + 12, c)
            self.assertLessEqual(c["auth-failures"], 12 + 12, c)
            bans = self.bans(t)
            self.assertEqual([(b["address"], b["kind"], b["reason"]) for b in bans],
                             [(f"{CLIENT4}/32", "auth", "auth-failures")])
            self.assertGreater(bans[0]["hits"], 0)
            self.assertGreater(bans[0]["seconds_left"], 590)
            self.assertLess(abs(bans[0]["since"] - time.time()), 30)
            # The guesser's address is kept out; the phone still registers.
            self.assertEqual(Sipp(t, self.tmp.name, "uac_options.xml", CLIENT4, 5099, "-m", "1").run()["SuccessfulCall"], 0)
            self.assertEqual(Sipp(t, self.tmp.name, "uac_register.xml", PHONE4, 5071, "-m", "2", "-r", "4").run()["SuccessfulCall"], 2)
            # ban del --all --reason auth lifts it.
            r = t.sipxdp("ban", "del", "--all", "--reason", "auth", "-i", t.srv_if)
            self.assertIn("1 ban lifted", r.stdout)
            self.assertEqual(Sipp(t, self.tmp.name, "uac_options.xml", CLIENT4, 5098, "-m", "1").run()["SuccessfulCall"], 1)

    def test_flood_cut_to_the_limit_while_another_source_passes(self):
        limit = {"name": "register-flood", "methods": ["REGISTER"], "requests": 16, "per_seconds": 2}
        with topology() as t:
            self.attach(t, policy(limits=[limit]))
            sent = t.count_out("-s", CLIENT4, "-p", "udp", "--dport", "5060")
            other = Sipp(t, self.tmp.name, "uac_register.xml", OTHER4, 5070, "-m", "4", "-r", "1").start()
            start = time.time()
            flood = Sipp(t, self.tmp.name, "uac_flood.xml", CLIENT4, 5090, "-m", "4000", "-r", "2000", "-l", "4000",
                         "-max_recv_loops", "10000", "-max_sched_loops", "10000").run()
            elapsed = time.time() - start
            o = other.wait()
            self.assertEqual(o["SuccessfulCall"], 4, other.out[-1500:])
            c = self.counters(t)
            passed = flood["SuccessfulCall"]  # each REGISTER that reached Kamailio got its 401
            n = sent.packets()
            self.assertGreaterEqual(n, 3900)
            # Every REGISTER sent either reached Kamailio or dropped on the limit's counter.
            self.assertEqual(passed + c["ratelimit:register-flood"], n, (flood, c))
            # 16 at once, then 8 a second.
            self.assertGreaterEqual(passed, 16)
            self.assertLessEqual(passed, 16 + 8 * (elapsed + 1), (passed, elapsed))
            self.assertEqual(c["ratelimit-bans:register-flood"], 0)
            self.assertEqual(self.bans(t), [])

            # ban_seconds, by apply (no reload): the next flood bans its source.
            p2 = write_policy(self.tmp.name, "p2.json", policy(limits=[dict(limit, ban_seconds=300)]))
            dry = t.sipxdp("apply", p2, "-i", t.srv_if, "--dry-run").stdout
            self.assertIn("sip.rate_limits", dry)
            self.assertIn("ban 300s", dry)
            t.sipxdp("apply", p2, "-i", t.srv_if)
            time.sleep(2.1)  # the bucket refills
            flood = Sipp(t, self.tmp.name, "uac_flood.xml", CLIENT4, 5091, "-m", "200", "-r", "1000").run()
            self.assertEqual(flood["SuccessfulCall"], 16, flood)
            c = self.counters(t)
            self.assertEqual(c["ratelimit-bans:register-flood"], 1, c)
            bans = self.bans(t)
            self.assertEqual([(b["address"], b["kind"], b["reason"]) for b in bans],
                             [(f"{CLIENT4}/32", "ratelimit", "register-flood")])
            self.assertEqual(Sipp(t, self.tmp.name, "uac_register.xml", OTHER4, 5071, "-m", "2", "-r", "4").run()["SuccessfulCall"], 2)

    def test_registered_phone_behind_the_attackers_address_stays_trusted(self):
        with topology() as t:
            self.attach(t, policy(limits=[{"name": "register-flood", "methods": ["REGISTER"], "requests": 16,
                                           "per_seconds": 2, "ban_seconds": 300}],
                                  auth={"max": 10, "window_seconds": 60, "ban_seconds": 600}))
            # The phone registers first (expires 120), from CLIENT4:5070 ...
            first = Sipp(t, self.tmp.name, "uac_register.xml", CLIENT4, 5070, "-m", "1").run()
            self.assertEqual(first["SuccessfulCall"], 1)
            trusted = json.loads(t.sipxdp("trusted", t.srv_if, "--json").stdout)
            self.assertEqual([(x["address"], x["proto"], x["port"]) for x in trusted["learned"]],
                             [(f"{CLIENT4}/32", "udp", 5070)])
            self.assertGreater(trusted["learned"][0]["seconds_left"], 110)
            self.assertLessEqual(trusted["learned"][0]["seconds_left"], 120)
            # ... and keeps re-registering while a guesser on the same address is banned.
            phone = Sipp(t, self.tmp.name, "uac_register.xml", CLIENT4, 5070, "-m", "10", "-r", "2").start()
            time.sleep(0.5)
            brute = Sipp(t, self.tmp.name, "uac_brute.xml", CLIENT4, 5080, "-m", "60", "-r", "50").run()
            p = phone.wait()
            self.assertEqual(p["SuccessfulCall"], 10, phone.out[-1500:])
            self.assertLessEqual(brute["SuccessfulCall"], 6, brute)
            bans = self.bans(t)
            self.assertEqual([(b["address"], b["kind"]) for b in bans], [(f"{CLIENT4}/32", "auth")])
            c = self.counters(t)
            self.assertGreater(c["trusted"], 0, c)
            # Without learned trust the phone goes down with its neighbour.
            t.sipxdp("apply", write_policy(self.tmp.name, "p2.json", policy(
                auth={"max": 10, "window_seconds": 60, "ban_seconds": 600}, trust=False)), "-i", t.srv_if)
            self.assertEqual(Sipp(t, self.tmp.name, "uac_register.xml", CLIENT4, 5070, "-m", "1").run()["SuccessfulCall"], 0)
            out = t.sipxdp("trusted", t.srv_if).stdout
            self.assertIn("learned (off)", out)


if __name__ == "__main__":
    unittest.main()
