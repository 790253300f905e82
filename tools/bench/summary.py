#!/usr/bin/env python3
"""Merges the benchmark results into one JSON file, with the machine they ran
on, and prints the machine and the issue's targets (reached or not); with
--markdown, also writes every table as Markdown (for BENCHMARKS.md).

    summary.py --out bench.json [--markdown bench.md] datapath.json rig.json control.json
"""
import argparse
import glob
import json
import os
import platform
import subprocess


def machine():
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return ""

    model = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    vulns = {os.path.basename(p): read(p) for p in sorted(glob.glob("/sys/devices/system/cpu/vulnerabilities/*"))}
    mitigations = {k: v for k, v in vulns.items() if v and v != "Not affected"}
    hyp = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    hypervisor = next((ln.split(":", 1)[1].strip() for ln in hyp.splitlines() if ln.startswith("Hypervisor vendor")),
                      "")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    git = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return {"cpu": model, "cpus": os.cpu_count(), "hypervisor": hypervisor, "kernel": platform.release(),
            "mitigations": mitigations, "sipxdp": git.stdout.strip()}


def cell(rig, receiver, kind):
    return next((c for c in rig.get("cells", []) if c["receiver"] == receiver and c["frames"] == kind), None)


def targets(d):
    out = []
    rig = d.get("rig", {})
    sx, ipt, drop = (cell(rig, r, "scanner") for r in ("sipxdp", "iptables", "xdp-drop"))
    off = cell(rig, "sipxdp-bans-off", "scanner")
    if sx and ipt:
        r = sx["pps"] / ipt["pps"]
        out.append(("scanner flood, one source, veth rig: sipxdp >= 4x iptables", f"{r:.3f}x", r >= 4))
    if sx and drop:
        r = sx["pps"] / drop["pps"]
        bound = f" (XDP_DROP took {drop['taken_fraction'] * 100:.0f}% of the frames sent: near the sender's rate)" \
            if drop["taken_fraction"] >= 0.75 else ""
        out.append(("scanner flood, one source, veth rig: sipxdp >= 1/2 bare XDP_DROP", f"{r:.3f}x{bound}", r >= 0.5))
    if off and ipt:
        r = off["pps"] / ipt["pps"]
        out.append(("scanner flood, bans off, veth rig: sipxdp >= 2x iptables", f"{r:.3f}x", r >= 2))
    dp = d.get("datapath", {})
    rtp = next((p for p in dp.get("paths", []) if p["case"].startswith("RTP allowed (port range)")), None)
    if rtp:
        out.append(("RTP allow path < 40 ns/packet (BPF_PROG_TEST_RUN, freeswitch.json)",
                    f"{rtp['ns_per_packet']:.1f} ns ({rtp['ns_minus_floor']:.1f} above the floor)",
                    rtp["ns_per_packet"] < 40))
    ctl = d.get("control", {})
    a = ctl.get("apply_seconds", {}).get("sipxdp", {}).get("10,000 rules")
    if a:
        out.append(("sipxdp apply of 10,000 rules < 100 ms (wall clock of the command)", f"{a['median'] * 1000:.1f} ms",
                    a["median"] < 0.1))
    sc = ctl.get("scrape_10000_seconds")
    if sc:
        out.append(("exporter scrape of 10,000 rules < 100 ms (GET /metrics, wall clock)",
                    f"{sc['median'] * 1000:.1f} ms", sc["median"] < 0.1))
    ev = {e.get("setting"): e for e in dp.get("events", [])}
    off, sup = ev.get("events off"), ev.get("events on, over the rate (suppressed)")
    if off and sup:
        extra = sup["ns_per_packet"] - off["ns_per_packet"]
        out.append(("drop events under a flood cost a few ns per packet (suppressed - off, BPF_PROG_TEST_RUN)",
                    f"{extra:+.0f} ns ({off['ns_per_packet']:.0f} -> {sup['ns_per_packet']:.0f})", extra <= 10))
    return out


def markdown(d):
    """The tables of BENCHMARKS.md, from the merged results."""
    L = []
    dp = d.get("datapath", {})
    if dp:
        L.append(f"Per packet, BPF_PROG_TEST_RUN, median of {dp['runs']} runs of {dp['repeat']:,} repeats "
                 f"(floor: the empty program; budget: {dp['budget_ns']} ns)\n")
        for title, key in (("XDP ingress, examples/freeswitch.json", "paths"),
                           ("esl rule (tcp 8021) with N source prefixes", "prefixes"),
                           ("drop events, TCP SYN to a closed port (default drop)", "events"),
                           ("TC egress, DSCP marks of examples/freeswitch.json", "dscp")):
            L.append(f"| {title} | ns/packet | min-max | minus floor | x budget | verdict |")
            L.append("|---|---:|---:|---:|---:|---|")
            for r in dp.get(key, []):
                flag = "" if r["verdict"] == r["expected"] else f" (wanted {r['expected']})"
                L.append(f"| {r['case']} | {r['ns_per_packet']:.0f} | {r['ns_min']:.0f}-{r['ns_max']:.0f} | "
                         f"{r['ns_minus_floor']:.0f} | {r['budget_fraction']:.2f} | {r['verdict']}{flag} |")
            L.append("")
        if dp.get("scanner"):
            L.append("| scanner matcher (bans off) | match | no scan | 8 patterns | 64 patterns | verdict |")
            L.append("|---|---|---:|---:|---:|---|")
            rows = {}
            for r in dp["scanner"]:
                rows.setdefault((r["packet"], r["match"]), []).append(r)
            for (pkt, match), rs in rows.items():
                by = {x["patterns"]: x for x in rs}
                L.append(f"| {pkt} | {match} | {by[0]['ns_per_packet']:.0f} | {by[8]['ns_per_packet']:.0f} | "
                         f"{by[64]['ns_per_packet']:.0f} | {by[8]['verdict']} |")
            L.append("")
        if dp.get("policy_size"):
            L.append("| policy size (UDP to the last rule's port) | ns/packet |")
            L.append("|---|---:|")
            for r in dp["policy_size"]:
                extra = f" + a rule of {r['prefixes']:,} /24 sources" if r["prefixes"] else ""
                L.append(f"| {r['rules']:,} rules{extra} | {r['ns_per_packet']:.0f} |")
            L.append("")
        if dp.get("apply_in_process"):
            L.append("| apply, in process (ms) | parse_policy | compile_policy | Datapath::apply |")
            L.append("|---|---:|---:|---:|")
            for r in dp["apply_in_process"]:
                L.append(f"| {r['policy']} | {r['parse_ms']:.1f} | {r['compile_ms']:.1f} | {r['apply_ms']:.1f} |")
            L.append("")
    rig = d.get("rig", {})
    if rig.get("cells"):
        kinds = list(rig["frames"])
        recv = list(rig["receivers"])
        L.append(f"Veth rig: packets per second the receiver handled, Mpps (median of {rig['runs']} runs of "
                 f"{rig['count']:,} frames; in brackets: min-max; * the receiver took 90% or more of the frames sent, "
                 "so the rate is near the sender's: a lower bound)\n")
        L.append("| receiver | " + " | ".join(kinds) + " |")
        L.append("|---|" + "---:|" * len(kinds))
        for r in recv:
            cells = []
            for k in kinds:
                c = cell(rig, r, k)
                spread = "" if not c else f" ({c['pps_min'] / 1e6:.2f}-{c['pps_max'] / 1e6:.2f})"
                star = "*" if c and c["taken_fraction"] >= 0.9 else ""
                cells.append("-" if not c else f"{c['pps'] / 1e6:.3f}{star}{spread}")
            L.append(f"| {r} | " + " | ".join(cells) + " |")
        L.append("")
        for base in ("iptables", "xdp-drop"):
            L.append(f"| ratio to {base} | " + " | ".join(kinds) + " |")
            L.append("|---|" + "---:|" * len(kinds))
            for r in recv:
                cells = []
                for k in kinds:
                    c, b = cell(rig, r, k), cell(rig, base, k)
                    cells.append("-" if not c or not b else f"{c['pps'] / b['pps']:.2f}x")
                L.append(f"| {r} | " + " | ".join(cells) + " |")
            L.append("")
        L.append("| receiver | frames | share of sent frames taken | sender Mpps | filter count / veth count | "
                 "sipxdp counters |")
        L.append("|---|---|---:|---:|---:|---|")
        for c in rig["cells"]:
            chk = "-" if c["filter_counted"] is None else f"{c['filter_counted'] / max(1, c['veth_taken']):.3f}"
            sx = ", ".join(f"{k} {v:,}" for k, v in sorted(c.get("sipxdp_counters", {}).items()))
            L.append(f"| {c['receiver']} | {c['frames']} | {c['taken_fraction'] * 100:.1f}% | "
                     f"{c['sender_pps'] / 1e6:.2f} | {chk} | {sx} |")
        busy = [r["background_busy"] for c in rig["cells"] for r in c["runs"] if "background_busy" in r]
        if busy:
            busy.sort()
            L.append(f"\nOther load on the machine just before each run (share of all CPUs busy while the rig idled): "
                     f"median {busy[len(busy) // 2] * 100:.0f}%, max {busy[-1] * 100:.0f}%.\n")
    ctl = d.get("control", {})
    if ctl:
        sizes = ctl["sizes"]
        names = {"sipxdp": "sipxdp apply", "iptables": "iptables-restore", "iptables-legacy": "iptables-legacy-restore",
                 "nftables": "nft -f"}
        L.append(f"Control plane: replacing a live policy, ms (wall clock of the command, median of {ctl['runs']})\n")
        L.append("| command | " + " | ".join(sizes) + " |")
        L.append("|---|" + "---:|" * len(sizes))
        for t, by in ctl["apply_seconds"].items():
            L.append(f"| {names[t]} | " + " | ".join(f"{by[s]['median'] * 1000:.0f}" for s in sizes) + " |")
        L.append("| sipxdp validate (parse + compile, no kernel) | " +
                 " | ".join(f"{ctl['validate_seconds'][s] * 1000:.0f}" for s in sizes) + " |")
        L.append("")
        rn = {"sipxdp": "sipxdp stats --json", "iptables": "iptables-save -c",
              "iptables-legacy": "iptables-legacy-save -c", "nftables": "nft -j list ruleset"}
        L.append("| reading every counter, 10,000 rules live | ms |")
        L.append("|---|---:|")
        for t, sec in ctl["stats_10000_seconds"].items():
            L.append(f"| {rn[t]} | {sec * 1000:.0f} |")
        sc = ctl.get("scrape_10000_seconds")
        if sc:
            L.append(f"| sipxdp exporter, GET /metrics ({sc['bytes']:,} bytes) | {sc['median'] * 1000:.0f} |")
        L.append("")
        for what, err in ctl.get("errors", {}).items():
            L.append(f"Failed: {what}: `{err}`\n")
    if d.get("targets"):
        L.append("| target (issue 6) | measured | reached |")
        L.append("|---|---|---|")
        for t in d["targets"]:
            L.append(f"| {t['target']} | {t['value']} | {'yes' if t['reached'] else '**no**'} |")
        L.append("")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, help="how long the whole run took")
    ap.add_argument("--markdown", help="also write the tables as Markdown here")
    ap.add_argument("parts", nargs="+")
    args = ap.parse_args()
    d = {"machine": machine()}
    for p in args.parts:
        if os.path.exists(p):
            with open(p) as f:
                d.update(json.load(f))
    if args.seconds:
        d["seconds"] = args.seconds
    t = targets(d)
    d["targets"] = [{"target": name, "value": v, "reached": ok} for name, v, ok in t]
    with open(args.out, "w") as f:
        json.dump(d, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(d))
    m = d["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cpus']} CPUs, {m['hypervisor'] or 'bare metal'}, kernel {m['kernel']}; "
          f"sipxdp {m['sipxdp']}")
    for k, v in m["mitigations"].items():
        print(f"  {k}: {v}")
    print("\ntargets (issue 6)")
    for name, v, ok in t:
        print(f"  {'REACHED' if ok else 'not reached':12} {name}: {v}")
    print(f"\nwrote {args.out}" + (f" (whole run {args.seconds:.0f} s)" if args.seconds else ""))


if __name__ == "__main__":
    main()
