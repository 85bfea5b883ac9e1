#!/usr/bin/python3
"""Independent float64 NumPy oracle for moepack's AWQ calibration of MLA attention
(quant/calib_mla.c), written from docs/quant.md, the AWQ paper's folding rule and
quant/awq.h's candidate formulas, not from the C code.

usage: mla_calib_ref.py CKPT AWQ_PACK IDS.json CTX SEQS

CKPT is a DeepSeek-V3 checkpoint (bf16 safetensors), AWQ_PACK the pack `moepack convert
CKPT --method awq --calib TEXT --calib-ctx CTX --calib-tokens CTX*SEQS` made, IDS.json
`moepack tokenize CKPT --text TEXT --json` (BOS first).

An AWQ fold must leave the function of each (norm or linear, linear) pair unchanged up to
quantization noise. Per layer and per fold, with W the checkpoint's linear, g its norm,
and primes the pack's decoded values, the per-column ratio
  r_j = <W'_j g'_j, W_j g_j> / |W_j g_j|^2
is ~1 (w4 noise averages out over the rows) when the fold is consistent, and 1 / s_j when
a scale reached the norm but not the linear (or the reverse). Checks:
  1. folds happened: some layer's input_norm, q_a_norm, kv_a_norm and o differ from the
     checkpoint by > 5 % in some channel;
  2. input_norm -> q_a and kv_a, q_a_norm -> q_b, kv_a_norm -> kv_b: max |r_j - 1| < 0.1;
  3. kv_b's v rows -> o: for o's column j (head h, d) and kv_b's row h (nope + v) + nope + d,
     the product of o's column ratio and that row's ratio (with kv_a_norm folded in) is ~1
     (max |.. - 1| < 0.1), and kv_b's k_nope rows keep ratio ~1;
  4. the statistic: layer 0's q_a_norm scale s = g / g' is one of AWQ's 40 candidates
     (quant/awq.h: plain m^r and duo m^r / (w^(1-r) + 1e-4), normalised by
     sqrt(max * min), r = k / 20) built from m = mean |x| of q_b's calibration inputs as
     the pack itself produces them: x = rmsnorm(q_a'(rmsnorm(embed(t)) input_norm'))
     q_a_norm over the calibration chunks (first token of each chunk BOS); w = mean over
     rows of |w| / max |w| of its group of the checkpoint's q_b. Best candidate within
     2 % in every channel (g' is bf16), and not s = 1.
Prints one line per check ("ok ..." / "FAIL ...").
"""

import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_pack  # noqa: E402  (the independent pack decoder, from docs/FORMAT.md)

FAILED = []


def report(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILED.append(what)


def load_safetensors(ckpt):
    path = os.path.join(ckpt, "model.safetensors")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "BF16":
            v = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] == "F32":
            v = np.frombuffer(raw, np.float32)
        else:
            continue
        out[name] = v.astype(np.float64).reshape(t["shape"])
    return out


def load_pack(pack):
    m = json.load(open(os.path.join(pack, "manifest.json")))
    out, enc = {}, {}
    with tempfile.TemporaryDirectory() as d:
        with open(os.devnull, "w") as null:
            old, sys.stdout = sys.stdout, null
            try:
                decode_pack.decode_pack(pack, d)
            finally:
                sys.stdout = old
        for t in m["tensors"]:
            v = np.fromfile(os.path.join(d, t["name"] + ".f32"), np.float32).astype(np.float64)
            out[t["name"]] = v.reshape(t["shape"])
            enc[t["name"]] = t
    return out, enc, m


def rmsnorm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps) * g


def col_ratio(Wq, Wr):
    return np.sum(Wq * Wr, axis=0) / np.maximum(np.sum(Wr * Wr, axis=0), 1e-300)


def row_ratio(Wq, Wr):
    return np.sum(Wq * Wr, axis=1) / np.maximum(np.sum(Wr * Wr, axis=1), 1e-300)


def candidates(m, w):
    out = []
    for duo in (False, True):
        for k in range(20):
            r = k / 20
            if k == 0:
                s = np.ones_like(m)
            elif duo:
                s = np.maximum(m ** r / (w ** (1 - r) + 1e-4), 1e-4)
            else:
                s = m ** r
            s = s / np.sqrt(s.max() * s.min())
            out.append(s)
    return out


def group_weight_mean(W, group):
    rows, cols = W.shape
    g = W.reshape(rows, cols // group, group)
    mx = np.abs(g).max(axis=2, keepdims=True)
    return (np.abs(g) / np.where(mx > 0, mx, 1)).reshape(rows, cols).mean(axis=0)


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    ckpt, pack, ids_path, ctx, seqs = argv[1], argv[2], argv[3], int(argv[4]), int(argv[5])
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    W = load_safetensors(ckpt)
    P, enc, _ = load_pack(pack)
    eps = cfg["rms_norm_eps"]
    H, nope, vd = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]
    rank = cfg["kv_lora_rank"]
    L = cfg["num_hidden_layers"]

    def ck(li, part):
        return W["model.layers.%d.%s.weight" % (li, part)]

    def pk(li, part):
        return P["layers.%d.%s" % (li, part)]

    moved = {"input_norm": 0.0, "attn.q_a_norm": 0.0, "attn.kv_a_norm": 0.0, "o": 0.0}
    worst = {"q_a": 0.0, "kv_a": 0.0, "q_b": 0.0, "kv_b k_nope": 0.0, "kv_b v / o": 0.0}
    for li in range(L):
        pairs = [("input_norm", "input_layernorm", "attn.q_a", "self_attn.q_a_proj", "q_a"),
                 ("input_norm", "input_layernorm", "attn.kv_a", "self_attn.kv_a_proj_with_mqa", "kv_a"),
                 ("attn.q_a_norm", "self_attn.q_a_layernorm", "attn.q_b", "self_attn.q_b_proj", "q_b")]
        for norm, cnorm, lin, clin, key in pairs:
            g, gq = ck(li, cnorm), pk(li, norm)
            moved[norm] = max(moved[norm], np.max(np.abs(gq / g - 1)))
            r = col_ratio(pk(li, lin) * gq[None, :], ck(li, clin) * g[None, :])
            worst[key] = max(worst[key], np.max(np.abs(r - 1)))
        g, gq = ck(li, "self_attn.kv_a_layernorm"), pk(li, "attn.kv_a_norm")
        moved["attn.kv_a_norm"] = max(moved["attn.kv_a_norm"], np.max(np.abs(gq / g - 1)))
        B, Bq = ck(li, "self_attn.kv_b_proj") * g[None, :], pk(li, "attn.kv_b") * gq[None, :]
        rb = row_ratio(Bq, B)
        O, Oq = ck(li, "self_attn.o_proj"), pk(li, "attn.o")
        ro = col_ratio(Oq, O)
        moved["o"] = max(moved["o"], np.max(np.abs(ro - 1)))
        for h in range(H):
            base = h * (nope + vd)
            worst["kv_b k_nope"] = max(worst["kv_b k_nope"], np.max(np.abs(rb[base:base + nope] - 1)))
            prod = rb[base + nope:base + nope + vd] * ro[h * vd:(h + 1) * vd]
            worst["kv_b v / o"] = max(worst["kv_b v / o"], np.max(np.abs(prod - 1)))
    for k, v in moved.items():
        report(v > 0.05, "AWQ moved a scale through %s (largest change %.3f)" % (k, v))
    for k, v in worst.items():
        report(v < 0.1, "fold keeps %s's function (max |ratio - 1| %.4f < 0.1)" % (k, v))

    # 4. the statistic behind layer 0's q_a_norm scale
    ids = json.load(open(ids_path))["ids"]
    n_chunks = min(seqs, len(ids) // ctx)
    rows = []
    for c in range(n_chunks):
        t = list(ids[c * ctx:(c + 1) * ctx])
        t[0] = ids[0]
        rows.extend(t)
    x = W["model.embed_tokens.weight"][np.array(rows)]
    h = rmsnorm(x, pk(0, "input_norm"), eps)
    qa = rmsnorm(h @ pk(0, "attn.q_a").T, ck(0, "self_attn.q_a_layernorm"), eps)
    m = np.mean(np.abs(qa), axis=0)
    group = enc["layers.0.attn.q_b"].get("group", 128)
    w = group_weight_mean(ck(0, "self_attn.q_b_proj"), group)
    s = ck(0, "self_attn.q_a_layernorm") / pk(0, "attn.q_a_norm")
    errs = [np.max(np.abs(cand / s - 1)) for cand in candidates(m, w)]
    best = int(np.argmin(errs))
    print("info layer 0 q_a_norm scale: candidate %d of 40 (%s r=%.2f), max rel diff %.5f"
          % (best, "duo" if best >= 20 else "plain", (best % 20) / 20, errs[best]))
    report(errs[best] < 0.02 and best % 20 != 0,
           "layer 0's q_a_norm scale is an AWQ candidate of q_b's own input statistic (%.4f < 0.02)" % errs[best])
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
