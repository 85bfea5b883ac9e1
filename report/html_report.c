#include "html_report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"

/* One stylesheet in the page: no external resources. Colours come from variables so
 * the dark scheme and print only swap the palette; plots draw text and axes in
 * currentColor and follow. The page is also well-formed XML (void elements closed,
 * no named entities), which keeps it easy to check with any XML parser. */
static const char STYLE[] =
    ":root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1d21; --muted: #5b6068; --rule: #d9dce1;\n"
    "  --stripe: #f4f5f7; --pass: #1f7a3f; --fail: #b3261e; }\n"
    "@media (prefers-color-scheme: dark) { :root { --bg: #15171a; --fg: #e3e5e8; --muted: #a1a7b0;\n"
    "  --rule: #3a3f46; --stripe: #1d2024; --pass: #2b8a4e; --fail: #c4403f; } }\n"
    "body { margin: 0 auto; max-width: 960px; padding: 24px 20px 48px; background: var(--bg); color: var(--fg);\n"
    "  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }\n"
    "h1 { font-size: 1.6em; margin: 0 0 4px; line-height: 1.25; overflow-wrap: anywhere; }\n"
    ".subtitle { color: var(--muted); margin: 0 0 20px; overflow-wrap: anywhere; }\n"
    "h2 { font-size: 1.25em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }\n"
    "h3 { font-size: 1.05em; margin: 22px 0 6px; }\n"
    "h4 { font-size: 1em; margin: 16px 0 4px; color: var(--muted); }\n"
    ".table-wrap { overflow-x: auto; margin: 8px 0 16px; }\n"
    "table { border-collapse: collapse; font-size: 0.92em; }\n"
    "caption { text-align: left; color: var(--muted); padding-bottom: 4px; }\n"
    "th, td { padding: 3px 12px 3px 0; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }\n"
    "th { font-weight: 600; }\n"
    "tbody tr:nth-child(even) { background: var(--stripe); }\n"
    "th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; padding: 3px 0 3px 16px; }\n"
    "table.summary th { font-weight: 500; color: var(--muted); padding-right: 28px; }\n"
    "table.summary tbody tr { background: none; }\n"
    "figure { margin: 16px 0 28px; }\n"
    "figure svg { display: block; max-width: 100%; height: auto; }\n"
    "figcaption { color: var(--muted); font-size: 0.9em; margin-top: 4px; }\n"
    ".verdict { margin: 14px 0; font-size: 1.05em; }\n"
    ".badge { display: inline-block; margin-right: 10px; padding: 1px 10px; border-radius: 4px; color: #ffffff;\n"
    "  font-weight: 700; letter-spacing: 0.06em; }\n"
    ".badge.pass { background: var(--pass); }\n"
    ".badge.fail { background: var(--fail); }\n"
    "@media print {\n"
    "  :root { --bg: #ffffff; --fg: #000000; --muted: #444444; --rule: #bbbbbb; --stripe: #ffffff; }\n"
    "  body { max-width: none; padding: 0; font-size: 10.5pt; }\n"
    "  figure, .verdict, table.summary { break-inside: avoid; }\n"
    "  h2, h3, h4 { break-after: avoid; }\n"
    "  .badge { print-color-adjust: exact; -webkit-print-color-adjust: exact; }\n"
    "}\n";

static void release(mp_report *r)
{
    if (r->out)
        fclose(r->out);
    r->out = NULL;
    free(r->page);
    r->page = NULL;
    mp_outfile_abort(&r->file);
}

static void write_head(FILE *out, const char *title, const char *subtitle)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
          "<meta name=\"color-scheme\" content=\"light dark\"/>\n"
          "<meta name=\"generator\" content=\"moepack\"/>\n<title>", out);
    mp_xml_escape(out, title);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>", STYLE);
    mp_xml_escape(out, title);
    fputs("</h1>\n", out);
    if (subtitle) {
        fputs("<p class=\"subtitle\">", out);
        mp_xml_escape(out, subtitle);
        fputs("</p>\n", out);
    }
    fputs("</header>\n<main>\n", out);
}

int mp_report_begin(mp_report *r, const char *path, const char *title, const char *subtitle, mp_error *err)
{
    memset(r, 0, sizeof *r);
    int rc = mp_outfile_open(&r->file, path, err);
    if (rc != MP_OK)
        return rc;
    r->out = open_memstream(&r->page, &r->page_len);
    if (!r->out) {
        release(r);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    }
    write_head(r->out, title, subtitle);
    return MP_OK;
}

void mp_report_heading(mp_report *r, int level, const char *text)
{
    if (!r->out)
        return;
    level = level < 2 ? 2 : level > 4 ? 4 : level;
    fprintf(r->out, "<h%d>", level);
    mp_xml_escape(r->out, text);
    fprintf(r->out, "</h%d>\n", level);
}

void mp_report_paragraph(mp_report *r, const char *text)
{
    if (!r->out)
        return;
    fputs("<p>", r->out);
    mp_xml_escape(r->out, text);
    fputs("</p>\n", r->out);
}

void mp_report_verdict(mp_report *r, bool pass, const char *text)
{
    if (!r->out)
        return;
    fprintf(r->out, "<p class=\"verdict\"><span class=\"badge %s\">%s</span>", pass ? "pass" : "fail",
            pass ? "PASS" : "FAIL");
    mp_xml_escape(r->out, text);
    fputs("</p>\n", r->out);
}

void mp_report_summary(mp_report *r, const mp_report_kv *rows, int n_rows)
{
    if (!r->out)
        return;
    fputs("<div class=\"table-wrap\"><table class=\"summary\"><tbody>\n", r->out);
    for (int i = 0; i < n_rows; i++) {
        fputs("<tr><th scope=\"row\">", r->out);
        mp_xml_escape(r->out, rows[i].key);
        fputs("</th><td>", r->out);
        mp_xml_escape(r->out, rows[i].value);
        fputs("</td></tr>\n", r->out);
    }
    fputs("</tbody></table></div>\n", r->out);
}

/* A number, possibly with a short unit after it ("12.5%", "1.94 M", "3.2 GiB"). */
static bool reads_as_number(const char *s)
{
    char *end;
    strtod(s, &end);
    return end != s && strlen(end) <= 4;
}

/* A cell that stands for a missing value: empty, "-", an em dash or "n/a". */
static bool is_missing_value(const char *s)
{
    return !s || !s[0] || strcmp(s, "-") == 0 || strcmp(s, "\xE2\x80\x94") == 0 || strcmp(s, "n/a") == 0;
}

static bool column_is_numeric(const mp_report_table *t, int c)
{
    bool any = false;
    for (int i = 0; i < t->n_rows; i++) {
        const char *s = t->cells[(long)i * t->n_cols + c];
        if (is_missing_value(s))
            continue;
        if (!reads_as_number(s))
            return false;
        any = true;
    }
    return any;
}

static void write_cell(FILE *out, const char *tag, bool numeric, const char *text)
{
    fprintf(out, "<%s%s>", tag, numeric ? " class=\"num\"" : "");
    mp_xml_escape(out, text);
    fprintf(out, "</%s>", tag);
}

void mp_report_table_write(mp_report *r, const mp_report_table *t)
{
    if (!r->out || t->n_cols <= 0)
        return;
    /* Decided once per column; without memory the table is just left-aligned. */
    bool *numeric = calloc((size_t)t->n_cols, sizeof *numeric);
    for (int c = 0; c < t->n_cols && numeric; c++)
        numeric[c] = column_is_numeric(t, c);
    fputs("<div class=\"table-wrap\"><table>\n", r->out);
    if (t->caption) {
        fputs("<caption>", r->out);
        mp_xml_escape(r->out, t->caption);
        fputs("</caption>\n", r->out);
    }
    fputs("<thead><tr>", r->out);
    for (int c = 0; c < t->n_cols; c++)
        write_cell(r->out, "th", numeric && numeric[c], t->header ? t->header[c] : NULL);
    fputs("</tr></thead>\n<tbody>\n", r->out);
    for (int i = 0; i < t->n_rows; i++) {
        fputs("<tr>", r->out);
        for (int c = 0; c < t->n_cols; c++)
            write_cell(r->out, "td", numeric && numeric[c], t->cells[(long)i * t->n_cols + c]);
        fputs("</tr>\n", r->out);
    }
    fputs("</tbody></table></div>\n", r->out);
    free(numeric);
}

static void figure_end(FILE *out, const char *caption)
{
    if (caption) {
        fputs("<figcaption>", out);
        mp_xml_escape(out, caption);
        fputs("</figcaption>\n", out);
    }
    fputs("</figure>\n", out);
}

void mp_report_line_chart(mp_report *r, const mp_line_chart *c, const char *caption)
{
    if (!r->out)
        return;
    fputs("<figure>\n", r->out);
    mp_svg_line_chart(r->out, c);
    figure_end(r->out, caption);
}

void mp_report_scatter_chart(mp_report *r, const mp_scatter_chart *c, const char *caption)
{
    if (!r->out)
        return;
    fputs("<figure>\n", r->out);
    mp_svg_scatter_chart(r->out, c);
    figure_end(r->out, caption);
}

void mp_report_heat_map(mp_report *r, const mp_heat_map *m, const char *caption)
{
    if (!r->out)
        return;
    fputs("<figure>\n", r->out);
    mp_svg_heat_map(r->out, m);
    figure_end(r->out, caption);
}

void mp_report_bar_chart(mp_report *r, const mp_bar_chart *c, const char *caption)
{
    if (!r->out)
        return;
    fputs("<figure>\n", r->out);
    mp_svg_bar_chart(r->out, c);
    figure_end(r->out, caption);
}

/* Closes the in-memory page: a write to it can only have failed for want of memory. */
static int close_page(mp_report *r, mp_error *err)
{
    bool failed = ferror(r->out) != 0;
    failed |= fclose(r->out) != 0;
    r->out = NULL;
    return failed || !r->page ? mp_fail(err, MP_EXIT_IO, "%s: out of memory for the report", r->file.path) : MP_OK;
}

int mp_report_end(mp_report *r, mp_error *err)
{
    if (!r->out)
        return mp_fail(err, MP_EXIT_IO, "report already ended or aborted");
    fputs("</main>\n</body>\n</html>\n", r->out);
    int rc = close_page(r, err);
    if (rc == MP_OK)
        rc = mp_outfile_write(&r->file, r->page, r->page_len, err);
    if (rc == MP_OK)
        rc = mp_outfile_commit(&r->file, err);
    release(r);
    return rc;
}

void mp_report_abort(mp_report *r)
{
    release(r);
}
