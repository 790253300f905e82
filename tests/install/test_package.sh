#!/usr/bin/env bash
# The Debian package, installed on this machine: build it (cpack -G DEB,
# prefix /usr), dpkg -i, check what it installs (binary, version, units that
# systemd-analyze verifies, man page, completion, presets), attach with the
# installed binary in a namespace, then dpkg -r: nothing of sipxdp is left
# (files but the conffiles, pins, programs, qdiscs), and dpkg -P removes
# the conffiles too. Installs into /usr: meant for a test machine (CI);
# refuses to run where sipxdp is installed or attached already.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build=${SIPXDP_PKG_BUILD_DIR:-build-pkg}
ns=sxpkg$$
pass=0 failn=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; failn=$((failn + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

if dpkg-query -W -f='${Status}' sipxdp 2>/dev/null | grep -q "ok installed"; then
  echo "test_package: the sipxdp package is installed on this machine already; not touching it" >&2
  exit 1
fi
if [ -n "$(ls -A /sys/fs/bpf/sipxdp 2>/dev/null)" ]; then
  echo "test_package: sipxdp instances are attached here ($(ls /sys/fs/bpf/sipxdp | tr '\n' ' ')); removing the package would detach them" >&2
  exit 1
fi
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  if dpkg-query -W -f='${Status}' sipxdp 2>/dev/null | grep -q "ok installed"; then dpkg -P sipxdp >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -n "${SIPXDP_BUILD_DIR:-}" ]; then
  echo "== cmake --install of $SIPXDP_BUILD_DIR (default prefix) into a staging DESTDIR"
  stage=$(mktemp -d)
  trap 'cleanup; rm -rf "$stage"' EXIT
  DESTDIR=$stage cmake --install "$SIPXDP_BUILD_DIR" >/dev/null
  check "cmake --install: /usr/local/sbin/sipxdp" test -x "$stage/usr/local/sbin/sipxdp"
  check "cmake --install: man page" test -f "$stage/usr/local/share/man/man8/sipxdp.8.gz"
  check "cmake --install: completion" test -f "$stage/usr/local/share/bash-completion/completions/sipxdp"
  check "cmake --install: unit runs /usr/local/sbin/sipxdp" \
    grep -q "^ExecStart=/usr/local/sbin/sipxdp service run %i" "$stage/usr/local/lib/systemd/system/sipxdp@.service"
  check "cmake --install: watch unit" test -f "$stage/usr/local/lib/systemd/system/sipxdp-watch@.service"
  check "cmake --install: exporter unit" test -f "$stage/usr/local/lib/systemd/system/sipxdp-exporter.service"
  check "cmake --install: presets" test -f "$stage/usr/local/share/sipxdp/examples/presets/asterisk.json"
  check "cmake --install: /etc/sipxdp (whatever the prefix)" test -f "$stage/etc/sipxdp/sipxdp.conf"
fi

echo "== building the package in $build"
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release -DSIPXDP_TESTS=OFF \
  -DSIPXDP_TOOLS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sipxdp_cli manpage >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/sipxdp_*_*.deb | head -n 1)
echo "== $deb"
dpkg-deb -I "$deb" | sed -n '/Depends/p'
check "Depends names libbpf" sh -c "dpkg-deb -f '$deb' Depends | grep -q libbpf"

dpkg -i "$deb" >/dev/null
check "installed: /usr/sbin/sipxdp" test -x /usr/sbin/sipxdp
ver=$(/usr/sbin/sipxdp --version)
echo "   $ver"
check "--version names the version" sh -c "echo '$ver' | grep -Eq '^sipxdp [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]+'"
check "man page" test -f /usr/share/man/man8/sipxdp.8.gz
check "man finds it" man -w sipxdp
check "bash completion" test -f /usr/share/bash-completion/completions/sipxdp
check "presets" test -f /usr/share/sipxdp/examples/presets/freeswitch-minimal.json
check "config directory" test -f /etc/sipxdp/sipxdp.conf
check "units" test -f /usr/lib/systemd/system/sipxdp@.service
check "systemd-analyze verify sipxdp@eth1.service" sh -c \
  "systemd-analyze verify sipxdp@eth1.service 2>&1 | grep -v sys-subsystem-net-devices | grep -q . && exit 1 || exit 0"
check "systemd-analyze verify sipxdp-watch@eth1.service" sh -c \
  "systemd-analyze verify sipxdp-watch@eth1.service 2>&1 | grep -v sys-subsystem-net-devices | grep -q . && exit 1 || exit 0"
check "systemd-analyze verify sipxdp-exporter.service" sh -c \
  "systemd-analyze verify sipxdp-exporter.service 2>&1 | grep -q . && exit 1 || exit 0"
check "the installed presets validate" /usr/sbin/sipxdp validate /usr/share/sipxdp/examples/presets/asterisk.json

echo "== attach with the installed binary"
ip netns add "$ns"
ip -n "$ns" link add sxp0 type veth peer name sxp1
ip -n "$ns" link set sxp0 up
ip -n "$ns" link set sxp1 up
/usr/sbin/sipxdp init --preset freeswitch-minimal >/tmp/$ns.json
check "attach" /usr/sbin/sipxdp --netns "$ns" attach sxp0 --policy /tmp/$ns.json
check "XDP program on the interface" sh -c "ip -n $ns -d link show sxp0 | grep -q 'prog/xdp'"
check "clsact with our filter" sh -c "tc -n $ns filter show dev sxp0 egress | grep -q tc_egress"
rm -f /tmp/$ns.json

echo "== dpkg -r"
dpkg -r sipxdp >/dev/null
check "binary removed" test ! -e /usr/sbin/sipxdp
check "units removed" test ! -e /usr/lib/systemd/system/sipxdp@.service
check "man page removed" test ! -e /usr/share/man/man8/sipxdp.8.gz
check "no pins" sh -c "[ -z \"\$(ls -A /sys/fs/bpf/sipxdp 2>/dev/null)\" ]"
check "no XDP program" sh -c "! ip -n $ns -d link show sxp0 | grep -q 'prog/xdp'"
check "no filter" sh -c "[ -z \"\$(tc -n $ns filter show dev sxp0 egress)\" ]"
check "no clsact" sh -c "! tc -n $ns qdisc show dev sxp0 | grep -q clsact"
check "conffiles stay until purge" test -f /etc/sipxdp/sipxdp.conf
dpkg -P sipxdp >/dev/null
check "purge removes /etc/sipxdp" test ! -e /etc/sipxdp
check "no file of the package left" sh -c "! dpkg -L sipxdp >/dev/null 2>&1"

echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
