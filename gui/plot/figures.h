// Figures built from a trace store: the glue between gui/plot (drawing) and the store (data),
// shared by `probelab plot` (files) and the viewer (which draws the same figures on screen).
//
// Figures have names: "attention" (heatmap of one run/layer/head), "attention-grid" (one
// thumbnail per layer and head), "tokens" (a run's tokens coloured by a score), and one per
// analysis in the store, named like the analysis ("precot.auroc_by_layer").
//
// Analyses describe how to draw themselves; this code knows no analysis module by name. The kind
// picks a renderer from a registry (pl_analysis_renderer_find):
//     by_layer     line per series with a CI band: x = layer, y = metric, lo/hi = interval
//     flip_rate    steering curves: x = steering strength, y = rate, lo/hi = interval
//     lines        lines with bands (also the fallback for unknown kinds)
//     counts       bar chart: one bar per row labelled by series, or grouped bars (groups = x
//                  values, one bar series per series) when series have several rows
//     roc          ROC curve per series: x = false positive rate, y = true positive rate
//     reliability  reliability diagram per series: x = mean predicted, y = fraction positive, lo = count
//     logit_lens, matrix  heatmap of a matrix of the analysis (rows of series at x = column may
//                  name the columns)
// and the analysis's params JSON carries the rest: axis labels, a reference line, fixed ranges,
// small multiples (one panel per series prefix), baselines drawn dashed in their parent's colour,
// and explicit panel lists. docs/viewer.md lists every key.
#ifndef PL_FIGURES_H
#define PL_FIGURES_H

#include <stdint.h>

#include "gui/plot/figures_data.h"
#include "gui/plot/plot.h"

typedef struct {
    int64_t run;           // run for attention/tokens figures; 0 = the first run of the model
    int64_t model_id;      // that model (0 = the store's only one; pl_store_resolve_model); with a run:
                           // 0 or the run's model
    int layer, head;       // attention figure (default 0, 0)
    const char *score;     // tokens: score source ("logprob", "probe:NAME"); NULL = the first probe, else logprob
    int64_t token_lo;      // tokens: first token shown
    int64_t token_count;   // tokens: how many (0 = all up to 2048)
    int thumbnail_cells;   // attention-grid: downsample each map to at most this many cells a side (0 = 96)
    const char *series;    // analyses: glob (fnmatch) over series names to draw; NULL = the analysis's default
    pl_theme theme;
} pl_figure_opts;

// Defaults: first run of the only model, layer 0 head 0, automatic score, all tokens, light theme.
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

// One panel of an analysis figure: its rows (series names with the panel prefix removed) and its
// drawing hints. Opaque; renderers read it through the functions below.
typedef struct pl_analysis_panel pl_analysis_panel;

// Analysis renderers: fill one axes (one panel) from the rows of a panel. Later modules (theater,
// Gnosis, MemR³) add a row to the table in figures.c to get their kinds drawn by `plot` and the
// viewer alike; what varies between analyses of one kind belongs in their params.
typedef struct {
    const char *kind;
    const char *description;
    int (*build)(pl_axes *ax, pl_vstore *v, const pl_analysis_panel *p);
} pl_analysis_renderer;
// The renderer for `kind`, or the fallback one (never NULL).
const pl_analysis_renderer *pl_analysis_renderer_find(const char *kind);

// A panel's rows: n rows of (series, x, y, lo, hi), ordered by series then x; the arrays belong to
// the panel. label[i] is the series name shown (panel prefix removed), color_key[i] the series it
// takes its colour from (itself, or the parent of a baseline), baseline[i] 0 for a series and k > 0
// for the k-th baseline suffix of the params' "baselines".
typedef struct {
    int n;
    const char *const *label;
    const char *const *color_key;
    const int *baseline;
    const double *x, *y, *lo, *hi;
    const char *analysis;  // analysis name (matrices are read through it)
} pl_panel_rows;
const pl_panel_rows *pl_panel_get_rows(const pl_analysis_panel *p);
// A drawing hint of the panel: the panel's own value, else the analysis's params, else fallback.
const char *pl_panel_string(const pl_analysis_panel *p, const char *key, const char *fallback);
double pl_panel_number(const pl_analysis_panel *p, const char *key, double fallback);
// Colour of a series (by colour key): the same key has the same colour in every panel of a figure.
pl_rgb pl_panel_color(const pl_analysis_panel *p, const char *color_key);

// Draw analysis `name` (all series the analysis shows by default) as a figure: one panel, one per
// series prefix (params "facet"), or the params' "panels". Used by pl_figures_build and the
// viewer's analysis pages. The caller owns *out.
int pl_figures_analysis(pl_figure **out, pl_vstore *v, const char *name, pl_theme theme);
// The same, drawing only the series matching the glob `series` (NULL = the default). Fails naming
// the analysis's series when nothing matches.
int pl_figures_analysis_series(pl_figure **out, pl_vstore *v, const char *name, const char *series, pl_theme theme);

// Token strip of a run's window [lo, lo + count) coloured by `score` with the colour range fixed
// over the whole run (so paging keeps colours comparable). *first and *n receive the window
// actually shown. Used by the tokens figure and the viewer's token view.
int pl_figures_tokens(pl_figure **out, pl_vstore *v, int64_t run, const char *score, int64_t lo, int64_t count,
                      pl_theme theme);

// Average-pool an [n × n] attention matrix (NaN = masked) into [m × m] cells, m = min(n, cells);
// masked-only cells stay NaN. *out is malloc'd (caller frees); *m receives the size.
int pl_figures_pool_attention(float **out, int *m, const float *att, int n, int cells);

#endif
