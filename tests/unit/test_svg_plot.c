/* Tests for report/svg_plot (ticks, value -> pixel mapping, escaping, values that
 * cannot be drawn, degenerate data) and for the report writer in report/html_report
 * that embeds the plots (temporary file renamed when complete, table alignment).
 * Expected ticks are worked by hand or checked against the definition in svg_plot.h;
 * rendered SVG is read back with sscanf and a small tag-balance checker. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../report/html_report.h"
#include "../../report/svg_plot.h"

/* ---- helpers ---- */

typedef struct {
    char *text;
    size_t len;
    FILE *f;
} capture;

static FILE *capture_open(capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
    return c->f;
}

/* Closes the stream; the caller frees c->text. */
static char *capture_close(capture *c)
{
    assert_int_equal(fclose(c->f), 0);
    return c->text;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Every tag closed in order, one root <svg> element, nothing after it: the shape an XML
 * parser would accept (tests/cli/test_report.sh runs a real one on the demo report). */
static void assert_balanced_svg(const char *svg)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *p = strchr(svg, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        assert_non_null(end);
        bool closing = p[1] == '/', empty = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strcspn(name, " />");
        assert_true(n > 0 && n < 32);
        if (closing) {
            assert_true(depth > 0);
            depth--;
            assert_int_equal(strncmp(stack[depth], name, n), 0);
            assert_int_equal(strlen(stack[depth]), n);
        } else if (!empty) {
            if (depth == 0)
                roots++;
            assert_true(depth < 64);
            memcpy(stack[depth], name, n);
            stack[depth++][n] = '\0';
        }
        p = end;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
    assert_int_equal(strncmp(svg, "<svg ", 5), 0);
}

/* No attribute value holds a printf rendering of NaN or infinity. */
static void assert_no_bad_numbers(const char *svg)
{
    for (const char *p = strstr(svg, "=\""); p; p = strstr(p + 1, "=\"")) {
        const char *end = strchr(p + 2, '"');
        assert_non_null(end);
        for (const char *q = p + 2; q + 3 <= end; q++) {
            if (strncmp(q, "nan", 3) == 0 || strncmp(q, "inf", 3) == 0)
                fail_msg("non-finite number in attribute: %.60s", p);
        }
    }
}

/* Every '&' starts one of the entities mp_xml_escape writes. */
static void assert_entities_only(const char *s)
{
    static const char *const ok[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (const char *p = strchr(s, '&'); p; p = strchr(p + 1, '&')) {
        bool known = false;
        for (int k = 0; k < 5; k++)
            known = known || strncmp(p, ok[k], strlen(ok[k])) == 0;
        if (!known)
            fail_msg("bare '&' at: %.40s", p);
    }
}

static char *render_line(const mp_line_chart *c)
{
    capture cap;
    mp_svg_line_chart(capture_open(&cap), c);
    char *svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_no_bad_numbers(svg);
    assert_entities_only(svg);
    return svg;
}

typedef struct {
    double x1, y1, x2, y2;
} line_coords;

static line_coords axis_line(const char *svg, const char *cls)
{
    char key[64];
    snprintf(key, sizeof key, "<line class=\"%s\" ", cls);
    const char *p = strstr(svg, key);
    assert_non_null(p);
    line_coords l;
    assert_int_equal(sscanf(p + strlen(key), "x1=\"%lf\" y1=\"%lf\" x2=\"%lf\" y2=\"%lf\"", &l.x1, &l.y1, &l.x2, &l.y2), 4);
    return l;
}

/* Centres of the k-th circle mark (series 0 draws circles). */
static void circle_at(const char *svg, int k, double *cx, double *cy)
{
    const char *p = svg;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "<circle class=\"mark\" ");
        assert_non_null(p);
        p++;
    }
    assert_int_equal(sscanf(p - 1, "<circle class=\"mark\" cx=\"%lf\" cy=\"%lf\"", cx, cy), 2);
}

/* ---- ticks ---- */

static void assert_ticks(const mp_plot_ticks *t, const double *want, int n)
{
    assert_int_equal(t->n, n);
    for (int i = 0; i < n; i++)
        assert_true(fabs(t->v[i] - want[i]) <= 1e-12 * fmax(1, fabs(want[i])));
}

static void test_nice_ticks_hand_worked(void **state)
{
    (void)state;
    mp_plot_ticks t;
    mp_plot_nice_ticks(0, 97, 6, 0, &t); /* step 10 needs 11 ticks, 20 needs 6 */
    assert_ticks(&t, (double[]){0, 20, 40, 60, 80, 100}, 6);
    assert_true(t.step == 20);
    mp_plot_nice_ticks(0.013, 0.087, 5, 0, &t); /* 0.01: 9 ticks, 0.02: 6, 0.05: 3 */
    assert_ticks(&t, (double[]){0, 0.05, 0.1}, 3);
    mp_plot_nice_ticks(-3.7, 12.2, 10, 0, &t); /* 1: 18 ticks, 2: 10 */
    assert_ticks(&t, (double[]){-4, -2, 0, 2, 4, 6, 8, 10, 12, 14}, 10);
    mp_plot_nice_ticks(0.1, 0.3, 5, 0, &t); /* 0.05: 5 ticks; no 0.30000000000000004 drift past 0.3 */
    assert_ticks(&t, (double[]){0.1, 0.15, 0.2, 0.25, 0.3}, 5);
    mp_plot_nice_ticks(0, 3, 10, 1, &t); /* integer axis: 1, not 0.5 */
    assert_ticks(&t, (double[]){0, 1, 2, 3}, 4);
    mp_plot_nice_ticks(-1e-7, 2e-7, 4, 0, &t);
    assert_ticks(&t, (double[]){-1e-7, 0, 1e-7, 2e-7}, 4);
}

static bool is_125_step(double step)
{
    double m = step / pow(10, floor(log10(step) + 1e-9));
    return fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9;
}

static int ticks_needed(double lo, double hi, double step)
{
    return (int)(ceil(hi / step - 1e-9) - floor(lo / step + 1e-9)) + 1;
}

/* The definition, checked on many ranges: covering, at most max ticks, a 1-2-5 step,
 * evenly spaced, and the next smaller 1-2-5 step would need too many. */
static void test_nice_ticks_definition(void **state)
{
    (void)state;
    uint64_t s = 88172645463325252u;
    for (int trial = 0; trial < 20000; trial++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double a = ((double)(s % 2000001) - 1000000) * pow(10, (double)(s >> 40) / (1 << 24) * 16 - 8) / 1e6;
        double b = a + fabs(a) * 1e-3 + pow(10, (double)((s >> 20) % 1000) / 1000 * 12 - 6);
        int max = 3 + (int)(s % 10);
        mp_plot_ticks t;
        mp_plot_nice_ticks(a, b, max, 0, &t);
        assert_true(t.n >= 2 && t.n <= max);
        assert_true(t.v[0] <= a + 1e-9 * t.step && t.v[t.n - 1] >= b - 1e-9 * t.step);
        assert_true(is_125_step(t.step));
        for (int i = 1; i < t.n; i++)
            assert_true(fabs(t.v[i] - t.v[i - 1] - t.step) <= 1e-6 * t.step);
        double m = t.step / pow(10, floor(log10(t.step) + 1e-9));
        double smaller = t.step * (fabs(m - 1) < 1e-9 ? 0.5 : fabs(m - 2) < 1e-9 ? 0.5 : 0.4);
        assert_true(ticks_needed(a, b, smaller) > max);
    }
}

static void test_log_ticks(void **state)
{
    (void)state;
    mp_plot_axis a;
    mp_plot_axis_fit(&a, 0.0013, 0.2, true, 8, false); /* decades */
    assert_ticks(&a.ticks, (double[]){0.001, 0.01, 0.1, 1}, 4);
    assert_true(a.lo == 0.001 && a.hi == 1 && a.ticks.step == 0);
    mp_plot_axis_fit(&a, 1e-12, 1e3, true, 6, false); /* 16 decades in 6 ticks: every third */
    assert_ticks(&a.ticks, (double[]){1e-12, 1e-9, 1e-6, 1e-3, 1, 1e3}, 6);
    mp_plot_axis_fit(&a, 0.0021, 0.0078, true, 8, false); /* under a decade: 1-2-5 */
    assert_ticks(&a.ticks, (double[]){0.002, 0.005, 0.01}, 3);
    mp_plot_axis_fit(&a, 0.0021, 0.0029, true, 6, false); /* narrow: linear ticks on the log scale */
    assert_true(a.ticks.step > 0 && a.ticks.n >= 3 && a.lo > 0 && a.lo <= 0.0021 && a.hi >= 0.0029);
}

static void test_axis_degenerate(void **state)
{
    (void)state;
    mp_plot_axis a;
    mp_plot_axis_fit(&a, 5, 5, false, 8, false);
    assert_true(a.lo < 5 && a.hi > 5 && a.ticks.n >= 3);
    mp_plot_axis_fit(&a, 0, 0, false, 8, false);
    assert_true(a.lo < 0 && a.hi > 0);
    mp_plot_axis_fit(&a, 1 + 1e-15, 1 + 2e-15, false, 8, false); /* equal within rounding */
    assert_true(a.hi - a.lo > 0.01);
    mp_plot_axis_fit(&a, 0.01, 0.01, true, 8, false);
    assert_true(a.lo < 0.01 && a.hi > 0.01 && a.lo > 0);
    mp_plot_axis_fit(&a, 1, 0, false, 8, false); /* no data */
    assert_true(a.lo == 0 && a.hi == 1);
    mp_plot_axis_fit(&a, 3, 3, false, 8, true); /* one layer */
    assert_true(a.lo <= 2 && a.hi >= 4 && a.ticks.step == 1);
}

static void test_format_tick(void **state)
{
    (void)state;
    char buf[32];
    struct {
        double v, step;
        const char *want;
    } cases[] = {{0.1 + 0.2, 0.1, "0.3"}, {100, 20, "100"},      {0, 0.1, "0"},       {-0.05, 0.05, "-0.05"},
                 {1.5e6, 5e5, "1.5e6"},   {2.5e-5, 5e-6, "2.5e-5"}, {0.002, 0, "0.002"}, {1e-5, 0, "1e-5"},
                 {1e6, 0, "1e6"},         {0.995, 0.001, "0.995"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mp_plot_format_tick(cases[i].v, cases[i].step, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
}

/* ---- value -> pixel ---- */

static void test_axis_map(void **state)
{
    (void)state;
    mp_plot_axis x = {.lo = 0, .hi = 10, .px_lo = 50, .px_hi = 450};
    assert_true(fabs(mp_plot_axis_map(&x, 2.5) - 150) < 1e-9);
    assert_true(fabs(mp_plot_axis_map(&x, 10) - 450) < 1e-9);
    mp_plot_axis y = {.lo = 0, .hi = 1, .px_lo = 300, .px_hi = 20}; /* upwards */
    assert_true(fabs(mp_plot_axis_map(&y, 0.25) - 230) < 1e-9);
    mp_plot_axis l = {.lo = 1e-3, .hi = 10, .log = true, .px_lo = 0, .px_hi = 400};
    assert_true(fabs(mp_plot_axis_map(&l, 0.1) - 200) < 1e-9);
    assert_true(fabs(mp_plot_axis_map(&l, 1e-3) - 0) < 1e-9);
}

/* Points at the corners of the data land on the ends of the drawn axes, the middle
 * point halfway: the mapping as rendered, read back from the SVG. */
static void test_rendered_positions(void **state)
{
    (void)state;
    const double x[] = {0, 10, 5}, y[] = {0, 100, 50};
    mp_plot_series s = {NULL, x, y, NULL, 3};
    char *svg = render_line(&(mp_line_chart){"positions", "x", "y", &s, 1, false});
    line_coords ax = axis_line(svg, "axis x"), ay = axis_line(svg, "axis y");
    double cx, cy;
    circle_at(svg, 0, &cx, &cy);
    assert_true(fabs(cx - ax.x1) < 0.051 && fabs(cy - ay.y1) < 0.051);
    circle_at(svg, 1, &cx, &cy);
    assert_true(fabs(cx - ax.x2) < 0.051 && fabs(cy - ay.y2) < 0.051);
    circle_at(svg, 2, &cx, &cy);
    assert_true(fabs(cx - (ax.x1 + ax.x2) / 2) < 0.051 && fabs(cy - (ay.y1 + ay.y2) / 2) < 0.051);
    assert_true(ay.y1 > ay.y2); /* y grows upwards */
    assert_non_null(strstr(svg, "<title>x = 5, y = 50</title>"));
    free(svg);

    /* Log scale: 0.01 sits halfway between 0.001 and 0.1 (the decades the axis ends on). */
    const double ly[] = {0.0012, 0.01, 0.09};
    mp_plot_series ls = {NULL, NULL, ly, NULL, 3};
    svg = render_line(&(mp_line_chart){"log", NULL, NULL, &ls, 1, true});
    ay = axis_line(svg, "axis y");
    circle_at(svg, 1, &cx, &cy);
    assert_true(fabs(cy - (ay.y1 + ay.y2) / 2) < 0.051);
    free(svg);
}

/* ---- escaping ---- */

static char *escaped(const char *s)
{
    capture cap;
    mp_xml_escape(capture_open(&cap), s);
    return capture_close(&cap);
}

static void test_escape(void **state)
{
    (void)state;
    struct {
        const char *in, *want;
    } cases[] = {
        {"a<b & \"c\" 'd'>", "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"},
        {"caf\xC3\xA9 \xE2\x89\xA4 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x89\xA4 \xF0\x9F\x98\x80"}, /* valid UTF-8 */
        {"x\x01y\x7F", "x\xEF\xBF\xBDy\xEF\xBF\xBD"},                                               /* controls */
        {"\xFF", "\xEF\xBF\xBD"},                                                                   /* not UTF-8 */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                                                   /* overlong '/' */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                                   /* surrogate */
        {"ab\xE2\x82", "ab\xEF\xBF\xBD\xEF\xBF\xBD"},                                               /* cut short */
        {"tab\tnewline\n", "tab\tnewline\n"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = escaped(cases[i].in);
        assert_string_equal(out, cases[i].want);
        free(out);
    }
    char *out = escaped(NULL);
    assert_string_equal(out, "");
    free(out);
}

/* Every string a caller passes reaches the SVG escaped: titles, axis labels, legend
 * names, point labels, row, column and category names. */
static void test_labels_escaped_in_plots(void **state)
{
    (void)state;
    const char *evil = "<b>&\"'";
    const double x[] = {1, 2}, y[] = {3, 4};
    const char *const labels[] = {evil, "ok"};
    mp_plot_series s = {evil, x, y, labels, 2};
    capture cap;
    FILE *f = capture_open(&cap);
    mp_svg_scatter_chart(f, &(mp_scatter_chart){evil, evil, evil, &s, 1, true, false});
    char *svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_entities_only(svg);
    assert_null(strstr(svg, "<b>"));
    assert_true(count(svg, "&lt;b&gt;&amp;&quot;&#39;") >= 6); /* aria-label, title, 2 axis labels, legend, point label */
    free(svg);

    const char *const names[] = {evil, "x"};
    const double v[] = {1, 2, 3, 4};
    f = capture_open(&cap);
    mp_svg_heat_map(f, &(mp_heat_map){evil, evil, evil, evil, v, 2, 2, names, names, false});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_entities_only(svg);
    assert_null(strstr(svg, "<b>"));
    free(svg);

    mp_bar_group g = {evil, v};
    f = capture_open(&cap);
    mp_svg_bar_chart(f, &(mp_bar_chart){evil, evil, evil, names, 2, &g, 1});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_entities_only(svg);
    assert_null(strstr(svg, "<b>"));
    free(svg);
}

/* ---- values that cannot be drawn, degenerate data ---- */

static void test_nan_and_inf_skipped(void **state)
{
    (void)state;
    const double y[] = {1, NAN, 3, INFINITY, -INFINITY, 2, 1e305};
    mp_plot_series s = {"s", NULL, y, NULL, 7};
    char *svg = render_line(&(mp_line_chart){"gaps", "layer", "error", &s, 1, false});
    assert_int_equal(count(svg, "<title>"), 3);
    assert_non_null(strstr(svg, "4 points not shown (NaN or infinite)"));
    const char *path = strstr(svg, "<path class=\"line\"");
    assert_non_null(path);
    const char *d = strstr(path, " d=\"") + 4;
    int moves = 0, lines = 0;
    for (size_t i = 0; i < strcspn(d, "\""); i++)
        moves += d[i] == 'M', lines += d[i] == 'L';
    assert_int_equal(moves, 3); /* broken at each gap: three lone points */
    assert_int_equal(lines, 0);
    free(svg);

    const double ly[] = {1, 0, -2, 10};
    mp_plot_series l = {"s", NULL, ly, NULL, 4};
    svg = render_line(&(mp_line_chart){"log", NULL, NULL, &l, 1, true});
    assert_int_equal(count(svg, "<title>"), 2);
    assert_non_null(strstr(svg, "2 points \xE2\x89\xA4 0 not shown on the log scale"));
    free(svg);

    const double v[] = {1, NAN, 2, 3, -INFINITY, 4};
    capture cap;
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"h", NULL, NULL, NULL, v, 2, 3, NULL, NULL, false});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_no_bad_numbers(svg);
    assert_int_equal(count(svg, "<title>"), 4);
    assert_non_null(strstr(svg, "2 cells blank (NaN or infinite)"));
    free(svg);

    mp_bar_group g = {"g", v};
    mp_svg_bar_chart(capture_open(&cap), &(mp_bar_chart){"b", NULL, NULL, NULL, 6, &g, 1});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_no_bad_numbers(svg);
    assert_int_equal(count(svg, "<title>"), 4);
    assert_non_null(strstr(svg, "2 bars not shown"));
    free(svg);
}

static void test_degenerate_data(void **state)
{
    (void)state;
    const double flat[] = {0.5, 0.5, 0.5};
    mp_plot_series s = {NULL, NULL, flat, NULL, 3};
    char *svg = render_line(&(mp_line_chart){"flat", NULL, NULL, &s, 1, false});
    line_coords ay = axis_line(svg, "axis y");
    double cx, cy;
    circle_at(svg, 0, &cx, &cy);
    assert_true(ay.y1 - ay.y2 > 100 && fabs(cy - (ay.y1 + ay.y2) / 2) < 0.051); /* centred on a real axis */
    free(svg);

    const double one_x[] = {3}, one_y[] = {7};
    mp_plot_series one = {"one", one_x, one_y, NULL, 1};
    svg = render_line(&(mp_line_chart){"one point", NULL, NULL, &one, 1, true});
    line_coords ax = axis_line(svg, "axis x");
    assert_true(ax.x2 - ax.x1 > 100);
    assert_int_equal(count(svg, "<title>"), 1);
    free(svg);

    mp_plot_series empty[2] = {{"empty", NULL, NULL, NULL, 0}, {"also empty", NULL, flat, NULL, 0}};
    svg = render_line(&(mp_line_chart){"empty", NULL, NULL, empty, 2, false});
    assert_non_null(strstr(svg, ">no data<"));
    assert_int_equal(count(svg, "<title>"), 0);
    free(svg);
    svg = render_line(&(mp_line_chart){NULL, NULL, NULL, NULL, 0, true});
    assert_non_null(strstr(svg, ">no data<"));
    free(svg);

    capture cap;
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"h", NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, false});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_non_null(strstr(svg, ">no data<"));
    free(svg);
    mp_svg_bar_chart(capture_open(&cap), &(mp_bar_chart){"b", NULL, NULL, NULL, 0, NULL, 0});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_non_null(strstr(svg, ">no data<"));
    free(svg);

    const double same[] = {2, 2, 2, 2}; /* heat map of equal values: one colour, valid scale */
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"h", NULL, NULL, NULL, same, 2, 2, NULL, NULL, true});
    svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_no_bad_numbers(svg);
    assert_int_equal(count(svg, "<title>"), 4);
    free(svg);
}

/* Labels go beside their markers without covering each other: three points at one
 * place get three places around it, points in the corners of the plot keep theirs,
 * and a crowd gets as many as fit while the rest are counted, not drawn over. */
static void test_scatter_labels_do_not_overlap(void **state)
{
    (void)state;
    const double x[] = {2, 2, 2, 1, 3}, y[] = {2, 2, 2, 1, 3};
    const char *const labels[] = {"alpha", "beta", "gamma", "corner", "other corner"};
    mp_plot_series s = {"g", x, y, labels, 5};
    capture cap;
    mp_svg_scatter_chart(capture_open(&cap), &(mp_scatter_chart){"labels", NULL, NULL, &s, 1, false, false});
    char *svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_int_equal(count(svg, "class=\"point-label\""), 5);
    assert_null(strstr(svg, "hidden"));
    free(svg);

    double many_x[12], many_y[12];
    const char *many_labels[12];
    for (int i = 0; i < 12; i++) /* ten in the middle, one in each of two corners */
        many_x[i] = many_y[i] = i < 10 ? 1.5 : i - 9, many_labels[i] = "same place";
    mp_plot_series m = {"g", many_x, many_y, many_labels, 12};
    mp_svg_scatter_chart(capture_open(&cap), &(mp_scatter_chart){"crowd", NULL, NULL, &m, 1, false, false});
    svg = capture_close(&cap);
    int drawn = count(svg, "class=\"point-label\"");
    char note[64];
    snprintf(note, sizeof note, "%d labels hidden", 12 - drawn);
    assert_true(drawn >= 4 && drawn <= 9);
    assert_non_null(strstr(svg, note));
    free(svg);
}

/* Big heat maps stay compact: no per-cell text; small ones label their cells. */
static void test_heat_map_cell_text(void **state)
{
    (void)state;
    enum { R = 61, C = 256 };
    static double big[R * C];
    for (int k = 0; k < R * C; k++)
        big[k] = k % 97;
    capture cap;
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"big", "expert", "layer", "v", big, R, C, NULL, NULL, false});
    char *svg = capture_close(&cap);
    assert_balanced_svg(svg);
    assert_int_equal(count(svg, "<title>"), R * C);
    assert_int_equal(count(svg, "pointer-events=\"none\""), 0);
    int width = 0;
    assert_int_equal(sscanf(svg, "<svg class=\"plot\" width=\"%d\"", &width), 1);
    assert_true(width <= 900);
    free(svg);

    /* Wide but short cells (61 rows, 4 columns) have room across, not for the text height. */
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"tall", NULL, NULL, NULL, big, R, 4, NULL, NULL, false});
    svg = capture_close(&cap);
    assert_int_equal(count(svg, "<title>"), R * 4);
    assert_int_equal(count(svg, "pointer-events=\"none\""), 0);
    free(svg);

    const double small[] = {0.1, 0.2, 0.3, 0.4};
    mp_svg_heat_map(capture_open(&cap), &(mp_heat_map){"small", NULL, NULL, NULL, small, 2, 2, NULL, NULL, false});
    svg = capture_close(&cap);
    assert_int_equal(count(svg, "pointer-events=\"none\""), 4);
    assert_non_null(strstr(svg, ">0.3</text>"));
    free(svg);
}

/* ---- the report file ---- */

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/test_svg_plot-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_report_written_whole_or_not_at_all(void **state)
{
    (void)state;
    char *dir = temp_dir(), path[256], temp[300];
    snprintf(path, sizeof path, "%s/r.html", dir);
    snprintf(temp, sizeof temp, "%s.tmp-%ld", path, (long)getpid());
    mp_report r;
    mp_error err = {0};
    assert_int_equal(mp_report_begin(&r, path, "T <&>", "sub", &err), MP_OK);
    mp_report_paragraph(&r, "body");
    assert_false(exists(path)); /* under construction: only the temporary exists */
    assert_true(exists(temp));
    assert_int_equal(mp_report_end(&r, &err), MP_OK);
    assert_true(exists(path));
    assert_false(exists(temp));
    const char *html = read_all(path);
    assert_int_equal(strncmp(html, "<!DOCTYPE html>\n", 16), 0);
    assert_non_null(strstr(html, "<h1>T &lt;&amp;&gt;</h1>"));
    assert_non_null(strstr(html, "</html>\n"));
    mp_report_paragraph(&r, "after the end: ignored"); /* released report: no effect, no crash */
    unlink(path);

    assert_int_equal(mp_report_begin(&r, path, "T", NULL, &err), MP_OK);
    mp_report_abort(&r);
    mp_report_abort(&r); /* twice is harmless */
    assert_false(exists(path));
    assert_false(exists(temp));

    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/r.html", dir);
    assert_int_equal(mp_report_begin(&r, missing, "T", NULL, &err), MP_EXIT_IO);
    assert_non_null(strstr(err.msg, missing));
    assert_null(r.out);
    rmdir(dir);
    free(dir);
}

static void test_report_table_alignment(void **state)
{
    (void)state;
    char *dir = temp_dir(), path[256];
    snprintf(path, sizeof path, "%s/t.html", dir);
    mp_report r;
    mp_error err = {0};
    assert_int_equal(mp_report_begin(&r, path, "T", NULL, &err), MP_OK);
    const char *const header[] = {"name", "value", "share", "mixed"};
    const char *const cells[] = {"a", "1.5", "12%", "3", "b", "-2e-3", "-", "x7", "c", NULL, "0.5%", "4"};
    mp_report_table_write(&r, &(mp_report_table){"cap", header, 4, cells, 3});
    mp_report_verdict(&r, false, "p99 > 0.05");
    assert_int_equal(mp_report_end(&r, &err), MP_OK);
    const char *html = read_all(path);
    assert_non_null(strstr(html, "<tr><th>name</th><th class=\"num\">value</th><th class=\"num\">share</th><th>mixed</th></tr>"));
    assert_non_null(strstr(html, "<tr><td>a</td><td class=\"num\">1.5</td><td class=\"num\">12%</td><td>3</td></tr>"));
    assert_non_null(strstr(html, "<span class=\"badge fail\">FAIL</span>p99 &gt; 0.05"));
    unlink(path);
    rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nice_ticks_hand_worked),
        cmocka_unit_test(test_nice_ticks_definition),
        cmocka_unit_test(test_log_ticks),
        cmocka_unit_test(test_axis_degenerate),
        cmocka_unit_test(test_format_tick),
        cmocka_unit_test(test_axis_map),
        cmocka_unit_test(test_rendered_positions),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_labels_escaped_in_plots),
        cmocka_unit_test(test_nan_and_inf_skipped),
        cmocka_unit_test(test_degenerate_data),
        cmocka_unit_test(test_scatter_labels_do_not_overlap),
        cmocka_unit_test(test_heat_map_cell_text),
        cmocka_unit_test(test_report_written_whole_or_not_at_all),
        cmocka_unit_test(test_report_table_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
