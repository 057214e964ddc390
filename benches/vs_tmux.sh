#!/usr/bin/env bash
# muster beside tmux, side by side in one run: N agents each printing 50 heavily coloured lines a second
# (`muster demo-agent --stream 50`, ≈ 8.6 KB/s), hosted
#   - by muster: its server and one workbench drawn into a 200x50 tmux "host terminal" (the host's own cost is
#     reported apart, as a terminal emulator's would be);
#   - by tmux 3 with `history-limit 10000`, one client attached at 200x50 (in a host terminal as well).
# CPU is % of one core over the measured seconds (every thread's schedstat, ns), RSS in MiB, threads counted.
# Then the memory with every agent's history full: the agents print 2,000 lines a second for 8 s (16,000 lines
# each, beyond the 10,000 kept) and the resident memory is read again.
#
# Last, typed key → echo on the host terminal's screen, muster and tmux timed the same way.
#
# Both tables: the agents' lines alone, then with a spinner line redrawn in place 10 times a second between them
# (`--spinner 10`: `\r\e[2K⠋ Thinking… (Ns · esc to interrupt)`, as Claude Code and most CLIs draw while they work).
#
# Usage: benches/vs_tmux.sh [seconds] [counts]     e.g. benches/vs_tmux.sh 10 "1 4 16 32 64"
# Env: OTHER=path/to/another/muster measured in the same rounds, taking turns with this build; ROUNDS (1);
# SPINNERS ("0 10": both tables, 0 meaning none; "10": only the spinner's), HISTORY_AGENTS (16; 0 skips), REPO_FILES
# (10000; 0 skips), ECHO_SAMPLES (30), ECHO_OTHERS (4)
# Needs target/release/muster (cargo build --release) and tmux.
set -euo pipefail
seconds=${1:-10}
counts=${2:-"1 4 16 32 64"}
tag="vs-tmux-$$"
. "$(dirname "$0")/setup.sh"

cleanup() {
  kill_tmux
  [ -d "$work/repo" ] && "$exe" -C "$work/repo" server stop --yes >/dev/null 2>&1 || true
  pkill -f "$exe demo-agent" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# CPU nanoseconds of every thread of the given processes.
cpu_ns() {
  local sum=0 p t v
  for p in "$@"; do
    for t in /proc/"$p"/task/*/schedstat; do
      read -r v _ <"$t" 2>/dev/null || continue
      sum=$((sum + v))
    done
  done
  echo "$sum"
}
rss_kib() { local sum=0 p v; for p in "$@"; do v=$(awk '/VmRSS/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0); sum=$((sum + v)); done; echo "$sum"; }
threads() { local sum=0 p; for p in "$@"; do sum=$((sum + $(ls /proc/"$p"/task | wc -l))); done; echo "$sum"; }
# Wait (up to 20 s) until a command prints something.
await() { local i; for i in $(seq 1 200); do out=$("$@" 2>/dev/null || true); [ -n "$out" ] && { echo "$out"; return; }; sleep 0.1; done; }

# Measure CPU of $pids (and of $host apart) over $seconds; prints "cpu host".
measure() {
  local a0 h0 t0 a1 h1 t1
  a0=$(cpu_ns $pids); h0=$(cpu_ns $host); t0=$(date +%s%N)
  sleep "$seconds"
  a1=$(cpu_ns $pids); h1=$(cpu_ns $host); t1=$(date +%s%N)
  awk -v a=$((a1 - a0)) -v h=$((h1 - h0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.2f %.2f\n", a / t * 100, h / t * 100 }'
}

# The agents' kind of output: $spin empty, coloured lines only; else also a spinner line redrawn $spin times a second.
spin=""
kind_args() { [ -n "$spin" ] && echo "--spinner $spin" || true; }
toml_args() { [ -n "$spin" ] && printf ', "--spinner", "%s"' "$spin" || true; }

make_repo() { # $1 agents, $2 lines a second, $3 files in the repository (default 1)
  rm -rf "$work/repo"; mkdir -p "$work/repo/.muster"
  git -C "$work/repo" init -q -b main
  echo "bench" >"$work/repo/README"
  local f
  for f in $(seq 1 "${3:-0}"); do
    mkdir -p "$work/repo/src/m$((f / 100))"
    printf '// file %d\npub fn f%d() -> usize {\n    %d\n}\n' "$f" "$f" "$f" >"$work/repo/src/m$((f / 100))/f$f.rs"
  done
  git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=b -c user.email=b@b commit -qm init
  local i
  : >"$work/repo/.muster/crew.toml"
  for i in $(seq 1 "$1"); do
    printf '[[agent]]\nname = "a%d"\nkind = "demo"\nargs = ["demo-agent", "--stream", "%d"%s]\n' "$i" "$2" "$(toml_args)" >>"$work/repo/.muster/crew.toml"
  done
}

run_muster() { # $1 agents, $2 lines a second, $3 warm-up seconds, $4 files -> sets pids host
  make_repo "$1" "$2" "${4:-0}"
  tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "$exe -C $work/repo"
  host=$(tmux -L "$tag-host" display -p '#{pid}')
  local client; client=$(await pgrep -f "^$exe -C $work/repo\$")
  local server; server=$(await pgrep -f "^$exe -C $work/repo server run")
  pids="$server $client"
  # Every agent running before the clock starts.
  local i; for i in $(seq 1 200); do [ "$(pgrep -fc "$exe demo-agent")" -ge "$1" ] && break; sleep 0.1; done
  sleep "$3"
}
stop_muster() {
  "$exe" -C "$work/repo" server stop --yes >/dev/null 2>&1 || true
  tmux -L "$tag-host" kill-server 2>/dev/null || true
  local i; for i in $(seq 1 100); do pgrep -f "$exe demo-agent" >/dev/null || break; sleep 0.1; done
}

run_tmux() { # $1 agents, $2 lines a second, $3 warm-up seconds -> sets pids host
  tmux -L "$tag-base" -f "$conf" new -d -x 200 -y 50 "$exe demo-agent --stream $2 $(kind_args)"
  local i; for i in $(seq 2 "$1"); do tmux -L "$tag-base" new-window -d "$exe demo-agent --stream $2 $(kind_args)"; done
  local server; server=$(tmux -L "$tag-base" display -p '#{pid}')
  tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "tmux -L $tag-base attach"
  host=$(tmux -L "$tag-host" display -p '#{pid}')
  local client; client=$(await pgrep -f "^tmux -L $tag-base attach")
  pids="$server $client"
  sleep "$3"
}
stop_tmux() {
  kill_tmux
  local i; for i in $(seq 1 100); do pgrep -f "$exe demo-agent" >/dev/null || break; sleep 0.1; done
}

echo "muster $("$exe" --version 2>/dev/null | head -1) vs $(tmux -V), $(nproc) cores, ${seconds} s a figure, $(date -u +%F)"
for spin in ${SPINNERS:-0 10}; do
[ "$spin" = 0 ] && spin=""
[ -z "$spin" ] && echo "each agent: 50 coloured lines a second" ||
  echo "each agent: 50 coloured lines a second and a spinner line redrawn in place $spin times a second"
printf '%-7s | %-26s | %-26s | %-9s | %-8s | %-8s\n' agents "muster CPU % (host)" "tmux CPU % (host)" "CPU ratio" "muster MiB" "tmux MiB"
for round in $(seq 1 "${ROUNDS:-1}"); do
for n in $counts; do
  run_muster "$n" 50 5
  read -r mc mh < <(measure)
  mr=$(rss_kib $pids); mt=$(threads $pids)
  stop_muster
  # Another build in the same round, taking turns with this one (the machine's noise drifts between rounds).
  other=""
  if [ -n "${OTHER:-}" ]; then
    this=$exe; exe=$(readlink -f "$OTHER")
    run_muster "$n" 50 5
    read -r oc oh < <(measure)
    stop_muster
    exe=$this
    other="$oc ($oh)"
  fi
  run_tmux "$n" 50 5
  read -r tc th < <(measure)
  tr=$(rss_kib $pids)
  stop_tmux
  printf '%-7s | %-26s | %-26s | %-9s | %-10s | %-8s | muster threads %s%s\n' "$n" "$mc ($mh)" "$tc ($th)" \
    "$(awk -v a="$mc" -v b="$tc" 'BEGIN { printf "%.2f×", a / (b > 0 ? b : 0.01) }')" \
    "$((mr / 1024))" "$((tr / 1024))" "$mt" \
    "${other:+ | OTHER $other, $(awk -v a="$oc" -v b="$tc" 'BEGIN { printf "%.2f×", a / (b > 0 ? b : 0.01) }') tmux}"
done
done
done
spin=""

hist=${HISTORY_AGENTS:-16}
if [ "$hist" -gt 0 ]; then
  echo "history full: $hist agents × 16,000 lines (10,000 kept), RSS after the flood"
  # RSS each second of the flood: how memory grows as the histories fill (~2,000 lines a second each).
  grow() { local i; for i in 1 2 3 4 5 6 7 8; do sleep 1; printf ' %d' $(($(rss_kib $pids) / 1024)); done; }
  run_muster "$hist" 2000 0
  mg=$(grow)
  mr=$(rss_kib $pids)
  stop_muster
  run_tmux "$hist" 2000 0
  tg=$(grow)
  tr=$(rss_kib $pids)
  stop_tmux
  echo "  muster $((mr / 1024)) MiB, tmux $((tr / 1024)) MiB ($(awk -v a="$mr" -v b="$tr" 'BEGIN { printf "%.2f×", a / b }'))"
  echo "  MiB after each second (~2,000 more lines an agent each): muster$mg; tmux$tg"
fi

if [ "${REPO_FILES:-10000}" -gt 0 ]; then
  echo "16 agents streaming in a repository of ${REPO_FILES:-10000} files against a tiny one (diffstats, watchers):"
  run_muster 16 50 5 "${REPO_FILES:-10000}"
  read -r big _ < <(measure)
  stop_muster
  run_muster 16 50 5 0
  read -r tiny _ < <(measure)
  stop_muster
  echo "  muster ${big}% against ${tiny}% ($(awk -v a="$big" -v b="$tiny" 'BEGIN { printf "%.2f×", a / b }'))"
fi

# Typed key → its echo on the host terminal's screen: a `cat` typed into (attached in muster, the active pane in
# tmux) while N other agents stream; one key at a time, the host's screen read until the key shows. Both sides are
# timed the same way (a `send-keys`, then `capture-pane` until the echo is there), so the figure includes those
# commands' own ~1-2 ms.
echo_samples=${ECHO_SAMPLES:-30}
echo_ms() { # prints the p50, p90 and max of $echo_samples key → echo times, in ms
  local i typed="" t0 t1 c out
  : >"$work/echo"
  for i in $(seq 1 "$echo_samples"); do
    c=$(printf "\\x$(printf %x $((97 + i % 26)))")
    typed="$typed$c"
    t0=$(date +%s%N)
    tmux -L "$tag-host" send-keys -l "$c"
    for _ in $(seq 1 2000); do
      out=$(tmux -L "$tag-host" capture-pane -p)
      [[ $out == *"$typed"* ]] && break
    done
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >>"$work/echo"
    if [ ${#typed} -ge 20 ]; then tmux -L "$tag-host" send-keys Enter; typed=""; sleep 0.1; fi
  done
  sort -n "$work/echo" | awk '{ t[NR] = $1 } END { printf "p50 %.1f ms, p90 %.1f ms, max %.1f ms", t[int(NR / 2) + 1] / 1000, t[int(NR * 0.9)] / 1000, t[NR] / 1000 }'
}
others=${ECHO_OTHERS:-4}
echo "typed key → echo on the host terminal ($echo_samples keys, one at a time), $others other agents streaming:"
make_repo "$others" 50
printf '[[agent]]\nname = "typed"\ncommand = "cat"\n' >>"$work/repo/.muster/crew.toml"
tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "$exe -C $work/repo"
for i in $(seq 1 200); do [ "$(pgrep -fc "$exe demo-agent")" -ge "$others" ] && pgrep -x cat >/dev/null && break; sleep 0.1; done
sleep 2
# The last agent in the roster, attached.
tmux -L "$tag-host" send-keys G Enter
sleep 1
me=$(echo_ms)
stop_muster
tmux -L "$tag-base" -f "$conf" new -d -x 200 -y 50 "cat"
for i in $(seq 1 "$others"); do tmux -L "$tag-base" new-window -d "$exe demo-agent --stream 50"; done
tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "tmux -L $tag-base attach"
sleep 2
te=$(echo_ms)
stop_tmux
echo "  muster $me; tmux $te"
