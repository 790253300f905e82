"""The systemd units, run as systemd would run them, and apply --watch.

There is no systemd as PID 1 here: the unit file is checked with
`systemd-analyze verify`, and its ExecStart/ExecReload/ExecStop lines are run
as the service would run them: in a mount namespace of their own, with only
the unit's capability bounding set and no new privileges. A "reboot" is the
interfaces and the pins going away and coming back empty.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from netns import MANAGER4, SERVER4, SIPXDP, Topology, require_root, sh, topology, udp_exchange

BUILD = os.path.dirname(os.path.dirname(SIPXDP))  # build/cli/sipxdp -> build
UNIT = os.path.join(BUILD, "systemd", "sipxdp@.service")
WATCH_UNIT = os.path.join(BUILD, "systemd", "sipxdp-watch@.service")
EXPORTER_UNIT = os.path.join(BUILD, "systemd", "sipxdp-exporter.service")


def unit_commands(path, iface):
    """ExecStart/ExecReload/ExecStop of a unit for instance `iface`, and its capability bounding set."""
    cmds, caps = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            m = re.match(r"^(ExecStart|ExecReload|ExecStop)=(.*)$", line)
            if m:
                argv = m.group(2).replace("%i", iface).split()
                argv[0] = SIPXDP  # the unit names the installed binary; this build's stands in
                cmds[m.group(1)] = argv
            m = re.match(r"^CapabilityBoundingSet=(.*)$", line)
            if m:
                caps = [c.lower().replace("cap_", "") for c in m.group(1).split()]
    return cmds, caps


def as_service(argv, caps, config_dir, **extra_env):
    """Runs a unit's command the way systemd would: private mount namespace, bounding set, no new privileges."""
    bounding = "-all," + ",".join("+" + c for c in caps)
    env = dict(os.environ, SIPXDP_CONFIG_DIR=config_dir, **extra_env)
    return subprocess.run(["unshare", "-m", "--propagation", "slave", "setpriv", "--no-new-privs",
                           "--bounding-set", bounding, "--inh-caps=-all", *argv],
                          capture_output=True, text=True, env=env)


class MainProcess:
    """A unit's ExecStart run as systemd runs a Type=notify service: in the
    background, with NOTIFY_SOCKET; started() waits for READY=1. Its output
    (the journal's lines) is collected as it comes."""

    def __init__(self, argv, caps, config_dir, tmp):
        self.sock_path = os.path.join(tmp, f"notify{time.monotonic_ns()}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.2)
        bounding = "-all," + ",".join("+" + c for c in caps)
        env = dict(os.environ, SIPXDP_CONFIG_DIR=config_dir, NOTIFY_SOCKET=self.sock_path)
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "slave", "setpriv", "--no-new-privs",
                                      "--bounding-set", bounding, "--inh-caps=-all", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.notes = []

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def started(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited ({self.proc.returncode}): {self.lines}")
            try:
                self.notes.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            if any("READY=1" in n for n in self.notes):
                return self
        raise AssertionError(f"no READY=1 from the service: {self.lines}")

    def wait_for_line(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            hits = [l for l in self.lines if pred(l)]
            if hits:
                return hits
            time.sleep(0.1)
        return []

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        self.sock.close()
        return rc


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


def read(path):
    with open(path) as f:
        return f.read()


def preset(name, *args):
    return sh([SIPXDP, "init", "--preset", name, *args]).stdout


class Service(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.etc = os.path.join(self.tmp.name, "etc-sipxdp")
        os.mkdir(self.etc)

    def tearDown(self):
        self.tmp.cleanup()

    def configure(self, t):
        with open(os.path.join(self.etc, "sipxdp.conf"), "w") as f:
            json.dump({"interfaces": {t.srv_if: {"netns": t.srv, "mode": "native"}}, "log_events_per_minute": 5}, f)
        policy = os.path.join(self.etc, f"{t.srv_if}.json")
        with open(policy, "w") as f:
            f.write(preset("freeswitch-minimal", "--mgmt", MANAGER4 + "/32"))
        return policy

    def test_unit_verifies(self):
        for path in (UNIT, WATCH_UNIT, EXPORTER_UNIT):
            unit = read(path).replace("/usr/local/sbin/sipxdp", SIPXDP).replace("/usr/sbin/sipxdp", SIPXDP)
            name = os.path.basename(path).replace("@.", "@sxtest0.")
            with open(os.path.join(self.tmp.name, name), "w") as f:
                f.write(unit)
        # A watch unit needs its sipxdp@ unit beside it.
        r = sh(["systemd-analyze", "verify", "--man=no", os.path.join(self.tmp.name, "sipxdp@sxtest0.service"),
                os.path.join(self.tmp.name, "sipxdp-watch@sxtest0.service"),
                os.path.join(self.tmp.name, "sipxdp-exporter.service")], check=False)
        bad = [l for l in (r.stdout + r.stderr).splitlines()
               if "sipxdp" in l and "sys-subsystem-net-devices" not in l]
        self.assertEqual(bad, [], r.stdout + r.stderr)

    def test_boot_reload_stop_as_systemd_runs_them(self):
        t = Topology().up()
        main = None
        try:
            policy = self.configure(t)
            cmds, caps = unit_commands(UNIT, t.srv_if)
            self.assertIn("bpf", caps)
            self.assertEqual(cmds["ExecStart"][1:], ["service", "run", t.srv_if])
            main = MainProcess(cmds["ExecStart"], caps, self.etc, self.tmp.name).started()
            self.assertTrue(main.wait_for_line(lambda l: "attached to" in l), main.lines)
            self.assertEqual(udp_exchange(t, 5060, 20), 20)
            self.assertEqual(udp_exchange(t, 5070, 10), 0)
            # The journal says who was dropped and why, at most 5 lines a minute (sipxdp.conf).
            drops = main.wait_for_line(lambda l: "reason=default" in l and "-> 198.18.0.1:5070" in l)
            self.assertTrue(drops, main.lines)
            self.assertIn(f"{t.srv_if}@{t.srv} drop udp 198.18.0.2:", drops[0])
            time.sleep(1)
            self.assertEqual(len([l for l in main.lines if " drop " in l]), 5, main.lines)

            # The machine goes down (the process with it): the interfaces and
            # every pin are gone; it comes back with the same names and an
            # empty bpffs.
            main.stop(signal.SIGKILL)
            sh(["ip", "netns", "del", t.srv])
            sh(["ip", "netns", "del", t.cli])
            shutil.rmtree(f"/sys/fs/bpf/sipxdp/{t.srv_if}@{t.srv}", ignore_errors=True)
            time.sleep(0.3)
            t.up()
            self.assertIsNone(t.prog_id())
            self.assertEqual(udp_exchange(t, 5070, 5), 5, "no firewall before the unit starts")
            main = MainProcess(cmds["ExecStart"], caps, self.etc, self.tmp.name).started()
            self.assertIsNotNone(t.prog_id())
            self.assertEqual(udp_exchange(t, 5060, 20), 20)
            self.assertEqual(udp_exchange(t, 5070, 10), 0)
            self.assertEqual(json.loads(t.sipxdp("status", "--json").stdout)[0]["policy"], policy)

            # reload: an edit applies to the same program; counters stay.
            prog = t.prog_id()
            doc = json.loads(read(policy))
            doc["rules"] = [r for r in doc["rules"] if r["name"] != "sip-udp"]
            write_json(policy, doc)
            r = as_service(cmds["ExecReload"], caps, self.etc)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(t.prog_id(), prog)
            self.assertEqual(udp_exchange(t, 5060, 10), 0)
            # a bad edit: refused with one line, the live policy stays
            with open(policy, "w") as f:
                f.write('{"version": 1, "default_action": "allow", "rules": [{"name": "x", "action": "alow"}]}')
            r = as_service(cmds["ExecReload"], caps, self.etc)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("action must be", r.stderr)
            self.assertEqual(udp_exchange(t, 5060, 10), 0, "the live policy stays")
            self.assertGreaterEqual(t.counts()["default"][0], 10)
            self.assertEqual(t.counts()["sip-tcp"][0], 0)
            write_json(policy, doc)

            # The main process dies: systemd runs ExecStop (SERVICE_RESULT=signal),
            # which leaves the firewall attached; Restart= starts it again.
            main.stop(signal.SIGKILL)
            r = as_service(cmds["ExecStop"], caps, self.etc, SERVICE_RESULT="signal")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("the firewall stays attached", r.stdout)
            self.assertEqual(t.prog_id(), prog)
            self.assertEqual(udp_exchange(t, 5070, 5), 0)
            main = MainProcess(cmds["ExecStart"], caps, self.etc, self.tmp.name).started()
            self.assertTrue(main.wait_for_line(lambda l: "already attached; applying" in l), main.lines)
            self.assertEqual(t.prog_id(), prog, "the same program: counters and bans kept")

            # stop: ExecStop while the main process runs, then SIGTERM; nothing left.
            r = as_service(cmds["ExecStop"], caps, self.etc, SERVICE_RESULT="success")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(main.stop(), 0, main.lines)
            main = None
            self.assertIsNone(t.prog_id())
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/sipxdp/{t.srv_if}@{t.srv}"))
            self.assertNotIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
            r = as_service(cmds["ExecStop"], caps, self.etc)
            self.assertEqual(r.returncode, 0, "stopping what is stopped is fine")
        finally:
            if main:
                main.stop(signal.SIGKILL)
            t.down()

    def test_apply_watch_follows_edits_replacements_and_configmap_swaps(self):
        with topology() as t:
            d = os.path.join(self.tmp.name, "cm")
            os.mkdir(d)
            open_ = json.loads(preset("freeswitch-minimal"))
            closed = dict(open_, rules=[r for r in open_["rules"] if r["name"] != "sip-udp"])

            def version(name, doc):
                vd = os.path.join(d, name)
                os.mkdir(vd)
                write_json(os.path.join(vd, "policy.json"), doc)
                return name

            # A Kubernetes ConfigMap volume: policy.json -> ..data/policy.json, ..data -> ..v1
            os.symlink(version("..v1", open_), os.path.join(d, "..data"))
            os.symlink("..data/policy.json", os.path.join(d, "policy.json"))
            path = os.path.join(d, "policy.json")
            t.sipxdp("attach", t.srv_if, "--policy", path)
            w = subprocess.Popen([SIPXDP, "--netns", t.srv, "apply", "--watch", path, "--iface", t.srv_if],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                self.assertIn("watching", w.stdout.readline())

                def policy_rules():
                    return [r["name"] for r in t.stats()["rules"]]

                def wait_for(cond, what):
                    for _ in range(50):
                        if cond():
                            return
                        time.sleep(0.1)
                    self.fail(what)

                self.assertIn("sip-udp", policy_rules())
                # 1. the ConfigMap is updated: a new version directory, ..data swapped by rename
                version("..v2", closed)
                os.symlink("..v2", os.path.join(d, "..data_tmp"))
                os.rename(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
                wait_for(lambda: "sip-udp" not in policy_rules(), "the ConfigMap swap was not applied")
                self.assertEqual(udp_exchange(t, 5060, 5), 0)
                # 2. an editor replaces the file (write a new one, rename over)
                os.remove(path)
                plain = os.path.join(d, "policy.json")
                tmpf = plain + ".swp"
                write_json(tmpf, open_)
                os.rename(tmpf, plain)
                wait_for(lambda: "sip-udp" in policy_rules(), "the replaced file was not applied")
                self.assertEqual(udp_exchange(t, 5060, 5), 5)
                # 3. written in place, invalid: refused with one line, the live policy stays
                with open(plain, "w") as f:
                    f.write('{"version": 1, "default_action": "drop", "rules": [{"name": "x", "action": "dorp"}]}')
                time.sleep(1.5)
                self.assertIn("sip-udp", policy_rules())
                self.assertEqual(udp_exchange(t, 5060, 5), 5)
                # 4. written in place, valid again
                write_json(plain, closed)
                wait_for(lambda: "sip-udp" not in policy_rules(), "the in-place edit was not applied")
            finally:
                w.terminate()
                out, err = w.communicate(timeout=10)
            self.assertEqual(w.returncode, 0, err)
            errors = [l for l in err.splitlines() if l.startswith("sipxdp:") and "warning" not in l]
            self.assertEqual(len(errors), 1, err)
            self.assertIn('action must be "allow" or "drop", not "dorp"; the live policy stays', errors[0])
            self.assertEqual(out.count("applied "), 3, out)


if __name__ == "__main__":
    unittest.main()
