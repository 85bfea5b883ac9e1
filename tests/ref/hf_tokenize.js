// node hf_tokenize.js NODE_MODULES TOKENIZER_JSON TEXT_FILE [--special | --time]
// Prints the ids HuggingFace tokenizers (its Rust library, npm package "tokenizers")
// gives for the file's text, on one line; --special adds the post-processor's tokens;
// --time prints instead the best of three encoding times in seconds (bench/).
// The oracle of tests/cli/test_tokenizer_hf.sh.
const path = require('path');
const fs = require('fs');
const [modules, file, textFile, flag] = process.argv.slice(2);
const { Tokenizer } = require(path.join(modules, 'tokenizers'));
(async () => {
  const tokenizer = Tokenizer.fromFile(file);
  const text = fs.readFileSync(textFile, 'utf8');
  const options = { addSpecialTokens: flag === '--special' };
  if (flag === '--time') {
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const start = process.hrtime.bigint();
      await tokenizer.encode(text, null, options);
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    process.stdout.write(best.toFixed(4) + '\n');
    return;
  }
  const encoding = await tokenizer.encode(text, null, options);
  process.stdout.write(encoding.getIds().join(' ') + '\n');
})().catch((e) => {
  process.stderr.write(`hf_tokenize: ${file}: ${e.message}\n`);
  process.exit(1);
});
