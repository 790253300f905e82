"""Traffic peers run inside a namespace by the netns tests (ip netns exec ... peer.py MODE ...)."""
import select
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_sink(port, seconds, v6=False):
    """Counts datagrams on PORT until SECONDS pass; prints 'ready', then the count."""
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
            s.recv(65535)
            n += 1
    print(n, flush=True)


def udp_send(host, port, count, size=100, gap=0.0005):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    payload = b"x" * size
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


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "udp-sink":
        udp_sink(int(args[0]), float(args[1]), len(args) > 2 and args[2] == "v6")
    elif mode == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 100)
    elif mode == "tcp-echo":
        tcp_echo(int(args[0]), float(args[1]))
    elif mode == "tcp-try":
        tcp_try(args[0], int(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown mode {mode}")
