/* What the files of the SVG plots share: svg_base.c has the building blocks and
 * svg_plot.c the charts drawn with them. svg_*.c only; the API is svg_plot.h.
 *
 * Functions and the palette are named svg_* because they are no longer static;
 * the constants and the legend type keep their short names, which nothing outside
 * these files sees. */
#ifndef MP_SVG_INTERNAL_H
#define MP_SVG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "svg_plot.h"

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

enum { N_PALETTE = 8 };
extern const char *const svg_palette[N_PALETTE]; /* series colours, by index % N_PALETTE */

double svg_clamp(double v, double lo, double hi);
bool svg_drawable(double v); /* finite and far from overflow when mapped */

/* Text: estimated width in pixels at font size px; s escaped and cut with an ellipsis
 * past max_px. */
double svg_text_width(const char *s, double px);
void svg_write_fitted(FILE *out, const char *s, double max_px, double px);

/* Numbers: "1.5e-05" -> "1.5e-5" in place; exact values for tooltips. */
void svg_tidy_exponent(char *s);
void svg_write_value(FILE *out, double v);

/* Axes: the widest tick label; a horizontal axis whose labels do not touch; the
 * smallest 1-2-5 stride at which every stride-th label has room. */
double svg_tick_labels_width(const mp_plot_axis *a);
void svg_fit_x_axis(mp_plot_axis *a, double lo, double hi, bool integer, double px_lo, double px_hi);
int svg_label_stride(double spacing, double needed);

/* SVG pieces. svg_draw_title returns the y where the content below it starts;
 * svg_marker_open returns the element name to close after adding children. */
void svg_open(FILE *out, int width, int height, const char *title);
void svg_close(FILE *out);
double svg_draw_title(FILE *out, const char *title, int width);
void svg_draw_x_label(FILE *out, const char *label, double cx, double y, double max_w);
void svg_draw_y_label(FILE *out, const char *label, double x, double cy, double max_h);
void svg_draw_note(FILE *out, const char *note, double x, double y);
void svg_draw_no_data(FILE *out, double cx, double cy);
void svg_draw_y_axis(FILE *out, const mp_plot_axis *y, double left, double right);
void svg_draw_x_axis(FILE *out, const mp_plot_axis *x, double top, double bottom);
const char *svg_marker_open(FILE *out, int i, double cx, double cy, double r);
const char *svg_line_dash(int i);

/* The legend: entries added in order, laid out in rows; svg_legend_draw with out NULL
 * only measures. Returns the number of rows. */
typedef enum { SWATCH_LINE, SWATCH_MARKER, SWATCH_BAR } swatch_kind;

typedef struct {
    const char *names[MAX_LEGEND];
    int index[MAX_LEGEND]; /* series or group index: colour and shape */
    int n, more;
    swatch_kind kind;
} legend;

void svg_legend_add(legend *l, const char *name, int index);
int svg_legend_draw(FILE *out, const legend *l, double x0, double x1, double y0);

/* Appends "3 points not shown ..." to the note line under a plot. */
void svg_note_add(char *note, size_t size, int count, const char *noun, const char *what);

#endif
