"""Every command that prints data also prints JSON (--json), which scripts can rely on."""
import json
import time
import tempfile
import unittest

from netns import SIPXDP, require_root, sh, topology, write_policy

POLICY = {
    "version": 1,
    "default_action": "drop",
    "sip": {"scanner_patterns": ["friendly-scanner"], "ban_seconds": 60},
    "rules": [
        {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": True},
        {"name": "ping", "proto": "icmp", "icmp_type": 8, "action": "allow"},
    ],
}


class Json(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.policy = write_policy(self.tmp.name, "p.json", POLICY)

    def tearDown(self):
        self.tmp.cleanup()

    def test_json_everywhere(self):
        v = json.loads(sh([SIPXDP, "validate", self.policy, "--json"]).stdout)
        self.assertTrue(v["ok"])
        self.assertEqual(v["rules"], 2)
        self.assertEqual(v["scanner"]["patterns"], ["friendly-scanner"])
        self.assertEqual(v["settings"]["default_action"], ["drop"])
        with topology() as t:
            a = json.loads(t.sipxdp("attach", t.srv_if, "--policy", self.policy, "--json").stdout)
            self.assertEqual(a["iface"], t.srv_if)
            self.assertEqual(a["netns"], t.srv)
            self.assertGreater(a["prog_id"], 0)
            self.assertEqual(a["mode"], "native")
            st = json.loads(t.sipxdp("status", "--json").stdout)
            self.assertEqual(st[0]["state"], "ok")
            self.assertEqual(st[0]["prog_id"], a["prog_id"])
            s = json.loads(t.sipxdp("stats", t.srv_if, "--json").stdout)
            self.assertEqual([r["name"] for r in s["rules"]], ["sip-udp", "ping"])
            edited = dict(POLICY, default_action="allow", rules=POLICY["rules"][:1])
            p2 = write_policy(self.tmp.name, "p2.json", edited)
            d = json.loads(t.sipxdp("apply", p2, "--dry-run", "--json").stdout)
            self.assertTrue(d["dry_run"])
            self.assertEqual(d["changes"]["rules"]["removed"], ["ping"])
            self.assertEqual(d["changes"]["settings"], [{"name": "default_action", "before": ["drop"],
                                                          "after": ["allow"]}])
            r = json.loads(t.sipxdp("apply", p2, "--json").stdout)
            self.assertEqual(r["removed"], 1)
            self.assertEqual(r["changes"]["rules"]["removed"], ["ping"])
            self.assertEqual(r["removed_counts"][0]["name"], "ping")
            t.sipxdp("ban", "add", "198.18.9.9", "--seconds", "30")
            b = json.loads(t.sipxdp("bans", "--json").stdout)
            self.assertEqual(b[0]["address"], "198.18.9.9/32")
            self.assertEqual(b[0]["reason"], "manual")
            self.assertEqual(b[0]["kind"], "manual")
            self.assertLessEqual(b[0]["seconds_left"], 30)
            self.assertLess(abs(b[0]["since"] - time.time()), 30)
            # An IPv4-mapped address (as dual-stack servers log IPv4 peers) bans the IPv4 address.
            t.sipxdp("ban", "add", "::ffff:198.18.9.10")
            self.assertIn("198.18.9.10/32", [x["address"] for x in json.loads(t.sipxdp("bans", "--json").stdout)])
            # ban del PREFIX lifts what is inside it; --all --reason lifts one kind.
            self.assertIn("(2 bans lifted)", t.sipxdp("ban", "del", "198.18.9.0/24").stdout)
            r = t.sipxdp("ban", "del", "198.18.9.0/24", check=False)
            self.assertEqual(r.stderr.strip(), "sipxdp: 198.18.9.0/24 is not banned")
            t.sipxdp("ban", "add", "2001:db8:7::/48")
            self.assertIn("(1 ban lifted)", t.sipxdp("ban", "del", "--all", "--reason", "manual").stdout)
            self.assertEqual(json.loads(t.sipxdp("bans", "--json").stdout), [])
            r = t.sipxdp("ban", "del", "--reason", "auth", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("--reason goes with --all", r.stderr)


if __name__ == "__main__":
    unittest.main()
