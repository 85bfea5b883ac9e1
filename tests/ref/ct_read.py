#!/usr/bin/python3
"""Independent reader of compressed-tensors checkpoints (the format vLLM loads), written
from the published format: the safetensors layout (REFERENCE.md section 1), and
compressed-tensors' quantization_config, pack_to_int32 / unpack_from_int32, the
naive/float compressors and lifecycle dequantize (REFERENCE.md sections 4 and 8;
neuralmagic/compressed-tensors and vllm-project/compressed-tensors sources; vLLM's
compressed_tensors_wNa16 for the zero-point layout it loads).

usage: ct_read.py DIR OUTDIR [--exact]
       ct_read.py DIR --meta

  DIR      a checkpoint directory: config.json with quantization_config (without it,
           an unquantized checkpoint: every tensor dense)
           {quant_method: "compressed-tensors", format, config_groups, ignore, ...},
           *.safetensors shards and model.safetensors.index.json (or a single
           model.safetensors without an index)
  OUTDIR   receives OUTDIR/<name>.f32 (raw little-endian float32, PyTorch row-major)
           for every weight: a quantized module's weight under <module>.weight (e.g.
           model.layers.0.mlp.experts.3.down_proj.weight, from .weight_packed or the
           quantized .weight), every other floating-point tensor (norms, embeddings,
           biases, ignored layers) under its own name. Auxiliary tensors (weight_scale,
           weight_zero_point, weight_shape, weight_g_idx, input_scale, ...) are not
           written. One line per written tensor on stdout: "name format shape", format
           one of pack-quantized, float-quantized, int-quantized, dense; shape as NxK.
  --exact  write the exact product (q - zp) * scale in float32 instead of rounding it to
           the scale's dtype (see below); for comparison with decoders that keep it.
  --meta   print JSON {"quantization_config": ..., "shards": [...], "tensors": [...],
           "aux": [...]} describing every tensor, without dequantizing.

Exit status 0; 1 on a violation (one line on stderr naming the problem); 2 usage.

Dequantization, as compressed-tensors' decompress does it (lifecycle/forward.py
_dequantize): x_q.to(scale.dtype), minus zero_point.to(scale.dtype), times scale, all
in the scale's dtype, so the result is the exact product rounded once to the scale's
dtype (bf16 or f16: round to nearest even, as PyTorch rounds a float to them; f32:
one float32 multiply). Computed here as: the integer q - zp (exact), converted to
float32 (exact), times the float32 value of the scale (exact for bf16/f16 scales: at
most 4 + 11 significant bits), then rounded to the scale's dtype and widened back to
float32 for the .f32 file. vLLM's Marlin kernels dequantize the same way into the
activation dtype (subtract the zero point exactly, one multiply rounded to bf16/f16),
so these are the weights vLLM multiplies with.

  pack-quantized (int, num_bits b dividing 32, usually 4): weight_packed int32
    [N, ceil(K*b/32)]: element k of a row is bits b*(k mod 32/b) of word k div (32/b),
    stored unsigned as q + 2^(b-1) (q signed in [-2^(b-1), 2^(b-1)-1]); weight_shape
    [N, K] (int32 or int64); weight_scale [N, K/group] (group), [N, 1] (channel) or
    one value (tensor), in the model dtype; asymmetric group/channel:
    weight_zero_point int32 [ceil(N*b/32), G] packed the same way along dim 0 (word
    [i, g] holds rows (32/b)*i + j at bits b*j), also stored as zp + 2^(b-1); so
    w = (stored_q - stored_zp) * scale, and symmetric w = (stored_q - 2^(b-1)) * scale.
    Optional weight_g_idx int32 [K] (activation order): column k uses group g_idx[k].
  float-quantized (float, 8 bits): weight F8_E4M3 [N, K] (e4m3fn: bias 7, no inf, NaN
    0x7f/0xff) and weight_scale: one value (tensor), [N, 1] (channel), [ceil(N/bh),
    ceil(K/bw)] (block, block_structure [bh, bw], usually [128, 128]) or [N, K/group];
    w = fp8 * scale (no zero point).
  int-quantized / naive-quantized with an int type: weight I8 [N, K], weight_scale as
    above, weight_zero_point I8 (unpacked) when asymmetric; w = (q - zp) * scale.
  dense: F32, F16, BF16 (and F64) tensors are widened to float32 exactly (F64 rounded).

Structure checked: config.json holds a compressed-tensors quantization_config; the
index maps every tensor of every shard to that shard and names no tensor a shard lacks;
each shard is a valid safetensors file (header <= 100 MB, JSON object, no duplicate
names, data_offsets contiguous from 0 in order and covering the whole data buffer,
byte sizes matching dtype and shape); every quantized module matches a config group
(vLLM's rule: a target equal to the module name or a "re:" regex matching it from the
start, else a class-name target such as "Linear", which this reader, having no module
classes, takes to cover every quantized module) and is not in ignore; its tensors
fit the group's format and weights args (num_bits, type, symmetric, strategy,
group_size dividing K, block_structure) and weight_shape; static input activations
have an input_scale; a dense matrix that a group targets by name or regex is in ignore
(one that only a class target could cover gets a note on stderr). Notes, not
violations: shapes or group sizes vLLM's Marlin kernels refuse (group_size not
-1/32/64/128, N not a multiple of 64, K not a multiple of 128).
"""

import json
import os
import re
import sys

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.stderr.write("ct_read.py: numpy is required (Debian: python3-numpy)\n")
    sys.exit(2)


class CTError(Exception):
    """A violation of the compressed-tensors / safetensors format."""


def fail(msg):
    raise CTError(msg)


# ---------------------------------------------------------------------------
# safetensors

MAX_HEADER = 100_000_000
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
NP_DTYPE = {"U8": "<u1", "I8": "<i1", "F8_E4M3": "<u1", "I16": "<i2", "U16": "<u2", "F16": "<u2",
            "BF16": "<u2", "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8",
            "BOOL": "<u1"}


def _no_dup(where):
    def hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                fail("%s: duplicate key %r" % (where, k))
            d[k] = v
        return d
    return hook


class Shard:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if size < 8 or len(head) < 8:
                    fail("%s: %d bytes, too small for the 8-byte header length" % (self.name, size))
                n = int.from_bytes(head, "little")
                if n > MAX_HEADER:
                    fail("%s: header length %d exceeds %d" % (self.name, n, MAX_HEADER))
                if 8 + n > size:
                    fail("%s: header length %d runs past the end of the file (%d bytes)" % (self.name, n, size))
                text = f.read(n)
        except OSError as e:
            fail("%s: cannot read: %s" % (path, e))
        if not text.startswith(b"{"):
            fail("%s: the header does not start with '{'" % self.name)
        try:
            hdr = json.loads(text.decode("utf-8"), object_pairs_hook=_no_dup(self.name + " header"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("%s: the header is not UTF-8 JSON: %s" % (self.name, e))
        if not isinstance(hdr, dict):
            fail("%s: the header is not a JSON object" % self.name)
        self.metadata = hdr.pop("__metadata__", None)
        if self.metadata is not None and (not isinstance(self.metadata, dict) or
                                          not all(isinstance(v, str) for v in self.metadata.values())):
            fail("%s: __metadata__ must map strings to strings" % self.name)
        self.data_start = 8 + n
        self.tensors = {}
        spans = []
        for name, info in hdr.items():
            where = "%s: tensor %r" % (self.name, name)
            if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"} or len(info) != 3:
                fail("%s: entry must have exactly dtype, shape, data_offsets" % where)
            dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
            if dt not in DTYPE_BITS:
                fail("%s: unknown dtype %r" % (where, dt))
            if not isinstance(shape, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape):
                fail("%s: bad shape %r" % (where, shape))
            if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in offs)
                    and 0 <= offs[0] <= offs[1]):
                fail("%s: bad data_offsets %r" % (where, offs))
            nel = 1
            for x in shape:
                nel *= x
            bits = nel * DTYPE_BITS[dt]
            if bits % 8:
                fail("%s: %d elements of %s are not a whole number of bytes" % (where, nel, dt))
            if offs[1] - offs[0] != bits // 8:
                fail("%s: data_offsets %r span %d bytes, %s %s takes %d" % (where, offs, offs[1] - offs[0], dt, shape, bits // 8))
            self.tensors[name] = {"dtype": dt, "shape": shape, "begin": offs[0], "end": offs[1]}
            spans.append((offs[0], offs[1], name))
        spans.sort()
        pos = 0
        for b, e, name in spans:
            if b != pos:
                fail("%s: tensor %r starts at %d, the previous tensor ends at %d (gap or overlap)" % (self.name, name, b, pos))
            pos = e
        if self.data_start + pos != size:
            fail("%s: the tensors end at %d but the file has %d bytes" % (self.name, self.data_start + pos, size))

    def array(self, name):
        t = self.tensors[name]
        dt = NP_DTYPE.get(t["dtype"])
        if dt is None:
            fail("%s: tensor %r has dtype %s, which this reader does not decode" % (self.name, name, t["dtype"]))
        n = t["end"] - t["begin"]
        if n == 0:
            return np.zeros(t["shape"], dtype=dt)
        a = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.data_start + t["begin"], shape=(n,))
        return a.view(dt).reshape(t["shape"])


# ---------------------------------------------------------------------------
# number formats

def bf16_to_f32(u16):
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f16_to_f32(u16):
    # float16 -> float32 is exact in NumPy (NaN payloads aside)
    return np.asarray(u16, dtype=np.uint16).view(np.float16).astype(np.float32)


def f32_to_bf16_bits(x):
    """Round float32 to bfloat16, nearest even (PyTorch's c10::BFloat16 rounding); NaN ->
    0x7fc0."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r).astype(np.uint16)


def round_to(x, dtype):
    """float32 array -> float32 array holding x rounded to the safetensors dtype."""
    if dtype == "F32":
        return x
    if dtype == "BF16":
        return bf16_to_f32(f32_to_bf16_bits(x))
    if dtype == "F16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)  # IEEE round to nearest even
    fail("scale dtype %s is not F32, F16 or BF16" % dtype)


def float_values(a, dtype):
    if dtype == "F32":
        return np.asarray(a, dtype=np.float32).copy()
    if dtype == "BF16":
        return bf16_to_f32(a)
    if dtype == "F16":
        return f16_to_f32(a)
    if dtype == "F64":
        return np.asarray(a, dtype=np.float64).astype(np.float32)
    fail("dtype %s is not a float dtype" % dtype)


def _e4m3fn_table():
    t = np.zeros(256, dtype=np.float32)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            t[b] = np.nan
            continue
        v = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
        t[b] = -v if s else v
    assert t[0x7E] == 448 and t[0x01] == 2.0 ** -9 and t[0x38] == 1.0
    return t


E4M3FN = _e4m3fn_table()


# ---------------------------------------------------------------------------
# config

AUX = ("weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx", "weight_global_scale",
       "input_scale", "input_zero_point", "input_global_scale", "output_scale", "output_zero_point",
       "k_scale", "v_scale", "q_scale")
QUANT_FORMATS = ("pack-quantized", "float-quantized", "int-quantized", "naive-quantized")


def load_config(d):
    path = os.path.join(d, "config.json")
    try:
        with open(path, "rb") as f:
            cfg = json.loads(f.read().decode("utf-8"), object_pairs_hook=_no_dup("config.json"))
    except OSError as e:
        fail("config.json: cannot read: %s" % e)
    except (UnicodeDecodeError, ValueError) as e:
        fail("config.json: not UTF-8 JSON: %s" % e)
    if not isinstance(cfg, dict):
        fail("config.json: not a JSON object")
    if "quantization_config" not in cfg: # an unquantized checkpoint: every tensor dense
        return cfg, {"quant_method": None, "config_groups": {}, "format": "dense", "ignore": []}
    qc = cfg["quantization_config"]
    if not isinstance(qc, dict):
        fail("config.json: quantization_config is not an object")
    if qc.get("quant_method") != "compressed-tensors":
        fail("config.json: quantization_config.quant_method is %r, want \"compressed-tensors\"" % (qc.get("quant_method"),))
    groups = qc.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        fail("config.json: quantization_config.config_groups must be a non-empty object")
    fmt = qc.get("format")
    if not isinstance(fmt, str):
        fail("config.json: quantization_config.format must be a string, got %r" % (fmt,))
    ignore = qc.get("ignore", []) or []
    if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
        fail("config.json: quantization_config.ignore must be a list of strings")
    for gname, g in groups.items():
        where = "config.json: config_groups.%s" % gname
        if not isinstance(g, dict):
            fail("%s is not an object" % where)
        tg = g.get("targets")
        if not isinstance(tg, list) or not tg or not all(isinstance(x, str) for x in tg):
            fail("%s.targets must be a non-empty list of strings" % where)
        w = g.get("weights")
        if w is not None:
            normalize_weights(w, where + ".weights")
        gf = g.get("format")
        if gf is not None and not isinstance(gf, str):
            fail("%s.format must be a string" % where)
        if gf is None and fmt == "mixed-precision":
            fail("%s: the top-level format is mixed-precision, so the group needs its own format" % where)
    return cfg, qc


def normalize_weights(w, where):
    """Fills in what QuantizationArgs infers (strategy from group_size) and checks it."""
    if not isinstance(w, dict):
        fail("%s is not an object" % where)
    a = dict(w)
    a.setdefault("num_bits", 8)
    a.setdefault("type", "int")
    a.setdefault("symmetric", True)
    gs, st = a.get("group_size"), a.get("strategy")
    if st is None:
        st = "tensor" if gs is None else "group" if gs > 0 else "channel" if gs == -1 else None
        if st is None:
            fail("%s: invalid group_size %r" % (where, gs))
    a["strategy"] = st
    if st not in ("tensor", "channel", "group", "block", "token", "tensor_group", "attn_head"):
        fail("%s: unknown strategy %r" % (where, st))
    if st in ("group", "tensor_group") and (not isinstance(gs, int) or gs <= 0):
        fail("%s: strategy %s needs a positive group_size, got %r" % (where, st, gs))
    if isinstance(gs, int) and gs > 0 and st not in ("group", "tensor_group"):
        fail("%s: group_size %d requires strategy group, not %s" % (where, gs, st))
    bs = a.get("block_structure")
    if (st == "block") != (bs is not None):
        fail("%s: block_structure goes with strategy block (strategy %s, block_structure %r)" % (where, st, bs))
    if bs is not None and (not isinstance(bs, list) or len(bs) != 2 or not all(isinstance(x, int) and x > 0 for x in bs)):
        fail("%s: block_structure %r is not [rows, cols]" % (where, bs))
    if a["type"] not in ("int", "float"):
        fail("%s: type %r is not int or float" % (where, a["type"]))
    if not isinstance(a["num_bits"], int) or not 1 <= a["num_bits"] <= 8:
        fail("%s: num_bits %r is not 1..8" % (where, a["num_bits"]))
    if a.get("actorder") not in (None, False, "group", "weight", "dynamic", "static", True):
        fail("%s: actorder %r" % (where, a.get("actorder")))
    return a


def _name_match(name, target):
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name


def _is_class_target(t):
    """A module class name such as "Linear": not a regex, no dots, capitalized (module
    names are lower case paths; this reader has no module classes to test against)."""
    return not t.startswith("re:") and "." not in t and t[:1].isupper()


def find_group(qc, module):
    """(group name, group) for a quantized module, by vLLM's precedence: a target equal
    to the name or a "re:" regex matching it (groups and targets in order) first, else a
    class-name target, taken to cover every quantized linear."""
    for gname, g in qc["config_groups"].items():
        for t in g["targets"]:
            if _name_match(module, t):
                return gname, g
    for gname, g in qc["config_groups"].items():
        for t in g["targets"]:
            if _is_class_target(t):
                return gname, g
    return None, None


def ignored(qc, module):
    return any(_name_match(module, t) for t in (qc.get("ignore") or []))


# ---------------------------------------------------------------------------
# checkpoint

class Checkpoint:
    def __init__(self, d):
        self.dir = d
        self.cfg, self.qc = load_config(d)
        idx_path = os.path.join(d, "model.safetensors.index.json")
        on_disk = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
        self.notes = []
        if os.path.exists(idx_path):
            try:
                with open(idx_path, "rb") as f:
                    idx = json.loads(f.read().decode("utf-8"), object_pairs_hook=_no_dup("model.safetensors.index.json"))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                fail("model.safetensors.index.json: %s" % e)
            wm = idx.get("weight_map") if isinstance(idx, dict) else None
            if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
                fail("model.safetensors.index.json: weight_map must map tensor names to file names")
            files = sorted(set(wm.values()))
            for f in files:
                if "/" in f or not os.path.isfile(os.path.join(d, f)):
                    fail("model.safetensors.index.json: shard %r is not a file in the checkpoint" % f)
            for f in on_disk:
                if f not in files:
                    self.notes.append("%s is not in the index (loaders ignore it)" % f)
        else:
            if on_disk != ["model.safetensors"]:
                fail("no model.safetensors.index.json, and the shards are %s, not just model.safetensors" % on_disk)
            wm, files = None, on_disk
        self.shards = [Shard(os.path.join(d, f)) for f in files]
        self.where = {}
        for s in self.shards:
            for name in s.tensors:
                if name in self.where:
                    fail("tensor %r is in both %s and %s" % (name, self.where[name].name, s.name))
                self.where[name] = s
        if wm is not None:
            for name, f in wm.items():
                s = self.where.get(name)
                if s is None:
                    fail("model.safetensors.index.json: %r is mapped to %s, which does not hold it" % (name, f))
                if s.name != f:
                    fail("model.safetensors.index.json: %r is mapped to %s but is in %s" % (name, f, s.name))
            for name, s in self.where.items():
                if name not in wm:
                    fail("model.safetensors.index.json: tensor %r of %s is not in the weight_map" % (name, s.name))
        self.entries = self._plan()

    def info(self, name):
        s = self.where[name]
        return dict(s.tensors[name], file=s.name)

    def array(self, name):
        return self.where[name].array(name)

    def _plan(self):
        names = self.where
        modules = {}
        for n in names:
            if n.endswith(".weight_packed"):
                modules[n[:-len(".weight_packed")]] = "packed"
        for n in names:
            if n.endswith(".weight_scale"):
                m = n[:-len(".weight_scale")]
                if m not in modules:
                    if m + ".weight" not in names:
                        fail("%s has no %s.weight or %s.weight_packed" % (n, m, m))
                    modules[m] = "weight"
        entries = []
        aux_of = set()
        for m in sorted(modules):
            e = self._module(m, modules[m])
            entries.append(e)
            aux_of.update(e["parts"].values())
        self.aux = []
        for n in sorted(names):
            if n in aux_of:
                continue
            suffix = n.rsplit(".", 1)[-1]
            if suffix in AUX:
                self.aux.append(n)
                continue
            dt = self.where[n].tensors[n]["dtype"]
            shape = self.where[n].tensors[n]["shape"]
            if dt in ("F32", "F16", "BF16", "F64"):
                entries.append({"name": n, "format": "dense", "shape": shape, "parts": {"weight": n}, "dtype": dt})
                if n.endswith(".weight") and len(shape) == 2:
                    self._check_dense(n[:-len(".weight")])
            elif n.endswith(".weight") and dt in ("F8_E4M3", "I8", "I32", "U8"):
                fail("%s: a %s weight with no weight_scale" % (n, dt))
            else:
                self.aux.append(n)
                self.notes.append("%s (%s) is neither a float tensor nor part of a quantized module: not written" % (n, dt))
        entries.sort(key=lambda e: e["name"])
        return entries

    def _check_dense(self, m):
        """A dense matrix that a config group targets by name must be in ignore (vLLM would
        expect it quantized); one only a class target ("Linear") could cover gets a note."""
        if ignored(self.qc, m):
            return
        for gname, g in self.qc["config_groups"].items():
            if g.get("weights") is None:
                continue
            for t in g["targets"]:
                if _name_match(m, t):
                    fail("%s.weight: stored dense, but config group %s targets it (%r) and it is not in ignore" %
                         (m, gname, t))
        if "embed" not in m and any(_is_class_target(t) for g in self.qc["config_groups"].values()
                                    if g.get("weights") is not None for t in g["targets"]):
            self.notes.append("%s.weight is dense and not in ignore; if it is a Linear, a class target would make "
                              "vLLM expect it quantized" % m)

    def _module(self, m, kind):
        qc = self.qc
        if ignored(qc, m):
            fail("%s: listed in quantization_config.ignore but stored quantized" % m)
        gname, g = find_group(qc, m)
        if g is None or g.get("weights") is None:
            fail("%s: stored quantized but no config group with weights targets it" % m)
        args = normalize_weights(g["weights"], "config_groups.%s.weights" % gname)
        fmt = g.get("format") or qc["format"]
        parts = {}
        for s in AUX:
            if m + "." + s in self.where:
                parts[s] = m + "." + s
        e = {"name": m + ".weight", "module": m, "group": gname, "args": args, "parts": parts}
        b = args["num_bits"]
        if kind == "packed":
            parts["weight_packed"] = m + ".weight_packed"
            if fmt != "pack-quantized":
                fail("%s: has weight_packed but its format is %s" % (m, fmt))
            if args["type"] != "int" or 32 % b:
                fail("%s: pack-quantized needs an int type with num_bits dividing 32 (here %s %d)" % (m, args["type"], b))
            for need in ("weight_scale", "weight_shape"):
                if need not in parts:
                    fail("%s: pack-quantized but no %s" % (m, need))
            pk = self.info(parts["weight_packed"])
            if pk["dtype"] != "I32":
                fail("%s.weight_packed: dtype %s, want I32" % (m, pk["dtype"]))
            ws = self.info(parts["weight_shape"])
            if ws["dtype"] not in ("I32", "I64") or len(ws["shape"]) != 1:
                fail("%s.weight_shape: %s %s, want a vector of I32/I64" % (m, ws["dtype"], ws["shape"]))
            shape = [int(x) for x in self.array(parts["weight_shape"])]
            if len(shape) < 2 or any(x <= 0 for x in shape):
                fail("%s.weight_shape: %s is not a matrix shape" % (m, shape))
            per = 32 // b
            want = shape[:-1] + [-(-shape[-1] // per)]
            if pk["shape"] != want:
                fail("%s.weight_packed: shape %s, but weight_shape %s at %d bits needs %s" % (m, pk["shape"], shape, b, want))
            e["format"], e["shape"], e["dtype"] = "pack-quantized", shape, "I32"
            gs = args.get("group_size") if args["strategy"] == "group" else -1
            if gs not in (-1, 32, 64, 128) or shape[-2] % 64 or shape[-1] % 128:
                self.notes.append("%s: [%d, %d] group %s: vLLM's Marlin kernels want group_size in -1/32/64/128, "
                                  "N %% 64 == 0, K %% 128 == 0 (older vLLM refuses otherwise)" %
                                  (m, shape[-2], shape[-1], gs))
        else:
            parts["weight"] = m + ".weight"
            w = self.info(parts["weight"])
            shape = w["shape"]
            if len(shape) < 2:
                fail("%s.weight: shape %s, want a matrix" % (m, shape))
            if w["dtype"] == "F8_E4M3":
                if args["type"] != "float" or b != 8:
                    fail("%s.weight is F8_E4M3 but the group's weights are %s %d-bit" % (m, args["type"], b))
                if fmt not in ("float-quantized", "naive-quantized"):
                    fail("%s: F8_E4M3 weight but its format is %s" % (m, fmt))
                e["format"] = "float-quantized"
            elif w["dtype"] == "I8":
                if args["type"] != "int":
                    fail("%s.weight is I8 but the group's weights are %s" % (m, args["type"]))
                if fmt not in ("int-quantized", "naive-quantized"):
                    fail("%s: I8 weight but its format is %s" % (m, fmt))
                e["format"] = "int-quantized"
            else:
                fail("%s.weight: dtype %s with a weight_scale (want F8_E4M3 or I8)" % (m, w["dtype"]))
            e["shape"], e["dtype"] = shape, w["dtype"]
        self._check_scales(e, args)
        ia = g.get("input_activations")
        if isinstance(ia, dict) and not ia.get("dynamic", False) and "input_scale" not in parts:
            fail("%s: the group's input activations are static but there is no %s.input_scale" % (m, m))
        return e

    def _check_scales(self, e, a):
        m, shape, parts = e["module"], e["shape"], e["parts"]
        lead, N, K = shape[:-2], shape[-2], shape[-1]
        sc = self.info(parts["weight_scale"])
        if sc["dtype"] not in ("F32", "F16", "BF16"):
            fail("%s.weight_scale: dtype %s, want F32, F16 or BF16" % (m, sc["dtype"]))
        e["scale_dtype"] = sc["dtype"]
        st = a["strategy"]
        if st == "group":
            gs = a["group_size"]
            if K % gs:
                fail("%s: group_size %d does not divide K = %d" % (m, gs, K))
            want = lead + [N, K // gs]
        elif st == "channel":
            want = lead + [N, 1]
        elif st == "tensor":
            want = None
            if int(np.prod(sc["shape"])) != (int(np.prod(lead)) if lead else 1):
                fail("%s.weight_scale: shape %s, strategy tensor wants one value" % (m, sc["shape"]))
        elif st == "block":
            bh, bw = a["block_structure"]
            want = lead + [-(-N // bh), -(-K // bw)]
        else:
            fail("%s: weights strategy %s is not one a weight uses" % (m, st))
        if want is not None and sc["shape"] != want:
            fail("%s.weight_scale: shape %s, strategy %s of %s wants %s" % (m, sc["shape"], st, shape, want))
        zp = parts.get("weight_zero_point")
        if a["symmetric"]:
            if zp is not None:
                self.notes.append("%s: symmetric but has a weight_zero_point (compressed-tensors drops it; ignored here)" % m)
                del parts["weight_zero_point"]
        else:
            if e["format"] == "float-quantized":
                fail("%s: float quantization with symmetric false is not supported" % m)
            if zp is None:
                fail("%s: asymmetric (symmetric false) but no weight_zero_point" % m)
            z = self.info(zp)
            G = 1 if st in ("tensor",) else (want[-1] if want else 1)
            if e["format"] == "pack-quantized" and st in ("group", "channel"):
                per = 32 // a["num_bits"]
                wz = lead + [-(-N // per), G]
                if z["dtype"] != "I32" or z["shape"] != wz:
                    fail("%s.weight_zero_point: %s %s, want I32 %s (packed along dim 0)" % (m, z["dtype"], z["shape"], wz))
            else:
                wz = sc["shape"]
                if z["dtype"] not in ("I8", "I32") or z["shape"] != wz:
                    fail("%s.weight_zero_point: %s %s, want I8 %s" % (m, z["dtype"], z["shape"], wz))
        if "weight_g_idx" in parts:
            if st != "group":
                fail("%s: weight_g_idx with strategy %s" % (m, st))
            gi = self.info(parts["weight_g_idx"])
            if gi["dtype"] != "I32" or gi["shape"] != [K]:
                fail("%s.weight_g_idx: %s %s, want I32 [%d]" % (m, gi["dtype"], gi["shape"], K))
            g = np.asarray(self.array(parts["weight_g_idx"]))
            G = K // a["group_size"]
            if g.size and (g.min() < 0 or g.max() >= G):
                fail("%s.weight_g_idx: values outside 0..%d" % (m, G - 1))
            if np.any(np.bincount(g, minlength=G) != a["group_size"]):
                fail("%s.weight_g_idx: not every group has exactly group_size = %d columns" % (m, a["group_size"]))

    # -- decoding -------------------------------------------------------------------

    def decode(self, e, exact=False):
        if e["format"] == "dense":
            return float_values(self.array(e["name"]), e["dtype"]).reshape(-1)
        a, parts, shape = e["args"], e["parts"], e["shape"]
        lead, N, K = shape[:-2], shape[-2], shape[-1]
        L = int(np.prod(lead)) if lead else 1
        b = a["num_bits"]
        if e["format"] == "pack-quantized":
            per = 32 // b
            words = np.asarray(self.array(parts["weight_packed"])).view(np.uint32).reshape(L, N, -1)
            shifts = (np.arange(per, dtype=np.uint32) * b)
            q = ((words[:, :, :, None] >> shifts) & ((1 << b) - 1)).reshape(L, N, -1)[:, :, :K].astype(np.int32)
            # q holds stored = signed + 2^(b-1)
        elif e["format"] == "float-quantized":
            q = None
            v = E4M3FN[np.asarray(self.array(parts["weight"])).reshape(L, N, K)]
        else:
            q = np.asarray(self.array(parts["weight"])).reshape(L, N, K).astype(np.int32) + (1 << (b - 1))
        scale = float_values(self.array(parts["weight_scale"]), e["scale_dtype"])
        st = a["strategy"]
        cols = np.arange(K)
        if st == "group":
            gcol = np.asarray(self.array(parts["weight_g_idx"])).astype(np.int64) if "weight_g_idx" in parts \
                else cols // a["group_size"]
            s = scale.reshape(L, N, -1)[:, :, gcol]
        elif st == "channel":
            s = np.broadcast_to(scale.reshape(L, N, 1), (L, N, K))
            gcol = np.zeros(K, dtype=np.int64)
        elif st == "tensor":
            s = np.broadcast_to(scale.reshape(L, 1, 1), (L, N, K))
            gcol = None
        else:  # block
            bh, bw = a["block_structure"]
            sb = scale.reshape(L, -(-N // bh), -(-K // bw))
            s = sb[:, (np.arange(N) // bh)[:, None], (cols // bw)[None, :]]
        if q is not None:
            if a["symmetric"]:
                diff = q - (1 << (b - 1))
            else:
                zpa = np.asarray(self.array(parts["weight_zero_point"]))
                if e["format"] == "pack-quantized" and st in ("group", "channel"):
                    per = 32 // b
                    zw = zpa.view(np.uint32).reshape(L, zpa.shape[-2], zpa.shape[-1])
                    shifts = (np.arange(per, dtype=np.uint32) * b)
                    # word [i, g] holds rows per*i + j at bits b*j
                    z = ((zw[:, :, None, :] >> shifts[None, None, :, None]) & ((1 << b) - 1))
                    z = z.reshape(L, -1, zpa.shape[-1])[:, :N, :].astype(np.int32)  # stored zp + 2^(b-1)
                else:
                    z = zpa.reshape(L, N if st != "tensor" else 1, -1).astype(np.int32) + (1 << (b - 1))
                if st == "tensor":
                    zz = np.broadcast_to(z.reshape(L, 1, 1), (L, N, K))
                else:
                    zz = z[:, :, gcol]
                diff = q - zz
            v = diff.astype(np.float32)  # exact small integers
        with np.errstate(all="ignore"):
            w = np.multiply(v, s, dtype=np.float32)
        if not exact:
            w = round_to(w, e["scale_dtype"])
        return w.reshape(-1)


def shape_str(shape):
    return "x".join(str(x) for x in shape) if shape else "scalar"


def meta(ck):
    tensors = []
    for e in ck.entries:
        d = {"name": e["name"], "format": e["format"], "shape": e["shape"], "dtype": e["dtype"],
             "parts": {k: ck.info(v) for k, v in e["parts"].items()}}
        for v in d["parts"].values():
            v.pop("begin"); v.pop("end")
        if e["format"] != "dense":
            d.update(group=e["group"], scale_dtype=e["scale_dtype"],
                     weights={k: e["args"].get(k) for k in ("num_bits", "type", "symmetric", "strategy", "group_size",
                                                          "block_structure", "actorder")})
        tensors.append(d)
    aux = []
    for n in ck.aux:
        i = ck.info(n)
        aux.append({"name": n, "dtype": i["dtype"], "shape": i["shape"], "file": i["file"]})
    return {"quantization_config": ck.qc,
            "shards": [{"file": s.name, "tensors": len(s.tensors), "metadata": s.metadata} for s in ck.shards],
            "tensors": tensors, "aux": aux}


def main(argv):
    args = argv[1:]
    exact = "--exact" in args
    args = [a for a in args if a != "--exact"]
    if len(args) != 2 or args[0].startswith("-"):
        sys.stderr.write("usage: ct_read.py DIR OUTDIR [--exact] | ct_read.py DIR --meta\n")
        return 2
    try:
        ck = Checkpoint(args[0])
        for n in ck.notes[:10]:
            sys.stderr.write("ct_read.py: note: %s\n" % n)
        if len(ck.notes) > 10:
            sys.stderr.write("ct_read.py: note: %d more notes\n" % (len(ck.notes) - 10))
        if args[1] == "--meta":
            json.dump(meta(ck), sys.stdout, indent=1)
            sys.stdout.write("\n")
            return 0
        out = args[1]
        os.makedirs(out, exist_ok=True)
        for e in ck.entries:
            if "/" in e["name"]:
                fail("tensor name %r cannot be a file name" % e["name"])
            vals = ck.decode(e, exact)
            with open(os.path.join(out, e["name"] + ".f32"), "wb") as f:
                f.write(vals.astype("<f4", copy=False).tobytes())
            print("%s %s %s" % (e["name"], e["format"], shape_str(e["shape"])))
    except CTError as e:
        sys.stderr.write("ct_read.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
