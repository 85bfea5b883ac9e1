#!/bin/sh
# What expert pruning costs on moby-mixtral (issue 16, item 4): the w4a16 pack pruned to
# 75% and 50% of its experts with each saliency (freq, REAP, EAN), each plain
# (--no-refit-router), with the router refit, merged (--merge --no-refit-router) and
# merged with the refit; per pack the KLD, PPL and same top-1 against moepack reference
# of the checkpoint on eval.txt at ctx 256, the pack bytes (tier files) and the bytes of
# its GGUF export. When moepack distill exists: the best variant of each (keep, method)
# distilled against the checkpoint (a "+distill" column), and the distill gain on the
# w4a16 RTN pack, the GPTQ pack and the best pack within 9,118,656 GGUF bytes (llama.cpp's
# exps-q4_k row; bench_quality_gguf.sh's recipe). Without it: "distill: not available".
#
# The KLD is on the first $BENCH_PRUNE_CHUNKS chunks of eval.txt (default 200 of 817:
# a full-eval verify takes ~75 s here, and this bench verifies ~25 packs); the table
# header says how many. Writes the tables as JSON and a KLD (log) vs pack bytes plot
# (SVG, one series per method and variant, keep 0.75 and 0.5 points) to $BENCH_OUT
# (default bench/out).
: "${MOEPACK:?run through make bench}"
set -f # the encode rules hold regex brackets: never globs
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
M=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt
PY=${PYTHON:-/usr/bin/python3}
CHUNKS=${BENCH_PRUNE_CHUNKS:-200}
if [ ! -d "$M" ]; then
    echo "SKIP: bench_prune (../shared absent)"
    exit 0
fi
OUT=${BENCH_OUT:-$(dirname "$0")/out}
mkdir -p "$OUT"
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-prune-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM # so that the EXIT trap also runs when interrupted
start=$(date +%s)

"$MOEPACK" reference "$M" --text "$SHARED/corpus/eval.txt" --ctx 256 --chunks "$CHUNKS" -o "$dir/eval.ref" --quiet ||
    exit 1

# measure NAME KIND KEEP METHOD VARIANT: GGUF export and verify of $dir/NAME.mpk; appends
# to $dir/rows the fields given, the GGUF bytes and the pack bytes (its tier files).
measure() {
    _n=$1; shift
    "$MOEPACK" export "$dir/$_n.mpk" --to gguf -o "$dir/$_n.gguf" --quiet >/dev/null || { echo "export $_n failed"; exit 1; }
    "$MOEPACK" verify "$dir/$_n.mpk" --reference "$dir/eval.ref" --json --quiet >"$dir/$_n.verify.json" ||
        { echo "verify $_n failed"; exit 1; }
    _bytes=$(find "$dir/$_n.mpk" -name 'tier-*.bin' -exec stat -c %s {} + | awk '{ s += $1 } END { print s }')
    echo "$_n $* $(stat -c %s "$dir/$_n.gguf") $_bytes" >>"$dir/rows"
    rm -f "$dir/$_n.gguf"
}

have_distill=""
"$MOEPACK" distill --help >/dev/null 2>&1 && have_distill=yes

# distill NAME: $dir/NAME.mpk distilled against the checkpoint into NAME+d, measured.
distill() {
    if "$MOEPACK" distill --teacher "$M" --student "$dir/$1.mpk" --calib "$CALIB" -o "$dir/$1+d.mpk" \
        >"$dir/$1+d.log" 2>&1; then
        measure "$1+d" "$2" "$3" "$4" "$5+distill"
    else
        echo "distill $1 failed: $(tail -n 1 "$dir/$1+d.log")"
    fi
}

"$MOEPACK" convert "$M" -o "$dir/w4.mpk" --scheme w4a16 --quiet >/dev/null || exit 1
measure w4 base 1 - w4a16

for keep in 0.75 0.5; do
    for method in freq reap ean; do
        for variant in plain refit merge merge+refit; do
            case $variant in
            plain) flags="--no-refit-router" ;;
            refit) flags="--refit-router" ;;
            merge) flags="--merge --no-refit-router" ;;
            merge+refit) flags="--merge --refit-router" ;;
            esac
            n=p$keep-$method-$variant
            # shellcheck disable=SC2086
            "$MOEPACK" prune "$dir/w4.mpk" -o "$dir/$n.mpk" --calib "$CALIB" --keep $keep --method $method $flags \
                --quiet || { echo "prune $n failed"; exit 1; }
            measure "$n" prune "$keep" "$method" "$variant"
        done
        if [ -n "$have_distill" ]; then # the best of the four, distilled
            best=$("$PY" -c '
import json, sys
d, rows = sys.argv[1], [l.split() for l in open(sys.argv[1] + "/rows")]
c = [r for r in rows if r[1] == "prune" and r[2] == sys.argv[2] and r[3] == sys.argv[3]]
print(min(c, key=lambda r: json.load(open(d + "/" + r[0] + ".verify.json"))["kld_mean"])[0])' "$dir" $keep $method)
            distill "$best" prune "$keep" "$method" "${best##*-}"
        fi
        find "$dir" -maxdepth 1 -name "p$keep-$method-*.mpk" -exec rm -rf {} +
    done
done

if [ -n "$have_distill" ]; then
    distill w4 base 1 - w4a16
    "$MOEPACK" convert "$M" -o "$dir/gptq.mpk" --scheme w4a16 --method gptq --calib "$CALIB" --quiet >/dev/null || exit 1
    measure gptq base 1 - gptq
    distill gptq base 1 - gptq
    # bench_quality_gguf.sh's pack for the exps-q4_k row (9,118,656 bytes): q8_0 embeddings,
    # head and attention; experts GPTQ onto iq4_xs..q8_0 by --bits from a probe export.
    budget=9118656
    rules="--encode ^(embed|lm_head)\$|attn\.[qkvo]\$=q8_0"
    "$MOEPACK" profile "$M" --text "$CALIB" -o "$dir/calib.stats" --quiet >/dev/null || exit 1
    # shellcheck disable=SC2086
    "$MOEPACK" convert "$M" -o "$dir/probe.mpk" --scheme q8_0 $rules --quiet >/dev/null || exit 1
    "$MOEPACK" export "$dir/probe.mpk" --to gguf -o "$dir/probe.gguf" --quiet >/dev/null || exit 1
    bits=$("$PY" - "$dir/probe.mpk" "$(stat -c %s "$dir/probe.gguf")" $budget <<'PY'
import json, math, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
t = [t for t in m["tensors"] if len(t["shape"]) == 2 and ".experts." in t["name"]]
params = sum(x["shape"][0] * x["shape"][1] for x in t)
q8 = sum(-(-x["shape"][0] * x["shape"][1] * 34 // 32 // 32) * 32 for x in t)
print(math.floor(8 * (int(sys.argv[3]) - (int(sys.argv[2]) - q8)) / params * 1e4) / 1e4)
PY
)
    # shellcheck disable=SC2086
    "$MOEPACK" convert "$M" -o "$dir/best.mpk" --method gptq --calib "$CALIB" $rules --bits "$bits" \
        --bits-encodings iq4_xs,q4_k,q5_k,q6_k,q8_0 --bits-stacked --stats "$dir/calib.stats" --quiet >/dev/null || exit 1
    measure best base 1 - "best<=$budget"
    distill best base 1 - "best<=$budget"
fi

"$PY" - "$dir" "$OUT" "$CHUNKS" "$have_distill" "$(($(date +%s) - start))" <<'PY'
import json, math, sys
d, out, chunks, have_distill, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "yes", int(sys.argv[5])
rows = []
for name, kind, keep, method, variant, gguf, pack in (l.split() for l in open(d + "/rows")):
    v = json.load(open(d + "/" + name + ".verify.json"))
    rows.append({"name": name, "kind": kind, "keep": float(keep), "method": method, "variant": variant,
                 "kld": v["kld_mean"], "kld_p99": v["kld_p99"], "ppl": v["ppl"], "top1": v["same_top1"],
                 "gguf_bytes": int(gguf), "pack_bytes": int(pack), "chunks": v["chunks"]})
base = next(r for r in rows if r["name"] == "w4")
print("\nTable A: moby-mixtral w4a16 pruned; KLD/PPL/top-1 on the first %d chunks of eval.txt (ctx 256)" % base["chunks"])
print("%-5s %-5s %-12s %9s %8s %7s %10s %10s %9s" % ("keep", "meth", "variant", "KLD", "PPL", "top-1", "pack B",
      "GGUF B", "+distill"))
print("%-5s %-5s %-12s %9.5f %8.2f %6.2f%% %10d %10d %9s" % ("1", "-", "w4a16", base["kld"], base["ppl"], base["top1"],
      base["pack_bytes"], base["gguf_bytes"], ""))
pruned = [r for r in rows if r["kind"] == "prune" and not r["variant"].endswith("+distill")]
for r in pruned:
    dist = [x for x in rows if x["name"] == r["name"] + "+d"]
    col = "%.5f" % dist[0]["kld"] if dist else ("-" if have_distill else "")
    print("%-5g %-5s %-12s %9.5f %8.2f %6.2f%% %10d %10d %9s" % (r["keep"], r["method"], r["variant"], r["kld"], r["ppl"],
          r["top1"], r["pack_bytes"], r["gguf_bytes"], col))
table_b = []
if not have_distill:
    print("\ndistill: not available (moepack distill --help did not exit 0): no +distill column, no Table B")
else:
    print("\nTable B: distill gain (KLD on the first %d chunks)" % base["chunks"])
    print("%-20s %10s %10s %8s %10s" % ("pack", "before", "after", "ratio", "GGUF B"))
    for name in ("w4", "gptq", "best"):
        b = [r for r in rows if r["name"] == name]
        a = [r for r in rows if r["name"] == name + "+d"]
        if b and a:
            table_b.append({"pack": b[0]["variant"], "before": b[0]["kld"], "after": a[0]["kld"],
                            "ratio": a[0]["kld"] / b[0]["kld"], "gguf_bytes": b[0]["gguf_bytes"]})
            print("%-20s %10.5f %10.5f %8.3f %10d" % (b[0]["variant"], b[0]["kld"], a[0]["kld"], a[0]["kld"] / b[0]["kld"],
                  b[0]["gguf_bytes"]))
        elif b:
            print("%-20s %10.5f %10s" % (b[0]["variant"], b[0]["kld"], "failed"))
json.dump({"chunks": base["chunks"], "seconds": seconds, "distill": have_distill, "table_a": rows, "table_b": table_b},
          open(out + "/prune.json", "w"), indent=1)

# KLD (log) against pack bytes: one series per method and variant, keep 0.75 and 0.5
W, H, L, B = 720, 460, 84, 50
series = {}
for r in rows:
    if r["kind"] == "prune":
        series.setdefault((r["method"], r["variant"]), []).append((r["pack_bytes"] / 1e6, r["kld"], r["keep"]))
pts = [p for s in series.values() for p in s] + [(base["pack_bytes"] / 1e6, base["kld"], 1)]
xs, ys = [p[0] for p in pts], [math.log10(p[1]) for p in pts]
x0, x1 = min(xs) - 0.3, max(xs) + 0.3
y0, y1 = math.floor(min(ys) * 4) / 4, math.ceil(max(ys) * 4) / 4
X = lambda x: L + (x - x0) / (x1 - x0) * (W - L - 180)
Y = lambda y: 20 + (y1 - math.log10(y)) / (y1 - y0) * (H - 20 - B)
color = {"freq": "#1f77b4", "reap": "#d62728", "ean": "#2ca02c"}
dash = {"plain": "", "refit": "6,3", "merge": "2,2", "merge+refit": "8,2,2,2"}
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="%d" y="%d" text-anchor="middle">pack bytes (MB, tier files)</text>' % ((W - 180 + L) // 2, H - 12),
       '<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">mean KLD, %d chunks of eval.txt (log)</text>'
       % (H // 2, H // 2, base["chunks"])]
for k in range(int(y0 * 4), int(y1 * 4) + 1):
    y = 10 ** (k / 4)
    svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.3g</text>'
               % (L, W - 180, Y(y), Y(y), L - 4, Y(y) + 4, y))
for x in range(math.ceil(x0), math.floor(x1) + 1):
    svg.append('<line x1="%.1f" x2="%.1f" y1="20" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%d</text>'
               % (X(x), X(x), H - B, X(x), H - B + 14, x))
for i, ((method, variant), s) in enumerate(sorted(series.items())):
    s.sort()
    c, da = color[method], dash.get(variant.replace("+distill", ""), "")
    svg.append('<polyline fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s" points="%s"/>'
               % (c, da, " ".join("%.1f,%.1f" % (X(p[0]), Y(p[1])) for p in s)))
    for p in s:
        svg.append('<circle cx="%.1f" cy="%.1f" r="%s" fill="%s"><title>%s %s keep %g: %.3f MB, KLD %.5f</title></circle>'
                   % (X(p[0]), Y(p[1]), "5" if "distill" in variant else "3", c, method, variant, p[2], p[0], p[1]))
    svg.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>'
               '<text x="%d" y="%d">%s %s</text>' % (W - 170, W - 140, 30 + 15 * i, 30 + 15 * i, c, da, W - 135,
                                                     34 + 15 * i, method, variant))
svg.append('<rect x="%.1f" y="%.1f" width="7" height="7" fill="black"><title>w4a16 unpruned: KLD %.5f</title></rect>'
           '<text x="%.1f" y="%.1f">w4a16</text>' % (X(base["pack_bytes"] / 1e6) - 3.5, Y(base["kld"]) - 3.5, base["kld"],
                                                      X(base["pack_bytes"] / 1e6) - 40, Y(base["kld"]) + 4))
svg.append("</svg>")
open(out + "/prune.svg", "w").write("\n".join(svg))
print("bench_prune: %d s; table: %s/prune.json, plot: %s/prune.svg" % (seconds, out, out))
PY
