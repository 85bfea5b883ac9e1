#include "run_options.h"

#include <stdlib.h>
#include <string.h>

const char *mp_run_help =
    "usage: moepack run PACK (--prompt TEXT | --prompt-file FILE | -i | --perplexity FILE) [options]\n\n"
    "Generates text from a pack on the CPU: the prompt is tokenized with the pack's tokenizer,\n"
    "run through the model at once, then tokens are sampled one at a time and printed as they\n"
    "come, until an end-of-sequence token or --max-tokens. Linear layers are computed straight\n"
    "from the packed encodings. Tier 0 stays in memory; routed experts are read from the tier\n"
    "files when the router first asks for them and kept in a cache bounded by --budget.\n\n"
    "  --prompt TEXT        the prompt\n"
    "  --prompt-file FILE   the prompt, from a file\n"
    "  --prompt-ids \"I ..\"  the prompt as token ids (no BOS added)\n"
    "  -i                   one prompt per line from stdin, each answered in turn (the cache is\n"
    "                       reset between prompts; with --chat the conversation goes on)\n"
    "  --chat               wrap prompts in the checkpoint's chat template as a user message\n"
    "  --max-tokens N       tokens to generate per prompt [256]\n"
    "  --ignore-eos         go on past end-of-sequence tokens (benchmarks)\n"
    "  --temp T             temperature; 0 = greedy [0.8]\n"
    "  --top-k K            keep the K most likely tokens; 0 = all [40]\n"
    "  --top-p P            keep the most likely tokens up to mass P [0.95]\n"
    "  --min-p P            drop tokens below P x the most likely one's probability [0.05]\n"
    "  --seed S             the sampler's seed: the same seed gives the same text [0]\n"
    "  --budget SIZE        bytes of weights held in memory (tier 0 + cached experts), e.g.\n"
    "                       2G; default: every expert stays once read\n"
    "  --policy lru|lfu|freq  which unpinned expert the cache evicts: least recently used,\n"
    "                       least often used, or least often routed by the manifest's\n"
    "                       routing_stats [lfu]; the hottest experts by routing_stats are\n"
    "                       pinned (up to half the cache) whatever the policy\n"
    "  --page-cache         read experts through the page cache (default: O_DIRECT, so the\n"
    "                       budget is what the machine spends)\n"
    "  --no-prefetch        no background reading of the next layer's likely experts\n"
    "  --act f32            exact f32 activations (default: the fastest kernels, activations\n"
    "                       quantized per block of 32 to 8 bits for integer dot products)\n"
    "  --ctx N              context positions (KV cache) [4096; --perplexity: 256]\n"
    "  --perplexity FILE    score FILE in chunks of --ctx tokens as `moepack reference` does\n"
    "                       (BOS first, the second half of each chunk scored) and print PPL\n"
    "  --chunks N           with --perplexity: only the first N chunks\n"
    "  --stats              print prompt and decode tokens/s, cache hit rate per layer, bytes\n"
    "                       read and peak RSS on stderr\n"
    "  --threads N, --quiet, --json (the reply, ids and statistics as JSON on stdout)\n\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure (a missing or corrupt expert\n"
    "record is named when it is first needed)\n";

static int parse_float(const char *name, const char *text, double min, double max, float *out, mp_error *err)
{
    char *end;
    double v = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || !(v >= min && v <= max))
        return mp_fail(err, MP_EXIT_INPUT, "%s \"%s\": expected a number in [%g, %g]", name, text, min, max);
    *out = (float)v;
    return MP_OK;
}

static int parse_policy(const char *text, mp_evict_policy *out, mp_error *err)
{
    if (mp_evict_policy_parse(text, out) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--policy \"%s\": expected lru, lfu or freq", text);
    return MP_OK;
}

static int parse_flag(mp_run_cli *o, const char *arg)
{
    if (strcmp(arg, "-i") == 0)
        o->interactive = true;
    else if (strcmp(arg, "--chat") == 0)
        o->chat = true;
    else if (strcmp(arg, "--stats") == 0)
        o->stats = true;
    else if (strcmp(arg, "--ignore-eos") == 0)
        o->ignore_eos = true;
    else if (strcmp(arg, "--page-cache") == 0)
        o->runtime.page_cache = true;
    else if (strcmp(arg, "--no-prefetch") == 0)
        o->runtime.prefetch = false;
    else
        return 0;
    return 1;
}

/* Options with a value: 1 consumed, 0 not one, negative on a usage error. */
static int parse_value(mp_run_cli *o, int argc, char **argv, int *i, mp_error *err)
{
    static const char *const names[] = {"--prompt", "--prompt-file", "--prompt-ids", "--perplexity", "--max-tokens",
                                        "--ctx", "--chunks", "--temp", "--top-k", "--top-p", "--min-p", "--seed",
                                        "--budget", "--policy", "--act"};
    const char *v = NULL;
    int which = -1, got = 0;
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]) && got == 0; k++)
        if ((got = mp_cli_value(names[k], argc, argv, i, &v, err)) != 0)
            which = k;
    if (got <= 0)
        return got;
    int rc = MP_OK;
    switch (which) {
    case 0: o->prompt = v; break;
    case 1: o->prompt_file = v; break;
    case 2: o->prompt_ids = v; break;
    case 3: o->perplexity = v; break;
    case 4: rc = mp_cli_int("--max-tokens", v, 1, 1 << 24, &o->max_tokens, err); break;
    case 5: rc = mp_cli_int("--ctx", v, 4, 1 << 22, &o->ctx, err); break;
    case 6: rc = mp_cli_int("--chunks", v, 1, 1 << 30, &o->chunks, err); break;
    case 7: rc = parse_float("--temp", v, 0, 100, &o->sampling.temp, err); break;
    case 8: rc = mp_cli_int("--top-k", v, 0, 1 << 30, &o->sampling.top_k, err); break;
    case 9: rc = parse_float("--top-p", v, 0, 1, &o->sampling.top_p, err); break;
    case 10: rc = parse_float("--min-p", v, 0, 1, &o->sampling.min_p, err); break;
    case 11: o->sampling.seed = strtoull(v, NULL, 10); break;
    case 12:
        o->budget_text = v;
        if (mp_parse_size(v, &o->runtime.budget) != 0 || o->runtime.budget == 0)
            rc = mp_fail(err, MP_EXIT_INPUT, "--budget \"%s\": expected a size such as 512M or 2G", v);
        break;
    case 13: rc = parse_policy(v, &o->runtime.policy, err); break;
    default:
        if (strcmp(v, "f32") != 0)
            rc = mp_fail(err, MP_EXIT_INPUT, "--act \"%s\": expected f32 (the default kernels need no flag)", v);
        o->runtime.mode = MP_KERN_EXACT;
    }
    return rc ? -1 : 1;
}

static int check_modes(const mp_run_cli *o, mp_error *err)
{
    int inputs = !!o->prompt + !!o->prompt_file + !!o->prompt_ids + o->interactive + !!o->perplexity;
    if (!o->pack)
        return mp_fail(err, MP_EXIT_INPUT, "no pack given; see moepack run --help");
    if (inputs != 1)
        return mp_fail(err, MP_EXIT_INPUT,
                       "give exactly one of --prompt, --prompt-file, --prompt-ids, -i and --perplexity");
    if (o->chat && (o->prompt_ids || o->perplexity))
        return mp_fail(err, MP_EXIT_INPUT, "--chat needs a text prompt (--prompt, --prompt-file or -i)");
    return MP_OK;
}

int mp_run_cli_parse(mp_run_cli *o, int argc, char **argv, mp_error *err)
{
    memset(o, 0, sizeof *o);
    o->max_tokens = 256;
    o->sampling = (mp_sampler_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f};
    o->runtime = (mp_runtime_opts){.mode = MP_KERN_FAST, .policy = MP_EVICT_DEFAULT, .prefetch = true};
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got == 0)
            got = parse_value(o, argc, argv, &i, err);
        if (got == 0)
            got = parse_flag(o, argv[i]);
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (argv[i][0] == '-' || o->pack)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack run --help", argv[i]);
        o->pack = argv[i];
    }
    if (o->common.help)
        return MP_OK;
    if (o->ctx == 0)
        o->ctx = o->perplexity ? 256 : 4096;
    o->runtime.max_ctx = o->ctx;
    o->runtime.quiet = o->common.quiet || o->common.json;
    return check_modes(o, err);
}
