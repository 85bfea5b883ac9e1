#!/usr/bin/python3
"""Independent NumPy reference of the HuggingFace forward pass of the MoE families
moepack supports, written from the HF modeling semantics (transformers modeling_*.py,
DeepSeek's inference/model.py) and /work/shared/REFERENCE.md, not from engine/engine*.c.

    moe_forward.py CKPT_DIR --tokens "0 1 2 ..." --out logits.f32

Runs one sequence from position 0 under a causal mask in float64 and writes the
logits [n_tokens, vocab] as little-endian f32. Families: mixtral, qwen2_moe,
qwen3_moe, olmoe, deepseek_v2, deepseek_v3 (and kimi_k2), glm4_moe, gpt_oss.
Checkpoints: one model.safetensors or shards with model.safetensors.index.json;
BF16/F16/F32, F8_E4M3 with 128x128 weight_scale_inv blocks, GPT-OSS MXFP4 experts.
MTP layers (index >= num_hidden_layers) are not run, as in HF.
--margins prints, per MoE layer, the smallest gap between the k-th and (k+1)-th
selection score over the tokens: a gap near zero means f32 engines may pick a
different expert there, legitimately.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

F = np.float64

# ---------------------------------------------------------------- tensors


def e4m3_table():
    """float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN, subnormals 2^-6 * m/8."""
    t = np.empty(256, F)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            v = math.nan
        elif e == 0:
            v = m / 8 * 2.0 ** -6
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        t[b] = -v if s else v
    return t


E4M3 = e4m3_table()
FP4 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], F)


class Checkpoint:
    """Tensors by name from one safetensors file or an index of shards, decoded to float64."""

    def __init__(self, path):
        self.dir = path
        self.config = json.load(open(os.path.join(path, "config.json")))
        index = os.path.join(path, "model.safetensors.index.json")
        files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
            else ["model.safetensors"]
        self.entries = {}
        for f in files:
            with open(os.path.join(path, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(n))
            for name, e in header.items():
                if name != "__metadata__":
                    self.entries[name] = (os.path.join(path, f), 8 + n, e)

    def has(self, name):
        return name in self.entries

    def raw(self, name):
        file, base, e = self.entries[name]
        begin, end = e["data_offsets"]
        with open(file, "rb") as fh:
            fh.seek(base + begin)
            data = fh.read(end - begin)
        dt, shape = e["dtype"], e["shape"]
        if dt == "BF16":
            a = (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = np.frombuffer(data, "<f2")
        elif dt == "F32":
            a = np.frombuffer(data, "<f4")
        elif dt == "F64":
            a = np.frombuffer(data, "<f8")
        elif dt == "F8_E4M3":
            a = E4M3[np.frombuffer(data, np.uint8)]
        elif dt == "U8":
            a = np.frombuffer(data, np.uint8)
        else:
            raise SystemExit(f"{file}: {name}: dtype {dt} not supported")
        return a.reshape(shape)

    def get(self, name):
        """A tensor as float64; FP8 weights multiplied by their 128x128 block scales."""
        a = self.raw(name)
        if self.entries[name][2]["dtype"] == "F8_E4M3":
            s = self.raw(name + "_scale_inv").astype(F)
            rows, cols = a.shape
            s = np.repeat(np.repeat(s, 128, 0), 128, 1)[:rows, :cols]
            return a * s
        return a.astype(F)

    def mxfp4(self, name):
        """'<name>_blocks' U8 [E, R, C/32, 16] + '<name>_scales' U8 [E, R, C/32] -> [E, R, C]:
        low nibble the even element, high the odd, times 2^(scale - 127)."""
        blocks, scales = self.raw(name + "_blocks"), self.raw(name + "_scales")
        lo, hi = FP4[blocks & 15], FP4[blocks >> 4]
        vals = np.stack([lo, hi], -1).reshape(*blocks.shape[:-1], 32)
        vals = vals * np.exp2(scales.astype(F) - 127)[..., None]
        return vals.reshape(*blocks.shape[:2], -1)


# ---------------------------------------------------------------- building blocks


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps) * w


def silu(x):
    return x / (1 + np.exp(-x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def linear(ck, prefix, x):
    """x @ W.T (+ bias when the checkpoint has one)."""
    y = x @ ck.get(prefix + ".weight").T
    return y + ck.get(prefix + ".bias") if ck.has(prefix + ".bias") else y


def swiglu_mlp(ck, prefix, x):
    return linear(ck, prefix + ".down_proj", silu(linear(ck, prefix + ".gate_proj", x)) * linear(ck, prefix + ".up_proj", x))


def yarn_mscale(scale, m=1.0):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def rope_tables(cfg, dim, n):
    """cos, sin [n, dim/2] for positions 0..n-1: inv_freq = theta^(-2i/dim), YaRN when
    rope_scaling says so (HF _compute_yarn_parameters: ramp between extrapolated and
    interpolated frequencies, attention factor applied to cos and sin)."""
    base = cfg.get("rope_theta", 10000.0)
    pos_freqs = base ** (np.arange(0, dim, 2, dtype=F) / dim)
    inv = 1 / pos_freqs
    attn = 1.0
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "yarn":
        factor = rs["factor"]
        orig = rs.get("original_max_position_embeddings") or cfg["max_position_embeddings"]
        m, mad = rs.get("mscale"), rs.get("mscale_all_dim")
        attn = rs.get("attention_factor") or (
            yarn_mscale(factor, m) / yarn_mscale(factor, mad) if m and mad else yarn_mscale(factor))
        bf, bs = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
        low, high = corr(bf), corr(bs)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=F) - low) / (high - low), 0, 1)
        extra = 1 - ramp
        inv = inv / factor * (1 - extra) + inv * extra
    elif kind not in (None, "default"):
        raise SystemExit(f"rope_scaling {kind} not supported")
    ang = np.arange(n, dtype=F)[:, None] * inv[None, :]
    return np.cos(ang) * attn, np.sin(ang) * attn


def rope_half(x, cos, sin):
    """x [T, H, d]: pairs (x[i], x[i + d/2]) rotated by angle i ("rotate_half")."""
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([a * c - b * s, b * c + a * s], -1)


def rope_interleaved(x, cos, sin):
    """x [T, H, d]: adjacent pairs (x[2i], x[2i+1]) rotated by angle i; output kept in
    the de-interleaved order (evens, then odds), as HF does for q and k alike."""
    return rope_half(np.concatenate([x[..., 0::2], x[..., 1::2]], -1), cos, sin)


def attend(q, k, v, scale, window=None, sinks=None):
    """q [T, H, d], k [T, Hkv, d], v [T, Hkv, dv] -> [T, H * dv]; causal, optionally a
    sliding window (key j visible from i when i - window < j <= i) and per-head sink
    logits that join the softmax denominator only."""
    T, H, _ = q.shape
    rep = H // k.shape[1]
    k, v = np.repeat(k, rep, 1), np.repeat(v, rep, 1)
    s = np.einsum("thd,shd->hts", q, k) * scale
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    visible = j <= i
    if window:
        visible &= j > i - window
    s = np.where(visible[None], s, -np.inf)
    if sinks is not None:
        s = np.concatenate([s, np.broadcast_to(sinks[:, None, None], (H, T, 1))], -1)
    p = softmax(s)[..., :T]
    return np.einsum("hts,shd->thd", p, v).reshape(T, -1)


# ---------------------------------------------------------------- attention


def attn_gqa(m, L, x):
    """Mixtral, Qwen2/3-MoE, OLMoE, GLM-4.5, GPT-OSS attention."""
    cfg, ck, p = m.cfg, m.ck, f"model.layers.{L}.self_attn"
    T, H, Hkv = x.shape[0], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    q, k, v = (linear(ck, f"{p}.{n}_proj", x) for n in "qkv")
    if m.family == "olmoe":  # q/k norms over the whole projection
        q, k = rms_norm(q, ck.get(p + ".q_norm.weight"), eps), rms_norm(k, ck.get(p + ".k_norm.weight"), eps)
        if cfg.get("clip_qkv"):
            c = cfg["clip_qkv"]
            q, k, v = np.clip(q, -c, c), np.clip(k, -c, c), np.clip(v, -c, c)
    q, k, v = q.reshape(T, H, hd), k.reshape(T, Hkv, hd), v.reshape(T, Hkv, hd)
    if m.family == "qwen3_moe" or (m.family == "glm4_moe" and cfg.get("use_qk_norm")):  # per head
        q, k = rms_norm(q, ck.get(p + ".q_norm.weight"), eps), rms_norm(k, ck.get(p + ".k_norm.weight"), eps)
    rd = int(hd * cfg.get("partial_rotary_factor", 1.0))
    cos, sin = rope_tables(cfg, rd, T)
    q = np.concatenate([rope_half(q[..., :rd], cos, sin), q[..., rd:]], -1)
    k = np.concatenate([rope_half(k[..., :rd], cos, sin), k[..., rd:]], -1)
    window, sinks = None, None
    if m.family == "gpt_oss":
        types = cfg.get("layer_types") or ["sliding_attention" if (i + 1) % 2 else "full_attention"
                                           for i in range(cfg["num_hidden_layers"])]
        window = cfg["sliding_window"] if types[L] == "sliding_attention" else None
        sinks = ck.get(p + ".sinks")
    return linear(ck, p + ".o_proj", attend(q, k, v, hd ** -0.5, window, sinks))


def attn_mla(m, L, x):
    """DeepSeek-V2/V3 multi-head latent attention (naive form: k/v expanded per head)."""
    cfg, ck, p = m.cfg, m.ck, f"model.layers.{L}.self_attn"
    T, H = x.shape[0], cfg["num_attention_heads"]
    dn, dr, dv, r = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    if cfg.get("q_lora_rank"):
        q = linear(ck, p + ".q_b_proj", rms_norm(linear(ck, p + ".q_a_proj", x), ck.get(p + ".q_a_layernorm.weight"), 1e-6))
    else:
        q = linear(ck, p + ".q_proj", x)
    q = q.reshape(T, H, dn + dr)
    ckv = linear(ck, p + ".kv_a_proj_with_mqa", x)
    kv = linear(ck, p + ".kv_b_proj", rms_norm(ckv[:, :r], ck.get(p + ".kv_a_layernorm.weight"), 1e-6))
    kv = kv.reshape(T, H, dn + dv)
    cos, sin = rope_tables(cfg, dr, T)
    rope = rope_interleaved if cfg.get("rope_interleave", True) else rope_half
    q_pe = rope(q[..., dn:], cos, sin)
    k_pe = rope(ckv[:, None, r:], cos, sin)
    qs = np.concatenate([q[..., :dn], q_pe], -1)
    ks = np.concatenate([kv[..., :dn], np.broadcast_to(k_pe, (T, H, dr))], -1)
    scale = (dn + dr) ** -0.5
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) == "yarn":
        scale *= yarn_mscale(rs["factor"], rs.get("mscale_all_dim") or 1.0) ** 2
    return linear(ck, p + ".o_proj", attend(qs, ks, kv[..., dn:], scale))


# ---------------------------------------------------------------- routing


def top_k(scores, k, margins=None):
    """Indices of the k largest per row, ties to the lower index; records the k-th/(k+1)-th gap."""
    idx = np.argsort(-scores, 1, kind="stable")[:, :k]
    if margins is not None and scores.shape[1] > k:
        srt = -np.sort(-scores, 1)
        margins.append(float(np.min(srt[:, k - 1] - srt[:, k])))
    return idx


def route_softmax(m, logits):
    """Mixtral / Qwen / OLMoE: softmax over all experts, top-k, renormalised when asked."""
    p = softmax(logits)
    idx = top_k(p, m.cfg["num_experts_per_tok"], m.margins)
    w = np.take_along_axis(p, idx, 1)
    if m.family == "mixtral" or m.cfg.get("norm_topk_prob"):
        w = w / w.sum(1, keepdims=True)
    return idx, w


def route_deepseek(m, logits, bias):
    """DeepSeek-V2 (softmax, group score = max) / V3 and GLM (sigmoid, correction bias for
    selection only, group score = sum of the top 2); keep topk_group of n_group groups."""
    cfg = m.cfg
    k, E = cfg["num_experts_per_tok"], logits.shape[1]
    scores = softmax(logits) if cfg.get("scoring_func", "sigmoid") == "softmax" else sigmoid(logits)
    choice = scores + bias if bias is not None else scores
    ng, tg = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
    method = cfg.get("topk_method", "noaux_tc")
    if ng > 1 and method != "greedy":
        g = choice.reshape(-1, ng, E // ng)
        gs = g.max(-1) if method == "group_limited_greedy" else -np.sort(-g, -1)[..., :2].sum(-1)
        keep = np.zeros_like(gs, dtype=bool)
        np.put_along_axis(keep, top_k(gs, tg), True, 1)
        choice = np.where(np.repeat(keep, E // ng, 1), choice, -np.inf)
    idx = top_k(choice, k, m.margins)
    w = np.take_along_axis(scores, idx, 1)
    if cfg.get("norm_topk_prob") and k > 1:
        w = w / (w.sum(1, keepdims=True) + 1e-20)
        if m.family == "deepseek_v2":  # V2: the scale only when not renormalising
            return idx, w
    return idx, w * cfg.get("routed_scaling_factor", 1.0)


# ---------------------------------------------------------------- MLP blocks


def run_experts(x, idx, w, expert):
    out = np.zeros_like(x)
    for e in np.unique(idx):
        rows, slot = np.nonzero(idx == e)
        out[rows] += w[rows, slot, None] * expert(int(e), x[rows])
    return out


def moe_mixtral(m, L, x):
    p = f"model.layers.{L}.block_sparse_moe"
    idx, w = route_softmax(m, linear(m.ck, p + ".gate", x))
    return run_experts(x, idx, w, lambda e, h: linear(
        m.ck, f"{p}.experts.{e}.w2", silu(linear(m.ck, f"{p}.experts.{e}.w1", h)) * linear(m.ck, f"{p}.experts.{e}.w3", h)))


def moe_qwen(m, L, x):
    """Qwen2-MoE, Qwen3-MoE, OLMoE; Qwen2 adds a shared expert gated by sigmoid(shared_expert_gate)."""
    p = f"model.layers.{L}.mlp"
    idx, w = route_softmax(m, linear(m.ck, p + ".gate", x))
    out = run_experts(x, idx, w, lambda e, h: swiglu_mlp(m.ck, f"{p}.experts.{e}", h))
    if m.ck.has(p + ".shared_expert.gate_proj.weight"):
        out += sigmoid(linear(m.ck, p + ".shared_expert_gate", x)) * swiglu_mlp(m.ck, p + ".shared_expert", x)
    return out


def moe_deepseek(m, L, x):
    """DeepSeek-V2/V3, GLM-4.5: routed experts plus always-on shared experts."""
    p = f"model.layers.{L}.mlp"
    bname = p + ".gate.e_score_correction_bias"
    bias = m.ck.get(bname) if m.ck.has(bname) else None
    idx, w = route_deepseek(m, linear(m.ck, p + ".gate", x), bias)
    out = run_experts(x, idx, w, lambda e, h: swiglu_mlp(m.ck, f"{p}.experts.{e}", h))
    if m.ck.has(p + ".shared_experts.gate_proj.weight"):
        out += swiglu_mlp(m.ck, p + ".shared_experts", x)
    return out


def moe_gpt_oss(m, L, x):
    """Router with bias: top-k on logits, softmax over the k. Stacked experts (gate = even,
    up = odd columns of gate_up), biases, clamped SwiGLU (up + 1) * gate * sigmoid(1.702 gate)."""
    ck, p = m.ck, f"model.layers.{L}.mlp"
    logits = linear(ck, p + ".router", x)
    idx = top_k(logits, m.cfg.get("num_experts_per_tok") or m.cfg["experts_per_token"], m.margins)
    w = softmax(np.take_along_axis(logits, idx, 1))
    if ck.has(p + ".experts.gate_up_proj_blocks"):
        gu, dn = ck.mxfp4(p + ".experts.gate_up_proj"), ck.mxfp4(p + ".experts.down_proj")  # [E, out, in]
    else:
        gu = ck.get(p + ".experts.gate_up_proj").transpose(0, 2, 1)  # stored [E, in, out]
        dn = ck.get(p + ".experts.down_proj").transpose(0, 2, 1)
    gub, dnb = ck.get(p + ".experts.gate_up_proj_bias"), ck.get(p + ".experts.down_proj_bias")
    limit, alpha = m.cfg.get("swiglu_limit", 7.0), 1.702

    def expert(e, h):
        y = h @ gu[e].T + gub[e]
        gate, up = np.minimum(y[:, 0::2], limit), np.clip(y[:, 1::2], -limit, limit)
        return ((up + 1) * gate * sigmoid(alpha * gate)) @ dn[e].T + dnb[e]
    return run_experts(x, idx, w, expert)


# ---------------------------------------------------------------- the model


class Model:
    FAMILIES = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "glm4_moe", "gpt_oss"}

    def __init__(self, path):
        self.ck = Checkpoint(path)
        self.cfg = self.ck.config
        fam = self.cfg.get("model_type")
        self.family = "deepseek_v3" if fam == "kimi_k2" else fam
        if self.family not in self.FAMILIES:
            raise SystemExit(f"{path}: model_type {fam} not supported")
        self.margins = []

    def is_moe(self, L):
        c, f = self.cfg, self.family
        if f in ("qwen2_moe", "qwen3_moe"):
            return L not in (c.get("mlp_only_layers") or []) and c.get("num_experts", 0) > 0 \
                and (L + 1) % c.get("decoder_sparse_step", 1) == 0
        if f in ("deepseek_v2", "deepseek_v3", "glm4_moe"):
            return c.get("n_routed_experts") is not None and L >= c.get("first_k_dense_replace", 0) \
                and L % c.get("moe_layer_freq", 1) == 0
        return True

    def mlp(self, L, x):
        if not self.is_moe(L):
            return swiglu_mlp(self.ck, f"model.layers.{L}.mlp", x)
        f = self.family
        if f == "mixtral":
            return moe_mixtral(self, L, x)
        if f == "gpt_oss":
            return moe_gpt_oss(self, L, x)
        if f in ("deepseek_v2", "deepseek_v3", "glm4_moe"):
            return moe_deepseek(self, L, x)
        return moe_qwen(self, L, x)

    def forward(self, tokens):
        ck, eps = self.ck, self.cfg["rms_norm_eps"]
        attn = attn_mla if self.family in ("deepseek_v2", "deepseek_v3") else attn_gqa
        x = ck.get("model.embed_tokens.weight")[tokens]
        for L in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{L}"
            x = x + attn(self, L, rms_norm(x, ck.get(p + ".input_layernorm.weight"), eps))
            x = x + self.mlp(L, rms_norm(x, ck.get(p + ".post_attention_layernorm.weight"), eps))
        x = rms_norm(x, ck.get("model.norm.weight"), eps)
        head = "lm_head.weight" if ck.has("lm_head.weight") else "model.embed_tokens.weight"
        return x @ ck.get(head).T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--tokens", required=True, help="space-separated token ids")
    ap.add_argument("--out", required=True, help="logits [n, vocab] as little-endian f32")
    ap.add_argument("--margins", action="store_true", help="print the smallest routing gap per MoE layer")
    a = ap.parse_args()
    tokens = np.array([int(t) for t in a.tokens.split()], dtype=np.int64)
    model = Model(a.ckpt)
    if len(tokens) == 0 or tokens.min() < 0 or tokens.max() >= model.cfg["vocab_size"]:
        raise SystemExit("tokens: expected ids in [0, vocab_size)")
    logits = model.forward(tokens)
    logits.astype("<f4").tofile(a.out)
    if a.margins:
        print("routing margins: " + " ".join(f"{g:.3g}" for g in model.margins), file=sys.stderr)


if __name__ == "__main__":
    main()
