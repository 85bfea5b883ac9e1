/* report_demo OUT.html: writes a report with every block and plot kind of
 * report/html_report and report/svg_plot from fixed, made-up data shaped like what
 * verify will produce (DeepSeek-V3-sized heat maps included), plus the edge cases:
 * NaN and infinite values, all-equal values, empty series, a single point, strings
 * that need escaping. tests/cli/test_report.sh checks the result. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../../report/html_report.h"

enum { LAYERS = 61, EXPERTS = 256 };

/* Deterministic noise in [0, 1) (xorshift64). */
static double noise(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void summary_blocks(mp_report *r)
{
    mp_report_verdict(r, true, "mean KLD 0.0041 \xE2\x89\xA4 0.01, same top-1 98.7% \xE2\x89\xA5 97%");
    mp_report_verdict(r, false, "p99 KLD 0.061 > 0.05");
    const mp_report_kv kv[] = {
        {"pack", "demo.mpk (w4a16, mse, group 128)"}, {"reference", "tiny-qwen3moe <bf16> & \"friends\""},
        {"tokens", "65536"},                            {"perplexity", "12.84 (reference 12.61)"},
        {"mean KLD", "0.0041"},                         {"same top-1", "98.7%"},
    };
    mp_report_summary(r, kv, (int)(sizeof kv / sizeof *kv));
    const char *const header[] = {"class", "weights", "bytes", "bits/weight", "rel. error"};
    const char *const cells[] = {
        "embed",     "131072",  "262144",  "16.000", "-",
        "attention", "98304",   "51072",   "4.156",  "0.0213",
        "experts",   "1572864", "817152",  "4.156",  "0.0241",
        "all",       "1936128", "1398144", "5.777",  "n/a",
    };
    mp_report_table_write(r, &(mp_report_table){"Bits per weight by tensor class", header, 5, cells, 4});
}

static void layer_plots(mp_report *r)
{
    static double err_pack[LAYERS], err_rtn[LAYERS], err_fp8[LAYERS];
    static double cos_pack[LAYERS], cos_rtn[LAYERS], cos_fp8[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        double growth = 1 + 0.05 * l;
        err_pack[l] = 0.012 * growth * (1 + 0.2 * sin(0.7 * l));
        err_rtn[l] = 0.021 * growth * (1 + 0.25 * cos(0.5 * l));
        err_fp8[l] = 0.0021 * growth * (1 + 0.1 * sin(1.3 * l));
        cos_pack[l] = 1 - err_pack[l] * err_pack[l] / 2;
        cos_rtn[l] = 1 - err_rtn[l] * err_rtn[l] / 2;
        cos_fp8[l] = 1 - err_fp8[l] * err_fp8[l] / 2;
    }
    err_rtn[30] = NAN; /* a layer that failed: a gap in the line and a note */
    const mp_plot_series errs[] = {{"pack (w4a16 mse)", NULL, err_pack, NULL, LAYERS},
                                   {"w4a16 rtn", NULL, err_rtn, NULL, LAYERS},
                                   {"fp8", NULL, err_fp8, NULL, LAYERS}};
    mp_report_heading(r, 2, "Per layer");
    mp_report_line_chart(r, &(mp_line_chart){"Hidden-state relative error", "layer", "relative error", errs, 3, true},
                         "Relative L2 error of the hidden state after each layer (log scale).");
    const mp_plot_series coss[] = {{"pack (w4a16 mse)", NULL, cos_pack, NULL, LAYERS},
                                   {"w4a16 rtn", NULL, cos_rtn, NULL, LAYERS},
                                   {"fp8", NULL, cos_fp8, NULL, LAYERS}};
    mp_report_line_chart(r, &(mp_line_chart){"Hidden-state cosine similarity", "layer", "cosine", coss, 3, false}, NULL);
}

static void expert_plots(mp_report *r)
{
    static double big[LAYERS * EXPERTS];
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (int l = 0; l < LAYERS; l++)
        for (int e = 0; e < EXPERTS; e++)
            big[l * EXPERTS + e] = 0.018 + 0.004 * sin(l / 9.0) + 0.006 * noise(&s) + (e % 64 == 7 ? 0.01 : 0);
    big[5 * EXPERTS + 100] = NAN;
    big[40 * EXPERTS + 3] = INFINITY;
    mp_report_heading(r, 2, "Per expert");
    mp_report_heat_map(r, &(mp_heat_map){"Expert weight relative error", "expert", "layer", "relative error", big,
                                         LAYERS, EXPERTS, NULL, NULL, false},
                       "61 layers x 256 routed experts; hover a cell for its value.");

    static const char *const rows[] = {"layer 0", "layer 1", "layer 2", "layer 3"};
    static const char *const cols[] = {"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"};
    double small[4 * 8];
    for (int k = 0; k < 32; k++)
        small[k] = 0.001 * pow(1.35, k % 11) * (1 + noise(&s));
    mp_report_heat_map(r, &(mp_heat_map){"Small model, log colour scale", "expert", NULL, "relative error", small, 4, 8,
                                         rows, cols, true}, NULL);

    double freq[2][8] = {{0.31, 0.22, 0.12, 0.08, 0.09, 0.07, 0.06, 0.05}, {0.18, 0.11, 0.15, 0.2, 0.1, 0.09, 0.1, 0.07}};
    const mp_bar_group groups[] = {{"layer 0", freq[0]}, {"layer 1", freq[1]}};
    mp_report_bar_chart(r, &(mp_bar_chart){"Routing frequency (8 experts)", "expert", "share of tokens", cols, 8,
                                           groups, 2}, NULL);

    static double many[4][EXPERTS];
    for (int l = 0; l < 4; l++)
        for (int e = 0; e < EXPERTS; e++)
            many[l][e] = 8.0 / EXPERTS * (0.3 + 1.4 * noise(&s)) * (e == 17 * (l + 1) ? 4 : 1);
    many[2][9] = NAN;
    const mp_bar_group layers[] = {{"layer 3", many[0]}, {"layer 4", many[1]}, {"layer 5", many[2]}, {"layer 6", many[3]}};
    mp_report_bar_chart(r, &(mp_bar_chart){"Routing frequency (256 experts, top-8)", "expert", "share of tokens",
                                           NULL, EXPERTS, layers, 4},
                        "One panel per layer; uniform routing would be 8/256 = 0.031.");
}

static void pack_plot(mp_report *r)
{
    static const char *const names[] = {"w4g128", "w4g64", "w4g32", "fp8"};
    const double bits_rtn[] = {4.25, 4.5, 5.0, 8.5}, kld_rtn[] = {0.0125, 0.0089, 0.0061, 0.00042};
    const double bits_mse[] = {4.25, 4.5, 5.0}, kld_mse[] = {0.0083, 0.0061, 0.0043};
    const double bits_mix[] = {4.9}, kld_mix[] = {0.0019};
    static const char *const mixed[] = {"mixed"};
    const mp_plot_series groups[] = {{"rtn", bits_rtn, kld_rtn, names, 4},
                                     {"mse", bits_mse, kld_mse, names, 3},
                                     {"mixed fp8/w4", bits_mix, kld_mix, mixed, 1}};
    mp_report_heading(r, 2, "Packs compared");
    mp_report_scatter_chart(r, &(mp_scatter_chart){"Size vs quality", "bits per weight", "mean KLD", groups, 3, true,
                                                   true}, "Lower left is better.");
}

static void edge_cases(mp_report *r)
{
    mp_report_heading(r, 2, "Edge cases <&>");
    mp_report_paragraph(r, "Plots of degenerate data: \"quotes\", 'apostrophes', <tags> & ampersands stay text.");
    const double one_x[] = {3}, one_y[] = {0.25};
    const double flat[] = {0.5, 0.5, 0.5, 0.5, 0.5};
    const double odd[] = {NAN, INFINITY, -INFINITY, 0.2, -0.1, 0.3};
    const mp_plot_series s[] = {{"empty", NULL, NULL, NULL, 0},
                                {"single point", one_x, one_y, NULL, 1},
                                {"all equal", NULL, flat, NULL, 5},
                                {"NaN, \xC2\xB1inf and <0", NULL, odd, NULL, 6}};
    mp_report_line_chart(r, &(mp_line_chart){"Degenerate <series> & \"labels\"", "x", "y", s, 4, true}, NULL);
    mp_report_line_chart(r, &(mp_line_chart){"All equal values", "layer", "cosine", &s[2], 1, false}, NULL);
    const double nan_only[] = {NAN, NAN};
    const mp_plot_series none = {"nothing", NULL, nan_only, NULL, 2};
    mp_report_line_chart(r, &(mp_line_chart){"No drawable data", "x", "y", &none, 1, false}, NULL);
    mp_report_heat_map(r, &(mp_heat_map){"Empty heat map", NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, false}, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: report_demo OUT.html\n");
        return MP_EXIT_INPUT;
    }
    mp_report r;
    mp_error err = {0};
    if (mp_report_begin(&r, argv[1], "Demo report: tiny <pack> & \"reference\"",
                        "demo.mpk vs tiny-qwen3moe (bf16) \xC2\xB7 moepack report_demo \xC2\xB7 fixed data", &err) != MP_OK) {
        fprintf(stderr, "report_demo: %s\n", err.msg);
        return err.code;
    }
    summary_blocks(&r);
    layer_plots(&r);
    expert_plots(&r);
    pack_plot(&r);
    edge_cases(&r);
    if (mp_report_end(&r, &err) != MP_OK) {
        fprintf(stderr, "report_demo: %s\n", err.msg);
        return err.code;
    }
    return 0;
}
