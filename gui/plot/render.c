// Drawing a figure: the style, text helpers, and x/y axes (lines, bands, bars, reference lines,
// ticks, legend). Heatmaps and token strips are in heatmap.c and tokens.c.
#include "gui/plot/plot_internal.h"
#include "runtime/base/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAND_ALPHA 0.22
#define BAR_GROUP_WIDTH 0.8  // fraction of a group slot covered by its bars

// ---- text ----

void pl_text_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double pl_text_width(cairo_t *cr, const char *text) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, text, &te);
    return te.x_advance;
}

double pl_text_height(cairo_t *cr) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.ascent + fe.descent;
}

void pl_text_draw(cairo_t *cr, const char *text, double x, double y, double ax, double ay, double angle) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = pl_text_width(cr, text), h = fe.ascent + fe.descent;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    if (angle != 0) cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * w, -ay * h + fe.ascent);
    cairo_show_text(cr, text);
    cairo_restore(cr);
}

void pl_set_rgb(cairo_t *cr, pl_rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }
void pl_set_rgba(cairo_t *cr, pl_rgb c, double alpha) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

static pl_rgb hex(unsigned h) { return (pl_rgb){((h >> 16) & 0xff) / 255.0, ((h >> 8) & 0xff) / 255.0, (h & 0xff) / 255.0}; }

static pl_style make_style(const pl_figure *fig, int width, int height) {
    pl_style st;
    st.kind = fig->theme;
    st.bg = pl_theme_background(fig->theme);
    if (fig->theme == PL_THEME_DARK) {
        st.fg = hex(0xe8e8e8);
        st.muted = hex(0xb4b4b4);
        st.grid = hex(0x363636);
        st.frame = hex(0x8a8a8a);
        st.legend_bg = hex(0x262626);
        st.legend_border = hex(0x4a4a4a);
    } else {
        st.fg = hex(0x222222);
        st.muted = hex(0x4a4a4a);
        st.grid = hex(0xe8e8e8);
        st.frame = hex(0x7a7a7a);
        st.legend_bg = hex(0xffffff);
        st.legend_border = hex(0xcccccc);
    }
    double s = fig->font_scale;
    if (s <= 0) {  // grow fonts gently with the surface: 1 at 800x500, ~1.26 at 1280x800
        s = sqrt(fmin(width / 800.0, height / 500.0));
        s = fmin(fmax(s, 0.8), 1.6);
    }
    st.s = s;
    st.fs_tick = 11 * s;
    st.fs_label = 12.5 * s;
    st.fs_title = 14 * s;
    st.fs_fig_title = 16 * s;
    st.pad = 6 * s;
    st.tick_len = 4 * s;
    st.line_width = 1.8 * s;
    return st;
}

double pl_axes_title_height(cairo_t *cr, const pl_axes *ax, const pl_style *st) {
    if (!ax->title || !ax->title[0]) return st->pad;
    pl_text_font(cr, st->fs_title, 1);
    return pl_text_height(cr) + 2 * st->pad;
}

void pl_draw_axes_title(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell) {
    if (!ax->title || !ax->title[0]) return;
    pl_text_font(cr, st->fs_title, 1);
    pl_set_rgb(cr, st->fg);
    pl_text_draw(cr, ax->title, cell.x + cell.w / 2, cell.y + st->pad, 0.5, 0, 0);
}

// ---- data ranges ----

static void widen(double *lo, double *hi, double v) {
    if (!isfinite(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

// Automatic limits of an x/y axes; fixed limits from the axes replace them.
static void xy_limits(const pl_axes *ax, double *x0, double *x1, double *y0, double *y1) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < ax->n_lines; i++) {
        const pl_line *l = &ax->lines[i];
        for (int64_t k = 0; k < l->n; k++) {
            if (!isfinite(l->x[k])) continue;
            int any = isfinite(l->y[k]);
            widen(&ylo, &yhi, l->y[k]);
            if (l->lower && isfinite(l->lower[k]) && isfinite(l->upper[k])) {
                widen(&ylo, &yhi, l->lower[k]);
                widen(&ylo, &yhi, l->upper[k]);
                any = 1;
            }
            if (any) widen(&xlo, &xhi, l->x[k]);
        }
    }
    for (int i = 0; i < ax->n_hlines; i++) widen(&ylo, &yhi, ax->hlines[i]);
    int bars = ax->bars && ax->bars->n_groups > 0;
    if (bars) {
        const pl_bars *b = ax->bars;
        widen(&xlo, &xhi, -0.5);
        widen(&xlo, &xhi, b->n_groups - 0.5);
        widen(&ylo, &yhi, 0);
        for (int64_t k = 0; k < b->n_groups * b->n_series; k++) {
            double v = b->values[k], e = b->errors ? b->errors[k] : NAN;
            widen(&ylo, &yhi, v);
            if (isfinite(v) && isfinite(e)) {
                widen(&ylo, &yhi, v + fabs(e));
                widen(&ylo, &yhi, v - fabs(e));
            }
        }
    }
    if (xlo > xhi && ax->diagonal) xlo = ylo = 0, xhi = yhi = 1;
    pl_fix_range(&xlo, &xhi);
    pl_fix_range(&ylo, &yhi);
    if (!bars) {
        double m = 0.05 * (xhi - xlo);
        xlo -= m;
        xhi += m;
    }
    double m = 0.05 * (yhi - ylo);
    // Bars grow from 0: keep the baseline on the frame instead of floating above a margin.
    if (!(bars && ylo == 0)) ylo -= m;
    if (!(bars && yhi == 0)) yhi += m;
    if (isfinite(ax->xlim[0])) xlo = ax->xlim[0];
    if (isfinite(ax->xlim[1])) xhi = ax->xlim[1];
    if (isfinite(ax->ylim[0])) ylo = ax->ylim[0];
    if (isfinite(ax->ylim[1])) yhi = ax->ylim[1];
    pl_fix_range(&xlo, &xhi);
    pl_fix_range(&ylo, &yhi);
    *x0 = xlo, *x1 = xhi, *y0 = ylo, *y1 = yhi;
}

// ---- mapping (clamped so absurd values cannot overflow cairo's fixed-point coordinates) ----

static double clamp_px(double v) { return v < -1e5 ? -1e5 : v > 1e5 ? 1e5 : v; }
static double map_x(const pl_layout *lay, double x) { return clamp_px(lay->plot.x + (x - lay->x0) / (lay->x1 - lay->x0) * lay->plot.w); }
static double map_y(const pl_layout *lay, double y) {
    return clamp_px(lay->plot.y + lay->plot.h - (y - lay->y0) / (lay->y1 - lay->y0) * lay->plot.h);
}

// ---- ticks ----

typedef struct {
    double v[PL_MAX_TICKS];
    char text[PL_MAX_TICKS][32];
    int n;
    double max_w;  // widest label in pixels
} tick_set;

static void numeric_ticks(cairo_t *cr, tick_set *t, double lo, double hi, int target) {
    double step;
    t->n = pl_nice_ticks(lo, hi, target, t->v, &step);
    t->max_w = 0;
    for (int i = 0; i < t->n; i++) {
        pl_format_tick(t->text[i], sizeof t->text[i], t->v[i], step);
        double w = pl_text_width(cr, t->text[i]);
        if (w > t->max_w) t->max_w = w;
    }
}

// ---- legend ----

typedef struct {
    const char *label;
    pl_rgb color;
    int kind;  // 0 line, 1 line + band, 2 filled box
    int dashed, markers;
} legend_entry;

static double count_cover(const pl_axes *ax, const pl_layout *lay, pl_rect r) {
    double score = 0;
    for (int i = 0; i < ax->n_lines; i++) {
        const pl_line *l = &ax->lines[i];
        for (int64_t k = 0; k < l->n; k++) {
            double px = map_x(lay, l->x[k]);
            double ys[3] = {l->y[k], l->lower ? l->lower[k] : NAN, l->upper ? l->upper[k] : NAN};
            for (int j = 0; j < 3; j++) {
                double py = map_y(lay, ys[j]);
                if (isfinite(ys[j]) && isfinite(l->x[k]) && px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h) score += 1;
            }
        }
        // Also penalise segments crossing the box: sample midpoints.
        for (int64_t k = 0; k + 1 < l->n; k++) {
            for (int q = 1; q < 4; q++) {
                double f = q / 4.0;
                double x = l->x[k] + f * (l->x[k + 1] - l->x[k]), y = l->y[k] + f * (l->y[k + 1] - l->y[k]);
                if (!isfinite(x) || !isfinite(y)) continue;
                double px = map_x(lay, x), py = map_y(lay, y);
                if (px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h) score += 1;
            }
        }
    }
    if (ax->bars) {
        const pl_bars *b = ax->bars;
        double w = BAR_GROUP_WIDTH / b->n_series;
        for (int s = 0; s < b->n_series; s++)
            for (int64_t g = 0; g < b->n_groups; g++) {
                double v = b->values[s * b->n_groups + g];
                if (!isfinite(v)) continue;
                double xa = map_x(lay, g - BAR_GROUP_WIDTH / 2 + s * w), xb = map_x(lay, g - BAR_GROUP_WIDTH / 2 + (s + 1) * w);
                double ya = map_y(lay, fmax(v, 0)), yb = map_y(lay, fmin(v, 0));
                double ox = fmin(xb, r.x + r.w) - fmax(xa, r.x), oy = fmin(yb, r.y + r.h) - fmax(ya, r.y);
                if (ox > 0 && oy > 0) score += ox * oy / 40.0;
            }
    }
    if (ax->diagonal) {
        for (int q = 0; q <= 40; q++) {
            double v = lay->x0 + (lay->x1 - lay->x0) * q / 40.0;
            double px = map_x(lay, v), py = map_y(lay, v);
            if (px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h) score += 0.3;
        }
    }
    return score;
}

static void draw_legend(cairo_t *cr, const pl_axes *ax, const pl_style *st, const pl_layout *lay) {
    if (!ax->legend) return;
    legend_entry e[64];
    int n = 0;
    if (ax->bars && ax->bars->series_labels)
        for (int s = 0; s < ax->bars->n_series && n < 64; s++)
            e[n++] = (legend_entry){ax->bars->series_labels[s], pl_palette_color(st->kind, ax->bars->first_color + s), 2, 0, 0};
    for (int i = 0; i < ax->n_lines && n < 64; i++) {
        const pl_line *l = &ax->lines[i];
        if (l->label && l->label[0]) e[n++] = (legend_entry){l->label, l->color, l->lower ? 1 : 0, l->dashed, l->markers};
    }
    if (n == 0) return;
    pl_text_font(cr, st->fs_tick, 0);
    double th = pl_text_height(cr), row = th * 1.35, swatch = 22 * st->s;
    double max_w = 0;
    for (int i = 0; i < n; i++) max_w = fmax(max_w, pl_text_width(cr, e[i].label));
    int fit = (int)((lay->plot.h - 2 * st->pad) / row);
    if (fit < n) n = fit;  // too many entries for the plot: show those that fit
    if (n <= 0) return;
    double w = st->pad * 2 + swatch + st->pad + max_w, h = st->pad * 1.4 + n * row;
    if (w > lay->plot.w - 2 * st->pad) w = lay->plot.w - 2 * st->pad;
    double m = st->pad * 1.2;
    pl_rect cands[4] = {
        {lay->plot.x + lay->plot.w - m - w, lay->plot.y + m, w, h},              // top right
        {lay->plot.x + m, lay->plot.y + m, w, h},                                // top left
        {lay->plot.x + lay->plot.w - m - w, lay->plot.y + lay->plot.h - m - h, w, h},  // bottom right
        {lay->plot.x + m, lay->plot.y + lay->plot.h - m - h, w, h},              // bottom left
    };
    int best = 0;
    double best_score = INFINITY;
    for (int c = 0; c < 4; c++) {
        double sc = count_cover(ax, lay, cands[c]) + c * 0.01;  // ties: prefer the order above
        if (sc < best_score) best_score = sc, best = c;
    }
    pl_rect r = cands[best];
    cairo_save(cr);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    pl_set_rgba(cr, st->legend_bg, 0.88);
    cairo_fill_preserve(cr);
    pl_set_rgb(cr, st->legend_border);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_clip(cr);
    for (int i = 0; i < n; i++) {
        double cy = r.y + st->pad * 0.7 + row * (i + 0.5);
        double sx = r.x + st->pad;
        if (e[i].kind == 2) {
            cairo_rectangle(cr, sx + swatch * 0.2, cy - th * 0.35, swatch * 0.6, th * 0.7);
            pl_set_rgb(cr, e[i].color);
            cairo_fill(cr);
        } else {
            if (e[i].kind == 1) {
                cairo_rectangle(cr, sx, cy - th * 0.35, swatch, th * 0.7);
                pl_set_rgba(cr, e[i].color, BAND_ALPHA);
                cairo_fill(cr);
            }
            cairo_move_to(cr, sx, cy);
            cairo_line_to(cr, sx + swatch, cy);
            pl_set_rgb(cr, e[i].color);
            cairo_set_line_width(cr, st->line_width);
            if (e[i].dashed) {
                double d[2] = {5 * st->s, 3 * st->s};
                cairo_set_dash(cr, d, 2, 0);
            }
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (e[i].markers) {
                cairo_arc(cr, sx + swatch / 2, cy, 3.2 * st->s, 0, 2 * M_PI);
                cairo_fill(cr);
            }
        }
        pl_set_rgb(cr, st->fg);
        pl_text_draw(cr, e[i].label, sx + swatch + st->pad, cy, 0, 0.5, 0);
    }
    cairo_restore(cr);
}

// ---- series ----

static void draw_band(cairo_t *cr, const pl_line *l, const pl_layout *lay) {
    // Fill each run of consecutive points whose x, lower and upper are all finite.
    int64_t k = 0;
    while (k < l->n) {
        while (k < l->n && !(isfinite(l->x[k]) && isfinite(l->lower[k]) && isfinite(l->upper[k]))) k++;
        int64_t start = k;
        while (k < l->n && isfinite(l->x[k]) && isfinite(l->lower[k]) && isfinite(l->upper[k])) k++;
        if (k - start < 2) continue;
        cairo_move_to(cr, map_x(lay, l->x[start]), map_y(lay, l->upper[start]));
        for (int64_t j = start + 1; j < k; j++) cairo_line_to(cr, map_x(lay, l->x[j]), map_y(lay, l->upper[j]));
        for (int64_t j = k - 1; j >= start; j--) cairo_line_to(cr, map_x(lay, l->x[j]), map_y(lay, l->lower[j]));
        cairo_close_path(cr);
        pl_set_rgba(cr, l->color, BAND_ALPHA);
        cairo_fill(cr);
    }
}

static int point_ok(const pl_line *l, int64_t k) { return k >= 0 && k < l->n && isfinite(l->x[k]) && isfinite(l->y[k]); }

static void draw_line(cairo_t *cr, const pl_line *l, const pl_style *st, const pl_layout *lay) {
    cairo_set_line_width(cr, st->line_width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    if (l->dashed) {
        double d[2] = {6 * st->s, 4 * st->s};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen_down = 0;
    for (int64_t k = 0; k < l->n; k++) {
        if (!point_ok(l, k)) {
            pen_down = 0;
            continue;
        }
        double px = map_x(lay, l->x[k]), py = map_y(lay, l->y[k]);
        if (pen_down) cairo_line_to(cr, px, py);
        else cairo_move_to(cr, px, py);
        pen_down = 1;
    }
    pl_set_rgb(cr, l->color);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    // Markers where asked, and always for isolated points, which would otherwise be invisible.
    for (int64_t k = 0; k < l->n; k++) {
        if (!point_ok(l, k)) continue;
        if (!l->markers && (point_ok(l, k - 1) || point_ok(l, k + 1))) continue;
        cairo_arc(cr, map_x(lay, l->x[k]), map_y(lay, l->y[k]), 3.6 * st->s, 0, 2 * M_PI);
        cairo_fill(cr);
    }
}

static void draw_counts(cairo_t *cr, const pl_line *l, const pl_style *st, const pl_layout *lay) {
    if (!l->counts) return;
    pl_text_font(cr, st->fs_tick * 0.85, 0);
    pl_set_rgb(cr, st->muted);
    for (int64_t k = 0; k < l->n; k++) {
        if (!point_ok(l, k) || l->counts[k] <= 0) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "n=%lld", (long long)l->counts[k]);
        double px = map_x(lay, l->x[k]), py = map_y(lay, l->y[k]);
        // Above the marker, or below it when that would leave the plot.
        if (py - 6 * st->s - pl_text_height(cr) < lay->plot.y) pl_text_draw(cr, buf, px, py + 6 * st->s, 0.5, 0, 0);
        else pl_text_draw(cr, buf, px, py - 6 * st->s, 0.5, 1, 0);
    }
}

static void draw_bars(cairo_t *cr, const pl_bars *b, const pl_style *st, const pl_layout *lay) {
    double w = BAR_GROUP_WIDTH / b->n_series;
    for (int s = 0; s < b->n_series; s++) {
        pl_set_rgb(cr, pl_palette_color(st->kind, b->first_color + s));
        for (int64_t g = 0; g < b->n_groups; g++) {
            double v = b->values[s * b->n_groups + g];
            if (!isfinite(v)) continue;
            double xa = map_x(lay, g - BAR_GROUP_WIDTH / 2 + s * w), xb = map_x(lay, g - BAR_GROUP_WIDTH / 2 + (s + 1) * w);
            double ya = map_y(lay, fmax(v, 0)), yb = map_y(lay, fmin(v, 0));
            double gap = b->n_series > 1 ? fmin(1.0 * st->s, (xb - xa) * 0.1) : 0;  // hairline between neighbours
            cairo_rectangle(cr, xa + gap / 2, ya, xb - xa - gap, yb - ya);
            cairo_fill(cr);
        }
    }
    if (!b->errors) return;
    pl_set_rgb(cr, st->fg);
    cairo_set_line_width(cr, 1.3 * st->s);
    for (int s = 0; s < b->n_series; s++)
        for (int64_t g = 0; g < b->n_groups; g++) {
            double v = b->values[s * b->n_groups + g], e = fabs(b->errors[s * b->n_groups + g]);
            if (!isfinite(v) || !isfinite(e) || e == 0) continue;
            double cx = map_x(lay, g - BAR_GROUP_WIDTH / 2 + (s + 0.5) * w);
            double cap = fmin(5 * st->s, (map_x(lay, w) - map_x(lay, 0)) * 0.3);
            double ya = map_y(lay, v + e), yb = map_y(lay, v - e);
            cairo_move_to(cr, cx, ya);
            cairo_line_to(cr, cx, yb);
            cairo_move_to(cr, cx - cap, ya);
            cairo_line_to(cr, cx + cap, ya);
            cairo_move_to(cr, cx - cap, yb);
            cairo_line_to(cr, cx + cap, yb);
            cairo_stroke(cr);
        }
}

static void draw_reference_lines(cairo_t *cr, const pl_axes *ax, const pl_style *st, const pl_layout *lay) {
    double d[2] = {5 * st->s, 4 * st->s};
    cairo_set_dash(cr, d, 2, 0);
    cairo_set_line_width(cr, 1.2 * st->s);
    pl_set_rgb(cr, st->frame);
    if (ax->diagonal) {
        double lo = fmax(lay->x0, lay->y0), hi = fmin(lay->x1, lay->y1);
        if (lo < hi) {
            cairo_move_to(cr, map_x(lay, lo), map_y(lay, lo));
            cairo_line_to(cr, map_x(lay, hi), map_y(lay, hi));
            cairo_stroke(cr);
        }
    }
    for (int i = 0; i < ax->n_hlines; i++) {
        double py = map_y(lay, ax->hlines[i]);
        cairo_move_to(cr, lay->plot.x, py);
        cairo_line_to(cr, lay->plot.x + lay->plot.w, py);
        cairo_stroke(cr);
    }
    cairo_set_dash(cr, NULL, 0, 0);
}

// ---- x/y axes ----

static void draw_xy_axes(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell, pl_layout *lay) {
    double x0, x1, y0, y1;
    xy_limits(ax, &x0, &x1, &y0, &y1);
    const pl_bars *bars = ax->bars && ax->bars->n_groups > 0 ? ax->bars : NULL;

    pl_text_font(cr, st->fs_label, 0);
    double label_h = pl_text_height(cr);
    pl_text_font(cr, st->fs_tick, 0);
    double tick_h = pl_text_height(cr);

    double top = cell.y + pl_axes_title_height(cr, ax, st);
    pl_text_font(cr, st->fs_tick, 0);  // every width measured below is of tick labels
    double bottom_base = st->tick_len + st->pad * 0.6 + tick_h + (ax->xlabel ? st->pad + label_h : 0) + st->pad;

    // Categorical x labels of a bar chart: horizontal if they fit their slot, else rotated 40°.
    double cat_w = 0;
    int rotate = 0;
    if (bars && bars->group_labels)
        for (int64_t g = 0; g < bars->n_groups; g++) cat_w = fmax(cat_w, pl_text_width(cr, bars->group_labels[g]));
    double bottom = bottom_base;

    // y ticks depend on the plot height, the left margin on the y tick labels: estimate then fix.
    tick_set yt, xt;
    double plot_h = cell.y + cell.h - bottom - top;
    int ytarget = (int)fmax(2, fmin(10, plot_h / (tick_h * 2.5)));
    numeric_ticks(cr, &yt, y0, y1, ytarget);
    double left = st->pad + (ax->ylabel ? label_h + st->pad : 0) + yt.max_w + st->pad * 0.6 + st->tick_len;
    double right = st->pad * 2 + pl_text_width(cr, "0.0") / 2;
    double plot_w = cell.w - left - right;
    if (bars && bars->group_labels && cat_w + st->pad > plot_w / bars->n_groups) {
        rotate = 1;
        // A label rotated by 40° hangs down-left from its tick: make room below and on the left.
        cat_w = fmin(cat_w, 0.4 * cell.h);
        bottom += cat_w * sin(40 * M_PI / 180) + tick_h * cos(40 * M_PI / 180) - tick_h;
        plot_h = cell.y + cell.h - bottom - top;
        double first_w = fmin(pl_text_width(cr, bars->group_labels[0]), cat_w) * cos(40 * M_PI / 180);
        double overhang = first_w - plot_w / bars->n_groups / 2 + st->pad;
        if (overhang > left) {
            plot_w -= overhang - left;
            left = overhang;
        }
    }
    if (plot_w < 10 || plot_h < 10) {  // far too small to draw anything useful: just the title
        pl_draw_axes_title(cr, ax, st, cell);
        return;
    }
    lay->plot = (pl_rect){cell.x + left, top, plot_w, plot_h};
    lay->x0 = x0, lay->x1 = x1, lay->y0 = y0, lay->y1 = y1;
    lay->valid = 1;

    // x ticks: as many as fit without labels touching.
    if (!bars) {
        int xtarget = (int)fmax(2, fmin(12, plot_w / (tick_h * 5)));
        for (int tries = 0; tries < 6; tries++) {
            numeric_ticks(cr, &xt, x0, x1, xtarget);
            if (xt.n < 2 || (xt.max_w + 2.5 * st->pad) * xt.n <= plot_w || xtarget <= 2) break;
            xtarget = xtarget * 2 / 3;
        }
    }

    // Grid.
    cairo_set_line_width(cr, 1);
    pl_set_rgb(cr, st->grid);
    for (int i = 0; i < yt.n; i++) {
        double py = round(map_y(lay, yt.v[i])) + 0.5;
        cairo_move_to(cr, lay->plot.x, py);
        cairo_line_to(cr, lay->plot.x + lay->plot.w, py);
    }
    if (!bars)
        for (int i = 0; i < xt.n; i++) {
            double px = round(map_x(lay, xt.v[i])) + 0.5;
            cairo_move_to(cr, px, lay->plot.y);
            cairo_line_to(cr, px, lay->plot.y + lay->plot.h);
        }
    cairo_stroke(cr);

    // Data, clipped to the plot area (with room for half a line width at the edges).
    cairo_save(cr);
    double lw = st->line_width;
    cairo_rectangle(cr, lay->plot.x - lw, lay->plot.y - lw, lay->plot.w + 2 * lw, lay->plot.h + 2 * lw);
    cairo_clip(cr);
    if (bars) draw_bars(cr, bars, st, lay);
    for (int i = 0; i < ax->n_lines; i++)
        if (ax->lines[i].lower) draw_band(cr, &ax->lines[i], lay);
    draw_reference_lines(cr, ax, st, lay);
    for (int i = 0; i < ax->n_lines; i++) draw_line(cr, &ax->lines[i], st, lay);
    for (int i = 0; i < ax->n_lines; i++) draw_counts(cr, &ax->lines[i], st, lay);
    cairo_restore(cr);

    // Frame: left and bottom spines.
    pl_set_rgb(cr, st->frame);
    cairo_set_line_width(cr, 1.1 * st->s);
    cairo_move_to(cr, lay->plot.x, lay->plot.y);
    cairo_line_to(cr, lay->plot.x, lay->plot.y + lay->plot.h);
    cairo_line_to(cr, lay->plot.x + lay->plot.w, lay->plot.y + lay->plot.h);
    cairo_stroke(cr);

    // Ticks and their labels.
    pl_text_font(cr, st->fs_tick, 0);
    double base = lay->plot.y + lay->plot.h;
    for (int i = 0; i < yt.n; i++) {
        double py = map_y(lay, yt.v[i]);
        pl_set_rgb(cr, st->frame);
        cairo_move_to(cr, lay->plot.x - st->tick_len, py);
        cairo_line_to(cr, lay->plot.x, py);
        cairo_stroke(cr);
        pl_set_rgb(cr, st->muted);
        pl_text_draw(cr, yt.text[i], lay->plot.x - st->tick_len - st->pad * 0.6, py, 1, 0.5, 0);
    }
    if (bars) {
        double slot = plot_w / bars->n_groups;
        // Thin out labels when even rotated ones would collide.
        int64_t every = 1;
        double need = rotate ? tick_h * 1.3 : 0;
        if (!bars->group_labels) need = pl_text_width(cr, "0000") + st->pad;
        if (need > slot) every = (int64_t)ceil(need / slot);
        for (int64_t g = 0; g < bars->n_groups; g += every) {
            double px = map_x(lay, (double)g);
            pl_set_rgb(cr, st->frame);
            cairo_move_to(cr, px, base);
            cairo_line_to(cr, px, base + st->tick_len);
            cairo_stroke(cr);
            char num[32];
            const char *text = bars->group_labels ? bars->group_labels[g] : (snprintf(num, sizeof num, "%lld", (long long)g), num);
            pl_set_rgb(cr, st->muted);
            double ty = base + st->tick_len + st->pad * 0.6;
            if (rotate) pl_text_draw(cr, text, px + tick_h * 0.3, ty, 1, 0, -40 * M_PI / 180);
            else pl_text_draw(cr, text, px, ty, 0.5, 0, 0);
        }
    } else {
        for (int i = 0; i < xt.n; i++) {
            double px = map_x(lay, xt.v[i]);
            pl_set_rgb(cr, st->frame);
            cairo_move_to(cr, px, base);
            cairo_line_to(cr, px, base + st->tick_len);
            cairo_stroke(cr);
            pl_set_rgb(cr, st->muted);
            pl_text_draw(cr, xt.text[i], px, base + st->tick_len + st->pad * 0.6, 0.5, 0, 0);
        }
    }

    // Axis labels and title.
    pl_text_font(cr, st->fs_label, 0);
    pl_set_rgb(cr, st->fg);
    if (ax->xlabel) pl_text_draw(cr, ax->xlabel, lay->plot.x + lay->plot.w / 2, cell.y + cell.h - st->pad, 0.5, 1, 0);
    if (ax->ylabel) pl_text_draw(cr, ax->ylabel, cell.x + st->pad, lay->plot.y + lay->plot.h / 2, 0.5, 0, -M_PI / 2);
    pl_draw_axes_title(cr, ax, st, (pl_rect){lay->plot.x, cell.y, lay->plot.w, cell.h});
    draw_legend(cr, ax, st, lay);
}

// ---- figure ----

// An axes nobody drew into (a spare cell of a grid of small multiples) stays blank.
static int axes_untouched(const pl_axes *ax) {
    return ax->n_lines == 0 && !ax->bars && !ax->heat && !ax->tokens && ax->n_hlines == 0 && !ax->diagonal && !ax->title &&
           !ax->xlabel && !ax->ylabel;
}

int pl_render_figure(const pl_figure *fig, cairo_t *cr, int width, int height, pl_layout *layouts) {
    if (width < 1 || height < 1 || width > 1 << 20 || height > 1 << 20)
        return pl_fail("plot: drawing size %d x %d is invalid", width, height);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        return pl_fail("plot: cairo context is in an error state: %s", cairo_status_to_string(cairo_status(cr)));
    pl_style st = make_style(fig, width, height);
    cairo_save(cr);
    cairo_rectangle(cr, 0, 0, width, height);
    cairo_clip(cr);
    pl_set_rgb(cr, st.bg);
    cairo_paint(cr);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);

    double top = 0;
    if (fig->title && fig->title[0]) {
        pl_text_font(cr, st.fs_fig_title, 1);
        pl_set_rgb(cr, st.fg);
        pl_text_draw(cr, fig->title, width / 2.0, st.pad * 1.5, 0.5, 0, 0);
        top = pl_text_height(cr) + st.pad * 2;
    }
    double cw = (double)width / fig->n_cols, ch = (height - top) / fig->n_rows;
    for (int r = 0; r < fig->n_rows; r++)
        for (int c = 0; c < fig->n_cols; c++) {
            int i = r * fig->n_cols + c;
            const pl_axes *ax = &fig->axes[i];
            pl_rect cell = {c * cw + st.pad, top + r * ch + st.pad * 0.5, cw - 2 * st.pad, ch - st.pad};
            memset(&layouts[i], 0, sizeof layouts[i]);
            cairo_save(cr);
            if (ax->heat) pl_heatmap_draw(cr, ax, &st, cell, &layouts[i]);
            else if (ax->tokens) pl_tokens_draw(cr, ax, &st, cell, &layouts[i]);
            else if (!axes_untouched(ax)) draw_xy_axes(cr, ax, &st, cell, &layouts[i]);
            cairo_restore(cr);
        }
    cairo_restore(cr);
    return 0;
}

void pl_value_range(const pl_axes *ax, const float *v, int64_t n, int symmetric, double *vmin, double *vmax) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) widen(&lo, &hi, v[i]);
    if (symmetric && lo <= hi) {
        double m = fmax(fabs(lo), fabs(hi));
        lo = -m, hi = m;
        if (m == 0) lo = -1, hi = 1;
    }
    if (isfinite(ax->vmin)) lo = ax->vmin;
    if (isfinite(ax->vmax)) hi = ax->vmax;
    if (!(lo < hi)) pl_fix_range(&lo, &hi);
    *vmin = lo, *vmax = hi;
}
