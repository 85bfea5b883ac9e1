// Reads GGUF files with @huggingface/gguf (an independent parser) and prints, per file,
// one JSON document: the header's metadata with each value's GGUF type, and the tensor
// infos. Used by tests/cli/test_export_gguf.sh.
//   node gguf_meta.mjs NODE_MODULES FILE.gguf...   (NODE_MODULES: where npm_oracle installed it)
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const lib = await import(pathToFileURL(resolve(modules, "@huggingface/gguf/dist/index.mjs")).href);

// BigInts as numbers (sizes here stay far below 2^53), typed arrays as plain arrays.
const plain = (v) =>
    typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v;

const out = [];
for (const file of files) {
    const path = resolve(file);
    const r = await lib.gguf(path, { allowLocalFile: true, typedMetadata: true });
    const metadata = {}, types = {}, subtypes = {};
    for (const [key, entry] of Object.entries(r.typedMetadata)) {
        metadata[key] = plain(entry.value);
        types[key] = entry.type;
        if (entry.subType !== undefined) subtypes[key] = entry.subType;
    }
    out.push({
        file,
        bytes: statSync(path).size,
        metadata,
        types,
        subtypes,
        tensor_data_offset: Number(r.tensorDataOffset),
        tensors: r.tensorInfos.map((t) => ({
            name: t.name,
            ne: t.shape.map(Number),
            type: t.dtype,
            offset: Number(t.offset),
        })),
    });
}
process.stdout.write(JSON.stringify(out));
