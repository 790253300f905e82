"""Shared helpers of the benchmark scripts: commands, namespaces, cleanup.

Every namespace made here is listed in `Namespaces` and removed by its
`close()` (the scripts call it from `finally` and on SIGTERM/SIGINT/SIGHUP),
which also detaches sipxdp and xdp-filter from the interfaces in it. Nothing
is ever attached outside these namespaces.
"""
import os
import re
import signal
import statistics
import subprocess
import sys


def sh(cmd, check=True, input=None, timeout=None):
    """Runs a command (a list); returns the CompletedProcess, text output."""
    r = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[:2000]}")
    return r


def in_ns(ns, *cmd):
    """The command run inside network namespace `ns`, with its own /sys (ip netns exec)."""
    return ["ip", "netns", "exec", ns, *cmd]


def in_net(ns, *cmd):
    """The command run in network namespace `ns` only: the host's mounts (and bpffs) stay."""
    return ["nsenter", f"--net=/run/netns/{ns}", *cmd]


def stop_on_signals():
    """Turns SIGTERM and SIGHUP into KeyboardInterrupt, so `finally` blocks run."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


class Namespaces:
    """Network namespaces this process made, removed by close() whatever happened."""

    def __init__(self, sipxdp):
        self.sipxdp = sipxdp
        self.names = []

    def add(self, name):
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        sh(["ip", "netns", "add", name])
        self.names.append(name)
        sh(in_ns(name, "ip", "link", "set", "lo", "up"))
        return name

    def remove(self, name):
        if name not in self.names:
            return
        subprocess.run([self.sipxdp, "--netns", name, "detach", "--all"], capture_output=True)
        links = subprocess.run(in_net(name, "ip", "-o", "link", "show"), capture_output=True, text=True).stdout
        for line in links.splitlines():
            ifname = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if "xdp" in line and ifname and ifname != "lo":
                subprocess.run(in_net(name, "xdp-filter", "unload", ifname), capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.names.remove(name)

    def sweep(self, prefix):
        """Removes namespaces `<prefix><pid>-<n>` left by a run that was killed (its pid gone)."""
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(re.escape(prefix) + r"(\d+)-\d+", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                self.names.append(name)
                self.remove(name)

    def close(self):
        for name in list(self.names):
            self.remove(name)


def median_spread(values):
    """(median, min, max) of a non-empty list."""
    return statistics.median(values), min(values), max(values)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def require_root():
    if os.geteuid() != 0:
        sys.exit("the benchmarks need root (network namespaces, BPF)")
