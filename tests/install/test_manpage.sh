#!/usr/bin/env bash
# The man page renders without warnings and documents every command and
# every option of every command that `sipxdp --help` lists.
set -uo pipefail
cd "$(dirname "$0")/../.."
sipxdp=${SIPXDP:-build/cli/sipxdp}
page=man/sipxdp.8
pass=0 failn=0
out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
if [ -z "$out" ]; then pass=$((pass + 1)); else echo "FAIL: groff warns: $out"; failn=$((failn + 1)); fi
text=$(groff -man -Tascii -P -cbou "$page" 2>/dev/null)
cmds=$("$sipxdp" --help | awk '/^Subcommands:/{on=1; next} on && NF {print $1}')
for c in $cmds; do
  if grep -q "^\\.SS.*\\b$c\\b\\|^\\.B $c\\b\\|^\\.TP\$" "$page" && echo "$text" | grep -qw "$c"; then
    pass=$((pass + 1))
  else
    echo "FAIL: command $c is not in the man page"; failn=$((failn + 1))
  fi
  for o in $("$sipxdp" "$c" --help 2>/dev/null | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    [ "$o" = "--help" ] && continue
    if echo "$text" | grep -q -- "$o"; then pass=$((pass + 1)); else echo "FAIL: $c $o is not in the man page"; failn=$((failn + 1)); fi
  done
done
echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
