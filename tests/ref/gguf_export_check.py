"""Checks a GGUF export against its pack, independently of moepack's C code: the GGUF
as @huggingface/gguf parsed it (tests/ref/gguf_meta.mjs), the export's --json summary,
the pack's manifest, config.json and tier files. Prints PASS:/FAIL: lines.
Usage: python3 gguf_export_check.py META.json SUMMARY.json PACK LABEL [TOKENIZER_EXPECT.json]

What llama.cpp needs is restated here from its sources (src/llama-arch.cpp names,
src/models/*.cpp keys, convert_hf_to_gguf.py): the expected keys come from config.json,
the expected tensors, shapes and types from the pack's manifest."""
import json
import os
import struct
import sys

import numpy as np

ARCH = {"mixtral": "llama", "qwen2_moe": "qwen2moe", "qwen3_moe": "qwen3moe", "olmoe": "olmoe",
        "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2", "glm4_moe": "glm4moe",
        "gpt_oss": "gpt-oss"}
# ggml type: (values per block, bytes per block)
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 20: (32, 18), 23: (256, 136)}
GRID = {"q8_0": 8, "q4_0": 2, "q4_1": 3, "q4_k": 12, "q5_k": 13, "q6_k": 14, "iq4_nl": 20, "iq4_xs": 23}
FLOAT = {"f32": 0, "f16": 1, "bf16": 30}
U32, F32, BOOL, STR = 4, 6, 7, 8

failures = 0


def check(label, name, ok, detail=""):
    global failures
    if ok:
        print(f"PASS: {label}: {name}")
    else:
        failures += 1
        print(f"FAIL: {label}: {name} ({str(detail)[:300]})")


def nbytes(ne, t):
    values = int(np.prod(ne))
    per, size = BLOCK[t]
    return values // per * size


def padded(n):
    return (n + 31) // 32 * 32


# ---- expected metadata ----

def expected_keys(family, cfg, manifest):
    a = ARCH[family]
    names = {t["name"] for t in manifest["tensors"]}
    layers = cfg["num_hidden_layers"]
    mtp = cfg.get("num_nextn_predict_layers", 0) if family == "glm4_moe" and "mtp.0.eh_proj" in names else 0
    n_exp = cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts")))
    k = {f"{a}.block_count": (U32, layers + mtp), f"{a}.context_length": (U32, cfg["max_position_embeddings"]),
         f"{a}.embedding_length": (U32, cfg["hidden_size"]), f"{a}.attention.head_count": (U32, cfg["num_attention_heads"]),
         f"{a}.expert_count": (U32, n_exp), f"{a}.expert_used_count": (U32, cfg["num_experts_per_tok"]),
         f"{a}.attention.layer_norm_rms_epsilon": (F32, cfg["rms_norm_eps"]), f"{a}.rope.freq_base": (F32, cfg["rope_theta"]),
         "general.architecture": (STR, a), "general.alignment": (U32, 32), "general.quantization_version": (U32, 2)}
    if a == "deepseek2":
        nope, rope, kv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["kv_lora_rank"]
        k.update({f"{a}.attention.head_count_kv": (U32, 1), f"{a}.attention.kv_lora_rank": (U32, kv),
                  f"{a}.attention.key_length": (U32, kv + rope), f"{a}.attention.value_length": (U32, kv),
                  f"{a}.attention.key_length_mla": (U32, nope + rope),
                  f"{a}.attention.value_length_mla": (U32, cfg["v_head_dim"]), f"{a}.rope.dimension_count": (U32, rope),
                  f"{a}.leading_dense_block_count": (U32, cfg["first_k_dense_replace"]),
                  f"{a}.expert_feed_forward_length": (U32, cfg["moe_intermediate_size"]),
                  f"{a}.expert_shared_count": (U32, cfg["n_shared_experts"]),
                  f"{a}.expert_weights_scale": (F32, cfg["routed_scaling_factor"]),
                  f"{a}.expert_weights_norm": (BOOL, cfg["norm_topk_prob"]),
                  f"{a}.expert_gating_func": (U32, 2 if cfg["scoring_func"] == "sigmoid" else 1),
                  f"{a}.expert_group_count": (U32, cfg["n_group"]), f"{a}.expert_group_used_count": (U32, cfg["topk_group"]),
                  f"{a}.vocab_size": (U32, cfg["vocab_size"])})
        if cfg.get("q_lora_rank"):
            k[f"{a}.attention.q_lora_rank"] = (U32, cfg["q_lora_rank"])
        return k
    hd = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    k.update({f"{a}.attention.head_count_kv": (U32, cfg["num_key_value_heads"]), f"{a}.attention.key_length": (U32, hd),
              f"{a}.attention.value_length": (U32, hd),
              f"{a}.rope.dimension_count": (U32, int(hd * cfg.get("partial_rotary_factor", 0.5)) if a == "glm4moe" else hd)})
    if a == "llama":
        k[f"{a}.vocab_size"] = (U32, cfg["vocab_size"])
        k[f"{a}.feed_forward_length"] = (U32, cfg["intermediate_size"])
    if a in ("qwen2moe", "qwen3moe", "glm4moe"):
        k[f"{a}.expert_feed_forward_length"] = (U32, cfg["moe_intermediate_size"])
    if a == "qwen2moe":
        k[f"{a}.expert_shared_feed_forward_length"] = (U32, cfg["shared_expert_intermediate_size"])
    if a == "glm4moe":
        k.update({f"{a}.expert_shared_count": (U32, cfg["n_shared_experts"]),
                  f"{a}.leading_dense_block_count": (U32, cfg["first_k_dense_replace"]),
                  f"{a}.expert_gating_func": (U32, 2), f"{a}.expert_weights_scale": (F32, cfg["routed_scaling_factor"]),
                  f"{a}.expert_weights_norm": (BOOL, cfg["norm_topk_prob"])})
        if mtp:
            k[f"{a}.nextn_predict_layers"] = (U32, mtp)
    if a == "gpt-oss":
        rs = cfg["rope_scaling"]
        k.update({f"{a}.expert_feed_forward_length": (U32, cfg["intermediate_size"]),
                  f"{a}.attention.sliding_window": (U32, cfg["sliding_window"]),
                  f"{a}.rope.scaling.type": (STR, "yarn"), f"{a}.rope.scaling.factor": (F32, rs["factor"]),
                  f"{a}.rope.scaling.original_context_length": (U32, rs["original_max_position_embeddings"])})
    return k


def check_keys(label, family, cfg, manifest, meta):
    md, types = meta["metadata"], meta["types"]
    for key, (typ, want) in expected_keys(family, cfg, manifest).items():
        got = md.get(key)
        ok = key in md and types[key] == typ and (
            abs(got - want) <= 1e-6 * max(1.0, abs(want)) if typ == F32 else got == want)
        check(label, f"key {key} = {want}", ok, f"got {got!r} of type {types.get(key)}")
    check(label, "general.file_type is a u32", types.get("general.file_type") == U32)


# ---- expected tensors ----

LOCAL = {"input_norm": "attn_norm.weight", "attn.q": "attn_q.weight", "attn.k": "attn_k.weight",
         "attn.v": "attn_v.weight", "attn.o": "attn_output.weight", "attn.q.bias": "attn_q.bias",
         "attn.k.bias": "attn_k.bias", "attn.v.bias": "attn_v.bias", "attn.o.bias": "attn_output.bias",
         "attn.q_norm": "attn_q_norm.weight", "attn.k_norm": "attn_k_norm.weight", "attn.sinks": "attn_sinks.weight",
         "attn.q_a": "attn_q_a.weight", "attn.q_a_norm": "attn_q_a_norm.weight", "attn.q_b": "attn_q_b.weight",
         "attn.kv_a": "attn_kv_a_mqa.weight", "attn.kv_a_norm": "attn_kv_a_norm.weight",
         "mlp.gate": "ffn_gate.weight", "mlp.up": "ffn_up.weight", "mlp.down": "ffn_down.weight",
         "router": "ffn_gate_inp.weight", "router.bias": "ffn_gate_inp.bias", "correction_bias": "exp_probs_b.bias",
         "shared.gate": "ffn_gate_shexp.weight", "shared.up": "ffn_up_shexp.weight",
         "shared.down": "ffn_down_shexp.weight", "shared_gate": "ffn_gate_inp_shexp.weight",
         "enorm": "nextn.enorm.weight", "hnorm": "nextn.hnorm.weight", "eh_proj": "nextn.eh_proj.weight",
         "head_norm": "nextn.shared_head_norm.weight", "head": "nextn.shared_head_head.weight",
         "embed": "nextn.embed_tokens.weight"}


def gtype(t, vector):
    if vector:
        return 0
    e = t["encoding"]
    if e in FLOAT:
        return FLOAT[e]
    if e in GRID:
        return GRID[e]
    if e == "w4":
        return 2 if t["sym"] else 3
    return 30  # fp8


def kb_type(t, nope):
    e = t["encoding"]
    if e in FLOAT:
        return FLOAT[e]
    base = gtype(t, False)
    per = BLOCK[base][0]
    if nope % per == 0:
        return base
    alt = 20 if base == 23 else 8
    return alt if nope % 32 == 0 else 0


def expected_tensors(family, cfg, manifest):
    a = ARCH[family]
    by_name = {t["name"]: t for t in manifest["tensors"]}
    layers = cfg["num_hidden_layers"]
    keep_mtp = family == "glm4_moe" and "mtp.0.eh_proj" in by_name
    post = "post_attention_norm.weight" if a in ("glm4moe", "gpt-oss") else "ffn_norm.weight"
    out = {}  # name -> (ne, type, sources, transform)

    def vector(name, ne):
        return len(ne) == 1 or name.endswith(".bias") or name.endswith("_norm.weight")

    def shape_ne(t):
        return [t["shape"][0]] if len(t["shape"]) == 1 else [t["shape"][1], t["shape"][0]]

    for t in manifest["tensors"]:
        n = t["name"]
        glob = {"embed": "token_embd.weight", "final_norm": "output_norm.weight", "lm_head": "output.weight"}
        if n in glob:
            ne = shape_ne(t)
            out[glob[n]] = (ne, gtype(t, vector(glob[n], ne)), [n], "rows")
            continue
        parts = n.split(".")
        mtp = parts[0] == "mtp"
        if mtp and not keep_mtp:
            continue
        block = int(parts[1]) + (layers if mtp else 0)
        local = ".".join(parts[2:])
        if parts[2] == "experts":
            proj, kind = parts[4], ("bias" if n.endswith(".bias") else "weight")
            name = f"blk.{block}.ffn_{proj}_exps.{kind}"
            e = int(parts[3])
            ne = shape_ne(t) + [cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts")))]
            prev = out.get(name, (ne, gtype(t, vector(name, ne)), [None] * ne[-1], "stack"))
            prev[2][e] = n
            out[name] = prev
            continue
        if local == "attn.kv_b":
            nope, v, h = cfg["qk_nope_head_dim"], cfg["v_head_dim"], cfg["num_attention_heads"]
            out[f"blk.{block}.attn_k_b.weight"] = ([nope, t["shape"][1], h], kb_type(t, nope), [n], "mla_k_b")
            out[f"blk.{block}.attn_v_b.weight"] = ([t["shape"][1], v, h], gtype(t, False), [n], "mla_v_b")
            continue
        gname = f"blk.{block}." + (post if local == "post_attn_norm" else LOCAL[local])
        ne = shape_ne(t)
        if local == "shared_gate":
            ne = [t["shape"][1]]
        rope = a == "llama" and local in ("attn.q", "attn.k", "attn.q.bias", "attn.k.bias")
        out[gname] = (ne, gtype(t, vector(gname, ne)), [n], "rope_permute" if rope else "rows")
    return out


def check_tensors(label, family, cfg, manifest, metas, summary):
    want = expected_tensors(family, cfg, manifest)
    got = {}
    for i, m in enumerate(metas):
        for t in m["tensors"]:
            got[t["name"]] = (t, i)
    check(label, f"the {len(want)} expected tensors are there, nothing else", set(want) == set(got),
          f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}")
    bad_shape = [n for n in want if n in got and got[n][0]["ne"] != want[n][0]]
    check(label, "tensor shapes (ne, innermost first)", not bad_shape,
          [(n, got[n][0]["ne"], want[n][0]) for n in bad_shape[:3]])
    bad_type = [n for n in want if n in got and got[n][0]["type"] != want[n][1]]
    check(label, "tensor types", not bad_type, [(n, got[n][0]["type"], want[n][1]) for n in bad_type[:3]])
    stacked = [n for n in want if want[n][3] == "stack" and n.endswith(".weight")]
    n_exp = cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts")))
    check(label, f"{len(stacked)} stacked expert tensors of {n_exp} experts",
          stacked and all(n in got and got[n][0]["ne"][-1] == n_exp and len(got[n][0]["ne"]) == 3 for n in stacked))
    entries = {t["name"]: t for t in summary["tensors"]}
    bad_src = [n for n in want if n not in entries or entries[n]["sources"] != want[n][2]
               or entries[n]["transform"] != want[n][3] or entries[n]["ne"] != want[n][0]]
    check(label, "--json names each tensor's pack sources, in expert order, and its transform", not bad_src,
          [(n, entries.get(n, {}).get("sources"), want[n][2]) for n in bad_src[:2]])


def check_layout(label, meta):
    off, ok, detail = 0, True, ""
    for t in meta["tensors"]:
        if t["offset"] != off:
            ok, detail = False, f"{t['name']} at {t['offset']}, expected {off}"
            break
        off += padded(nbytes(t["ne"], t["type"]))
    check(label, f"{os.path.basename(meta['file'])}: offsets are the running sum of 32-padded sizes", ok, detail)
    end = meta["tensor_data_offset"] + off
    check(label, f"{os.path.basename(meta['file'])}: data section aligned and the file ends after the last tensor",
          meta["tensor_data_offset"] % 32 == 0 and meta["bytes"] == end, f"{meta['bytes']} vs {end}")


# ---- bytes ----

def pack_part(pack, manifest, t):
    rec = manifest["records"][t["record"]]
    part = rec["parts"][t["part"]]
    tier = manifest["tiers"][rec["tier"]]
    assert tier["codec"] == "none"
    with open(os.path.join(pack, tier["file"]), "rb") as f:
        f.seek(rec["offset"] + part["offset"])
        return f.read(part["length"])


def gguf_bytes(meta, t):
    with open(meta["file"], "rb") as f:
        f.seek(meta["tensor_data_offset"] + t["offset"])
        return f.read(nbytes(t["ne"], t["type"]))


def row_bytes(t):
    per, size = BLOCK[gtype(t, False)]
    return t["shape"][-1] // per * size


def rope_rows(data, rows, heads, rb):
    hd = rows // heads
    out = []
    for r in range(rows):
        h, k = divmod(r, hd)
        s = h * hd + (k % 2) * (hd // 2) + k // 2
        out.append(data[s * rb:(s + 1) * rb])
    return b"".join(out)


def decode_w4_sym(t, raw):
    rows, cols = t["shape"] if len(t["shape"]) == 2 else (1, t["shape"][0])
    g = t["group"]
    codes = np.frombuffer(raw[:rows * cols // 2], np.uint8)
    q = np.stack([codes & 15, codes >> 4], axis=1).reshape(rows, cols).astype(np.float32)
    s = np.frombuffer(raw[rows * cols // 2:rows * cols // 2 + rows * cols // g * 2], np.float16).astype(np.float32)
    return ((q - 8) * np.repeat(s.reshape(rows, cols // g), g, axis=1)).astype(np.float32)


def decode_q4_0(raw, rows, cols):
    b = np.frombuffer(raw, np.uint8).reshape(rows * cols // 32, 18)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    qs = b[:, 2:]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)
    return ((q - 8) * d).reshape(rows, cols).astype(np.float32)


def check_bytes(label, manifest, pack, metas, summary):
    by_name = {t["name"]: t for t in manifest["tensors"]}
    where = {t["name"]: (t, m) for m in metas for t in m["tensors"]}
    copied = lossless = 0
    bad = []
    for e in summary["tensors"]:
        t, m = where[e["name"]]
        srcs = [by_name[s] for s in e["sources"]]
        data = gguf_bytes(m, t)
        if e["mode"] == "copied" and t["type"] != 0 and e["transform"] in ("rows", "stack", "rope_permute"):
            rb = row_bytes(srcs[0])
            want = b"".join(bytes(w[:rb * (s["shape"][0] if len(s["shape"]) == 2 else 1)]) for w, s in
                            zip([pack_part(pack, manifest, s) for s in srcs], srcs))
            if e["transform"] == "rope_permute":
                want = rope_rows(want, srcs[0]["shape"][0], e["heads"], rb)
            copied += 1
            if data != want:
                bad.append(e["name"])
        elif e["mode"] == "copied" and t["type"] == 0 and srcs[0]["encoding"] == "bf16" and e["transform"] != "rope_permute":
            raw = b"".join(pack_part(pack, manifest, s)[:2 * int(np.prod(s["shape"]))] for s in srcs)
            want = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).tobytes()
            copied += 1
            if data != want:
                bad.append(e["name"])
        elif e["lossless"] and t["type"] == 2 and e["transform"] in ("rows", "stack", "rope_permute"):
            got = decode_q4_0(data, int(np.prod(t["ne"][1:])), t["ne"][0])
            want = np.concatenate([decode_w4_sym(s, pack_part(pack, manifest, s)) for s in srcs])
            if e["transform"] == "rope_permute":
                hd = want.shape[0] // e["heads"]
                k = np.arange(want.shape[0]) % hd
                want = want[np.arange(want.shape[0]) // hd * hd + (k % 2) * (hd // 2) + k // 2]
            lossless += 1
            if not np.array_equal(got, want):
                bad.append(e["name"])
    check(label, f"{copied} copied tensors hold the pack's bytes (rows permuted where llama.cpp wants), "
                 f"{lossless} w4->Q4_0 decode to the same values", (copied or lossless) and not bad, bad[:3])


def check_tokenizer(label, meta, expect):
    md = meta["metadata"]
    for key, want in expect.items():
        got = md.get(key)
        if key == "tokenizer.ggml.tokens#":
            check(label, f"{want} tokens", len(md.get("tokenizer.ggml.tokens", [])) == want
                  and len(md.get("tokenizer.ggml.token_type", [])) == want, len(md.get("tokenizer.ggml.tokens", [])))
        elif key == "tokenizer.ggml.merges#":
            check(label, f"{want} merges", len(md.get("tokenizer.ggml.merges", [])) == want,
                  len(md.get("tokenizer.ggml.merges", [])))
        elif key == "tokenizer.ggml.scores#":
            check(label, f"scores {'present' if want else 'absent'}",
                  ("tokenizer.ggml.scores" in md) == bool(want) and (not want or len(md["tokenizer.ggml.scores"]) == want))
        else:
            check(label, f"{key} = {want!r}", got == want, f"got {got!r}")


def main():
    metas = json.load(open(sys.argv[1]))
    summary = json.load(open(sys.argv[2]))
    pack, label = sys.argv[3], sys.argv[4]
    family = label.split(":")[0]
    manifest = json.load(open(os.path.join(pack, "manifest.json")))
    cfg = json.load(open(os.path.join(pack, "config.json")))
    check_keys(label, family, cfg, manifest, metas[0])
    check_tensors(label, family, cfg, manifest, metas, summary)
    for m in metas:
        check_layout(label, m)
    check_bytes(label, manifest, pack, metas, summary)
    if len(sys.argv) > 5:
        check_tokenizer(label, metas[0], json.loads(sys.argv[5]))
    sys.exit(1 if failures else 0)


main()
