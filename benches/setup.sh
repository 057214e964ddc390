# Sourced by the scripts beside tmux (set `tag` first): the release binary, a work folder, the tmux config both
# sides use, and a way to end the two tmux servers (the host terminal and tmux's own).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exe="${MUSTER:-$root/target/release/muster}"
[ -x "$exe" ] || { echo "build it first: cargo build --release (or MUSTER=path/to/muster)" >&2; exit 1; }
work="$(mktemp -d)"
conf="$work/tmux.conf"
printf 'set -g history-limit 10000\nset -g status off\n' >"$conf"
kill_tmux() { for s in host base; do tmux -L "$tag-$s" kill-server 2>/dev/null || true; done; }
