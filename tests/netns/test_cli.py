"""Every command that prints data also prints JSON (--json), which scripts can rely on."""
import json
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
            self.assertLessEqual(b[0]["seconds_left"], 30)


if __name__ == "__main__":
    unittest.main()
