// Heatmaps (e.g. attention, query x key) with row/column labels and a colour bar.
#include "gui/plot/plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

// Label every k-th index so that labels `need` pixels apart fit cells `cell` pixels wide.
static int64_t label_every(double need, double cell) {
    if (cell <= 0) return 1;
    int64_t k = (int64_t)ceil(need / cell);
    if (k <= 1) return 1;
    // Round the stride up to 1-2-5 so the shown indices are round numbers.
    int64_t mag = 1;
    while (mag * 10 <= k) mag *= 10;
    if (k <= mag) return mag;
    if (k <= 2 * mag) return 2 * mag;
    if (k <= 5 * mag) return 5 * mag;
    return 10 * mag;
}

static const char *index_label(char **labels, int64_t i, char *buf, size_t size) {
    if (labels) return labels[i];
    snprintf(buf, size, "%lld", (long long)i);
    return buf;
}

// The values as an image, one pixel per cell (ARGB32, NaN transparent so the background shows).
static cairo_surface_t *heatmap_image(const pl_heatmap *h, pl_colormap cmap, double vmin, double vmax) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)h->n_cols, (int)h->n_rows);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) return img;
    cairo_surface_flush(img);
    unsigned char *data = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    for (int64_t i = 0; i < h->n_rows; i++) {
        uint32_t *row = (uint32_t *)(data + i * stride);
        for (int64_t j = 0; j < h->n_cols; j++) {
            float v = h->values[i * h->n_cols + j];
            if (!isfinite(v)) {
                row[j] = 0;
                continue;
            }
            pl_rgb c = pl_colormap_eval(cmap, (v - vmin) / (vmax - vmin));
            row[j] = 0xff000000u | (uint32_t)(c.r * 255 + 0.5) << 16 | (uint32_t)(c.g * 255 + 0.5) << 8 | (uint32_t)(c.b * 255 + 0.5);
        }
    }
    cairo_surface_mark_dirty(img);
    return img;
}

void pl_heatmap_draw(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell, pl_layout *lay) {
    const pl_heatmap *h = ax->heat;
    double vmin, vmax;
    pl_value_range(ax, h->values, h->n_rows * h->n_cols, ax->cmap == PL_CMAP_DIVERGING, &vmin, &vmax);

    pl_text_font(cr, st->fs_label, 0);
    double label_h = pl_text_height(cr);
    pl_text_font(cr, st->fs_tick, 0);
    double tick_h = pl_text_height(cr);
    char buf[64];

    // Colour bar ticks decide the right margin.
    double cb_tick_v[PL_MAX_TICKS], cb_step;
    int cb_n = pl_nice_ticks(vmin, vmax, 6, cb_tick_v, &cb_step);
    double cb_label_w = 0;
    for (int i = 0; i < cb_n; i++) {
        pl_format_tick(buf, sizeof buf, cb_tick_v[i], cb_step);
        cb_label_w = fmax(cb_label_w, pl_text_width(cr, buf));
    }
    double cb_w = 14 * st->s, cb_gap = 12 * st->s;
    double right = cb_gap + cb_w + st->tick_len + st->pad * 0.6 + cb_label_w + st->pad +
                   (h->colorbar_label ? label_h + st->pad : 0);

    // Label widths decide the left and bottom margins (columns rotate when they do not fit).
    double row_w = 0, col_w = 0;
    int64_t max_labels = 4000;  // measuring more is wasted: they will be thinned out anyway
    for (int64_t i = 0; i < h->n_rows && i < max_labels; i++) row_w = fmax(row_w, pl_text_width(cr, index_label(h->row_labels, i, buf, sizeof buf)));
    for (int64_t j = 0; j < h->n_cols && j < max_labels; j++) col_w = fmax(col_w, pl_text_width(cr, index_label(h->col_labels, j, buf, sizeof buf)));
    row_w = fmin(row_w, 0.3 * cell.w);
    double top = cell.y + pl_axes_title_height(cr, ax, st);
    double left0 = st->pad + (ax->ylabel ? label_h + st->pad : 0) + row_w + st->pad * 0.6 + st->tick_len;
    // Two passes: whether column labels must be rotated depends on the final cell width, which
    // depends (through squaring) on the height left over by the labels.
    int rotate = 0;
    double left = left0, plot_w = 0, plot_h = 0, col_extent = tick_h;
    for (int pass = 0; pass < 2; pass++) {
        left = left0;
        plot_w = cell.w - left - right;
        col_extent = rotate ? fmin(col_w, 0.3 * cell.h) : tick_h;
        double bottom = st->tick_len + st->pad * 0.6 + col_extent + (ax->xlabel ? st->pad + label_h : 0) + st->pad;
        plot_h = cell.y + cell.h - bottom - top;
        // Square matrices (attention) get square cells; others keep cells within 1:3 .. 3:1.
        if (h->n_rows > 0 && h->n_cols > 0 && plot_w > 0 && plot_h > 0) {
            double cw = plot_w / h->n_cols, ch = plot_h / h->n_rows;
            double max_ratio = h->n_rows == h->n_cols ? 1 : 3;
            if (cw > ch * max_ratio) {
                double narrower = ch * max_ratio * h->n_cols;
                left += (plot_w - narrower) / 2;  // keep the map and its colour bar centred in the cell
                plot_w = narrower;
            }
            if (ch > cw * max_ratio) plot_h = cw * max_ratio * h->n_rows;
        }
        double cell_px = h->n_cols > 0 ? plot_w / h->n_cols : plot_w;
        if (rotate || !(h->col_labels && col_w + st->pad > cell_px)) break;
        rotate = 1;
    }
    if (plot_w < 10 || plot_h < 10) {
        pl_draw_axes_title(cr, ax, st, cell);
        return;
    }
    lay->plot = (pl_rect){cell.x + left, top, plot_w, plot_h};
    lay->x0 = -0.5, lay->x1 = (double)h->n_cols - 0.5;
    lay->y0 = -0.5, lay->y1 = (double)h->n_rows - 0.5;
    if (h->n_cols == 0) lay->x1 = 0.5;
    if (h->n_rows == 0) lay->y1 = 0.5;
    lay->y_down = 1;
    lay->valid = 1;
    pl_rect p = lay->plot;

    // Cells. SVG viewers smooth scaled images (cairo writes no image-rendering hint), so vector
    // files get one rectangle per cell while that stays a reasonable file size.
    cairo_surface_type_t target = cairo_surface_get_type(cairo_get_target(cr));
    int vector = target == CAIRO_SURFACE_TYPE_SVG || target == CAIRO_SURFACE_TYPE_PDF || target == CAIRO_SURFACE_TYPE_PS;
    if (vector && h->n_rows * h->n_cols > 0 && h->n_rows * h->n_cols <= 128 * 128) {
        cairo_save(cr);
        cairo_rectangle(cr, p.x, p.y, p.w, p.h);
        cairo_clip(cr);
        double cw = p.w / h->n_cols, ch = p.h / h->n_rows, overlap = 0.3;  // hides hairline seams
        for (int64_t i = 0; i < h->n_rows; i++)
            for (int64_t j = 0; j < h->n_cols; j++) {
                float v = h->values[i * h->n_cols + j];
                if (!isfinite(v)) continue;
                pl_set_rgb(cr, pl_colormap_eval(ax->cmap, (v - vmin) / (vmax - vmin)));
                cairo_rectangle(cr, p.x + j * cw, p.y + i * ch, cw + overlap, ch + overlap);
                cairo_fill(cr);
            }
        cairo_restore(cr);
    } else if (h->n_rows > 0 && h->n_cols > 0) {
        // One image pixel per cell, scaled up without smoothing so every cell is a flat colour.
        cairo_surface_t *img = heatmap_image(h, ax->cmap, vmin, vmax);
        if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS) {
            cairo_save(cr);
            cairo_rectangle(cr, p.x, p.y, p.w, p.h);
            cairo_clip(cr);
            cairo_translate(cr, p.x, p.y);
            cairo_scale(cr, p.w / h->n_cols, p.h / h->n_rows);
            cairo_set_source_surface(cr, img, 0, 0);
            cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
            cairo_paint(cr);
            cairo_restore(cr);
        }
        cairo_surface_destroy(img);
    }
    pl_set_rgb(cr, st->frame);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, p.x - 0.5, p.y - 0.5, p.w + 1, p.h + 1);
    cairo_stroke(cr);

    // Column ticks (x) and row ticks (y) at cell centres.
    pl_text_font(cr, st->fs_tick, 0);
    double cw = h->n_cols > 0 ? p.w / h->n_cols : p.w, chh = h->n_rows > 0 ? p.h / h->n_rows : p.h;
    double col_need = rotate ? tick_h * 1.2 : col_w + st->pad * 1.5;
    int64_t col_every = label_every(col_need, cw), row_every = label_every(tick_h * (h->row_labels ? 1.15 : 1.8), chh);
    for (int64_t j = 0; j < h->n_cols; j += col_every) {
        double px = p.x + (j + 0.5) * cw, base = p.y + p.h;
        pl_set_rgb(cr, st->frame);
        cairo_move_to(cr, px, base);
        cairo_line_to(cr, px, base + st->tick_len);
        cairo_stroke(cr);
        pl_set_rgb(cr, st->muted);
        const char *text = index_label(h->col_labels, j, buf, sizeof buf);
        double ty = base + st->tick_len + st->pad * 0.6;
        if (rotate) {
            cairo_save(cr);
            cairo_rectangle(cr, px - tick_h, ty, 2 * tick_h, col_extent);
            cairo_clip(cr);
            pl_text_draw(cr, text, px, ty, 1, 0.5, -M_PI / 2);
            cairo_restore(cr);
        } else {
            pl_text_draw(cr, text, px, ty, 0.5, 0, 0);
        }
    }
    for (int64_t i = 0; i < h->n_rows; i += row_every) {
        double py = p.y + (i + 0.5) * chh;
        pl_set_rgb(cr, st->frame);
        cairo_move_to(cr, p.x - st->tick_len, py);
        cairo_line_to(cr, p.x, py);
        cairo_stroke(cr);
        pl_set_rgb(cr, st->muted);
        cairo_save(cr);
        cairo_rectangle(cr, p.x - st->tick_len - st->pad * 0.6 - row_w, py - tick_h, row_w, 2 * tick_h);
        cairo_clip(cr);
        pl_text_draw(cr, index_label(h->row_labels, i, buf, sizeof buf), p.x - st->tick_len - st->pad * 0.6, py, 1, 0.5, 0);
        cairo_restore(cr);
    }

    // Colour bar with its own ticks: vmax at the top, vmin at the bottom.
    pl_rect cb = {p.x + p.w + cb_gap, p.y, cb_w, p.h};
    lay->colorbar = cb;
    pl_colorbar_fill(cr, ax->cmap, cb, 0);
    pl_set_rgb(cr, st->frame);
    cairo_rectangle(cr, cb.x - 0.5, cb.y - 0.5, cb.w + 1, cb.h + 1);
    cairo_stroke(cr);
    for (int i = 0; i < cb_n; i++) {
        double py = cb.y + cb.h - (cb_tick_v[i] - vmin) / (vmax - vmin) * cb.h;
        pl_set_rgb(cr, st->frame);
        cairo_move_to(cr, cb.x + cb.w, py);
        cairo_line_to(cr, cb.x + cb.w + st->tick_len, py);
        cairo_stroke(cr);
        pl_format_tick(buf, sizeof buf, cb_tick_v[i], cb_step);
        pl_set_rgb(cr, st->muted);
        pl_text_draw(cr, buf, cb.x + cb.w + st->tick_len + st->pad * 0.6, py, 0, 0.5, 0);
    }

    pl_text_font(cr, st->fs_label, 0);
    pl_set_rgb(cr, st->fg);
    if (h->colorbar_label)
        pl_text_draw(cr, h->colorbar_label, cb.x + cb.w + st->tick_len + st->pad * 1.6 + cb_label_w, cb.y + cb.h / 2, 0.5, 0, -M_PI / 2);
    if (ax->xlabel) pl_text_draw(cr, ax->xlabel, p.x + p.w / 2, cell.y + cell.h - st->pad, 0.5, 1, 0);
    if (ax->ylabel) pl_text_draw(cr, ax->ylabel, cell.x + left - left0 + st->pad, p.y + p.h / 2, 0.5, 0, -M_PI / 2);
    pl_draw_axes_title(cr, ax, st, (pl_rect){p.x, cell.y, p.w, cell.h});
}
