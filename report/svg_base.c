/* The building blocks of the SVG plots: text escaping and width, number formatting,
 * ticks and axes, SVG pieces, the legend and the notes. The charts themselves are in
 * svg_plot.c; svg_internal.h declares what they share. */
#include "svg_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Mid-luminance colours: at least 3:1 contrast on white and on a near-black page. */
const char *const svg_palette[N_PALETTE] = {"#3b78c4", "#d9731a", "#2e9455", "#d0454c",
                                            "#8c62c6", "#9a7a2a", "#1f9aa3", "#c44f9e"};

double svg_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Values a plot can place: finite and far from overflow when mapped. */
bool svg_drawable(double v)
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
double svg_text_width(const char *s, double px)
{
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            chars++;
    return chars * 0.6 * px;
}

/* Writes s escaped, cut with an ellipsis when it would be wider than max_px. */
void svg_write_fitted(FILE *out, const char *s, double max_px, double px)
{
    size_t len = strlen(s);
    if (svg_text_width(s, px) <= max_px) {
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
void svg_tidy_exponent(char *s)
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
        snprintf(buf, size, "%.*e", (int)svg_clamp(digits, 0, 6), v);
    } else {
        double decimals = step >= 1 ? 0 : -floor(log10(step) + 1e-9);
        snprintf(buf, size, "%.*f", (int)svg_clamp(decimals, 0, 12), v);
    }
    svg_tidy_exponent(buf);
}

/* Exact values for tooltips. */
void svg_write_value(FILE *out, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    svg_tidy_exponent(buf);
    fputs(buf, out);
}

/* ---- ticks and axes ---- */

void mp_plot_nice_ticks(double lo, double hi, int max_ticks, double min_step, mp_plot_ticks *t)
{
    if (!(hi > lo) || !isfinite(hi - lo)) { /* callers guarantee lo < hi; stay sane anyway */
        *t = (mp_plot_ticks){.n = 1, .step = 0, .v = {lo}};
        return;
    }
    max_ticks = (int)svg_clamp(max_ticks, 3, MP_PLOT_MAX_TICKS);
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
    max_ticks = (int)svg_clamp(max_ticks, 3, MP_PLOT_MAX_TICKS);
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
double svg_tick_labels_width(const mp_plot_axis *a)
{
    double w = 0;
    char buf[32];
    for (int i = 0; i < a->ticks.n; i++) {
        mp_plot_format_tick(a->ticks.v[i], a->ticks.step, buf, sizeof buf);
        w = fmax(w, svg_text_width(buf, FONT));
    }
    return w;
}

/* Fits a horizontal axis with as many ticks as fit without their labels touching. */
void svg_fit_x_axis(mp_plot_axis *a, double lo, double hi, bool integer, double px_lo, double px_hi)
{
    double width = px_hi - px_lo;
    for (int max = (int)svg_clamp(width / 60, 3, 12);; max--) {
        mp_plot_axis_fit(a, lo, hi, false, max, integer);
        if (max <= 3 || a->ticks.n * (svg_tick_labels_width(a) + 14) <= width)
            break;
    }
    a->px_lo = px_lo;
    a->px_hi = px_hi;
}

/* The smallest of 1, 2, 5, 10, 20, ... such that every stride-th label has room. */
int svg_label_stride(double spacing, double needed)
{
    for (int j = 0;; j++) {
        int s = (int)value_125(j);
        if (s * spacing >= needed || s >= 1000000)
            return s;
    }
}

/* ---- SVG pieces ---- */

void svg_open(FILE *out, int width, int height, const char *title)
{
    fprintf(out, "<svg class=\"plot\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            width, height, width, height);
    mp_xml_escape(out, title ? title : "plot");
    fprintf(out, "\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\" font-size=\"%d\" "
                 "fill=\"currentColor\">\n", FONT);
}

void svg_close(FILE *out)
{
    fputs("</svg>\n", out);
}

/* Returns the y where the content below the title starts. */
double svg_draw_title(FILE *out, const char *title, int width)
{
    if (!title)
        return 12;
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"21\" text-anchor=\"middle\" font-size=\"%d\" font-weight=\"600\">",
            width / 2, TITLE_FONT);
    svg_write_fitted(out, title, width - 20, TITLE_FONT);
    fputs("</text>\n", out);
    return 34;
}

void svg_draw_x_label(FILE *out, const char *label, double cx, double y, double max_w)
{
    if (!label)
        return;
    fprintf(out, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, y);
    svg_write_fitted(out, label, max_w, FONT);
    fputs("</text>\n", out);
}

void svg_draw_y_label(FILE *out, const char *label, double x, double cy, double max_h)
{
    if (!label)
        return;
    fprintf(out, "<text class=\"label\" transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">", x, cy);
    svg_write_fitted(out, label, max_h, FONT);
    fputs("</text>\n", out);
}

void svg_draw_note(FILE *out, const char *note, double x, double y)
{
    if (!note[0])
        return;
    fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" fill-opacity=\"0.75\">", x, y, SMALL);
    mp_xml_escape(out, note);
    fputs("</text>\n", out);
}

void svg_draw_no_data(FILE *out, double cx, double cy)
{
    fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill-opacity=\"0.6\">no data</text>\n",
            cx, cy);
}

/* Horizontal grid lines with labels left of the plot, and the vertical axis line. */
void svg_draw_y_axis(FILE *out, const mp_plot_axis *y, double left, double right)
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
void svg_draw_x_axis(FILE *out, const mp_plot_axis *x, double top, double bottom)
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
const char *svg_marker_open(FILE *out, int i, double cx, double cy, double r)
{
    const char *colour = svg_palette[i % N_PALETTE];
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
const char *svg_line_dash(int i)
{
    static const char *const dash[] = {"", " stroke-dasharray=\"7 4\"", " stroke-dasharray=\"2 3\""};
    return dash[(i / N_PALETTE) % 3];
}

/* ---- legend ---- */

void svg_legend_add(legend *l, const char *name, int index)
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
    const char *colour = svg_palette[i % N_PALETTE];
    if (kind == SWATCH_BAR) {
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x + 5, cy - 6, colour);
        return;
    }
    if (kind == SWATCH_LINE)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                x, cy, x + 22, cy, colour, svg_line_dash(i));
    fprintf(out, "</%s>\n", svg_marker_open(out, i, x + 11, cy, kind == SWATCH_LINE ? 3 : 4.5));
}

/* Lays out the legend in rows from (x0, y0) up to x1; draws it when out is not NULL.
 * Returns the number of rows. */
int svg_legend_draw(FILE *out, const legend *l, double x0, double x1, double y0)
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
        double w = 30 + fmin(svg_text_width(name, FONT), 240) + 18;
        if (x > x0 && x + w > x1) {
            rows++;
            x = x0;
        }
        double cy = y0 + (rows - 1) * LEGEND_ROW + LEGEND_ROW / 2.0;
        if (out && i < l->n)
            draw_swatch(out, l->kind, l->index[i], x, cy);
        if (out) {
            fprintf(out, "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">", x + 30, cy);
            svg_write_fitted(out, name, 240, FONT);
            fputs("</text>\n", out);
        }
        x += w;
    }
    return rows;
}

/* ---- notes about what was not drawn ---- */

/* Appends "3 points not shown ..." (noun made plural with an s) to the note line. */
void svg_note_add(char *note, size_t size, int count, const char *noun, const char *what)
{
    if (count <= 0)
        return;
    size_t used = strlen(note);
    snprintf(note + used, size - used, "%s%d %s%s %s", used ? "; " : "", count, noun, count == 1 ? "" : "s", what);
}
