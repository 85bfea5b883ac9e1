#!/usr/bin/python3
"""Independent reference dequantizer of ggml (llama.cpp) tensor types, written from the
published format: ggml/src/ggml-common.h (block structs), ggml/src/ggml-quants.c
(dequantize_row_* and get_scale_min_k4), ggml/include/ggml.h (type numbers) and
ggml/src/ggml.c (type_traits: block size and bytes of every type), llama.cpp commit
3f545beccee69d9975f466ec7e45fd9aacd8ba90.

    import ggml_dequant
    y = ggml_dequant.dequantize(type_id, raw_bytes, n_values)   # -> np.float32 [n_values]

Types decoded: F32 (0), F16 (1), Q4_0 (2), Q4_1 (3), Q8_0 (8), Q4_K (12), Q5_K (13),
Q6_K (14), IQ4_NL (20), IQ4_XS (23), BF16 (30). The sizes of all other types are known
(TYPES) so a reader can lay a file out, but decoding them raises Unsupported.

Bit for bit what ggml's reference C gives: each C operation is done once, in float32,
in the C order of evaluation, each result rounded to float32 (NumPy float32 arithmetic is
IEEE round-to-nearest-even without flush-to-zero; no float64 intermediate, no fused
multiply-add anywhere). Integer-to-float conversions are exact (|q| < 2^24). Per type:

  Q8_0    y = q * d                          q int8, d f16
  Q4_0    y = (nibble - 8) * d               low nibbles -> y[0..15], high -> y[16..31]
  Q4_1    y = (nibble * d) + m
  Q4_K    y = (d1 * q) - m1,  d1 = d * sc,  m1 = dmin * m   (sc, m 6-bit, get_scale_min_k4)
  Q5_K    as Q4_K with q = nibble + 16 * high bit
  Q6_K    y = (d * sc) * q                   sc int8, q = 6-bit - 32
  IQ4_NL  y = d * kvalues_iq4nl[nibble]
  IQ4_XS  y = (d * (ls - 32)) * kvalues_iq4nl[nibble]
  F16     widened exactly by bit manipulation (a NaN keeps its payload, quiet bit set)
  BF16    the 16 bits shifted to the top of a float32 (exact)

Why the bits are determined: with a finite f16 scale every product above is exact in
float32 (significant bits: f16 11, q8 7, 4-bit code 4, 5-bit 5, q6 - 32 5, K-quant
6-bit scales 6, q6_K int8 scales 7, iq4 values 7, so at most 11 + 6 + 5 = 22 or
11 + 7 + 5 = 23 bits; and |values| stay between 2^-24 and 3e8, so no underflow or
overflow). The only rounding is Q4_1's `+ m` and the K-quants' `- m1`, once, on exact
operands. So the order of the multiplications does not matter, and neither does a
compiler contracting `d1 * q - m1` into a fused multiply-add. (Checked against a
llama.cpp build's libggml-base.so, whose dequantize_row_* happen to contain no FMA:
equal bits on random blocks, NaN/inf/subnormal scales included.)
Differences can only come from inf/NaN scales (which NaN bits come out).
"""

import numpy as np


class Unsupported(ValueError):
    """A ggml type this module knows the size of but does not decode."""


QK_K = 256
K_SCALE_SIZE = 12

# type id -> (name, values per block, bytes per block); blck 0 = removed type.
# Block bytes are the sizeof of the ggml-common.h structs (their static_asserts).
TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 2 + 16),
    3: ("Q4_1", 32, 2 + 2 + 16),
    4: ("Q4_2 (removed)", 0, 0),
    5: ("Q4_3 (removed)", 0, 0),
    6: ("Q5_0", 32, 2 + 4 + 16),
    7: ("Q5_1", 32, 2 + 2 + 4 + 16),
    8: ("Q8_0", 32, 2 + 32),
    9: ("Q8_1", 32, 2 + 2 + 32),
    10: ("Q2_K", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    11: ("Q3_K", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    12: ("Q4_K", QK_K, 2 + 2 + K_SCALE_SIZE + QK_K // 2),
    13: ("Q5_K", QK_K, 2 + 2 + K_SCALE_SIZE + QK_K // 2 + QK_K // 8),
    14: ("Q6_K", QK_K, 2 + QK_K // 16 + 3 * QK_K // 4),
    15: ("Q8_K", QK_K, 4 + QK_K + QK_K // 16 * 2),
    16: ("IQ2_XXS", QK_K, 2 + QK_K // 8 * 2),
    17: ("IQ2_XS", QK_K, 2 + QK_K // 8 * 2 + QK_K // 32),
    18: ("IQ3_XXS", QK_K, 2 + 3 * (QK_K // 8)),
    19: ("IQ1_S", QK_K, 2 + QK_K // 8 + QK_K // 16),
    20: ("IQ4_NL", 32, 2 + 16),
    21: ("IQ3_S", QK_K, 2 + 13 * (QK_K // 32) + QK_K // 64),
    22: ("IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 16),
    23: ("IQ4_XS", QK_K, 2 + 2 + QK_K // 64 + QK_K // 2),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    30: ("BF16", 1, 2),
    31: ("Q4_0_4_4 (removed)", 0, 0),
    32: ("Q4_0_4_8 (removed)", 0, 0),
    33: ("Q4_0_8_8 (removed)", 0, 0),
    34: ("TQ1_0", QK_K, 2 + QK_K // 64 + (QK_K - 4 * QK_K // 64) // 5),
    35: ("TQ2_0", QK_K, 2 + QK_K // 4),
    36: ("IQ4_NL_4_4 (removed)", 0, 0),
    37: ("IQ4_NL_4_8 (removed)", 0, 0),
    38: ("IQ4_NL_8_8 (removed)", 0, 0),
    39: ("MXFP4", 32, 1 + 16),
    40: ("NVFP4", 64, 4 + 32),
    41: ("Q1_0", 128, 2 + 16),
    42: ("Q2_0", 64, 2 + 16),
}
TYPE_COUNT = 43

F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, BF16 = 0, 1, 2, 3, 8, 12, 13, 14, 20, 23, 30
BY_NAME = {v[0]: k for k, v in TYPES.items() if v[1]}

KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.int8)
_KV_F32 = KVALUES_IQ4NL.astype(np.float32)  # exact


def type_name(type_id):
    t = TYPES.get(type_id)
    return t[0] if t else "type%d" % type_id


def block_values(type_id):
    return TYPES[type_id][1]


def block_bytes(type_id):
    return TYPES[type_id][2]


def nbytes(type_id, n_values):
    """Bytes of n_values values of the type (n_values a multiple of the block size)."""
    name, blck, size = TYPES[type_id]
    if blck == 0:
        raise Unsupported("type %d (%s) was removed from ggml" % (type_id, name))
    if n_values % blck:
        raise ValueError("%d values are not a whole number of %s blocks of %d" % (n_values, name, blck))
    return n_values // blck * size


# ---------------------------------------------------------------------------
# Half precision, widened exactly.

def _f16_table():
    h = np.arange(65536, dtype=np.uint32)
    sign = (h >> 15) << 31
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    # inf; NaN with its payload and the quiet bit set, as ggml_compute_fp16_to_fp32 gives
    # (checked against libggml-base: a signalling f16 NaN comes out quiet)
    bits = np.where(e == 31, sign | 0x7F800000 | (m << 13) | np.where(m != 0, 0x400000, 0),
                    sign | ((e + (127 - 15)) << 23) | (m << 13))        # normal
    bits = np.where((e == 0) & (m == 0), sign, bits).astype(np.uint32)  # signed zero
    out = bits.view(np.float32).copy()
    sub = (e == 0) & (m != 0)
    # subnormal: m * 2^-24, exact in float32 (m < 2^10, result a normal float32)
    mag = m[sub].astype(np.float32) * np.float32(2.0 ** -24)
    out[sub] = np.where(sign[sub] != 0, -mag, mag)
    return out


F16_TO_F32 = _f16_table()
assert F16_TO_F32[0x3C00] == 1.0 and F16_TO_F32[0x0001] == np.float32(2.0 ** -24)
assert F16_TO_F32[0x7BFF] == 65504.0 and F16_TO_F32[0xC000] == -2.0


def f16_to_f32(u16):
    """uint16 bit patterns (any shape) -> float32, exact."""
    return F16_TO_F32[np.asarray(u16, dtype=np.uint16)]


def bf16_to_f32(u16):
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------

def _blocks(raw, type_id, n_values):
    name, blck, size = TYPES[type_id]
    nb = n_values // blck
    b = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8).reshape(-1)
    return b.reshape(nb, size)


def _u16(cols):
    """Two uint8 columns (little-endian) -> uint16 column vector."""
    return (cols[:, 0].astype(np.uint16) | (cols[:, 1].astype(np.uint16) << 8))


def _nibbles_halves(qs):
    """qs [nb, 16k] bytes -> [nb, 32k] codes: low nibbles first, then high nibbles
    (ggml's y[j] = qs[j] & 15, y[j + 16] = qs[j] >> 4 per 16 bytes)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _scale_min_k4(sc12):
    """get_scale_min_k4(j) for j = 0..7 of every block: sc12 [nb, 12] -> (sc, m) [nb, 8]."""
    q = sc12
    sc = np.empty((q.shape[0], 8), dtype=np.uint8)
    m = np.empty((q.shape[0], 8), dtype=np.uint8)
    sc[:, 0:4] = q[:, 0:4] & 63
    m[:, 0:4] = q[:, 4:8] & 63
    # j = 4..7: d = (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4); m = (q[j+4] >> 4) | ((q[j] >> 6) << 4)
    sc[:, 4:8] = (q[:, 8:12] & 0x0F) | ((q[:, 0:4] >> 6) << 4)
    m[:, 4:8] = (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)
    return sc, m


def _deq_q8_0(b):
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    q = b[:, 2:34].view(np.int8).astype(np.float32)
    return q * d


def _deq_q4_0(b):
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    q = (_nibbles_halves(b[:, 2:18]).astype(np.int16) - 8).astype(np.float32)
    return q * d


def _deq_q4_1(b):
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    m = f16_to_f32(_u16(b[:, 2:4]))[:, None]
    q = _nibbles_halves(b[:, 4:20]).astype(np.float32)
    return (q * d) + m


def _k_scales(b):
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    dmin = f16_to_f32(_u16(b[:, 2:4]))[:, None]
    sc, m = _scale_min_k4(b[:, 4:16])
    d1 = d * sc.astype(np.float32)      # [nb, 8], one per sub-block of 32
    m1 = dmin * m.astype(np.float32)
    return d1, m1


def _deq_q4_k(b):
    nb = b.shape[0]
    d1, m1 = _k_scales(b)
    qs = b[:, 16:144].reshape(nb, 4, 32)
    # 64-value chunk j: 32 low nibbles (sub-block 2j), then 32 high nibbles (2j + 1)
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(nb, 8, 32).astype(np.float32)
    return ((d1[:, :, None] * q) - m1[:, :, None]).reshape(nb, QK_K)


def _deq_q5_k(b):
    nb = b.shape[0]
    d1, m1 = _k_scales(b)
    qh = b[:, 16:48]                         # [nb, 32]
    qs = b[:, 48:176].reshape(nb, 4, 32)
    lo = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(nb, 8, 32)
    # sub-block s takes its fifth bit from bit s of qh[l]
    shifts = np.arange(8, dtype=np.uint8)[None, :, None]
    hi = (qh[:, None, :] >> shifts) & 1
    q = (lo | (hi << 4)).astype(np.float32)
    return ((d1[:, :, None] * q) - m1[:, :, None]).reshape(nb, QK_K)


def _deq_q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 64)
    qh = b[:, 128:192].reshape(nb, 2, 32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32)   # [nb, 16]
    d = f16_to_f32(_u16(b[:, 208:210]))[:, None]
    # per 128-value half: 4 runs of 32 values
    q1 = (ql[:, :, 0:32] & 0x0F) | (((qh >> 0) & 3) << 4)
    q2 = (ql[:, :, 32:64] & 0x0F) | (((qh >> 2) & 3) << 4)
    q3 = (ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)
    q4 = (ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4)
    q = np.stack([q1, q2, q3, q4], axis=2).reshape(nb, QK_K)
    q = (q.astype(np.int16) - 32).astype(np.float32).reshape(nb, 16, 16)
    # value e of the block uses scale e // 16 (y[l + 32k] uses sc[l/16 + 2k] within a half)
    ds = d * sc                                             # (d * sc), rounded
    return (ds[:, :, None] * q).reshape(nb, QK_K)


def _deq_iq4_nl(b):
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    k = _KV_F32[_nibbles_halves(b[:, 2:18])]
    return d * k


def _deq_iq4_xs(b):
    nb = b.shape[0]
    d = f16_to_f32(_u16(b[:, 0:2]))[:, None]
    scales_h = _u16(b[:, 2:4]).astype(np.int32)            # [nb]
    scales_l = b[:, 4:8].astype(np.int32)                  # [nb, 4]
    ib = np.arange(8)
    ls = ((scales_l[:, ib // 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h[:, None] >> (2 * ib)) & 3) << 4)
    dl = d * (ls - 32).astype(np.float32)                  # [nb, 8]
    qs = b[:, 8:136].reshape(nb, 8, 16)
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=2)   # [nb, 8, 32]
    return (dl[:, :, None] * _KV_F32[codes]).reshape(nb, QK_K)


_BLOCK_DEQ = {
    Q8_0: _deq_q8_0, Q4_0: _deq_q4_0, Q4_1: _deq_q4_1, Q4_K: _deq_q4_k, Q5_K: _deq_q5_k,
    Q6_K: _deq_q6_k, IQ4_NL: _deq_iq4_nl, IQ4_XS: _deq_iq4_xs,
}
SUPPORTED = (F32, F16, BF16) + tuple(_BLOCK_DEQ)


def dequantize(type_id, raw, n_values, chunk_blocks=1 << 16):
    """raw: the bytes of n_values values of ggml type type_id (bytes, memoryview, or a
    uint8 ndarray, e.g. a np.memmap slice). Returns np.float32 [n_values]."""
    if type_id not in TYPES:
        raise ValueError("unknown ggml type %d" % type_id)
    want = nbytes(type_id, n_values)
    have = raw.nbytes if isinstance(raw, np.ndarray) else len(memoryview(raw).cast("B"))
    if have != want:
        raise ValueError("%s: %d values take %d bytes, got %d" % (type_name(type_id), n_values, want, have))
    if type_id == F32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)
    if type_id == F16:
        return f16_to_f32(np.frombuffer(raw, dtype="<u2"))
    if type_id == BF16:
        return bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
    fn = _BLOCK_DEQ.get(type_id)
    if fn is None:
        raise Unsupported("ggml type %d (%s) is not decoded by this oracle" % (type_id, type_name(type_id)))
    blocks = _blocks(raw, type_id, n_values)
    out = np.empty(n_values, dtype=np.float32)
    blck = TYPES[type_id][1]
    with np.errstate(all="ignore"):  # inf/NaN scales are data, not errors
        for i in range(0, blocks.shape[0], chunk_blocks):  # bounded temporaries
            part = blocks[i:i + chunk_blocks]
            y = fn(part)
            assert y.dtype == np.float32, (type_name(type_id), y.dtype)
            out[i * blck:(i + part.shape[0]) * blck] = y.reshape(-1)
    return out
