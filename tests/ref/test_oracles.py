#!/usr/bin/python3
"""Self-test of the reference readers gguf_read.py / ggml_dequant.py, ct_read.py and the
grid encodings of decode_pack.py.

usage: test_oracles.py [-v]        (Python 3 + numpy; runs in a few seconds)

Builds small files by hand, straight from the formats (struct.pack for GGUF, a JSON
header for safetensors): GGUF files with KV pairs of every type and tensors of every
decoded ggml type, split GGUF files, compressed-tensors checkpoints, and a pack (docs/FORMAT.md) of grid
encodings. The expected
values are computed here by independent means: element by element from the block
layouts as ggml-common.h / ggml-quants.c describe them (not with the readers' vectorized
code), in exact double arithmetic with float32 rounding emulated by struct (each C
float operation = exact double result rounded once to float32, exact because every
operand has at most 24 significant bits), and bf16/f16 rounding emulated with
math.frexp and Python's round-half-even. Then it checks the readers reproduce them bit
for bit, and that malformed files are rejected with exit status 1 and a message naming
the problem. Exits 1 on any mismatch, printing what failed.
"""

import contextlib
import io
import json
import math
import os
import random
import shutil
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ct_read  # noqa: E402
import gguf_read  # noqa: E402

VERBOSE = "-v" in sys.argv
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL " + what)
    elif VERBOSE:
        print("ok   " + what)


def f32(x):
    """Round a double to float32 (nearest even), as one C float operation does."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f16_bits(x):
    b = struct.pack("<e", x)
    assert struct.unpack("<e", b)[0] == x, x  # only exactly representable values here
    return struct.unpack("<H", b)[0]


def f16_val(bits):
    return struct.unpack("<e", struct.pack("<H", bits))[0]


def bf16_val(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def round_sig(x, bits):
    """x rounded to `bits` significant bits, ties to even (normal range only)."""
    if x == 0:
        return x
    m, e = math.frexp(x)          # x = m * 2^e, 0.5 <= |m| < 1
    return round(m * 2 ** bits) / 2 ** bits * 2.0 ** e


def run(mod, argv):
    """Runs mod.main(argv) in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = mod.main([mod.__name__ + ".py"] + argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


# ===========================================================================
# GGUF, by hand

KVALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<b", 10: "<Q", 11: "<q", 12: "<d"}


def gval(t, v):
    if t == 8:
        return gstr(v)
    if t == 9:
        et, items = v
        return struct.pack("<iQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    if t not in SCALAR_FMT:
        return b""  # an invalid type: no value bytes
    return struct.pack(SCALAR_FMT[t], v)


def build_gguf(kvs, tensors, alignment=32, version=3, magic=b"GGUF", pad_byte=0, offsets=None, n_dims=None):
    """kvs: [(key, type, value)]; tensors: [(name, ne, type, data bytes)]."""
    out = bytearray(magic + struct.pack("<IqQ", version, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<i", t) + gval(t, v)
    off = 0
    offs = []
    for i, (name, ne, t, data) in enumerate(tensors):
        o = offsets[i] if offsets else off
        offs.append(o)
        nd = n_dims[i] if n_dims else len(ne)
        out += gstr(name) + struct.pack("<I", nd) + b"".join(struct.pack("<q", x) for x in ne)
        out += struct.pack("<iQ", t, o)
        off += (len(data) + alignment - 1) // alignment * alignment
    if tensors:
        out += bytes([pad_byte]) * ((-len(out)) % alignment)
    for name, ne, t, data in tensors:
        out += data + bytes([pad_byte]) * ((-len(data)) % alignment)
    return bytes(out)


# -- blocks, element by element ----------------------------------------------

def blk_q8_0(d, q):
    return struct.pack("<H", f16_bits(d)) + struct.pack("<32b", *q), [f32(x * d) for x in q]


def blk_q4_0(d, code):
    qs = bytes(code[j] | (code[j + 16] << 4) for j in range(16))
    return struct.pack("<H", f16_bits(d)) + qs, [f32((c - 8) * d) for c in code]


def blk_q4_1(d, m, code):
    qs = bytes(code[j] | (code[j + 16] << 4) for j in range(16))
    return struct.pack("<HH", f16_bits(d), f16_bits(m)) + qs, [f32(f32(c * d) + m) for c in code]


def pack_scale_min_k4(sc, mn):
    """The 12 bytes from which get_scale_min_k4(j) returns (sc[j], mn[j]), j = 0..7."""
    b = [0] * 12
    for j in range(4):
        b[j] = sc[j]
        b[j + 4] = mn[j]
    for j in range(4, 8):
        b[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4)
        b[j - 4] |= (sc[j] >> 4) << 6
        b[j] |= (mn[j] >> 4) << 6
    return bytes(b)


def blk_q4_k(d, dmin, sc, mn, q):
    qs = bytearray(128)
    for c in range(4):
        for l in range(32):
            qs[32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4)
    y = [f32(f32(f32(d * sc[i // 32]) * q[i]) - f32(dmin * mn[i // 32])) for i in range(256)]
    return struct.pack("<HH", f16_bits(d), f16_bits(dmin)) + pack_scale_min_k4(sc, mn) + bytes(qs), y


def blk_q5_k(d, dmin, sc, mn, q):
    qs = bytearray(128)
    qh = bytearray(32)
    for i in range(256):
        sb, l = i // 32, i % 32
        if q[i] >> 4:
            qh[l] |= 1 << sb
    for c in range(4):
        for l in range(32):
            qs[32 * c + l] = (q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4)
    y = [f32(f32(f32(d * sc[i // 32]) * q[i]) - f32(dmin * mn[i // 32])) for i in range(256)]
    return struct.pack("<HH", f16_bits(d), f16_bits(dmin)) + pack_scale_min_k4(sc, mn) + bytes(qh) + bytes(qs), y


def blk_q6_k(d, sc, q):
    """q: 256 codes 0..63 (value q - 32); sc: 16 int8 scales, one per 16 values."""
    ql = bytearray(128)
    qh = bytearray(64)
    for i in range(256):
        n, e = divmod(i, 128)
        k, l = divmod(e, 32)
        lo, hi = q[i] & 15, q[i] >> 4
        li = 64 * n + l + (32 if k in (1, 3) else 0)
        ql[li] |= lo << (4 if k >= 2 else 0)
        qh[32 * n + l] |= hi << (2 * k)
    y = [f32(f32(d * sc[i // 16]) * (q[i] - 32)) for i in range(256)]
    return bytes(ql) + bytes(qh) + struct.pack("<16b", *sc) + struct.pack("<H", f16_bits(d)), y


def blk_iq4_nl(d, code):
    qs = bytes(code[j] | (code[j + 16] << 4) for j in range(16))
    return struct.pack("<H", f16_bits(d)) + qs, [f32(d * KVALUES[c]) for c in code]


def blk_iq4_xs(d, ls, code):
    sh = 0
    sl = bytearray(4)
    for ib in range(8):
        sl[ib // 2] |= (ls[ib] & 15) << (4 * (ib % 2))
        sh |= (ls[ib] >> 4) << (2 * ib)
    qs = bytearray(128)
    for ib in range(8):
        for j in range(16):
            qs[16 * ib + j] = code[32 * ib + j] | (code[32 * ib + 16 + j] << 4)
    y = [f32(f32(d * (ls[i // 32] - 32)) * KVALUES[code[i]]) for i in range(256)]
    return struct.pack("<HH", f16_bits(d), sh) + bytes(sl) + bytes(qs), y


def gguf_tensors(rng):
    """[(name, ne, type, bytes, expected float list)] covering every decoded type."""
    T = []
    vals = [1.5, -2.0, 0.0, -0.0, 3.25e-3, 65504.0, 1e30, -7.0]
    T.append(("t.f32", [8, 1], 0, struct.pack("<8f", *vals), [f32(v) for v in vals]))
    hb = [0x3C00, 0xC000, 0x0001, 0x7BFF, 0x0000, 0x8000, 0x3555, 0x0400]
    T.append(("t.f16", [8], 1, struct.pack("<8H", *hb), [f16_val(b) for b in hb]))
    bb = [0x3F80, 0xC040, 0x0001, 0x7F7F, 0x3F81, 0x8000]
    T.append(("t.bf16", [2, 3], 30, struct.pack("<6H", *bb),
              [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in bb]))
    data, exp = b"", []
    for d in (0.5, 2.0 ** -10, f16_val(0x3555)):
        q = [rng.randint(-128, 127) for _ in range(32)]
        b, y = blk_q8_0(d, q)
        data += b
        exp += y
    T.append(("t.q8_0", [32, 3], 8, data, exp))
    data, exp = b"", []
    for d in (2.0, f16_val(0x3555)):
        b, y = blk_q4_0(d, [i % 16 for i in range(32)][::-1] if d == 2.0 else [rng.randrange(16) for _ in range(32)])
        data += b
        exp += y
    T.append(("t.q4_0", [64], 2, data, exp))
    data, exp = b"", []
    # the last block's sums need rounding to float32 (a tiny d, a large m)
    for d, m in ((0.25, -1.0), (f16_val(0x3555), f16_val(0x2E66)), (f16_val(0x0401), 1000.0)):
        b, y = blk_q4_1(d, m, [rng.randrange(16) for _ in range(32)])
        data += b
        exp += y
    T.append(("t.q4_1", [32, 3], 3, data, exp))
    data, exp = b"", []
    for d, dmin in ((1.0, 0.5), (f16_val(0x1AD3), f16_val(0x217E)), (f16_val(0x0401), 16.0)):
        sc = [1, 2, 3, 63, 33, 17, 48, 0]
        mn = [0, 5, 63, 1, 40, 31, 16, 62]
        b, y = blk_q4_k(d, dmin, sc, mn, [rng.randrange(16) for _ in range(256)])
        data += b
        exp += y
    T.append(("t.q4_k", [256, 3], 12, data, exp))
    data, exp = b"", []
    for d, dmin in ((0.5, 0.25), (f16_val(0x186F), f16_val(0x121F)), (f16_val(0x0401), 16.0)):
        sc = [63, 0, 32, 31, 1, 62, 16, 47]
        mn = [2, 61, 0, 33, 12, 7, 63, 30]
        b, y = blk_q5_k(d, dmin, sc, mn, [rng.randrange(32) for _ in range(256)])
        data += b
        exp += y
    T.append(("t.q5_k", [256, 3], 13, data, exp))
    data, exp = b"", []
    for d in (0.5, f16_val(0x0816)):
        sc = [1, -1, 127, -128, 3, 0, 64, -64, 5, 7, -9, 11, 13, -15, 17, 19]
        b, y = blk_q6_k(d, sc, [rng.randrange(64) for _ in range(256)])
        data += b
        exp += y
    T.append(("t.q6_k", [256, 1, 2], 14, data, exp))
    data, exp = b"", []
    for d in (1.0, f16_val(0x2252)):
        b, y = blk_iq4_nl(d, [rng.randrange(16) for _ in range(32)])
        data += b
        exp += y
    T.append(("t.iq4_nl", [32, 2], 20, data, exp))
    data, exp = b"", []
    for d in (0.25, f16_val(0x1A60)):
        b, y = blk_iq4_xs(d, [0, 63, 32, 31, 16, 47, 1, 62], [rng.randrange(16) for _ in range(256)])
        data += b
        exp += y
    T.append(("t.iq4_xs", [256, 2], 23, data, exp))
    return T


ALL_KVS = [
    ("general.architecture", 8, "llama"),
    ("general.alignment", 4, 64),
    ("t.u8", 0, 255), ("t.i8", 1, -128), ("t.u16", 2, 65535), ("t.i16", 3, -32768),
    ("t.u32", 4, 4294967295), ("t.i32", 5, -2147483648), ("t.f32", 6, 1e-05), ("t.bool", 7, 1),
    ("t.str", 8, "h\u00e9llo \u2603"), ("t.u64", 10, 2 ** 64 - 1), ("t.i64", 11, -2 ** 63), ("t.f64", 12, 0.1),
    ("t.arr.u8", 9, (0, [0, 7, 255])), ("t.arr.i32", 9, (5, [1, -2, 3])), ("t.arr.f32", 9, (6, [0.5, 1e-06])),
    ("t.arr.bool", 9, (7, [1, 0])), ("t.arr.str", 9, (8, ["a", "", "<0x0A>", "\u2581the"])),
    ("t.arr.f64", 9, (12, [2.5])), ("t.arr.empty", 9, (4, [])),
]


def test_gguf(tmp):
    rng = random.Random(5)
    tens = gguf_tensors(rng)
    path = os.path.join(tmp, "all.gguf")
    with open(path, "wb") as f:
        f.write(build_gguf(ALL_KVS, [(n, ne, t, d) for n, ne, t, d, _ in tens], alignment=64))
    rc, out, err = run(gguf_read, [path, "--meta", "--strict"])
    check(rc == 0, "gguf --meta exit 0 (%s)" % err.strip())
    m = json.loads(out) if rc == 0 else {"kv": {}, "kv_types": {}, "tensors": []}
    want_kv = {
        "general.architecture": "llama", "general.alignment": 64, "t.u8": 255, "t.i8": -128, "t.u16": 65535,
        "t.i16": -32768, "t.u32": 4294967295, "t.i32": -2147483648, "t.f32": 1e-05, "t.bool": True,
        "t.str": "h\u00e9llo \u2603", "t.u64": 2 ** 64 - 1, "t.i64": -2 ** 63, "t.f64": 0.1,
        "t.arr.u8": [0, 7, 255], "t.arr.i32": [1, -2, 3], "t.arr.f32": [0.5, 1e-06], "t.arr.bool": [True, False],
        "t.arr.str": ["a", "", "<0x0A>", "\u2581the"], "t.arr.f64": [2.5], "t.arr.empty": [],
    }
    check(m["kv"] == want_kv, "gguf KV values of all 13 types: %r" % {k: v for k, v in m["kv"].items() if want_kv.get(k) != v})
    want_types = {"t.u8": "u8", "t.i8": "i8", "t.u16": "u16", "t.i16": "i16", "t.u32": "u32", "t.i32": "i32",
                  "t.f32": "f32", "t.bool": "bool", "t.str": "str", "t.u64": "u64", "t.i64": "i64", "t.f64": "f64",
                  "t.arr.str": "arr[str]", "t.arr.f32": "arr[f32]", "t.arr.empty": "arr[u32]"}
    check(all(m["kv_types"].get(k) == v for k, v in want_types.items()), "gguf KV type names")
    off = 0
    infos_ok = True
    for (name, ne, t, data, _), ti in zip(tens, m["tensors"]):
        infos_ok &= (ti["name"], ti["ne"], ti["type"], ti["offset"], ti["nbytes"]) == (name, ne, t, off, len(data))
        off += (len(data) + 63) // 64 * 64
    check(infos_ok and len(m["tensors"]) == len(tens), "gguf tensor infos (name, ne, type, offset, nbytes)")
    dump = os.path.join(tmp, "dump")
    rc, out, err = run(gguf_read, [path, "--dump", dump])
    check(rc == 0, "gguf --dump exit 0 (%s)" % err.strip())
    lines = out.splitlines()
    check(lines[:2] == ["t.f32 F32 8x1", "t.f16 F16 8"] and len(lines) == len(tens), "gguf --dump lines: %r" % lines[:3])
    for name, ne, t, data, exp in tens:
        got = np.fromfile(os.path.join(dump, name + ".f32"), dtype="<f4")
        want = np.array(exp, dtype=np.float32)
        same = got.shape == want.shape and np.array_equal(got.view(np.uint32), want.view(np.uint32))
        if not same and got.shape == want.shape:
            i = int(np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))[0])
            detail = "first at %d: got %r want %r" % (i, float(got[i]), float(want[i]))
        else:
            detail = "shape %s vs %s" % (got.shape, want.shape)
        check(same, "gguf %s (%d values) bit-identical to the hand-computed values%s" %
              (name, want.size, "" if same else ": " + detail))

    # malformed files: exit 1, one line naming the problem
    base_t = [(n, ne, t, d) for n, ne, t, d, _ in tens[:4]]
    q40 = tens[4][3]
    bad = [
        ("bad magic", build_gguf([], base_t, magic=b"GGUX"), "bad magic"),
        ("version 1", build_gguf([], base_t, version=1), "version 1"),
        ("version 4", build_gguf([], base_t, version=4), "version 4"),
        ("byte-swapped version", build_gguf([], base_t, version=3 << 24), "endianness"),
        ("duplicate key", build_gguf([("a", 4, 1), ("a", 4, 2)], base_t), "duplicate key"),
        ("empty key", build_gguf([("", 4, 1)], base_t), "is empty"),
        ("bad KV type", build_gguf([("a", 13, 0)], []), "invalid GGUF type 13"),
        ("alignment not u32", build_gguf([("general.alignment", 10, 32)], base_t), "must be u32"),
        ("alignment 48", build_gguf([("general.alignment", 4, 48)], base_t), "not a power of 2"),
        ("alignment 0", build_gguf([("general.alignment", 4, 0)], base_t), "not a power of 2"),
        ("name of 64 bytes", build_gguf([], [("x" * 64, [32], 0, bytes(128))]), "too long"),
        ("duplicate tensor", build_gguf([], [("a", [32], 0, bytes(128)), ("a", [32], 0, bytes(128))]),
         "duplicate tensor name"),
        ("5 dims", build_gguf([], [("a", [32, 1, 1, 1, 1], 0, bytes(128))]), "5 dimensions"),
        ("negative ne", build_gguf([], [("a", [32, -1], 0, bytes(128))]), "< 0 elements"),
        ("ne[0] not a block multiple", build_gguf([], [("a", [48], 2, q40 + q40[:9])]), "not a multiple of the block"),
        ("removed type", build_gguf([], [("a", [32], 4, bytes(20))]), "not a multiple of the block"),
        ("type out of range", build_gguf([], [("a", [32], 43, bytes(20))]), "invalid ggml type 43"),
        ("offset not the running sum", build_gguf([], [("a", [32], 0, bytes(128)), ("b", [8], 0, bytes(32))],
                                                 offsets=[0, 160]), "has offset 160, expected 128"),
        ("misaligned offset", build_gguf([], [("a", [4], 0, bytes(16)), ("b", [8], 0, bytes(32))],
                                         offsets=[0, 16]), "has offset 16, expected 32"),
        ("truncated data", build_gguf([], base_t)[:-40], "not within the file"),
        ("unpadded end", build_gguf([], [("a", [33], 0, bytes(132))])[:-28], "padded data section"),
        ("string past the end", build_gguf([("a", 8, "x")], [])[:-1], "exceeds the 0 bytes left"),
        ("nested array", build_gguf([("a", 9, (9, [(4, [1, 2]), (4, [3])]))], []), "array of arrays"),
    ]
    for what, blob, msg in bad:
        p = os.path.join(tmp, "bad.gguf")
        with open(p, "wb") as f:
            f.write(blob)
        rc, out, err = run(gguf_read, [p, "--meta"])
        check(rc == 1 and msg in err and len(err.strip().splitlines()) == 1,
              "gguf rejects %s with exit 1 and one line saying %r (got %d: %s)" % (what, msg, rc, err.strip()))
    p = os.path.join(tmp, "nested.gguf")
    with open(p, "wb") as f:
        f.write(build_gguf([("a", 9, (9, [(4, [1, 2]), (8, ["x"])]))], []))
    rc, out, err = run(gguf_read, [p, "--meta", "--allow-nested-arrays"])
    check(rc == 0 and json.loads(out)["kv"]["a"] == [[1, 2], ["x"]], "gguf nested arrays read with --allow-nested-arrays")
    # --strict: non-zero padding and trailing bytes
    p = os.path.join(tmp, "padded.gguf")
    with open(p, "wb") as f:
        f.write(build_gguf([], [("a", [4], 0, bytes(16))], pad_byte=0xAA))
    rc1, _, _ = run(gguf_read, [p, "--meta"])
    rc2, _, err = run(gguf_read, [p, "--meta", "--strict"])
    check(rc1 == 0 and rc2 == 1 and "non-zero" in err, "gguf non-zero padding: accepted, rejected under --strict")
    with open(p, "wb") as f:
        f.write(build_gguf([], [("a", [4], 0, bytes(16))]) + b"\0")
    rc1, _, _ = run(gguf_read, [p, "--meta"])
    rc2, _, err = run(gguf_read, [p, "--meta", "--strict"])
    check(rc1 == 0 and rc2 == 1 and "after the data section" in err, "gguf trailing byte: accepted, rejected under --strict")
    # zero tensors, zero KV: a valid file
    p = os.path.join(tmp, "empty.gguf")
    with open(p, "wb") as f:
        f.write(build_gguf([], []))
    rc, out, _ = run(gguf_read, [p, "--meta", "--strict"])
    check(rc == 0 and json.loads(out)["tensors"] == [], "gguf with no tensors and no KV pairs")


def test_gguf_split(tmp):
    d = os.path.join(tmp, "split")
    os.makedirs(d)

    def part(i, n, tensors, no=None, count=None, tcount=5, types=(2, 2, 5)):
        kvs = [("general.architecture", 8, "llama"), ("split.no", types[0], i if no is None else no),
               ("split.count", types[1], n if count is None else count), ("split.tensors.count", types[2], tcount)]
        with open(os.path.join(d, "m-%05d-of-%05d.gguf" % (i + 1, n)), "wb") as f:
            f.write(build_gguf(kvs, tensors))

    def tens(names):
        return [(nm, [4], 0, struct.pack("<4f", k, k + 0.5, -k, 2.0 ** -k)) for k, nm in names]

    def reset():
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))

    part(0, 3, tens([(0, "a"), (1, "b")]))
    part(1, 3, tens([(2, "c"), (3, "d")]))
    part(2, 3, tens([(4, "e")]))
    first = os.path.join(d, "m-00001-of-00003.gguf")
    rc, out, err = run(gguf_read, [first, "--meta"])
    ok = rc == 0
    m = json.loads(out) if ok else {}
    check(ok and [(t["name"], t["file"]) for t in m["tensors"]] ==
          [("a", "m-00001-of-00003.gguf"), ("b", "m-00001-of-00003.gguf"), ("c", "m-00002-of-00003.gguf"),
           ("d", "m-00002-of-00003.gguf"), ("e", "m-00003-of-00003.gguf")],
          "gguf split: reading part 1 finds the 5 tensors of the 3 parts (%s)" % err.strip())
    out_dir = os.path.join(tmp, "split-dump")
    rc, out, err = run(gguf_read, [first, "--dump", out_dir])
    e = np.fromfile(os.path.join(out_dir, "e.f32"), dtype="<f4") if rc == 0 else None
    check(rc == 0 and e is not None and list(e) == [4.0, 4.5, -4.0, 2.0 ** -4], "gguf split --dump reads the last part's tensor")
    rc, _, err = run(gguf_read, [os.path.join(d, "m-00002-of-00003.gguf"), "--meta"])
    check(rc == 1 and "first part" in err, "gguf split: reading part 2 first is refused (%s)" % err.strip())
    cases = [
        ("missing part", lambda: os.remove(os.path.join(d, "m-00003-of-00003.gguf")), "missing"),
        ("wrong split.no", lambda: part(1, 3, tens([(2, "c"), (3, "d")]), no=2), "split.no 2, expected 1"),
        ("wrong tensor count", lambda: part(0, 3, tens([(0, "a"), (1, "b")]), tcount=6), "split.tensors.count 6"),
        ("duplicate across parts", lambda: part(2, 3, tens([(4, "a")])), "duplicated"),
        ("split.count as u32", lambda: part(0, 3, tens([(0, "a"), (1, "b")]), types=(2, 4, 5)), "has type u32, expected u16"),
        ("split.tensors.count as u16", lambda: part(0, 3, tens([(0, "a"), (1, "b")]), types=(2, 2, 2)),
         "has type u16, expected i32"),
    ]
    for what, mutate, msg in cases:
        reset()
        part(0, 3, tens([(0, "a"), (1, "b")]))
        part(1, 3, tens([(2, "c"), (3, "d")]))
        part(2, 3, tens([(4, "e")]))
        mutate()
        rc, _, err = run(gguf_read, [first, "--meta"])
        check(rc == 1 and msg in err, "gguf split rejects %s (%d: %s)" % (what, rc, err.strip()))
    reset()
    part(0, 2, tens([(0, "a")]))
    os.rename(os.path.join(d, "m-00001-of-00002.gguf"), os.path.join(d, "model.gguf"))
    rc, _, err = run(gguf_read, [os.path.join(d, "model.gguf"), "--meta"])
    check(rc == 1 and "invalid split file name" in err, "gguf split: a first part not named -00001-of-0000N is refused")


# ===========================================================================
# compressed-tensors, by hand

def write_safetensors(path, tensors, pad_header=True, gap=False):
    """tensors: [(name, dtype, shape, bytes)] in this order."""
    hdr, off, data = {}, 0, b""
    for name, dt, shape, raw in tensors:
        if gap and name == tensors[-1][0]:
            data += b"\0\0"
            off += 2
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    hdr["__metadata__"] = {"format": "pt"}
    h = json.dumps(hdr).encode()
    if pad_header:
        h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def bf16_bits(x):
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    assert b & 0xFFFF == 0, x
    return b >> 16


def e4m3_value(b):
    s, e, m = b >> 7, (b >> 3) & 15, b & 7
    v = m * 2.0 ** -9 if e == 0 else (8 + m) * 2.0 ** (e - 10)
    return -v if s else v


def pack_rows_int4(rows, stored_offset=8):
    """rows: lists of signed int4 (-8..7) -> int32 words, 8 per word at bits 4j, stored
    unsigned as q + 8; a short last word is padded with zero nibbles."""
    out = []
    for r in rows:
        words = []
        for w in range(0, len(r), 8):
            v = 0
            for j, q in enumerate(r[w:w + 8]):
                v |= (q + stored_offset) << (4 * j)
            words.append(v - (1 << 32) if v >= 1 << 31 else v)
        out.append(words)
    return out


def i32_bytes(rows):
    return b"".join(struct.pack("<%di" % len(r), *r) for r in rows)


def ct_checkpoint(d, rng, variant=None):
    """A compressed-tensors checkpoint of six modules over two shards; returns
    {output name: (format, shape, expected float list, expected with --exact)}."""
    os.makedirs(d, exist_ok=True)
    exp = {}
    shard1, shard2 = [], []

    # 1. pack-quantized int4, asymmetric, group 32, bf16 scales: N = 12 (zero points
    #    packed along rows: 2 words, the second half empty), K = 64
    m = "model.layers.0.mlp.experts.3.down_proj"
    N, K, gs = 12, 64, 32
    q = [[rng.randint(-8, 7) for _ in range(K)] for _ in range(N)]
    zp = [[rng.randint(-8, 7) for _ in range(K // gs)] for _ in range(N)]
    scales = [[rng.choice([1.0078125, bf16_val(0x3C4A), -0.5, 3.0, 1.9921875, 2.0 ** -20]) for _ in range(K // gs)] for _ in range(N)]
    scales[0][0] = 1.0078125  # bf16 0x3F81: (q - zp) * s needs rounding for most q - zp
    ex = [(q[r][c] - zp[r][c // gs]) * scales[r][c // gs] for r in range(N) for c in range(K)]
    exp[m + ".weight"] = ("pack-quantized", [N, K], [round_sig(x, 8) for x in ex], [f32(x) for x in ex])
    zp_cols = [[zp[r][g] for r in range(N)] for g in range(K // gs)]  # pack along dim 0 = rows of the transpose
    zp_packed_t = pack_rows_int4(zp_cols)                              # [G, ceil(N/8)]
    zp_packed = [[zp_packed_t[g][i] for g in range(K // gs)] for i in range(len(zp_packed_t[0]))]
    if variant == "zp-unpacked":
        zp_packed = [[z for z in row] for row in zp]
    shard1 += [(m + ".weight_packed", "I32", [N, K // 8], i32_bytes(pack_rows_int4(q))),
               (m + ".weight_scale", "BF16", [N, K // gs],
                b"".join(struct.pack("<H", bf16_bits(s)) for row in scales for s in row)),
               (m + ".weight_shape", "I64", [2], struct.pack("<2q", N, K if variant != "bad-shape" else K + 8))]
    if variant != "no-zp":
        shard1.append((m + ".weight_zero_point", "I32", [len(zp_packed), len(zp_packed[0])], i32_bytes(zp_packed)))

    # 2. pack-quantized int4, symmetric, channel, f16 scales, K = 36 (a half-empty last word)
    m = "model.layers.0.self_attn.q_proj"
    N, K = 3, 36
    q = [[rng.randint(-8, 7) for _ in range(K)] for _ in range(N)]
    sc = [f16_val(0x3555), -1.5, 2.0 ** -14]
    ex = [q[r][c] * sc[r] for r in range(N) for c in range(K)]
    exp[m + ".weight"] = ("pack-quantized", [N, K], [round_sig(x, 11) if abs(x) >= 2.0 ** -14 or x == 0 else None for x in ex],
                          [f32(x) for x in ex])
    shard1 += [(m + ".weight_packed", "I32", [N, 5], i32_bytes(pack_rows_int4(q))),
               (m + ".weight_scale", "F16", [N, 1], b"".join(struct.pack("<H", f16_bits(s)) for s in sc)),
               (m + ".weight_shape", "I32", [2], struct.pack("<2i", N, K))]

    # 3. float-quantized FP8, block [128, 128], f32 scales, N = 130, K = 200 (partial blocks)
    m = "model.layers.0.self_attn.k_proj"
    N, K = 130, 200
    wb = [rng.randrange(256) for _ in range(N * K)]
    wb = [b if b not in (0x7F, 0xFF) else 0x7E for b in wb]
    sb = [[0.5, 3.0], [f32(1.1), 2.0 ** -30]]
    ex = [e4m3_value(wb[r * K + c]) * sb[r // 128][c // 128] for r in range(N) for c in range(K)]
    exp[m + ".weight"] = ("float-quantized", [N, K], [f32(x) for x in ex], [f32(x) for x in ex])
    shard2 += [(m + ".weight", "F8_E4M3", [N, K], bytes(wb)),
               (m + ".weight_scale", "F32", [2, 2], struct.pack("<4f", *[s for row in sb for s in row]))]

    # 4. float-quantized FP8, per tensor, bf16 scale (rounded products)
    m = "model.layers.0.self_attn.v_proj"
    N, K = 4, 16
    wb = [rng.randrange(0x00, 0x7F) | (rng.randrange(2) << 7) for _ in range(N * K)]
    s = 1.0078125
    ex = [e4m3_value(b) * s for b in wb]
    exp[m + ".weight"] = ("float-quantized", [N, K], [round_sig(x, 8) for x in ex], [f32(x) for x in ex])
    shard2 += [(m + ".weight", "F8_E4M3", [N, K], bytes(wb)),
               (m + ".weight_scale", "BF16", [1], struct.pack("<H", bf16_bits(s)))]

    # 5. float-quantized FP8, per channel [N, 1], static input scale
    m = "model.layers.0.self_attn.o_proj"
    N, K = 3, 8
    wb = [rng.randrange(0x00, 0x7F) for _ in range(N * K)]
    sc = [0.25, 2.0, 0.0625]
    ex = [e4m3_value(wb[r * K + c]) * sc[r] for r in range(N) for c in range(K)]
    exp[m + ".weight"] = ("float-quantized", [N, K], [f32(x) for x in ex], [f32(x) for x in ex])
    shard2 += [(m + ".weight", "F8_E4M3", [N, K], bytes(wb)),
               (m + ".weight_scale", "F32", [N, 1], struct.pack("<3f", *sc))]
    if variant != "no-input-scale":
        shard2.append((m + ".input_scale", "F32", [1], struct.pack("<f", 0.125)))

    # 6. int-quantized int8, symmetric channel, f16 scales (the "Linear" catch-all group)
    m = "model.layers.0.mlp.shared_expert.gate_proj"
    N, K = 2, 8
    q = [rng.randint(-128, 127) for _ in range(N * K)]
    sc = [f16_val(0x2E66), 3.0]
    ex = [q[r * K + c] * sc[r] for r in range(N) for c in range(K)]
    exp[m + ".weight"] = ("int-quantized", [N, K], [round_sig(x, 11) for x in ex], [f32(x) for x in ex])
    shard2 += [(m + ".weight", "I8", [N, K], struct.pack("<%db" % (N * K), *q)),
               (m + ".weight_scale", "F16", [N, 1], b"".join(struct.pack("<H", f16_bits(s)) for s in sc))]

    # dense: a norm (bf16) and the ignored lm_head (f32)
    shard2.append(("model.norm.weight", "BF16", [4], struct.pack("<4H", 0x3F80, 0x3F81, 0xBF00, 0x0001)))
    exp["model.norm.weight"] = ("dense", [4], [1.0, 1.0078125, -0.5, struct.unpack("<f", struct.pack("<I", 0x10000))[0]], None)
    if variant == "dense-targeted":  # an expert left in bf16 although the experts group targets it
        shard2.append(("model.layers.0.mlp.experts.4.up_proj.weight", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0)))
    if variant == "fp8-no-scale":
        shard2.append(("model.layers.0.mlp.dense.weight", "F8_E4M3", [1, 2], b"\x38\x38"))
    lm = [1.5, -2.25, 3e-3, 7.0, 0.0, -1e-6]
    shard1.append(("lm_head.weight", "F32", [2, 3], struct.pack("<6f", *lm)))
    exp["lm_head.weight"] = ("dense", [2, 3], [f32(x) for x in lm], None)

    groups = {
        "experts": {"targets": ["re:.*mlp\\.experts\\.\\d+\\.(gate|up|down)_proj$"], "format": "pack-quantized",
                    "weights": {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group",
                                "group_size": 32 if variant != "bad-group" else 24}},
        "q": {"targets": ["model.layers.0.self_attn.q_proj"], "format": "pack-quantized",
              "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "channel"}},
        "k": {"targets": ["re:.*k_proj$"], "format": "float-quantized",
              "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "block",
                          "block_structure": [128, 128]}},
        "v": {"targets": ["re:.*v_proj$"], "format": "float-quantized",
              "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor"}},
        "o": {"targets": ["re:.*o_proj$"], "format": "float-quantized",
              "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel"},
              "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor",
                                    "dynamic": False}},
        "rest": {"targets": ["Linear"], "format": "int-quantized",
                 "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"}},
    }
    ignore = ["lm_head"] + (["re:.*q_proj$"] if variant == "ignored" else [])
    cfg = {"architectures": ["Qwen2MoeForCausalLM"], "torch_dtype": "bfloat16",
           "quantization_config": {"quant_method": "compressed-tensors", "format": "mixed-precision",
                                   "config_groups": groups, "ignore": ignore, "quantization_status": "compressed"}}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    f1, f2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    write_safetensors(os.path.join(d, f1), shard1, gap=(variant == "gap"))
    write_safetensors(os.path.join(d, f2), shard2)
    wm = {n: f1 for n, _, _, _ in shard1}
    wm.update({n: f2 for n, _, _, _ in shard2})
    if variant == "index-missing":
        del wm["model.norm.weight"]
    if variant == "index-wrong":
        wm["model.norm.weight"] = f1
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
    return exp


def test_ct(tmp):
    rng = random.Random(11)
    d = os.path.join(tmp, "ct")
    exp = ct_checkpoint(d, rng)
    for exact in (False, True):
        out = os.path.join(tmp, "ct-out-%d" % exact)
        rc, so, err = run(ct_read, [d, out] + (["--exact"] if exact else []))
        check(rc == 0, "ct_read exit 0%s (%s)" % (" --exact" if exact else "", err.strip()))
        if rc != 0:
            continue
        lines = {l.split()[0]: l.split()[1:] for l in so.splitlines()}
        check(set(lines) == set(exp), "ct_read writes exactly the weights: %s" % sorted(set(lines) ^ set(exp)))
        for name, (fmt, shape, want, want_exact) in sorted(exp.items()):
            w = want_exact if (exact and want_exact is not None) else want
            got = np.fromfile(os.path.join(out, name + ".f32"), dtype="<f4")
            mask = np.array([x is not None for x in w])
            wv = np.array([x if x is not None else 0.0 for x in w], dtype=np.float32)
            same = got.shape == wv.shape and np.array_equal(got[mask].view(np.uint32), wv[mask].view(np.uint32))
            detail = ""
            if not same and got.shape == wv.shape:
                i = int(np.flatnonzero(mask & (got.view(np.uint32) != wv.view(np.uint32)))[0])
                detail = ": first at %d got %r want %r" % (i, float(got[i]), float(wv[i]))
            check(same and lines.get(name) == [fmt, "x".join(map(str, shape))],
                  "ct %s %s %s%s bit-identical to the hand-computed values%s" %
                  (name, fmt, shape, " --exact" if exact else "", detail))
    # the rounding really matters for the bf16-scaled int4 tensor
    a = np.fromfile(os.path.join(tmp, "ct-out-0", "model.layers.0.mlp.experts.3.down_proj.weight.f32"), dtype="<f4")
    b = np.fromfile(os.path.join(tmp, "ct-out-1", "model.layers.0.mlp.experts.3.down_proj.weight.f32"), dtype="<f4")
    check(a.size == b.size and (a != b).any(), "ct: rounding to bf16 changes some int4 products (the test can tell)")
    rc, so, err = run(ct_read, [d, "--meta"])
    ok = rc == 0
    m = json.loads(so) if ok else {}
    if ok:
        t = {x["name"]: x for x in m["tensors"]}
        e = t.get("model.layers.0.mlp.experts.3.down_proj.weight", {})
        ok = (e.get("group") == "experts" and e.get("weights", {}).get("group_size") == 32 and e.get("scale_dtype") == "BF16"
              and t["model.layers.0.mlp.shared_expert.gate_proj.weight"]["group"] == "rest"
              and m["aux"] == [] and "input_scale" in t["model.layers.0.self_attn.o_proj.weight"]["parts"]
              and m["quantization_config"]["format"] == "mixed-precision")
    check(ok, "ct --meta: groups, args, scale dtype, parts (%s)" % err.strip())

    for variant, msg in [("index-missing", "not in the weight_map"), ("index-wrong", "is mapped to"),
                         ("bad-group", "does not divide K = 64"), ("bad-shape", "weight_shape"),
                         ("no-zp", "no weight_zero_point"), ("zp-unpacked", "packed along dim 0"),
                         ("ignored", "listed in quantization_config.ignore"), ("gap", "gap or overlap"),
                         ("no-input-scale", "input_scale"), ("dense-targeted", "stored dense, but config group"),
                         ("fp8-no-scale", "with no weight_scale")]:
        dv = os.path.join(tmp, "ct-" + variant)
        ct_checkpoint(dv, random.Random(11), variant)
        rc, so, err = run(ct_read, [dv, os.path.join(tmp, "ct-bad-out")])
        check(rc == 1 and msg in err and len(err.strip().splitlines()) == 1,
              "ct rejects %s with exit 1 and one line saying %r (got %d: %s)" % (variant, msg, rc, err.strip()))


# ===========================================================================
# a pack (docs/FORMAT.md) holding llama.cpp grid encodings, for decode_pack.py

def test_pack_grids(tmp):
    try:
        import xxhash  # optional: without it decode_pack.py does not verify checksums either
        xxh = lambda b: xxhash.xxh3_64_intdigest(bytes(b), seed=0)  # noqa: E731
    except ImportError:
        xxh = lambda b: 0  # noqa: E731
    import decode_pack
    rng = random.Random(9)
    blocks = {t[0]: t for t in gguf_tensors(rng)}
    # (pack name, encoding, shape, source tensor of gguf_tensors whose blocks it reuses)
    specs = [("embed", "iq4_xs", [2, 256], "t.iq4_xs"), ("final_norm", "q8_0", [96], "t.q8_0"),
             ("layers.0.attn.q", "q4_k", [3, 256], "t.q4_k"), ("layers.0.attn.k", "q5_k", [1, 768], "t.q5_k"),
             ("layers.0.attn.v", "q6_k", [2, 256], "t.q6_k"), ("layers.0.attn.o", "q4_0", [2, 32], "t.q4_0"),
             ("layers.0.mlp.up", "q4_1", [1, 96], "t.q4_1"), ("layers.0.mlp.down", "iq4_nl", [2, 32], "t.iq4_nl")]
    pack = os.path.join(tmp, "grid.mpk")
    os.makedirs(pack)
    body = bytearray()
    tensors, records = [], []
    for i, (name, enc, shape, src) in enumerate(specs):
        raw = blocks[src][3]
        off = 64 + len(body)
        off += (-off) % 64
        body += bytes(off - 64 - len(body)) + raw
        layer = 0 if name.startswith("layers.") else -1
        tensors.append({"name": name, "source": src, "shape": shape, "encoding": enc, "record": i, "part": 0})
        records.append({"tier": 0, "offset": off, "length": len(raw), "raw_length": len(raw), "codec": "none",
                        "xxh3": "%016x" % xxh(raw), "layer": layer, "expert": -1,
                        "parts": [{"tensor": i, "offset": 0, "length": len(raw)}]})
    size = 64 + len(body)
    head = b"MPKTIER1" + struct.pack("<IIQQ", 1, 0, size, len(records)) + bytes(24)
    head += struct.pack("<Q", xxh(head))
    with open(os.path.join(pack, "tier-0.bin"), "wb") as f:
        f.write(head + body)
    man = {"format": "moepack-pack", "version": 1, "model": {}, "provenance": {},
           "tiers": [{"index": 0, "file": "tier-0.bin", "bytes": size, "records": len(records), "codec": "none"}],
           "tensors": tensors, "records": records, "routing_stats": None}
    text = json.dumps(man).encode()
    with open(os.path.join(pack, "manifest.json"), "wb") as f:
        f.write(text)
    with open(os.path.join(pack, "manifest.xxh3"), "w") as f:
        f.write("%016x\n" % xxh(text))
    out = os.path.join(tmp, "grid-out")
    rc, so, err = run(decode_pack, [pack, out])
    check(rc == 0, "decode_pack accepts a hand-built pack of grid encodings (%s)" % err.strip()[-300:])
    for name, enc, shape, src in specs:
        if rc != 0:
            break
        got = np.fromfile(os.path.join(out, name + ".f32"), dtype="<f4")
        want = np.array(blocks[src][4], dtype=np.float32)
        check(np.array_equal(got.view(np.uint32), want.view(np.uint32)),
              "decode_pack %s %s %s bit-identical to the hand-computed values" % (name, enc, shape))
    # a grid tensor whose cols are not a whole number of blocks
    man["tensors"][2]["shape"] = [6, 128]
    text = json.dumps(man).encode()
    with open(os.path.join(pack, "manifest.json"), "wb") as f:
        f.write(text)
    with open(os.path.join(pack, "manifest.xxh3"), "w") as f:
        f.write("%016x\n" % xxh(text))
    rc, so, err = run(decode_pack, [pack, out])
    check(rc == 1 and "not a multiple of the block of 256" in err, "decode_pack rejects q4_k with 128 cols (%s)" % err.strip())


def main():
    tmp = tempfile.mkdtemp(prefix="test-oracles-")
    try:
        test_gguf(tmp)
        test_gguf_split(tmp)
        test_ct(tmp)
        test_pack_grids(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("test_oracles.py: %d checks FAILED" % len(FAILS))
        return 1
    print("test_oracles.py: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
