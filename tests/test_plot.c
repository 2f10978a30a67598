// gui/plot: render into image surfaces and check pixel VALUES against independent references
// (matplotlib's published viridis entries, ColorBrewer/Tableau hex codes, alpha compositing, the
// linear data->pixel map), plus file formats, hit-testing and degenerate inputs.
// Set PL_PLOT_OUT=<dir> to keep the demo figures for looking at them.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gui/plot/plot.h"
#include "gui/plot/plot_internal.h"
#include "runtime/base/error.h"
#include "tests/support/test_support.h"

typedef struct {
    int r, g, b;
} px_rgb;

static px_rgb hex_rgb(unsigned h) { return (px_rgb){(h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff}; }
static px_rgb to_px(pl_rgb c) { return (px_rgb){(int)lround(c.r * 255), (int)lround(c.g * 255), (int)lround(c.b * 255)}; }

static px_rgb pixel(cairo_surface_t *s, double x, double y) {
    cairo_surface_flush(s);
    int ix = (int)floor(x), iy = (int)floor(y);
    assert_true(ix >= 0 && iy >= 0 && ix < cairo_image_surface_get_width(s) && iy < cairo_image_surface_get_height(s));
    const uint32_t *row = (const uint32_t *)(cairo_image_surface_get_data(s) + iy * cairo_image_surface_get_stride(s));
    uint32_t v = row[ix];  // opaque: the figure paints its background first
    return (px_rgb){(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
}

static int color_dist(px_rgb a, px_rgb b) {
    int d = abs(a.r - b.r);
    if (abs(a.g - b.g) > d) d = abs(a.g - b.g);
    if (abs(a.b - b.b) > d) d = abs(a.b - b.b);
    return d;
}

static void assert_color_near(px_rgb got, px_rgb want, int tol, const char *what) {
    int d = color_dist(got, want);
    if (d > tol) {
        print_error("%s: got (%d,%d,%d), want (%d,%d,%d), max channel diff %d > %d\n", what, got.r, got.g, got.b,
                    want.r, want.g, want.b, d, tol);
        fail();
    }
}

// Render fig into a fresh image surface (caller destroys it).
static cairo_surface_t *render(pl_figure *fig, int w, int h) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(s);
    assert_int_equal(pl_plot_draw(fig, cr, w, h), 0);
    assert_int_equal(cairo_status(cr), CAIRO_STATUS_SUCCESS);
    cairo_destroy(cr);
    return s;
}

// Smallest colour distance to `want` within a (2r+1)^2 window around (x, y).
static int best_near(cairo_surface_t *s, double x, double y, int r, px_rgb want) {
    int best = 999;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            int d = color_dist(pixel(s, x + dx, y + dy), want);
            if (d < best) best = d;
        }
    return best;
}

// ---- colormaps against published values ----

static void test_colormap_reference(void **state) {
    (void)state;
    // matplotlib viridis entries 0, 128 and 255 (_cm_listed.py), and ColorBrewer RdBu ends/middle.
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, 0)), (px_rgb){68, 1, 84}, 1, "viridis(0)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, 128 / 255.0)), (px_rgb){33, 145, 140}, 1, "viridis(128/255)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, 64 / 255.0)), (px_rgb){59, 82, 139}, 1, "viridis(64/255)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, 1)), (px_rgb){253, 231, 37}, 1, "viridis(1)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_DIVERGING, 0)), hex_rgb(0x053061), 1, "diverging(0)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_DIVERGING, 0.5)), hex_rgb(0xf7f7f7), 1, "diverging(0.5)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_DIVERGING, 1)), hex_rgb(0x67001f), 1, "diverging(1)");
    // Clamping and NaN.
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, -3)), (px_rgb){68, 1, 84}, 1, "viridis(-3)");
    assert_color_near(to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, 7)), (px_rgb){253, 231, 37}, 1, "viridis(7)");
    pl_rgb mid = pl_colormap_eval(PL_CMAP_VIRIDIS, NAN);
    assert_true(isfinite(mid.r) && isfinite(mid.g) && isfinite(mid.b));
    // Tableau 10 first two colours.
    assert_color_near(to_px(pl_palette_color(PL_THEME_LIGHT, 0)), hex_rgb(0x1f77b4), 0, "palette 0");
    assert_color_near(to_px(pl_palette_color(PL_THEME_LIGHT, 1)), hex_rgb(0xff7f0e), 0, "palette 1");
}

// ---- ticks ----

static void test_nice_ticks(void **state) {
    (void)state;
    double t[PL_MAX_TICKS], step;
    int n = pl_nice_ticks(0, 0.93, 5, t, &step);
    assert_float_equal(step, 0.2, 1e-12);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) assert_float_equal(t[i], 0.2 * i, 1e-12);
    n = pl_nice_ticks(-3.2, 47, 5, t, &step);
    assert_float_equal(step, 10, 1e-12);
    assert_int_equal(n, 5);
    assert_float_equal(t[0], 0, 0);
    assert_false(signbit(t[0]));  // never "-0"
    // Property check over many ranges: 1-2-5 mantissa, inside the range, a sensible count.
    unsigned seed = 12345;
    for (int k = 0; k < 2000; k++) {
        seed = seed * 1103515245u + 12345u;
        double a = ((seed >> 8) % 100000) / 1000.0 - 50;
        seed = seed * 1103515245u + 12345u;
        double scale = pow(10, (int)((seed >> 8) % 12) - 6);
        seed = seed * 1103515245u + 12345u;
        double lo = a * scale, hi = lo + (1 + (seed >> 8) % 1000) * scale * 0.01;
        int target = 2 + k % 9;
        n = pl_nice_ticks(lo, hi, target, t, &step);
        double mant = step / pow(10, floor(log10(step) + 1e-9));
        assert_true(fabs(mant - 1) < 1e-6 || fabs(mant - 2) < 1e-6 || fabs(mant - 5) < 1e-6);
        assert_true(n >= 1 && n <= 2 * target + 2);
        for (int i = 0; i < n; i++) {
            assert_true(t[i] >= lo - step * 1e-6 && t[i] <= hi + step * 1e-6);
            double q = t[i] / step;
            assert_true(fabs(q - round(q)) < 1e-6);
        }
    }
    char buf[32];
    pl_format_tick(buf, sizeof buf, 0.25, 0.05);
    assert_string_equal(buf, "0.25");
    pl_format_tick(buf, sizeof buf, 1, 0.2);
    assert_string_equal(buf, "1.0");
    pl_format_tick(buf, sizeof buf, 40, 10);
    assert_string_equal(buf, "40");
    pl_format_tick(buf, sizeof buf, 1500000, 500000);
    assert_string_equal(buf, "1.5e+06");
    double lo = 5, hi = 5;
    pl_fix_range(&lo, &hi);
    assert_true(lo < 5 && hi > 5);
    lo = NAN, hi = 1;
    pl_fix_range(&lo, &hi);
    assert_true(lo == 0 && hi == 1);
}

// ---- heatmap ----

static void test_heatmap_cells_and_colorbar(void **state) {
    (void)state;
    // 4 x 6, values spanning exactly [0, 1]; a causal-style NaN upper triangle in the first rows.
    enum { R = 4, C = 6 };
    float v[R * C];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) v[i * C + j] = (float)((i * C + j) % 5) / 4.0f;
    v[0 * C + 0] = 0.0f;
    v[1 * C + 2] = 0.5f;
    v[3 * C + 5] = 1.0f;
    v[0 * C + 3] = NAN;  // masked
    v[0 * C + 4] = NAN;
    v[1 * C + 4] = NAN;
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    const char *rows[R] = {"q0", "q1", "q2", "q3"};
    const char *cols[C] = {"k0", "k1", "k2", "k3", "k4", "k5"};
    assert_int_equal(pl_axes_heatmap(ax, v, R, C, rows, cols, "attention"), 0);
    pl_axes_set_title(ax, "heatmap");
    cairo_surface_t *s = render(fig, 800, 500);

    // Independent reference colours at 0, 0.5 (between entries 127 and 128) and 1.
    struct { int i, j; px_rgb want; } known[] = {
        {0, 0, {68, 1, 84}}, {1, 2, {33, 145, 140}}, {3, 5, {253, 231, 37}}};
    for (int k = 0; k < 3; k++) {
        double px, py;
        assert_int_equal(pl_axes_data_to_px(ax, known[k].j, known[k].i, &px, &py), 0);
        assert_color_near(pixel(s, px, py), known[k].want, 2, "heatmap cell with a known value");
        int64_t r, c;
        assert_int_equal(pl_axes_heatmap_cell_at(ax, px, py, &r, &c), 0);
        assert_int_equal(r, known[k].i);
        assert_int_equal(c, known[k].j);
    }
    // Every cell: centre colour = colormap at its normalised value, NaN = background.
    px_rgb bg = to_px(pl_theme_background(PL_THEME_LIGHT));
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) {
            double px, py;
            pl_axes_data_to_px(ax, j, i, &px, &py);
            float x = v[i * C + j];
            px_rgb want = isnan(x) ? bg : to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, x));
            assert_color_near(pixel(s, px, py), want, 2, "heatmap cell");
        }
    // Cells are flat: a point 30% of a cell away from the centre has the same colour.
    pl_rect plot;
    assert_int_equal(pl_axes_plot_rect(ax, &plot), 0);
    double cw = plot.w / C, ch = plot.h / R, px, py;
    pl_axes_data_to_px(ax, 2, 1, &px, &py);
    assert_color_near(pixel(s, px + 0.3 * cw, py - 0.3 * ch), (px_rgb){33, 145, 140}, 2, "cell edge region");
    // Outside the grid: no cell.
    int64_t r, c;
    assert_int_equal(pl_axes_heatmap_cell_at(ax, plot.x - 5, plot.y + 5, &r, &c), -1);

    // Colour bar: top = colormap(1) (vmax), bottom = colormap(0) (vmin), middle = colormap(0.5).
    pl_rect cb;
    assert_int_equal(pl_axes_colorbar_rect(ax, &cb), 0);
    assert_true(cb.x > plot.x + plot.w);
    assert_color_near(pixel(s, cb.x + cb.w / 2, cb.y + 1.5), (px_rgb){253, 231, 37}, 4, "colour bar top");
    assert_color_near(pixel(s, cb.x + cb.w / 2, cb.y + cb.h - 1.5), (px_rgb){68, 1, 84}, 4, "colour bar bottom");
    assert_color_near(pixel(s, cb.x + cb.w / 2, cb.y + cb.h / 2), (px_rgb){33, 145, 140}, 4, "colour bar middle");
    cairo_surface_destroy(s);
    pl_figure_free(fig);
}

static void test_heatmap_fixed_range_diverging(void **state) {
    (void)state;
    float v[4] = {-2, 0, 2, 1};
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    assert_int_equal(pl_axes_heatmap(ax, v, 2, 2, NULL, NULL, NULL), 0);
    pl_axes_set_colormap(ax, PL_CMAP_DIVERGING, -2, 2);
    cairo_surface_t *s = render(fig, 600, 600);
    double px, py;
    pl_axes_data_to_px(ax, 0, 0, &px, &py);
    assert_color_near(pixel(s, px, py), hex_rgb(0x053061), 2, "diverging low end");
    pl_axes_data_to_px(ax, 1, 0, &px, &py);
    assert_color_near(pixel(s, px, py), hex_rgb(0xf7f7f7), 2, "diverging centre");
    pl_axes_data_to_px(ax, 0, 1, &px, &py);
    assert_color_near(pixel(s, px, py), hex_rgb(0x67001f), 2, "diverging high end");
    // Square matrix -> square cells.
    pl_rect plot;
    pl_axes_plot_rect(ax, &plot);
    assert_true(fabs(plot.w - plot.h) < 1.0);
    cairo_surface_destroy(s);
    pl_figure_free(fig);
}

// ---- lines and bands ----

static void test_line_through_points_and_band(void **state) {
    (void)state;
    double x[4] = {0, 1, 2, 3}, y[4] = {0, 2, 1, 3};
    double lo[4], hi[4];
    for (int i = 0; i < 4; i++) lo[i] = y[i] - 1, hi[i] = y[i] + 1;
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    int sidx = pl_axes_line_band(ax, x, y, lo, hi, 4, NULL);
    assert_int_equal(sidx, 0);
    pl_rgb magenta = {0.8, 0.1, 0.6};
    assert_int_equal(pl_axes_series_style(ax, sidx, &magenta, 0, 0), 0);
    pl_axes_set_xlabel(ax, "layer");
    pl_axes_set_ylabel(ax, "value");
    cairo_surface_t *s = render(fig, 800, 500);
    px_rgb want = to_px(magenta), bg = to_px(pl_theme_background(PL_THEME_LIGHT));

    // The data->pixel map is linear: check it against two points and the plot rectangle.
    pl_rect plot;
    assert_int_equal(pl_axes_plot_rect(ax, &plot), 0);
    double ax0, ay0, ax1, ay1, ax2, ay2;
    pl_axes_data_to_px(ax, 0, 0, &ax0, &ay0);
    pl_axes_data_to_px(ax, 1, 1, &ax1, &ay1);
    pl_axes_data_to_px(ax, 2, 2, &ax2, &ay2);
    assert_float_equal(ax2 - ax1, ax1 - ax0, 1e-9);
    assert_float_equal(ay2 - ay1, ay1 - ay0, 1e-9);
    assert_true(ay1 < ay0);  // y grows upwards
    double bx, by;
    assert_int_equal(pl_axes_px_to_data(ax, ax1, ay1, &bx, &by), 0);
    assert_float_equal(bx, 1, 1e-9);
    assert_float_equal(by, 1, 1e-9);

    // The line passes through every point and every segment midpoint.
    for (int i = 0; i < 4; i++) {
        double px, py;
        pl_axes_data_to_px(ax, x[i], y[i], &px, &py);
        assert_true(px >= plot.x && px <= plot.x + plot.w && py >= plot.y && py <= plot.y + plot.h);
        assert_true(best_near(s, px, py, 1, want) <= 12);
        if (i < 3) {
            pl_axes_data_to_px(ax, (x[i] + x[i + 1]) / 2, (y[i] + y[i + 1]) / 2, &px, &py);
            assert_true(best_near(s, px, py, 1, want) <= 12);
        }
    }
    // Band at x = 1.3: line y = 1.7, band [0.7, 2.7]. Inside (y = 2.3) the pixel is the background
    // composited with the line colour at some alpha in (0.1, 0.4), the same alpha on each channel;
    // outside (y = 3.2) it is the background.
    double px, py;
    pl_axes_data_to_px(ax, 1.3, 2.3, &px, &py);
    px_rgb in = pixel(s, px, py);
    double a_r = (double)(bg.r - in.r) / (bg.r - want.r), a_g = (double)(bg.g - in.g) / (bg.g - want.g),
           a_b = (double)(bg.b - in.b) / (bg.b - want.b);
    assert_true(a_r > 0.1 && a_r < 0.4);
    assert_float_equal(a_g, a_r, 0.03);
    assert_float_equal(a_b, a_r, 0.03);
    pl_axes_data_to_px(ax, 1.3, 0.9, &px, &py);  // inside, near the lower edge
    assert_true(color_dist(pixel(s, px, py), in) <= 3);
    pl_axes_data_to_px(ax, 1.3, 3.2, &px, &py);
    assert_color_near(pixel(s, px, py), bg, 0, "above the band");
    pl_axes_data_to_px(ax, 1.3, 0.2, &px, &py);
    assert_color_near(pixel(s, px, py), bg, 0, "below the band");
    // Far from the line there is no line colour.
    pl_axes_data_to_px(ax, 0.6, 3.0, &px, &py);
    assert_true(best_near(s, px, py, 2, want) > 60);
    cairo_surface_destroy(s);
    pl_figure_free(fig);
}

// ---- bars ----

// Height in pixels of the bar of colour `want` at column px: from the baseline up to the top of
// the solid run that starts just above the baseline (the frame line covers the baseline itself).
static double bar_height(cairo_surface_t *s, double px, double base_py, px_rgb want) {
    int y = (int)floor(base_py) - 3;
    if (color_dist(pixel(s, px, y), want) > 3) return 0;
    while (y > 0 && color_dist(pixel(s, px, y - 1), want) <= 3) y--;
    return base_py - y;
}

static void test_bar_heights(void **state) {
    (void)state;
    // Two series x 4 groups.
    double v[2 * 4] = {1, 2, 4, 3, 0.5, 3.5, 1.5, 2.5};
    const char *groups[4] = {"honest", "theater", "skipped", "other"};
    const char *series[2] = {"model A", "model B"};
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    assert_int_equal(pl_axes_bars(ax, v, NULL, 4, 2, groups, series), 0);
    pl_axes_set_legend(ax, 0);
    cairo_surface_t *s = render(fig, 800, 500);
    px_rgb col[2] = {hex_rgb(0x1f77b4), hex_rgb(0xff7f0e)};  // Tableau 10, independent of the code
    double h0 = 0;
    for (int sidx = 0; sidx < 2; sidx++)
        for (int g = 0; g < 4; g++) {
            // Series sidx of group g is centred at g - 0.4 + (sidx + 0.5) * 0.4.
            double cx = g - 0.4 + (sidx + 0.5) * 0.4, px, base, top;
            pl_axes_data_to_px(ax, cx, 0, &px, &base);
            pl_axes_data_to_px(ax, cx, v[sidx * 4 + g], &px, &top);
            double h = bar_height(s, px, base, col[sidx]);
            if (fabs(h - (base - top)) > 1.5) print_error("bar %d/%d: measured %.1f px, expected %.1f\n", sidx, g, h, base - top);
            assert_true(fabs(h - (base - top)) <= 1.5);
            if (sidx == 0 && g == 0) h0 = h;
            else assert_float_equal(h / h0, v[sidx * 4 + g] / v[0], 0.02 * v[sidx * 4 + g] / v[0] + 0.01);
        }
    // Bars start at the frame: y = 0 is the bottom of the plot.
    pl_rect plot;
    pl_axes_plot_rect(ax, &plot);
    double px, base;
    pl_axes_data_to_px(ax, 0, 0, &px, &base);
    assert_float_equal(base, plot.y + plot.h, 1e-6);
    cairo_surface_destroy(s);
    pl_figure_free(fig);
}

// ---- ROC / reliability / dark theme ----

static void test_roc_reliability_dark(void **state) {
    (void)state;
    double fpr[5] = {0, 0.1, 0.3, 0.6, 1}, tpr[5] = {0, 0.5, 0.8, 0.95, 1};
    double mp[5] = {0.1, 0.3, 0.5, 0.7, 0.9}, fp[5] = {0.05, 0.25, 0.55, 0.8, 0.92};
    int64_t counts[5] = {120, 80, 0, 60, 200};
    pl_figure *fig = pl_figure_new(1, 2);
    pl_figure_set_theme(fig, PL_THEME_DARK);
    pl_axes *roc = pl_figure_axes(fig, 0, 0), *rel = pl_figure_axes(fig, 0, 1);
    assert_int_equal(pl_axes_roc(roc, fpr, tpr, 5, "probe (AUC 0.84)"), 0);
    assert_int_equal(pl_axes_reliability(rel, mp, fp, counts, 5, "probe"), 0);
    cairo_surface_t *s = render(fig, 1000, 500);
    // Background follows the theme.
    assert_color_near(pixel(s, 1, 1), hex_rgb(0x1e1e1e), 0, "dark background");
    // ROC limits are [0, 1]: (0,0) is the plot's bottom-left corner, (1,1) its top-right.
    pl_rect plot;
    pl_axes_plot_rect(roc, &plot);
    double px, py;
    pl_axes_data_to_px(roc, 0, 0, &px, &py);
    assert_float_equal(px, plot.x, 1e-6);
    assert_float_equal(py, plot.y + plot.h, 1e-6);
    pl_axes_data_to_px(roc, 1, 1, &px, &py);
    assert_float_equal(px, plot.x + plot.w, 1e-6);
    assert_float_equal(py, plot.y, 1e-6);
    // The curve passes through (0.3, 0.8) in the (lightened) palette colour 0.
    px_rgb c0 = to_px(pl_palette_color(PL_THEME_DARK, 0));
    pl_axes_data_to_px(roc, 0.3, 0.8, &px, &py);
    assert_true(best_near(s, px, py, 1, c0) <= 12);
    // Reliability: marker at each bin centre in the series colour.
    pl_axes_data_to_px(rel, 0.7, 0.8, &px, &py);
    assert_color_near(pixel(s, px, py), c0, 3, "reliability marker");
    cairo_surface_destroy(s);
    pl_figure_free(fig);
}

// ---- token strip ----

static void test_token_strip(void **state) {
    (void)state;
    enum { N = 40 };
    const char *tok[N];
    float score[N];
    int seg[N];
    static const char *words[] = {"The", " cat", " sat", " on", " the", " mat", ".", "\n", " Let", "'s", " think"};
    for (int i = 0; i < N; i++) {
        tok[i] = words[i % 11];
        score[i] = (float)((i % 9) - 4) / 4.0f;  // -1 .. 1
        seg[i] = i < 12 ? PL_SEGMENT_PROMPT : i < 32 ? PL_SEGMENT_COT : PL_SEGMENT_ANSWER;
    }
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    assert_int_equal(pl_axes_tokens(ax, tok, score, seg, N), 0);
    pl_axes_set_title(ax, "tokens");
    cairo_surface_t *s = render(fig, 800, 500);
    pl_rect plot, r, prev = {0};
    assert_int_equal(pl_axes_plot_rect(ax, &plot), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pl_axes_token_rect(ax, i, &r), 0);
        assert_true(r.w > 0 && r.h > 0);
        assert_true(r.x >= plot.x - 1e-6 && r.x + r.w <= plot.x + plot.w + 1e-6 && r.y >= plot.y - 1e-6 &&
                    r.y + r.h <= plot.y + plot.h + 1e-6);
        if (i > 0) {
            // Reading order, no overlap; after a newline token the next starts a new line at the left.
            int same_line = fabs(r.y - prev.y) < 1e-6;
            if (same_line) assert_true(r.x >= prev.x + prev.w);
            else assert_true(r.y >= prev.y + prev.h);
            if (strchr(tok[i - 1], '\n')) {
                assert_false(same_line);
                assert_float_equal(r.x, plot.x, 1e-6);
            }
        }
        // Hit-testing finds the token at its rectangle's centre.
        assert_int_equal(pl_axes_token_at(ax, r.x + r.w / 2, r.y + r.h / 2), i);
        // Box colour (left padding, free of text) = diverging map at the symmetric range [-1, 1].
        px_rgb want = to_px(pl_colormap_eval(PL_CMAP_DIVERGING, (score[i] + 1) / 2));
        assert_color_near(pixel(s, r.x + 1, r.y + 1), want, 2, "token background");
        prev = r;
    }
    // Ends of the scale by published hex: score -1 is RdBu blue, +1 RdBu red.
    assert_int_equal(pl_axes_token_rect(ax, 0, &r), 0);  // score -1
    assert_color_near(pixel(s, r.x + 1, r.y + 1), hex_rgb(0x053061), 2, "score -1");
    assert_int_equal(pl_axes_token_rect(ax, 8, &r), 0);  // score +1
    assert_color_near(pixel(s, r.x + 1, r.y + 1), hex_rgb(0x67001f), 2, "score +1");
    // Underline of a chain-of-thought token is purple, of an answer token green.
    assert_int_equal(pl_axes_token_rect(ax, 20, &r), 0);
    assert_true(best_near(s, r.x + r.w / 2, r.y + r.h + 2, 1, hex_rgb(0x9467bd)) <= 3);
    assert_int_equal(pl_axes_token_rect(ax, 35, &r), 0);
    assert_true(best_near(s, r.x + r.w / 2, r.y + r.h + 2, 1, hex_rgb(0x2ca02c)) <= 3);
    assert_int_equal(pl_axes_token_at(ax, plot.x + plot.w - 1, plot.y + plot.h - 1), -1);
    assert_int_equal(pl_axes_token_rect(ax, N, &r), -1);
    cairo_surface_destroy(s);
    pl_figure_free(fig);

    // Many tokens in a tiny area: the font shrinks, the rest are reported as not drawn.
    enum { M = 3000 };
    const char **many = malloc(M * sizeof *many);
    for (int i = 0; i < M; i++) many[i] = " token";
    fig = pl_figure_new(1, 1);
    ax = pl_figure_axes(fig, 0, 0);
    assert_int_equal(pl_axes_tokens(ax, many, NULL, NULL, M), 0);
    s = render(fig, 300, 200);
    assert_int_equal(pl_axes_token_rect(ax, 0, &r), 0);
    assert_int_equal(pl_axes_token_rect(ax, M - 1, &r), -1);
    cairo_surface_destroy(s);
    pl_figure_free(fig);
    free(many);
}

// ---- files ----

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void read_head(const char *path, unsigned char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
}

static void test_save_formats(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    double y[3] = {0.5, 0.7, 0.6};
    pl_figure *fig = pl_figure_new(1, 1);
    pl_axes_line(pl_figure_axes(fig, 0, 0), NULL, y, 3, "auroc");
    char path[512];
    unsigned char head[32];

    snprintf(path, sizeof path, "%s/fig.png", dir);
    assert_int_equal(pl_plot_save(fig, path, 1280, 800), 0);
    assert_true(file_size(path) > 1000);
    read_head(path, head, 24);
    assert_memory_equal(head, "\x89PNG\r\n\x1a\n", 8);
    // IHDR: big-endian width and height.
    assert_int_equal((head[16] << 24) | (head[17] << 16) | (head[18] << 8) | head[19], 1280);
    assert_int_equal((head[20] << 24) | (head[21] << 16) | (head[22] << 8) | head[23], 800);

    snprintf(path, sizeof path, "%s/fig.SVG", dir);  // extension case does not matter
    assert_int_equal(pl_plot_save(fig, path, 800, 500), 0);
    assert_true(file_size(path) > 200);
    char text[4096] = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    assert_true(got > 0);
    assert_memory_equal(text, "<?xml", 5);
    assert_non_null(strstr(text, "<svg"));

    // A small heatmap in SVG is drawn as vector cells (an embedded image would be smoothed).
    pl_figure *hm = pl_figure_new(1, 1);
    float cells[4] = {0, 1, NAN, 0.5f};
    assert_int_equal(pl_axes_heatmap(pl_figure_axes(hm, 0, 0), cells, 2, 2, NULL, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s/heatmap.svg", dir);
    assert_int_equal(pl_plot_save(hm, path, 400, 300), 0);
    pl_figure_free(hm);
    f = fopen(path, "rb");
    assert_non_null(f);
    char *svg = calloc(1, 1 << 20);
    got = fread(svg, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(got > 0);
    assert_null(strstr(svg, "<image"));
    free(svg);

    snprintf(path, sizeof path, "%s/fig.pdf", dir);
    assert_int_equal(pl_plot_save(fig, path, 800, 500), 0);
    assert_true(file_size(path) > 200);
    read_head(path, head, 5);
    assert_memory_equal(head, "%PDF-", 5);

    snprintf(path, sizeof path, "%s/fig.bmp", dir);
    assert_int_equal(pl_plot_save(fig, path, 800, 500), -1);
    assert_non_null(strstr(pl_errmsg(), path));
    assert_non_null(strstr(pl_errmsg(), "unknown image format"));
    assert_int_equal(file_size(path), -1);

    const char *bad = "/nonexistent-dir-for-plot-test/fig.png";
    assert_int_equal(pl_plot_save(fig, bad, 800, 500), -1);
    assert_non_null(strstr(pl_errmsg(), bad));
    const char *bad_pdf = "/nonexistent-dir-for-plot-test/fig.pdf";
    assert_int_equal(pl_plot_save(fig, bad_pdf, 800, 500), -1);
    assert_non_null(strstr(pl_errmsg(), bad_pdf));
    assert_int_equal(pl_plot_save(fig, path, 0, 500), -1);
    pl_figure_free(fig);
}

// ---- robustness ----

static void test_degenerate_inputs(void **state) {
    (void)state;
    double nan3[3] = {NAN, NAN, NAN}, same[4] = {5, 5, 5, 5}, one_x[1] = {2}, one_y[1] = {7};
    double huge[3] = {1e300, -1e300, 1e-300}, infs[3] = {INFINITY, 1, -INFINITY};
    double mixed_x[6] = {0, 1, NAN, 3, 4, 5}, mixed_y[6] = {1, NAN, 2, 3, NAN, 1};
    float fnan[4] = {NAN, NAN, NAN, NAN}, fsame[6] = {3, 3, 3, 3, 3, 3}, f1[1] = {0.25f};
    double bars_nan[3] = {NAN, 2, NAN};
    const char *tok_odd[4] = {"", "\t\x01", "a\r\nb", "\xe2\x96\x81word"};

    pl_figure *fig = pl_figure_new(4, 4);
    pl_axes_line(pl_figure_axes(fig, 0, 0), NULL, NULL, 0, "empty");       // empty series
    pl_axes_line(pl_figure_axes(fig, 0, 1), NULL, nan3, 3, "all NaN");     // nothing finite
    int single = pl_axes_line(pl_figure_axes(fig, 0, 2), one_x, one_y, 1, NULL);  // one point
    pl_axes_line(pl_figure_axes(fig, 0, 3), NULL, same, 4, "flat");        // degenerate range
    pl_axes_line(pl_figure_axes(fig, 1, 0), NULL, huge, 3, NULL);
    pl_axes_line_band(pl_figure_axes(fig, 1, 1), NULL, infs, infs, infs, 3, NULL);
    pl_axes_line(pl_figure_axes(fig, 1, 2), mixed_x, mixed_y, 6, "gaps");
    pl_axes_heatmap(pl_figure_axes(fig, 1, 3), NULL, 0, 0, NULL, NULL, NULL);
    pl_axes_heatmap(pl_figure_axes(fig, 2, 0), fnan, 2, 2, NULL, NULL, "all NaN");
    pl_axes_heatmap(pl_figure_axes(fig, 2, 1), fsame, 2, 3, NULL, NULL, NULL);
    pl_axes_heatmap(pl_figure_axes(fig, 2, 2), f1, 1, 1, NULL, NULL, NULL);
    pl_axes_bars(pl_figure_axes(fig, 2, 3), NULL, NULL, 0, 1, NULL, NULL);
    pl_axes_bars(pl_figure_axes(fig, 3, 0), bars_nan, bars_nan, 3, 1, NULL, NULL);
    pl_axes_tokens(pl_figure_axes(fig, 3, 1), NULL, NULL, NULL, 0);
    pl_axes_tokens(pl_figure_axes(fig, 3, 2), tok_odd, fnan, NULL, 4);
    pl_axes_roc(pl_figure_axes(fig, 3, 3), NULL, NULL, 0, NULL);
    for (int size = 0; size < 3; size++) {
        int w = size == 0 ? 1280 : size == 1 ? 400 : 16, h = size == 0 ? 800 : size == 1 ? 250 : 16;
        cairo_surface_t *s = render(fig, w, h);
        cairo_surface_destroy(s);
    }
    // A single point is drawn as a marker at its pixel; all-equal values sit inside the plot.
    if (getenv("PL_PLOT_OUT")) {
        char path[512];
        snprintf(path, sizeof path, "%s/degenerate_1280x800.png", getenv("PL_PLOT_OUT"));
        assert_int_equal(pl_plot_save(fig, path, 1280, 800), 0);
    }
    cairo_surface_t *s = render(fig, 1280, 800);
    pl_axes *ax = pl_figure_axes(fig, 0, 2);
    double px, py;
    assert_int_equal(pl_axes_data_to_px(ax, 2, 7, &px, &py), 0);
    assert_color_near(pixel(s, px, py), to_px(ax->lines[single].color), 3, "single point marker");
    pl_rect plot;
    ax = pl_figure_axes(fig, 0, 3);
    pl_axes_plot_rect(ax, &plot);
    pl_axes_data_to_px(ax, 1, 5, &px, &py);
    assert_float_equal(py, plot.y + plot.h / 2, 1.0);
    cairo_surface_destroy(s);
    pl_figure_free(fig);

    // Misuse fails with a message instead of crashing.
    assert_null(pl_figure_new(0, 1));
    assert_non_null(strstr(pl_errmsg(), "grid"));
    fig = pl_figure_new(1, 1);
    ax = pl_figure_axes(fig, 0, 0);
    assert_null(pl_figure_axes(fig, 1, 0));
    assert_int_equal(pl_axes_data_to_px(ax, 0, 0, &px, &py), -1);  // not drawn yet
    assert_int_equal(pl_axes_line(ax, NULL, NULL, 3, NULL), -1);
    assert_int_equal(pl_axes_line(ax, NULL, same, -1, NULL), -1);
    assert_int_equal(pl_axes_line(ax, NULL, same, 4, NULL), 0);
    assert_int_equal(pl_axes_heatmap(ax, fsame, 2, 3, NULL, NULL, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "axes of its own"));
    assert_int_equal(pl_axes_series_style(ax, 5, NULL, 0, 0), -1);
    assert_int_equal(pl_axes_bars(ax, same, NULL, 2, 0, NULL, NULL), -1);
    pl_figure_free(fig);
    pl_figure_free(NULL);
}

// ---- demo figures at two sizes, both themes (kept under PL_PLOT_OUT for looking at them) ----

static pl_figure *demo_figure(int kind, pl_theme theme) {
    pl_figure *fig = pl_figure_new(1, 1);
    pl_figure_set_theme(fig, theme);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    enum { L = 24 };
    if (kind == 0) {
        double layer[L], a[L], lo[L], hi[L], b[L], blo[L], bhi[L];
        for (int i = 0; i < L; i++) {
            layer[i] = i;
            a[i] = 0.5 + 0.42 / (1 + exp(-(i - 8) / 2.0));
            lo[i] = a[i] - 0.03 - 0.01 * (i % 3), hi[i] = a[i] + 0.03;
            b[i] = 0.5 + 0.25 / (1 + exp(-(i - 14) / 3.0));
            blo[i] = b[i] - 0.04, bhi[i] = b[i] + 0.04;
        }
        pl_axes_set_title(ax, "Probe AUROC by layer (95% CI)");
        pl_axes_set_xlabel(ax, "Layer");
        pl_axes_set_ylabel(ax, "AUROC");
        pl_axes_line_band(ax, layer, a, lo, hi, L, "resid_post: answer correct");
        pl_axes_line_band(ax, layer, b, blo, bhi, L, "attn_out: uses CoT");
        pl_axes_add_hline(ax, 0.5);
    } else if (kind == 1) {
        enum { T = 16 };
        static float v[T * T];
        const char *labels[T] = {"<bos>", "Q", ":", " What", " is", " 17", " +", " 25", "?", " A", ":",
                                 " Let", "'s", " add", " 42", "."};
        for (int i = 0; i < T; i++) {
            double sum = 0;
            for (int j = 0; j <= i; j++) sum += exp(-0.3 * (i - j)) + (j == 0 ? 2 : 0);
            for (int j = 0; j < T; j++) v[i * T + j] = j > i ? NAN : (float)((exp(-0.3 * (i - j)) + (j == 0 ? 2 : 0)) / sum);
        }
        pl_axes_set_title(ax, "Attention, layer 3 head 5");
        pl_axes_set_xlabel(ax, "Key position");
        pl_axes_set_ylabel(ax, "Query position");
        pl_axes_heatmap(ax, v, T, T, labels, labels, "attention weight");
    } else if (kind == 2) {
        double v[3 * 6] = {120, 45, 30, 12, 8, 3, 98, 60, 22, 20, 5, 9, 80, 70, 35, 15, 12, 4};
        double e[3 * 6];
        for (int i = 0; i < 18; i++) e[i] = sqrt(v[i]);
        const char *g[6] = {"faithful", "post-hoc rationalisation", "unfaithful shortcut", "theater", "skipped steps", "other"};
        const char *sl[3] = {"tiny-cot", "qwen-0.5b", "llama-1b"};
        pl_axes_set_title(ax, "CoT taxonomy counts");
        pl_axes_set_ylabel(ax, "Examples");
        pl_axes_bars(ax, v, e, 6, 3, g, sl);
    } else if (kind == 3) {
        double f[7] = {0, 0.05, 0.12, 0.25, 0.45, 0.7, 1}, t[7] = {0, 0.42, 0.63, 0.8, 0.9, 0.97, 1};
        double f2[5] = {0, 0.2, 0.4, 0.7, 1}, t2[5] = {0, 0.3, 0.55, 0.8, 1};
        pl_axes_set_title(ax, "ROC: answer-correctness probe");
        pl_axes_roc(ax, f, t, 7, "layer 12 (AUC 0.86)");
        pl_axes_roc(ax, f2, t2, 5, "layer 2 (AUC 0.62)");
    } else if (kind == 4) {
        double mp[10], fp[10];
        int64_t c[10];
        for (int i = 0; i < 10; i++) {
            mp[i] = 0.05 + 0.1 * i;
            fp[i] = mp[i] * mp[i] * 0.6 + mp[i] * 0.35;
            c[i] = 400 / (1 + abs(i - 4));
        }
        pl_axes_set_title(ax, "Reliability diagram");
        pl_axes_reliability(ax, mp, fp, c, 10, "probe (ECE 0.08)");
    } else if (kind == 6) {
        enum { B = 200 };
        float *v = malloc(B * B * sizeof *v);
        for (int i = 0; i < B; i++)
            for (int j = 0; j < B; j++) v[i * B + j] = (float)(sin(i * 0.05) * cos(j * 0.08) * 3);
        pl_axes_set_title(ax, "Probe weight x layer");
        pl_axes_set_xlabel(ax, "Hidden unit");
        pl_axes_set_ylabel(ax, "Layer");
        pl_axes_heatmap(ax, v, B, B, NULL, NULL, "weight");
        pl_axes_set_colormap(ax, PL_CMAP_DIVERGING, NAN, NAN);
        free(v);
    } else {
        static const char *w[] = {"Q", ":", " Tom", " has", " 3", " apples", " and", " buys", " 5", " more", ".",
                                  " How", " many", "?", "\n", "Let", "'s", " think", ":", " 3", " +", " 5", " =",
                                  " 8", ".", " So", " the", " answer", " is", "\n", "A", ":", " 8"};
        enum { N = sizeof w / sizeof w[0] };
        float sc[N];
        int seg[N];
        for (int i = 0; i < N; i++) {
            sc[i] = (float)sin(i * 0.7) * (i > 14 ? 1.0f : 0.4f);
            seg[i] = i < 15 ? PL_SEGMENT_PROMPT : i < 30 ? PL_SEGMENT_COT : PL_SEGMENT_ANSWER;
        }
        pl_axes_set_title(ax, "Probe score per token");
        pl_axes_tokens(ax, w, sc, seg, N);
    }
    return fig;
}

static void test_demo_figures(void **state) {
    (void)state;
    const char *out = getenv("PL_PLOT_OUT");
    const char *dir = out ? out : test_tmpdir();
    static const char *names[7] = {"lines", "heatmap", "bars", "roc", "reliability", "tokens", "bigheatmap"};
    char path[512];
    for (int kind = 0; kind < 7; kind++)
        for (int theme = 0; theme < 2; theme++)
            for (int size = 0; size < 2; size++) {
                pl_figure *fig = demo_figure(kind, theme ? PL_THEME_DARK : PL_THEME_LIGHT);
                int w = size ? 800 : 1280, h = size ? 500 : 800;
                snprintf(path, sizeof path, "%s/%s_%s_%dx%d.png", dir, names[kind], theme ? "dark" : "light", w, h);
                assert_int_equal(pl_plot_save(fig, path, w, h), 0);
                assert_true(file_size(path) > 2000);
                pl_figure_free(fig);
            }
    // A 2x2 grid with a figure title in one file.
    pl_figure *fig = pl_figure_new(2, 2);
    pl_figure_set_title(fig, "probelab demo");
    double y[5] = {0.5, 0.6, 0.75, 0.8, 0.82};
    pl_axes_line(pl_figure_axes(fig, 0, 0), NULL, y, 5, "AUROC");
    float v[9] = {1, NAN, NAN, 0.5, 0.5, NAN, 0.2, 0.3, 0.5};
    pl_axes_heatmap(pl_figure_axes(fig, 0, 1), v, 3, 3, NULL, NULL, "p");
    double b[3] = {3, 5, 2};
    pl_axes_bars(pl_figure_axes(fig, 1, 0), b, NULL, 3, 1, NULL, NULL);
    double f[3] = {0, 0.3, 1}, t[3] = {0, 0.7, 1};
    pl_axes_roc(pl_figure_axes(fig, 1, 1), f, t, 3, "ROC");
    snprintf(path, sizeof path, "%s/grid_1280x800.png", dir);
    assert_int_equal(pl_plot_save(fig, path, 1280, 800), 0);
    pl_figure_free(fig);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colormap_reference),
        cmocka_unit_test(test_nice_ticks),
        cmocka_unit_test(test_heatmap_cells_and_colorbar),
        cmocka_unit_test(test_heatmap_fixed_range_diverging),
        cmocka_unit_test(test_line_through_points_and_band),
        cmocka_unit_test(test_bar_heights),
        cmocka_unit_test(test_roc_reliability_dark),
        cmocka_unit_test(test_token_strip),
        cmocka_unit_test(test_save_formats),
        cmocka_unit_test(test_degenerate_inputs),
        cmocka_unit_test(test_demo_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
