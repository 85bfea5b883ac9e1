#!/bin/sh
# What checksumming every record read costs (every reader checks a record's xxh3; no
# option skips it). On moby-mixtral's w4a16 pack:
# - `moepack check`: every record read, checksummed and decoded, over the pack's tier
#   bytes, against this machine's memory read bandwidth (kern_bench) as the baseline;
# - that whole read as a share of `moepack verify` over 8 chunks of 256 tokens at one
#   thread, which reads each record once: the most the checksums can add to it.
: "${MOEPACK:?run through make bench}" "${KERN_BENCH:?run through make bench}"
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
M=$SHARED/models/moby-mixtral
if [ ! -d "$M" ]; then
    echo "SKIP: $M is absent"
    exit 0
fi
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-bench-sum-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

"$MOEPACK" convert "$M" -o "$dir/p.mpk" --scheme w4a16 --quiet >/dev/null || exit 1
"$MOEPACK" reference "$M" --text "$SHARED/corpus/eval.txt" --ctx 256 --chunks 8 -o "$dir/eval.ref" --quiet \
    >/dev/null || exit 1
bytes=$(cat "$dir"/p.mpk/tier-*.bin | wc -c)
bw=$("$KERN_BENCH" --bandwidth | sed -n 's/.*1T \([0-9.]*\) GB\/s.*/\1/p')

# best of 5 wall times of a command, in seconds (/usr/bin/time: 10 ms resolution)
best_of_5() {
    best=
    for i in 1 2 3 4 5; do
        /usr/bin/time -f %e -o "$dir/t" "$@" >/dev/null 2>&1 || { echo "FAIL: $*" >&2; exit 1; }
        t=$(cat "$dir/t")
        best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}
check=$(best_of_5 "$MOEPACK" check "$dir/p.mpk" --quiet)
verify=$(best_of_5 "$MOEPACK" verify "$dir/p.mpk" --reference "$dir/eval.ref" --threads 1 --quiet)
awk -v b="$bytes" -v c="$check" -v v="$verify" -v bw="$bw" 'BEGIN {
    rate = c > 0 ? b / c / 1e9 : 0
    printf "check, whole process (start-up and manifest included): %d tier bytes read, checksummed and decoded in %.3f s = at least %.2f GB/s (%.2fx the %.2f GB/s memory read bandwidth)\n", b, c, rate, rate / bw, bw
    printf "verify, 8 chunks x 256 tokens, 1 thread: %.2f s; a whole checked read of the pack is %.1f%% of it\n", v, 100 * c / v
}'
