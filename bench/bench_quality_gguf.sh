#!/bin/sh
# The comparison users make: for each llama.cpp row of ../shared/models/README.md (what
# llama.cpp's quantizers lose on moby-mixtral, IQ4_XS through Q8_0), moepack's best pack
# whose exported GGUF has no more bytes than llama.cpp's file, with its KLD on the whole
# of eval.txt at ctx 256 (moepack verify against moepack reference, the llama-perplexity
# protocol). Rows of (nearly) the same size share one pack, made for the smallest.
#
# Each pack: GPTQ on calib.txt onto llama.cpp's grids, one encoding per stacked expert
# tensor (so the GGUF export copies every tensor bit for bit), chosen by --bits from the
# routing and input statistics of calib.txt, with the bits per weight worked out from
# the size: a probe export gives the GGUF bytes outside the planned tensors (metadata,
# tokenizer, norms, routers, and what rules fix: embeddings and output head q8_0 for the
# 8-bit budget; from 8.9 MB, where it fits, llama.cpp's exps-* recipe of q8_0 embeddings,
# head and attention with the experts planned; below, q4_k embeddings and a q6_k head).
# Every exported GGUF is read back by the NumPy reader (tests/ref/gguf_read.py) and
# compared with the pack's decoded values (tests/ref/gguf_vs_pack.py); the table says
# how many tensors are bit-exact.
# Prints the table with the KLD ratio to llama.cpp's, writes it as JSON and a
# bits-vs-KLD plot with both curves (SVG) to $BENCH_OUT (default bench/out).
: "${MOEPACK:?run through make bench}"
set -f # the encode rules hold regex brackets: never globs
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
M=$SHARED/models/moby-mixtral
CALIB=$SHARED/corpus/calib.txt
PY=${PYTHON:-/usr/bin/python3}
REF=$(cd "$(dirname "$0")/../tests/ref" && pwd)
PACK_DUMP=${PACK_DUMP:-$(dirname "$MOEPACK")/build/pack_dump}
if [ ! -d "$M" ]; then
    echo "SKIP: bench_quality_gguf (../shared absent)"
    exit 0
fi
OUT=${BENCH_OUT:-$(dirname "$0")/out}
mkdir -p "$OUT"
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/moepack-gguf-XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap also runs when interrupted

"$MOEPACK" reference "$M" --text "$SHARED/corpus/eval.txt" --ctx 256 -o "$dir/eval.ref" --quiet || exit 1
"$MOEPACK" profile "$M" --text "$CALIB" -o "$dir/calib.stats" --quiet >/dev/null || exit 1

# The llama.cpp rows: name, mean KLD, bytes.
sed -n 's/^| \([A-Za-z0-9_-]*\) | \([0-9.]*\) | [0-9.]* | [0-9.]* | [0-9.]*% | \([0-9]*\) |$/\1 \2 \3/p' \
    "$SHARED/models/README.md" >"$dir/rows"
[ -s "$dir/rows" ] || { echo "no llama.cpp rows found in $SHARED/models/README.md"; exit 1; }
# Budgets: the smallest file of each group of rows within 1 KiB of each other.
sort -k3,3n "$dir/rows" | awk '{ if (NR == 1 || $3 - last > 1024) print $3; last = $3 }' >"$dir/budgets"

# planned PACK bytes|params SCOPE: the GGUF bytes of the planned tensors if all were q8_0,
# or their weights; SCOPE is what --bits plans: "attn experts" or "experts".
planned() {
    "$PY" - "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
scope = ["." + s + "." for s in sys.argv[3].split()]
t = [t for t in m["tensors"] if len(t["shape"]) == 2 and any(s in t["name"] for s in scope)]
n = sum(x["shape"][0] * x["shape"][1] for x in t)
print(n if sys.argv[2] == "params" else sum(-(-x["shape"][0] * x["shape"][1] * 34 // 32 // 32) * 32 for x in t))
PY
}

for budget in $(cat "$dir/budgets"); do
    if [ "$budget" -ge 12000000 ]; then
        rules="--encode ^(embed|lm_head)\$=q8_0"; encodings=q6_k,q8_0,bf16; scope="attn experts"
    elif [ "$budget" -ge 8900000 ]; then # room for llama.cpp's "experts 4-bit, the rest Q8_0"
        rules="--encode ^(embed|lm_head)\$|attn\.[qkvo]\$=q8_0"; encodings=iq4_xs,q4_k,q5_k,q6_k,q8_0
        scope=experts
    else
        rules="--encode ^embed\$=q4_k --encode ^lm_head\$=q6_k"; encodings=iq4_xs,q4_k,q5_k,q6_k,q8_0
        scope="attn experts"
    fi
    # probe: the same fixed encodings, planned tensors all q8_0
    # shellcheck disable=SC2086
    "$MOEPACK" convert "$M" -o "$dir/probe.mpk" --scheme q8_0 $rules --force --quiet >/dev/null || exit 1
    "$MOEPACK" export "$dir/probe.mpk" --to gguf -o "$dir/probe.gguf" --force --quiet >/dev/null || exit 1
    fixed=$(( $(stat -c %s "$dir/probe.gguf") - $(planned "$dir/probe.mpk" bytes "$scope") ))
    params=$(planned "$dir/probe.mpk" params "$scope")
    bits=$("$PY" -c "import math; print(math.floor(8 * ($budget - $fixed) / $params * 1e4) / 1e4)")
    name=b$budget
    # shellcheck disable=SC2086
    "$MOEPACK" convert "$M" -o "$dir/$name.mpk" --method gptq --calib "$CALIB" $rules --bits "$bits" \
        --bits-encodings "$encodings" --bits-stacked --stats "$dir/calib.stats" --quiet >/dev/null || exit 1
    "$MOEPACK" export "$dir/$name.mpk" --to gguf -o "$dir/$name.gguf" --json --quiet >"$dir/$name.export.json" || exit 1
    "$MOEPACK" verify "$dir/$name.mpk" --reference "$dir/eval.ref" --json --quiet >"$dir/$name.verify.json"
    mkdir -p "$dir/$name.g" "$dir/$name.p"
    "$PY" "$REF/gguf_read.py" "$dir/$name.gguf" --dump "$dir/$name.g" >/dev/null &&
        "$PACK_DUMP" "$dir/$name.mpk" "$dir/$name.p" >/dev/null &&
        "$PY" "$REF/gguf_vs_pack.py" "$dir/$name.export.json" "$dir/$name.g" "$dir/$name.p" | tail -n 1 >"$dir/$name.exact"
    rm -rf "$dir/$name.g" "$dir/$name.p"
    echo "$budget $bits $(stat -c %s "$dir/$name.gguf") $dir/$name" >>"$dir/made"
done

"$PY" - "$dir" "$OUT" <<'PY'
import json, math, os, sys
d, out = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(d + "/rows")]
made = [l.split() for l in open(d + "/made")]
params = 14428416 # moby-mixtral's weights (README: 14.43 M)
table = []
for name, kld, size in rows:
    size = int(size)
    fits = [m for m in made if int(m[2]) <= size]
    best = None
    for budget, bits, gguf, path in fits:
        v = json.load(open(path + ".verify.json"))
        e = json.load(open(path + ".export.json"))
        reencoded = sum(1 for t in e["tensors"] if t["mode"] != "copied")
        exact = open(path + ".exact").read().split() if os.path.exists(path + ".exact") else ["?", "", "?"]
        cand = {"gguf_bytes": int(gguf), "kld": v["kld_mean"], "kld_p99": v["kld_p99"], "ppl": v["ppl"],
                "top1": v["same_top1"], "bits": float(bits), "reencoded": reencoded,
                "numpy_bit_exact": "%s/%s" % (exact[2], exact[0])}
        if best is None or cand["kld"] < best["kld"]:
            best = cand
    table.append({"llama_cpp": name, "llama_kld": float(kld), "llama_bytes": size, "moepack": best})
print("\n%-16s %10s %10s | %10s %10s %8s %7s %7s %6s %9s" % ("llama.cpp row", "bytes", "KLD", "moepack B", "KLD",
      "p99", "PPL", "top-1", "ratio", "bit-exact"))
for r in table:
    m = r["moepack"]
    if m is None:
        print("%-16s %10d %10.6f | no pack this small" % (r["llama_cpp"], r["llama_bytes"], r["llama_kld"]))
        continue
    print("%-16s %10d %10.6f | %10d %10.6f %8.5f %7.3f %6.2f%% %6.3f %9s%s" % (r["llama_cpp"], r["llama_bytes"],
          r["llama_kld"], m["gguf_bytes"], m["kld"], m["kld_p99"], m["ppl"], m["top1"], m["kld"] / r["llama_kld"],
          m["numpy_bit_exact"], "" if m["reencoded"] == 0 else "  (%d tensors re-encoded)" % m["reencoded"]))
wins = sum(1 for r in table if r["moepack"] and r["moepack"]["kld"] < r["llama_kld"])
print("\nmoepack lower KLD at no more bytes: %d of %d rows" % (wins, len(table)))
json.dump(table, open(out + "/quality_gguf.json", "w"), indent=1)

# bits-vs-KLD plot, log KLD, both curves
W, H, L, B = 640, 420, 84, 50
pts_l = sorted((8 * r["llama_bytes"] / params, r["llama_kld"], r["llama_cpp"]) for r in table)
pts_m = sorted(set((8 * r["moepack"]["gguf_bytes"] / params, r["moepack"]["kld"]) for r in table if r["moepack"]))
xs = [p[0] for p in pts_l] + [p[0] for p in pts_m]
ys = [math.log10(p[1]) for p in pts_l] + [math.log10(p[1]) for p in pts_m]
x0, x1, y0, y1 = min(xs) - 0.2, max(xs) + 0.2, math.floor(min(ys) * 4) / 4, math.ceil(max(ys) * 4) / 4
X = lambda x: L + (x - x0) / (x1 - x0) * (W - L - 20)
Y = lambda y: 20 + (y1 - math.log10(y)) / (y1 - y0) * (H - 20 - B)
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="%d" y="%d" text-anchor="middle">bits per weight (whole GGUF file)</text>' % ((W + L) // 2, H - 12),
       '<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">mean KLD on eval.txt (log)</text>' % (H // 2, H // 2)]
for k in range(int(y0 * 4), int(y1 * 4) + 1):
    y = 10 ** (k / 4)
    svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.4g</text>' % (L, W - 20, Y(y), Y(y), L - 4, Y(y) + 4, y))
for x in range(math.ceil(x0), math.floor(x1) + 1):
    svg.append('<line x1="%.1f" x2="%.1f" y1="20" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(x), X(x), H - B, X(x), H - B + 14, x))
for pts, color, label in ((pts_l, "#d62728", "llama.cpp"), (pts_m, "#1f77b4", "moepack")):
    best = []
    for p in pts: # the lower envelope: best KLD at or below each size
        if not best or p[1] < best[-1][1]:
            best.append(p)
    svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, " ".join("%.1f,%.1f" % (X(p[0]), Y(p[1])) for p in best)))
    for p in pts:
        svg.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %.3f bits, KLD %.6f</title></circle>' % (X(p[0]), Y(p[1]), color, p[2] if len(p) > 2 else label, p[0], p[1]))
svg.append('<text x="%d" y="34" fill="#d62728">llama.cpp (README rows)</text><text x="%d" y="50" fill="#1f77b4">moepack, exported GGUF</text>' % (W - 200, W - 200))
svg.append("</svg>")
open(out + "/quality_gguf.svg", "w").write("\n".join(svg))
print("table: %s/quality_gguf.json, plot: %s/quality_gguf.svg" % (out, out))
PY
