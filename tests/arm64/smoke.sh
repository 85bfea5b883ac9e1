#!/bin/sh
# The CLI of the arm64 build, run under qemu-user (MOEPACK and SYNTH are wrappers, see
# run.sh): a tiny synthetic mixtral and deepseek_v3, each converted to a w4a16 and a
# q4_0 pack, checked, a reference run on the checkpoint, each pack verified against it
# and run greedily. With NATIVE_MOEPACK and NATIVE_SYNTH (the x86-64 build) every step is repeated
# natively: checkpoints and packs must be the same bytes, the perplexities and KLDs the
# same within a relative 1e-4 and the same-top-1 share exactly the same.
#
# Why not the same to the last printed digit (7 significant): the forward pass runs its
# matrix products in OpenBLAS, whose sgemm kernel is chosen per CPU and sums in its own
# order. On one x86 machine OPENBLAS_CORETYPE=Prescott|Sandybridge|Haswell|Cooperlake
# moves the reference PPL of the deepseek_v3 here between 10753.5288 and 10753.5465; the
# arm64 build gives 10753.5415, inside that spread. Conversion does not use BLAS for
# these schemes, hence identical packs.
. "$(dirname "$0")/../cli/lib.sh"
: "${SYNTH:?run through make test-arm64}"
native() { [ -n "${NATIVE_MOEPACK:-}" ] && [ -n "${NATIVE_SYNTH:-}" ]; }

# json_num FILE KEY: the number after "KEY": in a moepack --json output.
json_num() { grep -o "\"$2\": *[-0-9.eE+]*" "$1" | head -1 | sed 's/.*: *//'; }

# same_figures NAME ARM64_JSON NATIVE_JSON KEY...: each KEY within a relative 1e-4,
# same_top1 exactly; prints both values on failure.
same_figures() {
    _name=$1 _a=$2 _n=$3; shift 3
    _bad=""
    for _k in "$@"; do
        _x=$(json_num "$_a" "$_k") _y=$(json_num "$_n" "$_k")
        if [ "$_k" = same_top1 ]; then _tol=0; else _tol=1e-4; fi
        awk -v x="$_x" -v y="$_y" -v t="$_tol" 'BEGIN {
            if (x == "" || y == "") exit 1
            d = x - y; if (d < 0) d = -d; m = (x < 0 ? -x : x); if ((y < 0 ? -y : y) > m) m = (y < 0 ? -y : y)
            exit !(d <= t * m) }' || _bad="$_bad $_k arm64 '$_x' native '$_y';"
    done
    if [ -z "$_bad" ]; then pass "$_name"; else fail "$_name" "$_bad"; fi
}

# the arm64 files in a/, the native ones under the same names in n/
mkdir -p "$TMP/a" "$TMP/n"
seq 0 63 | tr '\n' ' ' >"$TMP/ids.txt"
for fam in mixtral deepseek_v3; do
    ck=$TMP/a/$fam
    expect_exit "synth $fam" 0 "$SYNTH" --family "$fam" -o "$ck"
    if native; then
        "$NATIVE_SYNTH" --family "$fam" -o "$TMP/n/$fam" >/dev/null 2>&1
        if diff -r "$ck" "$TMP/n/$fam" >/dev/null; then pass "synth $fam: the same bytes as the native build"
        else fail "synth $fam: the same bytes as the native build" "$(diff -rq "$ck" "$TMP/n/$fam" | head -3)"; fi
    fi

    expect_exit "reference $fam" 0 "$MOEPACK" reference "$ck" --tokens "$TMP/ids.txt" --ctx 16 -o "$TMP/a/$fam.ref" --json
    cp "$TMP/out" "$TMP/a/$fam.ref.json"
    if native; then
        "$NATIVE_MOEPACK" reference "$ck" --tokens "$TMP/ids.txt" --ctx 16 -o "$TMP/n/$fam.ref" --json >"$TMP/n/$fam.ref.json" 2>&1
        same_figures "reference $fam: the native build's perplexity" "$TMP/a/$fam.ref.json" "$TMP/n/$fam.ref.json" ppl
    fi

    for scheme in w4a16 q4_0; do
        pack=$TMP/a/$fam-$scheme.mpk npack=$TMP/n/$fam-$scheme.mpk
        expect_exit "convert $fam --scheme $scheme" 0 "$MOEPACK" convert "$ck" -o "$pack" --scheme "$scheme" --quiet
        expect_exit "check $fam $scheme" 0 "$MOEPACK" check "$pack"
        expect_contains "check $fam $scheme: ok" "$TMP/out" ": ok,"
        expect_exit "verify $fam $scheme" 0 "$MOEPACK" verify "$pack" --reference "$TMP/a/$fam.ref" --json
        cp "$TMP/out" "$TMP/a/verify.json"
        if native; then
            "$NATIVE_MOEPACK" convert "$ck" -o "$npack" --scheme "$scheme" --quiet >/dev/null 2>&1
            # build.json holds the conversion's seconds and thread count
            if diff -r -x build.json "$pack" "$npack" >/dev/null; then pass "convert $fam $scheme: the same pack bytes as the native build"
            else fail "convert $fam $scheme: the same pack bytes as the native build" "$(diff -rq -x build.json "$pack" "$npack" | head -3)"; fi
            "$NATIVE_MOEPACK" verify "$npack" --reference "$TMP/n/$fam.ref" --json >"$TMP/n/verify.json" 2>&1
            same_figures "verify $fam $scheme: the native build's figures" "$TMP/a/verify.json" "$TMP/n/verify.json" \
                ppl ppl_reference kld_mean kld_median kld_p99 kld_max same_top1
        fi

        # moepack run, greedy, with the default kernels (8-bit activations, integer dot
        # products: kern_neon.c with dotprod here, the AVX2/AVX-512 kernels natively).
        # Synthetic checkpoints have no tokenizer: ids in, ids out.
        expect_exit "run $fam $scheme --temp 0" 0 "$MOEPACK" run "$pack" --prompt-ids "1 2 3 4 5 6 7 8" --max-tokens 16 --temp 0
        cp "$TMP/out" "$TMP/a/run.txt"
        if native; then
            "$NATIVE_MOEPACK" run "$npack" --prompt-ids "1 2 3 4 5 6 7 8" --max-tokens 16 --temp 0 >"$TMP/n/run.txt" 2>&1
            if [ "$(wc -w <"$TMP/a/run.txt")" -eq 16 ] && cmp -s "$TMP/a/run.txt" "$TMP/n/run.txt"; then
                pass "run $fam $scheme: the native build's 16 greedy tokens"
            else fail "run $fam $scheme: the native build's 16 greedy tokens" "arm64 '$(cat "$TMP/a/run.txt")' native '$(cat "$TMP/n/run.txt")'"; fi
        fi
    done
done
native || skip "arm64 against the native build" "NATIVE_MOEPACK/NATIVE_SYNTH not set"
