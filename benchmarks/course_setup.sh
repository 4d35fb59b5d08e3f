#!/usr/bin/env bash
# How long the README's `make course` takes on a fresh clone: seconds until JupyterLab answers on /lab.
#
#   benchmarks/course_setup.sh [warm|cold] [PYTHON]
#
# warm: the package cache (uv's, and the bootstrapped uv in ~/.cache/attention-steps) is kept, as on a machine
# that built the course once before; cold: both are emptied first (uv downloads everything again).
# Clones HEAD into a scratch folder; prints one line "make course (MODE, PYTHON): N s to a serving JupyterLab".
set -euo pipefail
mode=${1:-warm}
python=${2:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d) && chmod 755 "$work"  # the grading sandbox's uid must reach the clone
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill -- -$pid 2>/dev/null || true; rm -rf "$work"' EXIT

git clone --quiet "$repo" "$work/clone"
if [ "$mode" = cold ]; then
  rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/attention-steps" "$(uv cache dir 2>/dev/null || echo "$HOME/.cache/uv")"
fi
start=$(date +%s.%N)
set -m
(cd "$work/clone" && LAB_ARGS="--no-browser --port $port" make course PYTHON="$python" >"$work/log" 2>&1) &
pid=$!
set +m
until curl -s -o /dev/null "http://127.0.0.1:$port/lab"; do
  if ! kill -0 $pid 2>/dev/null; then echo "make course stopped before JupyterLab served:" >&2; tail -20 "$work/log" >&2; exit 1; fi
  sleep 0.2
done
seconds=$(echo "$(date +%s.%N) - $start" | bc)
grep -E '^(alice|bob|carol) ' "$work/log" || true
printf 'make course (%s, %s): %.1f s to a serving JupyterLab\n' "$mode" "$python" "$seconds"
