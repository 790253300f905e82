"""Careful policy edits: dry runs, SSH lock-out protection, commit-confirmed and rollback."""
import json
import os
import tempfile
import time
import unittest

from netns import CLIENT4, SERVER4, SIPXDP, require_root, sh, topology, udp_exchange, write_policy

BASE = {
    "version": 1,
    "default_action": "drop",
    "rules": [
        {"name": "ssh", "proto": "tcp", "dport": 22, "action": "allow"},
        {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow"},
    ],
}
NO_SSH = {
    "version": 1,
    "default_action": "drop",
    "rules": [
        {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "drop"},
        {"name": "web", "proto": "tcp", "dport": 80, "action": "allow"},
    ],
}
SSH = f"{CLIENT4} 40222 {SERVER4} 22"


class Guard(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.base = write_policy(self.tmp.name, "base.json", BASE)
        self.no_ssh = write_policy(self.tmp.name, "no-ssh.json", NO_SSH)

    def tearDown(self):
        self.tmp.cleanup()

    def policy_path(self, t):
        return json.loads(t.sipxdp("status", "--json").stdout)[0]["policy"]

    def test_dry_run_touches_nothing(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.base)
            status = t.sipxdp("status", "--json").stdout
            r = t.sipxdp("apply", self.no_ssh, "--dry-run")
            self.assertIn("rules added: web", r.stdout)
            self.assertIn("rules removed: ssh", r.stdout)
            self.assertIn("rules changed: sip-udp", r.stdout)
            self.assertEqual(t.sipxdp("status", "--json").stdout, status)
            self.assertEqual(udp_exchange(t, 5060, 5), 5)

    def test_lockout_refused_unless_forced(self):
        with topology() as t:
            env_cmd = ["env", f"SSH_CONNECTION={SSH}", SIPXDP, "--netns", t.srv]
            r = sh(env_cmd + ["attach", t.srv_if, "--policy", self.no_ssh], check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.strip(),
                             f"sipxdp: refusing: this policy would drop your SSH session {CLIENT4}:40222 -> "
                             f"{SERVER4}:22 (no rule allows it and the default action is drop); fix the policy, "
                             "or use --force")
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/sipxdp/{t.srv_if}@{t.srv}"))
            sh(env_cmd + ["attach", t.srv_if, "--policy", self.base])
            r = sh(env_cmd + ["apply", self.no_ssh], check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("would drop your SSH session", r.stderr)
            self.assertEqual(self.policy_path(t), self.base)
            # A session to an address that is not on this interface is not at stake.
            sh(["env", f"SSH_CONNECTION={CLIENT4} 40222 198.19.99.1 22", SIPXDP, "--netns", t.srv, "apply",
                self.no_ssh, "--dry-run"])
            sh(env_cmd + ["apply", self.no_ssh, "--force"])
            self.assertEqual(self.policy_path(t), self.no_ssh)

    def test_confirm_or_roll_back(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.base)
            r = t.sipxdp("apply", self.no_ssh, "--confirm", "2")
            self.assertIn("confirm", r.stdout)
            self.assertEqual(udp_exchange(t, 5060, 5), 0, "the new policy is live")
            time.sleep(2.5)
            self.assertEqual(self.policy_path(t), self.base, "not confirmed: the old policy is back")
            self.assertEqual(udp_exchange(t, 5060, 5), 5)

            t.sipxdp("apply", self.no_ssh, "--confirm", "2")
            t.sipxdp("confirm", t.srv_if)
            time.sleep(2.5)
            self.assertEqual(self.policy_path(t), self.no_ssh, "confirmed: the new policy stays")
            r = t.sipxdp("confirm", t.srv_if, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("nothing to confirm", r.stderr)

            t.sipxdp("rollback", t.srv_if)
            self.assertEqual(self.policy_path(t), self.base)
            self.assertEqual(udp_exchange(t, 5060, 5), 5)

    def test_counters_survive_renumbering(self):
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", self.base)
            self.assertEqual(udp_exchange(t, 5060, 7), 7)
            top = dict(BASE, rules=[{"name": "new-top", "proto": "udp", "dport": 9, "action": "drop"}] + BASE["rules"])
            t.sipxdp("apply", write_policy(self.tmp.name, "top.json", top))
            c = t.counts()
            self.assertEqual(c["sip-udp"][0], 7)
            self.assertEqual(c["new-top"][0], 0)
            self.assertEqual(udp_exchange(t, 5060, 3), 3)
            self.assertEqual(t.counts()["sip-udp"][0], 10)


if __name__ == "__main__":
    unittest.main()
