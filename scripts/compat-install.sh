#!/usr/bin/env bash
# Installs the pinned agent CLIs the compatibility suite runs, into a cache folder (not in CI: it downloads).
# Usage: scripts/compat-install.sh [CACHE]   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/muster-compat)
set -euo pipefail
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/muster-compat}
mkdir -p "$cache/npm" "$cache/py"
# The versions the table in COMPAT.md was measured with.
npm_pkgs=(
  "@anthropic-ai/claude-code@2.1.332"
  "@openai/codex@0.169.0"
  "@google/gemini-cli@0.61.0"
  "opencode-ai@1.18.33"
  # The CLIs added by issue #26 (their tiers are in COMPAT.md and `muster agents list`).
  "@qwen-code/qwen-code@0.24.4"
  "@github/copilot@1.0.102"
  "droid@0.215.0"
  "@kilocode/cli@7.7.7"
  "@mariozechner/pi-coding-agent@0.73.1"
  "@qoder-ai/qodercli@1.1.52"
  "@sourcegraph/amp@0.0.1790142911-g7618fb"
  "@augmentcode/auggie@0.36.0"
)
for p in "${npm_pkgs[@]}"; do
  name=${p%@*}
  if [ ! -d "$cache/npm/lib/node_modules/$name" ]; then
    echo "installing $p"
    npm install --global --prefix "$cache/npm" --no-fund --no-audit "$p" >"$cache/npm-${name//\//_}.log" 2>&1 \
      || { echo "failed: $p (see $cache/npm-${name//\//_}.log)"; exit 1; }
  fi
done
if [ ! -x "$cache/py/bin/aider" ]; then
  echo "installing aider-chat==0.86.2"
  python3 -m venv "$cache/py"
  "$cache/py/bin/pip" install --quiet "aider-chat==0.86.2" >"$cache/pip.log" 2>&1 \
    || { echo "failed: aider (see $cache/pip.log)"; exit 1; }
fi
echo "installed in $cache: $cache/npm/bin and $cache/py/bin"
