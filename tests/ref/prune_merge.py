#!/usr/bin/python3
"""Independent float64 checks of `moepack prune --merge` and `--refit-router` on a
Mixtral-family checkpoint and its pruned bf16 pack, for tests/cli/test_prune_merge.sh
(moe_forward.py's HC-SMoE-free forward pass; decode_pack.py's decoder; not prune/*.c):

    prune_merge.py merge CKPT PRUNED --ids FILE --ctx N --chunks C --bos B
    prune_merge.py refit CKPT PRUNED --ids FILE --ctx N --chunks C --bos B --layer L

merge: per MoE layer every expert runs on every token of the chunks; the cosine of
the experts' summed outputs is the similarity; each dropped expert (the manifest's
`dropped`, whose choice test_prune.sh checks) must go into the kept expert of highest
cosine, with that cosine; a kept expert that receives experts must hold
bf16(sum_e c_e P_e(W_e) / sum_e c_e) over itself and them (c = the oracle's selection
counts, W the checkpoint's weights, P_e the permutation of e's neurons that best
matches the kept expert's, by the oracle's own assignment solver) within bf16
rounding; one that receives nothing, the checkpoint's weights exactly.
refit: the pruned model (kept experts, the pack's routers below layer L) runs on the
chunks beside the original; at layer L, X = its router inputs, T = the original's
logits of the kept experts; W = (X^T X + lam I)^-1 (X^T T + lam W0^T), lam = 1e-3
trace(X^T X) / d, rounded to bf16, must match the pack's router; the relative
residuals before/after must match the manifest's.
Prints PASS:/FAIL: lines; exit 1 on any FAIL.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_pack  # noqa: E402
import moe_forward as mf  # noqa: E402

FAILS = []


def report(ok, what):
    print(("PASS" if ok else "FAIL") + ": " + what)
    if not ok:
        FAILS.append(what)


def bf16_round(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def within_bf16_rounding(got, exact, scale=None):
    """got is a round-to-nearest bf16 of a value within 1e-6 of exact relative to scale
    (default |exact|; for a sum of terms, the sum of their magnitudes: f32 summation
    error is relative to the terms, not to a result that cancels)."""
    scale = np.abs(exact) if scale is None else scale
    ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(exact), 1e-30))) - 7)
    return np.abs(got - exact) <= 0.5 * ulp * (1 + 1e-3) + 1e-6 * scale


def chunks(a):
    ids = [int(t) for t in open(a.ids).read().split()]
    for c in range(a.chunks):
        chunk = ids[c * a.ctx:(c + 1) * a.ctx]
        if a.bos >= 0:
            chunk[0] = a.bos
        yield np.array(chunk, dtype=np.int64)


def expert_fn(m, L, e):
    p = f"model.layers.{L}.block_sparse_moe.experts.{e}"
    return lambda h: mf.linear(m.ck, p + ".w2", mf.silu(mf.linear(m.ck, p + ".w1", h)) * mf.linear(m.ck, p + ".w3", h))


def check_merge(a, m, prune, pack_vals, pack_src):
    E = prune["experts_before"]
    sums, counts = {}, {}
    plain = m.mlp

    def observed(L, x):
        h = x  # the MLP input (post-attention norm applied by forward)
        logits = mf.linear(m.ck, f"model.layers.{L}.block_sparse_moe.gate", h)
        idx, _ = mf.route_softmax(m, logits)
        s = sums.setdefault(L, np.zeros((E, h.shape[1])))
        c = counts.setdefault(L, np.zeros(E))
        for e in range(E):
            s[e] += expert_fn(m, L, e)(h).sum(0)
            c[e] += (idx == e).sum()
        return plain(L, x)
    m.mlp = observed
    for tok in chunks(a):
        m.forward(tok)
    m.mlp = plain
    for lay in prune["layers"]:
        L, kept = lay["layer"], lay["kept"]
        s = sums[L]
        n = np.linalg.norm(s, axis=1)
        cos = (s @ s.T) / np.outer(n, n)
        merged = {d["expert"]: d for d in lay["merged"]}
        into, worst = {}, 0.0
        for e in lay["dropped"]:
            best = max(kept, key=lambda k: (cos[e, k], -k))
            into[e] = best
            got = merged.get(e)
            report(got is not None and got["into"] == best, f"layer {L}: expert {e} merges into {best}, "
                   f"the most similar kept expert (moepack: {got and got['into']})")
            if got is not None:
                worst = max(worst, abs(got["similarity"] - cos[e, best]))
        report(worst <= 1e-4, f"layer {L}: similarities match the float64 cosines (worst difference {worst:.2g})")
        for new, k in enumerate(kept):
            members = [k] + [e for e, t in into.items() if t == k]
            c = counts[L]
            total = sum(c[e] for e in members)
            for part, src in (("gate", "w1"), ("up", "w3"), ("down", "w2")):
                name = f"layers.{L}.experts.{new}.{part}"
                got = pack_vals[name]
                if len(members) == 1 or total == c[k]:
                    want = m.ck.get(f"model.layers.{L}.block_sparse_moe.experts.{k}.{src}.weight").ravel()
                    ok = np.array_equal(got, want)
                    report(ok, f"{name}: receives nothing, the checkpoint's expert {k} exactly")
                    continue
                terms = [c[k] / total * m.ck.get(f"model.layers.{L}.block_sparse_moe.experts.{k}.{src}.weight")
                         .ravel()]
                moved = 0
                for e in members[1:]:
                    if c[e] > 0:
                        ws, perm = aligned(m, L, k, e)
                        terms.append(c[e] / total * ws[src].ravel())
                        moved += int((perm != np.arange(len(perm))).sum())
                ok = within_bf16_rounding(got, sum(terms), sum(np.abs(t) for t in terms))
                report(ok.all(), f"{name} = bf16 of the frequency-weighted average of experts {members}, "
                       f"neurons aligned to expert {k}'s ({moved} moved; weights "
                       f"{[round(c[e] / total, 4) for e in members]}; {int((~ok).sum())} off)")


def assign_min_cost(cost):
    """Row i -> column match[i] minimising the summed cost: the Hungarian method with
    potentials (Kuhn-Munkres; rows added one at a time by shortest augmenting paths)."""
    n = cost.shape[0]
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    p, way = np.zeros(n + 1, dtype=np.int64), np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    match = np.zeros(n, dtype=np.int64)
    match[p[1:] - 1] = np.arange(n)
    return match


def aligned(m, L, k, e):
    """Expert e's (gate, up, down) with its neurons permuted to best match expert k's:
    the assignment maximising the summed inner products of gate rows, up rows and down
    columns (M-SMoE's weight matching)."""
    w = {src: [m.ck.get(f"model.layers.{L}.block_sparse_moe.experts.{x}.{src}.weight") for x in (k, e)]
         for src in ("w1", "w3", "w2")}
    sim = w["w1"][0] @ w["w1"][1].T + w["w3"][0] @ w["w3"][1].T + w["w2"][0].T @ w["w2"][1]
    perm = assign_min_cost(-sim)
    return {"w1": w["w1"][1][perm], "w3": w["w3"][1][perm], "w2": w["w2"][1][:, perm]}, perm


def pruned_moe(m, L, h, kept, router):
    logits = h @ router.T
    idx, w = mf.route_softmax(m, logits)
    return mf.run_experts(h, idx, w, lambda j, x: expert_fn(m, L, kept[j])(x))


def check_refit(a, m, prune, pack_vals):
    target = a.layer
    kept = {lay["layer"]: lay["kept"] for lay in prune["layers"]}
    d = m.cfg["hidden_size"]
    A = np.zeros((d, d))
    B = np.zeros((d, len(kept[target])))
    c = 0.0
    eps = m.cfg["rms_norm_eps"]
    for tok in chunks(a):
        xo = m.ck.get("model.embed_tokens.weight")[tok]
        xp = xo.copy()
        for L in range(target + 1):
            p = f"model.layers.{L}"
            ln1, ln2 = m.ck.get(p + ".input_layernorm.weight"), m.ck.get(p + ".post_attention_layernorm.weight")
            xo = xo + mf.attn_gqa(m, L, mf.rms_norm(xo, ln1, eps))
            xp = xp + mf.attn_gqa(m, L, mf.rms_norm(xp, ln1, eps))
            ho, hp = mf.rms_norm(xo, ln2, eps), mf.rms_norm(xp, ln2, eps)
            if L == target:
                W0 = m.ck.get(p + ".block_sparse_moe.gate.weight")[kept[L]]
                T = ho @ W0.T
                A += hp.T @ hp
                B += hp.T @ T
                c += (T * T).sum()
                break
            router = pack_vals[f"layers.{L}.router"].reshape(len(kept[L]), d)
            xo = xo + m.mlp(L, ho)
            xp = xp + pruned_moe(m, L, hp, kept[L], router)
    lam = 1e-3 * np.trace(A) / d
    W = np.linalg.solve(A + lam * np.eye(d), B + lam * W0.T).T
    Wr = bf16_round(W)
    got = pack_vals[f"layers.{target}.router"].reshape(Wr.shape)
    same = (got == Wr).mean()
    ok = within_bf16_rounding(got, W, np.abs(W).max(axis=1, keepdims=True) * 1e2)
    report(ok.all() and same >= 0.99, f"layers.{target}.router = bf16 of the float64 ridge solution "
           f"({100 * same:.2f}% identical, {int((~ok).sum())} beyond one rounding)")

    def resid(Wm):
        return (np.einsum("ki,ij,kj->", Wm, A, Wm) - 2 * np.einsum("ki,ik->", Wm, B) + c) / c
    fit = {f["layer"]: f for f in prune["router_refit"]["layers"]}[target]
    rb, ra = resid(W0), resid(got)
    report(abs(fit["residual_before"] - rb) <= 1e-3 * rb and abs(fit["residual_after"] - ra) <= 1e-3 * rb,
           f"layer {target}: residuals {fit['residual_before']:.5g} -> {fit['residual_after']:.5g} "
           f"(oracle {rb:.5g} -> {ra:.5g})")
    report(ra < rb, f"layer {target}: the refit lowers the router residual")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["merge", "refit"])
    ap.add_argument("ckpt")
    ap.add_argument("pruned")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--chunks", type=int, required=True)
    ap.add_argument("--bos", type=int, required=True)
    ap.add_argument("--layer", type=int, default=1)
    a = ap.parse_args()
    m = mf.Model(a.ckpt)
    if m.family != "mixtral":
        raise SystemExit(f"{a.ckpt}: this oracle handles the mixtral family only")
    prune = json.load(open(os.path.join(a.pruned, "manifest.json")))["provenance"]["prune"]
    with tempfile.TemporaryDirectory() as tmp:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            decode_pack.decode_pack(a.pruned, tmp)
        vals = {f[:-4]: np.fromfile(os.path.join(tmp, f), dtype="<f4").astype(np.float64)
                for f in os.listdir(tmp) if f.endswith(".f32")}
    if a.mode == "merge":
        check_merge(a, m, prune, vals, None)
    else:
        check_refit(a, m, prune, vals)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
