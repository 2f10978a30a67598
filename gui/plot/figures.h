// Figures built from a trace store: the glue between gui/plot (drawing) and the store (data),
// shared by `probelab plot` (files) and the viewer (which draws the same figures on screen).
//
// Figures have names: "attention" (heatmap of one run/layer/head), "attention-grid" (one
// thumbnail per layer and head), "tokens" (a run's tokens coloured by a score), and one per
// analysis in the store, named like the analysis ("precot.auroc_by_layer"). How an analysis is
// drawn depends on its kind, looked up in a registry of renderers (pl_analysis_renderers):
//     by_layer     line per series with a CI band: x = layer, y = metric, lo/hi = interval
//     flip_rate    steering curves: x = steering strength, y = flip rate, one line per series
//     counts       bar chart: one bar per row, labelled by series, height y (taxonomy counts)
//     roc          ROC curve per series: x = false positive rate, y = true positive rate
//     reliability  reliability diagram per series: x = mean predicted, y = fraction positive, lo = count
//     logit_lens   heatmap of the analysis's first matrix (layers × positions); rows name the
//                  columns (series = token text at x = column)
// Unknown kinds fall back to lines (rows) or a heatmap (matrix only). docs/viewer.md has the list.
#ifndef PL_FIGURES_H
#define PL_FIGURES_H

#include <stdint.h>

#include "gui/plot/figures_data.h"
#include "gui/plot/plot.h"

typedef struct {
    int64_t run;           // run for attention/tokens figures; 0 = the first run of the store
    int layer, head;       // attention figure (default 0, 0)
    const char *score;     // tokens: score source ("logprob", "probe:NAME"); NULL = the first probe, else logprob
    int64_t token_lo;      // tokens: first token shown
    int64_t token_count;   // tokens: how many (0 = all up to 2048)
    int thumbnail_cells;   // attention-grid: downsample each map to at most this many cells a side (0 = 96)
    pl_theme theme;
} pl_figure_opts;

// Defaults: first run, layer 0 head 0, automatic score, all tokens, light theme.
pl_figure_opts pl_figure_opts_default(void);

typedef struct {
    char name[96];    // what --figure takes
    char title[160];  // one line for `--figure list`
} pl_figure_entry;

// Figures this store can draw (run-level ones only if it has runs, attention ones only if the
// first run has attention). *out is malloc'd (caller frees).
int pl_figures_list(pl_vstore *v, pl_figure_entry **out, int *n);
// Build figure `name`. Returns -1 after pl_fail for an unknown figure (the message lists how to see
// the names), an empty store, a missing run, or attention that was not recorded. The caller owns
// *out (pl_figure_free).
int pl_figures_build(pl_figure **out, pl_vstore *v, const char *name, const pl_figure_opts *o);

// Analysis renderers: fill one axes from an analysis. Later modules (theater, Gnosis, MemR³) add a
// row to the table in figures.c to get their kinds drawn by `plot` and the viewer alike.
typedef struct {
    const char *kind;
    const char *description;
    int (*build)(pl_axes *ax, pl_vstore *v, const pl_vanalysis *a);
} pl_analysis_renderer;
// The renderer for `kind`, or the fallback one (never NULL).
const pl_analysis_renderer *pl_analysis_renderer_find(const char *kind);
// Draw analysis `name` into a 1×1 figure (used by pl_figures_build and the viewer's analysis pages).
int pl_figures_analysis(pl_figure **out, pl_vstore *v, const char *name, pl_theme theme);

// Token strip of a run's window [lo, lo + count) coloured by `score` with the colour range fixed
// over the whole run (so paging keeps colours comparable). *first and *n receive the window
// actually shown. Used by the tokens figure and the viewer's token view.
int pl_figures_tokens(pl_figure **out, pl_vstore *v, int64_t run, const char *score, int64_t lo, int64_t count,
                      pl_theme theme);

// Average-pool an [n × n] attention matrix (NaN = masked) into [m × m] cells, m = min(n, cells);
// masked-only cells stay NaN. *out is malloc'd (caller frees); *m receives the size.
int pl_figures_pool_attention(float **out, int *m, const float *att, int n, int cells);

#endif
