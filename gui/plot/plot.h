// Headless cairo plotting shared by `probelab plot` (PNG/SVG/PDF files) and the GTK4 viewer (which
// draws the same figure into the cairo_t of a GtkDrawingArea). A figure is a grid of axes; each axes
// holds line series (with optional error bands), one grouped bar chart, one heatmap, or one token
// strip. The figure copies every array it is given, so callers keep ownership of their data.
//
// Coordinates: pixels have their origin at the top-left of the surface. Curves and bars use data
// coordinates (bar group g is centred at x = g). A heatmap's cell (row i, column j) is centred at
// data (x = j, y = i), row 0 at the top. Transforms and token rectangles describe the LAST
// pl_plot_draw() of the figure.
//
// Typical use:
//     pl_figure *fig = pl_figure_new(1, 1);
//     pl_axes *ax = pl_figure_axes(fig, 0, 0);
//     pl_axes_set_title(ax, "Probe AUROC by layer");
//     pl_axes_line_band(ax, layers, auroc, ci_lo, ci_hi, n_layers, "resid_post");
//     pl_plot_save(fig, "auroc.png", 1280, 800);   // or pl_plot_draw(fig, cr, w, h) in GTK
//     pl_figure_free(fig);
#ifndef PL_PLOT_H
#define PL_PLOT_H

#include <cairo.h>
#include <stdint.h>

typedef struct pl_figure pl_figure;  // owns its axes and copies of all data
typedef struct pl_axes pl_axes;      // owned by its figure; valid until pl_figure_free

typedef enum { PL_THEME_LIGHT = 0, PL_THEME_DARK = 1 } pl_theme;
// VIRIDIS: sequential (attention, counts). DIVERGING: blue-white-red around 0 (scores, weights).
typedef enum { PL_CMAP_VIRIDIS = 0, PL_CMAP_DIVERGING = 1 } pl_colormap;
// Token segments (underline colour in a token strip); PL_SEGMENT_NONE draws no underline.
typedef enum { PL_SEGMENT_NONE = -1, PL_SEGMENT_PROMPT = 0, PL_SEGMENT_COT = 1, PL_SEGMENT_ANSWER = 2 } pl_plot_segment;

typedef struct { double r, g, b; } pl_rgb;       // components in [0, 1]
typedef struct { double x, y, w, h; } pl_rect;  // pixels, (x, y) = top-left corner

// ---- colours ----

// Colour of `cmap` at t in [0, 1] (clamped; NaN gives the middle). Viridis is a 52-entry table
// sampled from matplotlib's viridis; the diverging map is ColorBrewer RdBu, blue at 0, red at 1.
pl_rgb pl_colormap_eval(pl_colormap cmap, double t);
// Colour of series `index` in the theme's categorical palette (Tableau 10, lighter when dark).
pl_rgb pl_palette_color(pl_theme theme, int index);
// Background colour of the theme (also the colour of NaN / masked heatmap cells).
pl_rgb pl_theme_background(pl_theme theme);

// ---- figure ----

// A new figure with an n_rows x n_cols grid of empty axes (1..16 each); an axes left untouched
// (no data, title, labels or reference lines) is not drawn, so spare grid cells stay blank. Returns NULL after pl_fail
// on bad sizes or out of memory. The caller owns it and frees it with pl_figure_free().
pl_figure *pl_figure_new(int n_rows, int n_cols);
// Free the figure, its axes and all copied data. NULL is a no-op.
void pl_figure_free(pl_figure *fig);
// Figure title drawn centred at the top (copied; NULL removes it). Returns 0, or -1 on no memory.
int pl_figure_set_title(pl_figure *fig, const char *title);
// Light (default) or dark colours; the viewer follows GTK's theme.
void pl_figure_set_theme(pl_figure *fig, pl_theme theme);
// Multiply all font sizes and line widths by `scale`; 0 (default) picks a scale from the size.
void pl_figure_set_font_scale(pl_figure *fig, double scale);
// The axes at (row, col), owned by the figure; NULL if out of range.
pl_axes *pl_figure_axes(pl_figure *fig, int row, int col);

// Draw the whole figure into `cr` over the rectangle (0, 0, width, height) of the user space and
// remember the layout for pl_axes_data_to_px() and the token queries. The cairo_t stays the
// caller's; its state is saved and restored. Returns 0, or -1 after pl_fail on a bad size.
int pl_plot_draw(pl_figure *fig, cairo_t *cr, int width, int height);
// Render to `path`: PNG, SVG or PDF chosen by the extension (case-insensitive; size in pixels, or
// points for SVG/PDF). Returns 0, or -1 after pl_fail naming the file on an unknown extension or a
// write failure. Does not change the layout remembered by pl_plot_draw().
int pl_plot_save(const pl_figure *fig, const char *path, int width, int height);

// ---- axes decoration ----

// Axes title and axis labels (copied; NULL removes). Return 0, or -1 on no memory.
int pl_axes_set_title(pl_axes *ax, const char *title);
int pl_axes_set_xlabel(pl_axes *ax, const char *label);
int pl_axes_set_ylabel(pl_axes *ax, const char *label);
// Fixed data limits; pass NAN (either or both) for automatic limits with a 5% margin.
void pl_axes_set_xlim(pl_axes *ax, double lo, double hi);
void pl_axes_set_ylim(pl_axes *ax, double lo, double hi);
// Show the legend (default) or hide it. Only labelled series appear; the corner is picked to
// cover as little data as possible.
void pl_axes_set_legend(pl_axes *ax, int show);
// Dashed reference lines: y = x (ROC, calibration) and horizontal y = value (e.g. chance 0.5).
void pl_axes_add_diagonal(pl_axes *ax);
int pl_axes_add_hline(pl_axes *ax, double y);
// Colormap and value range for the heatmap or the token strip of this axes. NAN bounds = automatic
// (heatmap: data min..max; tokens: symmetric -max|s|..max|s|).
void pl_axes_set_colormap(pl_axes *ax, pl_colormap cmap, double vmin, double vmax);

// ---- plot types ----
// Every add function copies its arrays. NaN values are skipped (lines break there), n = 0 is an
// empty series. They return a series index >= 0, or -1 after pl_fail on bad arguments or no memory.

// Line through (x[i], y[i]); x may be NULL for x = 0..n-1. label may be NULL (not in the legend).
int pl_axes_line(pl_axes *ax, const double *x, const double *y, int64_t n, const char *label);
// Line with a translucent error band between lower[i] and upper[i] (e.g. a 95% CI).
int pl_axes_line_band(pl_axes *ax, const double *x, const double *y, const double *lower,
                      const double *upper, int64_t n, const char *label);
// Restyle a line series: colour (NULL keeps the palette colour), dashed, and point markers.
int pl_axes_series_style(pl_axes *ax, int series, const pl_rgb *color, int dashed, int markers);
// ROC curve from fpr/tpr arrays (sorted by threshold), adding the chance diagonal, limits [0, 1]
// and default axis labels. Returns the series index.
int pl_axes_roc(pl_axes *ax, const double *fpr, const double *tpr, int64_t n, const char *label);
// Reliability diagram: per bin, the mean predicted probability against the fraction of positives,
// with the diagonal and each bin's count printed above its marker (counts may be NULL; bins with
// count 0 or NaN are skipped). Returns the series index.
int pl_axes_reliability(pl_axes *ax, const double *mean_predicted, const double *fraction_positive,
                        const int64_t *counts, int64_t n_bins, const char *label);
// Grouped bar chart: values (n_series, n_groups) row-major, errors the same shape or NULL (drawn
// as +-error whiskers; NaN = none). group_labels[n_groups] name the x positions, series_labels
// [n_series] go to the legend; either may be NULL. One bar chart per axes; y always includes 0.
int pl_axes_bars(pl_axes *ax, const double *values, const double *errors, int64_t n_groups,
                 int n_series, const char *const *group_labels, const char *const *series_labels);
// Heatmap of values (n_rows, n_cols) row-major (float, as tensors are stored) with a colour bar
// (colorbar_label may be NULL). NaN cells show the background (e.g. a causal mask). Labels may be
// NULL; when they do not fit, every k-th is shown. The axes may hold nothing else.
int pl_axes_heatmap(pl_axes *ax, const float *values, int64_t n_rows, int64_t n_cols,
                    const char *const *row_labels, const char *const *col_labels,
                    const char *colorbar_label);
// Token strip: tokens laid out in wrapped lines, each on a background coloured by scores[i]
// through the diverging colormap (scores may be NULL), underlined by segments[i] (a pl_plot_segment,
// may be NULL). Newlines in tokens are shown as "↵" and break the line. The axes may hold nothing
// else. Tokens that do not fit even at the smallest font are not drawn. The axes' y label
// (pl_axes_set_ylabel) names the colour bar ("score" if none).
int pl_axes_tokens(pl_axes *ax, const char *const *tokens, const float *scores,
                   const int *segments, int64_t n_tokens);

// ---- hit-testing (valid after pl_plot_draw) ----

// Map data coordinates to pixels of the last pl_plot_draw(). Returns 0, or -1 if not drawn yet.
int pl_axes_data_to_px(const pl_axes *ax, double x, double y, double *px, double *py);
// Inverse of pl_axes_data_to_px().
int pl_axes_px_to_data(const pl_axes *ax, double px, double py, double *x, double *y);
// The plot area (inside the axis frame) and the colour bar (heatmaps); -1 if absent or not drawn.
int pl_axes_plot_rect(const pl_axes *ax, pl_rect *out);
int pl_axes_colorbar_rect(const pl_axes *ax, pl_rect *out);
// Rectangle of token i in the last drawing; -1 if i is out of range, not drawn, or did not fit.
int pl_axes_token_rect(const pl_axes *ax, int64_t i, pl_rect *out);
// Index of the token under pixel (px, py), or -1 if none.
int64_t pl_axes_token_at(const pl_axes *ax, double px, double py);
// The heatmap cell under pixel (px, py): returns 0 and sets *row, *col, or -1 if outside.
int pl_axes_heatmap_cell_at(const pl_axes *ax, double px, double py, int64_t *row, int64_t *col);

#endif
