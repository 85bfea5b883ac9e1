#!/usr/bin/python3
"""Checks the layout of a compressed-tensors checkpoint exported from a pack, written
from compressed-tensors' definitions (pack_quantized.py, the float-quantized format,
quant_scheme.py presets) and vLLM's loading rules, not from moepack's code.

usage: ct_layout.py CT_DIR PACK LABEL FORMAT [SHARD_SIZE]

Prints PASS:/FAIL: lines for:
  - the files: model.safetensors alone, or model-0000i-of-0000N.safetensors with an index;
    every file a valid safetensors file with metadata {"format": "pt"};
  - the tensors: exactly the names, dtypes and shapes the pack's tensors give
    (w4: weight_packed I32 [N, K/8], weight_scale F16 [N, K/g], weight_zero_point I32
    [ceil(N/8), K/g] when asymmetric, weight_shape I64 [2] = [N, K]; fp8: weight F8_E4M3,
    weight_scale F32 [1] | [N, 1] | [ceil(N/128), ceil(K/128)]; others as stored);
  - the index: weight_map covers every tensor with the file holding it, total_size;
  - shard sizes (when SHARD_SIZE is given): no file over it unless it holds one tensor;
  - config.json: the pack's config with quantization_config (quant_method, format FORMAT,
    status, one group per scheme with the preset's weight and activation arguments,
    targets that select each quantized linear for its own group only, and for routed
    experts also under the gate_proj/up_proj/down_proj names vLLM's fused MoE asks for,
    ignore = exactly the unquantized linears);
  - the side files copied byte for byte.
"""
import json
import os
import re
import struct
import sys

LINEAR = re.compile(r"(^|\.)(attn\.(q|k|v|o|q_a|q_b|kv_a|kv_b)|mlp\.(gate|up|down)|shared\.(gate|up|down)"
                    r"|experts\.[0-9]+\.(gate|up|down)|router|shared_gate|eh_proj|head|lm_head)$")
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
PLAIN = {"f32": "F32", "bf16": "BF16", "f16": "F16"}

failed = 0


def report(label, what, ok, detail=""):
    global failed
    if ok:
        print(f"PASS: {label}: {what}")
    else:
        failed += 1
        print(f"FAIL: {label}: {what} ({detail})")


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    size = os.path.getsize(path)
    meta = header.pop("__metadata__", None)
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for begin, end, name in spans:
        v = header[name]
        count = 1
        for d in v["shape"]:
            count *= d
        if begin != pos or end - begin != count * DTYPE_BYTES[v["dtype"]]:
            raise ValueError(f"{name}: bytes [{begin}, {end}) do not follow at {pos} or do not match its shape")
        pos = end
    if 8 + n + pos != size:
        raise ValueError(f"data ends at {8 + n + pos}, file at {size}")
    return header, meta


def expected_tensors(manifest):
    """name -> (dtype, shape) from the pack's tensors; and the quantized modules."""
    want, modules = {}, {}
    for t in manifest["tensors"]:
        enc, src = t["encoding"], t["source"]
        shape = t["shape"]
        if enc in PLAIN:
            want[src] = (PLAIN[enc], shape)
            continue
        mod = src[: -len(".weight")]
        n, k = shape
        modules[mod] = t
        if enc == "w4":
            g = t["group"]
            want[mod + ".weight_packed"] = ("I32", [n, k // 8])
            want[mod + ".weight_scale"] = ("F16", [n, k // g])
            if not t["sym"]:
                want[mod + ".weight_zero_point"] = ("I32", [(n + 7) // 8, k // g])
            want[mod + ".weight_shape"] = ("I64", [2])
        else:
            want[mod + ".weight"] = ("F8_E4M3", [n, k])
            scale = {"tensor": [1], "channel": [n, 1],
                     "block": [(n + 127) // 128, (k + 127) // 128]}[t["scale"]]
            want[mod + ".weight_scale"] = ("F32", scale)
    return want, modules


def scheme_key(t):
    return ("w4", t["group"], t["sym"]) if t["encoding"] == "w4" else ("fp8", t["scale"])


def want_args(key):
    """The weight and input-activation arguments of the matching preset."""
    if key[0] == "w4":
        w = {"num_bits": 4, "type": "int", "symmetric": key[2], "strategy": "group", "group_size": key[1],
             "block_structure": None, "dynamic": False, "actorder": None}
        return w, None
    strategy = {"tensor": "tensor", "channel": "channel", "block": "block"}[key[1]]
    w = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": strategy, "group_size": None,
         "block_structure": [128, 128] if key[1] == "block" else None, "dynamic": False, "actorder": None}
    act = {"block": ("group", 128), "channel": ("token", None), "tensor": ("tensor", None)}[key[1]]
    a = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": act[0], "group_size": act[1],
         "dynamic": True}
    return w, a


def matches(target, name):
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name


def vllm_expert_names(module):
    """The names vLLM's fused MoE looks an expert layer's scheme up by."""
    prefix = module.rsplit(".", 2)[0]
    return [f"{prefix}.0.{p}" for p in ("gate_proj", "up_proj", "down_proj")]


def check_groups(label, qc, modules):
    groups = qc.get("config_groups", {})
    keys = []
    for t in modules.values():
        if scheme_key(t) not in keys:
            keys.append(scheme_key(t))
    by_key = {}
    problems = []
    for name, g in groups.items():
        w, a = g.get("weights", {}), g.get("input_activations")
        key = next((k for k in keys if all(w.get(f) == v for f, v in want_args(k)[0].items())), None)
        if key is None:
            problems.append(f"{name}: weights {w} match no scheme of the pack")
            continue
        want_a = want_args(key)[1]
        if want_a is None and a is not None or want_a is not None and (
                a is None or any(a.get(f) != v for f, v in want_a.items())):
            problems.append(f"{name}: input_activations {a}, wanted {want_a}")
        by_key[key] = g
    if sorted(by_key, key=str) != sorted(keys, key=str) or len(groups) != len(keys):
        problems.append(f"groups {list(groups)} for schemes {keys}")
    report(label, "one config group per scheme with the preset's arguments", not problems, "; ".join(problems))
    if problems:
        return
    problems = []
    for mod, t in modules.items():
        own = by_key[scheme_key(t)]
        names = [mod] + (vllm_expert_names(mod) if ".experts." in t["name"] else [])
        for name in names:
            hits = [gn for gn, g in groups.items() if any(matches(x, name) for x in g["targets"])]
            if len(groups) == 1 and groups[next(iter(groups))]["targets"] == ["Linear"]:
                continue  # the class target selects every linear
            if hits != [n for n, g in groups.items() if g is own]:
                problems.append(f"{name}: selected by {hits}")
    report(label, "targets select each quantized linear for its own group only", not problems,
           "; ".join(problems[:4]))


def check_config(label, ct_dir, pack_dir, manifest, modules, fmt):
    cfg = json.load(open(os.path.join(ct_dir, "config.json")))
    src = json.load(open(os.path.join(pack_dir, "config.json")))
    kept = {k: v for k, v in cfg.items() if k != "quantization_config"}
    report(label, "config.json keeps the pack's config", kept == {k: v for k, v in src.items()
                                                                   if k != "quantization_config"})
    qc = cfg.get("quantization_config")
    if fmt == "none":
        report(label, "no quantization_config for an unquantized pack", qc is None, str(qc)[:200])
        return
    if qc is None:
        report(label, "quantization_config present", False, "missing")
        return
    top = {"quant_method": "compressed-tensors", "format": fmt, "quantization_status": "compressed",
           "kv_cache_scheme": None}
    bad = {k: qc.get(k) for k, v in top.items() if qc.get(k) != v}
    report(label, f"quantization_config is compressed-tensors, format {fmt}, compressed", not bad, str(bad))
    check_groups(label, qc, modules)
    unquantized = {t["source"][: -len(".weight")] for t in manifest["tensors"]
                   if t["encoding"] in PLAIN and LINEAR.search(t["name"]) and t["source"].endswith(".weight")}
    ignore = set(qc.get("ignore", []))
    report(label, "ignore lists exactly the unquantized linears", ignore == unquantized,
           f"extra {sorted(ignore - unquantized)[:3]} missing {sorted(unquantized - ignore)[:3]}")


def main():
    ct_dir, pack_dir, label, fmt = sys.argv[1:5]
    shard_size = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    manifest = json.load(open(os.path.join(pack_dir, "manifest.json")))
    files = sorted(f for f in os.listdir(ct_dir) if f.endswith(".safetensors"))
    index_path = os.path.join(ct_dir, "model.safetensors.index.json")
    n = len(files)
    names_ok = files == ["model.safetensors"] if n == 1 else \
        files == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    report(label, "shard files named as huggingface_hub names them",
           names_ok and os.path.exists(index_path) == (n > 1), f"{files}, index {os.path.exists(index_path)}")
    tensors, where, per_file = {}, {}, {}
    try:
        for f in files:
            header, meta = read_header(os.path.join(ct_dir, f))
            if meta != {"format": "pt"}:
                raise ValueError(f"{f}: metadata {meta}")
            per_file[f] = header
            for k, v in header.items():
                if k in tensors:
                    raise ValueError(f"{k} in two files")
                tensors[k] = (v["dtype"], v["shape"])
                where[k] = f
        report(label, "valid safetensors files with format pt", True)
    except (ValueError, KeyError, OSError) as e:
        report(label, "valid safetensors files with format pt", False, str(e))
        return
    want, modules = expected_tensors(manifest)
    diff = [k for k in set(want) | set(tensors) if want.get(k) != tensors.get(k)]
    report(label, "tensors, dtypes and shapes as compressed-tensors lays them out", not diff,
           "; ".join(f"{k}: {tensors.get(k)} wanted {want.get(k)}" for k in sorted(diff)[:4]))
    if n > 1:
        index = json.load(open(index_path))
        total = sum(os.path.getsize(os.path.join(ct_dir, f)) - 8 - struct.unpack(
            "<Q", open(os.path.join(ct_dir, f), "rb").read(8))[0] for f in files)
        ok = index.get("weight_map") == where and index.get("metadata", {}).get("total_size") == total
        report(label, "index maps every tensor to its file, total_size", ok,
               f"{len(index.get('weight_map', {}))} entries for {len(where)}, total "
               f"{index.get('metadata', {}).get('total_size')} vs {total}")
    if shard_size:
        over = [f for f in files if os.path.getsize(os.path.join(ct_dir, f)) > shard_size and len(per_file[f]) > 1]
        report(label, f"no shard over {shard_size} bytes", not over, str(over))
        # greedy filling: the first tensor of the next shard would not have fitted (its
        # header entry counted at up to its name plus 140 bytes)
        loose = []
        for f, g in zip(files, files[1:]):
            first = min(per_file[g], key=lambda k: per_file[g][k]["data_offsets"][0])
            span = per_file[g][first]["data_offsets"]
            if os.path.getsize(os.path.join(ct_dir, f)) + span[1] - span[0] + len(first) + 140 <= shard_size:
                loose.append(f"{f} + {first}")
        report(label, "shards filled greedily in order", not loose and n > 1, f"{loose[:3]}, {n} files")
    check_config(label, ct_dir, pack_dir, manifest, modules, fmt)
    side = [f for f in ("generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")
            if os.path.exists(os.path.join(pack_dir, f))]
    same = all(os.path.exists(os.path.join(ct_dir, f)) and
               open(os.path.join(ct_dir, f), "rb").read() == open(os.path.join(pack_dir, f), "rb").read()
               for f in side)
    report(label, f"side files copied ({', '.join(side)})", same and side != [])


main()
sys.exit(1 if failed else 0)
