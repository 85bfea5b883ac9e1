#!/usr/bin/python3
"""Independent float64 NumPy oracle for moepack's GPTQ (quant/gptq.c), written from the
GPTQ paper (Frantar et al. 2022, Algorithm 1), the IST-DASLab gptq.py description in
../shared/REFERENCE.md ("5. Algorithms") and the w4 grid rules of quant/w4.h's header,
not from the C code.

usage: gptq_ref.py DIR [--min-same 0.995] [--max-loss-rel 0.01]

DIR holds what build/gptq_run wrote: W.npy f32 [R, C], H.npy f64 [C, C], codes.npy u8
[R, C] (natural column order), scales.npy u16 [R, G] (f16 bits), zeros.npy u8 [R, G],
dequant.npy f32 [R, C] and meta.json (group, sym, act_order, block, damp, loss, ...).

The oracle runs GPTQ column by column in float64 (no lazy batching: every later column
is updated right after each column, which the lazy form must equal):
  dead columns (diag H == 0) get diag 1 (their weights are kept, not zeroed);
  act_order: columns visited by decreasing diag H (stable: ties by increasing index);
  H += damp * mean(diag H) * I; U = upper Cholesky factor of inv(H)  (inv(H) = U^T U);
  for each column i: without act_order, at the first column of a group the group's grid
  is the RTN rule applied to the current (error-updated) weights of that group; with
  act_order every grid is the RTN rule on the original W, computed before any update;
  q = code(w_i), err = (w_i - decode(q)) / U[i, i], w_j -= err U[i, j] for j > i.

RTN grid rule (quant/w4.h): lo = min(0, min x), hi = max(0, max x);
  asym: s = f16((hi - lo) / 15), z = clamp(rint(-lo / s), 0, 15);
  sym:  m = hi if hi >= -lo else lo, s = f16(m / -8), z = 8;
  f16 rounding via numpy.float16 (nearest even); a scale beyond 65504 clamps to 65504,
  a nonzero scale rounding to 0 becomes +-2^-24; s == 0 stores z = 0 (asym), codes = z;
  code q = clamp(rint(x / s) + z, 0, 15), decode = (q - z) * s.
(The constant-group and saturated-window refinements are not modelled: random data never
meets them.)

Checks, exit 0 only when all hold:
  1. the C tool's dequant equals (codes - zeros) * f16(scales) in float32, bit for bit;
  2. the C tool's loss equals tr(dW H dW^T) recomputed here from its dequant (rel 1e-9);
  3. >= --min-same of the codes equal the oracle's. The C side works in float32 (weights,
     errors, U rounded to f32), the oracle in float64: values within ~1e-6 of a rounding
     boundary may round differently, and a flipped code changes the error that the rest
     of that row receives, so a few codes after it may differ too;
  4. the C loss is within --max-loss-rel of the oracle's loss (relative).
Prints one line per check ("ok ..." / "FAIL ...") and the loss ratios.
"""

import json
import os
import sys

import numpy as np

F16_MAX = 65504.0
F16_MIN_SUBNORMAL = 2.0 ** -24


def f16(s):
    """Scales as the pack stores them: rounded to float16 (nearest even), clamped to the
    finite range, nonzero never rounded to zero; returned as float64 values."""
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(over="ignore"):
        h = s.astype(np.float32).astype(np.float16).astype(np.float64)
    h = np.where(np.isinf(h), np.sign(s) * F16_MAX, h)
    h = np.where((h == 0) & (s != 0), np.sign(s) * F16_MIN_SUBNORMAL, h)
    return h


def rtn_grid(x, sym):
    """Grids of the groups x [rows, g]: (scale [rows], zero [rows])."""
    lo = np.minimum(x.min(axis=1), 0.0)
    hi = np.maximum(x.max(axis=1), 0.0)
    if sym:
        m = np.where(hi >= -lo, hi, lo)
        return f16(m / -8.0), np.full(x.shape[0], 8.0)
    s = f16((hi - lo) / 15.0)
    safe = np.where(s == 0, 1.0, s)
    z = np.where(s == 0, 0.0, np.clip(np.rint(-lo / safe), 0, 15))
    return s, z


def code(w, s, z):
    safe = np.where(s == 0, 1.0, s)
    q = np.clip(np.rint(w / safe) + z, 0, 15)
    return np.where(s == 0, z, q)


def gptq(W, H, group, sym, act_order, damp):
    """Codes [R, C] (natural order), decoded weights [R, C], per-group scales and zeros."""
    W = W.astype(np.float64)
    R, C = W.shape
    G = C // group
    H = H.copy()
    dead = np.diag(H) == 0
    H[dead, :] = 0.0
    H[:, dead] = 0.0
    H[dead, dead] = 1.0
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(C)
    H += damp * np.mean(np.diag(H)) * np.eye(C)
    Hp = H[np.ix_(perm, perm)]
    U = np.linalg.cholesky(np.linalg.inv(Hp)).T  # inv(Hp) = L L^T, U = L^T

    scales = np.zeros((R, G))
    zeros = np.zeros((R, G))
    if act_order:
        for j in range(G):
            scales[:, j], zeros[:, j] = rtn_grid(W[:, j * group:(j + 1) * group], sym)
    Wp = W[:, perm].copy()
    codes = np.zeros((R, C))
    deq = np.zeros((R, C))
    for i in range(C):
        c = perm[i]
        j = c // group
        if not act_order and c % group == 0:
            scales[:, j], zeros[:, j] = rtn_grid(Wp[:, i:i + group], sym)
        q = code(Wp[:, i], scales[:, j], zeros[:, j])
        dq = (q - zeros[:, j]) * scales[:, j]
        codes[:, c] = q
        deq[:, c] = dq
        err = (Wp[:, i] - dq) / U[i, i]
        Wp[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return codes.astype(np.uint8), deq, scales, zeros


def loss_of(deq, W, H):
    dW = deq.astype(np.float64) - W.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", dW, H, dW))


def rtn_loss(W, H, group, sym):
    R, C = W.shape
    deq = np.zeros((R, C))
    for j in range(C // group):
        x = W[:, j * group:(j + 1) * group].astype(np.float64)
        s, z = rtn_grid(x, sym)
        deq[:, j * group:(j + 1) * group] = (code(x, s[:, None], z[:, None]) - z[:, None]) * s[:, None]
    return loss_of(deq, W, H)


def main(argv):
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    d = argv[1]
    min_same = float(argv[argv.index("--min-same") + 1]) if "--min-same" in argv else 0.995
    max_rel = float(argv[argv.index("--max-loss-rel") + 1]) if "--max-loss-rel" in argv else 0.01
    meta = json.load(open(os.path.join(d, "meta.json")))
    load = lambda n: np.load(os.path.join(d, n + ".npy"))
    W, H, c_codes, c_scales, c_zeros, c_deq = (load(n) for n in ("W", "H", "codes", "scales", "zeros", "dequant"))
    group, sym = meta["group"], meta["sym"]
    damp = meta["damp"] if meta["damp"] > 0 else 0.01
    failed = 0

    def check(ok, what):
        nonlocal failed
        print(("ok   " if ok else "FAIL ") + what)
        failed += not ok

    # 1. the tool's decoded weights are its codes decoded, in float32 as the pack reader does
    G = W.shape[1] // group
    s32 = np.repeat(c_scales.view(np.float16).astype(np.float32), group, axis=1)
    z32 = np.repeat(c_zeros.astype(np.int32), group, axis=1)
    redecoded = (c_codes.astype(np.int32) - z32).astype(np.float32) * s32
    check(np.array_equal(redecoded.view(np.uint32), c_deq.view(np.uint32)), "dequant = decoded codes, bit for bit")

    # 2. the reported loss is the loss of the returned weights
    c_loss = loss_of(c_deq, W, H)
    check(abs(c_loss - meta["loss"]) <= 1e-9 * abs(c_loss), "reported loss %.9g = recomputed %.9g" % (meta["loss"], c_loss))

    # 3, 4. against the float64 oracle
    codes, deq, _, _ = gptq(W, H, group, sym, meta["act_order"], damp)
    same = float(np.mean(codes == c_codes))
    ref_loss = loss_of(deq, W, H)
    rel = abs(c_loss - ref_loss) / ref_loss
    check(same >= min_same, "codes equal to the oracle's: %.4f%% (need %.2f%%)" % (100 * same, 100 * min_same))
    check(rel <= max_rel, "loss C %.6g vs oracle %.6g: rel diff %.2e (need <= %.2e)" % (c_loss, ref_loss, rel, max_rel))
    rtn = rtn_loss(W, H, group, sym)
    print("info loss / RTN loss: C %.4f, oracle %.4f (RTN %.6g)" % (c_loss / rtn, ref_loss / rtn, rtn))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
