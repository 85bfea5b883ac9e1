#!/usr/bin/python3
"""Independent GGUF reader and validator, written from the GGUF v3 format as llama.cpp
defines it (ggml/include/gguf.h, ggml/src/gguf.cpp gguf_init_from_reader,
src/llama-model-loader.cpp for split files and data bounds; llama.cpp commit 3f545bec).

usage: gguf_read.py FILE --meta [--strict] [--allow-nested-arrays]
       gguf_read.py FILE --dump OUTDIR [--strict] [--allow-nested-arrays]

  --meta          print JSON {"kv": {key: value}, "kv_types": {key: type}, "tensors":
                  [{"name", "type", "type_name", "ne", "offset", "nbytes", "file",
                  "file_offset"}], "files": [...]} on stdout
  --dump OUTDIR   write OUTDIR/<tensor name>.f32 (raw little-endian float32 of the
                  dequantized tensor, ggml order: ne[0] fastest) for every tensor, and print
                  one line per tensor "name TYPE ne0xne1..." (ne as stored, n_dims values)
  --strict        also fail on what llama.cpp tolerates but its writer never produces:
                  version 2, non-zero padding bytes, bytes after the padded data section,
                  strings that are not UTF-8, bool bytes other than 0 and 1
  --allow-nested-arrays  accept arrays of arrays (gguf-py reads them; llama.cpp's
                  gguf_init rejects them, so by default they are a violation)

Split models: when FILE has split.count > 1 it must be split 0 and named
PREFIX-00001-of-0000N.gguf; the other parts PREFIX-0000k-of-0000N.gguf are read too
(each must say split.no = k - 1), tensor names must be unique across all parts and the
first part's split.tensors.count must equal the number of tensors. split.no and
split.count are u16, split.tensors.count i32 (llama.cpp's get_key checks the type).

Checked as llama.cpp checks (gguf_init_from_reader): magic "GGUF"; version not 0, not
byte-swapped, not 1, not above 3; n_tensors and n_kv non-negative; keys non-empty and
unique; KV types 0..12 (ARRAY only at the top), string and array lengths within the
file and <= 2^30; general.alignment, if present, is a u32 power of two (default 32);
tensor names shorter than 64 bytes and unique; n_dims <= 4; every ne >= 0; the element
count fits in int64; type id in [0, 43) and not a removed type; ne[0] a multiple of the
type's block size; offsets (relative to the data section) equal to the running sum of
the tensors' sizes each padded to the alignment (hence aligned); the data section
starts at the end of the tensor infos padded to the alignment (within the file); the
file holds the whole padded data section (gguf_init_from_file with data reads that
many bytes; gguf_write pads after the last tensor too) and each tensor's bytes
(llama-model-loader's bound check).

Exit status: 0 fine; 1 the file violates the format (one line on stderr naming the
problem); 2 usage; 3 a tensor type this oracle cannot dequantize (--dump only).

KV values in the JSON: integers as integers, bool as true/false, f32 as the shortest
decimal that reads back to the same float32, f64 as Python's repr, strings as text
(JSON escapes for non-ASCII; bytes that are not UTF-8 come out as lone surrogates
U+DC80..U+DCFF), arrays as lists. NaN/inf print as NaN/Infinity (Python's json
extension).
"""

import json
import os
import re
import struct
import sys

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.stderr.write("gguf_read.py: numpy is required (Debian: python3-numpy)\n")
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ggml_dequant as gd  # noqa: E402


class GGUFError(Exception):
    """A violation of the GGUF format as llama.cpp reads it."""


MAGIC = b"GGUF"
MAX_VERSION = 3
DEFAULT_ALIGNMENT = 32
MAX_NAME = 64          # GGML_MAX_NAME: names must be shorter
MAX_DIMS = 4           # GGML_MAX_DIMS
MAX_STRING = 1 << 30   # GGUF_MAX_STRING_LENGTH
MAX_ARRAY = 1 << 30    # GGUF_MAX_ARRAY_ELEMENTS
INT64_MAX = (1 << 63) - 1

# gguf_type -> (name, struct format or None)
KV_TYPES = {
    0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"), 4: ("u32", "<I"),
    5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<b"), 8: ("str", None), 9: ("arr", None),
    10: ("u64", "<Q"), 11: ("i64", "<q"), 12: ("f64", "<d"),
}
_NP = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<i1",
       10: "<u8", 11: "<i8", 12: "<f8"}


def pad(x, a):
    return (x + a - 1) // a * a


def _f32(v):
    """A float32 KV value as the double nearest the shortest decimal that reads back to
    the same float32 (so JSON shows 1e-05, not 9.999999747378752e-06)."""
    v = np.float32(v)
    return float(str(v)) if np.isfinite(v) else float(v)


class Cursor:
    def __init__(self, f, size, path):
        self.f, self.size, self.path = f, size, path
        self.pos = 0

    def need(self, n, what):
        if n > self.size - self.pos:
            raise GGUFError("%s: %s needs %d bytes at offset %d, the file has %d" %
                            (self.path, what, n, self.pos, self.size))

    def raw(self, n, what):
        self.need(n, what)
        b = self.f.read(n)
        if len(b) != n:
            raise GGUFError("%s: short read of %s at offset %d" % (self.path, what, self.pos))
        self.pos += n
        return b

    def scalar(self, fmt, what):
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, self.raw(n, what))[0]

    def string(self, what, notes):
        n = self.scalar("<Q", what + " length")
        if n > MAX_STRING:
            raise GGUFError("%s: %s: string length %d exceeds the maximum %d" % (self.path, what, n, MAX_STRING))
        if n > self.size - self.pos:
            raise GGUFError("%s: %s: string length %d exceeds the %d bytes left in the file" %
                            (self.path, what, n, self.size - self.pos))
        b = self.raw(n, what)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            notes.append("%s: %s is not valid UTF-8" % (self.path, what))
            return b.decode("utf-8", errors="surrogateescape")


class GGUFFile:
    """One .gguf file: header, KV pairs, tensor infos, layout."""

    def __init__(self, path, strict=False, allow_nested=False):
        self.path = path
        self.strict = strict
        self.notes = []  # things llama.cpp tolerates; violations under --strict
        try:
            self.file_size = os.path.getsize(path)
            with open(path, "rb") as f:
                self._parse(Cursor(f, self.file_size, path), allow_nested)
        except OSError as e:
            raise GGUFError("%s: cannot read: %s" % (path, e))
        if strict:
            self._strict_checks()
        if strict and self.notes:
            raise GGUFError(self.notes[0])

    # -- parsing ---------------------------------------------------------------------

    def _value(self, c, t, what, allow_nested, depth=0):
        if t == 8:
            return c.string(what, self.notes)
        if t == 9:
            if depth > 0 and not allow_nested:
                raise GGUFError("%s: %s: array of arrays (llama.cpp rejects GGUF type %d inside an array)" %
                                (self.path, what, t))
            et = c.scalar("<i", what + " array type")
            n = c.scalar("<Q", what + " array length")
            if et not in KV_TYPES:
                raise GGUFError("%s: %s has invalid GGUF type %d" % (self.path, what, et))
            if et == 9 and not allow_nested:
                raise GGUFError("%s: %s: array of arrays (llama.cpp rejects GGUF type 9 as an array's element type;"
                                " --allow-nested-arrays reads it as gguf-py does)" % (self.path, what))
            if n > MAX_ARRAY:
                raise GGUFError("%s: %s: array of %d elements exceeds the maximum %d" % (self.path, what, n, MAX_ARRAY))
            if et in _NP:
                size = np.dtype(_NP[et]).itemsize
                if n * size > c.size - c.pos:
                    raise GGUFError("%s: %s: array of %d %s runs past the end of the file" %
                                    (self.path, what, n, KV_TYPES[et][0]))
                arr = np.frombuffer(c.raw(n * size, what), dtype=_NP[et])
                if et == 7:
                    if self.strict and np.any((arr != 0) & (arr != 1)):
                        self.notes.append("%s: %s: bool array holds bytes other than 0 and 1" % (self.path, what))
                    return ("arr", et, [bool(x) for x in arr])
                if et == 6:
                    return ("arr", et, [_f32(x) for x in arr])
                return ("arr", et, arr.tolist())
            if et == 8 and n * 8 > c.size - c.pos:
                raise GGUFError("%s: %s: array of %d strings runs past the end of the file" % (self.path, what, n))
            return ("arr", et, [self._value(c, et, "%s[%d]" % (what, i), allow_nested, depth + 1) for i in range(n)])
        if t not in KV_TYPES:
            raise GGUFError("%s: %s has invalid GGUF type %d" % (self.path, what, t))
        v = c.scalar(KV_TYPES[t][1], what)
        if t == 7:
            if v not in (0, 1):
                self.notes.append("%s: %s: bool byte %d (not 0 or 1)" % (self.path, what, v))
            return v != 0
        if t == 6:
            return _f32(v)
        return v

    def _parse(self, c, allow_nested):
        magic = c.raw(4, "magic") if self.file_size >= 4 else None
        if magic != MAGIC:
            raise GGUFError("%s: bad magic %r, want b'GGUF'" % (self.path, magic))
        self.version = c.scalar("<I", "version")
        v = self.version
        if v == 0:
            raise GGUFError("%s: bad GGUF version 0" % self.path)
        if v & 0xFFFF == 0:
            raise GGUFError("%s: GGUF version %d (0x%08x): byte-swapped, wrong endianness" % (self.path, v, v))
        if v == 1:
            raise GGUFError("%s: GGUF version 1 is no longer supported" % self.path)
        if v > MAX_VERSION:
            raise GGUFError("%s: GGUF version %d, this reader knows up to %d" % (self.path, v, MAX_VERSION))
        if v != 3:
            self.notes.append("%s: GGUF version %d (llama.cpp accepts it; its writer writes 3)" % (self.path, v))
        n_tensors = c.scalar("<q", "tensor count")
        n_kv = c.scalar("<q", "KV count")
        if n_tensors < 0:
            raise GGUFError("%s: tensor count %d is negative" % (self.path, n_tensors))
        if n_kv < 0:
            raise GGUFError("%s: KV count %d is negative" % (self.path, n_kv))
        self.kv, self.kv_types = {}, {}
        for i in range(n_kv):
            key = c.string("key %d" % i, self.notes)
            if key == "":
                raise GGUFError("%s: key %d is empty" % (self.path, i))
            if key in self.kv:
                raise GGUFError("%s: duplicate key %r (KV pairs %d and %d)" %
                                (self.path, key, list(self.kv).index(key), i))
            t = c.scalar("<i", "type of key %r" % key)
            if t not in KV_TYPES:
                raise GGUFError("%s: key %r has invalid GGUF type %d" % (self.path, key, t))
            val = self._value(c, t, "key %r" % key, allow_nested)
            if t == 9:
                _, et, val = val
                self.kv_types[key] = "arr[%s]" % KV_TYPES[et][0]
            else:
                self.kv_types[key] = KV_TYPES[t][0]
            self.kv[key] = val
        self.alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.kv:
            if self.kv_types["general.alignment"] != "u32":
                raise GGUFError("%s: general.alignment must be u32, is %s" %
                                (self.path, self.kv_types["general.alignment"]))
            self.alignment = self.kv["general.alignment"]
            a = self.alignment
            if a == 0 or a & (a - 1):
                raise GGUFError("%s: general.alignment %d is not a power of 2" % (self.path, a))
        self.tensors = []
        names = {}
        for i in range(n_tensors):
            name = c.string("tensor %d name" % i, self.notes)
            nb = len(name.encode("utf-8", errors="surrogateescape"))
            if nb >= MAX_NAME:
                raise GGUFError("%s: tensor %d name %r is too long: %d bytes >= %d" % (self.path, i, name, nb, MAX_NAME))
            if name in names:
                raise GGUFError("%s: duplicate tensor name %r (tensors %d and %d)" % (self.path, name, names[name], i))
            names[name] = i
            n_dims = c.scalar("<I", "tensor %r n_dims" % name)
            if n_dims > MAX_DIMS:
                raise GGUFError("%s: tensor %r has %d dimensions > %d" % (self.path, name, n_dims, MAX_DIMS))
            ne = [c.scalar("<q", "tensor %r ne[%d]" % (name, j)) for j in range(n_dims)]
            for j, x in enumerate(ne):
                if x < 0:
                    raise GGUFError("%s: tensor %r dimension %d has %d < 0 elements" % (self.path, name, j, x))
            ne4 = ne + [1] * (MAX_DIMS - n_dims)
            n = ne4[0] * ne4[1] * ne4[2] * ne4[3]
            if n > 0 and (INT64_MAX // ne4[1] <= ne4[0] or INT64_MAX // ne4[2] <= ne4[0] * ne4[1]
                          or INT64_MAX // ne4[3] <= ne4[0] * ne4[1] * ne4[2]):
                raise GGUFError("%s: tensor %r with shape %s has too many elements" % (self.path, name, ne4))
            t = c.scalar("<i", "tensor %r type" % name)
            if t < 0 or t >= gd.TYPE_COUNT:
                raise GGUFError("%s: tensor %r has invalid ggml type %d (want [0, %d))" % (self.path, name, t, gd.TYPE_COUNT))
            tname, blck, tsize = gd.TYPES[t]
            if blck == 0 or ne4[0] % blck:
                raise GGUFError("%s: tensor %r of type %d (%s) has %d elements per row, not a multiple of the block size %d"
                                % (self.path, name, t, tname, ne4[0], blck))
            off = c.scalar("<Q", "tensor %r offset" % name)
            nbytes = 0 if n == 0 else n // blck * tsize
            self.tensors.append({"name": name, "type": t, "type_name": tname, "ne": ne, "offset": off,
                                 "nbytes": nbytes, "n": n})
        self.info_end = c.pos
        if n_tensors > 0:
            start = pad(c.pos, self.alignment)
            if start > self.file_size:
                raise GGUFError("%s: the data section would start at %d (tensor infos end at %d, alignment %d), "
                                "past the end of the file (%d bytes)" % (self.path, start, c.pos, self.alignment,
                                                                         self.file_size))
        else:
            start = c.pos
        self.data_offset = start
        size = 0
        for t in self.tensors:
            if t["offset"] != size:
                raise GGUFError("%s: tensor %r has offset %d, expected %d (running sum of sizes padded to %d)" %
                                (self.path, t["name"], t["offset"], size, self.alignment))
            size += pad(t["nbytes"], self.alignment)
        self.data_size = size
        for t in self.tensors:
            end = start + t["offset"] + t["nbytes"]
            if end > self.file_size:
                raise GGUFError("%s: tensor %r data (bytes %d..%d) is not within the file (%d bytes)" %
                                (self.path, t["name"], start + t["offset"], end, self.file_size))
        if self.tensors and start + size > self.file_size:
            raise GGUFError("%s: the padded data section ends at %d but the file has %d bytes "
                            "(gguf_init_from_file reads the whole padded blob; gguf_write pads after the last tensor)"
                            % (self.path, start + size, self.file_size))

    def _strict_checks(self):
        with open(self.path, "rb") as f:
            f.seek(self.info_end)
            gap = f.read(self.data_offset - self.info_end)
            if any(gap):
                self.notes.append("%s: non-zero bytes between the tensor infos and the data section (%d..%d)" %
                                  (self.path, self.info_end, self.data_offset))
            for t in self.tensors:
                a = self.data_offset + t["offset"] + t["nbytes"]
                b = self.data_offset + t["offset"] + pad(t["nbytes"], self.alignment)
                f.seek(a)
                if any(f.read(b - a)):
                    self.notes.append("%s: non-zero padding after tensor %r (%d..%d)" % (self.path, t["name"], a, b))
        end = self.data_offset + self.data_size
        if end != self.file_size:
            self.notes.append("%s: %d bytes after the data section (ends at %d, file %d bytes)" %
                              (self.path, self.file_size - end, end, self.file_size))

    def tensor_bytes(self, t):
        if t["nbytes"] == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.data_offset + t["offset"],
                         shape=(t["nbytes"],))


SPLIT_RE = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")


def _typed(g, key, want, required=True):
    if key not in g.kv:
        if required:
            raise GGUFError("%s: key %s not found" % (g.path, key))
        return None
    if g.kv_types[key] != want:
        raise GGUFError("%s: key %s has type %s, expected %s" % (g.path, key, g.kv_types[key], want))
    return g.kv[key]


def open_model(path, strict=False, allow_nested=False):
    """The GGUFFile of path and, for a split model, those of the other parts, in order."""
    first = GGUFFile(path, strict, allow_nested)
    n_split = _typed(first, "split.count", "u16", required=False) or 0
    files = [first]
    if n_split > 1:
        idx = _typed(first, "split.no", "u16")
        if idx != 0:
            raise GGUFError("%s: split.no is %d: a split model is read from its first part (split.no 0)" % (path, idx))
        postfix = "-%05d-of-%05d.gguf" % (1, n_split)
        if not path.endswith(postfix):
            raise GGUFError("%s: invalid split file name: split.count %d, so the name must end in %s" %
                            (path, n_split, postfix))
        prefix = path[:-len(postfix)]
        for i in range(1, n_split):
            p = "%s-%05d-of-%05d.gguf" % (prefix, i + 1, n_split)
            if not os.path.exists(p):
                raise GGUFError("%s: split part %d of %d is missing" % (p, i + 1, n_split))
            g = GGUFFile(p, strict, allow_nested)
            no = _typed(g, "split.no", "u16")
            if no != i:
                raise GGUFError("%s: invalid split file idx: split.no %d, expected %d" % (p, no, i))
            cnt = _typed(g, "split.count", "u16", required=False)
            if cnt is not None and cnt != n_split:
                raise GGUFError("%s: split.count %d, the first part says %d" % (p, cnt, n_split))
            files.append(g)
        seen = {}
        for g in files:
            for t in g.tensors:
                if t["name"] in seen:
                    raise GGUFError("%s: tensor %r is duplicated (also in %s)" % (g.path, t["name"], seen[t["name"]]))
                seen[t["name"]] = g.path
        want = _typed(first, "split.tensors.count", "i32")
        if want != len(seen):
            raise GGUFError("%s: corrupted model: split.tensors.count %d but the parts hold %d tensors" %
                            (path, want, len(seen)))
    elif "split.no" in first.kv or "split.tensors.count" in first.kv:
        _typed(first, "split.no", "u16", required=False)
        _typed(first, "split.tensors.count", "i32", required=False)
    return files


def _json_default(o):
    raise TypeError(repr(o))


def _to_json(v):
    if isinstance(v, list):
        return [_to_json(x) for x in v]
    if isinstance(v, tuple):  # nested array marker ("arr", et, values)
        return _to_json(v[2])
    return v


def meta(files):
    first = files[0]
    tensors = []
    for g in files:
        for t in g.tensors:
            tensors.append({"name": t["name"], "type": t["type"], "type_name": t["type_name"], "ne": t["ne"],
                            "offset": t["offset"], "nbytes": t["nbytes"], "file": os.path.basename(g.path),
                            "file_offset": g.data_offset + t["offset"]})
    out = {"kv": {k: _to_json(v) for k, v in first.kv.items()}, "kv_types": first.kv_types, "tensors": tensors,
           "files": []}
    for i, g in enumerate(files):
        d = {"file": os.path.basename(g.path), "version": g.version, "alignment": g.alignment,
             "data_offset": g.data_offset, "data_size": g.data_size, "file_size": g.file_size,
             "n_tensors": len(g.tensors), "n_kv": len(g.kv)}
        if i:
            d["kv"] = {k: _to_json(v) for k, v in g.kv.items()}
            d["kv_types"] = g.kv_types
        out["files"].append(d)
    return out


def dump(files, outdir):
    os.makedirs(outdir, exist_ok=True)
    for g in files:
        for t in g.tensors:
            name = t["name"]
            if "/" in name or name in ("", ".", ".."):
                raise GGUFError("%s: tensor name %r cannot be a file name" % (g.path, name))
            vals = gd.dequantize(t["type"], g.tensor_bytes(t), t["n"])
            with open(os.path.join(outdir, name + ".f32"), "wb") as f:
                f.write(vals.astype("<f4", copy=False).tobytes())
            print("%s %s %s" % (name, t["type_name"], "x".join(str(x) for x in t["ne"]) or "scalar"))


def main(argv):
    args = argv[1:]
    strict = "--strict" in args
    nested = "--allow-nested-arrays" in args
    args = [a for a in args if a not in ("--strict", "--allow-nested-arrays")]
    if len(args) == 2 and args[1] == "--meta":
        mode, out = "meta", None
    elif len(args) == 3 and args[1] == "--dump":
        mode, out = "dump", args[2]
    else:
        sys.stderr.write("usage: gguf_read.py FILE --meta | FILE --dump OUTDIR  [--strict] [--allow-nested-arrays]\n")
        return 2
    try:
        files = open_model(args[0], strict, nested)
        for g in files:
            for n in g.notes[:10]:
                sys.stderr.write("gguf_read.py: note: %s\n" % n)
            if len(g.notes) > 10:
                sys.stderr.write("gguf_read.py: note: %d more notes on %s\n" % (len(g.notes) - 10, g.path))
        if mode == "meta":
            json.dump(meta(files), sys.stdout, default=_json_default)
            sys.stdout.write("\n")
        else:
            dump(files, out)
    except GGUFError as e:
        sys.stderr.write("gguf_read.py: %s\n" % e)
        return 1
    except gd.Unsupported as e:
        sys.stderr.write("gguf_read.py: unsupported: %s\n" % e)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
