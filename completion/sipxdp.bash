# bash completion for sipxdp(8)                              -*- shell-script -*-
#
# Install as <completionsdir>/sipxdp (bash-completion loads it on first use),
# or source it from ~/.bashrc. Uses bash-completion's _init_completion and
# _filedir when they are there, and works without them.
#
# Where it looks (each can be pointed elsewhere for tests):
#   SIPXDP_COMP_PIN_ROOT   attached instances      /sys/fs/bpf/sipxdp
#   SIPXDP_COMP_NETNS_DIR  network namespaces      `ip netns list`, else /run/netns
#   SIPXDP_COMP_SYSNET     the host's interfaces   /sys/class/net
# and service configurations come from --config-dir DIR when the line has
# one, else $SIPXDP_CONFIG_DIR, else /etc/sipxdp, as for sipxdp itself.
# Reading /sys/fs/bpf usually needs root: as another user, interface
# arguments that must be attached complete to nothing.

_sipxdp_subcommands="attach detach status stats validate apply confirm rollback bans ban trusted service import init events capture exporter"
_sipxdp_presets="freeswitch-minimal freeswitch-full asterisk kamailio-sbc"

# COMPREPLY = the lines of stdin that start with $cur (taken literally: no globbing).
_sipxdp_reply_lines() {
  local w
  while IFS= read -r w; do
    [[ -n $w && $w == "$cur"* ]] && COMPREPLY+=("$w")
  done
  return 0
}

# COMPREPLY = the words of $1 that start with $cur.
_sipxdp_reply_words() {
  local w
  for w in $1; do
    [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
  done
  return 0
}

# Names of network namespaces.
_sipxdp_netns_names() {
  if [[ -z ${SIPXDP_COMP_NETNS_DIR-} ]] && type -P ip >/dev/null 2>&1; then
    ip netns list 2>/dev/null | while read -r n _; do printf '%s\n' "$n"; done
  else
    local d
    for d in "${SIPXDP_COMP_NETNS_DIR:-/run/netns}"/*; do
      [[ -e $d ]] && printf '%s\n' "${d##*/}"
    done
  fi
}

# Interfaces of network namespace $1 (the host's when empty).
_sipxdp_links() {
  if [[ -n $1 ]]; then
    # "2: veth0@if3: <...>": the name, without the peer.
    ip -n "$1" -o link show 2>/dev/null | while IFS= read -r l; do
      l=${l#*: }
      l=${l%%: *}
      printf '%s\n' "${l%%@*}"
    done
  else
    local d
    for d in "${SIPXDP_COMP_SYSNET:-/sys/class/net}"/*; do
      [[ -e $d ]] && printf '%s\n' "${d##*/}"
    done
  fi
}

# sipxdp keeps names in bpffs with '.' as %2e and '%' as %25.
_sipxdp_encode() {
  local s=${1//'%'/%25}
  printf '%s' "${s//./%2e}"
}

_sipxdp_decode() {
  local s=${1//'%2e'/.}
  printf '%s' "${s//'%25'/%}"
}

# Interfaces attached in network namespace $1 (the host when empty): the pin
# directories IFACE (host) and IFACE@NETNS, less interrupted attaches (":attaching:...").
_sipxdp_attached() {
  local root=${SIPXDP_COMP_PIN_ROOT:-/sys/fs/bpf/sipxdp} d n suffix=""
  [[ -n $1 ]] && suffix=@$(_sipxdp_encode "$1")
  for d in "$root"/*; do
    [[ -d $d ]] || continue
    n=${d##*/}
    [[ $n == :* ]] && continue
    if [[ -z $suffix ]]; then
      [[ $n == *@* ]] && continue
    else
      [[ $n == *"$suffix" ]] || continue
      n=${n%"$suffix"}
    fi
    _sipxdp_decode "$n"
    printf '\n'
  done
}

# Interfaces that have a service configuration (DIR/IFACE.json) in directory $1.
_sipxdp_configured() {
  local f
  for f in "$1"/*.json; do
    [[ -f $f ]] || continue
    f=${f##*/}
    printf '%s\n' "${f%.json}"
  done
}

# Files ending in .$1 (any file when empty), and directories; -d: directories.
_sipxdp_files() {
  if declare -F _filedir >/dev/null; then
    _filedir "${1-}"
    return
  fi
  compopt -o filenames 2>/dev/null
  local -a more
  if [[ ${1-} == -d ]]; then
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
  elif [[ -n ${1-} ]]; then
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    mapfile -t more < <(compgen -f -X "!*.$1" -- "$cur")
    local m d
    for m in "${more[@]}"; do
      [[ -d $m ]] && continue # listed already
      COMPREPLY+=("$m")
    done
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}

# Without bash-completion: words, cword, cur, prev and split from COMP_WORDS,
# with "--opt" "=" "value" joined back into one word, as _init_completion -s does.
_sipxdp_init_words() {
  local i w
  words=()
  cword=-1
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    w=${COMP_WORDS[i]}
    if ((${#words[@]} > 0)) && [[ $w == "=" && ${words[${#words[@]} - 1]} == --* ]]; then
      words[${#words[@]} - 1]+="="
      ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
      if ((i + 1 < ${#COMP_WORDS[@]})) && ((i + 1 <= COMP_CWORD)); then
        ((i++))
        words[${#words[@]} - 1]+=${COMP_WORDS[i]}
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
      fi
      continue
    fi
    words+=("$w")
    ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
  done
  ((cword < 0)) && cword=${#words[@]} && words+=("")
  cur=${words[cword]-}
  prev=${words[cword - 1]-}
  split=false
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    cur=${cur#*=}
    split=true
  fi
  ((cword > 0))
}

_sipxdp() {
  local cur prev words cword split=false
  if declare -F _init_completion >/dev/null; then
    _init_completion -s || return
  else
    _sipxdp_init_words || return
  fi
  COMPREPLY=()

  # The command, after the global options; the global options that take a
  # value, wherever they are (sipxdp also takes them after the command).
  local netns="" confdir=${SIPXDP_CONFIG_DIR:-/etc/sipxdp} cmd="" cmd_i=0 i w
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    case $w in
      --netns | --config-dir) ((i++)) ;;
      -*) ;;
      *) [[ -z $cmd ]] && cmd=$w && cmd_i=$i ;;
    esac
  done
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    case $w in
      --netns) ((i + 1 < cword)) && netns=${words[i + 1]}; ((i++)) ;;
      --netns=*) netns=${w#--netns=} ;;
      --config-dir) ((i + 1 < cword)) && confdir=${words[i + 1]}; ((i++)) ;;
      --config-dir=*) confdir=${w#--config-dir=} ;;
    esac
  done
  [[ $confdir == "~"/* ]] && confdir=$HOME/${confdir#"~"/}

  case $prev in
    --netns) _sipxdp_reply_lines < <(_sipxdp_netns_names); return ;;
    --config-dir) _sipxdp_files -d; return ;;
  esac

  if [[ -z $cmd ]]; then
    $split && return
    if [[ $cur == -* ]]; then
      _sipxdp_reply_words "--netns --config-dir --verbose --version --help"
    else
      _sipxdp_reply_words "$_sipxdp_subcommands"
    fi
    return
  fi

  # The command's own words: options that take a value, options, positionals.
  local argopts="" opts="--help"
  case $cmd in
    attach) argopts="-p --policy -m --mode"; opts="--policy --mode --force --json --help" ;;
    detach) opts="--all --all-namespaces --help" ;;
    status) opts="--all --json --help" ;;
    stats) argopts="-w --watch"; opts="--json --exact --all --watch --help" ;;
    validate) opts="--json --help" ;;
    apply) argopts="-i --iface --confirm"; opts="--iface --dry-run --confirm --watch --force --json --help" ;;
    bans | trusted) opts="--json --help" ;;
    ban) argopts="-s --seconds -i --iface --reason" ;;
    init) argopts="--preset --mgmt --rtp"; opts="--preset --mgmt --rtp --help" ;;
    events)
      argopts="--reason --src -n --count --seconds"
      opts="--follow --json --reason --src --count --seconds --help"
      ;;
    capture)
      argopts="-w --write --reason --src -c --count -s --snaplen --seconds"
      opts="--write --reason --src --count --snaplen --seconds --help"
      ;;
    exporter) argopts="--listen"; opts="--listen --help" ;;
  esac
  local -a pos=()
  for ((i = cmd_i + 1; i < cword; i++)); do
    w=${words[i]}
    case $w in
      --*=*) ;;
      -w | --watch)
        if [[ $cmd == capture ]]; then
          ((i++)) # -w FILE
        else
          # An optional value: a number, when one follows.
          [[ $cmd == stats && ${words[i + 1]-} =~ ^[0-9.]+$ ]] && ((i + 1 < cword)) && ((i++))
        fi
        ;;
      --netns | --config-dir) ((i++)) ;;
      -*) [[ " $argopts " == *" $w "* ]] && ((i++)) ;;
      *) pos+=("$w") ;;
    esac
  done
  if [[ $cmd == ban ]]; then
    case ${pos[0]-} in
      add) opts="--seconds --iface --help" ;;
      del) opts="--all --reason --iface --help" ;;
    esac
  fi

  # The value of an option.
  case $prev in
    -p | --policy) [[ $cmd == attach ]] && { _sipxdp_files json; return; } ;;
    -m | --mode) [[ $cmd == attach ]] && { _sipxdp_reply_words "auto native generic"; return; } ;;
    -i | --iface)
      [[ $cmd == apply || $cmd == ban ]] && { _sipxdp_reply_lines < <(_sipxdp_attached "$netns"); return; }
      ;;
    --preset) [[ $cmd == init ]] && { _sipxdp_reply_words "$_sipxdp_presets"; return; } ;;
    -w | --write) [[ $cmd == capture ]] && { _sipxdp_files pcapng; return; } ;;&
    --reason) [[ $cmd == ban ]] && { _sipxdp_reply_words "pattern ratelimit auth manual"; return; } ;;&
    --confirm | --mgmt | --rtp | -s | --seconds | --reason | --src | -n | -c | --count | --snaplen | --listen)
      [[ " $argopts " == *" $prev "* ]] && return
      ;;
    -w | --watch) [[ $cmd == stats && $cur != -* ]] && return ;;
  esac
  $split && return

  if [[ $cur == -* ]]; then
    [[ $cmd == ban || $cmd == service ]] && ((${#pos[@]} == 0)) && return
    _sipxdp_reply_words "$opts"
    return
  fi

  # A positional argument.
  local n=${#pos[@]}
  case $cmd in
    attach) ((n == 0)) && { _sipxdp_reply_lines < <(_sipxdp_links "$netns"); return; } ;;
    detach | stats | bans | trusted | confirm | rollback | events | capture)
      ((n == 0)) && { _sipxdp_reply_lines < <(_sipxdp_attached "$netns"); return; }
      ;;
    validate | apply) ((n == 0)) && { _sipxdp_files json; return; } ;;
    import) ((n == 0)) && { _sipxdp_files; return; } ;;
    ban)
      ((n == 0)) && { _sipxdp_reply_words "add del"; return; }
      ((n == 1)) && [[ ${pos[0]} == add ]] && return # an address or prefix
      ((n == 1)) && return
      ;;
    service)
      ((n == 0)) && { _sipxdp_reply_words "run start reload stop watch"; return; }
      if ((n == 1)); then
        case ${pos[0]} in
          run | start)
            # The interfaces with a configuration; every interface when there is none.
            local conf
            conf=$(_sipxdp_configured "$confdir")
            if [[ -n $conf ]]; then
              _sipxdp_reply_lines <<<"$conf"
            else
              _sipxdp_reply_lines < <(_sipxdp_links "$netns")
            fi
            ;;
          *) _sipxdp_reply_lines < <({ _sipxdp_configured "$confdir"; _sipxdp_attached "$netns"; } | sort -u) ;;
        esac
      fi
      return
      ;;
  esac
  _sipxdp_reply_words "$opts"
}

complete -F _sipxdp sipxdp
