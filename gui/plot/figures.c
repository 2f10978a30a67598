// Figures from a trace store: attention maps, token strips and one figure per analysis.
#include "gui/plot/figures.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

pl_figure_opts pl_figure_opts_default(void) {
    return (pl_figure_opts){.run = 0, .layer = 0, .head = 0, .score = NULL, .token_lo = 0, .token_count = 0,
                            .thumbnail_cells = 96, .theme = PL_THEME_LIGHT};
}

// ---- analysis renderers ----

// Rows are ordered by series: [*start, *end) is the next series' run of rows.
static int next_series(const pl_vanalysis *a, int *start, int *end) {
    if (*end >= a->n_rows) return 0;
    *start = *end;
    int e = *start + 1;
    while (e < a->n_rows && strcmp(a->series[e], a->series[*start]) == 0) e++;
    *end = e;
    return 1;
}

static int has_interval(const pl_vanalysis *a, int start, int end) {
    for (int i = start; i < end; i++)
        if (isfinite(a->lo[i]) && isfinite(a->hi[i])) return 1;
    return 0;
}

static const char *metric_label(const char *name) {
    if (strstr(name, "auroc") || strstr(name, "auc")) return "AUROC";
    if (strstr(name, "acc")) return "accuracy";
    if (strstr(name, "r2")) return "R²";
    return "value";
}

static int lines_by_series(pl_axes *ax, const pl_vanalysis *a, int bands) {
    int start = 0, end = 0;
    while (next_series(a, &start, &end)) {
        int64_t n = end - start;
        const char *label = a->series[start][0] ? a->series[start] : NULL;
        int idx = bands && has_interval(a, start, end)
                      ? pl_axes_line_band(ax, a->x + start, a->y + start, a->lo + start, a->hi + start, n, label)
                      : pl_axes_line(ax, a->x + start, a->y + start, n, label);
        if (idx < 0 || pl_axes_series_style(ax, idx, NULL, 0, n <= 40) < 0) return -1;
    }
    return 0;
}

static int in_unit_range(const pl_vanalysis *a) {
    for (int i = 0; i < a->n_rows; i++)
        if (isfinite(a->y[i]) && (a->y[i] < 0 || a->y[i] > 1)) return 0;
    return a->n_rows > 0;
}

static int render_by_layer(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    const char *metric = metric_label(a->name);
    if (pl_axes_set_xlabel(ax, "layer") || pl_axes_set_ylabel(ax, metric)) return -1;
    if (strcmp(metric, "AUROC") == 0 || strcmp(metric, "accuracy") == 0) {
        if (pl_axes_add_hline(ax, 0.5) < 0) return -1;  // chance for a balanced binary probe
    }
    if (in_unit_range(a)) pl_axes_set_ylim(ax, NAN, 1.0);
    return lines_by_series(ax, a, 1);
}

static int render_flip_rate(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    if (pl_axes_set_xlabel(ax, "steering strength α") || pl_axes_set_ylabel(ax, "answer flip rate")) return -1;
    pl_axes_set_ylim(ax, 0.0, NAN);
    return lines_by_series(ax, a, 1);
}

static int render_lines(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    if (pl_axes_set_xlabel(ax, "x") || pl_axes_set_ylabel(ax, metric_label(a->name))) return -1;
    return lines_by_series(ax, a, 1);
}

static int render_counts(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    if (a->n_rows == 0) return 0;
    double *errors = malloc(sizeof *errors * (size_t)a->n_rows);
    if (!errors) return pl_fail("out of memory");
    int any_error = 0;
    for (int i = 0; i < a->n_rows; i++) {
        errors[i] = isfinite(a->hi[i]) ? a->hi[i] - a->y[i] : NAN;
        any_error |= isfinite(errors[i]);
    }
    // Bars in x order (rows come ordered by series name).
    int *order = malloc(sizeof *order * (size_t)a->n_rows);
    double *values = malloc(sizeof *values * (size_t)a->n_rows), *errs = malloc(sizeof *errs * (size_t)a->n_rows);
    const char **labels = malloc(sizeof *labels * (size_t)a->n_rows);
    int rc = -1;
    if (!order || !values || !errs || !labels) {
        pl_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < a->n_rows; i++) order[i] = i;
    for (int i = 1; i < a->n_rows; i++)
        for (int j = i; j > 0 && a->x[order[j]] < a->x[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < a->n_rows; i++) {
        values[i] = a->y[order[i]];
        errs[i] = errors[order[i]];
        labels[i] = a->series[order[i]];
    }
    pl_axes_set_legend(ax, 0);
    if (pl_axes_set_ylabel(ax, "count")) goto done;
    rc = pl_axes_bars(ax, values, any_error ? errs : NULL, a->n_rows, 1, labels, NULL) < 0 ? -1 : 0;
done:
    free(errors);
    free(order);
    free(values);
    free(errs);
    free(labels);
    return rc;
}

static int render_roc(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    int start = 0, end = 0;
    while (next_series(a, &start, &end)) {
        // Area under the curve by the trapezoid rule, shown in the legend.
        double auc = 0;
        for (int i = start + 1; i < end; i++) auc += (a->x[i] - a->x[i - 1]) * (a->y[i] + a->y[i - 1]) / 2;
        char label[128];
        snprintf(label, sizeof label, "%s (AUC %.3f)", a->series[start], auc);
        if (pl_axes_roc(ax, a->x + start, a->y + start, end - start, label) < 0) return -1;
    }
    return 0;
}

static int render_reliability(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    int start = 0, end = 0;
    while (next_series(a, &start, &end)) {
        int64_t n = end - start, *counts = malloc(sizeof *counts * (size_t)n);
        if (!counts) return pl_fail("out of memory");
        int have_counts = 0;
        for (int64_t i = 0; i < n; i++) {
            double c = a->lo[start + i];
            counts[i] = isfinite(c) ? (int64_t)llround(c) : 0;
            have_counts |= isfinite(c);
        }
        int idx = pl_axes_reliability(ax, a->x + start, a->y + start, have_counts ? counts : NULL, n,
                                      a->series[start][0] ? a->series[start] : NULL);
        free(counts);
        if (idx < 0) return -1;
    }
    return 0;
}

// A heatmap of the analysis's first matrix; rows of the analysis (series at x = column) label the columns.
static int render_matrix(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a) {
    if (a->n_matrices == 0) return render_lines(ax, v, a);
    float *data;
    int n_rows, n_cols;
    if (pl_vstore_analysis_matrix(v, a->name, a->matrix_names[0], &data, &n_rows, &n_cols) != 0) return -1;
    char **col_labels = calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof *col_labels);
    char **row_labels = calloc(n_rows > 0 ? (size_t)n_rows : 1, sizeof *row_labels);
    int have_cols = 0, rc = -1;
    if (!col_labels || !row_labels) {
        pl_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < a->n_rows; i++) {
        long j = lround(a->x[i]);
        if (isfinite(a->x[i]) && j >= 0 && j < n_cols && !col_labels[j]) col_labels[j] = a->series[i], have_cols = 1;
    }
    for (int j = 0; have_cols && j < n_cols; j++)
        if (!col_labels[j]) col_labels[j] = "";
    int lens = strcmp(a->kind, "logit_lens") == 0;
    char (*names)[16] = malloc(sizeof *names * (size_t)(n_rows > 0 ? n_rows : 1));
    if (!names) {
        pl_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n_rows; i++) {
        snprintf(names[i], sizeof names[i], lens ? "L%d" : "%d", i);
        row_labels[i] = names[i];
    }
    pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, lens ? 0.0 : NAN, lens ? 1.0 : NAN);
    if (pl_axes_set_xlabel(ax, lens ? "position" : "column") || pl_axes_set_ylabel(ax, lens ? "layer" : "row")) goto done_names;
    rc = pl_axes_heatmap(ax, data, n_rows, n_cols, (const char *const *)row_labels,
                         have_cols ? (const char *const *)col_labels : NULL, a->matrix_names[0]) < 0 ? -1 : 0;
done_names:
    free(names);
done:
    free(data);
    free(col_labels);
    free(row_labels);
    return rc;
}

static const pl_analysis_renderer renderers[] = {
    {"by_layer", "metric by layer with confidence bands", render_by_layer},
    {"flip_rate", "steering flip-rate curves", render_flip_rate},
    {"counts", "bar chart of counts", render_counts},
    {"roc", "ROC curves", render_roc},
    {"reliability", "reliability diagram", render_reliability},
    {"logit_lens", "logit-lens table (layer × position)", render_matrix},
    {"matrix", "heatmap of a matrix", render_matrix},
};
static const pl_analysis_renderer fallback_renderer = {"", "lines", render_lines};

const pl_analysis_renderer *pl_analysis_renderer_find(const char *kind) {
    for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++)
        if (kind && strcmp(kind, renderers[i].kind) == 0) return &renderers[i];
    return &fallback_renderer;
}

int pl_figures_analysis(pl_figure **out, pl_vstore *v, const char *name, pl_theme theme) {
    *out = NULL;
    pl_vanalysis a;
    if (pl_vstore_analysis(v, name, &a) != 0) return -1;
    pl_figure *fig = pl_figure_new(1, 1);
    int rc = -1;
    if (!fig) goto done;
    pl_figure_set_theme(fig, theme);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    const pl_analysis_renderer *r = pl_analysis_renderer_find(a.kind);
    if (r == &fallback_renderer && a.n_rows == 0 && a.n_matrices > 0) r = &renderers[6];
    if (pl_axes_set_title(ax, a.name) || r->build(ax, v, &a) != 0) goto done;
    *out = fig;
    fig = NULL;
    rc = 0;
done:
    pl_figure_free(fig);
    pl_vanalysis_free(&a);
    return rc;
}

// ---- runs, tokens, attention ----

static int resolve_run(pl_vstore *v, int64_t run, pl_vrun *info) {
    if (run <= 0) {
        int64_t *ids, n, nc, ni;
        if (pl_vstore_run_ids(v, NULL, &ids, &n, &nc, &ni) != 0) return -1;
        run = n > 0 ? ids[0] : 0;
        free(ids);
        if (n == 0) return pl_fail("%s: the store has no runs yet (record some with probelab trace)", pl_vstore_path(v));
    }
    return pl_vstore_get_run(v, run, info);
}

static int default_score(pl_vstore *v, char *out, size_t size) {
    pl_vscore_source *src;
    int n;
    if (pl_vstore_score_sources(v, &src, &n) != 0) return -1;
    snprintf(out, size, "%s", n > 0 ? src[0].name : "logprob");
    free(src);
    return 0;
}

int pl_figures_tokens(pl_figure **out, pl_vstore *v, int64_t run, const char *score, int64_t lo, int64_t count,
                      pl_theme theme) {
    *out = NULL;
    pl_vrun info;
    if (resolve_run(v, run, &info) != 0) return -1;
    char score_name[96];
    if (!score || !score[0]) {
        if (default_score(v, score_name, sizeof score_name) != 0) return -1;
    } else {
        snprintf(score_name, sizeof score_name, "%s", score);
    }
    pl_vscore_source *src;
    int n_src, diverging = 1;
    char title[128];
    snprintf(title, sizeof title, "%s", score_name);
    if (pl_vstore_score_sources(v, &src, &n_src) != 0) return -1;
    for (int i = 0; i < n_src; i++)
        if (strcmp(src[i].name, score_name) == 0) diverging = src[i].diverging, snprintf(title, sizeof title, "%s", src[i].title);
    free(src);

    pl_vtoken *tok;
    int n_tok;
    if (pl_vstore_tokens(v, info.id, &tok, &n_tok) != 0) return -1;
    float *scores = malloc(sizeof *scores * (size_t)(n_tok > 0 ? n_tok : 1));
    const char **pieces = malloc(sizeof *pieces * (size_t)(n_tok > 0 ? n_tok : 1));
    int *segments = malloc(sizeof *segments * (size_t)(n_tok > 0 ? n_tok : 1));
    pl_figure *fig = NULL;
    int rc = -1;
    if (!scores || !pieces || !segments) {
        pl_fail("out of memory");
        goto done;
    }
    if (pl_vstore_token_scores(v, score_name, info.id, scores, n_tok) != 0) goto done;
    if (lo < 0) lo = 0;
    if (lo > n_tok) lo = n_tok;
    if (count <= 0) count = 2048;
    if (count > n_tok - lo) count = n_tok - lo;
    // The colour range covers the whole run, so every window of it uses the same colours.
    double vmin = INFINITY, vmax = -INFINITY;
    for (int i = 0; i < n_tok; i++)
        if (isfinite(scores[i])) vmin = fmin(vmin, scores[i]), vmax = fmax(vmax, scores[i]);
    if (!(vmin <= vmax)) vmin = 0, vmax = 1;
    if (diverging) {
        double m = fmax(fmax(fabs(vmin), fabs(vmax)), 1e-6);
        vmin = -m, vmax = m;
    } else if (vmax - vmin < 1e-6) {
        vmax = vmin + 1;
    }
    for (int i = 0; i < n_tok; i++) pieces[i] = tok[i].piece, segments[i] = tok[i].segment;
    fig = pl_figure_new(1, 1);
    if (!fig) goto done;
    pl_figure_set_theme(fig, theme);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    char axes_title[320];
    if (count < n_tok)
        snprintf(axes_title, sizeof axes_title, "run %lld (%s) · tokens %lld–%lld of %d · %s", (long long)info.id, info.task,
                 (long long)lo, (long long)(lo + count - 1), n_tok, title);
    else
        snprintf(axes_title, sizeof axes_title, "run %lld (%s) · %d tokens · %s", (long long)info.id, info.task, n_tok, title);
    pl_axes_set_colormap(ax, diverging ? PL_CMAP_DIVERGING : PL_CMAP_VIRIDIS, vmin, vmax);
    if (pl_axes_set_title(ax, axes_title) ||
        pl_axes_tokens(ax, (const char *const *)pieces + lo, scores + lo, segments + lo, count) < 0)
        goto done;
    *out = fig;
    fig = NULL;
    rc = 0;
done:
    pl_figure_free(fig);
    free(tok);
    free(scores);
    free(pieces);
    free(segments);
    return rc;
}

int pl_figures_pool_attention(float **out, int *m, const float *att, int n, int cells) {
    int size = n < cells ? n : cells;
    if (size < 1) size = 1;
    float *p = malloc(sizeof *p * (size_t)size * (size_t)size);
    double *sum = calloc((size_t)size * (size_t)size, sizeof *sum);
    int *cnt = calloc((size_t)size * (size_t)size, sizeof *cnt);
    if (!p || !sum || !cnt) {
        free(p);
        free(sum);
        free(cnt);
        return pl_fail("out of memory pooling attention");
    }
    for (int q = 0; q < n; q++) {
        int i = (int)((int64_t)q * size / n);
        for (int k = 0; k < n; k++) {
            float x = att[(size_t)q * (size_t)n + (size_t)k];
            if (!isfinite(x)) continue;
            int j = (int)((int64_t)k * size / n);
            sum[(size_t)i * size + j] += x;
            cnt[(size_t)i * size + j]++;
        }
    }
    for (size_t c = 0; c < (size_t)size * (size_t)size; c++) p[c] = cnt[c] ? (float)(sum[c] / cnt[c]) : NAN;
    free(sum);
    free(cnt);
    *out = p;
    *m = size;
    return 0;
}

// Token labels for heatmap axes: the pieces for short runs, positions (NULL) for long ones.
static const char **token_labels(pl_vstore *v, int64_t run, int n, pl_vtoken **tok_out) {
    *tok_out = NULL;
    if (n > 64) return NULL;
    pl_vtoken *tok;
    int n_tok;
    if (pl_vstore_tokens(v, run, &tok, &n_tok) != 0 || n_tok < n) return NULL;
    const char **labels = malloc(sizeof *labels * (size_t)(n > 0 ? n : 1));
    if (!labels) {
        free(tok);
        return NULL;
    }
    // Control characters have no glyph: show newlines as "↵" like the token strip does.
    for (int i = 0; i < n; i++) {
        char *p = tok[i].piece;
        if (strcmp(p, "\n") == 0) snprintf(p, sizeof tok[i].piece, "\xe2\x86\xb5");
        for (; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        labels[i] = tok[i].piece;
    }
    *tok_out = tok;
    return labels;
}

static int build_attention(pl_figure **out, pl_vstore *v, const pl_figure_opts *o) {
    pl_vrun info;
    if (resolve_run(v, o->run, &info) != 0) return -1;
    int n_layers, n_heads;
    if (pl_vstore_attention_shape(v, info.id, &n_layers, &n_heads) != 0) return -1;
    if (n_layers == 0) return pl_fail("%s: run %lld has no attention patterns (record blocks.*.attn.hook_pattern)",
                                      pl_vstore_path(v), (long long)info.id);
    if (o->layer < 0 || o->layer >= n_layers || o->head < 0 || o->head >= n_heads)
        return pl_fail("%s: run %lld has attention for layers 0..%d and heads 0..%d, not layer %d head %d", pl_vstore_path(v),
                       (long long)info.id, n_layers - 1, n_heads - 1, o->layer, o->head);
    float *att;
    int n;
    if (pl_vstore_attention(v, info.id, o->layer, o->head, &att, &n) != 0) return -1;
    pl_vtoken *tok;
    const char **labels = token_labels(v, info.id, n, &tok);
    pl_figure *fig = pl_figure_new(1, 1);
    int rc = -1;
    if (!fig) goto done;
    pl_figure_set_theme(fig, o->theme);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    char title[160];
    snprintf(title, sizeof title, "run %lld · layer %d head %d", (long long)info.id, o->layer, o->head);
    pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, 0.0, NAN);
    if (pl_axes_set_title(ax, title) || pl_axes_set_xlabel(ax, "key") || pl_axes_set_ylabel(ax, "query") ||
        pl_axes_heatmap(ax, att, n, n, labels, labels, "attention") < 0)
        goto done;
    *out = fig;
    fig = NULL;
    rc = 0;
done:
    pl_figure_free(fig);
    free(att);
    free(labels);
    free(tok);
    return rc;
}

static int build_attention_grid(pl_figure **out, pl_vstore *v, const pl_figure_opts *o) {
    pl_vrun info;
    if (resolve_run(v, o->run, &info) != 0) return -1;
    int n_layers, n_heads;
    if (pl_vstore_attention_shape(v, info.id, &n_layers, &n_heads) != 0) return -1;
    if (n_layers == 0) return pl_fail("%s: run %lld has no attention patterns (record blocks.*.attn.hook_pattern)",
                                      pl_vstore_path(v), (long long)info.id);
    int rows = n_layers > 16 ? 16 : n_layers, cols = n_heads > 16 ? 16 : n_heads;
    pl_figure *fig = pl_figure_new(rows, cols);
    if (!fig) return -1;
    pl_figure_set_theme(fig, o->theme);
    char title[160];
    snprintf(title, sizeof title, "run %lld · attention by layer (rows) and head (columns)", (long long)info.id);
    if (pl_figure_set_title(fig, title)) goto fail;
    for (int l = 0; l < rows; l++)
        for (int h = 0; h < cols; h++) {
            float *att, *pooled;
            int n, m;
            if (pl_vstore_attention(v, info.id, l, h, &att, &n) != 0) goto fail;
            int prc = pl_figures_pool_attention(&pooled, &m, att, n, o->thumbnail_cells > 0 ? o->thumbnail_cells : 96);
            free(att);
            if (prc != 0) goto fail;
            pl_axes *ax = pl_figure_axes(fig, l, h);
            snprintf(title, sizeof title, "L%d H%d", l, h);
            pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, 0.0, NAN);
            int hrc = pl_axes_set_title(ax, title) || pl_axes_heatmap(ax, pooled, m, m, NULL, NULL, NULL) < 0;
            free(pooled);
            if (hrc) goto fail;
        }
    *out = fig;
    return 0;
fail:
    pl_figure_free(fig);
    return -1;
}

static void add_entry(pl_figure_entry *e, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_entry(pl_figure_entry *e, const char *name, const char *fmt, ...) {
    snprintf(e->name, sizeof e->name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->title, sizeof e->title, fmt, ap);
    va_end(ap);
}

int pl_figures_list(pl_vstore *v, pl_figure_entry **out, int *n) {
    *out = NULL;
    *n = 0;
    char **names, **kinds;
    int n_an;
    int64_t max_id;
    if (pl_vstore_max_run_id(v, &max_id) != 0 || pl_vstore_analyses(v, &names, &kinds, &n_an) != 0) return -1;
    pl_figure_entry *e = calloc((size_t)n_an + 3, sizeof *e);
    if (!e) {
        pl_vstore_free_strings(names, n_an);
        pl_vstore_free_strings(kinds, n_an);
        return pl_fail("out of memory");
    }
    int k = 0;
    if (max_id > 0) {
        pl_vrun info;
        int n_layers = 0, n_heads = 0;
        if (resolve_run(v, 0, &info) == 0) pl_vstore_attention_shape(v, info.id, &n_layers, &n_heads);
        if (n_layers > 0) {
            add_entry(&e[k++], "attention", "attention heatmap of --run R --layer L --head H (%d layers x %d heads)",
                      n_layers, n_heads);
            add_entry(&e[k++], "attention-grid", "one attention thumbnail per layer and head of --run R");
        }
        add_entry(&e[k++], "tokens", "tokens of --run R coloured by --score (logprob, entropy, probe:NAME)");
    }
    for (int i = 0; i < n_an; i++)
        add_entry(&e[k++], names[i], "%s (analysis kind %s)", pl_analysis_renderer_find(kinds[i])->description, kinds[i]);
    pl_vstore_free_strings(names, n_an);
    pl_vstore_free_strings(kinds, n_an);
    *out = e;
    *n = k;
    return 0;
}

int pl_figures_build(pl_figure **out, pl_vstore *v, const char *name, const pl_figure_opts *opts) {
    *out = NULL;
    pl_figure_opts o = opts ? *opts : pl_figure_opts_default();
    if (strcmp(name, "attention") == 0) return build_attention(out, v, &o);
    if (strcmp(name, "attention-grid") == 0) return build_attention_grid(out, v, &o);
    if (strcmp(name, "tokens") == 0) return pl_figures_tokens(out, v, o.run, o.score, o.token_lo, o.token_count, o.theme);
    char **names, **kinds;
    int n_an, found = 0;
    if (pl_vstore_analyses(v, &names, &kinds, &n_an) != 0) return -1;
    for (int i = 0; i < n_an; i++) found |= strcmp(names[i], name) == 0;
    pl_vstore_free_strings(names, n_an);
    pl_vstore_free_strings(kinds, n_an);
    if (found) return pl_figures_analysis(out, v, name, o.theme);
    return pl_fail("%s: unknown figure '%s' (--figure list shows the figures of this store)", pl_vstore_path(v), name);
}
