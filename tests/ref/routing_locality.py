#!/usr/bin/python3
"""Independent check of `moepack profile`'s routing locality, written from the
definitions in docs/profile.md ("Routing locality"), not from verify/*.c.

    routing_locality.py TRACE PROFILE_JSON
        recomputes from the routing trace (--routing-trace) the reuse figures and the
        expert-cache hit rates (LRU, LFU, pinned + LRU, static, Belady) with plain,
        slow, obviously-correct simulators and compares them with the profile's --json;
        checks invariants: Belady >= every policy, LRU at 100 % = 1 - distinct/accesses.
    routing_locality.py TRACE PROFILE_JSON --model CKPT --ids IDS [--chunks N]
        ... and the next-layer prediction recomputed with numpy (tests/ref/moe_forward.py's
        layers in float64): per MoE layer the recall of layer l+1's router applied to the
        residual stream after layer l (Mixtral / Qwen-MoE softmax routers).

Prints one "PASS: ..." or "FAIL: ..." line per check; exits 1 when any failed.
"""
import json
import os
import re
import sys

failures = 0
WINDOWS = (1, 4, 16)
POLICIES = ("lru", "lfu", "pinned_lru", "static", "belady")
TOL = 1e-9


def check(name, ok, detail=""):
    global failures
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok or not detail else " (" + detail + ")"))
    failures += 0 if ok else 1


def read_trace(path):
    """(ctx, experts, top_k, layers in order, choices[token][layer position] = [experts])."""
    with open(path) as f:
        head = f.readline()
        m = re.match(r"# moepack routing trace: ctx (\d+), experts (\d+), top_k (\d+);", head)
        if not m:
            raise SystemExit(f"{path}: not a routing trace: {head!r}")
        ctx, n_exp, k = map(int, m.groups())
        layers, rows = [], []
        for line in f:
            v = list(map(int, line.split()))
            t, layer, chosen = v[0], v[1], v[2:]
            if layer not in layers:
                layers.append(layer)
            if t == len(rows):
                rows.append([])
            rows[t].append(chosen)
    return ctx, n_exp, k, layers, rows


# ---- reuse


def reuse_figures(ctx, n_exp, rows, m):
    """Over pairs (token, chosen expert) with at least N later tokens in the sequence:
    share chosen again within the next N, and the mean of 1 - (1 - f_x)^N."""
    n = len(rows)
    freq = [0.0] * n_exp
    for t in range(n):
        for x in rows[t][m]:
            freq[x] += 1
    freq = [c / n for c in freq]
    out = []
    for N in WINDOWS:
        pairs = reused = 0
        indep = 0.0
        for t in range(n):
            if t % ctx + N > ctx - 1:
                continue
            for x in rows[t][m]:
                pairs += 1
                reused += any(x in rows[t + d][m] for d in range(1, N + 1))
                indep += 1 - (1 - freq[x]) ** N
        out.append((reused / pairs, indep / pairs))
    return out


# ---- caches: each returns the hit count; all start empty


def lru(acc, cap):
    cache, hits = [], 0  # most recent last
    for i in acc:
        if i in cache:
            hits += 1
            cache.remove(i)
        elif len(cache) == cap:
            cache.pop(0)
        cache.append(i)
    return hits


def lfu(acc, cap):
    """Evict the fewest accesses since the start (evicted items keep their count), then the least recent."""
    count, last, cache, hits = {}, {}, set(), 0
    for t, i in enumerate(acc):
        count[i] = count.get(i, 0) + 1
        last[i] = t
        if i in cache:
            hits += 1
            continue
        if len(cache) == cap:
            cache.remove(min(cache, key=lambda j: (count[j], last[j])))
        cache.add(i)
    return hits


def pinned(acc, cap, n_pin, hot):
    """The n_pin hottest stay once loaded; the rest share an LRU of cap - n_pin."""
    pins, loaded, rest, hits = set(hot[:n_pin]), set(), [], 0
    for i in acc:
        if i in pins:
            hits += i in loaded
            loaded.add(i)
        elif i in rest:
            hits += 1
            rest.remove(i)
            rest.append(i)
        elif cap - n_pin > 0:
            if len(rest) == cap - n_pin:
                rest.pop(0)
            rest.append(i)
    return hits


def belady(acc, cap):
    """On a miss in a full cache, what is needed farthest ahead (possibly the incoming item) stays out."""
    n = len(acc)
    nxt, seen = [0] * n, {}
    for t in range(n - 1, -1, -1):
        nxt[t] = seen.get(acc[t], n)
        seen[acc[t]] = t
    cache, hits = {}, 0  # item -> its next use
    for t, i in enumerate(acc):
        if i in cache:
            hits += 1
            cache[i] = nxt[t]
            continue
        if len(cache) < cap:
            cache[i] = nxt[t]
            continue
        far = max(cache, key=lambda j: cache[j])
        if nxt[t] < cache[far]:
            del cache[far]
            cache[i] = nxt[t]
    return hits


def simulate(policy, acc, cap, hot):
    if policy == "lru":
        return lru(acc, cap)
    if policy == "lfu":
        return lfu(acc, cap)
    if policy == "pinned_lru":
        return pinned(acc, cap, cap // 2, hot)
    if policy == "static":
        return pinned(acc, cap, cap, hot)
    return belady(acc, cap)


def check_locality(trace, report):
    ctx, n_exp, k, layers, rows = read_trace(trace)
    loc = json.load(open(report))["routing_locality"]
    check("trace: tokens = profile tokens", len(rows) == json.load(open(report))["tokens"])
    check("trace: layers = profile MoE layers", layers == [e["layer"] for e in loc["layers"]])
    for m, entry in enumerate(loc["layers"]):
        for w, (r, q) in enumerate(reuse_figures(ctx, n_exp, rows, m)):
            N = WINDOWS[w]
            check(f"layer {layers[m]} reuse@{N}", abs(entry["reuse"][w] - r) < TOL, f"{entry['reuse'][w]} vs {r}")
            check(f"layer {layers[m]} independent@{N}", abs(entry["independent"][w] - q) < TOL,
                  f"{entry['independent'][w]} vs {q}")
    # runtime order: token by token, layer by layer, each token's experts in order
    acc = [m * n_exp + x for t in range(len(rows)) for m in range(len(layers)) for x in rows[t][m]]
    items = len(layers) * n_exp
    counts = [0] * items
    for i in acc:
        counts[i] += 1
    hot = sorted(range(items), key=lambda i: (-counts[i], i))
    cache = loc["cache"]
    distinct = sum(c > 0 for c in counts)
    check("cache: accesses", cache["accesses"] == len(acc), f"{cache['accesses']} vs {len(acc)}")
    check("cache: distinct experts", cache["distinct"] == distinct)
    for c, pct in enumerate(cache["capacity_pct"]):
        cap = max(1, items * pct // 100)
        check(f"cache: capacity at {pct}%", cache["capacity"][c] == cap, f"{cache['capacity'][c]} vs {cap}")
        for p in POLICIES:
            want = simulate(p, acc, cap, hot) / len(acc)
            got = cache["hit_rate"][p][c]
            check(f"cache {pct}%: {p} hit rate", abs(got - want) < TOL, f"{got} vs {want}")
        others = [cache["hit_rate"][p][c] for p in POLICIES]
        check(f"cache {pct}%: Belady >= every policy", max(others) <= cache["hit_rate"]["belady"][c] + TOL, str(others))
        if pct == 100:
            want = 1 - distinct / len(acc)
            check("cache 100%: LRU = 1 - distinct / accesses", abs(cache["hit_rate"]["lru"][c] - want) < TOL,
                  f"{cache['hit_rate']['lru'][c]} vs {want}")
    return ctx, k, layers, rows, loc


# ---- next-layer prediction (numpy)


def check_prediction(model_dir, ids_path, n_chunks, ctx, k, layers, rows, loc):
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import moe_forward as mf

    m = mf.Model(model_dir)
    ck, cfg, eps = m.ck, m.cfg, m.cfg["rms_norm_eps"]
    gate = "block_sparse_moe.gate" if m.family == "mixtral" else "mlp.gate"
    if m.family not in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"):
        print(f"SKIP: prediction of {m.family} (softmax routers only)")
        return
    wide = min(2 * k, cfg.get("num_local_experts") or cfg.get("num_experts"))
    bos = cfg.get("bos_token_id", 1)
    ids = [bos] + list(map(int, open(ids_path).read().split()))
    hits = {L: [0, 0, 0] for L in layers}  # k, wide, total
    agree = total = 0
    for c in range(n_chunks):
        tokens = [bos] + ids[c * ctx + 1:(c + 1) * ctx]
        x = ck.get("model.embed_tokens.weight")[tokens]
        pred = None
        for L in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{L}"
            x = x + mf.attn_gqa(m, L, mf.rms_norm(x, ck.get(p + ".input_layernorm.weight"), eps))
            h = mf.rms_norm(x, ck.get(p + ".post_attention_layernorm.weight"), eps)
            actual = np.argsort(-mf.linear(ck, f"{p}.{gate}", h), 1, kind="stable")[:, :k]
            m_idx = layers.index(L)
            for t in range(ctx):
                agree += set(actual[t]) == set(rows[c * ctx + t][m_idx])
                total += 1
                if pred is not None:
                    a = set(actual[t])
                    hits[L][0] += len(a & set(pred[t, :k]))
                    hits[L][1] += len(a & set(pred[t, :wide]))
                    hits[L][2] += k
            x = x + m.mlp(L, h)
            if L + 1 < cfg["num_hidden_layers"]:
                q = f"model.layers.{L + 1}"
                h_next = mf.rms_norm(x, ck.get(q + ".post_attention_layernorm.weight"), eps)
                pred = np.argsort(-mf.linear(ck, f"{q}.{gate}", h_next), 1, kind="stable")
    check("numpy routing = the trace's (>= 99% of token-layer choices)", agree >= 0.99 * total, f"{agree}/{total}")
    for e in loc["layers"]:
        L = e["layer"]
        if hits[L][2] == 0:
            check(f"layer {L}: no prediction for the first layer", e["next_layer_recall"] is None)
            continue
        for key, j in (("next_layer_recall", 0), ("next_layer_recall_wide", 1)):
            want = hits[L][j] / hits[L][2]
            check(f"layer {L}: {key}", abs(e[key] - want) < 0.01, f"{e[key]} vs numpy {want}")


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    ctx, k, layers, rows, loc = check_locality(args[0], args[1])
    if "--model" in args:
        opt = dict(zip(args[2::2], args[3::2]))
        n_chunks = int(opt.get("--chunks", len(rows) // ctx))
        check_prediction(opt["--model"], opt["--ids"], n_chunks, ctx, k, layers, rows, loc)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
