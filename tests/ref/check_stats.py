#!/usr/bin/python3
"""An independent reader of moepack stats files, written from docs/stats.md alone.

    check_stats.py STATS                       layout, checksums, internal consistency
    check_stats.py STATS --model DIR --ids F   ... and the mean squares of the input of
                   [--share L:LO:HI ...]       layer 0's attention recomputed with numpy
                                               from the checkpoint; per-layer expert shares
    check_stats.py STATS --tiers PACK          the pack's expert tiers follow the spec's
                                               ranking of these routing counts

Prints one "PASS: ..." or "FAIL: ..." line per check (with --tiers, the file's own
checks print only when they fail); exits 1 when any check failed.
"""
import json
import struct
import sys

import numpy as np

try:
    import xxhash
except ImportError:  # checksums are then not verified (reported as SKIP)
    xxhash = None

failures = 0
quiet = False  # print failures only (the file's own checks when checking a pack)


def check(name, ok, detail=""):
    global failures
    if not ok or not quiet:
        print(("PASS: " if ok else "FAIL: ") + name + ("" if ok or not detail else " (" + detail + ")"))
    failures += 0 if ok else 1


def read_stats(path):
    """The file per docs/stats.md: (header, counts, mass, {name: (entry, mean_sq)})."""
    raw = open(path, "rb").read()
    check("stats: magic", raw[:8] == b"MPSTATS1")
    version, zero, h, d, h_xxh, d_xxh, zero2, self_xxh = struct.unpack_from("<IIQQQQQQ", raw, 8)
    check("stats: version 1 and zero fields", version == 1 and zero == 0 and zero2 == 0)
    start = (64 + h + 63) // 64 * 64
    check("stats: length is data start + data bytes", len(raw) == start + d, f"{len(raw)} vs {start + d}")
    if xxhash:
        check("stats: prefix checksum", xxhash.xxh3_64_intdigest(raw[:56]) == self_xxh)
        check("stats: header checksum", xxhash.xxh3_64_intdigest(raw[64:start]) == h_xxh)
        check("stats: data checksum", xxhash.xxh3_64_intdigest(raw[start:]) == d_xxh)
    else:
        print("SKIP: stats checksums (no python3-xxhash)")
    check("stats: header padding is zero", raw[64 + h:start] == bytes(start - 64 - h))
    header = json.loads(raw[64:64 + h].decode("utf-8"))
    data = raw[start:]
    r = header["routing"]
    n_l, n_e = len(r["layers"]), r["experts"]
    table = 8 * n_l * n_e
    check("stats: routing array places",
          r["counts"] == {"offset": 0, "bytes": table} and r["mass"] == {"offset": table, "bytes": table})
    counts = np.frombuffer(data, "<u8", n_l * n_e, 0).reshape(n_l, n_e)
    mass = np.frombuffer(data, "<f8", n_l * n_e, table).reshape(n_l, n_e)
    at, linears, offsets_ok, pad_ok = 2 * table, {}, True, True
    for e in header["linears"]:
        offsets_ok &= e["offset"] == at
        mean = np.frombuffer(data, "<f4", e["cols"], e["offset"])
        end = e["offset"] + 4 * e["cols"]
        at = (end + 7) // 8 * 8
        pad_ok &= data[end:at] == bytes(at - end)
        linears[e["name"]] = (e, mean)
    check("stats: linear arrays where the layout puts them", offsets_ok)
    check("stats: array padding is zero", pad_ok)
    check("stats: data ends after the last array", at == d, f"{at} vs {d}")
    check("stats: linear names are unique", len(linears) == len(header["linears"]))
    return header, counts, mass, linears


def check_consistency(header, counts, mass, linears):
    model, text = header["model"], header["text"]
    tokens, top_k = header["tokens"], model["top_k"]
    check("tokens = chunks x ctx", tokens == text["n_chunks"] * text["ctx"], f"{tokens}")
    check("every layer's counts sum to tokens x top_k", bool(np.all(counts.sum(axis=1) == tokens * top_k)),
          f"{counts.sum(axis=1).tolist()} vs {tokens * top_k}")
    check("no expert counted more than once per token", bool(np.all(counts <= tokens)))
    layers = header["routing"]["layers"]
    rows_ok, bad = True, []
    for name, (e, mean) in linears.items():
        parts = name.split(".")
        if len(parts) == 5 and parts[0] == "layers" and parts[2] == "experts":
            want = int(counts[layers.index(int(parts[1])), int(parts[3])])
        else:
            want = tokens
        if e["rows"] != want:
            rows_ok = False
            bad.append(f"{name} {e['rows']} vs {want}")
        if not np.all(np.isfinite(mean)) or np.any(mean < 0) or (e["rows"] == 0 and np.any(mean != 0)):
            bad.append(f"{name}: mean squares not finite, negative, or nonzero without rows")
            rows_ok = False
    check("linear rows: tokens, or an expert's routing count", rows_ok, "; ".join(bad[:3]))
    return tokens


def bf16_tensor(model_dir, name):
    raw = open(model_dir + "/model.safetensors", "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    meta = json.loads(raw[8:8 + n])[name]
    assert meta["dtype"] == "BF16", meta["dtype"]
    a, b = meta["data_offsets"]
    bits = np.frombuffer(raw, "<u2", (b - a) // 2, 8 + n + a).astype(np.uint32) << 16
    return bits.view(np.float32).reshape(meta["shape"])


def check_layer0_inputs(header, linears, model_dir, ids_path):
    """layers.0.attn.{q,k,v} see RMSNorm(embedding) x input_norm: recomputed from the
    checkpoint for the chunks as docs/stats.md and the perplexity protocol define them."""
    text = header["text"]
    ids = [int(t) for t in open(ids_path).read().split()]
    bos, ctx = text["bos"], text["ctx"]
    seq = ([bos] if bos >= 0 else []) + ids
    check("text: token count (reference ids + BOS)", text["n_tokens"] == len(seq), f"{text['n_tokens']} vs {len(seq)}")
    n_chunks = len(seq) // ctx
    check("text: whole chunks", text["n_chunks"] == n_chunks, f"{text['n_chunks']} vs {n_chunks}")
    tokens = np.array(seq[:n_chunks * ctx]).reshape(n_chunks, ctx)
    if bos >= 0:
        tokens[:, 0] = bos
    config = json.load(open(model_dir + "/config.json"))
    embed = bf16_tensor(model_dir, "model.embed_tokens.weight").astype(np.float64)
    norm = bf16_tensor(model_dir, "model.layers.0.input_layernorm.weight").astype(np.float64)
    x = embed[tokens.reshape(-1)]
    h = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + config["rms_norm_eps"]) * norm
    want = (h * h).mean(axis=0)
    got = linears["layers.0.attn.q"][1].astype(np.float64)
    rel = np.max(np.abs(got - want) / np.maximum(want, 1e-30))
    check(f"layers.0.attn.q: mean squares = numpy from the checkpoint (max rel error {rel:.2g} < 1e-5)", rel < 1e-5)
    same = all(np.array_equal(linears[f"layers.0.attn.{k}"][1], linears["layers.0.attn.q"][1]) for k in "kv")
    check("layers.0.attn.k and .v saw the same rows as .q", same)


def check_mass(header, mass, tokens):
    """Renormalised top-k with scale 1 (Mixtral): each token gives its experts weight 1."""
    err = np.max(np.abs(mass.sum(axis=1) - tokens)) / tokens
    check("gate mass per layer sums to the token count (rel 1e-5)", err < 1e-5, f"rel {err:.3g}")


def check_shares(header, counts, specs):
    layers = header["routing"]["layers"]
    for spec in specs:
        layer, lo, hi = spec.split(":")
        row = counts[layers.index(int(layer))]
        share = row / row.sum()
        ok = abs(share.min() - float(lo)) <= 0.01 and abs(share.max() - float(hi)) <= 0.01
        check(f"layer {layer}: expert shares {share.min():.4f}..{share.max():.4f} ~ {lo}..{hi} (+-0.01)", ok)


def expected_tiers(header, counts, manifest):
    """The spec's ranking (docs/FORMAT.md routing_stats): all routed experts of all
    layers by count, hottest first, ties by (layer, expert); equal counts per tier or
    the hottest prefix within the hot budget."""
    tiering = manifest["routing_stats"]["tiering"]
    layers = header["routing"]["layers"]
    ranked = sorted(((-int(counts[i, x]), layer, x) for i, layer in enumerate(layers) for x in range(counts.shape[1])))
    sizes = {(r["layer"], r["expert"]): r["raw_length"] for r in manifest["records"] if r["expert"] >= 0}
    tiers, used, closed = {}, 0, False
    for rank, (_, layer, x) in enumerate(ranked):
        if tiering["rule"] == "equal":
            tiers[(layer, x)] = 1 + rank * (tiering["tiers"] - 1) // len(ranked)
        elif not closed and used + sizes[(layer, x)] <= tiering["hot_budget"]:
            used += sizes[(layer, x)]
            tiers[(layer, x)] = 1
        else:
            closed = True
            tiers[(layer, x)] = 2
    return tiers


def check_pack_tiers(header, counts, pack):
    manifest = json.load(open(pack + "/manifest.json"))
    rs = manifest["routing_stats"]
    want = expected_tiers(header, counts, manifest)
    got = {(r["layer"], r["expert"]): r["tier"] for r in manifest["records"] if r["expert"] >= 0}
    check(f"{pack}: every expert record in the tier of its rank", got == want,
          "; ".join(f"L{k[0]}E{k[1]} tier {got.get(k)} want {v}" for k, v in want.items() if got.get(k) != v)[:300])
    ok = True
    for entry in rs["layers"]:
        i = header["routing"]["layers"].index(entry["layer"])
        ok &= entry["counts"] == counts[i].tolist()
        ok &= all(abs(f - c / header["tokens"]) < 1e-12 for f, c in zip(entry["frequency"], entry["counts"]))
        ok &= entry["tier"] == [want[(entry["layer"], x)] for x in range(counts.shape[1])]
    check(f"{pack}: routing_stats counts, frequencies and tiers", ok and rs["tokens"] == header["tokens"])
    offsets_ok = True
    for t in range(1, len(manifest["tiers"])):
        recs = [r for r in manifest["records"] if r["tier"] == t]
        order = [(r["layer"], r["expert"]) for r in recs]
        offsets_ok &= order == sorted(order) and [r["offset"] for r in recs] == sorted(r["offset"] for r in recs)
    check(f"{pack}: within a tier, experts in (layer, expert) order", offsets_ok)


def main(argv):
    args = {"--share": []}
    path = argv[1]
    i = 2
    while i < len(argv):
        if argv[i] == "--share":
            args["--share"].append(argv[i + 1])
        else:
            args[argv[i]] = argv[i + 1]
        i += 2
    global quiet
    quiet = "--tiers" in args
    header, counts, mass, linears = read_stats(path)
    tokens = check_consistency(header, counts, mass, linears)
    quiet = False
    if "--model" in args:
        check_layer0_inputs(header, linears, args["--model"], args["--ids"])
        check_mass(header, mass, tokens)
    check_shares(header, counts, args["--share"])
    if "--tiers" in args:
        check_pack_tiers(header, counts, args["--tiers"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
