#!/usr/bin/env bash
# connreg set-up for a fresh Debian 12 machine (run as root, from a clone).
#
#   tools/setup.sh demo   install what is missing, build, run the demo
#   tools/setup.sh test   install what is missing, build, run every test:
#                         the Release suite, the suite again under
#                         AddressSanitizer + UBSan, and an install check
#                         (pkg-config and find_package consumers)
#
# Exits non-zero on any failure. Environment knobs (all optional):
#   JOBS=<n>           parallel build jobs (default: nproc)
#   CONNREG_SKIP_APT=1 never call apt-get (just report missing packages)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="${1:-}"
case "$MODE" in
demo | test) ;;
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac

JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
PACKAGES=(build-essential cmake pkg-config liburcu-dev libck-dev libcriterion-dev libxxhash-dev)
# connregd (tools/connregd, built by default): HTTP for its metrics, sd_notify;
# hiredis for --cluster (docs/cluster.md; without it connregd refuses --cluster).
PACKAGES+=(libmicrohttpd-dev libsystemd-dev libhiredis-dev)
if [ "$MODE" = test ]; then
	# The fuzzer (libFuzzer) needs clang and its runtime.
	PACKAGES+=(clang-14 libclang-rt-14-dev)
	# tools/check_ord.py (ctests check_ord, check_ord_selftest).
	PACKAGES+=(python3)
	# tests/connregd_smoke.sh reads connregd's metrics with curl.
	PACKAGES+=(curl)
	# test_cluster starts real redis-server processes (connregd --cluster).
	PACKAGES+=(redis-server)
	# The Python binding (cffi, pytest, mypy; pip for the install check) and the
	# C++ header's tests (g++ from build-essential, clang++ from clang-14).
	PACKAGES+=(python3-dev python3-cffi python3-pytest python3-setuptools python3-wheel python3-pip
		python3-mypy)
	# The Elixir binding (bindings/elixir): erl_nif.h, and mix with ExUnit.
	PACKAGES+=(erlang-dev elixir)
fi
BUILD_DIR="$ROOT/build"
ASAN_DIR="$ROOT/build-asan"
TSAN_DIR="$ROOT/build-tsan"

log() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------
# Step bookkeeping: every step is recorded; the summary is printed on exit.
# ---------------------------------------------------------------------------
STEP_NAMES=()
STEP_RESULTS=()
FAILED=0
SCRIPT_START=$SECONDS

summary() {
	local rc=$? i
	[ "$rc" -ne 0 ] && FAILED=1
	echo
	echo "==================== connreg setup.sh $MODE: summary ===================="
	for i in "${!STEP_NAMES[@]}"; do
		printf '  %-6s %s\n' "${STEP_RESULTS[$i]}" "${STEP_NAMES[$i]}"
	done
	printf '  total time: %ds\n' $((SECONDS - SCRIPT_START))
	if [ "$FAILED" -ne 0 ]; then
		echo "  RESULT: FAILED"
		echo "========================================================================="
		[ "$rc" -ne 0 ] || rc=1
	else
		echo "  RESULT: OK"
		echo "========================================================================="
	fi
	exit "$rc"
}
trap summary EXIT

# run_step <name> <command...>: runs the command with errexit in a subshell,
# records PASS/FAIL with its duration; returns the command's status.
run_step() {
	local name="$1" rc t0=$SECONDS
	shift
	log "$name"
	set +e
	(
		set -euo pipefail
		"$@"
	)
	rc=$?
	set -e
	STEP_NAMES+=("$name")
	if [ "$rc" -eq 0 ]; then
		STEP_RESULTS+=("PASS")
		echo "--- $name: PASS ($((SECONDS - t0))s)"
	else
		STEP_RESULTS+=("FAIL")
		FAILED=1
		echo "--- $name: FAIL (exit $rc, $((SECONDS - t0))s)" >&2
	fi
	return "$rc"
}

skip_step() {
	STEP_NAMES+=("$1")
	STEP_RESULTS+=("SKIP")
}

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------
install_packages() {
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "dpkg-query not found: this script supports Debian 12 (bookworm) only." >&2
		echo "Install by hand: ${PACKAGES[*]}" >&2
		return 1
	fi
	local missing=() p st
	for p in "${PACKAGES[@]}"; do
		st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
		[ "$st" = "installed" ] || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "all packages present: ${PACKAGES[*]}"
		return 0
	fi
	echo "missing packages: ${missing[*]}"
	if [ "${CONNREG_SKIP_APT:-0}" = "1" ]; then
		echo "CONNREG_SKIP_APT=1: not installing them" >&2
		return 1
	fi
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			echo "not root and sudo is not available: run as root, or install: ${missing[*]}" >&2
			return 1
		fi
	fi
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

# ---------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------
configure_release() {
	cmake -S "$ROOT" -B "$BUILD_DIR" \
		-DCMAKE_BUILD_TYPE=Release \
		"-DCMAKE_C_FLAGS_RELEASE=-O2 -g -DNDEBUG" \
		-DCONNREG_WERROR=ON \
		-DCONNREG_SANITIZE= \
		-DCONNREG_BUILD_TESTS=ON \
		-DCONNREG_BUILD_TOOLS=ON
	cmake --build "$BUILD_DIR" -j"$JOBS"
}

configure_asan() {
	cmake -S "$ROOT" -B "$ASAN_DIR" \
		-DCMAKE_BUILD_TYPE=Debug \
		-DCONNREG_WERROR=ON \
		-DCONNREG_SANITIZE=address,undefined \
		-DCONNREG_BUILD_TESTS=ON \
		-DCONNREG_BUILD_TOOLS=ON
	cmake --build "$ASAN_DIR" -j"$JOBS"
}

# Criterion cannot start under ThreadSanitizer (Snaipe/Criterion#274): the
# TSan tree builds and runs the threads-only stress test and the demo.
tsan_check() {
	cmake -S "$ROOT" -B "$TSAN_DIR" \
		-DCMAKE_BUILD_TYPE=Debug \
		-DCONNREG_WERROR=ON \
		-DCONNREG_SANITIZE=thread \
		-DCONNREG_BUILD_TESTS=ON \
		-DCONNREG_BUILD_TOOLS=ON \
		-DCONNREG_BUILD_BENCH=OFF
	cmake --build "$TSAN_DIR" -j"$JOBS" --target stress_threads connreg-demo
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$TSAN_DIR/stress_threads" 3
	TSAN_OPTIONS="halt_on_error=1" "$TSAN_DIR/connreg-demo" --seconds 0.5
}

fuzz_check() {
	FUZZ_SECONDS="${FUZZ_SECONDS:-60}" "$ROOT/tests/fuzz_open.sh"
}

run_ctest() {
	ctest --test-dir "$1" --output-on-failure --no-tests=error
}

run_demo() {
	if [ ! -x "$BUILD_DIR/connreg-demo" ]; then
		echo "$BUILD_DIR/connreg-demo was not built (is tools/demo.c there?)" >&2
		return 1
	fi
	"$BUILD_DIR/connreg-demo"
}

# ---------------------------------------------------------------------------
# Bindings: the Python package (bindings/python, cffi API mode, pytest) and
# the C++ header (tests/cpp/run.sh: g++ and clang++, C++17 and C++20).
# ---------------------------------------------------------------------------
PYTHON="${PYTHON:-/usr/bin/python3}"

bindings_check() {
	local rc=0
	echo "-- Python: bindings/python built against build/ into build/python"
	CONNREG_INCLUDE_DIR="$ROOT/include" CONNREG_LIB_DIR="$BUILD_DIR" \
		"$PYTHON" "$ROOT/bindings/python/build_ffi.py" --out "$BUILD_DIR/python"
	PYTHONPATH="$BUILD_DIR/python" PYTHONDONTWRITEBYTECODE=1 CONNREG_CLI="$BUILD_DIR/connreg" \
		"$PYTHON" -m pytest -q -p no:cacheprovider "$ROOT/bindings/python/tests" || rc=1
	echo "-- C++: tests/cpp/run.sh"
	JOBS="$JOBS" "$ROOT/tests/cpp/run.sh" "$BUILD_DIR" || rc=1
	return "$rc"
}

# The Elixir binding: `mix test` in bindings/elixir, offline (no Hex, no
# deps) with a throw-away HOME and MIX_HOME. Its compiler task builds the
# NIF with make against build/libconnreg.a; the tests use build/connreg.
# The timeout only guards against a hang (the suite takes seconds).
elixir_check() {
	local home
	home="$(mktemp -d "${TMPDIR:-/tmp}/connreg-mix.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$home'" EXIT
	cd "$ROOT/bindings/elixir"
	HOME="$home" MIX_HOME="$home/.mix" MIX_ENV=test HEX_OFFLINE=1 LANG=C.UTF-8 \
		CONNREG_BUILD_DIR="$BUILD_DIR" timeout -k 10 300 mix test
}

# Part of the install check: the Python package built against the installed
# header and library (pip --prefix) and imported from the prefix; C++
# consumers of connreg.hpp through pkg-config (g++, clang++) and
# find_package(connreg).
install_check_bindings() {
	local prefix="$1" libdir="$2" pcdir="$3" work="$4" src pkg so deps cxx pc_cflags pc_libs

	echo "-- Python package: pip install --prefix, then import it from there"
	src="$work/python-src"
	mkdir -p "$src"
	cp -r "$ROOT/bindings/python/connreg" "$ROOT/bindings/python/build_ffi.py" \
		"$ROOT/bindings/python/setup.py" "$ROOT/bindings/python/pyproject.toml" "$src/"
	rm -rf "$src/connreg/__pycache__" "$src"/connreg/*.so
	CONNREG_INCLUDE_DIR="$prefix/include" CONNREG_LIB_DIR="$libdir" PIP_ROOT_USER_ACTION=ignore \
		"$PYTHON" -m pip install --no-build-isolation --no-index --no-deps --no-cache-dir \
		--disable-pip-version-check -q --prefix "$prefix" "$src"
	pkg="$(find "$prefix" -path '*-packages/connreg/__init__.py' -print -quit)"
	if [ -z "$pkg" ]; then
		echo "pip installed no connreg package under $prefix" >&2
		return 1
	fi
	pkg="$(dirname "$pkg")"
	test -f "$pkg/py.typed"
	so="$(find "$pkg" -name '_native*.so' -print -quit)"
	deps="$(ldd "$so")"
	if ! grep -q "libconnreg\.so\.[0-9]* => $libdir/" <<<"$deps"; then
		echo "the Python extension is not using the installed libconnreg.so:" >&2
		echo "$deps" >&2
		return 1
	fi
	(cd "$work" && PYTHONPATH="$(dirname "$pkg")" "$PYTHON" - "$pkg" <<'EOF'
import os
import sys

import connreg

pkg = sys.argv[1]
assert os.path.dirname(os.path.realpath(connreg.__file__)) == os.path.realpath(pkg), connreg.__file__
name = "/connreg-install-py-%d" % os.getpid()
with connreg.Registry.create(name, capacity=16) as reg:
    reg.register("conn-1", 42)
    assert reg["conn-1"] == 42 and dict(reg) == {b"conn-1": 42}
connreg.unlink(name)
print("python: connreg %s from %s: round trip OK" % (connreg.__version__, pkg))
EOF
	)

	echo "-- C++ consumer (connreg.hpp) through pkg-config"
	test -f "$prefix/include/connreg.hpp"
	cat >"$work/consumer.cpp" <<'EOF'
#include <connreg.hpp>

#include <unistd.h>

#include <cstdio>
#include <string>

int main()
{
	const std::string name = "/connreg-install-cxx-" + std::to_string(getpid());
	std::uint64_t t = 0;
	try {
		connreg::registry reg = connreg::registry::create(name, {16});
		reg.insert_or_assign("conn-1", 42);
		t = reg.find("conn-1").value_or(0);
		connreg::unlink(name);
	} catch (const std::system_error &e) {
		std::fprintf(stderr, "%s\n", e.what());
		connreg_unlink(name.c_str());
		return 1;
	}
	std::printf("c++: round trip %s\n", t == 42 ? "OK" : "FAILED");
	return t == 42 ? 0 : 1;
}
EOF
	pc_cflags="$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags connreg)"
	pc_libs="$(PKG_CONFIG_PATH="$pcdir" pkg-config --libs connreg)"
	for cxx in g++ "$(command -v clang++ || command -v clang++-14)"; do
		# shellcheck disable=SC2086
		"$cxx" -std=c++17 -Wall -Wextra -pedantic -Werror $pc_cflags "$work/consumer.cpp" \
			-o "$work/consumer-cxx" $pc_libs
		LD_LIBRARY_PATH="$libdir" "$work/consumer-cxx"
	done

	echo "-- C++ consumer (connreg.hpp) through find_package(connreg)"
	mkdir -p "$work/cmake-cxx"
	cp "$work/consumer.cpp" "$work/cmake-cxx/consumer.cpp"
	cat >"$work/cmake-cxx/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(connreg_cxx_consumer CXX)
find_package(connreg REQUIRED)
add_executable(consumer_cxx consumer.cpp)
target_compile_features(consumer_cxx PRIVATE cxx_std_17)
set_target_properties(consumer_cxx PROPERTIES CXX_EXTENSIONS OFF)
target_link_libraries(consumer_cxx PRIVATE connreg::connreg)
EOF
	cmake -S "$work/cmake-cxx" -B "$work/cmake-cxx/build" -DCMAKE_PREFIX_PATH="$prefix" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-Wall -Wextra -pedantic -Werror"
	cmake --build "$work/cmake-cxx/build" -j"$JOBS"
	"$work/cmake-cxx/build/consumer_cxx"
}

# ---------------------------------------------------------------------------
# Install check: install into a temporary prefix, then build and run
# consumers through pkg-config and through find_package(connreg).
# ---------------------------------------------------------------------------
install_check() {
	local tmp prefix work pcdir libdir so hdr_funcs missing extra
	tmp="$(mktemp -d "${TMPDIR:-/tmp}/connreg-install.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	prefix="$tmp/prefix"
	work="$tmp/consumer"
	mkdir -p "$work"

	cmake --install "$BUILD_DIR" --prefix "$prefix"

	pcdir="$(dirname "$(find "$prefix" -name connreg.pc -print -quit)")"
	[ -f "$pcdir/connreg.pc" ] || {
		echo "connreg.pc was not installed" >&2
		return 1
	}
	libdir="$(dirname "$pcdir")"
	echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
	test -f "$prefix/include/connreg.h"
	test -f "$libdir/libconnreg.a"
	so="$libdir/libconnreg.so"
	test -e "$so"
	test -f "$libdir/cmake/connreg/connregConfig.cmake"

	# The Python package and C++ consumers (above), first: they depend only
	# on what was just installed.
	install_check_bindings "$prefix" "$libdir" "$pcdir" "$work"

	# Exported dynamic symbols: every CONNREG_API function of the header,
	# and nothing else that is not a connreg_ name.
	hdr_funcs="$(grep -oE '^CONNREG_API[^(]*\bconnreg_[a-z_]+\(' "$ROOT/include/connreg.h" |
		grep -oE 'connreg_[a-z_]+' | sort -u)"
	local dyn
	# Every export carries the CONNREG_1.0 version node (src/connreg.map).
	dyn="$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ {print $3}' | sed 's/@@*CONNREG_[0-9.]*$//' | sort -u)"
	if nm -D --defined-only "$so" | awk '$3 ~ /^connreg_/ && $3 !~ /@@CONNREG_1\.0$/ {print; bad=1} END {exit !bad}'; then
		echo "libconnreg.so exports connreg_* symbols without the CONNREG_1.0 version" >&2
		return 1
	fi
	missing="$(comm -23 <(echo "$hdr_funcs") <(echo "$dyn"))"
	extra="$(echo "$dyn" | grep -v '^connreg_' || true)"
	if [ -n "$missing" ]; then
		echo "libconnreg.so does not export: $missing" >&2
		return 1
	fi
	if [ -n "$extra" ]; then
		echo "libconnreg.so exports symbols outside the API: $extra" >&2
		return 1
	fi
	echo "exported symbols OK: $(echo "$hdr_funcs" | tr '\n' ' ')"

	cat >"$work/consumer.c" <<'EOF'
#include <connreg.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char name[64];
	connreg_t *reg = NULL;
	connreg_config_t cfg;
	uint64_t t = 0;
	int rc;

	printf("connreg %d.%d: connreg_strerror(-2) = \"%s\"\n", CONNREG_VERSION_MAJOR,
	       CONNREG_VERSION_MINOR, connreg_strerror(-2));
	if (connreg_strerror(-ENOENT) == NULL || strstr(connreg_strerror(-ENOENT), "ENOENT") == NULL)
		return 1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = 16;
	snprintf(name, sizeof(name), "/connreg-install-check-%ld", (long)getpid());
	rc = connreg_create(name, &cfg, &reg);
	if (rc != 0) {
		fprintf(stderr, "connreg_create: %s\n", connreg_strerror(rc));
		return 1;
	}
	rc = connreg_register(reg, "conn-1", 6, 42);
	if (rc == 0)
		rc = connreg_get_transport(reg, "conn-1", 6, &t);
	connreg_close(reg);
	connreg_unlink(name);
	if (rc != 0 || t != 42) {
		fprintf(stderr, "register/get_transport: %s, transport %llu\n", connreg_strerror(rc),
			(unsigned long long)t);
		return 1;
	}
	printf("round trip OK\n");
	return 0;
}
EOF

	echo "-- pkg-config consumer (shared)"
	local pc_cflags pc_libs
	pc_cflags="$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags connreg)"
	pc_libs="$(PKG_CONFIG_PATH="$pcdir" pkg-config --libs connreg)"
	echo "pkg-config connreg: version $(PKG_CONFIG_PATH="$pcdir" pkg-config --modversion connreg)," \
		"cflags '$pc_cflags', libs '$pc_libs'"
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror $pc_cflags "$work/consumer.c" -o "$work/consumer-pc" $pc_libs
	LD_LIBRARY_PATH="$libdir" "$work/consumer-pc"
	# grep without -q reads all of ldd's output (no SIGPIPE under pipefail).
	if LD_LIBRARY_PATH="$libdir" ldd "$work/consumer-pc" | grep "libconnreg.so.1 => $libdir" >/dev/null; then :; else
		echo "consumer-pc is not using the installed libconnreg.so.1:" >&2
		LD_LIBRARY_PATH="$libdir" ldd "$work/consumer-pc" >&2
		return 1
	fi

	echo "-- pkg-config consumer (static)"
	pc_libs="$(PKG_CONFIG_PATH="$pcdir" pkg-config --static --libs connreg)"
	pc_libs="${pc_libs//-lconnreg/}"
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror $pc_cflags "$work/consumer.c" -o "$work/consumer-pc-static" \
		"$libdir/libconnreg.a" $pc_libs
	"$work/consumer-pc-static"

	echo "-- find_package(connreg) consumer"
	mkdir -p "$work/cmake"
	cp "$work/consumer.c" "$work/cmake/consumer.c"
	cat >"$work/cmake/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(connreg_consumer C)
find_package(connreg 1.0 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE connreg::connreg)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE connreg::connreg_static)
EOF
	cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-Wall -Wextra -Werror"
	cmake --build "$work/cmake/build" -j"$JOBS"
	"$work/cmake/build/consumer"
	"$work/cmake/build/consumer_static"
	if ldd "$work/cmake/build/consumer" | grep "libconnreg.so.1 => $libdir" >/dev/null; then :; else
		echo "CMake consumer is not using the installed libconnreg.so.1:" >&2
		ldd "$work/cmake/build/consumer" >&2
		return 1
	fi

}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
echo "connreg setup.sh $MODE in $ROOT (jobs: $JOBS)"

run_step "packages: ${PACKAGES[*]}" install_packages
run_step "build: Release (-O2 -g, -Werror) in build/" configure_release

if [ "$MODE" = demo ]; then
	run_step "demo: build/connreg-demo" run_demo
	exit 0
fi

# test: keep going after a failing suite so that the summary shows every
# result; exit status is non-zero if anything failed.
run_step "tests: Release suite (ctest build/)" run_ctest "$BUILD_DIR" || true
if run_step "build: Debug + address,undefined sanitizers in build-asan/" configure_asan; then
	run_step "tests: ASan+UBSan suite (ctest build-asan/)" run_ctest "$ASAN_DIR" || true
else
	skip_step "tests: ASan+UBSan suite (ctest build-asan/)"
fi
run_step "tests: ThreadSanitizer (stress_threads, demo) in build-tsan/" tsan_check || true
if [ -x "$ROOT/tests/fuzz_open.sh" ]; then
	run_step "fuzz: connreg_open on corrupt segments (libFuzzer, ${FUZZ_SECONDS:-60} s)" fuzz_check || true
fi
if [ -x "$ROOT/tests/connregd_smoke.sh" ]; then
	run_step "tests: connregd end to end (curl, connreg stat --prometheus, systemd-analyze)" \
		"$ROOT/tests/connregd_smoke.sh" "$BUILD_DIR" || true
fi
run_step "tests: Python binding (pytest) and C++ header (g++, clang++)" bindings_check || true
run_step "tests: Elixir binding (mix test in bindings/elixir)" elixir_check || true
run_step "install check: cmake --install, pkg-config and find_package consumers" install_check || true

[ "$FAILED" -eq 0 ]
