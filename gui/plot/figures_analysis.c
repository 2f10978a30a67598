// Figures of analyses. An analysis says how it wants to be drawn: its kind picks a renderer, its
// params JSON gives axis labels, reference lines, ranges, panels and baselines (docs/viewer.md,
// "Analysis kinds"). Nothing here knows which module wrote an analysis.
//
// A figure is laid out in three steps: choose the rows (the --series glob or the analysis's
// "default_series"), split them into panels ("panels" specs, or one panel per series prefix with
// "facet": "prefix", or a single panel), then let the kind's renderer fill each panel's axes. Colours
// are assigned per series over the whole figure, so a series keeps its colour in every panel, and
// baselines ("embed" in "answer/embed") take their parent's colour, dashed.
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gui/plot/figures.h"
#include "runtime/base/error.h"

enum { MAX_PANELS = 16 };

// What all panels of one figure share.
typedef struct {
    const pl_vanalysis *a;
    json_t *params;      // the analysis's params (an object, possibly empty)
    pl_theme theme;
    char **keys;         // colour keys in order of first appearance (main series first)
    int *key_nonzero;    // 1 if some row of that key has a finite non-zero y (bar charts drop the rest)
    int n_keys;
    double ylo, yhi;     // shared y range of the line panels (NaN = none)
} figure_ctx;

struct pl_analysis_panel {
    const figure_ctx *fig;
    json_t *spec;        // this panel's own keys (NULL for facets and single panels)
    const char *facet;   // the series prefix of this panel ("" if none)
    const char *kind;
    int show_xlabel, show_ylabel, show_legend;
    pl_panel_rows rows;  // views of the arrays below
    char **label, **key;
    int *baseline;
    double *x, *y, *lo, *hi;
};

// ---- panel accessors ----

const pl_panel_rows *pl_panel_get_rows(const pl_analysis_panel *p) { return &p->rows; }

static json_t *panel_value(const pl_analysis_panel *p, const char *key) {
    json_t *v = p->spec ? json_object_get(p->spec, key) : NULL;
    return v ? v : json_object_get(p->fig->params, key);
}

const char *pl_panel_string(const pl_analysis_panel *p, const char *key, const char *fallback) {
    json_t *v = panel_value(p, key);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

double pl_panel_number(const pl_analysis_panel *p, const char *key, double fallback) {
    json_t *v = panel_value(p, key);
    return json_is_number(v) ? json_number_value(v) : json_is_boolean(v) ? (double)json_is_true(v) : fallback;
}

static int key_index(const figure_ctx *f, const char *key) {
    for (int i = 0; i < f->n_keys; i++)
        if (strcmp(f->keys[i], key) == 0) return i;
    return -1;
}

pl_rgb pl_panel_color(const pl_analysis_panel *p, const char *color_key) {
    int i = key_index(p->fig, color_key);
    return pl_palette_color(p->fig->theme, i < 0 ? 0 : i);
}

// The legend name of a series (colour key): its "series_labels" entry, else the key itself.
static const char *display_name(const pl_analysis_panel *p, const char *key) {
    json_t *v = json_object_get(json_object_get(p->fig->params, "series_labels"), key);
    return json_is_string(v) ? json_string_value(v) : key;
}

// The k-th baseline (k >= 1) of a series: dashed, paler with each further baseline.
static pl_rgb baseline_color(const pl_analysis_panel *p, const char *key, int k) {
    pl_rgb c = pl_panel_color(p, key), bg = pl_theme_background(p->fig->theme);
    double t = k <= 1 ? 0 : k == 2 ? 0.45 : 0.65;
    return (pl_rgb){c.r + (bg.r - c.r) * t, c.g + (bg.g - c.g) * t, c.b + (bg.b - c.b) * t};
}

// ---- shared decoration ----

// Axis labels (outer panels only), reference lines, fixed or shared limits, legend.
static int decorate(pl_axes *ax, const pl_analysis_panel *p, const char *x_label, const char *y_label, int shared_y) {
    const char *xl = pl_panel_string(p, "x_label", x_label), *yl = pl_panel_string(p, "y_label", y_label);
    if ((p->show_xlabel && xl && pl_axes_set_xlabel(ax, xl)) || (p->show_ylabel && yl && pl_axes_set_ylabel(ax, yl)))
        return -1;
    json_t *h = panel_value(p, "hline");
    if (json_is_number(h) && pl_axes_add_hline(ax, json_number_value(h)) < 0) return -1;
    size_t i;
    json_t *e;
    if (json_is_array(h)) json_array_foreach(h, i, e) if (json_is_number(e) && pl_axes_add_hline(ax, json_number_value(e)) < 0) return -1;
    double x0 = pl_panel_number(p, "x_min", NAN), x1 = pl_panel_number(p, "x_max", NAN);
    double y0 = pl_panel_number(p, "y_min", NAN), y1 = pl_panel_number(p, "y_max", NAN);
    pl_axes_set_xlim(ax, x0, x1);
    if (shared_y && isfinite(p->fig->ylo)) {
        // Panels of one figure share the y range so they can be compared at a glance.
        double lo = isfinite(y0) ? y0 : p->fig->ylo, hi = isfinite(y1) ? y1 : p->fig->yhi;
        double pad = 0.04 * (hi - lo > 0 ? hi - lo : 1);
        pl_axes_set_ylim(ax, lo - pad, hi + pad);
    } else if (isfinite(y0) || isfinite(y1)) {
        double pad = isfinite(y0) && isfinite(y1) ? 0.03 * (y1 - y0) : 0;
        pl_axes_set_ylim(ax, isfinite(y0) ? y0 - pad : NAN, isfinite(y1) ? y1 + pad : NAN);
    }
    pl_axes_set_legend(ax, p->show_legend);
    return 0;
}

static const char *metric_label(const char *name) {
    if (strstr(name, "auroc") || strstr(name, "auc")) return "AUROC";
    if (strstr(name, "acc")) return "accuracy";
    if (strstr(name, "r2")) return "R²";
    return "value";
}

// Rows of a panel are ordered by series: [*start, *end) is the next series' run of rows.
static int next_series(const pl_panel_rows *r, int *start, int *end) {
    if (*end >= r->n) return 0;
    *start = *end;
    int e = *start + 1;
    while (e < r->n && strcmp(r->label[e], r->label[*start]) == 0) e++;
    *end = e;
    return 1;
}

// ---- renderers ----

// Lines with CI bands. Series are drawn per colour key (figure order): the series, then its
// baselines dashed in its colour without bands, so the legend reads "answer, answer · embed, gold...".
static int draw_lines(pl_axes *ax, const pl_analysis_panel *p, const char *x_label, const char *y_label) {
    const pl_panel_rows *r = &p->rows;
    json_t *bl = json_object_get(p->fig->params, "baseline_labels");
    int bands = pl_panel_number(p, "bands", 1) != 0;
    for (int k = 0; k < p->fig->n_keys; k++)
        for (int level = 0; level <= 3; level++) {
            int start = 0, end = 0;
            while (next_series(r, &start, &end)) {
                if (strcmp(r->color_key[start], p->fig->keys[k]) != 0 || (level < 3 ? r->baseline[start] != level : r->baseline[start] < 3))
                    continue;
                int64_t n = end - start;
                int base = r->baseline[start];
                char label[192];
                if (base) {
                    const char *suffix = r->label[start] + strlen(r->color_key[start]) + 1;
                    json_t *named = json_object_get(bl, suffix);
                    const char *parent = display_name(p, r->color_key[start]);
                    snprintf(label, sizeof label, "%s%s%s", parent, parent[0] ? " · " : "",
                             json_is_string(named) ? json_string_value(named) : suffix);
                } else {
                    snprintf(label, sizeof label, "%s", display_name(p, r->label[start]));
                }
                int has_band = 0;
                for (int i = start; bands && !base && i < end; i++) has_band |= isfinite(r->lo[i]) && isfinite(r->hi[i]);
                int idx = has_band ? pl_axes_line_band(ax, r->x + start, r->y + start, r->lo + start, r->hi + start, n,
                                                       label[0] ? label : NULL)
                                   : pl_axes_line(ax, r->x + start, r->y + start, n, label[0] ? label : NULL);
                pl_rgb c = base ? baseline_color(p, r->color_key[start], base) : pl_panel_color(p, r->color_key[start]);
                if (idx < 0 || pl_axes_series_style(ax, idx, &c, base > 0, !base && n <= 40) < 0) return -1;
            }
        }
    return decorate(ax, p, x_label, y_label, 1);
}

static int render_lines(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    return draw_lines(ax, p, "x", metric_label(p->fig->a->name));
}

static int render_by_layer(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    return draw_lines(ax, p, "layer", metric_label(p->fig->a->name));
}

static int render_flip_rate(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    return draw_lines(ax, p, "steering strength α", "flip rate");
}

// Bars: one per row (each series has one row) or grouped (groups = x values, bar series = series
// with a non-zero count anywhere in the figure, in figure order so colours match across panels).
static int render_counts(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    const pl_panel_rows *r = &p->rows;
    if (r->n == 0) return decorate(ax, p, NULL, "count", 0);
    int n = r->n, single = 1, start = 0, end = 0, rc = -1;
    while (next_series(r, &start, &end)) single &= end - start == 1;
    double *xs = malloc(sizeof *xs * (size_t)n), *values = NULL, *errors = NULL;
    const char **group_labels = calloc((size_t)n, sizeof *group_labels), **series_labels = NULL;
    char (*names)[32] = malloc(sizeof *names * (size_t)n);
    int *order = malloc(sizeof *order * (size_t)n), any_error = 0;
    if (!xs || !group_labels || !names || !order) {
        pl_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)  // rows in x order (insertion sort: stable, n is small)
        for (int j = i; j > 0 && r->x[order[j]] < r->x[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    if (single) {
        values = malloc(sizeof *values * (size_t)n), errors = malloc(sizeof *errors * (size_t)n);
        if (!values || !errors) {
            pl_fail("out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            int k = order[i];
            values[i] = r->y[k];
            errors[i] = isfinite(r->hi[k]) ? r->hi[k] - r->y[k] : NAN;
            any_error |= isfinite(errors[i]);
            group_labels[i] = r->label[k];
        }
        if (decorate(ax, p, NULL, "count", 0)) goto done;
        pl_axes_set_legend(ax, 0);
        rc = pl_axes_bars(ax, values, any_error ? errors : NULL, n, 1, group_labels, NULL) < 0 ? -1 : 0;
        goto done;
    }
    int n_groups = 0;
    for (int i = 0; i < n; i++)
        if (n_groups == 0 || r->x[order[i]] != xs[n_groups - 1]) xs[n_groups++] = r->x[order[i]];
    const figure_ctx *f = p->fig;
    int n_series = 0, *series_key = malloc(sizeof *series_key * (size_t)(f->n_keys > 0 ? f->n_keys : 1));
    series_labels = calloc((size_t)(f->n_keys > 0 ? f->n_keys : 1), sizeof *series_labels);
    if (!series_key || !series_labels) {
        free(series_key);
        pl_fail("out of memory");
        goto done;
    }
    for (int k = 0; k < f->n_keys; k++)
        if (f->key_nonzero[k]) series_key[n_series] = k, series_labels[n_series++] = display_name(p, f->keys[k]);
    values = malloc(sizeof *values * (size_t)(n_series * n_groups + 1));
    errors = malloc(sizeof *errors * (size_t)(n_series * n_groups + 1));
    if (!values || !errors) {
        free(series_key);
        pl_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n_series * n_groups; i++) values[i] = NAN, errors[i] = NAN;
    for (int i = 0; i < n; i++) {
        int s = 0, g = 0;
        while (s < n_series && strcmp(f->keys[series_key[s]], r->color_key[i]) != 0) s++;
        while (g < n_groups && xs[g] != r->x[i]) g++;
        if (s == n_series || g == n_groups || r->baseline[i]) continue;
        values[s * n_groups + g] = r->y[i];
        errors[s * n_groups + g] = isfinite(r->hi[i]) ? r->hi[i] - r->y[i] : NAN;
        any_error |= isfinite(r->hi[i]);
    }
    free(series_key);
    for (int g = 0; g < n_groups; g++) {
        snprintf(names[g], sizeof names[g], "%g", xs[g]);
        group_labels[g] = names[g];
    }
    if (decorate(ax, p, NULL, "count", 0)) goto done;
    rc = pl_axes_bars(ax, values, any_error ? errors : NULL, n_groups, n_series, group_labels, series_labels) < 0 ? -1 : 0;
done:
    free(xs), free(values), free(errors), free(group_labels), free(series_labels), free(names), free(order);
    return rc;
}

static int render_roc(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    const pl_panel_rows *r = &p->rows;
    int start = 0, end = 0;
    while (next_series(r, &start, &end)) {
        // Area under the curve by the trapezoid rule, shown in the legend.
        double auc = 0;
        for (int i = start + 1; i < end; i++) auc += (r->x[i] - r->x[i - 1]) * (r->y[i] + r->y[i - 1]) / 2;
        char label[192];
        const char *name = display_name(p, r->label[start]);
        snprintf(label, sizeof label, "%s%sAUC %.3f%s", name, name[0] ? " (" : "", auc, name[0] ? ")" : "");
        int idx = pl_axes_roc(ax, r->x + start, r->y + start, end - start, label);
        pl_rgb c = pl_panel_color(p, r->color_key[start]);
        if (idx < 0 || pl_axes_series_style(ax, idx, &c, r->baseline[start] > 0, 0) < 0) return -1;
    }
    return decorate(ax, p, NULL, NULL, 0);
}

static int render_reliability(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    (void)v;
    const pl_panel_rows *r = &p->rows;
    int start = 0, end = 0;
    while (next_series(r, &start, &end)) {
        int64_t n = end - start, *counts = malloc(sizeof *counts * (size_t)n);
        if (!counts) return pl_fail("out of memory");
        int have_counts = 0;
        for (int64_t i = 0; i < n; i++) {
            double c = r->lo[start + i];
            counts[i] = isfinite(c) ? (int64_t)llround(c) : 0;
            have_counts |= isfinite(c);
        }
        int idx = pl_axes_reliability(ax, r->x + start, r->y + start, have_counts ? counts : NULL, n,
                                      r->label[start][0] ? display_name(p, r->label[start]) : NULL);
        free(counts);
        pl_rgb c = pl_panel_color(p, r->color_key[start]);
        if (idx < 0 || pl_axes_series_style(ax, idx, &c, 0, 1) < 0) return -1;
    }
    return decorate(ax, p, NULL, NULL, 0);
}

// Strings of a JSON array (borrowed from it) into out[n] where present; returns 1 if any.
static int json_strings(json_t *arr, const char **out, int n) {
    if (!json_is_array(arr)) return 0;
    int any = 0;
    for (int i = 0; i < n && (size_t)i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, (size_t)i);
        if (json_is_string(s)) out[i] = json_string_value(s), any = 1;
    }
    return any;
}

// Heatmap of the matrix named by "matrix" (default: the analysis's first). Row and column labels
// come from "row_labels" / "col_labels"; without "col_labels", rows of the analysis (series at
// x = column) name the columns.
static int render_matrix(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p) {
    const pl_vanalysis *a = p->fig->a;
    if (a->n_matrices == 0) return render_lines(ax, v, p);
    const char *matrix = pl_panel_string(p, "matrix", a->matrix_names[0]);
    float *data;
    int n_rows, n_cols;
    if (pl_vstore_analysis_matrix(v, a->name, matrix, &data, &n_rows, &n_cols) != 0) return -1;
    const char **col_labels = calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof *col_labels);
    const char **row_labels = calloc(n_rows > 0 ? (size_t)n_rows : 1, sizeof *row_labels);
    char (*names)[16] = malloc(sizeof *names * (size_t)(n_rows > 0 ? n_rows : 1)), (*numbers)[16] = NULL;
    int rc = -1, lens = strcmp(p->kind, "logit_lens") == 0;
    if (!col_labels || !row_labels || !names) {
        pl_fail("out of memory");
        goto done;
    }
    int have_cols = json_strings(panel_value(p, "col_labels"), col_labels, n_cols);
    for (int i = 0; !have_cols && i < a->n_rows; i++) {
        long j = lround(a->x[i]);
        if (isfinite(a->x[i]) && j >= 0 && j < n_cols && !col_labels[j]) col_labels[j] = a->series[i], have_cols = 1;
    }
    for (int j = 0; have_cols && j < n_cols; j++)
        if (!col_labels[j]) col_labels[j] = "";
    int have_rows = json_strings(panel_value(p, "row_labels"), row_labels, n_rows);
    for (int i = 0; i < n_rows; i++)
        if (!row_labels[i]) {
            snprintf(names[i], sizeof names[i], lens ? "L%d" : "%d", i);
            row_labels[i] = names[i];
        }
    (void)have_rows;
    if (pl_panel_number(p, "transpose", 0) != 0) {
        // Show the matrix turned: its columns (e.g. token positions) as rows, labels readable.
        float *t = malloc(sizeof *t * ((size_t)n_rows * (size_t)n_cols + 1));
        if (!t) {
            pl_fail("out of memory");
            goto done;
        }
        for (int i = 0; i < n_rows; i++)
            for (int j = 0; j < n_cols; j++) t[(size_t)j * n_rows + i] = data[(size_t)i * n_cols + j];
        free(data);
        data = t;
        const char **swap = row_labels;
        row_labels = col_labels, col_labels = swap;
        int tmp = n_rows;
        n_rows = n_cols, n_cols = tmp;
        if (!have_cols) {
            // The former columns had no labels: number them.
            const char **grown = realloc(row_labels, sizeof *grown * (size_t)(n_rows > 0 ? n_rows : 1));
            if (grown) row_labels = grown;
            numbers = malloc(sizeof *numbers * (size_t)(n_rows > 0 ? n_rows : 1));
            if (!grown || !numbers) {
                pl_fail("out of memory");
                goto done;
            }
            for (int i = 0; i < n_rows; i++) snprintf(numbers[i], sizeof numbers[i], "%d", i), row_labels[i] = numbers[i];
        }
        have_cols = 1;  // the former row labels always exist
    }
    const char *cmap = pl_panel_string(p, "colormap", "viridis");
    pl_axes_set_colormap(ax, strcmp(cmap, "diverging") == 0 ? PL_CMAP_DIVERGING : PL_CMAP_VIRIDIS,
                         pl_panel_number(p, "v_min", lens ? 0.0 : NAN), pl_panel_number(p, "v_max", lens ? 1.0 : NAN));
    int turned = pl_panel_number(p, "transpose", 0) != 0;
    const char *xl = pl_panel_string(p, "x_label", lens != turned ? "position" : "column");
    const char *yl = pl_panel_string(p, "y_label", lens ? (turned ? "position" : "layer") : "row");
    if ((p->show_xlabel && pl_axes_set_xlabel(ax, xl)) || (p->show_ylabel && pl_axes_set_ylabel(ax, yl))) goto done;
    rc = pl_axes_heatmap(ax, data, n_rows, n_cols, row_labels, have_cols ? col_labels : NULL,
                         pl_panel_string(p, "colorbar_label", matrix)) < 0
             ? -1
             : 0;
done:
    free(data);
    free(col_labels);
    free(row_labels);
    free(names);
    free(numbers);
    return rc;
}

static const pl_analysis_renderer renderers[] = {
    {"by_layer", "metric by layer with confidence bands", render_by_layer},
    {"flip_rate", "steering flip-rate curves", render_flip_rate},
    {"lines", "lines with confidence bands", render_lines},
    {"counts", "bar chart of counts", render_counts},
    {"roc", "ROC curves", render_roc},
    {"reliability", "reliability diagram", render_reliability},
    {"logit_lens", "logit-lens heatmap (layer × position)", render_matrix},
    {"matrix", "heatmap of a matrix", render_matrix},
};
static const pl_analysis_renderer fallback_renderer = {"", "lines", render_lines};

const pl_analysis_renderer *pl_analysis_renderer_find(const char *kind) {
    for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++)
        if (kind && strcmp(kind, renderers[i].kind) == 0) return &renderers[i];
    return &fallback_renderer;
}

static int is_matrix_renderer(const pl_analysis_renderer *r) { return r->build == render_matrix; }

// ---- panels ----

// Where the part of series s after its panel prefix of `depth` components starts (NULL if s has
// no more components than that).
static const char *after_prefix(const char *s, int depth) {
    for (int d = 0; d < depth && s; d++) {
        s = strchr(s, '/');
        if (s) s++;
    }
    return s;
}

// Does series `s` belong to panel prefix `facet` ("facet/..."; "" takes the series without '/')?
static const char *strip_facet(const char *s, const char *facet) {
    if (!facet) return s;
    if (!facet[0]) return strchr(s, '/') ? NULL : s;
    size_t n = strlen(facet);
    return strncmp(s, facet, n) == 0 && s[n] == '/' ? s + n + 1 : NULL;
}

static void panel_free(pl_analysis_panel *p) {
    for (int i = 0; i < p->rows.n; i++) free(p->label[i]), free(p->key[i]);
    free(p->label), free(p->key), free(p->baseline), free(p->x), free(p->y), free(p->lo), free(p->hi);
    memset(p, 0, sizeof *p);
}

// Fill panel p with the selected rows whose series lies under `facet` (NULL: any) and matches the
// panel's own "series" glob, splitting off baseline suffixes.
static int panel_fill(pl_analysis_panel *p, const figure_ctx *f, const int *selected, const char *facet) {
    const pl_vanalysis *a = f->a;
    size_t cap = a->n_rows > 0 ? (size_t)a->n_rows : 1;
    p->label = calloc(cap, sizeof *p->label), p->key = calloc(cap, sizeof *p->key);
    p->baseline = calloc(cap, sizeof *p->baseline);
    p->x = malloc(sizeof(double) * cap), p->y = malloc(sizeof(double) * cap);
    p->lo = malloc(sizeof(double) * cap), p->hi = malloc(sizeof(double) * cap);
    if (!p->label || !p->key || !p->baseline || !p->x || !p->y || !p->lo || !p->hi) return pl_fail("out of memory");
    const char *glob = p->spec && json_is_string(json_object_get(p->spec, "series"))
                           ? json_string_value(json_object_get(p->spec, "series"))
                           : NULL;
    json_t *baselines = json_object_get(f->params, "baselines");
    int n = 0;
    for (int i = 0; i < a->n_rows; i++) {
        const char *s = selected[i] ? strip_facet(a->series[i], facet) : NULL;
        if (!s || (glob && fnmatch(glob, a->series[i], 0) != 0)) continue;
        p->label[n] = strdup(s);
        const char *slash = strrchr(s, '/');
        int base = 0;
        for (size_t k = 0; slash && json_is_array(baselines) && k < json_array_size(baselines); k++) {
            json_t *b = json_array_get(baselines, k);
            if (json_is_string(b) && strcmp(slash + 1, json_string_value(b)) == 0) base = (int)k + 1;
        }
        p->key[n] = base ? strndup(s, (size_t)(slash - s)) : strdup(s);
        if (!p->label[n] || !p->key[n]) {
            free(p->label[n]), free(p->key[n]);
            return pl_fail("out of memory");
        }
        p->baseline[n] = base;
        p->x[n] = a->x[i], p->y[n] = a->y[i], p->lo[n] = a->lo[i], p->hi[n] = a->hi[i];
        p->rows.n = ++n;
    }
    p->rows = (pl_panel_rows){n, (const char *const *)p->label, (const char *const *)p->key, p->baseline, p->x, p->y,
                              p->lo, p->hi, a->name};
    return 0;
}

// Panel prefixes of the selected rows: "facet_order" first, then in order of appearance.
static int facets_of(char facets[][64], int max, const figure_ctx *f, const int *selected) {
    int n = 0;
    json_t *order = json_object_get(f->params, "facet_order");
    for (size_t k = 0; json_is_array(order) && k < json_array_size(order) && n < max; k++) {
        json_t *o = json_array_get(order, k);
        if (!json_is_string(o)) continue;
        for (int i = 0; i < f->a->n_rows; i++)
            if (selected[i] && strip_facet(f->a->series[i], json_string_value(o))) {
                snprintf(facets[n++], 64, "%s", json_string_value(o));
                break;
            }
    }
    int depth = (int)json_integer_value(json_object_get(f->params, "facet_depth"));
    if (depth < 1) depth = 1;
    for (int i = 0; i < f->a->n_rows && n < max; i++) {
        if (!selected[i]) continue;
        const char *s = f->a->series[i], *rest = after_prefix(s, depth);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%.*s", rest ? (int)(rest - 1 - s) : 0, s);
        int seen = 0;
        for (int j = 0; j < n; j++) seen |= strcmp(facets[j], prefix) == 0;
        if (!seen) snprintf(facets[n++], 64, "%s", prefix);
    }
    return n;
}

// Colour keys over all panels: series first (in panel order), then baselines whose parent is absent.
static int collect_keys(figure_ctx *f, const pl_analysis_panel *panels, int n_panels) {
    int cap = 1;
    for (int p = 0; p < n_panels; p++) cap += panels[p].rows.n;
    f->keys = calloc((size_t)cap, sizeof *f->keys);
    f->key_nonzero = calloc((size_t)cap, sizeof *f->key_nonzero);
    if (!f->keys || !f->key_nonzero) return pl_fail("out of memory");
    json_t *order = json_object_get(f->params, "series_order");  // keys to put first, when present
    for (size_t j = 0; json_is_array(order) && j < json_array_size(order); j++) {
        const char *want = json_string_value(json_array_get(order, j));
        for (int p = 0; want && p < n_panels && key_index(f, want) < 0; p++)
            for (int i = 0; i < panels[p].rows.n; i++)
                if (strcmp(panels[p].key[i], want) == 0) {
                    f->keys[f->n_keys++] = panels[p].key[i];
                    break;
                }
    }
    for (int pass = 0; pass < 2; pass++)
        for (int p = 0; p < n_panels; p++)
            for (int i = 0; i < panels[p].rows.n; i++) {
                const char *key = panels[p].key[i];
                int k = key_index(f, key);
                if (k < 0 && (pass == 1 || panels[p].baseline[i] == 0)) f->keys[k = f->n_keys++] = (char *)key;
                if (k >= 0 && isfinite(panels[p].y[i]) && panels[p].y[i] != 0) f->key_nonzero[k] = 1;
            }
    return 0;
}

// How much of panel p's data lies in its emptiest top or bottom corner (a box of 45% × 40% of
// its x range and of the y range [ylo, yhi]): the panel with the least carries the shared legend.
static int corner_crowding(const pl_analysis_panel *p, double ylo, double yhi) {
    const pl_panel_rows *r = &p->rows;
    double x0 = INFINITY, x1 = -INFINITY;
    for (int i = 0; i < r->n; i++)
        if (isfinite(r->x[i])) x0 = fmin(x0, r->x[i]), x1 = fmax(x1, r->x[i]);
    if (!(x0 < x1) || !(ylo < yhi)) return r->n;
    int best = r->n * 3 + 1;
    for (int c = 0; c < 4; c++) {
        double bx0 = c & 1 ? x1 - 0.45 * (x1 - x0) : x0, by0 = c & 2 ? ylo : yhi - 0.4 * (yhi - ylo);
        int count = 0;
        for (int i = 0; i < r->n; i++) {
            double v[3] = {r->y[i], r->lo[i], r->hi[i]};
            for (int j = 0; j < 3; j++)
                count += isfinite(v[j]) && r->x[i] >= bx0 && r->x[i] <= bx0 + 0.45 * (x1 - x0) && v[j] >= by0 &&
                         v[j] <= by0 + 0.4 * (yhi - ylo);
        }
        if (count < best) best = count;
    }
    return best;
}

// Rows × columns for n panels on a landscape page.
static void grid_for(int n, int *rows, int *cols) {
    static const int r[17] = {1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4};
    static const int c[17] = {1, 1, 2, 3, 2, 3, 3, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4};
    *rows = r[n], *cols = c[n];
}

static void list_series(char *out, size_t size, const pl_vanalysis *a) {
    size_t len = 0;
    out[0] = '\0';
    int shown = 0;
    for (int i = 0; i < a->n_rows && len + 4 < size; i++) {
        if (i > 0 && strcmp(a->series[i], a->series[i - 1]) == 0) continue;
        if (shown++ == 12) {
            snprintf(out + len, size - len, ", ...");
            return;
        }
        len += (size_t)snprintf(out + len, size - len, "%s%s", shown > 1 ? ", " : "", a->series[i]);
        if (len >= size) return;
    }
}

int pl_figures_analysis_series(pl_figure **out, pl_vstore *v, const char *name, const char *series, pl_theme theme) {
    *out = NULL;
    pl_vanalysis a;
    if (pl_vstore_analysis(v, name, &a) != 0) return -1;
    figure_ctx f = {.a = &a, .theme = theme, .ylo = NAN, .yhi = NAN};
    f.params = json_loads(a.params_json, 0, NULL);
    if (!json_is_object(f.params)) {  // bad params only lose the drawing hints
        json_decref(f.params);
        f.params = json_object();
    }
    pl_analysis_panel panels[MAX_PANELS];
    memset(panels, 0, sizeof panels);
    char facets[MAX_PANELS][64];  // panel prefixes, pointed to by the panels
    int n_panels = 0, rc = -1;
    pl_figure *fig = NULL;
    int *selected = malloc(sizeof *selected * (size_t)(a.n_rows > 0 ? a.n_rows : 1));
    if (!f.params || !selected) {
        pl_fail("out of memory");
        goto done;
    }
    // 1. Rows: the glob given, else the analysis's default selection, else all.
    // "hide_series" drops breakdown rows (e.g. the per-difficulty cells "max@3/...") from the default.
    const char *glob = series ? series : json_string_value(json_object_get(f.params, "default_series"));
    const char *hide = series ? NULL : json_string_value(json_object_get(f.params, "hide_series"));
    int n_selected = 0;
    for (int i = 0; i < a.n_rows; i++)
        n_selected += selected[i] = (!glob || fnmatch(glob, a.series[i], 0) == 0) && !(hide && fnmatch(hide, a.series[i], 0) == 0);
    if (series && n_selected == 0) {
        char list[600];
        list_series(list, sizeof list, &a);
        pl_fail("%s: no series of analysis %s match '%s' (series: %s)", pl_vstore_path(v), name, series,
                list[0] ? list : "none");
        goto done;
    }
    // 2. Panels.
    const pl_analysis_renderer *main_r = pl_analysis_renderer_find(a.kind);
    if (main_r == &fallback_renderer && a.n_rows == 0 && a.n_matrices > 0) main_r = pl_analysis_renderer_find("matrix");
    json_t *specs = json_object_get(f.params, "panels");
    const char *facet_mode = json_string_value(json_object_get(f.params, "facet"));
    if (json_is_array(specs) && json_array_size(specs) > 0) {
        for (size_t k = 0; k < json_array_size(specs) && n_panels < MAX_PANELS; k++) {
            json_t *spec = json_array_get(specs, k);
            if (!json_is_object(spec)) continue;
            pl_analysis_panel *p = &panels[n_panels++];
            p->fig = &f, p->spec = spec, p->facet = "";
            const char *kind = json_string_value(json_object_get(spec, "kind"));
            p->kind = kind ? kind : a.kind;
            if (panel_fill(p, &f, selected, NULL)) goto done;
            // A panel with nothing to draw is left out (e.g. its series were filtered away).
            if (p->rows.n == 0 && !(is_matrix_renderer(pl_analysis_renderer_find(p->kind)) && a.n_matrices > 0))
                panel_free(p), n_panels--;
        }
    } else if (facet_mode && strcmp(facet_mode, "prefix") == 0) {
        int n_facets = facets_of(facets, MAX_PANELS, &f, selected);
        for (int k = 0; k < n_facets; k++) {
            pl_analysis_panel *p = &panels[n_panels++];
            p->fig = &f, p->kind = a.kind, p->facet = facets[k];
            if (panel_fill(p, &f, selected, facets[k])) goto done;
        }
    }
    if (n_panels == 0) {
        n_panels = 1;
        panels[0].fig = &f, panels[0].kind = main_r->kind[0] ? main_r->kind : a.kind, panels[0].facet = "";
        if (panel_fill(&panels[0], &f, selected, NULL)) goto done;
    }
    if (collect_keys(&f, panels, n_panels)) goto done;
    // Shared y range of the line panels (fixed limits in the params win in decorate()).
    for (int k = 0; k < n_panels; k++) {
        const pl_analysis_renderer *r = pl_analysis_renderer_find(panels[k].kind);
        if (is_matrix_renderer(r) || r->build == render_counts || r->build == render_roc || r->build == render_reliability)
            continue;
        for (int i = 0; i < panels[k].rows.n; i++) {
            double vals[3] = {panels[k].y[i], panels[k].baseline[i] ? NAN : panels[k].lo[i],
                              panels[k].baseline[i] ? NAN : panels[k].hi[i]};
            for (int j = 0; j < 3; j++)
                if (isfinite(vals[j])) {
                    f.ylo = isfinite(f.ylo) ? fmin(f.ylo, vals[j]) : vals[j];
                    f.yhi = isfinite(f.yhi) ? fmax(f.yhi, vals[j]) : vals[j];
                }
        }
    }
    if (n_panels < 2 && !json_is_array(specs)) f.ylo = f.yhi = NAN;  // one panel: automatic limits
    // 3. Layout and drawing.
    int rows, cols;
    grid_for(n_panels, &rows, &cols);
    fig = pl_figure_new(rows, cols);
    if (!fig) goto done;
    pl_figure_set_theme(fig, theme);
    const char *title = json_string_value(json_object_get(f.params, "title"));
    json_t *panel_titles = json_object_get(f.params, "panel_titles");
    int shared_legend = n_panels > 1 && !json_is_array(specs);
    if (n_panels > 1 && pl_figure_set_title(fig, title ? title : a.name)) goto done;
    int legend_panel = 0;
    if (shared_legend && isfinite(f.ylo)) {
        double lo = pl_panel_number(&panels[0], "y_min", f.ylo), hi = pl_panel_number(&panels[0], "y_max", f.yhi);
        int best = -1;
        for (int k = 0; k < n_panels; k++) {
            int c = corner_crowding(&panels[k], lo, hi);
            if (best < 0 || c < best) best = c, legend_panel = k;
        }
    }
    for (int k = 0; k < n_panels; k++) {
        pl_analysis_panel *p = &panels[k];
        int row = k / cols, col = k % cols;
        pl_axes *ax = pl_figure_axes(fig, row, col);
        // Facets share their axes: labels on the outer panels, one legend.
        p->show_xlabel = !shared_legend || k + cols >= n_panels;
        p->show_ylabel = !shared_legend || col == 0;
        p->show_legend = !shared_legend || k == legend_panel;
        const char *pt = NULL;
        if (n_panels == 1) pt = title ? title : a.name;
        else if (p->spec) pt = json_string_value(json_object_get(p->spec, "title"));
        if (!pt && n_panels > 1) {
            json_t *t = json_object_get(panel_titles, p->facet);
            pt = json_is_string(t) ? json_string_value(t) : p->facet;
        }
        if (pt && pt[0] && pl_axes_set_title(ax, pt)) goto done;
        if (pl_analysis_renderer_find(p->kind)->build(ax, v, p) != 0) goto done;
    }
    *out = fig;
    fig = NULL;
    rc = 0;
done:
    pl_figure_free(fig);
    for (int k = 0; k < n_panels; k++) panel_free(&panels[k]);
    free(f.keys);
    free(f.key_nonzero);
    free(selected);
    json_decref(f.params);
    pl_vanalysis_free(&a);
    return rc;
}

int pl_figures_analysis(pl_figure **out, pl_vstore *v, const char *name, pl_theme theme) {
    return pl_figures_analysis_series(out, v, name, NULL, theme);
}
