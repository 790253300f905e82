#!/usr/bin/env bash
# Checks completion/sipxdp.bash by calling _sipxdp the way bash does (COMP_WORDS,
# COMP_CWORD, COMP_LINE, COMP_POINT). Needs no root and no attached interface:
# the pin directory, the namespaces and the interfaces are fakes in a temp dir.
# Runs every check without bash-completion, then again with it when it is
# installed. Usage: test_completion.sh [path/to/sipxdp.bash]
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
comp=${1:-$here/../../completion/sipxdp.bash}
[[ -f $comp ]] || { echo "no completion file at $comp"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
mode=plain

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Fakes: a pin root with host and namespace instances (dots as %2e) and an
# interrupted attach; a netns directory; a host with three interfaces; one
# service configuration; a directory of policies.
mkdir -p "$tmp/pins/eth0" "$tmp/pins/eth0%2e100" "$tmp/pins/veth1@blue" "$tmp/pins/veth2@red%2ens" \
  "$tmp/pins/:attaching:eth9" "$tmp/netns" "$tmp/sysnet/lo" "$tmp/sysnet/eth0" "$tmp/sysnet/eth1" \
  "$tmp/etc" "$tmp/etc2" "$tmp/policies/sub.d"
: >"$tmp/netns/blue"
: >"$tmp/netns/red.ns"
: >"$tmp/etc/eth1.json"
: >"$tmp/etc/sipxdp.conf"
: >"$tmp/etc2/eth0.json"
: >"$tmp/policies/a.json"
: >"$tmp/policies/b.json"
: >"$tmp/policies/notes.txt"
: >"$tmp/policies/rules.v4"
export SIPXDP_COMP_PIN_ROOT=$tmp/pins SIPXDP_COMP_NETNS_DIR=$tmp/netns SIPXDP_COMP_SYSNET=$tmp/sysnet \
  SIPXDP_CONFIG_DIR=$tmp/etc

# shellcheck source=/dev/null
source "$comp"

# complete LINE: runs _sipxdp as bash would with the cursor at the end of LINE
# (words split at blanks, and at '=' as COMP_WORDBREAKS does); prints the
# candidates sorted, one line.
complete_line() {
  local line=$1 tok rest
  COMP_WORDS=()
  for tok in $line; do
    while [[ $tok == *=* ]]; do
      rest=${tok#*=}
      [[ -n ${tok%%=*} ]] && COMP_WORDS+=("${tok%%=*}")
      COMP_WORDS+=("=")
      tok=$rest
    done
    [[ -n $tok ]] && COMP_WORDS+=("$tok")
  done
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMPREPLY=()
  local n=${#COMP_WORDS[@]}
  _sipxdp sipxdp "${COMP_WORDS[n - 1]}" "${COMP_WORDS[n - 2]-}" 2>/dev/null
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

check() {
  local line=$1 want=$2 got
  got=$(complete_line "$line")
  if [[ $got == "$want" ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL [%s] "%s"\n  want: %s\n  got:  %s\n' "$mode" "$line" "$want" "$got"
  fi
}

run_checks() {
  check "sipxdp a" "apply attach"
  check "sipxdp " "apply attach ban bans capture confirm detach events exporter import init rollback service stats status trusted validate"
  check "sipxdp s" "service stats status"
  check "sipxdp --" "--config-dir --help --netns --verbose --version"
  check "sipxdp -v --netns b" "blue"
  check "sipxdp --netns " "blue red.ns"
  check "sipxdp --netns=r" "red.ns"
  check "sipxdp --netns blue s" "service stats status"
  check "sipxdp attach x --mode " "auto generic native"
  check "sipxdp attach x -m n" "native"
  check "sipxdp attach x --mode=g" "generic"
  check "sipxdp attach --" "--force --help --json --mode --policy"
  check "sipxdp attach " "eth0 eth1 lo"
  check "sipxdp attach e" "eth0 eth1"
  check "sipxdp attach eth0 " "--force --help --json --mode --policy"
  check "sipxdp init --preset " "asterisk freeswitch-full freeswitch-minimal kamailio-sbc"
  check "sipxdp init --preset f" "freeswitch-full freeswitch-minimal"
  check "sipxdp init --preset=k" "kamailio-sbc"
  check "sipxdp init --" "--help --mgmt --preset --rtp"
  check "sipxdp init --rtp " ""
  check "sipxdp service " "reload run start stop watch"
  check "sipxdp service r" "reload run"
  check "sipxdp service run " "eth1"
  check "sipxdp e" "events exporter"
  check "sipxdp events " "eth0 eth0.100"
  check "sipxdp --netns blue events " "veth1"
  check "sipxdp events --" "--count --follow --help --json --reason --seconds --src"
  check "sipxdp events --reason " ""
  check "sipxdp capture --" "--count --help --reason --seconds --snaplen --src --write"
  check "sipxdp capture -w x.pcapng " "eth0 eth0.100"
  check "sipxdp exporter --" "--help --listen"
  check "sipxdp exporter --listen " ""
  check "sipxdp service start " "eth1"
  check "sipxdp service stop " "eth0 eth0.100 eth1"
  check "sipxdp service watch e" "eth0 eth0.100 eth1"
  check "sipxdp --config-dir $tmp/etc2 service start " "eth0"
  check "sipxdp service start eth1 " ""
  check "sipxdp ban " "add del"
  check "sipxdp ban add 203.0.113.0/24 --" "--help --iface --seconds"
  check "sipxdp ban del 203.0.113.0/24 --" "--all --help --iface --reason"
  check "sipxdp ban del --all --reason " "auth manual pattern ratelimit"
  check "sipxdp ban del --all --reason auth -i " "eth0 eth0.100"
  check "sipxdp trusted " "eth0 eth0.100"
  check "sipxdp trusted eth0 --" "--help --json"
  check "sipxdp ban add " ""
  check "sipxdp ban add 192.0.2.1 -i " "eth0 eth0.100"
  check "sipxdp --netns blue ban del 192.0.2.1 --iface " "veth1"
  check "sipxdp detach " "eth0 eth0.100"
  check "sipxdp detach eth0%" ""
  check "sipxdp detach eth0." "eth0.100"
  check "sipxdp --netns blue detach " "veth1"
  check "sipxdp --netns red.ns stats " "veth2"
  check "sipxdp --netns=red.ns rollback " "veth2"
  check "sipxdp --netns nosuch confirm " ""
  check "sipxdp bans " "eth0 eth0.100"
  check "sipxdp stats -" "--all --exact --help --json --watch"
  check "sipxdp stats --watch 2 " "eth0 eth0.100"
  check "sipxdp status " "--all --help --json"
  check "sipxdp detach --" "--all --all-namespaces --help"
  check "sipxdp detach --netns blue " "veth1"
  check "sipxdp stats eth0 --netns " "blue red.ns"
  check "sipxdp apply -i " "eth0 eth0.100"
  check "sipxdp apply --iface=e" "eth0 eth0.100"
  check "sipxdp apply --" "--confirm --dry-run --force --help --iface --json --watch"
  check "sipxdp apply --confirm " ""
  check "sipxdp confirm --" "--help"
  check "sipxdp frobnicate " "--help"

  # Policy files: *.json and directories, from the current directory.
  local here_dir=$PWD
  cd "$tmp/policies" || return
  check "sipxdp validate " "a.json b.json sub.d"
  check "sipxdp validate a" "a.json"
  check "sipxdp apply " "a.json b.json sub.d"
  check "sipxdp apply b.json -i eth0 " "--confirm --dry-run --force --help --iface --json --watch"
  check "sipxdp attach eth0 --policy " "a.json b.json sub.d"
  check "sipxdp attach eth0 --policy=b" "b.json"
  check "sipxdp import " "a.json b.json notes.txt rules.v4 sub.d"
  check "sipxdp import r" "rules.v4"
  check "sipxdp --config-dir " "sub.d"
  check "sipxdp --config-dir=s" "sub.d"
  check "sipxdp capture eth0 -w " "sub.d"
  cd "$here_dir" || return
}

run_checks

# Every command of the binary is completed, and nothing else (when $SIPXDP names one).
if [[ -n ${SIPXDP-} ]]; then
  want=$("$SIPXDP" --help | awk '/^Subcommands:/{on=1; next} on && NF {print $1}' | sort | tr '\n' ' ' | sed 's/ $//')
  check "sipxdp " "$want"
fi

# Again with bash-completion's _init_completion and _filedir, when installed.
for bc in /usr/share/bash-completion/bash_completion /etc/bash_completion; do
  if [[ -f $bc ]]; then
    set +u
    # shellcheck disable=SC1090
    source "$bc"
    set -u
    if declare -F _init_completion >/dev/null; then
      mode=bash-completion
      # Sourcing bash_completion may have loaded an installed copy: use this one.
      # shellcheck source=/dev/null
      source "$comp"
      run_checks
    fi
    break
  fi
done

echo "$passed passed, $failed failed"
((failed == 0))
