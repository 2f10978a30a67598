// Internals of gui/plot shared between its .c files: the figure model, the remembered layout,
// theme colours, text helpers and tick computation. Not for use outside gui/plot.
#ifndef PL_PLOT_INTERNAL_H
#define PL_PLOT_INTERNAL_H

#include "gui/plot/plot.h"

#include <stddef.h>

#define PL_MAX_TICKS 32

typedef struct {
    double *x, *y;          // (n)
    double *lower, *upper;  // (n) or NULL: error band
    int64_t *counts;        // (n) or NULL: reliability bin counts printed above markers
    int64_t n;
    char *label;
    pl_rgb color;
    int dashed, markers;
} pl_line;

typedef struct {
    double *values, *errors;  // (n_series, n_groups); errors may be NULL
    int64_t n_groups;
    int n_series;
    char **group_labels;   // (n_groups) or NULL
    char **series_labels;  // (n_series) or NULL
    int first_color;       // palette index of series 0
} pl_bars;

typedef struct {
    float *values;  // (n_rows, n_cols)
    int64_t n_rows, n_cols;
    char **row_labels, **col_labels;  // or NULL
    char *colorbar_label;
} pl_heatmap;

typedef struct {
    char **text;    // (n) as given
    float *scores;  // (n) or NULL
    int *segments;  // (n) or NULL
    int64_t n;
} pl_tokens;

// What the last drawing decided for one axes: enough to map data <-> pixels and hit-test.
typedef struct {
    int valid;
    pl_rect plot;      // plot area in pixels
    pl_rect colorbar;  // w = 0 when there is none
    double x0, x1, y0, y1;  // data limits at the plot's left/right and bottom/top edges
    int y_down;             // heatmap: y grows downwards (row 0 at the top)
    pl_rect *token_rects;   // (n_token_rects), w = 0 for tokens that did not fit
    int64_t n_token_rects;
} pl_layout;

struct pl_axes {
    pl_figure *fig;
    int index;
    char *title, *xlabel, *ylabel;
    double xlim[2], ylim[2];  // NaN = automatic
    int legend, diagonal;
    double *hlines;
    int n_hlines;
    pl_line *lines;
    int n_lines, cap_lines;
    pl_bars *bars;
    pl_heatmap *heat;
    pl_tokens *tokens;
    pl_colormap cmap;
    double vmin, vmax;  // NaN = automatic
    int next_color;
};

struct pl_figure {
    int n_rows, n_cols;
    pl_axes *axes;       // (n_rows * n_cols)
    pl_layout *layouts;  // (n_rows * n_cols): from the last pl_plot_draw
    char *title;
    pl_theme theme;
    double font_scale;  // 0 = automatic
};

// Colours and sizes of one rendering (sizes already multiplied by the scale).
typedef struct {
    pl_theme kind;
    pl_rgb bg, fg, muted, grid, frame, legend_bg, legend_border;
    double s;  // scale factor
    double fs_tick, fs_label, fs_title, fs_fig_title;
    double pad, tick_len, line_width;
} pl_style;

// figure.c: layouts are owned by the caller, one per axes; token_rects freed by pl_layouts_clear.
void pl_layouts_clear(pl_layout *layouts, int n);
// render.c: draw every axes of fig into cr and record layouts[n_axes].
int pl_render_figure(const pl_figure *fig, cairo_t *cr, int width, int height, pl_layout *layouts);

// text helpers (render.c). Anchors: ax, ay in {0, 0.5, 1} of the text's width and height.
void pl_text_font(cairo_t *cr, double size, int bold);
double pl_text_width(cairo_t *cr, const char *text);
double pl_text_height(cairo_t *cr);  // ascent + descent of the current font
void pl_text_draw(cairo_t *cr, const char *text, double x, double y, double ax, double ay, double angle);
void pl_set_rgb(cairo_t *cr, pl_rgb c);
void pl_set_rgba(cairo_t *cr, pl_rgb c, double alpha);

// ticks.c: ticks at nice 1-2-5 multiples inside [lo, hi], at most about target of them.
int pl_nice_ticks(double lo, double hi, int target, double *ticks, double *step);
// Format a tick value with as many decimals as the step needs ("0.25", "1.5e+06").
void pl_format_tick(char *buf, size_t size, double value, double step);
// Widen [*lo, *hi] to a usable range: empty/non-finite -> [0, 1], degenerate -> around the value.
void pl_fix_range(double *lo, double *hi);

// heatmap.c / tokens.c: draw into the plot area of the layout (layout->plot already set).
void pl_heatmap_draw(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell, pl_layout *lay);
void pl_tokens_draw(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell, pl_layout *lay);
// Draw the axes title centred above plot area `plot` (shared by all kinds); returns its height.
double pl_axes_title_height(cairo_t *cr, const pl_axes *ax, const pl_style *st);
void pl_draw_axes_title(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell);
// Resolved colour range of a heatmap/token strip.
void pl_value_range(const pl_axes *ax, const float *v, int64_t n, int symmetric, double *vmin, double *vmax);
// Fill a vertical (or horizontal) colour bar in r with cmap, vmax at the top (right).
void pl_colorbar_fill(cairo_t *cr, pl_colormap cmap, pl_rect r, int horizontal);

#endif
