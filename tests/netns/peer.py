"""Traffic peers run inside a namespace by the netns tests (ip netns exec ... peer.py MODE ...)."""
import select
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_sink(port, seconds, v6=False, echo=False):
    """Counts (and with ECHO, echoes) datagrams on PORT until SECONDS pass; prints 'ready', then the count."""
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if v6 else "0.0.0.0", port))
    print("ready", flush=True)
    n = 0
    deadline = time.time() + seconds
    while True:
        left = deadline - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if r:
            data, addr = s.recvfrom(65535)
            if echo:
                s.sendto(data, addr)
            n += 1
    print(n, flush=True)


def sip_invite(host, size):
    """A SIP INVITE with an SDP body, padded to SIZE bytes (big ones get fragmented)."""
    sdp = ("v=0\r\no=- 1 1 IN IP4 198.18.0.2\r\ns=-\r\nc=IN IP4 198.18.0.2\r\nt=0 0\r\n"
           "m=audio 20000 RTP/AVP 0 8\r\n")

    def head(body_len):
        return (f"INVITE sip:100@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.2:5070;branch=z9hG4bK-1\r\n"
                "From: <sip:200@198.18.0.2>;tag=1\r\nTo: <sip:100@198.18.0.1>\r\nCall-ID: frag-1@198.18.0.2\r\n"
                "CSeq: 1 INVITE\r\nUser-Agent: Linphone/5.2\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {body_len:05d}\r\n\r\n")

    pad = max(0, size - len(head(0)) - len(sdp) - len("a=x-pad:\r\n"))
    body = sdp + "a=x-pad:" + "p" * pad + "\r\n"
    return (head(len(body)) + body).encode()


def udp_send(host, port, count, size=100, gap=0.0005, kind="x"):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    payload = sip_invite(host, size) if kind == "invite" else b"x" * size
    for _ in range(count):
        s.sendto(payload, (host, port))
        if gap:
            time.sleep(gap)


def tcp_echo(port, seconds):
    """Echo server on PORT (both families); prints 'ready'; exits after SECONDS."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(16)
    print("ready", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            continue
        c, _ = s.accept()
        c.settimeout(2)
        try:
            data = c.recv(4096)
            c.sendall(data)
        except OSError:
            pass
        c.close()


def tcp_try(host, port, timeout):
    """Exit 0 when an echo round trip to host:port works, 3 otherwise."""
    try:
        c = socket.create_connection((host, port), timeout=timeout)
        c.sendall(b"hello sipxdp")
        ok = c.recv(64) == b"hello sipxdp"
        c.close()
    except OSError as e:
        print(f"tcp {host}:{port}: {e}", file=sys.stderr)
        sys.exit(3)
    sys.exit(0 if ok else 3)


def udp_ask(host, port, sport, timeout):
    """Sends one datagram from SPORT to host:port; exit 0 when the echo comes back, 3 otherwise."""
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind(("::" if family(host) == socket.AF_INET6 else "0.0.0.0", sport))
    s.settimeout(timeout)
    s.sendto(b"are you there", (host, port))
    try:
        ok = s.recv(64) == b"are you there"
    except OSError as e:
        print(f"udp {host}:{port}: {e}", file=sys.stderr)
        sys.exit(3)
    sys.exit(0 if ok else 3)


def tcp_sink(port, seconds):
    """Accepts one connection on PORT and counts its bytes; prints 'ready', then the count."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    s.settimeout(seconds)
    print("ready", flush=True)
    n = 0
    try:
        c, _ = s.accept()
        c.settimeout(seconds)
        while True:
            data = c.recv(65536)
            if not data:
                break
            n += len(data)
    except OSError:
        pass
    print(n, flush=True)


def tcp_upload(host, port, seconds, chunk=65536, gap=0.05):
    """Sends CHUNK bytes every GAP seconds for SECONDS; prints the bytes sent."""
    c = socket.create_connection((host, port), timeout=5)
    c.settimeout(10)
    n = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        c.sendall(b"u" * chunk)
        n += chunk
        time.sleep(gap)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
    print(n, flush=True)


def udp_grab(port, seconds, v6=False, marker=b"friendly-scanner"):
    """Receives on PORT for SECONDS; prints 'ready', then JSON: datagrams, and how many held MARKER."""
    import json
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::" if v6 else "0.0.0.0", port))
    print("ready", flush=True)
    got, marked, sources = 0, 0, []
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select([s], [], [], max(0, deadline - time.time()))
        if r:
            data, addr = s.recvfrom(65535)
            got += 1
            marked += marker in data
            sources.append(addr[0])
    print(json.dumps({"datagrams": got, "marked": marked, "sources": sources}), flush=True)


def tcp_grab(port, seconds, marker=b"friendly-scanner"):
    """Accepts one connection on PORT, reads until it closes or SECONDS pass; prints 'ready', then JSON."""
    import json
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    s.settimeout(seconds)
    print("ready", flush=True)
    data = b""
    deadline = time.time() + seconds
    try:
        c, _ = s.accept()
        while time.time() < deadline:
            c.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    print(json.dumps({"bytes": len(data), "marked": marker in data}), flush=True)


def tcp_parts(host, port, gap, parts):
    """Sends each part in its own segment (TCP_NODELAY, GAP seconds apart), then waits; exit 0."""
    c = socket.create_connection((host, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for p in parts:
        c.send(p.encode())
        time.sleep(gap)
    time.sleep(1.0)
    c.close()


def listen_many(spec, seconds):
    """Listens on every port of SPEC (JSON list of [proto, port]); prints 'ready', then JSON
    {"udp/5060": datagrams, "tcp/5060": connections accepted, "ids": [probe ids received]}
    (a datagram's id is what follows "probe-id=" at its end, as probe-many sends it)."""
    import json
    socks = {}
    for proto, port in json.loads(spec):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        if proto == "tcp":
            s.listen(16)
        socks[s] = f"{proto}/{port}"
    counts = {k: 0 for k in socks.values()}
    ids = []
    print("ready", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select(list(socks), [], [], max(0, deadline - time.time()))
        for s in r:
            if s.type == socket.SOCK_DGRAM:
                data, _ = s.recvfrom(65535)
                at = data.rfind(b"probe-id=")
                if at >= 0:
                    ids.append(data[at + 9:].decode())
            else:
                c, _ = s.accept()
                c.close()
            counts[socks[s]] += 1
    counts["ids"] = ids
    print(json.dumps(counts), flush=True)


def probe_many(host, spec):
    """For each [proto, port, source(, payload, id)] of SPEC (JSON), one UDP datagram or one TCP
    connection attempt from that source address; prints JSON {"tcp/22/SRC": true|false, ...}
    (TCP: connected). A UDP probe with an id carries PAYLOAD then "\r\nprobe-id=ID"."""
    import json
    out = {}
    for proto, port, src, *extra in json.loads(spec):
        if proto == "udp":
            s = socket.socket(family(host), socket.SOCK_DGRAM)
            s.bind((src, 0))
            data = b"probe"
            if extra:
                data = extra[0].encode() + b"\r\nprobe-id=" + extra[1].encode()
            s.sendto(data, (host, port))
            s.close()
            out[f"udp/{port}"] = None
        else:
            try:
                c = socket.create_connection((host, port), timeout=1.0, source_address=(src, 0))
                c.close()
                out[f"tcp/{port}/{src}"] = True
            except OSError:
                out[f"tcp/{port}/{src}"] = False
        time.sleep(0.01)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "udp-sink":
        udp_sink(int(args[0]), float(args[1]), len(args) > 2 and args[2] == "v6")
    elif mode == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 100,
                 kind=args[4] if len(args) > 4 else "x")
    elif mode == "tcp-echo":
        tcp_echo(int(args[0]), float(args[1]))
    elif mode == "udp-echo":
        udp_sink(int(args[0]), float(args[1]), len(args) > 2 and args[2] == "v6", echo=True)
    elif mode == "udp-ask":
        udp_ask(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif mode == "tcp-sink":
        tcp_sink(int(args[0]), float(args[1]))
    elif mode == "tcp-upload":
        tcp_upload(args[0], int(args[1]), float(args[2]))
    elif mode == "udp-grab":
        udp_grab(int(args[0]), float(args[1]), len(args) > 2 and args[2] == "v6")
    elif mode == "tcp-grab":
        tcp_grab(int(args[0]), float(args[1]))
    elif mode == "tcp-parts":
        tcp_parts(args[0], int(args[1]), float(args[2]), args[3:])
    elif mode == "listen-many":
        listen_many(args[0], float(args[1]))
    elif mode == "probe-many":
        probe_many(args[0], args[1])
    elif mode == "tcp-try":
        tcp_try(args[0], int(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown mode {mode}")
