#!/usr/bin/env bash
# End-to-end check of the daemon from Python: starts `yuma serve` on a free loopback
# port, waits for the health service, runs client.py over a few conformance cases and
# every subnet (format 2) case (exact comparison) in both matrix forms, then stops the daemon with SIGTERM and checks it exited cleanly.
#
#   examples/python/ci_check.sh target/release/yuma
#
# Needs python3 with requirements.txt installed (pip install -r examples/python/requirements.txt).
set -euo pipefail
bin="$(realpath "${1:?usage: ci_check.sh PATH_TO_YUMA_BINARY}")"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cases="$root/tests/conformance/cases"
mechanisms="$root/tests/conformance/mechanisms"

"$here/gen.sh" >/dev/null
log="$(mktemp)"
# The binary logs at warn by default; the clean-shutdown check below reads the info lines.
export RUST_LOG="${RUST_LOG:-info}"
"$bin" serve --listen 127.0.0.1:0 --backend cpu >"$log" 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; }
trap stop EXIT

addr=""
for _ in $(seq 100); do
  addr="$(sed -n 's/^yuma serve: listening on //p' "$log")"
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "yuma serve exited early" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "yuma serve did not report its address" >&2; exit 1; }
echo "yuma serve on $addr"

# The same cases in both matrix forms (packed varints, fixed-width bytes), then all of them
# on one stream; the subnet (format 2) cases go on one RunSubnetEpochs call each time.
for form in "" --fixed-width "--stream --fixed-width"; do
  python3 "$here/client.py" --addr "$addr" --wait-health 30 $form \
    "$cases/n0-empty-y3-la.json" \
    "$cases/n3-small-y3-la.json" \
    "$cases/n16-commit-reveal-y3-la.json" \
    "$cases/n16-oob-uids-y3.json" \
    "$cases/n256-realistic-orig.json" \
    "$cases/n1024-y3-la.json" \
    "$mechanisms"/*.json
done

trap - EXIT
kill -TERM "$pid"
for _ in $(seq 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"; echo "yuma serve did not stop on SIGTERM" >&2; exit 1
fi
wait "$pid" || { cat "$log"; echo "yuma serve exited non-zero" >&2; exit 1; }
grep -q "stopped" "$log" || { cat "$log"; echo "no clean shutdown logged" >&2; exit 1; }
echo "ci_check: daemon stopped cleanly"
