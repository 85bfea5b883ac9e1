/* SVG plots for the HTML reports: plain structs in, one <svg> element out.
 *
 * Each function writes a complete <svg> element (no xmlns: it is meant to sit inline
 * in an HTML page) into out. Text and axes use currentColor, so the page decides
 * light or dark; series colours are mid-luminance and readable on both. Every mark
 * carries a <title> child, so hovering in a browser shows its exact values.
 *
 * Values that cannot be drawn (NaN, infinities, |v| >= 1e300, and v <= 0 on a log
 * axis) are skipped and counted in a note under the plot. No data at all gives empty
 * axes with "no data"; all-equal values get an axis around them. The plots never fail:
 * write errors stay in the stream (check ferror(out) or let html_report do it). */
#ifndef MP_SVG_PLOT_H
#define MP_SVG_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One named series of (x, y) points. Strings may be NULL (no legend entry, no label). */
typedef struct {
    const char *name;          /* legend entry, tooltip prefix */
    const double *x;           /* n values; NULL means 0, 1, ..., n-1 (integer ticks) */
    const double *y;           /* n values */
    const char *const *labels; /* scatter only: n point labels drawn beside the marks, or NULL */
    int n;
} mp_plot_series;

/* Lines with markers, e.g. per-layer hidden-state error of several packs. */
typedef struct {
    const char *title, *x_label, *y_label;
    const mp_plot_series *series;
    int n_series;
    bool log_y;
} mp_line_chart;

/* Labelled markers, one colour and shape per group, e.g. bits per weight vs KLD. */
typedef struct {
    const char *title, *x_label, *y_label;
    const mp_plot_series *groups;
    int n_groups;
    bool connect; /* join each group's points by a line, in the order given */
    bool log_y;
} mp_scatter_chart;

/* A rows x cols matrix, e.g. per-expert weight error (layers x experts), with a colour
 * bar. Cells show their value as text only when they are large enough to hold it. */
typedef struct {
    const char *title;
    const char *x_label, *y_label; /* name the columns and rows ("expert", "layer") */
    const char *value_label;       /* next to the colour bar */
    const double *values;          /* rows * cols, row-major */
    int rows, cols;
    const char *const *row_names; /* rows names, or NULL for 0, 1, ... */
    const char *const *col_names; /* cols names, or NULL for 0, 1, ... */
    bool log_scale;
} mp_heat_map;

typedef struct {
    const char *name;     /* e.g. "layer 3" */
    const double *values; /* one per category */
} mp_bar_group;

/* Bars per category for each group, e.g. routing frequency per expert for each layer.
 * Few bars in all (at most 64) are drawn side by side with a legend; more become one
 * panel per group, stacked, sharing both axes. For dozens of groups a heat map reads
 * better. */
typedef struct {
    const char *title, *x_label, *y_label;
    const char *const *categories; /* n_categories names, or NULL for 0, 1, ... */
    int n_categories;
    const mp_bar_group *groups;
    int n_groups;
} mp_bar_chart;

void mp_svg_line_chart(FILE *out, const mp_line_chart *c);
void mp_svg_scatter_chart(FILE *out, const mp_scatter_chart *c);
void mp_svg_heat_map(FILE *out, const mp_heat_map *m);
void mp_svg_bar_chart(FILE *out, const mp_bar_chart *c);

/* ---- building blocks, shared with html_report and the tests ---- */

/* Writes s as XML/HTML text or attribute content: & < > " ' become entities; control
 * characters and invalid UTF-8 become U+FFFD, so the result is always well-formed.
 * NULL writes nothing. */
void mp_xml_escape(FILE *out, const char *s);

enum { MP_PLOT_MAX_TICKS = 24 };

typedef struct {
    int n;
    double step; /* distance between linear ticks; 0 for decade and 1-2-5 ticks of a log axis */
    double v[MP_PLOT_MAX_TICKS];
} mp_plot_ticks;

/* "Nice numbers": ticks at multiples of the smallest step in {1, 2, 5} x 10^k, at least
 * min_step (1 for integer axes, else 0), that covers [lo, hi] (first tick <= lo, last
 * >= hi) with at most max_ticks ticks (3..MP_PLOT_MAX_TICKS). Needs lo < hi. */
void mp_plot_nice_ticks(double lo, double hi, int max_ticks, double min_step, mp_plot_ticks *t);

/* One axis: the data domain shown, its ticks, and where it lands in SVG pixels. */
typedef struct {
    double lo, hi; /* lo < hi; both > 0 on a log axis */
    bool log;
    double px_lo, px_hi; /* pixel of lo and of hi (for y, px_lo is the bottom: px_lo > px_hi) */
    mp_plot_ticks ticks;
} mp_plot_axis;

/* Chooses domain and ticks for data in [data_lo, data_hi] (data_lo > data_hi: no data).
 * Linear axes end on ticks; log axes on decades, 1-2-5 steps, or linear ticks when
 * the data span less than a factor of about 2.5. Equal values get a non-empty domain
 * around them. Leaves px_lo and px_hi alone. */
void mp_plot_axis_fit(mp_plot_axis *a, double data_lo, double data_hi, bool log, int max_ticks, bool integer);

/* The pixel coordinate of data value v (linear interpolation, or in log10 space). */
double mp_plot_axis_map(const mp_plot_axis *a, double v);

/* A tick label: fixed decimals matching step, or "1.5e-5"-style for large/small values;
 * step 0 (log axes) prints three significant digits. */
void mp_plot_format_tick(double v, double step, char *buf, size_t size);

#endif
