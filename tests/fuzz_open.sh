#!/usr/bin/env bash
# Build the connreg_open fuzzer (tests/fuzz_open.c: libFuzzer + ASan + UBSan)
# and run it for a bounded time on a temporary copy of tests/fuzz_corpus.
#
#   tests/fuzz_open.sh               build, fuzz FUZZ_SECONDS (default 60)
#   tests/fuzz_open.sh FILE...       build, run the given inputs once
#                                    (reproduce a crash artifact)
#
# Exits non-zero when the fuzzer finds a crash, a sanitizer report, a leak
# or a hang (an input running over FUZZ_TIMEOUT seconds); the input is
# saved under build-fuzz/artifacts/ and its name is printed.
#
# Needs clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes), plus the library's own build dependencies (libck-dev,
# liburcu-dev, libxxhash-dev). Missing tools are an error, unless
# FUZZ_OPTIONAL=1, which turns them into "SKIP" and exit 0.
#
# Environment: FUZZ_SECONDS (60), FUZZ_TIMEOUT (10, per input), FUZZ_CC
# (clang-14), FUZZ_OPTIONAL (0), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_CC="${FUZZ_CC:-clang-14}"
FUZZ_OPTIONAL="${FUZZ_OPTIONAL:-0}"
OUT="$ROOT/build-fuzz"
BIN="$OUT/fuzz_open"

missing() {
	if [ "$FUZZ_OPTIONAL" = "1" ]; then
		echo "fuzz_open.sh: SKIP: $*"
		exit 0
	fi
	echo "fuzz_open.sh: error: $*" >&2
	echo "  install with: apt-get install clang-14 libclang-rt-14-dev" >&2
	echo "  (or set FUZZ_OPTIONAL=1 to skip the fuzzer when they are absent)" >&2
	exit 1
}

case "$FUZZ_SECONDS" in '' | *[!0-9]*) echo "FUZZ_SECONDS must be a number of seconds" >&2; exit 2 ;; esac
case "$FUZZ_TIMEOUT" in '' | *[!0-9]*) echo "FUZZ_TIMEOUT must be a number of seconds" >&2; exit 2 ;; esac

command -v "$FUZZ_CC" >/dev/null 2>&1 || missing "$FUZZ_CC not found"
if command -v dpkg-query >/dev/null 2>&1 && [ "$FUZZ_CC" = "clang-14" ]; then
	st="$(dpkg-query -W -f='${db:Status-Status}' libclang-rt-14-dev 2>/dev/null || true)"
	[ "$st" = "installed" ] || missing "libclang-rt-14-dev is not installed (libFuzzer, sanitizer runtimes)"
fi

mkdir -p "$OUT/artifacts"
echo "==> building $BIN"
"$FUZZ_CC" -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iinclude -Isrc src/*.c tests/fuzz_open.c -lck -lpthread -o "$BIN"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ "$#" -gt 0 ]; then
	echo "==> running $# input(s) once"
	exec "$BIN" -timeout="$FUZZ_TIMEOUT" "$@"
fi

[ -d tests/fuzz_corpus ] || { echo "tests/fuzz_corpus is missing" >&2; exit 1; }
CORPUS="$(mktemp -d "${TMPDIR:-/tmp}/connreg-fuzz-corpus.XXXXXX")"
cleanup() {
	rm -rf "$CORPUS"
	# segments left by fuzzer processes that died mid-input ("/crfuzz-<pid>-<n>")
	local f pid
	for f in /dev/shm/crfuzz-*; do
		[ -e "$f" ] || continue
		pid="${f#/dev/shm/crfuzz-}"
		pid="${pid%%-*}"
		kill -0 "$pid" 2>/dev/null || rm -f "$f"
	done
	true
}
trap cleanup EXIT
cp -p tests/fuzz_corpus/* "$CORPUS"/

echo "==> fuzzing for ${FUZZ_SECONDS}s (per-input timeout ${FUZZ_TIMEOUT}s), corpus copy in $CORPUS"
set +e
# shellcheck disable=SC2086
timeout --signal=KILL $((FUZZ_SECONDS + FUZZ_TIMEOUT + 120)) \
	"$BIN" -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb=2048 \
	-artifact_prefix="$OUT/artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} "$CORPUS"
rc=$?
set -e

if [ "$rc" -ne 0 ]; then
	echo "==> fuzz_open: FAILED (exit $rc)" >&2
	ls -1t "$OUT/artifacts/" 2>/dev/null | head -5 | sed "s|^|    $OUT/artifacts/|" >&2
	echo "    reproduce: tests/fuzz_open.sh <artifact>" >&2
	exit "$rc"
fi
echo "==> fuzz_open: no crash, hang or leak in ${FUZZ_SECONDS}s ($(ls "$CORPUS" | wc -l) corpus inputs)"
