// node hf_decode.js NODE_MODULES TOKENIZER_JSON OUT_DIR IDS_FILE...
// For each file of whitespace-separated ids, writes OUT_DIR/NAME.0 and OUT_DIR/NAME.1:
// the text HuggingFace tokenizers (its Rust library, npm package "tokenizers") decodes
// the ids to, with skip_special_tokens false and true, as raw UTF-8 bytes. When the
// tokenizer_config.json beside the file says clean_up_tokenization_spaces: true, the
// text then goes through transformers' clean_up_tokenization, as transformers'
// tokenizer.decode does (PreTrainedTokenizerBase.clean_up_tokenization: the same ten
// replacements, in this order). An argument random:N:SEED instead of a file stands for
// N pseudo-random ids, written first to OUT_DIR/random_SEED: a third drawn from the
// first 300 ids, a third from the last 300 (where special and byte tokens lie), a third
// from the whole vocabulary (added tokens included), then the first 10 and last 3 ids.
// The oracle of tests/cli/test_detok_hf.sh.
const path = require('path');
const fs = require('fs');
const [modules, file, outDir, ...idFiles] = process.argv.slice(2);
const { Tokenizer } = require(path.join(modules, 'tokenizers'));

function cleanupWanted() {
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(path.dirname(file), 'tokenizer_config.json'), 'utf8'));
    return cfg.clean_up_tokenization_spaces === true;
  } catch (e) {
    return false;
  }
}

function cleanUp(s) {
  const fixes = [[' .', '.'], [' ?', '?'], [' !', '!'], [' ,', ','], [" ' ", "'"], [" n't", "n't"],
    [" 'm", "'m"], [" 's", "'s"], [" 've", "'ve"], [" 're", "'re"]];
  for (const [from, to] of fixes) s = s.split(from).join(to);
  return s;
}

function randomIds(n, seed, vocab) {
  let x = seed >>> 0;
  const next = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x / 4294967296; };
  const low = Math.min(300, vocab), ids = [];
  for (let i = 0; i < n; i++) {
    const r = next(), k = i % 3;
    ids.push(k === 0 ? Math.floor(r * low) : k === 1 ? vocab - 1 - Math.floor(r * low) : Math.floor(r * vocab));
  }
  for (let i = 0; i < Math.min(10, vocab); i++) ids.push(i);
  for (let i = Math.max(0, vocab - 3); i < vocab; i++) ids.push(i);
  return ids;
}

(async () => {
  const tokenizer = Tokenizer.fromFile(file);
  const cleanup = cleanupWanted();
  const vocab = tokenizer.getVocabSize(true);
  for (let f of idFiles) {
    if (f.startsWith('random:')) {
      const [, n, seed] = f.split(':').map(Number);
      f = path.join(outDir, 'random_' + seed);
      fs.writeFileSync(f, randomIds(n, seed, vocab).join(' ') + '\n');
    }
    const ids = fs.readFileSync(f, 'utf8').split(/\s+/).filter((s) => s.length > 0).map(Number);
    for (const skip of [false, true]) {
      let text = await tokenizer.decode(ids, skip);
      if (cleanup) text = cleanUp(text);
      fs.writeFileSync(path.join(outDir, path.basename(f) + (skip ? '.1' : '.0')), Buffer.from(text, 'utf8'));
    }
  }
})().catch((e) => {
  process.stderr.write(`hf_decode: ${file}: ${e.message}\n`);
  process.exit(1);
});
