#!/usr/bin/env bash
# C++ tests of include/connreg.hpp: each test is compiled with g++ and with
# clang++ (-std=c++17 -Wall -Wextra -pedantic -Werror, plus stricter
# warnings a consumer may use), then run:
#
#   test_connreg_hpp.cpp   as C++17, and as C++20 (std::span ids)
#   test_noexcept.cpp      with -fno-exceptions (the error_code overloads)
#   the README's C++ example (the ```cpp block after "tested by tests/cpp/run.sh")
#
#   tests/cpp/run.sh [BUILD_DIR]   BUILD_DIR holds libconnreg.so (default: build/)
#
# Environment: CXXFLAGS (added first), JOBS (parallel compiles, default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
OUT="$BUILD/cpp-tests"
JOBS="${JOBS:-2}"
mkdir -p "$OUT"

if [ ! -e "$BUILD/libconnreg.so" ]; then
	echo "run.sh: no libconnreg.so in $BUILD: build the library first" >&2
	exit 1
fi

CLANGXX="$(command -v clang++ || command -v clang++-14 || true)"
if [ -z "$CLANGXX" ]; then
	echo "run.sh: clang++ not found (Debian package clang-14)" >&2
	exit 1
fi
COMPILERS=(g++ "$CLANGXX")

WARN=(-Wall -Wextra -pedantic -Werror -Wshadow -Wold-style-cast -Wconversion -Wsign-conversion
	-Wnon-virtual-dtor -Wcast-qual)
# shellcheck disable=SC2206
EXTRA=(${CXXFLAGS:-})
LINK=(-L"$BUILD" -lconnreg "-Wl,-rpath,$BUILD" -pthread)

# The README's C++ example, exactly as written there.
awk '/tested by tests\/cpp\/run.sh/ {armed = 1; next}
     armed && /^```cpp/ {inside = 1; next}
     inside && /^```/ {exit}
     inside {print}' "$ROOT/README.md" >"$OUT/readme_example.cpp"
if [ ! -s "$OUT/readme_example.cpp" ]; then
	echo "run.sh: README.md has no \`\`\`cpp block after 'tested by tests/cpp/run.sh'" >&2
	exit 1
fi

# name|compiler|flags...|source
BUILDS=()
for cxx in "${COMPILERS[@]}"; do
	tag="$(basename "$cxx")"
	BUILDS+=("hpp-cxx17-$tag|$cxx|-std=c++17|$ROOT/tests/cpp/test_connreg_hpp.cpp")
	BUILDS+=("hpp-cxx20-$tag|$cxx|-std=c++20|$ROOT/tests/cpp/test_connreg_hpp.cpp")
	BUILDS+=("noexcept-$tag|$cxx|-std=c++17 -fno-exceptions|$ROOT/tests/cpp/test_noexcept.cpp")
	BUILDS+=("readme-$tag|$cxx|-std=c++17|$OUT/readme_example.cpp")
done

compile() {
	local name="$1" cxx="$2" flags="$3" src="$4"
	rm -f "$OUT/$name" "$OUT/$name.failed"
	# shellcheck disable=SC2086
	if "$cxx" "${EXTRA[@]}" $flags "${WARN[@]}" -O1 -I"$ROOT/include" -I"$ROOT/tests/cpp" \
		"$src" -o "$OUT/$name" "${LINK[@]}" >"$OUT/$name.log" 2>&1; then
		return 0
	fi
	echo "--- compile failed: $name ($cxx $flags $src)" >&2
	cat "$OUT/$name.log" >&2
	touch "$OUT/$name.failed"
	return 1
}

t0=$SECONDS
failed=0
for b in "${BUILDS[@]}"; do
	IFS='|' read -r name cxx flags src <<<"$b"
	compile "$name" "$cxx" "$flags" "$src" &
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
done
wait || true
for b in "${BUILDS[@]}"; do
	IFS='|' read -r name _ <<<"$b"
	if [ -e "$OUT/$name.failed" ]; then failed=1; fi
done
echo "compiled ${#BUILDS[@]} programs in $((SECONDS - t0))s"
[ "$failed" -eq 0 ] || exit 1

for b in "${BUILDS[@]}"; do
	IFS='|' read -r name _ <<<"$b"
	echo "== $name"
	if ! "$OUT/$name"; then
		echo "--- FAILED: $name" >&2
		failed=1
	fi
done
exit "$failed"
