#!/usr/bin/env bash
# A flood beside tmux, in one run: the time a 50 MB coloured `cat` takes in an agent's terminal (the cat ends
# when the terminal has read all but the PTY's buffer, so its time is how fast the host reads and emulates), in
#   - muster: the agent in its server, a workbench drawing it in a 200x50 tmux "host terminal";
#   - tmux 3 (`history-limit 10000`), a client attached in a host terminal of the same size;
#   - a bare PTY (`script`, nothing drawing it), the floor.
# Each is timed RUNS times (bash's `time`, seconds of wall clock); prints every time and the median.
# OTHER=path/to/another/muster adds that build to the run (e.g. one built from an older commit): the two builds
# then take turns, ROUNDS rounds of RUNS cats each (the machine's noise drifts: turns spread it over both), and
# the CPU both muster processes took (server and workbench, per round of RUNS cats) is printed too.
#
# Usage: benches/cat_vs_tmux.sh [runs]        Needs target/release/muster, tmux and script (util-linux).
set -euo pipefail
runs=${1:-5}
rounds=${ROUNDS:-1}
tag="cat-vs-tmux-$$"
. "$(dirname "$0")/setup.sh"
big="$work/big.txt"
cleanup() {
  kill_tmux
  for d in "$work"/m*/repo; do [ -d "$d" ] && "$exe" -C "$d" server stop --yes >/dev/null 2>&1; done || true
  rm -rf "$work"
}
trap cleanup EXIT

# The benchmark's coloured stream: eight words a line, each with a 256-colour foreground and a truecolour
# background, then the line's number.
awk 'BEGIN { n = 0; size = 0; while (size < 50000000) { line = "";
  for (w = 0; w < 8; w++) line = line sprintf("\033[38;5;%dm\033[48;2;%d;%d;40mword%02d\033[0m ", (n * 8 + w) % 216 + 16, (n * 7) % 256, (w * 30) % 256, w);
  line = line n; print line; size += length(line) + 1; n++ } }' >"$big"

# The loop an agent (or a pane) runs: RUNS timed cats, each time appended to $1.
loop() { printf 'sleep 2; TIMEFORMAT=%%R; for i in $(seq 1 %d); do { time cat %s; } 2>>%s; done; sleep 1000' "$runs" "$big" "$1"; }
await_lines() { # $1 file, $2 lines (default RUNS)
  local i; for i in $(seq 1 600); do [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "${2:-$runs}" ] && return; sleep 0.2; done; }
summary() { sort -n "$1" | awk '{ t[NR] = $1; all = all " " $1 } END { printf "%s  (median %s s)\n", all, t[int((NR + 1) / 2)] }'; }

muster_run() { # $1 muster binary, $2 file of its times, $3 file of its CPU seconds
  local d="$work/m$RANDOM" before ticks=0 p
  if [ -f "$2" ]; then before=$(wc -l <"$2"); else before=0; fi
  mkdir -p "$d/repo/.muster"
  git -C "$d/repo" init -q -b main && echo bench >"$d/repo/README"
  git -C "$d/repo" add -A && git -C "$d/repo" -c user.name=b -c user.email=b@b commit -qm init
  printf '[[agent]]\nname = "cat"\ncommand = "bash"\nargs = ["-c", "%s"]\n' "$(loop "$2")" >"$d/repo/.muster/crew.toml"
  tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "$1 -C $d/repo"
  await_lines "$2" $((before + runs))
  # Server and workbench: every process of that binary (utime + stime, in clock ticks).
  for p in $(pgrep -f "^$1 "); do ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$ticks $(getconf CLK_TCK)" | awk '{ printf "%.2f\n", $1 / $2 }' >>"$3"
  "$1" -C "$d/repo" server stop --yes >/dev/null 2>&1 || true
  tmux -L "$tag-host" kill-server 2>/dev/null || true
}

echo "a 50 MB coloured cat, $runs times each, $(nproc) cores, $(tmux -V), $(date -u +%F)"
builds=("$(readlink -f "$exe")")
[ -n "${OTHER:-}" ] && builds+=("$(readlink -f "$OTHER")")
for round in $(seq 1 "$rounds"); do
  for i in "${!builds[@]}"; do muster_run "${builds[$i]}" "$work/times-$i" "$work/cpu-$i"; done
done
for i in "${!builds[@]}"; do
  label="muster (this build)"
  [ "$i" = 1 ] && label="muster ($OTHER)"
  printf '%-22s' "$label"; summary "$work/times-$i"
  printf '%-22s%s  (CPU seconds of its processes, a round of %d cats each)\n' "" "$(tr '\n' ' ' <"$work/cpu-$i")" "$runs"
done

times="$work/tmux-times"
tmux -L "$tag-base" -f "$conf" new -d -x 200 -y 50 "bash -c '$(loop "$times")'"
tmux -L "$tag-host" -f "$conf" new -d -x 200 -y 50 "tmux -L $tag-base attach"
await_lines "$times"
printf '%-22s' "tmux attached"; summary "$times"
kill_tmux

times="$work/bare-times"
script -qc "bash -c 'TIMEFORMAT=%R; for i in \$(seq 1 $runs); do { time cat $big; } 2>>$times; done'" /dev/null >/dev/null
printf '%-22s' "bare PTY"; summary "$times"
