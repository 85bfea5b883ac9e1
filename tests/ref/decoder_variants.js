// node decoder_variants.js BASE_TOKENIZER_JSON OUT_DIR
// Writes OUT_DIR/NAME/tokenizer.json: the base tokenizer (a SentencePiece-style
// vocabulary with ▁ and <0xXX> pieces, Llama-2's) behind every decoder HF tokenizers
// has and each of their options, none of which the real tokenizers of the tests use
// all of; plus normalized added tokens, which HF decodes in their normalized form.
// Prints the names, one per line. For tests/cli/test_detok_hf.sh.
const fs = require('fs');
const path = require('path');
const [base, outDir] = process.argv.slice(2);
const tok = JSON.parse(fs.readFileSync(base, 'utf8'));
const M = '\u2581';
const sp = (more) => ({ type: 'Sequence', decoders: [
  { type: 'Replace', pattern: { String: M }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, ...more] });
const variants = {
  metaspace_always: { type: 'Metaspace', replacement: M, prepend_scheme: 'always', split: true },
  metaspace_first: { type: 'Metaspace', replacement: M, prepend_scheme: 'first', split: false },
  metaspace_never: { type: 'Metaspace', replacement: M, prepend_scheme: 'never', split: true },
  metaspace_legacy: { type: 'Metaspace', replacement: M, add_prefix_space: true },
  metaspace_fallback: { type: 'Sequence', decoders: [{ type: 'ByteFallback' },
    { type: 'Metaspace', replacement: M, prepend_scheme: 'always', split: true }] },
  strip_both_ends: sp([{ type: 'Strip', content: ' ', start: 2, stop: 3 }]),
  strip_each_token: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: M }, content: ' ' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
  strip_other_char: sp([{ type: 'Strip', content: 'e', start: 1, stop: 1 }]),
  replace_regex: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { Regex: M + '+' }, content: '_' },
    { type: 'ByteFallback' }, { type: 'Fuse' }] },
  nested_sequence: { type: 'Sequence', decoders: [{ type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: M }, content: ' ' }, { type: 'ByteFallback' }] }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
  wordpiece: { type: 'WordPiece', prefix: '##', cleanup: true },
  wordpiece_meta_prefix: { type: 'WordPiece', prefix: M, cleanup: false },
  bpe_suffix: { type: 'BPEDecoder', suffix: M },
  ctc: { type: 'CTC', pad_token: '<unk>', word_delimiter_token: M, cleanup: true },
  ctc_no_cleanup: { type: 'CTC', pad_token: '<s>', word_delimiter_token: 'a', cleanup: false },
  byte_level: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  no_decoder: null,
};
const names = [];
for (const [name, decoder] of Object.entries(variants)) {
  fs.mkdirSync(path.join(outDir, name), { recursive: true });
  fs.writeFileSync(path.join(outDir, name, 'tokenizer.json'), JSON.stringify({ ...tok, decoder }));
  names.push(name);
}
// Added tokens with normalized: true decode as the normalizer writes them ("▁hello▁world"),
// and a special one so written is no longer skipped (HF checks the written form).
const n = tok.model.vocab ? Object.keys(tok.model.vocab).length : 32000;
const added = [...tok.added_tokens,
  { id: n, content: 'hello world', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  { id: n + 1, content: '<my special>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
  { id: n + 2, content: '<plain special>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
fs.mkdirSync(path.join(outDir, 'added_normalized'), { recursive: true });
fs.writeFileSync(path.join(outDir, 'added_normalized', 'tokenizer.json'), JSON.stringify({ ...tok, added_tokens: added }));
names.push('added_normalized');
process.stdout.write(names.join('\n') + '\n');
