#!/usr/bin/env bash
# Instructions per message of the consumer's parse+decode+row path and the publisher's
# read+validate+encode path, counted by callgrind (repeatable on a busy machine): each
# path runs with N and with 2N messages, and the difference is divided by N, so start-up
# and imports cancel out. Usage: bash deploy/bench-instructions.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
py=$(python -c "import sys; print(sys.executable)")  # the interpreter, not a pyenv shim
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # path messages -> instructions of the whole run
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2" \
        "$py" -m msgbus.bench.instructions "$1" "$2" >/dev/null 2>"$out/log.$1.$2"
    grep -m1 -E '^(summary|totals):' "$out/cg.$1.$2" | awk '{print $2}'
}
for path in consumer publisher; do
    one=$(count "$path" "$n")
    two=$(count "$path" $((2 * n)))
    echo "$path: $(( (two - one) / n )) instructions per message (N=$n, callgrind)"
done
