#!/usr/bin/python3
"""Independent expert saliencies (freq, REAP, EAN) of a checkpoint over the first chunks
of a token sequence, from the float64 HF-semantics forward pass of moe_forward.py (not
from moepack's engine), for tests/cli/test_prune.sh.

    prune_saliency.py CKPT --ids FILE --ctx N --chunks C --bos B --out OUT.json

The chunks are cut as llama.cpp's perplexity tool (and moepack's chunks.c) cut them:
chunk i = ids[i*ctx : (i+1)*ctx] with its first token replaced by BOS (B < 0: none).
Per MoE layer and expert: count = routed (token, slot) selections; ean = sum over them
of ||f_e(x)||_2; reap = mean over them of g_e(x) * ||f_e(x)||_2, g the weight the block
applies (renormalised and scaled as the family does), f_e the expert's output.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moe_forward  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--chunks", type=int, required=True)
    ap.add_argument("--bos", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ids = [int(t) for t in open(a.ids).read().split()]
    model = moe_forward.Model(a.ckpt)
    stats = {}  # layer -> [count, ean, reap_sum] arrays
    state = {"layer": -1}
    plain_run_experts, plain_mlp = moe_forward.run_experts, model.mlp

    def observed_run_experts(x, idx, w, expert):
        L = state["layer"]
        if L not in stats:
            n = max(int(idx.max()) + 1, model.cfg.get("num_local_experts") or model.cfg.get("num_experts")
                    or model.cfg.get("n_routed_experts") or 0)
            stats[L] = [np.zeros(n), np.zeros(n), np.zeros(n)]
        count, ean, reap = stats[L]
        for e in np.unique(idx):
            rows, slot = np.nonzero(idx == e)
            norms = np.linalg.norm(expert(int(e), x[rows]), axis=1)
            count[e] += len(rows)
            ean[e] += norms.sum()
            reap[e] += (w[rows, slot] * norms).sum()
        return plain_run_experts(x, idx, w, expert)

    def observed_mlp(L, x):
        state["layer"] = L
        return plain_mlp(L, x)

    moe_forward.run_experts = observed_run_experts
    model.mlp = observed_mlp
    for c in range(a.chunks):
        chunk = ids[c * a.ctx:(c + 1) * a.ctx]
        if len(chunk) < a.ctx:
            raise SystemExit(f"{a.ids}: fewer than {a.chunks} chunks of {a.ctx}")
        if a.bos >= 0:
            chunk[0] = a.bos
        model.forward(np.array(chunk, dtype=np.int64))
    out = {"layers": []}
    for L in sorted(stats):
        count, ean, reap = stats[L]
        out["layers"].append({"layer": L, "freq": count.tolist(), "ean": ean.tolist(),
                              "reap": np.where(count > 0, reap / np.maximum(count, 1), 0).tolist()})
    json.dump(out, open(a.out, "w"))


if __name__ == "__main__":
    main()
