"""TC egress on real interfaces: DSCP marks seen on the wire (tshark), replies
to the server's own connections under default drop, and clsact coexistence."""
import json
import os
import subprocess
import tempfile
import time
import unittest

from netns import (CLIENT4, CLIENT6, IN_CI, PY, SERVER4, SERVER6, have, require_root, sh, topology,
                   write_policy)

SIPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "freeswitch.json")


def need(test, *tools):
    for tool in tools:
        if not have(tool):
            if IN_CI:
                raise AssertionError(f"{tool} is not installed")
            test.skipTest(f"{tool} is not installed")


def default_drop(**extra):
    doc = {
        "version": 1,
        "default_action": "drop",
        "rules": [{"name": "ssh", "proto": "tcp", "dport": 22, "action": "allow"}],
    }
    doc.update(extra)
    return doc


class Capture:
    """tshark on the client's interface: what the server's packets look like on the wire."""

    def __init__(self, t, bpf_filter):
        self.path = os.path.join(tempfile.mkdtemp(prefix="sxcap"), "cap.pcapng")
        os.chmod(os.path.dirname(self.path), 0o777)
        self.proc = subprocess.Popen(["ip", "netns", "exec", t.cli, "tshark", "-q", "-i", t.cli_if, "-f", bpf_filter,
                                      "-w", self.path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tshark says "Capturing on" once the capture is live.
        deadline = time.time() + 15
        line = ""
        while time.time() < deadline and "Capturing on" not in line:
            line = self.proc.stderr.readline()
        if "Capturing on" not in line:
            self.proc.kill()
            raise AssertionError("tshark did not start capturing")

    def stop(self):
        time.sleep(0.5)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()

    def fields(self, *fields):
        args = ["tshark", "-r", self.path, "-T", "fields"]
        for f in fields:
            args += ["-e", f]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line.strip()]


class Egress(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_sipp_call_marks_sip_cs3_and_rtp_ef(self):
        need(self, "sipp", "tshark")
        with topology() as t:
            t.sipxdp("attach", t.srv_if, "--policy", EXAMPLE)
            cap = Capture(t, f"udp and src host {SERVER4}")
            uas = subprocess.Popen(
                ["ip", "netns", "exec", t.srv, "sipp", "-sf", os.path.join(SIPP_DIR, "uas_call.xml"), "-i", SERVER4,
                 "-p", "5060", "-mp", "20000", "-m", "1", "-nostdin", "-timeout", "40"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                r = t.ns(t.cli, "sipp", "-sf", os.path.join(SIPP_DIR, "uac_call.xml"), "-i", CLIENT4, "-p", "5070",
                         "-mp", "22000", "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error",
                         f"{SERVER4}:5060", check=False, timeout=60)
                self.assertEqual(r.returncode, 0, f"the sipp call failed: {r.stdout[-2000:]}")
                uas.wait(timeout=20)
            finally:
                uas.kill()
                cap.stop()
            seen = cap.fields("udp.srcport", "ip.dsfield.dscp")
            sip = [d for p, d in seen if p == "5060"]
            rtp = [d for p, d in seen if 16384 <= int(p) <= 32768]
            self.assertGreaterEqual(len(sip), 3, "180, 200 and the BYE's 200 from the server")
            self.assertGreater(len(rtp), 200, "the server's RTP stream")
            self.assertEqual(set(sip), {"24"}, "SIP leaves the server as CS3")
            self.assertEqual(set(rtp), {"46"}, "RTP leaves the server as EF")
            self.assertEqual(len(seen), len(sip) + len(rtp))
            stats = t.stats()
            dscp = {r["name"]: r["packets"] for r in stats["dscp"]}
            self.assertEqual(dscp["dscp:sip-cs3"], len(sip), "the CS3 counter equals the captured SIP packets")
            self.assertEqual(dscp["dscp:rtp-ef"], len(rtp), "the EF counter equals the captured RTP packets")
            self.assertEqual(dscp["dscp:sip-tcp"], 0)

    def test_replies_to_the_servers_own_connections_pass_under_default_drop(self):
        with topology() as t:
            pol = write_policy(self.tmp.name, "p.json", default_drop())
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            # The client runs services; the server connects out to them.
            echo = t.peer_bg(t.cli, "tcp-echo", "9000", "20")
            uecho = t.peer_bg(t.cli, "udp-echo", "9001", "20")
            uecho6 = t.peer_bg(t.cli, "udp-echo", "9002", "20", "v6")
            for p in (echo, uecho, uecho6):
                self.assertEqual(p.stdout.readline().strip(), "ready")
            try:
                before = t.counts()
                t.peer(t.srv, "tcp-try", CLIENT4, "9000", "3")
                t.peer(t.srv, "tcp-try", CLIENT6, "9000", "3")
                t.peer(t.srv, "udp-ask", CLIENT4, "9001", "41000", "2")
                t.peer(t.srv, "udp-ask", CLIENT6, "9002", "41001", "2")
                t.ns(t.srv, "ping", "-c", "2", "-W", "2", CLIENT4)
                t.ns(t.srv, "ping", "-6", "-c", "2", "-W", "2", CLIENT6)
                after = t.counts()
                self.assertGreaterEqual(after["established"][0] - before["established"][0], 8)
                status = json.loads(t.sipxdp("status", "--json").stdout)[0]
                self.assertGreaterEqual(status["flows"]["live"], 6)
                self.assertEqual(status["flows"]["capacity"], 65536)
                # Unsolicited: the client sends to the port the server used, from another port.
                sink = t.peer_bg(t.srv, "udp-sink", "41000", "2")
                self.assertEqual(sink.stdout.readline().strip(), "ready")
                t.peer(t.cli, "udp-send", SERVER4, "41000", "5")
                out, _ = sink.communicate(timeout=10)
                self.assertEqual(int(out.strip()), 0, "an unsolicited datagram to the server's port does not get in")
                # A client-initiated TCP connection to a port nothing allows does not get in either.
                srv_echo = t.peer_bg(t.srv, "tcp-echo", "9005", "5")
                self.assertEqual(srv_echo.stdout.readline().strip(), "ready")
                r = t.ns(t.cli, PY, os.path.join(os.path.dirname(__file__), "peer.py"), "tcp-try", SERVER4, "9005",
                         "1", check=False)
                self.assertEqual(r.returncode, 3)
                srv_echo.kill()
                self.assertGreater(t.counts()["default"][0], after["default"][0])
                # With stateful replies off the same exchange fails.
                off = write_policy(self.tmp.name, "off.json", default_drop(stateful=False))
                t.sipxdp("apply", off)
                r = t.ns(t.srv, PY, os.path.join(os.path.dirname(__file__), "peer.py"), "udp-ask", CLIENT4, "9001",
                         "41002", "1", check=False)
                self.assertEqual(r.returncode, 3, "stateful off: the reply is dropped")
            finally:
                for p in (echo, uecho, uecho6):
                    p.kill()

    def test_long_tcp_upload_from_the_server_is_marked_and_keeps_its_flow(self):
        need(self, "tshark")
        with topology() as t:
            # A 3 s TCP timeout: the 7 s upload lives only if every outbound
            # segment (payload in the skb's pages, GSO) refreshes its flow.
            pol = write_policy(self.tmp.name, "p.json", default_drop(
                flow_timeouts={"tcp": 3},
                dscp=[{"name": "upload", "proto": "tcp", "dport": 9000, "class": "af41"}]))
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            cap = Capture(t, f"tcp and src host {SERVER4}")
            sink = t.peer_bg(t.cli, "tcp-sink", "9000", "20")
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            try:
                sent = int(t.peer(t.srv, "tcp-upload", CLIENT4, "9000", "7", timeout=40).stdout.strip())
                got = int(sink.communicate(timeout=20)[0].strip())
            finally:
                sink.kill()
                cap.stop()
            self.assertGreater(sent, 5_000_000)
            self.assertEqual(got, sent, "the whole upload arrived: the client's ACKs kept getting in")
            seen = cap.fields("tcp.len", "ip.dsfield.dscp", "frame.len")
            data = [d for length, d, _ in seen if int(length) > 0]
            self.assertGreater(len(data), 100)
            self.assertEqual(set(d for _, d, _ in seen), {"34"}, "every packet, data or not, leaves as AF41")
            c = t.counts()
            self.assertGreater(c["established"][0], 100)
            dscp = {r["name"]: r for r in t.stats()["dscp"]}["dscp:upload"]
            # veth carries GSO packets whole, so tshark sees them whole: the
            # bytes match exactly, and the packets are the segments a NIC
            # would send (MSS 1448: a 1500-byte MTU with TCP timestamps).
            self.assertEqual(dscp["bytes"], sum(int(f) for _, _, f in seen))
            self.assertEqual(dscp["packets"], sum(max(1, -(-int(n) // 1448)) for n, _, _ in seen))

    def test_clsact_we_did_not_create_stays_with_its_filters(self):
        with topology() as t:
            pol = write_policy(self.tmp.name, "p.json", default_drop())
            # Someone else's clsact and egress filter, there before us.
            t.ns(t.srv, "tc", "qdisc", "add", "dev", t.srv_if, "clsact")
            t.ns(t.srv, "tc", "filter", "add", "dev", t.srv_if, "egress", "pref", "10", "u32", "match", "u32", "0", "0", "classid", "1:1")
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            filters = t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout
            self.assertIn("u32", filters)
            self.assertIn("tc_egress", filters)
            # Ours runs (and lets the walk go on): the server's ping gets its replies.
            before = t.counts()
            t.ns(t.srv, "ping", "-c", "2", "-W", "2", CLIENT4)
            after = t.counts()
            self.assertGreaterEqual(after["egress"][0] - before["egress"][0], 2)
            self.assertEqual(after["established"][0] - before["established"][0], 2)
            t.sipxdp("detach", t.srv_if)
            filters = t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout
            self.assertIn("u32", filters, "their filter stays")
            self.assertNotIn("tc_egress", filters, "ours goes")
            self.assertIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
            t.ns(t.srv, "tc", "qdisc", "del", "dev", t.srv_if, "clsact")

            # A clsact sipxdp made goes at detach...
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            self.assertIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
            t.sipxdp("detach", t.srv_if)
            self.assertNotIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
            # ...unless someone has hung a filter of their own on it meanwhile.
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            t.ns(t.srv, "tc", "filter", "add", "dev", t.srv_if, "ingress", "pref", "10", "u32", "match", "u32", "0", "0", "classid", "1:1")
            t.sipxdp("detach", t.srv_if)
            self.assertIn("u32", t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "ingress").stdout)

    def test_detach_removes_the_egress_filter_even_when_the_xdp_link_is_gone(self):
        with topology() as t:
            pol = write_policy(self.tmp.name, "p.json", default_drop())
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            link = json.loads(sh(["bpftool", "-j", "link", "show", "pinned",
                                  f"/sys/fs/bpf/sipxdp/{t.srv_if}@{t.srv}/xdp_link"]).stdout)["id"]
            sh(["bpftool", "link", "detach", "id", str(link)])
            self.assertIn("tc_egress", t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout)
            t.sipxdp("detach", t.srv_if)
            self.assertNotIn("tc_egress", t.ns(t.srv, "tc", "filter", "show", "dev", t.srv_if, "egress").stdout)
            self.assertNotIn("clsact", t.ns(t.srv, "tc", "qdisc", "show", "dev", t.srv_if).stdout)
            t.sipxdp("attach", t.srv_if, "--policy", pol)  # and it attaches again

    def test_flow_table_size_is_fixed_at_attach(self):
        with topology() as t:
            pol = write_policy(self.tmp.name, "p.json", default_drop(flow_table_size=4096))
            t.sipxdp("attach", t.srv_if, "--policy", pol)
            status = json.loads(t.sipxdp("status", "--json").stdout)[0]
            self.assertEqual(status["flows"]["capacity"], 4096)
            before = t.stats()["sha256"]
            bigger = write_policy(self.tmp.name, "q.json", default_drop(flow_table_size=8192))
            r = t.sipxdp("apply", bigger, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("flow_table_size 8192 differs from the attached table (4096 flows)", r.stderr)
            self.assertEqual(t.stats()["sha256"], before, "the live policy stays")


if __name__ == "__main__":
    unittest.main()
