"""The presets of `sipxdp init`, attached with real traffic: every port a preset
opens is open (from the management host where the rule says so), the
management ports are closed to everyone else, and what no rule names is closed."""
import json
import tempfile
import unittest

from netns import CLIENT4, MANAGER4, SERVER4, SIPXDP, require_root, sh, topology, write_policy

PRESETS = ["freeswitch-minimal", "freeswitch-full", "asterisk", "kamailio-sbc"]


def ports_of(rule):
    """The first and last port of each entry of a rule's dport."""
    d = rule.get("dport")
    items = d if isinstance(d, list) else [d]
    out = []
    for x in items:
        if isinstance(x, int):
            out.append(x)
        else:
            lo, hi = (int(v) for v in x.split("-"))
            out += [lo, hi]
    return sorted(set(out))


class Presets(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_every_preset_with_real_traffic(self):
        for name in PRESETS:
            with self.subTest(preset=name), topology() as t:
                policy = json.loads(sh([SIPXDP, "init", "--preset", name, "--mgmt", MANAGER4 + "/32"]).stdout)
                self.assertTrue(all("comment" in r for r in policy["rules"]), "every rule says what it is for")
                path = write_policy(self.tmp.name, f"{name}.json", policy)
                t.sipxdp("attach", t.srv_if, "--policy", path)
                listen, probes, want = [], [], {}
                for r in policy["rules"]:
                    if r.get("proto") not in ("udp", "tcp") or "dport" not in r:
                        continue
                    for port in ports_of(r):
                        listen.append([r["proto"], port])
                        if r["proto"] == "udp":
                            probes.append(["udp", port, CLIENT4])
                            want[f"udp/{port}"] = 1
                        elif "src" in r:
                            probes += [["tcp", port, MANAGER4], ["tcp", port, CLIENT4]]
                            want[f"tcp/{port}/{MANAGER4}"] = True
                            want[f"tcp/{port}/{CLIENT4}"] = False
                        else:
                            probes.append(["tcp", port, CLIENT4])
                            want[f"tcp/{port}/{CLIENT4}"] = True
                # what no rule names
                for proto, port in (["udp", 5999], ["tcp", 9999]):
                    listen.append([proto, port])
                    probes.append([proto, port, CLIENT4])
                want["udp/5999"] = 0
                want[f"tcp/9999/{CLIENT4}"] = False
                sink = t.peer_bg(t.srv, "listen-many", json.dumps(listen), "5")
                self.assertEqual(sink.stdout.readline().strip(), "ready")
                got = json.loads(t.peer(t.cli, "probe-many", SERVER4, json.dumps(probes), timeout=60).stdout)
                counts = json.loads(sink.communicate(timeout=20)[0])
                for key, expect in want.items():
                    if key.startswith("udp/"):
                        self.assertEqual(counts[key], expect, f"{name}: {key}")
                    else:
                        self.assertEqual(got[key], expect, f"{name}: {key}")
                ping = t.ns(t.cli, "ping", "-c", "3", "-i", "0.2", "-W", "1", SERVER4, check=False)
                self.assertIn("3 received", ping.stdout, name)


if __name__ == "__main__":
    unittest.main()
