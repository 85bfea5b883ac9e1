#!/bin/sh
# Runs the arm64 build under qemu-user: the unit test programs given as arguments, then
# smoke.sh (the CLI), all through tests/run.sh for the usual "N passed, M failed".
# Each binary gets a one-line wrapper in $BUILD/qemu that execs it under $QEMU, so
# tests/run.sh and the CLI scripts call it as they call a native program ("$MOEPACK" ...).
# Called by `make test-arm64`, which sets BUILD (build-arm64), QEMU and, for the
# comparisons in smoke.sh, NATIVE_MOEPACK and NATIVE_SYNTH.
: "${BUILD:?run through make test-arm64}" "${QEMU:?run through make test-arm64}"
cd "$(dirname "$0")/../.." || exit 3
wrappers=$BUILD/qemu
mkdir -p "$wrappers" || exit 3

# wrap BINARY: writes $wrappers/NAME running BINARY under qemu with the given arguments.
wrap() {
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$QEMU" "$1" >"$wrappers/${1##*/}" && chmod +x "$wrappers/${1##*/}"
}

wrap "$BUILD/moepack" && wrap "$BUILD/synth" || exit 3
tests=""
for t in "$@"; do
    wrap "$t" || exit 3
    tests="$tests $wrappers/${t##*/}"
done
# shellcheck disable=SC2086
MOEPACK=$wrappers/moepack SYNTH=$wrappers/synth exec sh tests/run.sh $tests tests/arm64/smoke.sh
