// Figures from a trace store: attention maps and token strips; analyses are drawn by
// figures_analysis.c.
#include "gui/plot/figures.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

pl_figure_opts pl_figure_opts_default(void) {
    return (pl_figure_opts){.run = 0, .layer = 0, .head = 0, .score = NULL, .token_lo = 0, .token_count = 0,
                            .thumbnail_cells = 96, .series = NULL, .theme = PL_THEME_LIGHT};
}

// ---- runs, tokens, attention ----

// The run a figure shows: `run`, or the first run of the model (model_id, or the store's only one).
static int resolve_run(pl_vstore *v, int64_t run, int64_t model_id, pl_run_info *info) {
    pl_store *s = pl_vstore_store(v);
    if (run <= 0) {
        pl_run_filter f = pl_run_filter_any();
        if (pl_store_resolve_model(s, model_id, &f.model_id) != 0) return -1;
        f.limit = 1;
        int64_t *ids, n;
        if (pl_store_run_ids(s, &f, &ids, &n, NULL, NULL) != 0) return -1;
        run = n > 0 ? ids[0] : 0;
        free(ids);
        if (n == 0) return pl_fail("%s: the store has no runs yet (record some with probelab trace)", pl_vstore_path(v));
    }
    if (pl_store_get_run(s, run, info) != 0) return -1;
    if (model_id > 0 && info->model_id != model_id)
        return pl_fail("%s: run %lld is a run of model %lld, not of --model-id %lld", pl_vstore_path(v), (long long)run,
                       (long long)info->model_id, (long long)model_id);
    return 0;
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
    pl_run_info info;
    if (resolve_run(v, run, 0, &info) != 0) return -1;
    char score_name[96];
    if (!score || !score[0]) {
        if (default_score(v, score_name, sizeof score_name) != 0) return -1;
    } else {
        snprintf(score_name, sizeof score_name, "%s", score);
    }
    pl_vscore_source *src;
    int n_src;
    pl_score_scale scale = PL_SCORE_SIGNED;  // a source the store does not list (a probe without outputs)
    char title[128], unit[64] = "score";
    snprintf(title, sizeof title, "%s", score_name);
    if (pl_vstore_score_sources(v, &src, &n_src) != 0) return -1;
    for (int i = 0; i < n_src; i++)
        if (strcmp(src[i].name, score_name) == 0) {
            scale = src[i].scale;
            snprintf(title, sizeof title, "%s", src[i].title);
            snprintf(unit, sizeof unit, "%s", src[i].unit);
        }
    free(src);

    pl_token_row *tok;
    int n_tok;
    if (pl_store_get_tokens(pl_vstore_store(v), info.id, &tok, &n_tok) != 0) return -1;
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
    if (scale == PL_SCORE_PROBABILITY) {
        vmin = 0, vmax = 1;  // white at p = 0.5: the probe is undecided
    } else if (scale == PL_SCORE_SIGNED) {
        double m = fmax(fmax(fabs(vmin), fabs(vmax)), 1e-6);
        vmin = -m, vmax = m;
    } else {
        // Values of one sign start at zero (entropy >= 0, logprob <= 0): colours keep their meaning across runs.
        if (vmin > 0) vmin = 0;
        if (vmax < 0) vmax = 0;
        if (vmax - vmin < 1e-6) vmax = vmin + 1;
    }
    for (int i = 0; i < n_tok; i++) pieces[i] = tok[i].display, segments[i] = tok[i].segment;
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
    pl_axes_set_colormap(ax, scale == PL_SCORE_SEQUENTIAL ? PL_CMAP_VIRIDIS : PL_CMAP_DIVERGING, vmin, vmax);
    if (pl_axes_set_title(ax, axes_title) || pl_axes_set_ylabel(ax, unit) ||
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
static const char **token_labels(pl_vstore *v, int64_t run, int n, pl_token_row **tok_out) {
    *tok_out = NULL;
    if (n > 64) return NULL;
    pl_token_row *tok;
    int n_tok;
    if (pl_store_get_tokens(pl_vstore_store(v), run, &tok, &n_tok) != 0) return NULL;
    if (n_tok < n) {
        free(tok);
        return NULL;
    }
    const char **labels = malloc(sizeof *labels * (size_t)(n > 0 ? n : 1));
    if (!labels) {
        free(tok);
        return NULL;
    }
    // Control characters have no glyph: show newlines as "↵" like the token strip does.
    for (int i = 0; i < n; i++) {
        char *p = tok[i].display;
        if (strcmp(p, "\n") == 0) snprintf(p, sizeof tok[i].display, "\xe2\x86\xb5");
        for (; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        labels[i] = tok[i].display;
    }
    *tok_out = tok;
    return labels;
}

// The run of an attention figure and its recorded layers × heads; fails if none were recorded.
static int resolve_attention_run(pl_vstore *v, const pl_figure_opts *o, pl_run_info *info, int *n_layers, int *n_heads) {
    if (resolve_run(v, o->run, o->model_id, info) != 0) return -1;
    if (pl_vstore_attention_shape(v, info->id, n_layers, n_heads) != 0) return -1;
    if (*n_layers == 0)
        return pl_fail("%s: run %lld has no attention patterns (record blocks.*.attn.hook_pattern)", pl_vstore_path(v),
                       (long long)info->id);
    return 0;
}

static int build_attention(pl_figure **out, pl_vstore *v, const pl_figure_opts *o) {
    pl_run_info info;
    int n_layers, n_heads;
    if (resolve_attention_run(v, o, &info, &n_layers, &n_heads) != 0) return -1;
    if (o->layer < 0 || o->layer >= n_layers || o->head < 0 || o->head >= n_heads)
        return pl_fail("%s: run %lld has attention for layers 0..%d and heads 0..%d, not layer %d head %d", pl_vstore_path(v),
                       (long long)info.id, n_layers - 1, n_heads - 1, o->layer, o->head);
    float *att;
    int n;
    if (pl_vstore_attention(v, info.id, o->layer, o->head, &att, &n) != 0) return -1;
    pl_token_row *tok;
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
    pl_run_info info;
    int n_layers, n_heads;
    if (resolve_attention_run(v, o, &info, &n_layers, &n_heads) != 0) return -1;
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
        pl_run_filter first = pl_run_filter_any();  // the first run of any model
        first.limit = 1;
        int64_t *ids = NULL, n_ids = 0;
        int n_layers = 0, n_heads = 0;
        if (pl_store_run_ids(pl_vstore_store(v), &first, &ids, &n_ids, NULL, NULL) == 0 && n_ids > 0)
            pl_vstore_attention_shape(v, ids[0], &n_layers, &n_heads);
        free(ids);
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
    if (strcmp(name, "tokens") == 0) {
        pl_run_info info;
        if (resolve_run(v, o.run, o.model_id, &info) != 0) return -1;
        return pl_figures_tokens(out, v, info.id, o.score, o.token_lo, o.token_count, o.theme);
    }
    char **names, **kinds;
    int n_an, found = 0;
    if (pl_vstore_analyses(v, &names, &kinds, &n_an) != 0) return -1;
    for (int i = 0; i < n_an; i++) found |= strcmp(names[i], name) == 0;
    pl_vstore_free_strings(names, n_an);
    pl_vstore_free_strings(kinds, n_an);
    if (found) return pl_figures_analysis_series(out, v, name, o.series, o.theme);
    return pl_fail("%s: unknown figure '%s' (--figure list shows the figures of this store)", pl_vstore_path(v), name);
}
