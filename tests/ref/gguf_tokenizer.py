"""Writes a small valid tokenizer (tokenizer.json + tokenizer_config.json) of exactly
VOCAB ids into DIR, for the synthetic checkpoints of tests/cli/test_export_gguf.sh
(synth writes none). KIND picks the vocabulary llama.cpp will get:
  spm_bpe   SentencePiece-style BPE with byte fallback (<unk> <s> </s>, <0xXX>, ▁pieces)
  unigram   a Unigram vocabulary with scores
  qwen2 llama3 gpt4o dsv3   byte-level BPE whose Split regexes are those models'
  gpt2      byte-level BPE with ByteLevel's own regex
Usage: python3 gguf_tokenizer.py KIND VOCAB DIR"""
import json
import string
import sys

REGEX = {
    "qwen2": [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "llama3": [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "gpt4o": [r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "dsv3": [r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
             "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"],
}


def byte_symbols():
    """GPT-2's bytes_to_unicode, in byte order."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    extra = 0
    out = []
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


def grow(vocab, merges, first, n):
    """Adds merges (first+letter, then letter+letter) until the vocab has n entries."""
    letters = string.ascii_lowercase
    pairs = [(first, c) for c in letters] + [(a, b) for a in letters for b in letters]
    for a, b in pairs:
        if len(vocab) >= n:
            break
        if a + b not in vocab and a in vocab and b in vocab:
            vocab[a + b] = len(vocab)
            merges.append(f"{a} {b}")


def added(id_, content):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def spm(n, unigram):
    specials = ["<unk>", "<s>", "</s>"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + list(string.ascii_lowercase)
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    grow(vocab, merges, "▁", n)
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    if unigram:
        items = sorted(vocab.items(), key=lambda kv: kv[1])
        model = {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
                 "vocab": [[p, 0.0 if i < 3 else -1.0 - i / 10] for p, i in items]}
    else:
        model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                 "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                 "vocab": vocab, "merges": merges}
    tok = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [added(i, s) for i, s in enumerate(specials)], "normalizer": None,
           "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
           "post_processor": post,
           "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                                        {"type": "ByteFallback"}, {"type": "Fuse"}]},
           "model": model}
    cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
           "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}
    return tok, cfg


def byte_level(kind, n):
    vocab = {s: i for i, s in enumerate(byte_symbols())}
    merges = []
    grow(vocab, merges, "Ġ", n - 2)
    byte_pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                "use_regex": kind == "gpt2"}
    if kind == "gpt2":
        pre = byte_pre
    else:
        splits = [{"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False}
                  for r in REGEX[kind]]
        pre = {"type": "Sequence", "pretokenizers": splits + [byte_pre]}
    tok = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [added(n - 2, "<|im_start|>"), added(n - 1, "<|endoftext|>")],
           "normalizer": {"type": "NFC"}, "pre_tokenizer": pre,
           "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                              "use_regex": False},
           "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                     "ignore_merges": kind == "llama3", "vocab": vocab, "merges": merges}}
    cfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, cfg


def main():
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tok, cfg = spm(n, kind == "unigram") if kind in ("spm_bpe", "unigram") else byte_level(kind, n)
    with open(f"{out}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(f"{out}/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(cfg, f)


main()
