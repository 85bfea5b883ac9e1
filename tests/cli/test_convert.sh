#!/bin/sh
# moepack convert / check / inspect PACK on the bundled model and on synthetic
# checkpoints of every family.
. "$(dirname "$0")/lib.sh"
: "${SYNTH:?run through make test}" "${BUILD:?run through make test}"
TINY=tests/data/tiny-qwen3moe

expect_exit "convert --help" 0 "$MOEPACK" convert --help
expect_contains "convert --help documents --encode" "$TMP/out" "--encode REGEX=ENC"
expect_exit "check --help" 0 "$MOEPACK" check --help
expect_exit "convert without -o" 2 "$MOEPACK" convert "$TINY"
expect_exit "convert with a bad scheme" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --scheme w3
expect_exit "convert with a bad group" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --group 48
expect_exit "convert with a bad --encode" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --encode 'attn=w5'
expect_exit "convert with a bad regex" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --keep '('
expect_exit "--encode that cannot hold a tensor" 2 "$MOEPACK" convert "$TINY" -o "$TMP/x.mpk" --encode 'q_norm=w4g64'
expect_contains "the tensor is named" "$TMP/err" "tensor 'layers.0.attn.q_norm'"
[ -e "$TMP/x.mpk" ] && fail "a failed convert leaves no pack" || pass "a failed convert leaves no pack"
ls "$TMP" | grep -q 'x.mpk.tmp' && fail "a failed convert leaves no temporary" || pass "a failed convert leaves no temporary"

# Every scheme, twice (1 and 2 threads): same bytes, intact, and what was asked for.
for scheme in bf16 fp8 w4a16 mixed; do
    for t in 1 2; do
        expect_exit "convert $scheme --threads $t" 0 "$MOEPACK" convert "$TINY" -o "$TMP/$scheme-$t.mpk" \
            --scheme "$scheme" --threads "$t" --method mse --cold-codec zstd --quiet
    done
    if diff -r -x build.json "$TMP/$scheme-1.mpk" "$TMP/$scheme-2.mpk" >/dev/null; then pass "$scheme: identical at 1 and 2 threads"
    else fail "$scheme: identical at 1 and 2 threads"; fi
    expect_exit "$scheme: check" 0 "$MOEPACK" check "$TMP/$scheme-1.mpk"
    expect_exit "$scheme: inspect" 0 "$MOEPACK" inspect --json "$TMP/$scheme-1.mpk"
    cp "$TMP/out" "$TMP/$scheme.json"
done
expect_contains "bf16 pack is all bf16" "$TMP/bf16.json" '"bits_per_weight": 16.0'
expect_contains "fp8 pack has fp8 blocks" "$TMP/fp8.json" '"fp8-block"'
expect_contains "w4a16 pack has w4g128" "$TMP/w4a16.json" '"w4g128"'
expect_contains "mixed pack has fp8 attention" "$TMP/mixed.json" '"fp8-block"'
expect_contains "mixed pack has w4 experts" "$TMP/mixed.json" '"w4g128"'
expect_contains "the tokenizer travels with the pack" "$TMP/w4a16-1.mpk/tokenizer.json" '"model"'

# Overrides: --keep wins over the scheme, --encode sets a tensor's encoding.
expect_exit "convert with overrides" 0 "$MOEPACK" convert "$TINY" -o "$TMP/o.mpk" --quiet \
    --keep 'layers\.1\.attn' --encode 'experts\.[0-3]\.down=fp8-channel' --encode 'experts=w4g32-sym'
"$MOEPACK" inspect --json "$TMP/o.mpk" >"$TMP/o.json"
expect_contains "--encode fp8-channel used" "$TMP/o.json" '"fp8-channel"'
expect_contains "--encode w4g32-sym used" "$TMP/o.json" '"w4g32-sym"'
grep -o '"layers.1.attn.q","source":"[^"]*","shape":\[[0-9,]*\],"encoding":"bf16"' "$TMP/o.mpk/manifest.json" >/dev/null \
    && pass "--keep leaves attention of layer 1 in bf16" || fail "--keep leaves attention of layer 1 in bf16"

# An existing output is not overwritten without --force.
expect_exit "existing pack is refused" 2 "$MOEPACK" convert "$TINY" -o "$TMP/o.mpk" --quiet
expect_exit "--force replaces it" 0 "$MOEPACK" convert "$TINY" -o "$TMP/o.mpk" --quiet --force --scheme bf16
expect_exit "replaced pack checks" 0 "$MOEPACK" check "$TMP/o.mpk"

# Every family, every scheme, with the checkpoint's storage (FP8 blocks, MXFP4).
for fam in "mixtral" "qwen2_moe --dense-layers 1" "olmoe" "deepseek_v2" "deepseek_v3 --fp8 --shards 3" \
           "glm4_moe --fp8" "gpt_oss --mxfp4" "gpt_oss"; do
    fam_dir=$(echo "$fam" | tr ' ' '_')
    # shellcheck disable=SC2086
    "$SYNTH" --family $fam -o "$TMP/$fam_dir" >/dev/null 2>&1 || { fail "$fam_dir: synth"; continue; }
    for scheme in w4a16 fp8 mixed; do
        expect_exit "$fam_dir: convert $scheme" 0 "$MOEPACK" convert "$TMP/$fam_dir" -o "$TMP/$fam_dir-$scheme.mpk" --scheme "$scheme" --quiet
        expect_exit "$fam_dir: check $scheme" 0 "$MOEPACK" check --quiet "$TMP/$fam_dir-$scheme.mpk"
    done
done

# A DeepSeek FP8 checkpoint converted to fp8 blocks keeps its bits: the pack decodes to
# exactly what the checkpoint decodes to (eh_proj is bf16 in the checkpoint: requantized).
mkdir -p "$TMP/ck" "$TMP/pk"
"$BUILD/ckpt_dump" "$TMP/deepseek_v3_--fp8_--shards_3" "$TMP/ck" && "$BUILD/pack_dump" "$TMP/deepseek_v3_--fp8_--shards_3-fp8.mpk" "$TMP/pk"
same=0 differ=""
for f in "$TMP"/ck/*attn*.f32 "$TMP"/ck/*experts*.f32 "$TMP"/ck/*shared*.f32 "$TMP"/ck/*mlp*.f32; do
    if cmp -s "$f" "$TMP/pk/$(basename "$f")"; then same=$((same + 1)); else differ="$differ $(basename "$f")"; fi
done
if [ -z "$differ" ] && [ "$same" -gt 50 ]; then pass "fp8 checkpoint -> fp8 pack is bit-exact ($same tensors)"
else fail "fp8 checkpoint -> fp8 pack is bit-exact" "differ:$differ"; fi

# Corruption: a flipped byte anywhere in a tier file is found (exit 3, record named).
pack=$TMP/w4a16-1.mpk
for tier in 0 1; do
    size=$(wc -c <"$pack/tier-$tier.bin")
    missed=0 tried=0
    for off in 0 9 20 56 63 64 100 4095 4096 $((size / 3)) $((size / 2)) $((size - 2)) $((size - 1)); do
        [ "$off" -ge "$size" ] && continue
        cp -r "$pack" "$TMP/bad.mpk"
        byte=$(od -An -tu1 -j "$off" -N1 "$TMP/bad.mpk/tier-$tier.bin" | tr -d ' ')
        printf "$(printf '\\%03o' $(( (byte + 1) % 256 )))" | dd of="$TMP/bad.mpk/tier-$tier.bin" bs=1 seek="$off" conv=notrunc 2>/dev/null
        "$MOEPACK" check --quiet "$TMP/bad.mpk" >/dev/null 2>"$TMP/err"
        rc=$?
        tried=$((tried + 1))
        [ "$rc" -eq 3 ] || [ "$rc" -eq 2 ] || { missed=$((missed + 1)); echo "missed flip at tier $tier byte $off (exit $rc)"; }
        rm -rf "$TMP/bad.mpk"
    done
    [ "$missed" -eq 0 ] && pass "tier $tier: all $tried flipped bytes caught" || fail "tier $tier: flipped bytes caught" "$missed missed"
done
cp -r "$pack" "$TMP/bad.mpk"
printf 'X' | dd of="$TMP/bad.mpk/tier-1.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_exit "corrupt record: exit 3" 3 "$MOEPACK" check "$TMP/bad.mpk"
expect_contains "corrupt record is named" "$TMP/err" "tier-1.bin record"
sed 's/"w4"/"w5"/' "$pack/manifest.json" >"$TMP/bad.mpk/manifest.json"
expect_exit "edited manifest: exit 3" 3 "$MOEPACK" check "$TMP/bad.mpk"
rm -rf "$TMP/bad.mpk"

# A killed convert leaves nothing under the final name (SIGKILL) and no temporary (SIGTERM).
"$SYNTH" --family qwen3_moe --layers 8 --hidden 512 --experts 16 --moe-inter 512 -o "$TMP/big" >/dev/null 2>&1
for sig in KILL TERM; do
    "$MOEPACK" convert "$TMP/big" -o "$TMP/killed.mpk" --method mse --threads 1 --quiet 2>/dev/null &
    pid=$!
    sleep 0.3
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    if [ "$status" -eq 0 ]; then
        skip "killed convert ($sig)" "finished before the signal"
        rm -rf "$TMP/killed.mpk"
        continue
    fi
    [ -e "$TMP/killed.mpk" ] && fail "SIG$sig: no pack under the final name" || pass "SIG$sig: no pack under the final name"
    if [ "$sig" = KILL ]; then
        rm -rf "$TMP"/killed.mpk.tmp-* # SIGKILL cannot be caught: the temporary stays
    else
        ls "$TMP" | grep -q 'killed.mpk.tmp' && fail "SIGTERM: temporary removed" || pass "SIGTERM: temporary removed"
    fi
done
