// `probelab plot`: the files it writes show the data. A sample store is written through the
// recorder; attention values follow a closed form, so the test knows every cell's value without
// reading the store back. Pixel positions come from drawing the same figure in-process at the same
// size (the layout is deterministic); colours are checked in the PNG the command wrote. Also: SVG
// and PDF files, `--figure list`, and the errors for bad stores and unknown figures.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gui/plot/figures.h"
#include "runtime/base/error.h"
#include "tests/support/sample_store.h"
#include "tests/support/test_support.h"

static char dir[512], store[600];

typedef struct {
    int r, g, b;
} px_rgb;

static px_rgb to_px(pl_rgb c) { return (px_rgb){(int)lround(c.r * 255), (int)lround(c.g * 255), (int)lround(c.b * 255)}; }

static px_rgb pixel(cairo_surface_t *s, double x, double y) {
    cairo_surface_flush(s);
    int ix = (int)floor(x), iy = (int)floor(y);
    assert_true(ix >= 0 && iy >= 0 && ix < cairo_image_surface_get_width(s) && iy < cairo_image_surface_get_height(s));
    const uint32_t *row = (const uint32_t *)(cairo_image_surface_get_data(s) + iy * cairo_image_surface_get_stride(s));
    uint32_t v = row[ix];
    return (px_rgb){(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
}

static void assert_color_near(px_rgb got, px_rgb want, int tol, const char *what) {
    int d = abs(got.r - want.r);
    if (abs(got.g - want.g) > d) d = abs(got.g - want.g);
    if (abs(got.b - want.b) > d) d = abs(got.b - want.b);
    if (d > tol) {
        print_error("%s: got (%d,%d,%d), want (%d,%d,%d), max channel diff %d > %d\n", what, got.r, got.g, got.b, want.r,
                    want.g, want.b, d, tol);
        fail();
    }
}

// Run `probelab ARGS` with stderr folded into *out; returns the exit status.
static int probelab(char **out, const char *fmt, ...) {
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    // Under ASan, fontconfig's caches (held by cairo until exit) are reported as leaks: suppress them
    // as tests/test_plot.c does in-process.
    snprintf(cmd, sizeof cmd, "LSAN_OPTIONS=suppressions='%s/lsan.supp' '%s' %s 2>&1", dir, test_probelab_bin(), args);
    return test_run(cmd, out);
}

// Draw figure `name` in-process at w × h so its layout can be queried (caller frees fig).
static pl_figure *layout_of(const char *name, const pl_figure_opts *o, int w, int h) {
    pl_vstore *v;
    assert_int_equal(pl_vstore_open(&v, store), 0);
    pl_figure *fig;
    if (pl_figures_build(&fig, v, name, o) != 0) {
        print_error("%s\n", pl_errmsg());
        fail();
    }
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(s);
    assert_int_equal(pl_plot_draw(fig, cr, w, h), 0);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    pl_vstore_close(v);
    return fig;
}

static cairo_surface_t *load_png(const char *path) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        print_error("%s: cannot read the PNG\n", path);
        fail();
    }
    return s;
}

// The sample store's attention: w(q, k) ∝ exp(-|q - k - h| / (1 + l)) over keys k <= q.
static double sample_attention(int l, int h, int q, int k) {
    double sum = 0;
    for (int j = 0; j <= q; j++) sum += exp(-fabs((double)(q - j - h)) / (1.0 + l));
    return exp(-fabs((double)(q - k - h)) / (1.0 + l)) / sum;
}

static int setup(void **state) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(store, sizeof store, "%s/sample.db", dir);
    char supp[600];
    snprintf(supp, sizeof supp, "%s/lsan.supp", dir);
    FILE *f = fopen(supp, "w");
    if (!f) return -1;
    fputs("leak:libfontconfig.so\n", f);
    fclose(f);
    int rc = test_sample_store_write(store, 12, 0);
    if (rc != 0) fprintf(stderr, "%s\n", pl_errmsg());
    return rc == 0 ? 0 : -1;
}

static void test_attention_cells(void **state) {
    const int W = 900, H = 800, layer = 1, head = 2;
    int64_t run = 2;
    char png[700];
    snprintf(png, sizeof png, "%s/attention.png", dir);
    char *out = NULL;
    int rc = probelab(&out, "plot '%s' --figure attention --run %lld --layer %d --head %d --size %dx%d -o '%s'", store,
                      (long long)run, layer, head, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);

    pl_figure_opts o = pl_figure_opts_default();
    o.run = run, o.layer = layer, o.head = head;
    pl_figure *fig = layout_of("attention", &o, W, H);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    cairo_surface_t *img = load_png(png);

    // Run 2 is an arithmetic run of 25 tokens; the colour range is [0, max of the matrix].
    int n = 25;
    double vmax = 0;
    for (int q = 0; q < n; q++)
        for (int k = 0; k <= q; k++) vmax = fmax(vmax, sample_attention(layer, head, q, k));
    int checked = 0;
    double worst = 0;
    for (int q = 0; q < n; q += 3)
        for (int k = 0; k < n; k += 2) {
            double px, py;
            assert_int_equal(pl_axes_data_to_px(ax, k, q, &px, &py), 0);
            px_rgb got = pixel(img, px, py), want;
            if (k <= q) {
                double v = sample_attention(layer, head, q, k);
                want = to_px(pl_colormap_eval(PL_CMAP_VIRIDIS, v / vmax));
            } else {
                want = to_px(pl_theme_background(PL_THEME_LIGHT));  // causal mask: no data above the diagonal
            }
            char what[64];
            snprintf(what, sizeof what, "cell (q=%d, k=%d)", q, k);
            assert_color_near(got, want, 2, what);
            worst = fmax(worst, abs(got.r - want.r));
            checked++;
        }
    printf("attention: %d cells checked against the closed form, worst red-channel diff %.0f/255\n", checked, worst);
    assert_true(checked > 50);
    cairo_surface_destroy(img);
    pl_figure_free(fig);
}

static void test_curve_passes_through_points(void **state) {
    const int W = 1000, H = 700;
    char png[700];
    snprintf(png, sizeof png, "%s/auroc.png", dir);
    char *out = NULL;
    int rc = probelab(&out, "plot '%s' --figure precot.auroc_by_layer --size %dx%d -o '%s'", store, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    pl_figure *fig = layout_of("precot.auroc_by_layer", NULL, W, H);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    cairo_surface_t *img = load_png(png);
    px_rgb line = to_px(pl_palette_color(PL_THEME_LIGHT, 0));
    for (int l = 0; l < 8; l++) {
        double auroc = 0.5 + 0.45 / (1 + exp(-(l - 2.5))), px, py;  // the values the sample wrote
        assert_int_equal(pl_axes_data_to_px(ax, l, auroc, &px, &py), 0);
        char what[64];
        snprintf(what, sizeof what, "marker at layer %d", l);
        assert_color_near(pixel(img, px, py), line, 12, what);
        // Off the curve, outside its +-0.05 CI band, there is no line colour.
        double qx, qy, off = auroc + 0.12 <= 1 ? 0.12 : -0.12;
        assert_int_equal(pl_axes_data_to_px(ax, l, auroc + off, &qx, &qy), 0);
        px_rgb away = pixel(img, qx, qy);
        assert_true(abs(away.r - line.r) + abs(away.g - line.g) + abs(away.b - line.b) > 60);
    }
    cairo_surface_destroy(img);
    pl_figure_free(fig);
}

static void test_tokens_coloured_by_probe(void **state) {
    const int W = 1000, H = 400;
    char png[700];
    snprintf(png, sizeof png, "%s/tokens.png", dir);
    char *out = NULL;
    int rc = probelab(&out, "plot '%s' --figure tokens --run 1 --score probe:cot_correct --size %dx%d -o '%s'", store, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    pl_figure_opts o = pl_figure_opts_default();
    o.run = 1, o.score = "probe:cot_correct";
    pl_figure *fig = layout_of("tokens", &o, W, H);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    cairo_surface_t *img = load_png(png);
    // Independent reference for the scores: the store's probe_outputs table read with SQLite.
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT pos, value FROM probe_outputs WHERE run_id = 1 ORDER BY pos", -1, &st, NULL),
                     SQLITE_OK);
    double values[64];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 64) values[n++] = sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(n >= 20);
    // A classifier probe's outputs are probabilities: the scale is fixed at 0..1 (white at 0.5,
    // undecided), not stretched to the run's values.
    int near_half = 0;
    for (int i = 0; i < n; i++) {
        pl_rect r;
        assert_int_equal(pl_axes_token_rect(ax, i, &r), 0);
        // The box's top-left inner corner holds the background colour, clear of the text.
        px_rgb want = to_px(pl_colormap_eval(PL_CMAP_DIVERGING, values[i])), got = pixel(img, r.x + 1.5, r.y + 1.5);
        char what[64];
        snprintf(what, sizeof what, "token %d (score %.3f)", i, values[i]);
        assert_color_near(got, want, 2, what);
        if (fabs(values[i] - 0.5) < 0.1) {
            // Close to p = 0.5 the box is nearly white (RdBu's middle is #f7f7f7), never red or blue.
            assert_true(got.r > 200 && got.g > 200 && got.b > 200);
            near_half++;
        }
    }
    assert_true(near_half >= 3);
    cairo_surface_destroy(img);
    pl_figure_free(fig);
}

// Pixels of colour c (within tol) inside rectangle r of img.
static int count_color(cairo_surface_t *img, pl_rect r, px_rgb c, int tol) {
    int count = 0;
    for (int y = (int)ceil(r.y) + 1; y < (int)(r.y + r.h) - 1; y++)
        for (int x = (int)ceil(r.x) + 1; x < (int)(r.x + r.w) - 1; x++) {
            px_rgb p = pixel(img, x, y);
            count += abs(p.r - c.r) <= tol && abs(p.g - c.g) <= tol && abs(p.b - c.b) <= tol;
        }
    return count;
}

// The sample's probe.auroc_by_task: AUROC of task t at layer l.
static double task_auroc(int t, int l) { return t ? 0.55 + 0.2 * l / 7.0 : 0.5 + 0.4 / (1 + exp(-(l - 3.0))); }

static void test_small_multiples(void **state) {
    const int W = 1200, H = 600;
    char png[700];
    snprintf(png, sizeof png, "%s/by_task.png", dir);
    char *out = NULL;
    int rc = probelab(&out, "plot '%s' --figure probe.auroc_by_task --size %dx%d -o '%s'", store, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    pl_figure *fig = layout_of("probe.auroc_by_task", NULL, W, H);
    cairo_surface_t *img = load_png(png);
    // One panel per task (arith, logic), side by side, sharing the y axis.
    pl_axes *ax[2] = {pl_figure_axes(fig, 0, 0), pl_figure_axes(fig, 0, 1)};
    assert_non_null(ax[0]);
    assert_non_null(ax[1]);
    assert_null(pl_figure_axes(fig, 1, 0));
    double y0, y1, x;
    assert_int_equal(pl_axes_data_to_px(ax[0], 0, 0.7, &x, &y0), 0);
    assert_int_equal(pl_axes_data_to_px(ax[1], 0, 0.7, &x, &y1), 0);
    assert_true(fabs(y0 - y1) < 0.5);
    px_rgb blue = to_px(pl_palette_color(PL_THEME_LIGHT, 0)), orange = to_px(pl_palette_color(PL_THEME_LIGHT, 1));
    for (int t = 0; t < 2; t++) {
        // The task's curve passes through its markers, in the colour of series "answer".
        for (int l = 0; l < 8; l++) {
            double px, py;
            assert_int_equal(pl_axes_data_to_px(ax[t], l, task_auroc(t, l), &px, &py), 0);
            char what[64];
            snprintf(what, sizeof what, "task %d, layer %d", t, l);
            assert_color_near(pixel(img, px, py), blue, 12, what);
        }
        // The embed baseline is drawn in the same colour (dashed): no second series colour anywhere.
        pl_rect plot;
        assert_int_equal(pl_axes_plot_rect(ax[t], &plot), 0);
        assert_int_equal(count_color(img, plot, orange, 30), 0);
        // Along the baseline (y = 0.52 / 0.5, away from the curve) some pixels carry that colour.
        int on_baseline = 0;
        for (double bx = 3.05; bx < 6.95; bx += 0.02) {
            double px, py;
            assert_int_equal(pl_axes_data_to_px(ax[t], bx, t ? 0.5 : 0.52, &px, &py), 0);
            px_rgb p = pixel(img, px, py);
            on_baseline += abs(p.r - blue.r) + abs(p.g - blue.g) + abs(p.b - blue.b) < 60;
        }
        assert_true(on_baseline > 10);
    }
    cairo_surface_destroy(img);
    pl_figure_free(fig);

    // --series keeps one task: a single panel showing that task's values.
    snprintf(png, sizeof png, "%s/logic_only.png", dir);
    rc = probelab(&out, "plot '%s' --figure probe.auroc_by_task --series 'logic/*' --size %dx%d -o '%s'", store, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    pl_figure_opts o = pl_figure_opts_default();
    o.series = "logic/*";
    fig = layout_of("probe.auroc_by_task", &o, W, H);
    assert_null(pl_figure_axes(fig, 0, 1));
    img = load_png(png);
    for (int l = 0; l < 8; l++) {
        double px, py;
        assert_int_equal(pl_axes_data_to_px(pl_figure_axes(fig, 0, 0), l, task_auroc(1, l), &px, &py), 0);
        assert_color_near(pixel(img, px, py), blue, 12, "logic marker");
    }
    cairo_surface_destroy(img);
    pl_figure_free(fig);
}

static void test_grouped_counts(void **state) {
    // Series with several x values become grouped bars: groups = x, one bar series per series.
    const int W = 900, H = 600;
    pl_figure *fig = layout_of("steering.taxonomy", NULL, W, H);
    char png[700], *out = NULL;
    snprintf(png, sizeof png, "%s/grouped.png", dir);
    int rc = probelab(&out, "plot '%s' --figure steering.taxonomy --size %dx%d -o '%s'", store, W, H, png);
    if (rc != 0) print_error("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    cairo_surface_t *img = load_png(png);
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    // Bars of group g sit around x = g: "sound" (first, series_order) left of the centre, in palette 0,
    // as tall as its count; "confabulation" right of it in palette 1.
    const double sound[3] = {6, 9, 6}, confab[3] = {5, 2, 5};
    for (int g = 0; g < 3; g++) {
        double px, py, qx, qy;
        assert_int_equal(pl_axes_data_to_px(ax, g - 0.15, sound[g] - 0.3, &px, &py), 0);
        assert_color_near(pixel(img, px, py), to_px(pl_palette_color(PL_THEME_LIGHT, 0)), 3, "sound bar");
        assert_int_equal(pl_axes_data_to_px(ax, g - 0.15, sound[g] + 0.3, &qx, &qy), 0);
        assert_color_near(pixel(img, qx, qy), to_px(pl_theme_background(PL_THEME_LIGHT)), 40, "above the sound bar");
        assert_int_equal(pl_axes_data_to_px(ax, g + 0.15, confab[g] - 0.3, &px, &py), 0);
        assert_color_near(pixel(img, px, py), to_px(pl_palette_color(PL_THEME_LIGHT, 1)), 3, "confabulation bar");
    }
    cairo_surface_destroy(img);
    pl_figure_free(fig);
}

static int file_starts_with(const char *path, const char *magic) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[16] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return got >= strlen(magic) && memcmp(buf, magic, strlen(magic)) == 0;
}

static void test_formats_and_list(void **state) {
    const char *figures[] = {"attention-grid", "steering.flip_rate", "theater.taxonomy", "probe.roc", "probe.calibration",
                             "logit_lens.answer_prob", "probe.accuracy_by_layer"};
    char path[700], *out = NULL;
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
        const char *ext = i % 3 == 0 ? "png" : i % 3 == 1 ? "svg" : "pdf";
        snprintf(path, sizeof path, "%s/%s.%s", dir, figures[i], ext);
        int rc = probelab(&out, "plot '%s' --figure %s -o '%s'", store, figures[i], path);
        if (rc != 0) print_error("%s: %s", figures[i], out);
        free(out);
        assert_int_equal(rc, 0);
        const char *magic = i % 3 == 0 ? "\x89PNG" : i % 3 == 1 ? "<?xml" : "%PDF";
        assert_true(file_starts_with(path, magic));
    }
    assert_int_equal(probelab(&out, "plot '%s' --figure list", store), 0);
    const char *expect[] = {"attention ", "attention-grid", "tokens", "precot.auroc_by_layer", "theater.taxonomy", "probe.roc"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) assert_non_null(strstr(out, expect[i]));
    free(out);
}

static void expect_error(const char *args, const char *needle) {
    char *out = NULL;
    int rc = probelab(&out, "%s", args);
    if (rc == 0 || !strstr(out, needle)) print_error("`probelab %s`: rc %d, output:\n%s(wanted '%s')\n", args, rc, out, needle);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, needle));
    assert_null(strstr(out, "Sanitizer"));
    free(out);
}

static void test_bad_inputs(void **state) {
    char path[700], args[2048], out_png[700];
    snprintf(out_png, sizeof out_png, "%s/never.png", dir);
    // Not a store: a text file.
    snprintf(path, sizeof path, "%s/notes.db", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a database\n", f);
    fclose(f);
    snprintf(args, sizeof args, "plot '%s' --figure attention -o '%s'", path, out_png);
    expect_error(args, "not a probelab store");
    // Missing file.
    snprintf(args, sizeof args, "plot '%s/missing.db' --figure list", dir);
    expect_error(args, "no such store");
    // A store from a newer schema.
    char newer[700], cmd[2048];
    snprintf(newer, sizeof newer, "%s/newer.db", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", store, newer);
    assert_int_equal(test_run(cmd, NULL), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    snprintf(args, sizeof args, "plot '%s' --figure tokens -o '%s'", newer, out_png);
    expect_error(args, "newer");
    // An empty store (created, nothing recorded): figures that need runs fail, the list says so.
    char empty[700];
    snprintf(empty, sizeof empty, "%s/empty.db", dir);
    assert_int_equal(test_sample_store_write(empty, 0, 0), 0);
    snprintf(args, sizeof args, "plot '%s' --figure tokens -o '%s'", empty, out_png);
    expect_error(args, "no runs");
    snprintf(args, sizeof args, "plot '%s' --figure attention -o '%s'", empty, out_png);
    expect_error(args, "no runs");
    // Unknown figure, unknown extension, bad option values.
    snprintf(args, sizeof args, "plot '%s' --figure nosuch -o '%s'", store, out_png);
    expect_error(args, "unknown figure 'nosuch'");
    snprintf(args, sizeof args, "plot '%s' --figure attention -o '%s/x.bmp'", store, dir);
    expect_error(args, "x.bmp");
    snprintf(args, sizeof args, "plot '%s' --figure attention --layer 7 -o '%s'", store, out_png);
    expect_error(args, "not layer 7");
    snprintf(args, sizeof args, "plot '%s' --figure tokens --run 999 -o '%s'", store, out_png);
    expect_error(args, "run 999 does not exist");
    // An unknown probe is an error naming it (issue 9: it used to draw blank boxes with exit 0).
    snprintf(args, sizeof args, "plot '%s' --figure tokens --score probe:nosuch -o '%s/blank.png'", store, dir);
    expect_error(args, "no probe named 'nosuch'");
    snprintf(args, sizeof args, "plot '%s' --figure tokens --score nosuch -o '%s'", store, out_png);
    expect_error(args, "unknown score source 'nosuch'");
    snprintf(args, sizeof args, "plot '%s' --figure probe.auroc_by_task --series 'nosuch*' -o '%s'", store, out_png);
    expect_error(args, "no series of analysis probe.auroc_by_task match 'nosuch*' (series: arith/answer,");
    snprintf(args, sizeof args, "plot '%s' --figure tokens --size 10 -o '%s'", store, out_png);
    expect_error(args, "--size");
    FILE *never = fopen(out_png, "rb");
    assert_null(never);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_cells),
        cmocka_unit_test(test_curve_passes_through_points),
        cmocka_unit_test(test_tokens_coloured_by_probe),
        cmocka_unit_test(test_small_multiples),
        cmocka_unit_test(test_grouped_counts),
        cmocka_unit_test(test_formats_and_list),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
