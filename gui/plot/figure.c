// The figure/axes model: construction, copying data in, saving to files, and the remembered
// layout used for hit-testing. Drawing lives in render.c, heatmap.c and tokens.c.
#include "gui/plot/plot_internal.h"
#include "runtime/base/error.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

// Replace *slot with a copy of s; returns -1 after pl_fail on no memory.
static int set_string(char **slot, const char *s) {
    char *d = dup_or_null(s);
    if (s && !d) return pl_fail("plot: out of memory");
    free(*slot);
    *slot = d;
    return 0;
}

// Copy n elements of size elem (NULL stays NULL); *ok = 0 on no memory or size overflow.
static void *copy_array(const void *src, int64_t n, size_t elem, int *ok) {
    if (!src || n <= 0) return NULL;
    if ((uint64_t)n > SIZE_MAX / elem) {
        *ok = 0;
        return NULL;
    }
    void *d = malloc((size_t)n * elem);
    if (!d) {
        *ok = 0;
        return NULL;
    }
    memcpy(d, src, (size_t)n * elem);
    return d;
}

static char **copy_strings(const char *const *src, int64_t n, int *ok) {
    if (!src || n <= 0) return NULL;
    char **d = calloc((size_t)n, sizeof *d);
    if (!d) {
        *ok = 0;
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        d[i] = dup_or_null(src[i] ? src[i] : "");
        if (!d[i]) *ok = 0;
    }
    return d;
}

static void free_strings(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

// ---- figure ----

pl_figure *pl_figure_new(int n_rows, int n_cols) {
    if (n_rows < 1 || n_rows > 16 || n_cols < 1 || n_cols > 16) {
        pl_fail("plot: figure grid %d x %d must be 1..16 x 1..16", n_rows, n_cols);
        return NULL;
    }
    pl_figure *fig = calloc(1, sizeof *fig);
    int n = n_rows * n_cols;
    if (fig) {
        fig->axes = calloc((size_t)n, sizeof *fig->axes);
        fig->layouts = calloc((size_t)n, sizeof *fig->layouts);
    }
    if (!fig || !fig->axes || !fig->layouts) {
        if (fig) {
            free(fig->axes);
            free(fig->layouts);
        }
        free(fig);
        pl_fail("plot: out of memory");
        return NULL;
    }
    fig->n_rows = n_rows;
    fig->n_cols = n_cols;
    for (int i = 0; i < n; i++) {
        pl_axes *ax = &fig->axes[i];
        ax->fig = fig;
        ax->index = i;
        ax->xlim[0] = ax->xlim[1] = ax->ylim[0] = ax->ylim[1] = NAN;
        ax->vmin = ax->vmax = NAN;
        ax->legend = 1;
    }
    return fig;
}

static void axes_free_data(pl_axes *ax) {
    free(ax->title);
    free(ax->xlabel);
    free(ax->ylabel);
    free(ax->hlines);
    for (int i = 0; i < ax->n_lines; i++) {
        pl_line *l = &ax->lines[i];
        free(l->x);
        free(l->y);
        free(l->lower);
        free(l->upper);
        free(l->counts);
        free(l->label);
    }
    free(ax->lines);
    if (ax->bars) {
        free(ax->bars->values);
        free(ax->bars->errors);
        free_strings(ax->bars->group_labels, ax->bars->n_groups);
        free_strings(ax->bars->series_labels, ax->bars->n_series);
        free(ax->bars);
    }
    if (ax->heat) {
        free(ax->heat->values);
        free_strings(ax->heat->row_labels, ax->heat->n_rows);
        free_strings(ax->heat->col_labels, ax->heat->n_cols);
        free(ax->heat->colorbar_label);
        free(ax->heat);
    }
    if (ax->tokens) {
        free_strings(ax->tokens->text, ax->tokens->n);
        free(ax->tokens->scores);
        free(ax->tokens->segments);
        free(ax->tokens);
    }
}

void pl_layouts_clear(pl_layout *layouts, int n) {
    for (int i = 0; i < n; i++) {
        free(layouts[i].token_rects);
        memset(&layouts[i], 0, sizeof layouts[i]);
    }
}

void pl_figure_free(pl_figure *fig) {
    if (!fig) return;
    int n = fig->n_rows * fig->n_cols;
    for (int i = 0; i < n; i++) axes_free_data(&fig->axes[i]);
    pl_layouts_clear(fig->layouts, n);
    free(fig->layouts);
    free(fig->axes);
    free(fig->title);
    free(fig);
}

int pl_figure_set_title(pl_figure *fig, const char *title) { return set_string(&fig->title, title); }
void pl_figure_set_theme(pl_figure *fig, pl_theme theme) { fig->theme = theme == PL_THEME_DARK ? PL_THEME_DARK : PL_THEME_LIGHT; }
void pl_figure_set_font_scale(pl_figure *fig, double scale) { fig->font_scale = scale > 0 && isfinite(scale) ? scale : 0; }

pl_axes *pl_figure_axes(pl_figure *fig, int row, int col) {
    if (!fig || row < 0 || row >= fig->n_rows || col < 0 || col >= fig->n_cols) return NULL;
    return &fig->axes[row * fig->n_cols + col];
}

int pl_plot_draw(pl_figure *fig, cairo_t *cr, int width, int height) {
    int n = fig->n_rows * fig->n_cols;
    pl_layouts_clear(fig->layouts, n);
    return pl_render_figure(fig, cr, width, height, fig->layouts);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int pl_plot_save(const pl_figure *fig, const char *path, int width, int height) {
    if (width < 16 || height < 16 || width > 16384 || height > 16384)
        return pl_fail("%s: image size %d x %d must be 16..16384 pixels", path, width, height);
    enum { PNG, SVG, PDF } kind;
    if (ends_with(path, ".png")) kind = PNG;
    else if (ends_with(path, ".svg")) kind = SVG;
    else if (ends_with(path, ".pdf")) kind = PDF;
    else return pl_fail("%s: unknown image format (use .png, .svg or .pdf)", path);

    cairo_surface_t *surface;
    if (kind == PNG) surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    else if (kind == SVG) surface = cairo_svg_surface_create(path, width, height);
    else surface = cairo_pdf_surface_create(path, width, height);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        int rc = pl_fail("%s: cannot create image: %s", path, cairo_status_to_string(cairo_surface_status(surface)));
        cairo_surface_destroy(surface);
        return rc;
    }
    int n = fig->n_rows * fig->n_cols;
    pl_layout *layouts = calloc((size_t)n, sizeof *layouts);
    cairo_t *cr = cairo_create(surface);
    int rc = layouts ? pl_render_figure(fig, cr, width, height, layouts) : pl_fail("%s: out of memory", path);
    if (layouts) pl_layouts_clear(layouts, n);
    free(layouts);
    if (rc == 0 && cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        rc = pl_fail("%s: drawing failed: %s", path, cairo_status_to_string(cairo_status(cr)));
    cairo_destroy(cr);
    if (rc == 0 && kind == PNG) {
        cairo_status_t st = cairo_surface_write_to_png(surface, path);
        if (st != CAIRO_STATUS_SUCCESS) rc = pl_fail("%s: cannot write PNG: %s", path, cairo_status_to_string(st));
    }
    cairo_surface_finish(surface);  // SVG/PDF write their file here
    if (rc == 0 && cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
        rc = pl_fail("%s: cannot write: %s", path, cairo_status_to_string(cairo_surface_status(surface)));
    cairo_surface_destroy(surface);
    return rc;
}

// ---- axes decoration ----

int pl_axes_set_title(pl_axes *ax, const char *title) { return set_string(&ax->title, title); }
int pl_axes_set_xlabel(pl_axes *ax, const char *label) { return set_string(&ax->xlabel, label); }
int pl_axes_set_ylabel(pl_axes *ax, const char *label) { return set_string(&ax->ylabel, label); }

void pl_axes_set_xlim(pl_axes *ax, double lo, double hi) {
    ax->xlim[0] = lo;
    ax->xlim[1] = hi;
}

void pl_axes_set_ylim(pl_axes *ax, double lo, double hi) {
    ax->ylim[0] = lo;
    ax->ylim[1] = hi;
}

void pl_axes_set_legend(pl_axes *ax, int show) { ax->legend = show != 0; }
void pl_axes_add_diagonal(pl_axes *ax) { ax->diagonal = 1; }

int pl_axes_add_hline(pl_axes *ax, double y) {
    if (!isfinite(y)) return pl_fail("plot: horizontal line at non-finite y");
    double *h = realloc(ax->hlines, (size_t)(ax->n_hlines + 1) * sizeof *h);
    if (!h) return pl_fail("plot: out of memory");
    h[ax->n_hlines++] = y;
    ax->hlines = h;
    return 0;
}

void pl_axes_set_colormap(pl_axes *ax, pl_colormap cmap, double vmin, double vmax) {
    ax->cmap = cmap == PL_CMAP_DIVERGING ? PL_CMAP_DIVERGING : PL_CMAP_VIRIDIS;
    ax->vmin = vmin;
    ax->vmax = vmax;
}

// ---- plot types ----

static int check_xy_axes(pl_axes *ax, const char *what) {
    if (ax->heat || ax->tokens)
        return pl_fail("plot: cannot add %s to an axes that holds a %s", what, ax->heat ? "heatmap" : "token strip");
    return 0;
}

static int add_line(pl_axes *ax, const double *x, const double *y, const double *lower, const double *upper,
                    const int64_t *counts, int64_t n, const char *label) {
    if (!ax) return pl_fail("plot: NULL axes");
    if (check_xy_axes(ax, "a line")) return -1;
    if (n < 0 || (n > 0 && !y)) return pl_fail("plot: line needs y values (n = %lld)", (long long)n);
    if (ax->n_lines == ax->cap_lines) {
        int cap = ax->cap_lines ? 2 * ax->cap_lines : 4;
        pl_line *l = realloc(ax->lines, (size_t)cap * sizeof *l);
        if (!l) return pl_fail("plot: out of memory");
        ax->lines = l;
        ax->cap_lines = cap;
    }
    pl_line line = {0};
    int ok = 1;
    line.n = n;
    line.y = copy_array(y, n, sizeof(double), &ok);
    if (x) {
        line.x = copy_array(x, n, sizeof(double), &ok);
    } else if (n > 0) {
        line.x = malloc((size_t)n * sizeof(double));
        if (line.x)
            for (int64_t i = 0; i < n; i++) line.x[i] = (double)i;
        else ok = 0;
    }
    line.lower = copy_array(lower, n, sizeof(double), &ok);
    line.upper = copy_array(upper, n, sizeof(double), &ok);
    line.counts = copy_array(counts, n, sizeof(int64_t), &ok);
    line.label = dup_or_null(label);
    if (label && !line.label) ok = 0;
    if (!ok) {
        free(line.x);
        free(line.y);
        free(line.lower);
        free(line.upper);
        free(line.counts);
        free(line.label);
        return pl_fail("plot: out of memory copying a line of %lld points", (long long)n);
    }
    line.color = pl_palette_color(ax->fig->theme, ax->next_color++);
    line.markers = n == 1;
    ax->lines[ax->n_lines] = line;
    return ax->n_lines++;
}

int pl_axes_line(pl_axes *ax, const double *x, const double *y, int64_t n, const char *label) {
    return add_line(ax, x, y, NULL, NULL, NULL, n, label);
}

int pl_axes_line_band(pl_axes *ax, const double *x, const double *y, const double *lower, const double *upper,
                      int64_t n, const char *label) {
    if (n > 0 && (!lower || !upper)) return pl_fail("plot: an error band needs lower and upper arrays");
    return add_line(ax, x, y, lower, upper, NULL, n, label);
}

int pl_axes_series_style(pl_axes *ax, int series, const pl_rgb *color, int dashed, int markers) {
    if (!ax || series < 0 || series >= ax->n_lines)
        return pl_fail("plot: no line series %d in this axes", series);
    if (color) ax->lines[series].color = *color;
    ax->lines[series].dashed = dashed != 0;
    ax->lines[series].markers = markers != 0;
    return 0;
}

int pl_axes_roc(pl_axes *ax, const double *fpr, const double *tpr, int64_t n, const char *label) {
    if (n > 0 && !fpr) return pl_fail("plot: ROC curve needs fpr values");
    int s = add_line(ax, fpr, tpr, NULL, NULL, NULL, n, label);
    if (s < 0) return -1;
    ax->diagonal = 1;
    pl_axes_set_xlim(ax, 0, 1);
    pl_axes_set_ylim(ax, 0, 1);
    if ((!ax->xlabel && pl_axes_set_xlabel(ax, "False positive rate")) ||
        (!ax->ylabel && pl_axes_set_ylabel(ax, "True positive rate")))
        return -1;
    return s;
}

int pl_axes_reliability(pl_axes *ax, const double *mean_predicted, const double *fraction_positive,
                        const int64_t *counts, int64_t n_bins, const char *label) {
    if (n_bins > 0 && !mean_predicted) return pl_fail("plot: reliability diagram needs mean predicted values");
    int s = add_line(ax, mean_predicted, fraction_positive, NULL, NULL, counts, n_bins, label);
    if (s < 0) return -1;
    ax->lines[s].markers = 1;
    ax->diagonal = 1;
    pl_axes_set_xlim(ax, 0, 1);
    pl_axes_set_ylim(ax, 0, 1);
    if ((!ax->xlabel && pl_axes_set_xlabel(ax, "Mean predicted probability")) ||
        (!ax->ylabel && pl_axes_set_ylabel(ax, "Fraction of positives")))
        return -1;
    return s;
}

int pl_axes_bars(pl_axes *ax, const double *values, const double *errors, int64_t n_groups, int n_series,
                 const char *const *group_labels, const char *const *series_labels) {
    if (!ax) return pl_fail("plot: NULL axes");
    if (check_xy_axes(ax, "bars")) return -1;
    if (ax->bars) return pl_fail("plot: axes already holds a bar chart (use several series in one call)");
    if (n_groups < 0 || n_series < 1 || n_series > 64 || (n_groups > 0 && !values) || n_groups > (INT64_MAX / 64))
        return pl_fail("plot: bar chart needs values for %d series x %lld groups", n_series, (long long)n_groups);
    pl_bars *b = calloc(1, sizeof *b);
    if (!b) return pl_fail("plot: out of memory");
    int ok = 1;
    int64_t n = n_groups * n_series;
    b->values = copy_array(values, n, sizeof(double), &ok);
    b->errors = copy_array(errors, n, sizeof(double), &ok);
    b->group_labels = copy_strings(group_labels, n_groups, &ok);
    b->series_labels = copy_strings(series_labels, n_series, &ok);
    b->n_groups = n_groups;
    b->n_series = n_series;
    b->first_color = ax->next_color;
    if (!ok) {
        free(b->values);
        free(b->errors);
        free_strings(b->group_labels, n_groups);
        free_strings(b->series_labels, n_series);
        free(b);
        return pl_fail("plot: out of memory copying a bar chart");
    }
    ax->next_color += n_series;
    ax->bars = b;
    return 0;
}

static int check_empty_axes(pl_axes *ax, const char *what) {
    if (!ax) return pl_fail("plot: NULL axes");
    if (ax->n_lines || ax->bars || ax->heat || ax->tokens)
        return pl_fail("plot: a %s needs an axes of its own, this one already has content", what);
    return 0;
}

int pl_axes_heatmap(pl_axes *ax, const float *values, int64_t n_rows, int64_t n_cols, const char *const *row_labels,
                    const char *const *col_labels, const char *colorbar_label) {
    if (check_empty_axes(ax, "heatmap")) return -1;
    // Cells become pixels of a cairo image surface, which is limited to 32767 a side.
    if (n_rows < 0 || n_cols < 0 || n_rows > 32767 || n_cols > 32767 || (n_rows * n_cols > 0 && !values))
        return pl_fail("plot: heatmap of %lld x %lld cells must be 0..32767 a side with values",
                       (long long)n_rows, (long long)n_cols);
    pl_heatmap *h = calloc(1, sizeof *h);
    if (!h) return pl_fail("plot: out of memory");
    int ok = 1;
    h->values = copy_array(values, n_rows * n_cols, sizeof(float), &ok);
    h->row_labels = copy_strings(row_labels, n_rows, &ok);
    h->col_labels = copy_strings(col_labels, n_cols, &ok);
    h->colorbar_label = dup_or_null(colorbar_label);
    if (colorbar_label && !h->colorbar_label) ok = 0;
    h->n_rows = n_rows;
    h->n_cols = n_cols;
    if (!ok) {
        free(h->values);
        free_strings(h->row_labels, n_rows);
        free_strings(h->col_labels, n_cols);
        free(h->colorbar_label);
        free(h);
        return pl_fail("plot: out of memory copying a %lld x %lld heatmap", (long long)n_rows, (long long)n_cols);
    }
    ax->heat = h;
    return 0;
}

int pl_axes_tokens(pl_axes *ax, const char *const *tokens, const float *scores, const int *segments, int64_t n_tokens) {
    if (check_empty_axes(ax, "token strip")) return -1;
    if (n_tokens < 0 || (n_tokens > 0 && !tokens))
        return pl_fail("plot: token strip needs %lld token strings", (long long)n_tokens);
    pl_tokens *t = calloc(1, sizeof *t);
    if (!t) return pl_fail("plot: out of memory");
    int ok = 1;
    t->text = copy_strings(tokens, n_tokens, &ok);
    t->scores = copy_array(scores, n_tokens, sizeof(float), &ok);
    t->segments = copy_array(segments, n_tokens, sizeof(int), &ok);
    t->n = n_tokens;
    if (!ok) {
        free_strings(t->text, n_tokens);
        free(t->scores);
        free(t->segments);
        free(t);
        return pl_fail("plot: out of memory copying %lld tokens", (long long)n_tokens);
    }
    if (!isfinite(ax->vmin) && !isfinite(ax->vmax)) ax->cmap = PL_CMAP_DIVERGING;
    ax->tokens = t;
    return 0;
}

// ---- hit-testing ----

static const pl_layout *layout_of(const pl_axes *ax) {
    if (!ax) return NULL;
    const pl_layout *lay = &ax->fig->layouts[ax->index];
    return lay->valid ? lay : NULL;
}

int pl_axes_data_to_px(const pl_axes *ax, double x, double y, double *px, double *py) {
    const pl_layout *lay = layout_of(ax);
    if (!lay) return -1;
    *px = lay->plot.x + (x - lay->x0) / (lay->x1 - lay->x0) * lay->plot.w;
    double fy = (y - lay->y0) / (lay->y1 - lay->y0);
    *py = lay->y_down ? lay->plot.y + fy * lay->plot.h : lay->plot.y + lay->plot.h - fy * lay->plot.h;
    return 0;
}

int pl_axes_px_to_data(const pl_axes *ax, double px, double py, double *x, double *y) {
    const pl_layout *lay = layout_of(ax);
    if (!lay || lay->plot.w <= 0 || lay->plot.h <= 0) return -1;
    *x = lay->x0 + (px - lay->plot.x) / lay->plot.w * (lay->x1 - lay->x0);
    double fy = lay->y_down ? (py - lay->plot.y) / lay->plot.h : (lay->plot.y + lay->plot.h - py) / lay->plot.h;
    *y = lay->y0 + fy * (lay->y1 - lay->y0);
    return 0;
}

int pl_axes_plot_rect(const pl_axes *ax, pl_rect *out) {
    const pl_layout *lay = layout_of(ax);
    if (!lay) return -1;
    *out = lay->plot;
    return 0;
}

int pl_axes_colorbar_rect(const pl_axes *ax, pl_rect *out) {
    const pl_layout *lay = layout_of(ax);
    if (!lay || lay->colorbar.w <= 0) return -1;
    *out = lay->colorbar;
    return 0;
}

int pl_axes_token_rect(const pl_axes *ax, int64_t i, pl_rect *out) {
    const pl_layout *lay = layout_of(ax);
    if (!lay || i < 0 || i >= lay->n_token_rects || lay->token_rects[i].w <= 0) return -1;
    *out = lay->token_rects[i];
    return 0;
}

int64_t pl_axes_token_at(const pl_axes *ax, double px, double py) {
    const pl_layout *lay = layout_of(ax);
    if (!lay) return -1;
    for (int64_t i = 0; i < lay->n_token_rects; i++) {
        pl_rect r = lay->token_rects[i];
        if (r.w > 0 && px >= r.x && px < r.x + r.w && py >= r.y && py < r.y + r.h) return i;
    }
    return -1;
}

int pl_axes_heatmap_cell_at(const pl_axes *ax, double px, double py, int64_t *row, int64_t *col) {
    double x, y;
    if (!ax || !ax->heat || pl_axes_px_to_data(ax, px, py, &x, &y)) return -1;
    double c = floor(x + 0.5), r = floor(y + 0.5);
    if (c < 0 || r < 0 || c >= (double)ax->heat->n_cols || r >= (double)ax->heat->n_rows) return -1;
    *row = (int64_t)r;
    *col = (int64_t)c;
    return 0;
}
