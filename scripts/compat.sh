#!/usr/bin/env bash
# The compatibility suite against the real agent CLIs (not in CI: it downloads them). Installs the pinned
# versions into a cache folder, builds muster, runs each CLI inside muster in tmux with a fresh HOME and prints
# a table. `scripts/compat.sh --write` keeps it in COMPAT.md. See scripts/compat.py for what is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/muster-compat
scripts/compat-install.sh "$cache"
cargo build --quiet
exec python3 scripts/compat.py --cache "$cache" "$@"
