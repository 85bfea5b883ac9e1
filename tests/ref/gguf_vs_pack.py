#!/usr/bin/python3
"""Checks a GGUF export value by value against its pack.

usage: gguf_vs_pack.py EXPORT.json GGUF_DUMP PACK_DUMP [--llama-cpp-heads]

EXPORT.json  `moepack export --to gguf --json`: per GGUF tensor its pack sources, the
             transform applied and whether it was copied
GGUF_DUMP    `tests/ref/gguf_read.py FILE --dump DIR`: every GGUF tensor dequantized by
             the NumPy reader written from ggml's block layouts (name.f32, ggml order)
PACK_DUMP    `build/pack_dump PACK DIR`: every pack tensor as moepack decodes it

The expected GGUF tensor is built from the pack's tensors the way llama.cpp's own
converter (convert_hf_to_gguf.py) lays them out, written here from its definitions:
  stack         experts of a layer one after the other (ne = [cols, rows, experts]);
  rope_permute  LlamaModel.permute: rows of each head reordered from HF's
                (half, pair) to (pair, half): reshape(heads, 2, d/2, cols).swapaxes(1, 2);
  mla_k_b       kv_b viewed [heads, nope + v, lora]: the first nope rows of each head,
                transposed: [heads, lora, nope];
  mla_v_b       kv_b's last v rows of each head: [heads, v, lora].
A tensor the export says it copied, or re-encoded losslessly, must equal that bit for
bit; a lossy re-encoding is reported with its largest relative error. Prints one line
per tensor and a summary; exits 1 when any copied or lossless tensor differs.
"""
import json
import sys

import numpy as np


def load(path, shape):
    a = np.fromfile(path, dtype=np.float32)
    if a.size != int(np.prod(shape)):
        raise SystemExit("%s: %d values, expected %s" % (path, a.size, shape))
    return a.reshape(shape)


def pack_tensor(pack_dump, name):
    return np.fromfile("%s/%s.f32" % (pack_dump, name), dtype=np.float32)


def expected(t, pack_dump, ne):
    srcs = [pack_tensor(pack_dump, s) for s in t["sources"]]
    shape = list(reversed(ne))  # row-major: slowest first
    tr, heads = t["transform"], t.get("heads")
    if tr in ("rows", "stack"):
        return np.concatenate(srcs).reshape(shape)
    w = srcs[0]
    if tr == "rope_permute":
        w = w.reshape(-1, shape[-1])
        rows, cols = w.shape
        return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(shape)
    lora = shape[-1] if tr == "mla_v_b" else shape[-2]
    w = w.reshape(heads, -1, lora)
    if tr == "mla_k_b":
        nope = shape[-1]
        return w[:, :nope, :].transpose(0, 2, 1).reshape(shape)
    v = shape[-2]
    return w[:, -v:, :].reshape(shape)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.split("\n\n")[1])
    export, gguf_dump, pack_dump = sys.argv[1:4]
    tensors = json.load(open(export))["tensors"]
    bad = exact = lossy = 0
    for t in tensors:
        shape = list(reversed(t["ne"]))
        got = load("%s/%s.f32" % (gguf_dump, t["name"]), shape)
        want = expected(t, pack_dump, t["ne"])
        same = got.tobytes() == want.astype(np.float32).tobytes()
        must = t["mode"] == "copied" or t.get("lossless")
        if same:
            exact += 1
            verdict = "bit-exact"
        elif must:
            bad += 1
            diff = np.flatnonzero(got.ravel().view(np.uint32) != want.ravel().view(np.uint32))
            verdict = "DIFFERS at %d of %d values (first at %d)" % (diff.size, got.size, diff[0])
        else:
            lossy += 1
            scale = max(float(np.max(np.abs(want))), 1e-30)
            verdict = "re-encoded, max error %.3g of the largest |value|" % (float(np.max(np.abs(got - want))) / scale)
        print("%-36s %-7s %-12s %-10s %s" % (t["name"], t["type"], t["transform"], t["mode"], verdict))
    print("%d tensors: %d bit-exact, %d lossy re-encodings, %d copied or lossless tensors that differ"
          % (len(tensors), exact, lossy, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
