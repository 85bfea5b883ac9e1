#!/usr/bin/python3
"""Independent float64 checks of `moepack distill` for tests/cli/test_distill.sh, from
the method's definition (docs/distill.md), moe_forward.py's attention, decode_pack.py's
decoder and gptq_ref.py's GPTQ, not from quant/calib_teacher.c:

    distill_ref.py objective CKPT STUDENT DISTILLED --ids FILE --ctx N --chunks C --bos B
    distill_ref.py same CKPT STUDENT DISTILLED

objective (Mixtral family): layer 0's attn.o. The teacher's rows x_t entering it are
its attention over the chunks (checkpoint weights); the student's x_s are the same
with the distilled pack's q, k, v (o is fitted after them, on the rows they produce). H = x_s^T x_s, C = x_t^T x_s, and
W* = (W_t C + l W_t)(H + l I)^-1, l = 0.01 mean diag H. With E(Q) = sum ||x_t W_t^T -
x_s Q^T||^2, the distilled tensor Q_d must satisfy
  E(Q_d) < E(Q_student)                      (it fits better than the student's own)
  E(Q_d) < E(GPTQ of W_t on H)               (the asymmetric target beats the plain one)
  E(Q_d) <= 1.05 E(GPTQ of W* on H)          (it is GPTQ of W*: the oracle's GPTQ uses
                                              RTN grids, moepack's MSE grids, so only close)
  E(W*) <= E(Q_d)                            (nothing on the grid beats the real minimum)
same: every tensor keeps its shape and encoding (group, sym); tensors distill does not
fit (embeddings, head, norms, biases) are byte for byte the student's; at least one
fitted tensor changed.
Prints PASS:/FAIL: lines; exit 1 on any FAIL.
"""
import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_pack  # noqa: E402
import gptq_ref  # noqa: E402
import moe_forward as mf  # noqa: E402

FAILS = []
FITTED = re.compile(r"^layers\.\d+\.(attn\.(q|k|v|o|q_a|q_b|kv_a|kv_b)|router|(experts\.\d+|shared|mlp)\.(gate|up|down))$")


def report(ok, what):
    print(("PASS" if ok else "FAIL") + ": " + what)
    if not ok:
        FAILS.append(what)


def decoded(pack):
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            decode_pack.decode_pack(pack, tmp)
        return {f[:-4]: np.fromfile(os.path.join(tmp, f), dtype="<f4").astype(np.float64)
                for f in os.listdir(tmp) if f.endswith(".f32")}


def chunks(a):
    ids = [int(t) for t in open(a.ids).read().split()]
    for c in range(a.chunks):
        chunk = ids[c * a.ctx:(c + 1) * a.ctx]
        if a.bos >= 0:
            chunk[0] = a.bos
        yield np.array(chunk, dtype=np.int64)


def o_input(cfg, embed, norm, wq, wk, wv, tok):
    """The rows entering layer 0's o projection (Mixtral attention, no biases)."""
    T, H, Hkv = len(tok), cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    x = mf.rms_norm(embed[tok], norm, cfg["rms_norm_eps"])
    q, k, v = (x @ w.T for w in (wq, wk, wv))
    q, k, v = q.reshape(T, H, hd), k.reshape(T, Hkv, hd), v.reshape(T, Hkv, hd)
    cos, sin = mf.rope_tables(cfg, hd, T)
    return mf.attend(mf.rope_half(q, cos, sin), mf.rope_half(k, cos, sin), v, hd ** -0.5).reshape(T, -1)


def objective(a):
    m = mf.Model(a.ckpt)
    if m.family != "mixtral":
        raise SystemExit(f"{a.ckpt}: this oracle handles the mixtral family only")
    cfg, ck, p = m.cfg, m.ck, "model.layers.0"
    s, d = decoded(a.student), decoded(a.distilled)
    man = json.load(open(os.path.join(a.student, "manifest.json")))
    t_o = next(t for t in man["tensors"] if t["name"] == "layers.0.attn.o")
    rows, cols = t_o["shape"]
    hs = cfg["hidden_size"]
    teacher = [ck.get(f"{p}.self_attn.{n}_proj.weight") for n in "qkvo"]
    student = [d["layers.0.attn." + n].reshape(-1, hs) for n in "qkv"]
    xt, xs = [], []
    for tok in chunks(a):
        xt.append(o_input(cfg, ck.get("model.embed_tokens.weight"), ck.get(p + ".input_layernorm.weight"),
                          *teacher[:3], tok))
        xs.append(o_input(cfg, s["embed"].reshape(-1, hs), s["layers.0.input_norm"], *student, tok))
    xt, xs = np.concatenate(xt), np.concatenate(xs)
    Wt = teacher[3]
    H, C = xs.T @ xs, xt.T @ xs
    lam = 0.01 * np.mean(np.diag(H))
    Wstar = np.linalg.solve(H + lam * np.eye(cols), (Wt @ C + lam * Wt).T).T
    target = xt @ Wt.T

    def E(Q):
        return float(np.sum((target - xs @ Q.T) ** 2))

    group, sym = t_o.get("group", 128), t_o.get("sym", False)
    _, g_star, _, _ = gptq_ref.gptq(Wstar, H, group, sym, False, 0.01)
    _, g_plain, _, _ = gptq_ref.gptq(Wt, H, group, sym, False, 0.01)
    e = {"student": E(s["layers.0.attn.o"].reshape(rows, cols)), "distilled": E(d["layers.0.attn.o"].reshape(rows, cols)),
         "gptq_wstar": E(g_star), "gptq_wt": E(g_plain), "wstar": E(Wstar), "norm": float(np.sum(target ** 2))}
    rel = {k: v / e["norm"] for k, v in e.items() if k != "norm"}
    print("layers.0.attn.o relative output errors: " + ", ".join(f"{k} {v:.5g}" for k, v in rel.items()))
    report(e["distilled"] < e["student"], "the distilled o fits the teacher better than the student's o")
    report(e["distilled"] < e["gptq_wt"], "the distilled o beats plain GPTQ of the teacher's o on the same H")
    report(e["distilled"] <= 1.05 * e["gptq_wstar"], "the distilled o is within 5% of GPTQ of W* = W_t C H^-1")
    report(e["wstar"] <= e["distilled"] * (1 + 1e-9), "W* itself is the lower bound")


def same(a):
    ms = json.load(open(os.path.join(a.student, "manifest.json")))
    md = json.load(open(os.path.join(a.distilled, "manifest.json")))
    keys = ("shape", "encoding", "group", "sym", "scale", "block")
    sd = {t["name"]: t for t in md["tensors"]}
    bad = [t["name"] for t in ms["tensors"] if t["name"] not in sd or
           any(t.get(k) != sd[t["name"]].get(k) for k in keys)]
    report(not bad and len(sd) == len(ms["tensors"]), "every tensor keeps its shape and encoding " + str(bad[:3]))

    def parts(pack, m):
        out, data = {}, {}
        for ri, r in enumerate(m["records"]):
            path = os.path.join(pack, m["tiers"][r["tier"]]["file"])
            if path not in data:
                data[path] = open(path, "rb").read()
            raw = decode_pack.record_raw(data[path], m, ri, path)
            for q in r["parts"]:
                out[m["tensors"][q["tensor"]]["name"]] = bytes(raw[q["offset"]:q["offset"] + q["length"]])
        return out

    ps, pd = parts(a.student, ms), parts(a.distilled, md)
    changed_kept = [n for n in ps if not FITTED.match(n) and ps[n] != pd.get(n)]
    fitted_changed = [n for n in ps if FITTED.match(n) and ps[n] != pd.get(n)]
    report(not changed_kept, "tensors distill does not fit are byte for byte the student's " + str(changed_kept[:3]))
    report(len(fitted_changed) > 0, f"fitted tensors changed ({len(fitted_changed)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["objective", "same"])
    ap.add_argument("ckpt")
    ap.add_argument("student")
    ap.add_argument("distilled")
    ap.add_argument("--ids")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--bos", type=int, default=1)
    a = ap.parse_args()
    objective(a) if a.mode == "objective" else same(a)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
