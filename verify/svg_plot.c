#include "svg_plot.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Sizes in SVG pixels. Reports scale plots down to narrow windows, never up. */
enum {
    WIDTH = 880,   /* every plot but heat maps with few columns */
    FONT = 12,     /* ticks, legend, axis labels */
    SMALL = 11,    /* notes, point labels, panel names */
    TITLE_FONT = 15,
    PLOT_H = 260,  /* the plot area of line and scatter charts */
    LEGEND_ROW = 18,
    MAX_LEGEND = 32, /* entries drawn; the rest are summarised as "and N more" */
    MAX_LABELS = 256 /* scatter point labels placed (the rest stay in tooltips) */
};

/* Mid-luminance colours: at least 3:1 contrast on white and on a near-black page. */
static const char *const PALETTE[] = {"#3b78c4", "#d9731a", "#2e9455", "#d0454c",
                                      "#8c62c6", "#9a7a2a", "#1f9aa3", "#c44f9e"};
enum { N_PALETTE = 8 };

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Values a plot can place: finite and far from overflow when mapped. */
static bool drawable(double v)
{
    return isfinite(v) && fabs(v) < 1e300;
}

/* ---- text ---- */

/* Length of the UTF-8 sequence at p if it encodes a character XML allows, else 0. */
static int utf8_length(const unsigned char *p)
{
    int n;
    uint32_t min;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0)
        n = 2, min = 0x80;
    else if ((p[0] & 0xF0) == 0xE0)
        n = 3, min = 0x800;
    else if ((p[0] & 0xF8) == 0xF0)
        n = 4, min = 0x10000;
    else
        return 0;
    uint32_t cp = p[0] & (0x3Fu >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    bool ok = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    return ok ? n : 0;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

static void escape_ascii(FILE *out, unsigned char c)
{
    switch (c) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&#39;", out); break;
    case '\t': case '\n': case '\r': fputc(c, out); break;
    default:
        if (c < 0x20 || c == 0x7F) /* not allowed (or discouraged) in XML text */
            fputs(REPLACEMENT, out);
        else
            fputc(c, out);
    }
}

/* Escapes the first len bytes of s; len must fall where utf8_length walks to. */
static void escape_bytes(FILE *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        int n = utf8_length(p);
        if (n == 0)
            fputs(REPLACEMENT, out);
        else if (n == 1)
            escape_ascii(out, *p);
        else
            fwrite(p, 1, (size_t)n, out);
        p += n ? n : 1;
    }
}

void mp_xml_escape(FILE *out, const char *s)
{
    if (s)
        escape_bytes(out, s, strlen(s));
}

/* Estimated width in pixels of s at font size px. There is no font metrics here:
 * 0.6 em per character is a little generous for sans-serif text, so layouts built
 * on it leave room rather than collide. */
static double text_width(const char *s, double px)
{
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            chars++;
    return chars * 0.6 * px;
}

/* Writes s escaped, cut with an ellipsis when it would be wider than max_px. */
static void write_fitted(FILE *out, const char *s, double max_px, double px)
{
    size_t len = strlen(s);
    if (text_width(s, px) <= max_px) {
        escape_bytes(out, s, len);
        return;
    }
    int keep = (int)(max_px / (0.6 * px)) - 1; /* characters, leaving room for the ellipsis */
    size_t bytes = 0;
    for (int k = 0; k < keep && bytes < len; k++) {
        int n = utf8_length((const unsigned char *)s + bytes);
        bytes += n ? (size_t)n : 1;
    }
    escape_bytes(out, s, bytes);
    fputs("\xE2\x80\xA6", out);
}

/* ---- numbers ---- */

/* "1.5e-05" -> "1.5e-5", "1e+06" -> "1e6": shorter labels, same value. */
static void tidy_exponent(char *s)
{
    char *e = strchr(s, 'e');
    if (!e)
        return;
    char *src = e + 1, *dst = e + 1;
    if (*src == '+')
        src++;
    else if (*src == '-')
        *dst++ = *src++;
    while (*src == '0' && src[1] != '\0')
        src++;
    memmove(dst, src, strlen(src) + 1);
}

void mp_plot_format_tick(double v, double step, char *buf, size_t size)
{
    if (step <= 0) {
        snprintf(buf, size, "%.3g", v);
    } else if (v == 0) {
        snprintf(buf, size, "0");
    } else if (fabs(v) >= 1e6 || step < 1e-4) {
        double digits = floor(log10(fabs(v))) - floor(log10(step) + 1e-9);
        snprintf(buf, size, "%.*e", (int)clamp(digits, 0, 6), v);
    } else {
        double decimals = step >= 1 ? 0 : -floor(log10(step) + 1e-9);
        snprintf(buf, size, "%.*f", (int)clamp(decimals, 0, 12), v);
    }
    tidy_exponent(buf);
}

/* Exact values for tooltips. */
static void write_value(FILE *out, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    tidy_exponent(buf);
    fputs(buf, out);
}

/* ---- ticks and axes ---- */

void mp_plot_nice_ticks(double lo, double hi, int max_ticks, double min_step, mp_plot_ticks *t)
{
    if (!(hi > lo) || !isfinite(hi - lo)) { /* callers guarantee lo < hi; stay sane anyway */
        *t = (mp_plot_ticks){.n = 1, .step = 0, .v = {lo}};
        return;
    }
    max_ticks = (int)clamp(max_ticks, 3, MP_PLOT_MAX_TICKS);
    double base = pow(10.0, floor(log10((hi - lo) / (max_ticks - 1))));
    /* With at least 3 ticks allowed, 20 x base always fits: the loop ends by then. */
    static const double multiples[] = {1, 2, 5, 10, 20, 50};
    double step = 0, first = 0;
    int n = 0;
    for (size_t k = 0; k < sizeof multiples / sizeof *multiples; k++) {
        step = fmax(multiples[k] * base, min_step);
        first = floor(lo / step + 1e-9);
        n = (int)(ceil(hi / step - 1e-9) - first) + 1;
        if (n <= max_ticks)
            break;
    }
    t->n = n < MP_PLOT_MAX_TICKS ? n : MP_PLOT_MAX_TICKS;
    t->step = step;
    for (int i = 0; i < t->n; i++) {
        double v = (first + i) * step; /* multiplied, not accumulated: no drift */
        t->v[i] = fabs(v) < step * 1e-9 ? 0 : v;
    }
}

static void fit_linear(mp_plot_axis *a, double lo, double hi, int max_ticks, double min_step)
{
    if (hi - lo <= 1e-9 * fmax(fabs(lo), fabs(hi))) { /* all equal: an axis around the value */
        double mid = lo / 2 + hi / 2;
        double half = mid == 0 ? 1 : fabs(mid) / 10;
        lo = mid - half;
        hi = mid + half;
    }
    mp_plot_nice_ticks(lo, hi, max_ticks, min_step, &a->ticks);
    a->lo = fmin(lo, a->ticks.v[0]);
    a->hi = fmax(hi, a->ticks.v[a->ticks.n - 1]);
}

/* Powers of ten (every s-th when there are many) when the data touch three of them. */
static bool fit_decades(mp_plot_axis *a, double lo, double hi, int max_ticks)
{
    double k0 = floor(log10(lo) + 1e-9), k1 = ceil(log10(hi) - 1e-9);
    if (k1 - k0 < 2)
        return false;
    double stride = 1, first, last;
    for (;; stride++) {
        first = floor(k0 / stride);
        last = ceil(k1 / stride);
        if (last - first + 1 <= max_ticks)
            break;
    }
    a->ticks.n = (int)(last - first) + 1;
    a->ticks.step = 0;
    for (int i = 0; i < a->ticks.n; i++)
        a->ticks.v[i] = pow(10.0, (first + i) * stride);
    a->lo = fmin(lo, a->ticks.v[0]);
    a->hi = fmax(hi, a->ticks.v[a->ticks.n - 1]);
    return true;
}

/* The j-th number of the sequence ..., 0.5, 1, 2, 5, 10, 20, ... (j = 0 is 1). */
static double value_125(int j)
{
    static const double m[] = {1, 2, 5};
    int decade = (int)floor(j / 3.0);
    return m[j - 3 * decade] * pow(10.0, decade);
}

/* Ticks at 1, 2 and 5 times powers of ten, when three to max_ticks of them cover the data. */
static bool fit_125(mp_plot_axis *a, double lo, double hi, int max_ticks)
{
    int j0 = 3 * (int)floor(log10(lo) + 1e-9);
    while (value_125(j0 + 1) <= lo * (1 + 1e-9))
        j0++;
    int j1 = j0;
    while (value_125(j1) < hi * (1 - 1e-9))
        j1++;
    int n = j1 - j0 + 1;
    if (n < 3 || n > max_ticks)
        return false;
    a->ticks.n = n;
    a->ticks.step = 0;
    for (int i = 0; i < n; i++)
        a->ticks.v[i] = value_125(j0 + i);
    a->lo = fmin(lo, a->ticks.v[0]);
    a->hi = fmax(hi, a->ticks.v[n - 1]);
    return true;
}

static void fit_log(mp_plot_axis *a, double lo, double hi, int max_ticks)
{
    if (hi <= lo * (1 + 1e-9)) { /* all equal: a factor of two either side */
        lo /= 2;
        hi *= 2;
    }
    if (fit_decades(a, lo, hi, max_ticks) || fit_125(a, lo, hi, max_ticks))
        return;
    /* Data within a factor of about 2.5: linear ticks read best; the scale stays log. */
    mp_plot_nice_ticks(lo, hi, max_ticks, 0, &a->ticks);
    if (a->ticks.v[0] <= 0) { /* cannot happen for such narrow data; keep the domain valid */
        a->ticks.n = 2;
        a->ticks.step = 0;
        a->ticks.v[0] = lo;
        a->ticks.v[1] = hi;
    }
    a->lo = fmin(lo, a->ticks.v[0]);
    a->hi = fmax(hi, a->ticks.v[a->ticks.n - 1]);
}

void mp_plot_axis_fit(mp_plot_axis *a, double data_lo, double data_hi, bool log, int max_ticks, bool integer)
{
    max_ticks = (int)clamp(max_ticks, 3, MP_PLOT_MAX_TICKS);
    a->log = log;
    if (data_lo > data_hi) { /* no data: an empty axis */
        data_lo = log ? 1 : 0;
        data_hi = log ? 10 : 1;
    }
    if (log)
        fit_log(a, data_lo, data_hi, max_ticks);
    else
        fit_linear(a, data_lo, data_hi, max_ticks, integer ? 1 : 0);
}

double mp_plot_axis_map(const mp_plot_axis *a, double v)
{
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return a->px_lo + f * (a->px_hi - a->px_lo);
}

/* The widest tick label of a, in pixels. */
static double tick_labels_width(const mp_plot_axis *a)
{
    double w = 0;
    char buf[32];
    for (int i = 0; i < a->ticks.n; i++) {
        mp_plot_format_tick(a->ticks.v[i], a->ticks.step, buf, sizeof buf);
        w = fmax(w, text_width(buf, FONT));
    }
    return w;
}

/* Fits a horizontal axis with as many ticks as fit without their labels touching. */
static void fit_x_axis(mp_plot_axis *a, double lo, double hi, bool integer, double px_lo, double px_hi)
{
    double width = px_hi - px_lo;
    for (int max = (int)clamp(width / 60, 3, 12);; max--) {
        mp_plot_axis_fit(a, lo, hi, false, max, integer);
        if (max <= 3 || a->ticks.n * (tick_labels_width(a) + 14) <= width)
            break;
    }
    a->px_lo = px_lo;
    a->px_hi = px_hi;
}

/* The smallest of 1, 2, 5, 10, 20, ... such that every stride-th label has room. */
static int label_stride(double spacing, double needed)
{
    for (int j = 0;; j++) {
        int s = (int)value_125(j);
        if (s * spacing >= needed || s >= 1000000)
            return s;
    }
}

/* ---- SVG pieces ---- */

static void svg_open(FILE *out, int width, int height, const char *title)
{
    fprintf(out, "<svg class=\"plot\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            width, height, width, height);
    mp_xml_escape(out, title ? title : "plot");
    fprintf(out, "\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\" font-size=\"%d\" "
                 "fill=\"currentColor\">\n", FONT);
}

static void svg_close(FILE *out)
{
    fputs("</svg>\n", out);
}

/* Returns the y where the content below the title starts. */
static double draw_title(FILE *out, const char *title, int width)
{
    if (!title)
        return 12;
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"21\" text-anchor=\"middle\" font-size=\"%d\" font-weight=\"600\">",
            width / 2, TITLE_FONT);
    write_fitted(out, title, width - 20, TITLE_FONT);
    fputs("</text>\n", out);
    return 34;
}

static void draw_x_label(FILE *out, const char *label, double cx, double y, double max_w)
{
    if (!label)
        return;
    fprintf(out, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, y);
    write_fitted(out, label, max_w, FONT);
    fputs("</text>\n", out);
}

static void draw_y_label(FILE *out, const char *label, double x, double cy, double max_h)
{
    if (!label)
        return;
    fprintf(out, "<text class=\"label\" transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">", x, cy);
    write_fitted(out, label, max_h, FONT);
    fputs("</text>\n", out);
}

static void draw_note(FILE *out, const char *note, double x, double y)
{
    if (!note[0])
        return;
    fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" fill-opacity=\"0.75\">", x, y, SMALL);
    mp_xml_escape(out, note);
    fputs("</text>\n", out);
}

static void draw_no_data(FILE *out, double cx, double cy)
{
    fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill-opacity=\"0.6\">no data</text>\n",
            cx, cy);
}

/* Horizontal grid lines with labels left of the plot, and the vertical axis line. */
static void draw_y_axis(FILE *out, const mp_plot_axis *y, double left, double right)
{
    char buf[32];
    for (int i = 0; i < y->ticks.n; i++) {
        double py = mp_plot_axis_map(y, y->ticks.v[i]);
        mp_plot_format_tick(y->ticks.v[i], y->ticks.step, buf, sizeof buf);
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" "
                     "stroke-opacity=\"0.13\"/>\n", left, py, right, py);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"end\">%s</text>\n",
                left - 6, py, buf);
    }
    fprintf(out, "<line class=\"axis y\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" "
                 "stroke-opacity=\"0.55\"/>\n", left, y->px_lo, left, y->px_hi);
}

/* Vertical grid lines with labels under the plot, and the horizontal axis line. */
static void draw_x_axis(FILE *out, const mp_plot_axis *x, double top, double bottom)
{
    char buf[32];
    for (int i = 0; i < x->ticks.n; i++) {
        double px = mp_plot_axis_map(x, x->ticks.v[i]);
        mp_plot_format_tick(x->ticks.v[i], x->ticks.step, buf, sizeof buf);
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" "
                     "stroke-opacity=\"0.13\"/>\n", px, top, px, bottom);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px, bottom + 16, buf);
    }
    fprintf(out, "<line class=\"axis x\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" "
                 "stroke-opacity=\"0.55\"/>\n", x->px_lo, bottom, x->px_hi, bottom);
}

/* Opens a marker of series index i (shape and colour cycle with it), centred on
 * (cx, cy); returns the element name the caller closes after adding children. */
static const char *marker_open(FILE *out, int i, double cx, double cy, double r)
{
    const char *colour = PALETTE[i % N_PALETTE];
    switch (i % 4) {
    case 0:
        fprintf(out, "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\">", cx, cy, r, colour);
        return "circle";
    case 1:
        fprintf(out, "<rect class=\"mark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">",
                cx - 0.9 * r, cy - 0.9 * r, 1.8 * r, 1.8 * r, colour);
        return "rect";
    case 2:
        fprintf(out, "<path class=\"mark\" d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\">",
                cx, cy - 1.25 * r, cx + 1.25 * r, cy, cx, cy + 1.25 * r, cx - 1.25 * r, cy, colour);
        return "path";
    default:
        fprintf(out, "<path class=\"mark\" d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\">",
                cx, cy - 1.25 * r, cx + 1.15 * r, cy + 0.85 * r, cx - 1.15 * r, cy + 0.85 * r, colour);
        return "path";
    }
}

/* Series beyond the palette repeat its colours dashed. */
static const char *line_dash(int i)
{
    static const char *const dash[] = {"", " stroke-dasharray=\"7 4\"", " stroke-dasharray=\"2 3\""};
    return dash[(i / N_PALETTE) % 3];
}

/* ---- legend ---- */

typedef enum { SWATCH_LINE, SWATCH_MARKER, SWATCH_BAR } swatch_kind;

typedef struct {
    const char *names[MAX_LEGEND];
    int index[MAX_LEGEND]; /* series or group index: colour and shape */
    int n, more;
    swatch_kind kind;
} legend;

static void legend_add(legend *l, const char *name, int index)
{
    if (!name)
        return;
    if (l->n == MAX_LEGEND) {
        l->more++;
        return;
    }
    l->names[l->n] = name;
    l->index[l->n++] = index;
}

static void draw_swatch(FILE *out, swatch_kind kind, int i, double x, double cy)
{
    const char *colour = PALETTE[i % N_PALETTE];
    if (kind == SWATCH_BAR) {
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x + 5, cy - 6, colour);
        return;
    }
    if (kind == SWATCH_LINE)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                x, cy, x + 22, cy, colour, line_dash(i));
    fprintf(out, "</%s>\n", marker_open(out, i, x + 11, cy, kind == SWATCH_LINE ? 3 : 4.5));
}

/* Lays out the legend in rows from (x0, y0) up to x1; draws it when out is not NULL.
 * Returns the number of rows. */
static int legend_draw(FILE *out, const legend *l, double x0, double x1, double y0)
{
    int rows = l->n > 0 ? 1 : 0;
    double x = x0;
    for (int i = 0; i <= l->n; i++) {
        char more[48] = "";
        if (i == l->n && l->more)
            snprintf(more, sizeof more, "and %d more", l->more);
        const char *name = i < l->n ? l->names[i] : more;
        if (!name[0])
            break;
        double w = 30 + fmin(text_width(name, FONT), 240) + 18;
        if (x > x0 && x + w > x1) {
            rows++;
            x = x0;
        }
        double cy = y0 + (rows - 1) * LEGEND_ROW + LEGEND_ROW / 2.0;
        if (out && i < l->n)
            draw_swatch(out, l->kind, l->index[i], x, cy);
        if (out) {
            fprintf(out, "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">", x + 30, cy);
            write_fitted(out, name, 240, FONT);
            fputs("</text>\n", out);
        }
        x += w;
    }
    return rows;
}

/* ---- notes about what was not drawn ---- */

/* Appends "3 points not shown ..." (noun made plural with an s) to the note line. */
static void note_add(char *note, size_t size, int count, const char *noun, const char *what)
{
    if (count <= 0)
        return;
    size_t used = strlen(note);
    snprintf(note + used, size - used, "%s%d %s%s %s", used ? "; " : "", count, noun, count == 1 ? "" : "s", what);
}

/* ---- line and scatter charts ---- */

typedef struct {
    const char *title, *x_label, *y_label;
    const mp_plot_series *series;
    int n_series;
    bool log_y;
    bool lines;   /* join the points of each series */
    bool scatter; /* larger markers, point labels */
} xy_spec;

typedef struct {
    double x_lo, x_hi, y_lo, y_hi; /* over drawable points; lo > hi when there are none */
    int points, not_finite, not_positive;
    bool integer_x; /* every series is indexed 0, 1, ... */
} xy_data;

typedef struct {
    mp_plot_axis x, y;
    double left, top, right, bottom; /* the plot area */
    int width, height;
    legend legend;
    double legend_top;
    char note[256];
} xy_layout;

static double series_x(const mp_plot_series *s, int i)
{
    return s->x ? s->x[i] : i;
}

/* The pixel position of point i of series s, or false when it cannot be drawn. */
static bool point_px(const xy_spec *c, const xy_layout *L, int s, int i, double *px, double *py)
{
    const mp_plot_series *ser = &c->series[s];
    double x = series_x(ser, i), y = ser->y[i];
    if (!drawable(x) || !drawable(y) || (c->log_y && y <= 0))
        return false;
    *px = mp_plot_axis_map(&L->x, x);
    *py = mp_plot_axis_map(&L->y, y);
    return true;
}

static int series_len(const mp_plot_series *s)
{
    return s->y && s->n > 0 ? s->n : 0;
}

static void xy_scan(const xy_spec *c, xy_data *d)
{
    *d = (xy_data){.x_lo = HUGE_VAL, .x_hi = -HUGE_VAL, .y_lo = HUGE_VAL, .y_hi = -HUGE_VAL, .integer_x = true};
    for (int s = 0; s < c->n_series; s++) {
        const mp_plot_series *ser = &c->series[s];
        if (ser->x && series_len(ser))
            d->integer_x = false;
        for (int i = 0; i < series_len(ser); i++) {
            double x = series_x(ser, i), y = ser->y[i];
            if (!drawable(x) || !drawable(y)) {
                d->not_finite++;
            } else if (c->log_y && y <= 0) {
                d->not_positive++;
            } else {
                d->points++;
                d->x_lo = fmin(d->x_lo, x);
                d->x_hi = fmax(d->x_hi, x);
                d->y_lo = fmin(d->y_lo, y);
                d->y_hi = fmax(d->y_hi, y);
            }
        }
    }
}

typedef struct {
    double x0, y0, x1, y1;
} box;

static bool boxes_overlap(box a, box b)
{
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/* Whether the segment from (x0, y0) to (x1, y1) passes through b, sampled every 2 px:
 * exact enough for label placement, and obviously right. */
static bool segment_crosses(box b, double x0, double y0, double x1, double y1)
{
    int steps = (int)(hypot(x1 - x0, y1 - y0) / 2) + 1;
    for (int k = 0; k <= steps; k++) {
        double x = x0 + (x1 - x0) * k / steps, y = y0 + (y1 - y0) * k / steps;
        if (x > b.x0 && x < b.x1 && y > b.y0 && y < b.y1)
            return true;
    }
    return false;
}

/* Whether a label box would cover a marker, a connecting line or a label already placed. */
static bool label_collides(const xy_spec *c, const xy_layout *L, box b, const box *placed, int n_placed)
{
    for (int k = 0; k < n_placed; k++)
        if (boxes_overlap(b, placed[k]))
            return true;
    for (int s = 0; s < c->n_series; s++) {
        double prev_x = 0, prev_y = 0;
        bool have_prev = false;
        for (int i = 0; i < series_len(&c->series[s]); i++) {
            double px = 0, py = 0;
            bool ok = point_px(c, L, s, i, &px, &py);
            if (ok && boxes_overlap(b, (box){px - 5, py - 5, px + 5, py + 5}))
                return true;
            if (ok && have_prev && c->lines && segment_crosses(b, prev_x, prev_y, px, py))
                return true;
            have_prev = ok;
            prev_x = px;
            prev_y = py;
        }
    }
    return false;
}

/* Puts each point label right of, left of, above, below or diagonally beside its
 * marker: the first of these places inside the plot that covers no marker, line or other
 * label. Draws them when out is not NULL. Returns how many labels found no place (their
 * values stay in the tooltips). */
static int place_labels(FILE *out, const xy_spec *c, const xy_layout *L)
{
    box placed[MAX_LABELS];
    int n_placed = 0, hidden = 0;
    for (int s = 0; s < c->n_series; s++) {
        const mp_plot_series *ser = &c->series[s];
        for (int i = 0; ser->labels && i < series_len(ser); i++) {
            double px, py;
            if (!ser->labels[i] || !point_px(c, L, s, i, &px, &py))
                continue;
            double w = fmin(text_width(ser->labels[i], SMALL), 160), h = 13;
            box cand[8] = {{px + 7, py - h / 2, px + 7 + w, py + h / 2},  {px - 7 - w, py - h / 2, px - 7, py + h / 2},
                           {px - w / 2, py - 8 - h, px + w / 2, py - 8},  {px - w / 2, py + 8, px + w / 2, py + 8 + h},
                           {px + 5, py - 5 - h, px + 5 + w, py - 5},      {px - 5 - w, py - 5 - h, px - 5, py - 5},
                           {px + 5, py + 5, px + 5 + w, py + 5 + h},      {px - 5 - w, py + 5, px - 5, py + 5 + h}};
            int k = 0;
            for (; k < 8; k++)
                if (cand[k].x0 >= L->left + 2 && cand[k].x1 <= L->width - 4 && cand[k].y0 >= L->top - 8 &&
                    cand[k].y1 <= L->bottom - 2 && n_placed < MAX_LABELS &&
                    !label_collides(c, L, cand[k], placed, n_placed))
                    break;
            if (k == 8) {
                hidden++;
                continue;
            }
            placed[n_placed++] = cand[k];
            if (out) {
                fprintf(out, "<text class=\"point-label\" x=\"%.1f\" y=\"%.1f\" font-size=\"%d\">", cand[k].x0,
                        cand[k].y1 - 3, SMALL);
                write_fitted(out, ser->labels[i], 160, SMALL);
                fputs("</text>\n", out);
            }
        }
    }
    return hidden;
}

static void xy_layout_compute(const xy_spec *c, const xy_data *d, xy_layout *L)
{
    memset(L, 0, sizeof *L);
    L->width = WIDTH;
    mp_plot_axis_fit(&L->y, d->y_lo, d->y_hi, c->log_y, PLOT_H / 32, false);
    L->left = 14 + (c->y_label ? 20 : 0) + tick_labels_width(&L->y) + 8;
    L->right = WIDTH - 24;
    fit_x_axis(&L->x, d->x_lo, d->x_hi, d->integer_x, L->left, L->right);

    L->legend.kind = c->lines ? SWATCH_LINE : SWATCH_MARKER;
    for (int s = 0; s < c->n_series; s++)
        legend_add(&L->legend, c->series[s].name, s);
    L->legend_top = c->title ? 30 : 8;
    int rows = legend_draw(NULL, &L->legend, L->left, L->right, L->legend_top);
    L->top = L->legend_top + rows * LEGEND_ROW + 12;
    L->bottom = L->top + PLOT_H;
    L->y.px_lo = L->bottom;
    L->y.px_hi = L->top;

    note_add(L->note, sizeof L->note, d->not_finite, "point", "not shown (NaN or infinite)");
    note_add(L->note, sizeof L->note, d->not_positive, "point", "\xE2\x89\xA4 0 not shown on the log scale");
    int hidden = c->scatter ? place_labels(NULL, c, L) : 0;
    note_add(L->note, sizeof L->note, hidden, "label", "hidden to avoid overlap (hover for values)");
    L->height = (int)(L->bottom + 22 + (c->x_label ? 20 : 0) + (L->note[0] ? 18 : 0) + 6);
}

static void draw_series_line(FILE *out, const xy_spec *c, const xy_layout *L, int s)
{
    bool started = false, pen_down = false;
    double width = c->scatter ? 1.3 : 1.8;
    for (int i = 0; i < series_len(&c->series[s]); i++) {
        double px, py;
        if (!point_px(c, L, s, i, &px, &py)) { /* a gap: the line breaks here */
            pen_down = false;
            continue;
        }
        if (!started)
            fprintf(out, "<path class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                         "stroke-linejoin=\"round\"%s d=\"", PALETTE[s % N_PALETTE], width, line_dash(s));
        fprintf(out, "%s%.1f %.1f", !started ? "M" : pen_down ? " L" : " M", px, py);
        started = pen_down = true;
    }
    if (started)
        fputs("\"/>\n", out);
}

static void write_point_tooltip(FILE *out, const xy_spec *c, int s, int i)
{
    const mp_plot_series *ser = &c->series[s];
    const char *label = ser->labels ? ser->labels[i] : NULL;
    mp_xml_escape(out, label);
    if (label && ser->name)
        fputs(" (", out);
    mp_xml_escape(out, ser->name);
    if (label && ser->name)
        fputs(")", out);
    if (label || ser->name)
        fputs(": ", out);
    mp_xml_escape(out, c->x_label ? c->x_label : "x");
    fputs(" = ", out);
    write_value(out, series_x(ser, i));
    fputs(", ", out);
    mp_xml_escape(out, c->y_label ? c->y_label : "y");
    fputs(" = ", out);
    write_value(out, ser->y[i]);
}

static void draw_series_marks(FILE *out, const xy_spec *c, const xy_layout *L, int s)
{
    for (int i = 0; i < series_len(&c->series[s]); i++) {
        double px, py;
        if (!point_px(c, L, s, i, &px, &py))
            continue;
        const char *tag = marker_open(out, s, px, py, c->scatter ? 4.5 : 3);
        fputs("<title>", out);
        write_point_tooltip(out, c, s, i);
        fprintf(out, "</title></%s>\n", tag);
    }
}

static void xy_chart(FILE *out, const xy_spec *c)
{
    xy_data d;
    xy_layout L;
    xy_scan(c, &d);
    xy_layout_compute(c, &d, &L);
    svg_open(out, L.width, L.height, c->title);
    draw_title(out, c->title, L.width);
    legend_draw(out, &L.legend, L.left, L.right, L.legend_top);
    draw_y_axis(out, &L.y, L.left, L.right);
    draw_x_axis(out, &L.x, L.top, L.bottom);
    draw_y_label(out, c->y_label, 20, (L.top + L.bottom) / 2, PLOT_H);
    draw_x_label(out, c->x_label, (L.left + L.right) / 2, L.bottom + 38, L.right - L.left);
    for (int s = 0; s < c->n_series && c->lines; s++)
        draw_series_line(out, c, &L, s);
    for (int s = 0; s < c->n_series; s++)
        draw_series_marks(out, c, &L, s);
    if (c->scatter)
        place_labels(out, c, &L);
    if (d.points == 0)
        draw_no_data(out, (L.left + L.right) / 2, (L.top + L.bottom) / 2);
    draw_note(out, L.note, L.left, L.height - 10);
    svg_close(out);
}

void mp_svg_line_chart(FILE *out, const mp_line_chart *c)
{
    xy_spec spec = {c->title, c->x_label, c->y_label, c->series, c->n_series, c->log_y, true, false};
    xy_chart(out, &spec);
}

void mp_svg_scatter_chart(FILE *out, const mp_scatter_chart *c)
{
    xy_spec spec = {c->title, c->x_label, c->y_label, c->groups, c->n_groups, c->log_y, c->connect, true};
    xy_chart(out, &spec);
}

/* ---- heat map ---- */

/* Viridis (perceptually uniform, colour-blind safe, readable in grey) at t in [0, 1]. */
static void viridis(double t, char colour[8])
{
    static const unsigned char stops[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                              {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                              {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
    double f = clamp(t, 0, 1) * 8;
    int i = f >= 8 ? 7 : (int)f;
    f -= i;
    int rgb[3];
    for (int k = 0; k < 3; k++)
        rgb[k] = (int)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
    snprintf(colour, 8, "#%02x%02x%02x", rgb[0] & 0xff, rgb[1] & 0xff, rgb[2] & 0xff);
}

/* "layer 3" from names or from the axis label and the index. */
static void write_index_name(FILE *out, const char *const *names, int i, const char *label)
{
    if (names && names[i]) {
        mp_xml_escape(out, names[i]);
        return;
    }
    if (label) {
        mp_xml_escape(out, label);
        fputc(' ', out);
    }
    fprintf(out, "%d", i);
}

static double index_names_width(const char *const *names, int n, double px)
{
    char buf[16];
    double w = 0;
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        w = fmax(w, text_width(names && names[i] ? names[i] : buf, px));
    }
    return fmin(w, 160);
}

static void write_index_label(FILE *out, const char *const *names, int i, double max_px)
{
    if (names && names[i])
        write_fitted(out, names[i], max_px, FONT);
    else
        fprintf(out, "%d", i);
}

typedef struct {
    mp_plot_axis scale; /* value -> colour position in [0, 1] */
    double left, top, cell_w, cell_h;
    double bar_x, bar_h; /* the colour bar */
    int width, height;
    char note[256];
} heat_layout;

static bool heat_value_ok(const mp_heat_map *m, double v)
{
    return drawable(v) && (!m->log_scale || v > 0);
}

static void heat_layout_compute(const mp_heat_map *m, heat_layout *L)
{
    memset(L, 0, sizeof *L);
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    int not_finite = 0, not_positive = 0;
    for (long k = 0; k < (long)m->rows * m->cols; k++) {
        double v = m->values[k];
        if (!drawable(v))
            not_finite++;
        else if (m->log_scale && v <= 0)
            not_positive++;
        else
            lo = fmin(lo, v), hi = fmax(hi, v);
    }
    mp_plot_axis_fit(&L->scale, lo, hi, m->log_scale, 7, false);
    L->scale.px_lo = 0;
    L->scale.px_hi = 1;
    note_add(L->note, sizeof L->note, not_finite, "cell", "blank (NaN or infinite)");
    note_add(L->note, sizeof L->note, not_positive, "cell", "\xE2\x89\xA4 0 blank on the log scale");

    double right = 18 + 14 + 6 + tick_labels_width(&L->scale) + (m->value_label ? 24 : 0) + 10;
    L->left = 14 + (m->y_label ? 20 : 0) + index_names_width(m->row_names, m->rows, FONT) + 6;
    L->top = m->title ? 36 : 12;
    L->cell_w = clamp((WIDTH - L->left - right) / m->cols, 2, 48);
    L->cell_h = clamp(520.0 / m->rows, 6, 28);
    double map_w = L->cell_w * m->cols, map_h = L->cell_h * m->rows;
    L->bar_x = L->left + map_w + 18;
    L->bar_h = fmax(map_h, 140);
    L->width = (int)ceil(L->left + map_w + right);
    double below_map = map_h + 20 + (m->x_label ? 20 : 0);
    L->height = (int)ceil(L->top + fmax(below_map, L->bar_h + 10) + (L->note[0] ? 18 : 0) + 6);
}

/* The text of a large cell: enough significant digits (2 to 5) to tell apart values a
 * tenth of a colour-bar tick apart, so equal-looking labels mean equal-looking colours. */
static void format_cell(double v, double tick_step, char *buf, size_t size)
{
    int digits = 3;
    if (tick_step > 0 && v != 0)
        digits = (int)clamp(floor(log10(fabs(v))) - floor(log10(tick_step / 10) + 1e-9) + 1, 2, 5);
    snprintf(buf, size, "%.*g", digits, v);
    tidy_exponent(buf);
}

static void draw_cell(FILE *out, const mp_heat_map *m, const heat_layout *L, int r, int c)
{
    double v = m->values[(long)r * m->cols + c];
    if (!heat_value_ok(m, v))
        return; /* blank, counted in the note */
    double t = mp_plot_axis_map(&L->scale, v), x = L->left + c * L->cell_w, y = L->top + r * L->cell_h;
    /* Cells reach half a pixel into their right and lower neighbours, which are drawn
     * later and cover it: edges rounded to device pixels then never open a seam. */
    double w = L->cell_w + (c + 1 < m->cols ? 0.5 : 0), h = L->cell_h + (r + 1 < m->rows ? 0.5 : 0);
    char colour[8];
    viridis(t, colour);
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>", x, y, w, h,
            colour);
    write_index_name(out, m->row_names, r, m->y_label);
    fputs(", ", out);
    write_index_name(out, m->col_names, c, m->x_label);
    fputs(": ", out);
    write_value(out, v);
    fputs("</title></rect>\n", out);

    char text[32];
    format_cell(v, L->scale.ticks.step, text, sizeof text);
    if (L->cell_h >= 15 && text_width(text, 10) <= L->cell_w - 4) /* big cells show their value */
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"10\" fill=\"%s\" "
                     "pointer-events=\"none\">%s</text>\n", x + L->cell_w / 2, y + L->cell_h / 2,
                t > 0.6 ? "#1a1a1a" : "#ffffff", text);
}

static void draw_heat_labels(FILE *out, const mp_heat_map *m, const heat_layout *L)
{
    int row_stride = label_stride(L->cell_h, 13);
    for (int r = 0; r < m->rows; r += row_stride) {
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"end\">", L->left - 6,
                L->top + (r + 0.5) * L->cell_h);
        write_index_label(out, m->row_names, r, 160);
        fputs("</text>\n", out);
    }
    double map_bottom = L->top + m->rows * L->cell_h;
    int col_stride = label_stride(L->cell_w, index_names_width(m->col_names, m->cols, FONT) + 14);
    for (int c = 0; c < m->cols; c += col_stride) {
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L->left + (c + 0.5) * L->cell_w,
                map_bottom + 15);
        write_index_label(out, m->col_names, c, L->cell_w * col_stride - 8);
        fputs("</text>\n", out);
    }
    draw_y_label(out, m->y_label, 20, L->top + m->rows * L->cell_h / 2, fmax(m->rows * L->cell_h, 60));
    draw_x_label(out, m->x_label, L->left + m->cols * L->cell_w / 2, map_bottom + 35, fmax(m->cols * L->cell_w, 80));
}

static void draw_colour_bar(FILE *out, const mp_heat_map *m, const heat_layout *L)
{
    enum { STEPS = 64 };
    double step_h = L->bar_h / STEPS, bottom = L->top + L->bar_h;
    fputs("<g class=\"colour-bar\" shape-rendering=\"crispEdges\">\n", out);
    for (int k = 0; k < STEPS; k++) {
        char colour[8];
        viridis((k + 0.5) / STEPS, colour);
        fprintf(out, "<rect x=\"%.1f\" y=\"%.2f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n", L->bar_x,
                bottom - (k + 1) * step_h, step_h + 0.5, colour);
    }
    fputs("</g>\n", out);
    char buf[32];
    for (int i = 0; i < L->scale.ticks.n; i++) {
        double y = bottom - mp_plot_axis_map(&L->scale, L->scale.ticks.v[i]) * L->bar_h;
        mp_plot_format_tick(L->scale.ticks.v[i], L->scale.ticks.step, buf, sizeof buf);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" stroke-opacity=\"0.6\"/>\n",
                L->bar_x + 14, y, L->bar_x + 18, y);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">%s</text>\n", L->bar_x + 21, y, buf);
    }
    double label_x = L->bar_x + 21 + tick_labels_width(&L->scale) + 16;
    draw_y_label(out, m->value_label, label_x, L->top + L->bar_h / 2, L->bar_h);
}

/* A plot with nothing to draw in it: title and "no data". */
static void draw_empty(FILE *out, const char *title)
{
    svg_open(out, WIDTH, 90, title);
    draw_title(out, title, WIDTH);
    draw_no_data(out, WIDTH / 2.0, 60);
    svg_close(out);
}

void mp_svg_heat_map(FILE *out, const mp_heat_map *m)
{
    if (m->rows <= 0 || m->cols <= 0 || !m->values) {
        draw_empty(out, m->title);
        return;
    }
    heat_layout L;
    heat_layout_compute(m, &L);
    svg_open(out, L.width, L.height, m->title);
    draw_title(out, m->title, L.width);
    fprintf(out, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"currentColor\" stroke-opacity=\"0.3\"/>\n",
            L.left - 0.5, L.top - 0.5, L.cell_w * m->cols + 1, L.cell_h * m->rows + 1);
    fputs("<g class=\"cells\" shape-rendering=\"crispEdges\">\n", out);
    for (int r = 0; r < m->rows; r++)
        for (int c = 0; c < m->cols; c++)
            draw_cell(out, m, &L, r, c);
    fputs("</g>\n", out);
    draw_heat_labels(out, m, &L);
    draw_colour_bar(out, m, &L);
    draw_note(out, L.note, L.left, L.height - 10);
    svg_close(out);
}

/* ---- bar chart ---- */

typedef struct {
    mp_plot_axis y; /* shared by every panel; px set per panel */
    bool panels;    /* one panel per group instead of side-by-side bars */
    int n_panels;
    double left, right, top, panel_h, panel_gap, slot;
    int width, height;
    legend legend;
    double legend_top;
    char note[256];
} bar_layout;

static void bar_layout_compute(const mp_bar_chart *c, bar_layout *L)
{
    memset(L, 0, sizeof *L);
    double lo = 0, hi = 0; /* bars start at zero: it is always on the axis */
    int not_finite = 0;
    for (int g = 0; g < c->n_groups; g++)
        for (int k = 0; k < c->n_categories; k++) {
            double v = c->groups[g].values[k];
            if (!drawable(v))
                not_finite++;
            else
                lo = fmin(lo, v), hi = fmax(hi, v);
        }
    if (lo == 0 && hi == 0)
        hi = 1;
    note_add(L->note, sizeof L->note, not_finite, "bar", "not shown (NaN or infinite)");

    L->panels = c->n_groups > 1 && (long)c->n_groups * c->n_categories > 64;
    L->n_panels = L->panels ? c->n_groups : 1;
    L->panel_h = !L->panels ? 240 : c->n_groups <= 4 ? 110 : 64;
    L->panel_gap = L->panels ? 28 : 0;
    mp_plot_axis_fit(&L->y, lo, hi, false, L->panels ? 4 : 8, false);
    L->left = 14 + (c->y_label ? 20 : 0) + tick_labels_width(&L->y) + 8;
    L->right = WIDTH - 20;
    L->width = WIDTH;
    L->slot = (L->right - L->left) / c->n_categories;

    L->legend.kind = SWATCH_BAR;
    for (int g = 0; g < c->n_groups && !L->panels && c->n_groups > 1; g++)
        legend_add(&L->legend, c->groups[g].name, g);
    L->legend_top = c->title ? 30 : 8;
    int rows = legend_draw(NULL, &L->legend, L->left, L->right, L->legend_top);
    L->top = L->legend_top + rows * LEGEND_ROW + (L->panels ? 0 : 12);
    double plots = L->n_panels * (L->panel_h + L->panel_gap);
    L->height = (int)ceil(L->top + plots + 22 + (c->x_label ? 20 : 0) + (L->note[0] ? 18 : 0) + 6);
}

static void draw_bar(FILE *out, const mp_bar_chart *c, const bar_layout *L, int g, int k)
{
    double v = c->groups[g].values[k];
    if (!drawable(v))
        return;
    int n_side = L->panels ? 1 : c->n_groups; /* bars sharing a slot */
    double inner = L->slot >= 4 || n_side > 1 ? L->slot * 0.8 : L->slot;
    double w = inner / n_side, x = L->left + k * L->slot + (L->slot - inner) / 2 + (L->panels ? 0 : g * w);
    double y0 = mp_plot_axis_map(&L->y, 0), y1 = mp_plot_axis_map(&L->y, v);
    double drawn_w = inner == L->slot ? w + 0.5 : w; /* touching bars overlap: no seams (see draw_cell) */
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>", x, fmin(y0, y1),
            drawn_w, fabs(y1 - y0), PALETTE[(L->panels ? 0 : g) % N_PALETTE]);
    if (c->groups[g].name) {
        mp_xml_escape(out, c->groups[g].name);
        fputs(", ", out);
    }
    write_index_name(out, c->categories, k, c->x_label);
    fputs(": ", out);
    write_value(out, v);
    fputs("</title></rect>\n", out);
}

static void draw_panel(FILE *out, const mp_bar_chart *c, bar_layout *L, int p)
{
    double top = L->top + L->panel_gap + p * (L->panel_h + L->panel_gap), bottom = top + L->panel_h;
    L->y.px_lo = bottom;
    L->y.px_hi = top;
    draw_y_axis(out, &L->y, L->left, L->right);
    if (L->panels && c->groups[p].name) {
        fprintf(out, "<text class=\"panel\" x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" font-weight=\"600\">", L->left,
                top - 9, SMALL);
        write_fitted(out, c->groups[p].name, L->right - L->left, SMALL);
        fputs("</text>\n", out);
    }
    fputs("<g class=\"bars\" shape-rendering=\"crispEdges\">\n", out);
    for (int g = L->panels ? p : 0; g < (L->panels ? p + 1 : c->n_groups); g++)
        for (int k = 0; k < c->n_categories; k++)
            draw_bar(out, c, L, g, k);
    fputs("</g>\n", out);
    double zero = mp_plot_axis_map(&L->y, 0);
    fprintf(out, "<line class=\"axis x\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"currentColor\" "
                 "stroke-opacity=\"0.55\"/>\n", L->left, zero, L->right, zero);
}

static void draw_categories(FILE *out, const mp_bar_chart *c, const bar_layout *L, double bottom)
{
    int stride = label_stride(L->slot, index_names_width(c->categories, c->n_categories, FONT) + 14);
    for (int k = 0; k < c->n_categories; k += stride) {
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L->left + (k + 0.5) * L->slot,
                bottom + 16);
        write_index_label(out, c->categories, k, L->slot * stride - 8);
        fputs("</text>\n", out);
    }
}

void mp_svg_bar_chart(FILE *out, const mp_bar_chart *c)
{
    if (c->n_categories <= 0 || c->n_groups <= 0) {
        draw_empty(out, c->title);
        return;
    }
    bar_layout L;
    bar_layout_compute(c, &L);
    svg_open(out, L.width, L.height, c->title);
    draw_title(out, c->title, L.width);
    legend_draw(out, &L.legend, L.left, L.right, L.legend_top);
    for (int p = 0; p < L.n_panels; p++)
        draw_panel(out, c, &L, p);
    double first_top = L.top + L.panel_gap, bottom = L.top + L.n_panels * (L.panel_h + L.panel_gap);
    draw_categories(out, c, &L, bottom);
    draw_y_label(out, c->y_label, 20, (first_top + bottom) / 2, bottom - first_top);
    draw_x_label(out, c->x_label, (L.left + L.right) / 2, bottom + 38, L.right - L.left);
    draw_note(out, L.note, L.left, L.height - 10);
    svg_close(out);
}
