#!/usr/bin/env python3
"""Control-plane benchmark: replacing a policy, and reading counters.

The same rules for every tool, in a private network namespace each:
  N rules        rule i: UDP destination port 10000+i, accept (N = 10, 1,000, 10,000)
  100k prefixes  one rule: TCP port 8021 from 100,000 /32 sources in 198.18.0.0/15
                 (iptables: one rule per source, as "-s a,b,..." expands;
                 nftables: one rule with an anonymous set)
Timed: the wall-clock time of the command a user runs, replacing a policy
of the same size that is already live (one untimed load first, then the
median of the timed replacements; the 100k-prefix policy replaces the
10-rule one each time):
  sipxdp --netns NS apply P.json     (sipxdp attached to a veth in NS)
  iptables-restore < P.rules         (nf_tables backend; replaces the table)
  iptables-legacy-restore < P.rules
  nft -f P.nft                       (starts with "flush ruleset")
and, with the 10,000-rule policy live, reading every counter:
  sipxdp stats --json, iptables-save -c, iptables-legacy-save -c, nft -j list ruleset
Also `sipxdp validate` (parse and compile, no kernel): the userspace share of apply,
and its growth with rules that each have their own port and /32 source
(2,048 to 16,384 rules: the compiler once took 69 s for the largest).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Namespaces, in_net, in_ns, log, require_root, sh, stop_on_signals  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def addr(i):
    v = 0xC6120400 + i  # 198.18.4.0 onwards
    return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"


def sipxdp_policy(n, prefixes):
    rules = [{"name": f"r{i}", "proto": "udp", "dport": 10000 + i, "action": "allow"} for i in range(n)]
    if prefixes:
        rules.append({"name": "esl", "proto": "tcp", "dport": 8021, "action": "allow",
                      "src": [f"{addr(i)}/32" for i in range(prefixes)]})
    return json.dumps({"version": 1, "default_action": "drop", "rules": rules})


def own_source_policy(n):
    """n rules, rule i: UDP port 1000+i from its own /32 (no two rules share a port or a source)."""
    rules = [{"name": f"r{i}", "proto": "udp", "dport": 1000 + i, "src": f"{addr(i)}/32", "action": "allow"}
             for i in range(n)]
    return json.dumps({"version": 1, "default_action": "drop", "rules": rules})


def iptables_rules(n, prefixes):
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT -p udp -m udp --dport {10000 + i} -j ACCEPT" for i in range(n)]
    lines += [f"-A INPUT -s {addr(i)}/32 -p tcp -m tcp --dport 8021 -j ACCEPT" for i in range(prefixes)]
    return "\n".join(lines + ["COMMIT"]) + "\n"


def nft_rules(n, prefixes):
    lines = ["flush ruleset", "table ip filter {", "\tchain INPUT {",
             "\t\ttype filter hook input priority filter; policy drop;"]
    lines += [f"\t\tudp dport {10000 + i} counter accept" for i in range(n)]
    if prefixes:
        elems = ", ".join(addr(i) for i in range(prefixes))
        lines.append(f"\t\tip saddr {{ {elems} }} tcp dport 8021 counter accept")
    return "\n".join(lines + ["\t}", "}"]) + "\n"


def time_cmd(cmd, stdin_path=None):
    """Wall-clock seconds of one command (stdin from a file: no Python copy in the timing)."""
    t0 = time.perf_counter()
    if stdin_path:
        with open(stdin_path) as f:
            r = subprocess.run(cmd, stdin=f, capture_output=True, text=True)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[:500]}")
    return dt


def med(xs):
    return statistics.median(xs)


def time_scrapes(sipxdp, n):
    """Wall time of GET /metrics from `sipxdp exporter` (every instance), n times after one warm-up."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ex = subprocess.Popen([sipxdp, "exporter", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True)
    try:
        ex.stdout.readline()
        url = f"http://127.0.0.1:{port}/metrics"
        size = len(urllib.request.urlopen(url, timeout=30).read())
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            urllib.request.urlopen(url, timeout=30).read()
            times.append(time.perf_counter() - t0)
    finally:
        ex.terminate()
        ex.communicate(timeout=10)
    return {"median": med(times), "min": min(times), "max": max(times), "bytes": size}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=3, help="timed replacements per size")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    sipxdp = os.path.join(args.build, "cli", "sipxdp")
    require_root()
    stop_on_signals()
    sizes = [("10 rules", 10, 0), ("1,000 rules", 1000, 0), ("10,000 rules", 10000, 0),
             ("100,000 source prefixes", 0, 100000)]
    tools = ["sipxdp", "iptables", "iptables-legacy", "nftables"]
    apply_s = {t: {} for t in tools}
    validate_s = {}
    stats_s = {}
    scaling_s = {}
    scrape_s = {}
    errors = {}
    nss = Namespaces(sipxdp)
    with tempfile.TemporaryDirectory(prefix="sxctl") as tmp:
        try:
            files = {}
            for label, n, p in sizes:
                base = os.path.join(tmp, f"p{n}-{p}")
                for ext, text in (("json", sipxdp_policy(n, p)), ("rules", iptables_rules(n, p)),
                                  ("nft", nft_rules(n, p))):
                    with open(f"{base}.{ext}", "w") as f:
                        f.write(text)
                files[label] = base
            for n in (2048, 4096, 8192, 16384):
                path = os.path.join(tmp, f"own{n}.json")
                with open(path, "w") as f:
                    f.write(own_source_policy(n))
                scaling_s[str(n)] = med([time_cmd([sipxdp, "validate", path]) for _ in range(args.runs)])
                log(f"control: validate {n} rules with their own port and source: {scaling_s[str(n)] * 1000:.0f} ms")
            nss.sweep("sxbC")
            ns = {t: nss.add(f"sxbC{os.getpid()}-{i}") for i, t in enumerate(tools)}
            sh(["ip", "link", "add", "sxc0", "netns", ns["sipxdp"], "type", "veth", "peer", "name", "sxc1",
                "netns", ns["sipxdp"]])
            for ifname in ("sxc0", "sxc1"):
                sh(in_ns(ns["sipxdp"], "ip", "link", "set", ifname, "up"))
            sh([sipxdp, "--netns", ns["sipxdp"], "attach", "sxc0", "--policy",
                os.path.join(ROOT, "examples", "freeswitch.json"), "--mode", "native"])
            cmds = {
                "sipxdp": lambda b: ([sipxdp, "--netns", ns["sipxdp"], "apply", f"{b}.json"], None),
                "iptables": lambda b: (in_net(ns["iptables"], "iptables-restore"), f"{b}.rules"),
                "iptables-legacy": lambda b: (in_net(ns["iptables-legacy"], "iptables-legacy-restore"), f"{b}.rules"),
                "nftables": lambda b: (in_net(ns["nftables"], "nft", "-f", f"{b}.nft"), None),
            }
            for label, n, p in sizes:
                base = files[label]
                validate_s[label] = med([time_cmd([sipxdp, "validate", f"{base}.json"]) for _ in range(args.runs)])
                for t in tools:
                    cmd, stdin = cmds[t](base)
                    runs = []
                    if p:
                        # Over the live 10-rule policy each time: sipxdp cannot
                        # replace this policy with itself (see `errors`).
                        small_cmd, small_stdin = cmds[t](files["10 rules"])
                        for _ in range(args.runs):
                            time_cmd(small_cmd, small_stdin)
                            runs.append(time_cmd(cmd, stdin))
                        if t == "sipxdp":
                            r = sh(cmd, check=False)
                            if r.returncode:
                                errors[f"sipxdp apply {label} over itself"] = (r.stderr or r.stdout).strip()
                    else:
                        time_cmd(cmd, stdin)  # loads it; the timed runs replace a live policy of this size
                        runs = [time_cmd(cmd, stdin) for _ in range(args.runs)]
                    apply_s[t][label] = {"median": med(runs), "min": min(runs), "max": max(runs),
                                         "replaces": "10 rules" if p else label}
                    log(f"control: {t:16} {label:24} {med(runs) * 1000:9.1f} ms")
                if n == 10000:
                    reads = {
                        "sipxdp": [sipxdp, "--netns", ns["sipxdp"], "stats", "--json"],
                        "iptables": in_net(ns["iptables"], "iptables-save", "-c"),
                        "iptables-legacy": in_net(ns["iptables-legacy"], "iptables-legacy-save", "-c"),
                        "nftables": in_net(ns["nftables"], "nft", "-j", "list", "ruleset"),
                    }
                    for t, cmd in reads.items():
                        time_cmd(cmd)
                        stats_s[t] = med([time_cmd(cmd) for _ in range(max(5, args.runs))])
                    scrape_s.update(time_scrapes(sipxdp, max(5, args.runs)))
                    log(f"control: exporter scrape with 10,000 rules: {scrape_s['median'] * 1000:.1f} ms "
                        f"({scrape_s['bytes']:,} bytes)")
        finally:
            nss.close()
    result = {"apply_seconds": apply_s, "validate_seconds": validate_s, "stats_10000_seconds": stats_s,
              "scrape_10000_seconds": scrape_s,
              "validate_own_source_seconds": scaling_s,
              "sizes": [s[0] for s in sizes], "runs": args.runs, "errors": errors}
    print_tables(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"control": result}, f, indent=2)


def print_tables(r):
    sizes = r["sizes"]
    print(f"\ncontrol plane: replacing a live policy (ms, median of {r['runs']}; wall clock of the command)")
    print(f"{'tool':28}" + "".join(f"{s:>26}" for s in sizes))
    for t, by in r["apply_seconds"].items():
        name = {"sipxdp": "sipxdp apply", "iptables": "iptables-restore", "iptables-legacy": "iptables-legacy-restore",
                "nftables": "nft -f"}[t]
        print(f"{name:28}" + "".join(f"{by[s]['median'] * 1000:>26.1f}" for s in sizes))
    print(f"{'sipxdp validate (no kernel)':28}" + "".join(f"{r['validate_seconds'][s] * 1000:>26.1f}" for s in sizes))
    print("\nsipxdp validate, N rules each with its own port and /32 source (ms, median)")
    for n, sec in r.get("validate_own_source_seconds", {}).items():
        print(f"  {n:>6} rules {sec * 1000:9.1f}")
    print("\nreading every counter with 10,000 rules live (ms, median)")
    names = {"sipxdp": "sipxdp stats --json", "iptables": "iptables-save -c",
             "iptables-legacy": "iptables-legacy-save -c", "nftables": "nft -j list ruleset"}
    for t, s in r["stats_10000_seconds"].items():
        print(f"  {names[t]:28} {s * 1000:9.1f}")
    sc = r.get("scrape_10000_seconds")
    if sc:
        print(f"  {'sipxdp exporter: GET /metrics':28} {sc['median'] * 1000:9.1f}   "
              f"(min {sc['min'] * 1000:.1f}, max {sc['max'] * 1000:.1f}; {sc['bytes']:,} bytes; target < 100)")
    for what, err in r["errors"].items():
        print(f"\nfailed: {what}: {err}")


if __name__ == "__main__":
    main()
