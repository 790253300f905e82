"""Real traffic between private network namespaces joined by a veth pair.

Each test makes its own pair of namespaces (server and client) and removes
them, and anything sipxdp attached, whatever happens. Addresses come from
198.18.0.0/15 and 2001:db8::/32 only.
"""
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import unittest

SIPXDP = os.environ.get("SIPXDP", "sipxdp")
IN_CI = os.environ.get("CI") == "true"
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.py")
PY = "/usr/bin/python3"

SERVER4, CLIENT4, MANAGER4 = "198.18.0.1", "198.18.0.2", "198.18.0.10"
SERVER6, CLIENT6 = "2001:db8::1", "2001:db8::2"


def sh(cmd, check=True, **kw):
    """Runs a command (list), returns CompletedProcess with text output."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r


def require_root(test):
    if os.geteuid() != 0:
        msg = "netns tests need root"
        if IN_CI:
            raise AssertionError(msg)
        test.skipTest(msg)


def require_tools(test, *tools):
    """Root and every tool named; in CI a missing one fails the test, elsewhere it skips it."""
    require_root(test)
    for tool in tools:
        if shutil.which(tool) is None:
            if IN_CI:
                raise AssertionError(f"{tool} is missing")
            test.skipTest(f"{tool} is missing")


class Topology:
    """Two namespaces, `srv` and `cli`, and a veth pair between them."""

    counter = 0

    def __init__(self):
        Topology.counter += 1
        tag = f"{os.getpid() % 100000}{Topology.counter}"
        self.srv = f"sxsrv{tag}"
        self.cli = f"sxcli{tag}"
        self.srv_if = "sxs0"
        self.cli_if = "sxc0"

    def up(self):
        sh(["ip", "netns", "add", self.srv])
        sh(["ip", "netns", "add", self.cli])
        sh(["ip", "link", "add", self.srv_if, "netns", self.srv, "type", "veth", "peer", "name", self.cli_if,
            "netns", self.cli])
        for ns, ifname, a4, a6 in ((self.srv, self.srv_if, SERVER4, SERVER6),
                                   (self.cli, self.cli_if, CLIENT4, CLIENT6)):
            self.ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
            self.ns(ns, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.accept_dad=0")
            self.ns(ns, "ip", "addr", "add", f"{a4}/24", "dev", ifname)
            self.ns(ns, "ip", "-6", "addr", "add", f"{a6}/64", "dev", ifname, "nodad")
            self.ns(ns, "ip", "link", "set", "lo", "up")
            self.ns(ns, "ip", "link", "set", ifname, "up")
        # The manager address lives on the client too, for source-restricted rules.
        self.ns(self.cli, "ip", "addr", "add", f"{MANAGER4}/24", "dev", self.cli_if)
        # Neighbours resolved up front so ARP/ND don't race the first packets.
        self.ns(self.cli, "ping", "-c1", "-W2", SERVER4)
        self.ns(self.cli, "ping", "-6", "-c1", "-W2", SERVER6)
        return self

    def down(self):
        for ns in (self.srv, self.cli):
            subprocess.run([SIPXDP, "--netns", ns, "detach", "--all"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def ns(self, ns, *cmd, check=True, **kw):
        return sh(["ip", "netns", "exec", ns, *cmd], check=check, **kw)

    def sipxdp(self, *args, check=True, ns=None):
        return sh([SIPXDP, "--netns", ns or self.srv, *args], check=check)

    def stats(self):
        return json.loads(self.sipxdp("stats", self.srv_if, "--json").stdout)

    def counts(self):
        """{name: (packets, bytes)} for rules and built-ins."""
        s = self.stats()
        return {r["name"]: (r["packets"], r["bytes"]) for r in s["rules"] + s["patterns"] + s["builtin"]}

    def peer(self, ns, *args, timeout=30):
        return self.ns(ns, PY, PEER, *args, timeout=timeout)

    def peer_bg(self, ns, *args):
        return subprocess.Popen(["ip", "netns", "exec", ns, PY, PEER, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def prog_id(self):
        out = self.ns(self.srv, "ip", "-d", "link", "show", self.srv_if).stdout
        m = re.search(r"prog/xdp id (\d+)", out)
        return int(m.group(1)) if m else None

    def count_out(self, *match):
        """Client-side netfilter counter of packets sent to the server (an oracle independent of sipxdp)."""
        return CounterRule(self, match)


class CounterRule:
    """A counting iptables/ip6tables rule in the client's OUTPUT chain."""

    seq = 0

    def __init__(self, topo, match):
        CounterRule.seq += 1
        self.topo = topo
        self.tag = f"sxcount{CounterRule.seq}"
        self.match = list(match)
        self.tool = "ip6tables" if "-6" in self.match else "iptables"
        if "-6" in self.match:
            self.match.remove("-6")
        topo.ns(topo.cli, self.tool, "-w", "-A", "OUTPUT", "-o", topo.cli_if, *self.match,
                "-m", "comment", "--comment", self.tag)

    def packets(self):
        out = self.topo.ns(self.topo.cli, self.tool, "-w", "-L", "OUTPUT", "-v", "-x", "-n").stdout
        for line in out.splitlines():
            if self.tag in line:
                return int(line.split()[0])
        raise AssertionError(f"counting rule {self.tag} vanished")


@contextlib.contextmanager
def topology():
    t = Topology()
    try:
        yield t.up()
    finally:
        t.down()


def udp_exchange(t, port, count, host=SERVER4, v6=False):
    """Sends `count` datagrams to the server's port; returns how many arrived."""
    sink = t.peer_bg(t.srv, "udp-sink", str(port), "3", "v6" if v6 else "v4")
    assert sink.stdout.readline().strip() == "ready"
    t.peer(t.cli, "udp-send", host, str(port), str(count))
    out, err = sink.communicate(timeout=10)
    return int(out.strip())


def write_policy(tmpdir, name, doc):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


def have(tool):
    return shutil.which(tool) is not None
