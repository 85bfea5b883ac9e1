#!/usr/bin/python3
"""Independent reference decoder of moepack packs, written from docs/FORMAT.md alone.

usage: decode_pack.py PACK OUTDIR

Reads PACK/manifest.json, checks the manifest, the tier files and every record against
FORMAT.md, decodes every tensor to float32 and writes OUTDIR/<tensor name>.f32 (raw
little-endian float32, row-major) plus one line per tensor on stdout.

Exit status: 0 when the pack is valid and every tensor decoded, 1 on the first spec
violation noticed (one line on stderr saying what and where), 2 on usage errors.

Needs Python 3 and numpy (Debian: python3-numpy). Optional:
  - zstandard (python3-zstandard) to decompress zstd records; without it the `zstd`
    command-line tool (Debian: zstd) is used instead, which cannot check that a record
    is exactly one frame.
  - xxhash (python3-xxhash) to verify the XXH3-64 checksums (manifest.xxh3, the tier
    header checksums, each record's xxh3). Without it checksums are NOT verified here
    (`moepack check` covers them); a note says so on stderr.

Every value is computed the way FORMAT.md prescribes, with no library float conversion
whose rounding or NaN handling could differ between implementations:
  - bf16 and f16 are widened to f32 by bit manipulation (exact; NaN payloads kept, not
    quieted);
  - e4m3fn bytes go through a 256-entry table built from the definition (bias 7,
    subnormals, NaN 0x7f/0xff, no infinities), then one f32 multiply by the scale;
  - w4: (q - z) is an exact integer, converted to f32 (exact), times the f32 value of
    the f16 scale: one f32 multiply;
  - llama.cpp grid encodings ("q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k", "iq4_nl",
    "iq4_xs"): the tensor's raw bytes are exactly ggml's blocks of that type, row-major
    (rows x cols/block blocks, a row's blocks contiguous, no other section; cols a
    multiple of the block: 32, or 256 for the K-quants and iq4_xs), stored as they are
    in zstd records (no plane transform); decoded by ggml_dequant.py (beside this file),
    an independent NumPy port of ggml's dequantize_row_* giving the same bits.
Readings of FORMAT.md where it is not explicit (checked here, flagged as violations):
  - a vector [n] in a per-row encoding (fp8 channel/block, w4) is one row: rows = 1;
  - fp8_e4m3: the bytes between the data and the scales (align4 padding) are zero; with
    zstd and an odd n the two nibble planes take n + 1 bytes, the extra byte coming out
    of that padding;
  - raw record bytes not covered by a part (before the first, between, after the last)
    are zero;
  - within a tier, manifest record order is increasing offset order;
  - tier-0 records have expert -1 and the layer of their tensor (-1 for embed,
    final_norm, lm_head); expert records name the layer/expert of their tensors.
numpy float32 multiplication is IEEE-754 round-to-nearest-even without flush-to-zero,
so results are bit-identical to any other correct decoder (NaN inputs aside: the bits
of a NaN result of a multiply are the platform's).
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
except ImportError:  # pragma: no cover - reported by the CLI test as SKIP
    sys.stderr.write("decode_pack.py: numpy is required (Debian: python3-numpy)\n")
    sys.exit(2)

import ggml_dequant  # noqa: E402  (needs numpy, imported above)

try:
    import xxhash  # type: ignore
    if not hasattr(xxhash, "xxh3_64"):
        xxhash = None
except ImportError:
    xxhash = None

try:
    import zstandard  # type: ignore
except ImportError:
    zstandard = None


class SpecError(Exception):
    """A violation of FORMAT.md."""


def fail(where, what):
    raise SpecError("%s: %s" % (where, what))


HEADER = 64
MAGIC = b"MPKTIER1"
VERSION = 1
HEX16 = re.compile(r"^[0-9a-f]{16}$")
# llama.cpp grids: manifest encoding -> ggml type id (ggml/include/ggml.h)
GRIDS = {"q8_0": ggml_dequant.Q8_0, "q4_0": ggml_dequant.Q4_0, "q4_1": ggml_dequant.Q4_1,
         "q4_k": ggml_dequant.Q4_K, "q5_k": ggml_dequant.Q5_K, "q6_k": ggml_dequant.Q6_K,
         "iq4_nl": ggml_dequant.IQ4_NL, "iq4_xs": ggml_dequant.IQ4_XS}
ENCODINGS = ("f32", "bf16", "f16", "fp8_e4m3", "w4") + tuple(GRIDS)


def align(x, a):
    return (x + a - 1) // a * a


def ceil_div(a, b):
    return (a + b - 1) // b


def xxh3_hex(data):
    return "%016x" % xxhash.xxh3_64_intdigest(bytes(data), seed=0)


# ---------------------------------------------------------------------------
# Narrow floats, from their definitions.

def f16_bits_to_f32_bits(h):
    """uint16 array of IEEE binary16 bit patterns -> uint32 array of the f32 bits of the
    same value (exact; NaN payload kept in the top mantissa bits, not quieted)."""
    h = h.astype(np.uint32)
    s = (h >> 15) << 31
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    out = np.zeros(h.shape, dtype=np.uint32)
    normal = (e > 0) & (e < 31)
    out[normal] = s[normal] | ((e[normal] + (127 - 15)) << 23) | (m[normal] << 13)
    special = e == 31
    out[special] = s[special] | np.uint32(0x7F800000) | (m[special] << 13)
    zero = (e == 0) & (m == 0)
    out[zero] = s[zero]
    sub = (e == 0) & (m != 0)
    if sub.any():
        # value = m * 2^-24 with 1 <= m < 1024: normalize m to 1.f * 2^p, p = msb(m).
        ms = m[sub]
        p = np.floor(np.log2(ms.astype(np.float64))).astype(np.uint32)  # exact for ints < 2^10
        frac = (ms << (np.uint32(23) - p)) & np.uint32(0x7FFFFF)
        exp = (p + np.uint32(127 - 24)) << 23
        out[sub] = s[sub] | exp | frac
    return out


_F16_LUT = f16_bits_to_f32_bits(np.arange(65536, dtype=np.uint32)).view(np.float32)


def f16_to_f32(u16):
    return _F16_LUT[u16.astype(np.int64)]


def bf16_to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def _e4m3fn_table():
    bits = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        sign = b >> 7
        e = (b >> 3) & 0xF
        m = b & 0x7
        if e == 0xF and m == 0x7:
            bits[b] = (sign << 31) | 0x7FC00000  # NaN (0x7f / 0xff)
            continue
        if e == 0:
            value = m / 8.0 * 2.0 ** (1 - 7)  # subnormal: 0.m x 2^-6
        else:
            value = (1.0 + m / 8.0) * 2.0 ** (e - 7)
        if sign:
            value = -value
        # Every e4m3fn value is exactly representable as f32 (and as a double).
        bits[b] = np.array([value], dtype=np.float32).view(np.uint32)[0]
    table = bits.view(np.float32)
    assert table[0x7E] == 448.0 and table[0x01] == 2.0 ** -9 and table[0x38] == 1.0
    return table


E4M3FN = _e4m3fn_table()


# ---------------------------------------------------------------------------
# Tensor encodings: byte sizes and decoding.

def matrix_dims(t, where):
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        fail(where, "shape must be a list of non-negative integers, got %r" % (shape,))
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 1:
        # FORMAT.md: a vector is [n]. For the per-row encodings it is taken as one row
        # (rows = 1, cols = n); the spec does not say (see the report).
        return 1, shape[0]
    fail(where, "shape %r is neither [rows, cols] nor [n]" % (shape,))


def encoding_layout(t, where):
    """(total bytes, data section length, element count) of tensor t per FORMAT.md."""
    enc = t.get("encoding")
    rows, cols = matrix_dims(t, where)
    n = rows * cols
    if enc == "f32":
        return 4 * n, 4 * n, n
    if enc in ("bf16", "f16"):
        return 2 * n, 2 * n, n
    if enc == "fp8_e4m3":
        return align(n, 4) + 4 * fp8_scale_count(t, rows, cols, where), n, n
    if enc == "w4":
        g, sym = w4_params(t, cols, where)
        G = cols // g
        size = rows * cols // 2 + 2 * rows * G
        if not sym:
            size += ceil_div(rows * G, 2)
        return size, rows * cols // 2, n
    if enc in GRIDS:
        size = grid_bytes(enc, rows, cols, where)
        return size, size, n
    fail(where, "unknown encoding %r (known: %s)" % (enc, ", ".join(ENCODINGS)))


def grid_bytes(enc, rows, cols, where):
    """Bytes of a [rows, cols] tensor in a llama.cpp grid: rows x cols/block blocks."""
    tid = GRIDS[enc]
    blk = ggml_dequant.block_values(tid)
    if cols % blk:
        fail(where, "%s cols %d is not a multiple of the block of %d" % (enc, cols, blk))
    return rows * (cols // blk) * ggml_dequant.block_bytes(tid)


def fp8_scale_count(t, rows, cols, where):
    scale = t.get("scale")
    if scale == "tensor":
        return 1
    if scale == "channel":
        return rows
    if scale == "block":
        return ceil_div(rows, 128) * ceil_div(cols, 128)
    fail(where, "fp8_e4m3 scale %r is not tensor, channel or block" % (scale,))


def w4_params(t, cols, where):
    g = t.get("group")
    sym = t.get("sym")
    if g not in (32, 64, 128) or isinstance(g, bool):
        fail(where, "w4 group %r is not 32, 64 or 128" % (g,))
    if not isinstance(sym, bool):
        fail(where, "w4 sym %r is not true or false" % (sym,))
    if cols % g != 0:
        fail(where, "w4 cols %d is not a multiple of group %d" % (cols, g))
    return g, sym


def decode_tensor(t, raw, where):
    """raw: the tensor's part bytes (after codec and plane inverse). -> float32 array (n,)."""
    enc = t["encoding"]
    rows, cols = matrix_dims(t, where)
    n = rows * cols
    if enc == "f32":
        return np.frombuffer(raw, dtype="<u4").copy().view(np.float32)
    if enc == "bf16":
        return bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
    if enc == "f16":
        return f16_to_f32(np.frombuffer(raw, dtype="<u2"))
    if enc == "fp8_e4m3":
        d = np.frombuffer(raw, dtype=np.uint8, count=n)
        pad = raw[n:align(n, 4)]
        if any(pad):
            fail(where, "fp8_e4m3 bytes %d..%d between the data and the scales are not zero" % (n, align(n, 4)))
        ns = fp8_scale_count(t, rows, cols, where)
        s = np.frombuffer(raw, dtype="<u4", count=ns, offset=align(n, 4)).copy().view(np.float32)
        v = E4M3FN[d].reshape(rows, cols)
        scale = t["scale"]
        if scale == "tensor":
            sc = np.full((rows, cols), s[0], dtype=np.float32)
        elif scale == "channel":
            sc = np.repeat(s.reshape(rows, 1), cols, axis=1)
        else:
            br, bc = ceil_div(rows, 128), ceil_div(cols, 128)
            sb = s.reshape(br, bc)
            sc = sb[np.arange(rows)[:, None] // 128, np.arange(cols)[None, :] // 128]
        out = np.multiply(v, sc, dtype=np.float32)
        return out.reshape(n)
    if enc == "w4":
        g, sym = w4_params(t, cols, where)
        G = cols // g
        nd = rows * cols // 2
        data = np.frombuffer(raw, dtype=np.uint8, count=nd)
        q = np.empty(n, dtype=np.int32)
        q[0::2] = data & 0x0F
        q[1::2] = data >> 4
        q = q.reshape(rows, cols)
        s_bits = np.frombuffer(raw, dtype="<u2", count=rows * G, offset=nd)
        s = f16_to_f32(s_bits).reshape(rows, G)
        if sym:
            z = np.full((rows, G), 8, dtype=np.int32)
        else:
            nz = rows * G
            zb = np.frombuffer(raw, dtype=np.uint8, count=ceil_div(nz, 2), offset=nd + 2 * rows * G)
            zz = np.empty(2 * len(zb), dtype=np.int32)
            zz[0::2] = zb & 0x0F
            zz[1::2] = zb >> 4
            if nz % 2 and zz[-1] != 0:
                fail(where, "w4 zeros: odd count %d but the last high nibble is %d, not 0" % (nz, zz[-1]))
            z = zz[:nz].reshape(rows, G)
        col_group = np.arange(cols) // g
        diff = (q - z[:, col_group]).astype(np.float32)  # exact: |q - z| <= 15
        out = np.multiply(diff, s[:, col_group], dtype=np.float32)
        return out.reshape(n)
    if enc in GRIDS:
        # Row-major rows of whole blocks: the flat block sequence is the flat row-major
        # value sequence, so the tensor decodes as one run of blocks.
        return ggml_dequant.dequantize(GRIDS[enc], raw, n)
    fail(where, "unknown encoding %r" % (enc,))


# ---------------------------------------------------------------------------
# Byte-plane transform (zstd records).

def unplane(t, part_raw, where):
    """Inverse of the byte-plane / nibble-plane transform on one part's bytes."""
    enc = t["encoding"]
    _, data_len, n = encoding_layout(t, where)
    b = np.frombuffer(part_raw, dtype=np.uint8)
    if enc in ("bf16", "f16"):
        out = np.empty(2 * n, dtype=np.uint8)
        out[0::2] = b[:n]
        out[1::2] = b[n:2 * n]
        return out.tobytes() + part_raw[2 * n:]
    if enc == "fp8_e4m3":
        h = ceil_div(n, 2)
        # The two nibble planes take 2 * ceil(n/2) bytes: n + 1 when n is odd, the extra
        # byte falling in the padding before the scales (align4(n) >= n + 1 then).
        hi_plane = b[:h]
        lo_plane = b[h:2 * h]
        if n % 2:
            if hi_plane[-1] >> 4 or lo_plane[-1] >> 4:
                fail(where, "fp8 nibble planes: odd element count %d but a plane's last high half is not zero" % n)
        hi = np.empty(2 * h, dtype=np.uint8)
        hi[0::2] = hi_plane & 0x0F
        hi[1::2] = hi_plane >> 4
        lo = np.empty(2 * h, dtype=np.uint8)
        lo[0::2] = lo_plane & 0x0F
        lo[1::2] = lo_plane >> 4
        data = ((hi[:n] << 4) | lo[:n]).astype(np.uint8)
        pad_start = 2 * h
        pad_end = align(n, 4)
        if any(part_raw[pad_start:pad_end]):
            fail(where, "fp8 nibble planes: stored padding bytes %d..%d are not zero" % (pad_start, pad_end))
        return data.tobytes() + bytes(pad_end - n) + part_raw[pad_end:]
    return part_raw  # f32, w4, the llama.cpp grids: stored as they are


# ---------------------------------------------------------------------------
# zstd

def zstd_decompress(stored, raw_length, where):
    if zstandard is not None:
        try:
            dobj = zstandard.ZstdDecompressor().decompressobj()
            out = dobj.decompress(stored)
        except zstandard.ZstdError as e:
            fail(where, "zstd: %s" % e)
        if not dobj.eof:
            fail(where, "zstd: the frame is incomplete")
        unused = getattr(dobj, "unused_data", b"")
        if unused:
            fail(where, "zstd: %d bytes after the frame (a record is one frame)" % len(unused))
        return out
    if shutil.which("zstd") is None:
        sys.stderr.write("decode_pack.py: neither python3-zstandard nor the zstd tool is available\n")
        sys.exit(2)
    p = subprocess.run(["zstd", "-d", "-q", "-c"], input=bytes(stored), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        fail(where, "zstd -d: %s" % p.stderr.decode(errors="replace").strip())
    return p.stdout


# ---------------------------------------------------------------------------
# Manifest

def no_dup_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise SpecError("manifest.json: duplicate key %r" % k)
        d[k] = v
    return d


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def need_int(obj, key, where, lo=None):
    v = obj.get(key)
    if not is_int(v):
        fail(where, "%s must be an integer, got %r" % (key, v))
    if lo is not None and v < lo:
        fail(where, "%s = %d, must be >= %d" % (key, v, lo))
    return v


EXPERT_NAME = re.compile(r"^(?:layers\.(\d+)|mtp\.(\d+))\.experts\.(\d+)\.(gate|up|down)(\.bias)?$")


def check_expert_parts(rec, ri, tensors):
    """Expert records: gate, up, down of one routed expert, then their biases."""
    where = "records[%d]" % ri
    order = {"gate": 0, "up": 1, "down": 2}
    keys = []
    for p in rec["parts"]:
        name = tensors[p["tensor"]]["name"]
        m = EXPERT_NAME.match(name)
        if not m:
            fail(where, "tier %d record holds %r, which is not a routed expert's tensor" % (rec["tier"], name))
        layer, expert = m.group(1), int(m.group(3))
        if expert != rec["expert"]:
            fail(where, "holds %r but says expert %d" % (name, rec["expert"]))
        if layer is not None and int(layer) != rec["layer"]:
            fail(where, "holds %r but says layer %d" % (name, rec["layer"]))
        keys.append((1 if m.group(5) else 0, order[m.group(4)]))
    weights, biases = keys[:3], keys[3:]
    if weights != [(0, 0), (0, 1), (0, 2)] or any(k[0] != 1 for k in biases) \
            or biases != sorted(set(biases)):
        fail(where, "parts are %s, want gate, up, down then their biases" %
             [tensors[p["tensor"]]["name"] for p in rec["parts"]])


def load_manifest(pack):
    path = os.path.join(pack, "manifest.json")
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        fail(path, "cannot read: %s" % e)
    try:
        m = json.loads(text.decode("utf-8"), object_pairs_hook=no_dup_keys)
    except (UnicodeDecodeError, ValueError) as e:
        fail(path, "not UTF-8 JSON: %s" % e)
    if not isinstance(m, dict):
        fail(path, "not a JSON object")
    if m.get("format") != "moepack-pack":
        fail(path, "format is %r, want \"moepack-pack\"" % (m.get("format"),))
    if m.get("version") != VERSION or not is_int(m.get("version")):
        fail(path, "version is %r, this reader knows 1" % (m.get("version"),))
    for key in ("model", "provenance", "tiers", "tensors", "records"):
        if key not in m:
            fail(path, "no %r" % key)
    if "routing_stats" not in m:
        fail(path, "no 'routing_stats' (null when there are no statistics)")
    xpath = os.path.join(pack, "manifest.xxh3")
    try:
        with open(xpath, "rb") as f:
            xtext = f.read()
    except OSError as e:
        fail(xpath, "cannot read: %s" % e)
    if not re.fullmatch(rb"[0-9a-f]{16}\n", xtext):
        fail(xpath, "want 16 lowercase hex digits and a newline, got %r" % xtext[:40])
    if xxhash is not None and xtext[:16].decode() != xxh3_hex(text):
        fail(xpath, "says %s, manifest.json hashes to %s" % (xtext[:16].decode(), xxh3_hex(text)))
    return m


def check_structure(m):
    """Cross-checks of tiers, tensors, records and parts. Returns {tier: file name}."""
    tiers, tensors, records = m["tiers"], m["tensors"], m["records"]
    if not isinstance(tiers, list) or not tiers:
        fail("manifest.json", "tiers must be a non-empty list")
    if not isinstance(tensors, list) or not isinstance(records, list):
        fail("manifest.json", "tensors and records must be lists")
    tier_by_index = {}
    for i, t in enumerate(tiers):
        where = "tiers[%d]" % i
        idx = need_int(t, "index", where, 0)
        if idx != i:
            fail(where, "index %d, want %d (tiers in order)" % (idx, i))
        if t.get("file") != "tier-%d.bin" % idx:
            fail(where, "file %r, want \"tier-%d.bin\"" % (t.get("file"), idx))
        need_int(t, "bytes", where, HEADER)
        need_int(t, "records", where, 0)
        if t.get("codec") not in ("none", "zstd"):
            fail(where, "codec %r is not none or zstd" % (t.get("codec"),))
        tier_by_index[idx] = t
    names = set()
    for i, t in enumerate(tensors):
        where = "tensors[%d]" % i
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            fail(where, "no name")
        where = "tensors[%d] %s" % (i, t["name"])
        if t["name"] in names:
            fail(where, "duplicate tensor name")
        if "/" in t["name"] or t["name"] in ("", ".", ".."):
            fail(where, "name cannot be a file name")
        names.add(t["name"])
        encoding_layout(t, where)  # validates encoding, shape and parameters
        r = need_int(t, "record", where, 0)
        p = need_int(t, "part", where, 0)
        if r >= len(records):
            fail(where, "record %d, only %d records" % (r, len(records)))
        parts = records[r].get("parts") if isinstance(records[r], dict) else None
        if not isinstance(parts, list) or p >= len(parts):
            fail(where, "part %d not in records[%d]" % (p, r))
        if parts[p].get("tensor") != i:
            fail(where, "records[%d].parts[%d].tensor is %r, not %d" % (r, p, parts[p].get("tensor"), i))
    seen = set()
    per_tier = {}
    for ri, rec in enumerate(records):
        where = "records[%d]" % ri
        tier = need_int(rec, "tier", where, 0)
        if tier not in tier_by_index:
            fail(where, "tier %d is not in tiers" % tier)
        need_int(rec, "offset", where, HEADER)
        need_int(rec, "length", where, 0)
        raw_length = need_int(rec, "raw_length", where, 0)
        need_int(rec, "layer", where, -1)
        expert = need_int(rec, "expert", where, -1)
        codec = rec.get("codec")
        if codec not in ("none", "zstd"):
            fail(where, "codec %r is not none or zstd" % (codec,))
        if codec == "none" and rec["length"] != raw_length:
            fail(where, "codec none but length %d != raw_length %d" % (rec["length"], raw_length))
        if not isinstance(rec.get("xxh3"), str) or not HEX16.match(rec["xxh3"]):
            fail(where, "xxh3 %r is not 16 lowercase hex digits" % (rec.get("xxh3"),))
        if tier == 0 and expert != -1:
            fail(where, "tier 0 record with expert %d (tier-0 records have expert -1)" % expert)
        if tier >= 1 and expert < 0:
            fail(where, "tier %d record with expert %d (routed-expert records have expert >= 0)" % (tier, expert))
        parts = rec.get("parts")
        if not isinstance(parts, list) or not parts:
            fail(where, "parts must be a non-empty list")
        if tier == 0 and len(parts) != 1:
            fail(where, "a tier-0 record holds a single tensor, this one has %d parts" % len(parts))
        end = 0
        for pi, p in enumerate(parts):
            pw = "%s.parts[%d]" % (where, pi)
            ti = need_int(p, "tensor", pw, 0)
            off = need_int(p, "offset", pw, 0)
            ln = need_int(p, "length", pw, 0)
            if ti >= len(tensors):
                fail(pw, "tensor %d, only %d tensors" % (ti, len(tensors)))
            if ti in seen:
                fail(pw, "tensor %d is stored twice" % ti)
            seen.add(ti)
            t = tensors[ti]
            if t["record"] != ri or t["part"] != pi:
                fail(pw, "holds tensor %d (%s), which says record %d part %d" % (ti, t["name"], t["record"], t["part"]))
            if off % 64:
                fail(pw, "offset %d is not a multiple of 64" % off)
            if off < end:
                fail(pw, "offset %d overlaps the previous part (ends at %d) or is out of order" % (off, end))
            if off + ln > raw_length:
                fail(pw, "bytes %d..%d are outside the record's %d raw bytes" % (off, off + ln, raw_length))
            size = encoding_layout(t, pw)[0]
            if ln != size:
                fail(pw, "length %d, but %s %s %s takes %d bytes" %
                     (ln, t["name"], t["encoding"], t["shape"], size))
            end = off + ln
        if tier >= 1:
            check_expert_parts(rec, ri, tensors)
        else:
            name = tensors[parts[0]["tensor"]]["name"]
            lm = re.match(r"^layers\.(\d+)\.", name)
            if lm and int(lm.group(1)) != rec["layer"]:
                fail(where, "holds %r but says layer %d" % (name, rec["layer"]))
            if name in ("embed", "final_norm", "lm_head") and rec["layer"] != -1:
                fail(where, "holds %r (outside the layers) but says layer %d, not -1" % (name, rec["layer"]))
        per_tier.setdefault(tier, []).append(ri)
    if len(seen) != len(tensors):
        fail("manifest.json", "%d tensors but %d stored in records" % (len(tensors), len(seen)))
    for t in tensors:
        if EXPERT_NAME.match(t["name"]) and records[t["record"]]["tier"] == 0:
            fail("tensors %s" % t["name"], "a routed expert's tensor in tier 0")
    for idx, t in tier_by_index.items():
        if t["records"] != len(per_tier.get(idx, [])):
            fail("tiers[%d]" % idx, "records %d, but %d records are in tier %d" %
                 (t["records"], len(per_tier.get(idx, [])), idx))
    return per_tier


def check_tier_file(pack, m, idx, rec_ids):
    t = m["tiers"][idx]
    path = os.path.join(pack, t["file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(path, "cannot read: %s" % e)
    size = len(data)
    if size < HEADER:
        fail(path, "%d bytes, shorter than the 64-byte header" % size)
    h = data[:HEADER]
    if h[0:8] != MAGIC:
        fail(path, "magic %r, want %r" % (h[0:8], MAGIC))
    ver = int.from_bytes(h[8:12], "little")
    if ver != VERSION:
        fail(path, "header version %d, want 1" % ver)
    tidx = int.from_bytes(h[12:16], "little")
    if tidx != idx:
        fail(path, "header tier index %d, want %d" % (tidx, idx))
    flen = int.from_bytes(h[16:24], "little")
    if flen != size:
        fail(path, "header says %d bytes, the file has %d" % (flen, size))
    if t["bytes"] != size:
        fail(path, "manifest tiers[%d].bytes %d, the file has %d" % (idx, t["bytes"], size))
    nrec = int.from_bytes(h[24:32], "little")
    if nrec != len(rec_ids):
        fail(path, "header says %d records, the manifest puts %d in tier %d" % (nrec, len(rec_ids), idx))
    if any(h[32:56]):
        fail(path, "header bytes 32..55 are not zero")
    if xxhash is not None:
        want = xxhash.xxh3_64_intdigest(h[:56], seed=0)
        got = int.from_bytes(h[56:64], "little")
        if want != got:
            fail(path, "header checksum %016x, bytes 0..55 hash to %016x" % (got, want))
    recs = m["records"]
    order = sorted(rec_ids, key=lambda r: recs[r]["offset"])
    if order != sorted(rec_ids):
        fail(path, "records of the tier are not in increasing offset order in the manifest")
    a = 64 if idx == 0 else 4096
    pos = HEADER
    for ri in order:
        r = recs[ri]
        off, ln = r["offset"], r["length"]
        if off % a:
            fail("%s records[%d]" % (path, ri), "offset %d is not a multiple of %d" % (off, a))
        if off < pos:
            fail("%s records[%d]" % (path, ri), "offset %d overlaps the header or the previous record (ends at %d)" % (off, pos))
        if any(data[pos:off]):
            fail(path, "non-zero bytes in the gap %d..%d before records[%d]" % (pos, off, ri))
        if off + ln > size:
            fail("%s records[%d]" % (path, ri), "bytes %d..%d run past the end of the file (%d)" % (off, off + ln, size))
        pos = off + ln
    if pos != size:
        fail(path, "the file is %d bytes but its last record ends at %d" % (size, pos))
    return data


def record_raw(data, m, ri, path):
    """The record's raw bytes: stored bytes checked, decompressed and un-planed."""
    r = m["records"][ri]
    where = "%s records[%d]" % (path, ri)
    stored = data[r["offset"]:r["offset"] + r["length"]]
    if xxhash is not None and xxh3_hex(stored) != r["xxh3"]:
        fail(where, "xxh3 %s, the stored bytes hash to %s" % (r["xxh3"], xxh3_hex(stored)))
    if r["codec"] == "none":
        return bytes(stored)
    raw = zstd_decompress(stored, r["raw_length"], where)
    if len(raw) != r["raw_length"]:
        fail(where, "zstd frame gives %d bytes, raw_length is %d" % (len(raw), r["raw_length"]))
    out = bytearray(raw)
    for pi, p in enumerate(r["parts"]):
        t = m["tensors"][p["tensor"]]
        seg = raw[p["offset"]:p["offset"] + p["length"]]
        out[p["offset"]:p["offset"] + p["length"]] = unplane(t, seg, "%s.parts[%d] %s" % (where, pi, t["name"]))
    return bytes(out)


def check_record_gaps(raw, r, where):
    """Bytes of the raw record outside its parts are zero (between parts: FORMAT.md;
    before the first and after the last: assumed)."""
    pos = 0
    for pi, p in enumerate(r["parts"]):
        if any(raw[pos:p["offset"]]):
            fail(where, "non-zero bytes %d..%d before part %d" % (pos, p["offset"], pi))
        pos = p["offset"] + p["length"]
    if any(raw[pos:]):
        fail(where, "non-zero bytes %d..%d after the last part" % (pos, len(raw)))


def decode_pack(pack, outdir):
    m = load_manifest(pack)
    per_tier = check_structure(m)
    os.makedirs(outdir, exist_ok=True)
    tensors = m["tensors"]
    lines = []
    for idx in range(len(m["tiers"])):
        path = os.path.join(pack, m["tiers"][idx]["file"])
        data = check_tier_file(pack, m, idx, per_tier.get(idx, []))
        for ri in sorted(per_tier.get(idx, [])):
            r = m["records"][ri]
            raw = record_raw(data, m, ri, path)
            check_record_gaps(raw, r, "%s records[%d]" % (path, ri))
            for pi, p in enumerate(r["parts"]):
                t = tensors[p["tensor"]]
                where = "%s records[%d].parts[%d] %s" % (path, ri, pi, t["name"])
                seg = raw[p["offset"]:p["offset"] + p["length"]]
                vals = decode_tensor(t, seg, where)
                n = vals.size
                with open(os.path.join(outdir, t["name"] + ".f32"), "wb") as f:
                    f.write(vals.astype("<f4").tobytes())
                enc = t["encoding"]
                if enc == "fp8_e4m3":
                    enc += "/" + t["scale"]
                elif enc == "w4":
                    enc += "/g%d/%s" % (t["group"], "sym" if t["sym"] else "asym")
                bpw = 8.0 * p["length"] / n if n else 0.0
                finite = vals[np.isfinite(vals)]
                amax = float(np.abs(finite).max()) if finite.size else 0.0
                lines.append((p["tensor"], "%s %s %s tier %d record %d %s bytes %d bpw %.3f absmax %.6g" %
                              (t["name"], "x".join(str(d) for d in t["shape"]), enc, idx, ri, r["codec"],
                               p["length"], bpw, amax)))
    for _, line in sorted(lines):
        print(line)
    return len(lines)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: decode_pack.py PACK OUTDIR\n")
        return 2
    if xxhash is None:
        sys.stderr.write("decode_pack.py: note: python3-xxhash missing, checksums not verified\n")
    try:
        n = decode_pack(argv[1], argv[2])
    except SpecError as e:
        sys.stderr.write("decode_pack.py: %s\n" % e)
        return 1
    sys.stderr.write("decode_pack.py: %s: %d tensors decoded\n" % (argv[1], n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
