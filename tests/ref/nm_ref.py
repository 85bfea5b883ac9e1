#!/usr/bin/env python3
"""Oracle for quant/nm_sparse.c (2:4 pruning), written from the papers and reference code:

Wanda (Sun et al. 2023; llm-compressor wanda_sparsify.py): in every group of 4 columns of
a row keep the 2 of largest |W_ij| * ||x_j||, ||x_j|| = sqrt(H_jj); ties keep the lower column.

SparseGPT (Frantar & Alistarh 2023; IST-DASLab/sparsegpt sparsegpt.py with prunen=2,
prunem=4): U = upper Cholesky factor of (H + 0.01 mean(diag H) I)^-1; for each column i,
at i % 4 == 0 prune the 2 of columns i..i+3 with the smallest w^2 / U_kk^2 (on the weights
updated so far); q = 0 when pruned, else w (or, joint, its w4 value on the group grid
fitted at the group's first column from the updated weights, RTN as gptq_ref.py);
err = (w - q) / U_ii; w[i+1:] -= err U[i, i+1:]. In float64, column by column (the
lazy batches of the C code are the same algebra).

Checks, one line each ("ok ..." / "FAIL ..."): Wanda's result equals the oracle's exactly;
SparseGPT's mask equals the oracle's on >= 99.5 % of the groups and its kept weights are
within 1e-3 relative (of the row's largest weight) on rows whose masks all agree; every
row is 2:4; SparseGPT's output error tr(dW H dW^T) is below Wanda's. Joint: the returned
values are the codes decoded and the codes agree with the oracle's on >= 99 %.
Usage: nm_ref.py DIR (files from tests/tools/nm_run.c)."""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_ref import code, f16, rtn_grid  # noqa: E402


def load(d, name):
    return np.load(os.path.join(d, name))


def keep_two(score):
    """Boolean keep mask [R, 4] from scores [R, 4]: the 2 largest, ties to the lower column."""
    order = np.argsort(-score, axis=1, kind="stable")
    keep = np.zeros(score.shape, dtype=bool)
    np.put_along_axis(keep, order[:, :2], True, axis=1)
    return keep


def wanda(W, H):
    norm = np.sqrt(np.maximum(np.diag(H), 0.0))
    out = W.copy()
    for c in range(0, W.shape[1], 4):
        score = np.abs(W[:, c:c + 4].astype(np.float64)) * norm[c:c + 4]
        out[:, c:c + 4] = np.where(keep_two(score), W[:, c:c + 4], 0.0)
    return out


def sparsegpt(W, H, damp, joint, sym):
    W = W.astype(np.float64).copy()
    R, C = W.shape
    H = H + damp * np.mean(np.diag(H)) * np.eye(C)
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    out = np.zeros((R, C))
    codes = np.zeros((R, C))
    keep = np.zeros((R, C), dtype=bool)
    s = z = None
    for i in range(C):
        if i % 4 == 0:
            score = W[:, i:i + 4] ** 2 / np.diag(U)[i:i + 4] ** 2
            keep[:, i:i + 4] = keep_two(score)
        if joint and i % joint == 0:
            s, z = rtn_grid(W[:, i:i + joint], sym)
        q = np.where(keep[:, i], W[:, i], 0.0)
        if joint:
            codes[:, i] = code(q, s, z)
            q = (codes[:, i] - z) * s
        out[:, i] = q
        err = (W[:, i] - q) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return out, keep, codes


def out_err(D, W, H):
    dW = D.astype(np.float64) - W.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", dW, H, dW))


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f" ({detail})" if detail else ""))
    return ok


def main(argv):
    d = argv[1]
    meta = json.load(open(os.path.join(d, "meta.json")))
    W, H = load(d, "W.npy"), load(d, "H.npy")
    joint, sym = meta["joint"], meta["sym"]
    good = True
    good &= check(np.array_equal(load(d, "wanda.npy"), wanda(W, H)), "wanda equals the oracle exactly")
    got = load(d, "sgptq.npy" if joint else "sgpt.npy")
    want, keep, codes = sparsegpt(W, H, meta["damp"], joint, sym)
    R, C = W.shape
    got_keep = (got != 0).reshape(R, C // 4, 4)
    pattern = (got_keep.sum(axis=2) <= 2).all()
    good &= check(bool(pattern), "sparsegpt result is 2:4")
    # a kept value may round to 0 when joint: compare masks where the oracle keeps a nonzero
    want_nz = (want != 0).reshape(R, C // 4, 4)
    same_group = (got_keep == want_nz).all(axis=2)
    frac = float(same_group.mean())
    good &= check(frac >= 0.995, "sparsegpt masks agree", f"{100 * frac:.3f} % of groups")
    rows_same = same_group.all(axis=1)
    scale = np.abs(W).max(axis=1, keepdims=True)
    rel = np.abs(got.astype(np.float64) - want) / scale
    worst = float(rel[rows_same].max()) if rows_same.any() else 0.0
    if joint:
        qc = load(d, "codes.npy").astype(np.float64)
        sc = f16(load(d, "scales.npy").view(np.float16).astype(np.float64))
        zc = load(d, "zeros.npy").astype(np.float64)
        g = C // sc.shape[1]
        dec = (qc - np.repeat(zc, g, axis=1)) * np.repeat(sc, g, axis=1)
        good &= check(np.array_equal(dec.astype(np.float32), got), "joint values are the codes decoded")
        agree = float((qc == codes).mean())
        good &= check(agree >= 0.99, "joint codes agree with the oracle", f"{100 * agree:.3f} %")
    else:
        good &= check(worst <= 1e-3, "sparsegpt weights match on rows with equal masks",
                      f"{int(rows_same.sum())} rows, worst {worst:.2e} of the row's max |w|")
    e_w, e_s = out_err(load(d, "wanda.npy"), W, H), out_err(got, W, H)
    good &= check(e_s < e_w, "sparsegpt output error below wanda's", f"sparsegpt {e_s:.4g}, wanda {e_w:.4g}")
    print(f"info output error tr(dW H dW^T): wanda {e_w:.6g}, sparsegpt {e_s:.6g}, oracle {out_err(want, W, H):.6g}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
