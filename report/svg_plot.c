/* The charts: line and scatter, heat map, bars. Their building blocks (text, numbers,
 * axes, SVG pieces, legend, notes) are in svg_base.c. */
#include "svg_plot.h"

#include <math.h>
#include <string.h>

#include "svg_internal.h" /* the building blocks, in svg_base.c */

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
    if (!svg_drawable(x) || !svg_drawable(y) || (c->log_y && y <= 0))
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
            if (!svg_drawable(x) || !svg_drawable(y)) {
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
            double w = fmin(svg_text_width(ser->labels[i], SMALL), 160), h = 13;
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
                svg_write_fitted(out, ser->labels[i], 160, SMALL);
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
    L->left = 14 + (c->y_label ? 20 : 0) + svg_tick_labels_width(&L->y) + 8;
    L->right = WIDTH - 24;
    svg_fit_x_axis(&L->x, d->x_lo, d->x_hi, d->integer_x, L->left, L->right);

    L->legend.kind = c->lines ? SWATCH_LINE : SWATCH_MARKER;
    for (int s = 0; s < c->n_series; s++)
        svg_legend_add(&L->legend, c->series[s].name, s);
    L->legend_top = c->title ? 30 : 8;
    int rows = svg_legend_draw(NULL, &L->legend, L->left, L->right, L->legend_top);
    L->top = L->legend_top + rows * LEGEND_ROW + 12;
    L->bottom = L->top + PLOT_H;
    L->y.px_lo = L->bottom;
    L->y.px_hi = L->top;

    svg_note_add(L->note, sizeof L->note, d->not_finite, "point", "not shown (NaN or infinite)");
    svg_note_add(L->note, sizeof L->note, d->not_positive, "point", "\xE2\x89\xA4 0 not shown on the log scale");
    int hidden = c->scatter ? place_labels(NULL, c, L) : 0;
    svg_note_add(L->note, sizeof L->note, hidden, "label", "hidden to avoid overlap (hover for values)");
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
                         "stroke-linejoin=\"round\"%s d=\"", svg_palette[s % N_PALETTE], width, svg_line_dash(s));
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
    svg_write_value(out, series_x(ser, i));
    fputs(", ", out);
    mp_xml_escape(out, c->y_label ? c->y_label : "y");
    fputs(" = ", out);
    svg_write_value(out, ser->y[i]);
}

static void draw_series_marks(FILE *out, const xy_spec *c, const xy_layout *L, int s)
{
    for (int i = 0; i < series_len(&c->series[s]); i++) {
        double px, py;
        if (!point_px(c, L, s, i, &px, &py))
            continue;
        const char *tag = svg_marker_open(out, s, px, py, c->scatter ? 4.5 : 3);
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
    svg_draw_title(out, c->title, L.width);
    svg_legend_draw(out, &L.legend, L.left, L.right, L.legend_top);
    svg_draw_y_axis(out, &L.y, L.left, L.right);
    svg_draw_x_axis(out, &L.x, L.top, L.bottom);
    svg_draw_y_label(out, c->y_label, 20, (L.top + L.bottom) / 2, PLOT_H);
    svg_draw_x_label(out, c->x_label, (L.left + L.right) / 2, L.bottom + 38, L.right - L.left);
    for (int s = 0; s < c->n_series && c->lines; s++)
        draw_series_line(out, c, &L, s);
    for (int s = 0; s < c->n_series; s++)
        draw_series_marks(out, c, &L, s);
    if (c->scatter)
        place_labels(out, c, &L);
    if (d.points == 0)
        svg_draw_no_data(out, (L.left + L.right) / 2, (L.top + L.bottom) / 2);
    svg_draw_note(out, L.note, L.left, L.height - 10);
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
    double f = svg_clamp(t, 0, 1) * 8;
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
        w = fmax(w, svg_text_width(names && names[i] ? names[i] : buf, px));
    }
    return fmin(w, 160);
}

static void write_index_label(FILE *out, const char *const *names, int i, double max_px)
{
    if (names && names[i])
        svg_write_fitted(out, names[i], max_px, FONT);
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
    return svg_drawable(v) && (!m->log_scale || v > 0);
}

static void heat_layout_compute(const mp_heat_map *m, heat_layout *L)
{
    memset(L, 0, sizeof *L);
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    int not_finite = 0, not_positive = 0;
    for (long k = 0; k < (long)m->rows * m->cols; k++) {
        double v = m->values[k];
        if (!svg_drawable(v))
            not_finite++;
        else if (m->log_scale && v <= 0)
            not_positive++;
        else
            lo = fmin(lo, v), hi = fmax(hi, v);
    }
    mp_plot_axis_fit(&L->scale, lo, hi, m->log_scale, 7, false);
    L->scale.px_lo = 0;
    L->scale.px_hi = 1;
    svg_note_add(L->note, sizeof L->note, not_finite, "cell", "blank (NaN or infinite)");
    svg_note_add(L->note, sizeof L->note, not_positive, "cell", "\xE2\x89\xA4 0 blank on the log scale");

    double right = 18 + 14 + 6 + svg_tick_labels_width(&L->scale) + (m->value_label ? 24 : 0) + 10;
    L->left = 14 + (m->y_label ? 20 : 0) + index_names_width(m->row_names, m->rows, FONT) + 6;
    L->top = m->title ? 36 : 12;
    L->cell_w = svg_clamp((WIDTH - L->left - right) / m->cols, 2, 48);
    L->cell_h = svg_clamp(520.0 / m->rows, 6, 28);
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
        digits = (int)svg_clamp(floor(log10(fabs(v))) - floor(log10(tick_step / 10) + 1e-9) + 1, 2, 5);
    snprintf(buf, size, "%.*g", digits, v);
    svg_tidy_exponent(buf);
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
    svg_write_value(out, v);
    fputs("</title></rect>\n", out);

    char text[32];
    format_cell(v, L->scale.ticks.step, text, sizeof text);
    if (L->cell_h >= 15 && svg_text_width(text, 10) <= L->cell_w - 4) /* big cells show their value */
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"10\" fill=\"%s\" "
                     "pointer-events=\"none\">%s</text>\n", x + L->cell_w / 2, y + L->cell_h / 2,
                t > 0.6 ? "#1a1a1a" : "#ffffff", text);
}

static void draw_heat_labels(FILE *out, const mp_heat_map *m, const heat_layout *L)
{
    int row_stride = svg_label_stride(L->cell_h, 13);
    for (int r = 0; r < m->rows; r += row_stride) {
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"end\">", L->left - 6,
                L->top + (r + 0.5) * L->cell_h);
        write_index_label(out, m->row_names, r, 160);
        fputs("</text>\n", out);
    }
    double map_bottom = L->top + m->rows * L->cell_h;
    int col_stride = svg_label_stride(L->cell_w, index_names_width(m->col_names, m->cols, FONT) + 14);
    for (int c = 0; c < m->cols; c += col_stride) {
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L->left + (c + 0.5) * L->cell_w,
                map_bottom + 15);
        write_index_label(out, m->col_names, c, L->cell_w * col_stride - 8);
        fputs("</text>\n", out);
    }
    svg_draw_y_label(out, m->y_label, 20, L->top + m->rows * L->cell_h / 2, fmax(m->rows * L->cell_h, 60));
    svg_draw_x_label(out, m->x_label, L->left + m->cols * L->cell_w / 2, map_bottom + 35, fmax(m->cols * L->cell_w, 80));
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
    double label_x = L->bar_x + 21 + svg_tick_labels_width(&L->scale) + 16;
    svg_draw_y_label(out, m->value_label, label_x, L->top + L->bar_h / 2, L->bar_h);
}

/* A plot with nothing to draw in it: title and "no data". */
static void draw_empty(FILE *out, const char *title)
{
    svg_open(out, WIDTH, 90, title);
    svg_draw_title(out, title, WIDTH);
    svg_draw_no_data(out, WIDTH / 2.0, 60);
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
    svg_draw_title(out, m->title, L.width);
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
    svg_draw_note(out, L.note, L.left, L.height - 10);
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
            if (!svg_drawable(v))
                not_finite++;
            else
                lo = fmin(lo, v), hi = fmax(hi, v);
        }
    if (lo == 0 && hi == 0)
        hi = 1;
    svg_note_add(L->note, sizeof L->note, not_finite, "bar", "not shown (NaN or infinite)");

    L->panels = c->n_groups > 1 && (long)c->n_groups * c->n_categories > 64;
    L->n_panels = L->panels ? c->n_groups : 1;
    L->panel_h = !L->panels ? 240 : c->n_groups <= 4 ? 110 : 64;
    L->panel_gap = L->panels ? 28 : 0;
    mp_plot_axis_fit(&L->y, lo, hi, false, L->panels ? 4 : 8, false);
    L->left = 14 + (c->y_label ? 20 : 0) + svg_tick_labels_width(&L->y) + 8;
    L->right = WIDTH - 20;
    L->width = WIDTH;
    L->slot = (L->right - L->left) / c->n_categories;

    L->legend.kind = SWATCH_BAR;
    for (int g = 0; g < c->n_groups && !L->panels && c->n_groups > 1; g++)
        svg_legend_add(&L->legend, c->groups[g].name, g);
    L->legend_top = c->title ? 30 : 8;
    int rows = svg_legend_draw(NULL, &L->legend, L->left, L->right, L->legend_top);
    L->top = L->legend_top + rows * LEGEND_ROW + (L->panels ? 0 : 12);
    double plots = L->n_panels * (L->panel_h + L->panel_gap);
    L->height = (int)ceil(L->top + plots + 22 + (c->x_label ? 20 : 0) + (L->note[0] ? 18 : 0) + 6);
}

static void draw_bar(FILE *out, const mp_bar_chart *c, const bar_layout *L, int g, int k)
{
    double v = c->groups[g].values[k];
    if (!svg_drawable(v))
        return;
    int n_side = L->panels ? 1 : c->n_groups; /* bars sharing a slot */
    double inner = L->slot >= 4 || n_side > 1 ? L->slot * 0.8 : L->slot;
    double w = inner / n_side, x = L->left + k * L->slot + (L->slot - inner) / 2 + (L->panels ? 0 : g * w);
    double y0 = mp_plot_axis_map(&L->y, 0), y1 = mp_plot_axis_map(&L->y, v);
    double drawn_w = inner == L->slot ? w + 0.5 : w; /* touching bars overlap: no seams (see draw_cell) */
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>", x, fmin(y0, y1),
            drawn_w, fabs(y1 - y0), svg_palette[(L->panels ? 0 : g) % N_PALETTE]);
    if (c->groups[g].name) {
        mp_xml_escape(out, c->groups[g].name);
        fputs(", ", out);
    }
    write_index_name(out, c->categories, k, c->x_label);
    fputs(": ", out);
    svg_write_value(out, v);
    fputs("</title></rect>\n", out);
}

static void draw_panel(FILE *out, const mp_bar_chart *c, bar_layout *L, int p)
{
    double top = L->top + L->panel_gap + p * (L->panel_h + L->panel_gap), bottom = top + L->panel_h;
    L->y.px_lo = bottom;
    L->y.px_hi = top;
    svg_draw_y_axis(out, &L->y, L->left, L->right);
    if (L->panels && c->groups[p].name) {
        fprintf(out, "<text class=\"panel\" x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" font-weight=\"600\">", L->left,
                top - 9, SMALL);
        svg_write_fitted(out, c->groups[p].name, L->right - L->left, SMALL);
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
    int stride = svg_label_stride(L->slot, index_names_width(c->categories, c->n_categories, FONT) + 14);
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
    svg_draw_title(out, c->title, L.width);
    svg_legend_draw(out, &L.legend, L.left, L.right, L.legend_top);
    for (int p = 0; p < L.n_panels; p++)
        draw_panel(out, c, &L, p);
    double first_top = L.top + L.panel_gap, bottom = L.top + L.n_panels * (L.panel_h + L.panel_gap);
    draw_categories(out, c, &L, bottom);
    svg_draw_y_label(out, c->y_label, 20, (first_top + bottom) / 2, bottom - first_top);
    svg_draw_x_label(out, c->x_label, (L.left + L.right) / 2, bottom + 38, L.right - L.left);
    svg_draw_note(out, L.note, L.left, L.height - 10);
    svg_close(out);
}
