// Token strip: tokens in wrapped lines on score-coloured boxes, underlined by segment (prompt,
// chain of thought, answer), with each box's rectangle recorded for hover hit-testing.
#include "gui/plot/plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pl_rgb segment_color(int segment) {
    switch (segment) {
    case PL_SEGMENT_PROMPT: return (pl_rgb){0x8c / 255.0, 0x8c / 255.0, 0x8c / 255.0};
    case PL_SEGMENT_COT: return (pl_rgb){0x94 / 255.0, 0x67 / 255.0, 0xbd / 255.0};
    case PL_SEGMENT_ANSWER: return (pl_rgb){0x2c / 255.0, 0xa0 / 255.0, 0x2c / 255.0};
    default: return (pl_rgb){0.5, 0.5, 0.5};
    }
}

static const char *segment_name(int segment) {
    return segment == PL_SEGMENT_PROMPT ? "prompt" : segment == PL_SEGMENT_COT ? "chain of thought" : "answer";
}

// Printable form of a token: newline -> "↵", tab -> "→", other control bytes -> "·".
// Returns whether the token ends a line.
static int display_text(const char *in, char *out, size_t size) {
    size_t o = 0;
    int newline = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < size; p++) {
        const char *rep = NULL;
        if (*p == '\n') rep = "\xe2\x86\xb5", newline = 1;
        else if (*p == '\t') rep = "\xe2\x86\x92";
        else if (*p == '\r') continue;
        else if (*p < 0x20 || *p == 0x7f) rep = "\xc2\xb7";
        if (rep) {
            size_t n = strlen(rep);
            memcpy(out + o, rep, n);
            o += n;
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    if (o == 0 && size > 3) memcpy(out, "\xe2\x88\x85", 4);  // empty token: "∅"
    return newline;
}

typedef struct {
    double font, box_h, pad_x, gap, line_step, underline;
} strip_metrics;

static strip_metrics metrics_for(cairo_t *cr, const pl_style *st, double font) {
    strip_metrics m;
    m.font = font;
    pl_text_font(cr, font, 0);
    m.box_h = pl_text_height(cr) + 0.35 * font;
    m.pad_x = 0.22 * font;
    m.gap = fmax(1, 0.15 * font);
    m.underline = fmax(2, 0.22 * font);
    m.line_step = m.box_h + m.underline + 0.45 * font;
    return m;
}

// Lay tokens out in `area`; rects[i].w = 0 for tokens below the area. Returns how many fit.
static int64_t layout_tokens(cairo_t *cr, const pl_tokens *t, const strip_metrics *m, pl_rect area, pl_rect *rects) {
    double x = area.x, y = area.y;
    int64_t fit = 0;
    char buf[1024];
    for (int64_t i = 0; i < t->n; i++) {
        int newline = display_text(t->text[i], buf, sizeof buf);
        double w = fmin(pl_text_width(cr, buf) + 2 * m->pad_x, area.w);
        if (x > area.x && x + w > area.x + area.w) {  // wrap
            x = area.x;
            y += m->line_step;
        }
        if (y + m->box_h + m->underline > area.y + area.h + 0.01) {
            rects[i] = (pl_rect){0, 0, 0, 0};
        } else {
            rects[i] = (pl_rect){x, y, w, m->box_h};
            fit++;
        }
        x += w + m->gap;
        if (newline) {
            x = area.x;
            y += m->line_step;
        }
    }
    return fit;
}

static double luminance(pl_rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

void pl_tokens_draw(cairo_t *cr, const pl_axes *ax, const pl_style *st, pl_rect cell, pl_layout *lay) {
    const pl_tokens *t = ax->tokens;
    double vmin = 0, vmax = 1;
    if (t->scores) pl_value_range(ax, t->scores, t->n, ax->cmap == PL_CMAP_DIVERGING, &vmin, &vmax);
    int has_segments = 0;
    for (int64_t i = 0; t->segments && i < t->n; i++) has_segments |= t->segments[i] >= 0 && t->segments[i] <= 2;

    pl_text_font(cr, st->fs_tick, 0);
    double tick_h = pl_text_height(cr);
    double key_h = (t->scores || has_segments) ? tick_h * 2.6 + st->pad : 0;  // legend row below
    double top = cell.y + pl_axes_title_height(cr, ax, st);
    pl_rect area = {cell.x + st->pad, top + st->pad * 0.5, cell.w - 2 * st->pad, cell.y + cell.h - top - key_h - st->pad};
    if (area.w < 20 || area.h < 10) {
        pl_draw_axes_title(cr, ax, st, cell);
        return;
    }
    lay->plot = area;
    lay->x0 = area.x, lay->x1 = area.x + area.w, lay->y0 = area.y, lay->y1 = area.y + area.h;
    lay->y_down = 1;
    lay->valid = 1;
    pl_draw_axes_title(cr, ax, st, cell);
    if (t->n == 0) return;

    pl_rect *rects = calloc((size_t)t->n, sizeof *rects);
    if (!rects) return;
    // Shrink the font until everything fits, down to a readable minimum.
    strip_metrics m = metrics_for(cr, st, 13.5 * st->s);
    while (layout_tokens(cr, t, &m, area, rects) < t->n && m.font > 7.5) m = metrics_for(cr, st, fmax(7.5, m.font * 0.9));

    pl_text_font(cr, m.font, 0);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    pl_rgb plain = st->kind == PL_THEME_DARK ? (pl_rgb){0.2, 0.2, 0.2} : (pl_rgb){0.94, 0.94, 0.94};
    char buf[1024];
    for (int64_t i = 0; i < t->n; i++) {
        pl_rect r = rects[i];
        if (r.w <= 0) continue;
        pl_rgb bg = plain;
        if (t->scores && isfinite(t->scores[i])) bg = pl_colormap_eval(ax->cmap, (t->scores[i] - vmin) / (vmax - vmin));
        cairo_rectangle(cr, r.x, r.y, r.w, r.h);
        pl_set_rgb(cr, bg);
        cairo_fill(cr);
        if (t->segments && t->segments[i] >= 0 && t->segments[i] <= 2) {
            cairo_rectangle(cr, r.x, r.y + r.h + 1, r.w + m.gap, m.underline - 1);
            pl_set_rgb(cr, segment_color(t->segments[i]));
            cairo_fill(cr);
        }
        display_text(t->text[i], buf, sizeof buf);
        int dark_text = (t->scores && isfinite(t->scores[i])) || st->kind == PL_THEME_LIGHT ? luminance(bg) > 0.45 : 0;
        pl_set_rgb(cr, dark_text ? (pl_rgb){0.07, 0.07, 0.07} : (pl_rgb){0.96, 0.96, 0.96});
        cairo_save(cr);
        cairo_rectangle(cr, r.x, r.y, r.w, r.h);
        cairo_clip(cr);
        cairo_move_to(cr, r.x + m.pad_x, r.y + (r.h - (fe.ascent + fe.descent)) / 2 + fe.ascent);
        cairo_show_text(cr, buf);
        cairo_restore(cr);
    }
    lay->token_rects = rects;
    lay->n_token_rects = t->n;

    // Key: segment swatches on the left, the score colour bar on the right; right under the text
    // when the tokens leave the area half empty.
    double text_bottom = area.y;
    for (int64_t i = 0; i < t->n; i++)
        if (rects[i].w > 0) text_bottom = fmax(text_bottom, rects[i].y + rects[i].h + m.underline);
    double ky = fmin(cell.y + cell.h - key_h, text_bottom + 2 * st->pad) + st->pad;
    pl_text_font(cr, st->fs_tick, 0);
    double kx = area.x;
    for (int s = 0; has_segments && s <= 2; s++) {
        cairo_rectangle(cr, kx, ky + tick_h * 0.5 - 1.5 * st->s, 18 * st->s, 3 * st->s);
        pl_set_rgb(cr, segment_color(s));
        cairo_fill(cr);
        pl_set_rgb(cr, st->fg);
        pl_text_draw(cr, segment_name(s), kx + 22 * st->s, ky + tick_h * 0.5, 0, 0.5, 0);
        kx += 22 * st->s + pl_text_width(cr, segment_name(s)) + 3 * st->pad;
    }
    if (t->scores) {
        double bw = fmin(220 * st->s, area.w * 0.4), bh = tick_h * 0.8;
        pl_rect cb = {area.x + area.w - bw - st->pad, ky, bw, bh};
        if (cb.x > kx) {
            lay->colorbar = cb;
            pl_colorbar_fill(cr, ax->cmap, cb, 1);
            pl_set_rgb(cr, st->frame);
            cairo_set_line_width(cr, 1);
            cairo_rectangle(cr, cb.x - 0.5, cb.y - 0.5, cb.w + 1, cb.h + 1);
            cairo_stroke(cr);
            char lo[32], hi[32], mid[32];
            double step = fabs(vmax - vmin) / 4;
            pl_format_tick(lo, sizeof lo, vmin, step);
            pl_format_tick(hi, sizeof hi, vmax, step);
            pl_format_tick(mid, sizeof mid, (vmin + vmax) / 2, step);
            pl_set_rgb(cr, st->muted);
            pl_text_draw(cr, lo, cb.x, cb.y + cb.h + 2, 0, 0, 0);
            pl_text_draw(cr, mid, cb.x + cb.w / 2, cb.y + cb.h + 2, 0.5, 0, 0);
            pl_text_draw(cr, hi, cb.x + cb.w, cb.y + cb.h + 2, 1, 0, 0);
            pl_set_rgb(cr, st->fg);
            pl_text_draw(cr, ax->ylabel ? ax->ylabel : "score", cb.x - st->pad, cb.y + cb.h / 2, 1, 0.5, 0);
        }
    }
}
