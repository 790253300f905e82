#!/usr/bin/env bash
# The sipxdp demo on a built-in topology: a "server" namespace running the
# FreeSWITCH reference policy (examples/freeswitch.json) under sipxdp, and a
# "client" namespace that sends it real traffic: SIP calls (sipp), RTP-range
# UDP, ping, ESL from a stranger and from the management host, and probes of
# closed ports, and a SIP scanner (svmap). Then the per-rule counters and the
# bans. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SIPXDP=${SIPXDP:-build/cli/sipxdp}
SRV=sxdemo-srv CLI=sxdemo-cli SIF=demo-srv CIF=demo-cli
S4=198.18.0.1 C4=198.18.0.2 M4=198.18.0.10 S6=2001:db8::1 C6=2001:db8::2

cleanup() {
  "$SIPXDP" --netns "$SRV" detach "$SIF" >/dev/null 2>&1 || true
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
cleanup

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

say "topology: $SRV ($S4, $S6) <-veth-> $CLI ($C4, $M4, $C6)"
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "$SIF" netns "$SRV" type veth peer name "$CIF" netns "$CLI"
in_srv ip addr add $S4/24 dev "$SIF"
in_srv ip -6 addr add $S6/64 dev "$SIF" nodad
in_cli ip addr add $C4/24 dev "$CIF"
in_cli ip addr add $M4/24 dev "$CIF"
in_cli ip -6 addr add $C6/64 dev "$CIF" nodad
for ns in "$SRV" "$CLI"; do ip -n "$ns" link set lo up; done
in_srv ip link set "$SIF" up
in_cli ip link set "$CIF" up

say "sipxdp attach $SIF --policy examples/freeswitch.json"
"$SIPXDP" --netns "$SRV" attach "$SIF" --policy examples/freeswitch.json
"$SIPXDP" --netns "$SRV" status

say "traffic"
in_srv timeout 30 sipp -sn uas -i $S4 -p 5060 -m 5 -nostdin >/dev/null 2>&1 &
uas=$!
sleep 0.5
if in_cli timeout 30 sipp -sn uac -i $C4 -p 5062 -m 5 -r 10 -d 200 -timeout 20 $S4:5060 -nostdin >/tmp/sxdemo-sipp.$$ 2>&1; then
  echo "sipp: 5 SIP calls (INVITE/ACK/BYE) to $S4:5060 completed"
else
  echo "sipp: calls failed:"; tail -5 /tmp/sxdemo-sipp.$$
fi
rm -f /tmp/sxdemo-sipp.$$
wait $uas || true

in_cli python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200): s.sendto(b'\x80' + b'\0' * 171, ('$S4', 20000 + 2 * (i % 10)))
" && echo "RTP: 200 datagrams of 172 bytes to $S4:20000-20018"

in_cli ping -c 5 -i 0.2 -q $S4 | grep -E 'transmitted' | sed 's/^/ping: /'
in_cli ping -6 -c 3 -i 0.2 -q $S6 | grep -E 'transmitted' | sed 's/^/ping6: /'

in_srv timeout 15 nc -l -k 8021 >/dev/null 2>&1 &
esl=$!
sleep 0.3
if in_cli timeout 3 nc -z -w 2 $S4 8021; then echo "ESL from $C4: open (unexpected)"; else echo "ESL from $C4 (stranger): blocked"; fi
if in_cli timeout 3 nc -z -w 2 -s $M4 $S4 8021; then echo "ESL from $M4 (manager): open"; else echo "ESL from $M4: blocked (unexpected)"; fi
kill $esl 2>/dev/null || true

say "a SIP scanner: svmap (sipvicious) from $C4"
in_cli timeout 30 svmap $S4 -p 5060,5080 2>&1 | sed 's/^/svmap: /' | tail -3 || true
"$SIPXDP" --netns "$SRV" bans "$SIF"
echo "and a legitimate call from the management host ($M4, trusted) still works:"
in_srv timeout 30 sipp -sn uas -i $S4 -p 5060 -m 1 -nostdin >/dev/null 2>&1 &
uas=$!
sleep 0.5
if in_cli timeout 30 sipp -sn uac -i $M4 -p 5064 -m 1 -timeout 20 $S4:5060 -nostdin >/dev/null 2>&1; then
  echo "sipp: 1 call from $M4 completed"
else
  echo "sipp: the call from $M4 failed"
fi
wait $uas || true

for port in 23 3306 5038; do
  if in_cli timeout 2 nc -z -w 1 $S4 $port; then :; fi
done
echo "probes of TCP 23, 3306, 5038: dropped"

say "the server's own connections under default drop (stateful replies)"
in_cli timeout 10 nc -l 9000 >/dev/null 2>&1 &
sleep 0.3
# (to the management address: the scanner's address is banned, and a ban drops replies too)
if echo hello | in_srv timeout 3 nc -w 1 -q 1 $M4 9000; then echo "TCP from the server to $M4:9000: connected, replies let in"; else echo "TCP from the server: failed (unexpected)"; fi
in_srv ping -c 3 -i 0.2 -q $M4 | grep -E 'transmitted' | sed 's/^/ping from the server: /'
"$SIPXDP" --netns "$SRV" status | grep flows

say "sipxdp stats $SIF"
"$SIPXDP" --netns "$SRV" stats "$SIF"

say "sipxdp events $SIF -n 6: who was dropped, and why"
"$SIPXDP" --netns "$SRV" events "$SIF" -n 6 --src 198.18.0.0/15

say "sipxdp detach $SIF"
"$SIPXDP" --netns "$SRV" detach "$SIF"
