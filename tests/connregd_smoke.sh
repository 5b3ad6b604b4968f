#!/usr/bin/env bash
# connregd end to end with the operator's tools (tests/test_connregd.c has
# the detailed tests): start build/connregd, read /metrics and /healthz with
# curl, compare with `connreg stat --prometheus`, register through the CLI
# and see it counted, stop it with SIGTERM (exit 0, --unlink-on-exit), and
# check the systemd unit template with systemd-analyze when it is there.
#
#   tests/connregd_smoke.sh [BUILD_DIR]     (default: build/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
DAEMON="$BUILD/connregd"
CLI="$BUILD/connreg"
NAME="/connregd-smoke-$$"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/connregd-smoke.XXXXXX")"
PID=

cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -f "/dev/shm$NAME"
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "connregd smoke: FAIL: $*" >&2
	if [ -f "$TMP/log" ]; then
		echo "--- connregd's log:" >&2
		cat "$TMP/log" >&2
	fi
	exit 1
}

for b in "$DAEMON" "$CLI"; do
	[ -x "$b" ] || fail "$b was not built"
done
command -v curl >/dev/null || fail "curl is not installed (apt-get install curl)"

"$DAEMON" --name "$NAME" --capacity 1000 --mode 0660 --transport-is-pid \
	--reap-interval-ms 100 --metrics-listen 127.0.0.1:0 --unlink-on-exit 2>"$TMP/log" &
PID=$!
for _ in $(seq 100); do
	grep -q 'ready: serving' "$TMP/log" && break
	kill -0 "$PID" 2>/dev/null || fail "connregd exited at start"
	sleep 0.05
done
grep -q 'ready: serving' "$TMP/log" || fail "connregd not ready after 5 s"
ADDR="$(grep -o 'listening on http://[^/]*' "$TMP/log" | sed 's|.*http://||')"
[ -n "$ADDR" ] || fail "no metrics address in the log"
echo "connregd $PID serves $NAME, metrics on $ADDR"

[ "$(stat -c %a "/dev/shm$NAME")" = 660 ] || fail "mode $(stat -c %a "/dev/shm$NAME"), not 660"

code="$(curl -s -o "$TMP/health" -w '%{http_code}' "http://$ADDR/healthz")"
[ "$code" = 200 ] || fail "/healthz answered $code: $(cat "$TMP/health")"

"$CLI" register "$NAME" smoke-1 $$ >/dev/null
"$CLI" register "$NAME" smoke-2 $$ >/dev/null
curl -fsS "http://$ADDR/metrics" >"$TMP/daemon.prom"
grep -qx "connreg_live_ids{registry=\"$NAME\"} 2" "$TMP/daemon.prom" ||
	fail "/metrics does not count 2 live ids: $(grep live_ids "$TMP/daemon.prom")"
grep -q '^# TYPE connreg_reaped_total counter$' "$TMP/daemon.prom" || fail "no connreg_reaped_total"

# The CLI prints the same families (less the daemon's own counters), same values.
"$CLI" stat --prometheus "$NAME" >"$TMP/cli.prom"
while IFS= read -r line; do
	grep -qxF -- "$line" "$TMP/daemon.prom" || fail "the daemon lacks the tool's \"$line\""
done < <(grep '^# ' "$TMP/cli.prom")
grep -qx "connreg_live_ids{registry=\"$NAME\"} 2" "$TMP/cli.prom" || fail "the tool disagrees on live ids"
echo "/metrics, /healthz and connreg stat --prometheus agree ($(grep -c '^# TYPE' "$TMP/cli.prom") families)"

# An id whose transport process exits is reaped.
sleep 30 &
SLEEPER=$!
"$CLI" register "$NAME" smoke-doomed "$SLEEPER" >/dev/null
kill "$SLEEPER"
wait "$SLEEPER" 2>/dev/null || true
for _ in $(seq 40); do
	"$CLI" get "$NAME" smoke-doomed >/dev/null 2>&1 || break
	sleep 0.05
done
if "$CLI" get "$NAME" smoke-doomed >/dev/null 2>&1; then fail "smoke-doomed was not reaped in 2 s"; fi
curl -fsS "http://$ADDR/metrics" | grep -qx "connreg_reaped_total{registry=\"$NAME\"} 1" ||
	fail "connreg_reaped_total is not 1"
echo "reaped the id of an exited process"

kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
[ ! -e "/dev/shm$NAME" ] || fail "--unlink-on-exit left /dev/shm$NAME"
echo "SIGTERM: exit 0, name removed"

if command -v systemd-analyze >/dev/null; then
	unit="$TMP/connregd@smoke.service"
	sed "s|@CMAKE_INSTALL_FULL_SBINDIR@|$BUILD|" "$ROOT/tools/systemd/connregd@.service.in" >"$unit"
	out="$(systemd-analyze verify --man=no "$unit" 2>&1)" || fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
	echo "systemd-analyze verify: connregd@.service is clean"
else
	echo "systemd-analyze not found: unit file not verified"
fi
echo "connregd smoke: OK"
