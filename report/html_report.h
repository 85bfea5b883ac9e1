/* Self-contained HTML reports (moepack verify --report, compare --report): one file
 * with no external resources, inline SVG plots (svg_plot.h), light and dark colour
 * schemes, printable.
 *
 * mp_report_begin creates "path.tmp-PID" (mp_outfile: removed on a failure or a
 * signal); the page is built in memory and written to it by mp_report_end, then
 * renamed to path, so a failure never leaves a partial report under the final name.
 * Every string passed in is HTML-escaped. Errors are sticky in the stream and checked
 * once, by mp_report_end; the calls in between return nothing and do nothing after
 * the report has ended or been aborted.
 *
 *     mp_report r;
 *     if (mp_report_begin(&r, "out.html", "verify tiny.mpk", "reference: ...", &err) != MP_OK)
 *         return err.code;
 *     mp_report_verdict(&r, true, "KLD 0.004 <= 0.01");
 *     mp_report_heading(&r, 2, "Per layer");
 *     mp_report_line_chart(&r, &chart, "Hidden-state relative error after each layer.");
 *     return mp_report_end(&r, &err);   (or mp_report_abort(&r) to give up) */
#ifndef MP_HTML_REPORT_H
#define MP_HTML_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "svg_plot.h"

typedef struct {
    FILE *out; /* the page in memory (open_memstream); NULL once ended or aborted */
    char *page;
    size_t page_len;
    mp_outfile file; /* the temporary it goes to */
} mp_report;

typedef struct {
    const char *key, *value;
} mp_report_kv;

/* A data table of preformatted strings. Columns whose cells all read as numbers
 * ("0.0123", "-4", "1.94 M", "12.5%", blank or "-" for missing) are right-aligned. */
typedef struct {
    const char *caption;       /* above the table, or NULL */
    const char *const *header; /* n_cols column names */
    int n_cols;
    const char *const *cells;  /* n_rows * n_cols, row-major; NULL cells are empty */
    int n_rows;
} mp_report_table;

/* Creates the temporary file and starts the page with its head, the title as <h1> and the
 * subtitle (provenance: what was compared with what, tool version; may be NULL). */
int mp_report_begin(mp_report *r, const char *path, const char *title, const char *subtitle, mp_error *err);

/* A section heading: level 2 for sections, 3 and 4 below them (h1 is the title). */
void mp_report_heading(mp_report *r, int level, const char *text);
void mp_report_paragraph(mp_report *r, const char *text);
/* A PASS or FAIL badge followed by text (e.g. the thresholds checked). */
void mp_report_verdict(mp_report *r, bool pass, const char *text);
/* Key-value pairs as a two-column table, e.g. the summary figures of a run. */
void mp_report_summary(mp_report *r, const mp_report_kv *rows, int n_rows);
void mp_report_table_write(mp_report *r, const mp_report_table *t);

/* Plots as figures, each with an optional caption under it. */
void mp_report_line_chart(mp_report *r, const mp_line_chart *c, const char *caption);
void mp_report_scatter_chart(mp_report *r, const mp_scatter_chart *c, const char *caption);
void mp_report_heat_map(mp_report *r, const mp_heat_map *m, const char *caption);
void mp_report_bar_chart(mp_report *r, const mp_bar_chart *c, const char *caption);

/* Ends the page and writes it to a temporary, synced to disk and renamed to the final
 * path; on failure the temporary is removed. Either way r is released. */
int mp_report_end(mp_report *r, mp_error *err);
/* Drops the page without a report; safe after end or another abort. */
void mp_report_abort(mp_report *r);

#endif
