#!/usr/bin/env bash
# The bar muster is measured against: a detached tmux server hosting the same agents as `muster bench`
# (16 demo agents streaming 50 coloured lines a second, or idle), CPU of the tmux server over N seconds.
# Usage: benches/tmux_baseline.sh [agents] [seconds]   (needs target/release/muster: cargo build --release)
set -euo pipefail
agents=${1:-16}
seconds=${2:-10}
exe="$(cd "$(dirname "$0")/.." && pwd)/target/release/muster"
base="muster-baseline-$$"
trap 'for s in idle stream; do tmux -L "$base-$s" kill-server 2>/dev/null || true; done' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() {
  local mode=$1 sock="$base-$2"
  tmux -L "$sock" new-session -d -x 200 -y 50 "$exe demo-agent $mode"
  for _ in $(seq 2 "$agents"); do tmux -L "$sock" new-window -d "$exe demo-agent $mode"; done
  local pid; pid=$(tmux -L "$sock" display -p '#{pid}')
  sleep 3
  local t0; t0=$(ticks "$pid")
  sleep "$seconds"
  local t1; t1=$(ticks "$pid")
  local hz; hz=$(getconf CLK_TCK)
  awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.2f%% of one core", d / hz / s * 100 }'
  echo " (server RSS $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") KiB)"
  tmux -L "$sock" kill-server
}
echo "tmux $(tmux -V | cut -d' ' -f2), $agents agents, $seconds s"
echo "tmux server CPU, idle: $(measure --resume idle)"
echo "tmux server CPU, streaming 50 lines/s each: $(measure '--stream 50' stream)"
