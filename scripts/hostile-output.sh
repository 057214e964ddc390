#!/bin/bash
# Peak memory and CPU of muster (release build) under hostile agent output, beside tmux running the same command
# in a pane. Not part of CI. Usage: scripts/hostile-output.sh [seconds per case, default 20]
set -u
secs=${1:-20}
exe=$(cd "$(dirname "$0")/.." && pwd)/target/release/muster
[ -x "$exe" ] || { echo "build first: cargo build --release" >&2; exit 1; }
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
mib() { awk -v k="$2:" '$1==k {print int($2/1024)}' "/proc/$1/status"; }

# measure NAME CMD: one agent (muster) / one pane (tmux) running CMD at 120x40.
measure() {
    local name=$1 cmd=$2 d="$base/$1"
    mkdir -p "$d/run" && git init -q -b main "$d/repo" && mkdir "$d/repo/.muster"
    git -C "$d/repo" -c user.name=t -c user.email=t@e commit -q --allow-empty -m init
    python3 - "$cmd" "$d/repo/.muster/crew.toml" <<'PY'
import sys
open(sys.argv[2], 'w').write("[[agent]]\nname = \"f\"\ncommand = \"bash\"\nargs = [\"-c\", '''%s''']\n" % sys.argv[1])
PY
    tmux -L "hm-$name" new -d -x 120 -y 40 "cd '$d/repo' && XDG_RUNTIME_DIR='$d/run' XDG_STATE_HOME='$d/state' '$exe'; sleep 600"
    tmux -L "ht-$name" new -d -x 120 -y 40 "bash -c '$(printf %s "$cmd" | sed "s/'/'\\\\''/g")'"
    local pid="" end=$((SECONDS + 10))
    while [ -z "$pid" ] && [ $SECONDS -lt $end ]; do
        for p in $(pgrep -f "$exe\$"); do [ "$(readlink "/proc/$p/cwd")" = "$d/repo" ] && pid=$p; done
        sleep 0.1
    done
    local tpid; tpid=$(tmux -L "ht-$name" display -p '#{pid}')
    sleep $((secs - 5))
    local m0 t0; m0=$(cpu "$pid"); t0=$(cpu "$tpid")
    sleep 5
    local m1 t1; m1=$(cpu "$pid"); t1=$(cpu "$tpid")
    printf '| %s | %s MiB | %s MiB | %s %% | %s MiB | %s MiB | %s %% |\n' "$name" \
        "$(mib "$pid" VmHWM)" "$(mib "$pid" VmRSS)" $(((m1 - m0) * 100 / 500)) \
        "$(mib "$tpid" VmHWM)" "$(mib "$tpid" VmRSS)" $(((t1 - t0) * 100 / 500))
    tmux -L "hm-$name" kill-server; tmux -L "ht-$name" kill-server
}

echo "| case ($secs s) | muster peak | muster now | muster CPU (last 5 s) | tmux peak | tmux now | tmux CPU |"
echo "|---|---|---|---|---|---|---|"
measure endless-osc "printf '\\033]0;'; yes aaaa | tr -d '\\n'"
measure mark-flood "printf e; yes \$'\\xcc\\x81' | tr -d '\\n'"
measure title-100MB "printf '\\033]0;'; head -c 100000000 /dev/zero | tr '\\0' a; printf '\\a'; echo done; exec sleep 600"
measure random-50MB "head -c 50000000 /dev/urandom; echo; echo done; exec sleep 600"
