// The viewer's pages: tokens, attention and analyses. Each draws figures from gui/plot/figures.h
// into a GtkDrawingArea and hit-tests through the plot's layout queries. To add a page (theater,
// Gnosis, MemR³), write create/update/can_show functions and add a row to viewer_pages[].
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gui/viewer/viewer_internal.h"
#include "runtime/base/error.h"

#define HEAT_CELLS 384

static const char *segment_title(int s) { return s == 0 ? "prompt" : s == 1 ? "chain of thought" : s == 2 ? "answer" : "?"; }

static GtkWidget *toolbar_box(void) {
    GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_margin_start(bar, 8);
    gtk_widget_set_margin_end(bar, 8);
    gtk_widget_set_margin_top(bar, 6);
    gtk_widget_set_margin_bottom(bar, 2);
    return bar;
}

static GtkWidget *info_label(void) {
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
    gtk_widget_set_margin_start(l, 10);
    gtk_widget_set_margin_bottom(l, 6);
    return l;
}

static void paint_background(viewer *vw, cairo_t *cr, int w, int h) {
    pl_rgb bg = pl_theme_background(viewer_theme(vw));
    cairo_set_source_rgb(cr, bg.r, bg.g, bg.b);
    cairo_rectangle(cr, 0, 0, w, h);
    cairo_fill(cr);
}

static const char *piece_display(const char *piece, char *buf, size_t size) {
    snprintf(buf, size, "%s", strcmp(piece, "\n") == 0 ? "↵" : piece);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    return buf;
}

// ---- tokens page ----

static void ensure_scores(viewer *vw) {
    if (vw->score_values && vw->score_values_run == vw->run_id && strcmp(vw->score_values_for, vw->score) == 0) return;
    free(vw->score_values);
    vw->score_values = calloc(vw->n_tokens > 0 ? (size_t)vw->n_tokens : 1, sizeof(float));
    if (vw->score_values && pl_vstore_token_scores(vw->v, vw->score, vw->run_id, vw->score_values, vw->n_tokens) != 0)
        for (int i = 0; i < vw->n_tokens; i++) vw->score_values[i] = NAN;
    vw->score_values_run = vw->run_id;
    snprintf(vw->score_values_for, sizeof vw->score_values_for, "%s", vw->score);
}

static void describe_token(viewer *vw, int i, char *out, size_t size) {
    if (i < 0 || i >= vw->n_tokens) {
        snprintf(out, size, "Hover a token for its values; click to select it as the query (← → move, PgUp/PgDn page).");
        return;
    }
    ensure_scores(vw);
    const pl_token_row *t = &vw->tokens[i];
    char piece[PL_TOKEN_DISPLAY_SIZE];
    int o = snprintf(out, size, "position %d  ‘%s’  %s  ·  logprob %.3f  ·  entropy %.3f", i, piece_display(t->display, piece, sizeof piece),
                     segment_title(t->segment), t->logprob, t->entropy);
    if (vw->score_values && strcmp(vw->score, "logprob") != 0 && strcmp(vw->score, "entropy") != 0 && o < (int)size)
        o += snprintf(out + o, size - (size_t)o, "  ·  %s %.3f", vw->score, vw->score_values[i]);
    if (vw->att && vw->query >= 0 && vw->query < vw->att_n && i <= vw->query && i < vw->att_n && o < (int)size)
        snprintf(out + o, size - (size_t)o, "  ·  attention from query %d (L%d H%d) %.3f", vw->query, vw->layer, vw->head,
                 vw->att[(size_t)vw->query * (size_t)vw->att_n + (size_t)i]);
}

static void tokens_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    viewer *vw = data;
    paint_background(vw, cr, w, h);
    if (!vw->v || vw->run_id <= 0) return;
    if (!vw->tokens_fig &&
        pl_figures_tokens(&vw->tokens_fig, vw->v, vw->run_id, vw->score, vw->token_lo, vw->token_window, viewer_theme(vw)) != 0) {
        gtk_label_set_text(GTK_LABEL(vw->token_info), pl_errmsg());
        return;
    }
    pl_plot_draw(vw->tokens_fig, cr, w, h);
    viewer_draw_attention_overlay(vw, cr, vw->tokens_fig, vw->token_lo);
}

static int token_under(viewer *vw, pl_figure *fig, int64_t first, double x, double y) {
    if (!fig) return -1;
    int64_t i = pl_axes_token_at(pl_figure_axes(fig, 0, 0), x, y);
    return i < 0 ? -1 : (int)(first + i);
}

static void tokens_motion(GtkEventControllerMotion *c, double x, double y, gpointer data) {
    viewer *vw = data;
    char buf[512];
    describe_token(vw, token_under(vw, vw->tokens_fig, vw->token_lo, x, y), buf, sizeof buf);
    gtk_label_set_text(GTK_LABEL(vw->token_info), buf);
}

static void tokens_click(GtkGestureClick *g, int n_press, double x, double y, gpointer data) {
    viewer *vw = data;
    int i = token_under(vw, vw->tokens_fig, vw->token_lo, x, y);
    if (i >= 0) viewer_select_query(vw, i);
}

static void on_score_changed(GObject *o, GParamSpec *ps, gpointer data) {
    viewer *vw = data;
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(vw->score_drop));
    if (i == GTK_INVALID_LIST_POSITION || (int)i >= vw->n_sources || strcmp(vw->score, vw->sources[i].name) == 0) return;
    snprintf(vw->score, sizeof vw->score, "%s", vw->sources[i].name);
    viewer_invalidate(vw);
}

static void window_step(viewer *vw, int dir) {
    int64_t lo = vw->token_lo + dir * vw->token_window;
    if (lo < 0 || lo >= vw->n_tokens) return;
    viewer_select_query(vw, (int)lo);
}
static void on_prev_window(GtkButton *b, gpointer data) { window_step(data, -1); }
static void on_next_window(GtkButton *b, gpointer data) { window_step(data, 1); }

static GtkWidget *tokens_create(viewer *vw) {
    GtkWidget *page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *bar = toolbar_box();
    gtk_box_append(GTK_BOX(bar), gtk_label_new("Colour by"));
    vw->score_drop = gtk_drop_down_new_from_strings((const char *const[]){"logprob", NULL});
    g_signal_connect(vw->score_drop, "notify::selected", G_CALLBACK(on_score_changed), vw);
    gtk_box_append(GTK_BOX(bar), vw->score_drop);
    GtkWidget *spacer = gtk_label_new("");
    gtk_widget_set_hexpand(spacer, TRUE);
    gtk_box_append(GTK_BOX(bar), spacer);
    GtkWidget *prev = gtk_button_new_from_icon_name("go-previous-symbolic"), *next = gtk_button_new_from_icon_name("go-next-symbolic");
    gtk_widget_set_tooltip_text(prev, "previous tokens (Page Up)");
    gtk_widget_set_tooltip_text(next, "next tokens (Page Down)");
    g_signal_connect(prev, "clicked", G_CALLBACK(on_prev_window), vw);
    g_signal_connect(next, "clicked", G_CALLBACK(on_next_window), vw);
    vw->window_label = gtk_label_new("");
    gtk_box_append(GTK_BOX(bar), prev);
    gtk_box_append(GTK_BOX(bar), vw->window_label);
    gtk_box_append(GTK_BOX(bar), next);
    gtk_box_append(GTK_BOX(page), bar);

    vw->tokens_area = gtk_drawing_area_new();
    gtk_widget_set_vexpand(vw->tokens_area, TRUE);
    gtk_widget_set_hexpand(vw->tokens_area, TRUE);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(vw->tokens_area), tokens_draw, vw, NULL);
    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(tokens_motion), vw);
    gtk_widget_add_controller(vw->tokens_area, motion);
    GtkGesture *click = gtk_gesture_click_new();
    g_signal_connect(click, "pressed", G_CALLBACK(tokens_click), vw);
    gtk_widget_add_controller(vw->tokens_area, GTK_EVENT_CONTROLLER(click));
    gtk_box_append(GTK_BOX(page), vw->tokens_area);
    vw->token_info = info_label();
    gtk_box_append(GTK_BOX(page), vw->token_info);
    return page;
}

static void tokens_update(viewer *vw) {
    // The score menu follows the store's sources (a probe may be added while the viewer runs).
    GListModel *model = gtk_drop_down_get_model(GTK_DROP_DOWN(vw->score_drop));
    guint n_old = g_list_model_get_n_items(model);
    int same = (int)n_old == vw->n_sources;
    for (int i = 0; same && i < vw->n_sources; i++) {
        const char *s = gtk_string_list_get_string(GTK_STRING_LIST(model), (guint)i);
        same = s && strcmp(s, vw->sources[i].title) == 0;
    }
    if (!same && vw->n_sources > 0) {
        const char **titles = g_new0(const char *, (size_t)vw->n_sources + 1);
        for (int i = 0; i < vw->n_sources; i++) titles[i] = vw->sources[i].title;
        g_signal_handlers_block_by_func(vw->score_drop, on_score_changed, vw);
        gtk_string_list_splice(GTK_STRING_LIST(model), 0, n_old, titles);
        g_free(titles);
        int pick = 0;
        for (int i = 0; i < vw->n_sources; i++)
            if (strcmp(vw->sources[i].name, vw->score) == 0) pick = i;
        if (!vw->score[0]) snprintf(vw->score, sizeof vw->score, "%s", vw->sources[0].name);
        gtk_drop_down_set_selected(GTK_DROP_DOWN(vw->score_drop), (guint)pick);
        g_signal_handlers_unblock_by_func(vw->score_drop, on_score_changed, vw);
    }
    char buf[128];
    if (vw->n_tokens > vw->token_window)
        snprintf(buf, sizeof buf, "tokens %lld–%lld of %d", (long long)vw->token_lo,
                 (long long)MIN(vw->token_lo + vw->token_window, vw->n_tokens) - 1, vw->n_tokens);
    else
        snprintf(buf, sizeof buf, "%d tokens", vw->n_tokens);
    gtk_label_set_text(GTK_LABEL(vw->window_label), buf);
    char info[512];
    describe_token(vw, vw->query, info, sizeof info);
    gtk_label_set_text(GTK_LABEL(vw->token_info), info);
}

static int always(viewer *vw) { return 1; }

// ---- attention page ----

static void attention_cell_step(viewer *vw, int *cells, int *step) {
    *step = vw->att_n > HEAT_CELLS ? (vw->att_n + HEAT_CELLS - 1) / HEAT_CELLS : 1;
    *cells = (vw->att_n + *step - 1) / *step;
}

static int build_heat(viewer *vw) {
    int cells, step;
    attention_cell_step(vw, &cells, &step);
    float *map = vw->att;
    int m = vw->att_n;
    if (step > 1 && pl_figures_pool_attention(&map, &m, vw->att, vw->att_n, cells) != 0) return -1;
    vw->heat_step = vw->att_n > 0 ? (vw->att_n + m - 1) / m : 1;
    // Labels: the token pieces when they can be read, else the first position of each cell.
    char **labels = g_new0(char *, (size_t)m + 1);
    char buf[PL_TOKEN_DISPLAY_SIZE];
    for (int i = 0; i < m; i++)
        labels[i] = m <= 64 && i < vw->n_tokens ? g_strdup(piece_display(vw->tokens[i].display, buf, sizeof buf))
                                                 : g_strdup_printf("%d", i * vw->heat_step);
    pl_figure *fig = pl_figure_new(1, 1);
    int rc = -1;
    if (fig) {
        pl_figure_set_theme(fig, viewer_theme(vw));
        pl_axes *ax = pl_figure_axes(fig, 0, 0);
        char title[128];
        snprintf(title, sizeof title, "layer %d head %d%s", vw->layer, vw->head, step > 1 ? " (pooled)" : "");
        pl_axes_set_title(ax, title);
        pl_axes_set_xlabel(ax, "key");
        pl_axes_set_ylabel(ax, "query");
        pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, 0.0, NAN);
        rc = pl_axes_heatmap(ax, map, m, m, (const char *const *)labels, (const char *const *)labels, "attention") < 0 ? -1 : 0;
    }
    if (rc == 0) vw->heat_fig = fig;
    else pl_figure_free(fig);
    g_strfreev(labels);
    if (map != vw->att) free(map);
    return rc;
}

static void stroke_rect(cairo_t *cr, double x0, double y0, double x1, double y1, double width) {
    cairo_set_source_rgb(cr, 0.96, 0.45, 0.05);
    cairo_set_line_width(cr, width);
    cairo_rectangle(cr, fmin(x0, x1), fmin(y0, y1), fabs(x1 - x0), fabs(y1 - y0));
    cairo_stroke(cr);
}

static void heat_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    viewer *vw = data;
    paint_background(vw, cr, w, h);
    if (!vw->att) return;
    if (!vw->heat_fig && build_heat(vw) != 0) return;
    pl_plot_draw(vw->heat_fig, cr, w, h);
    if (vw->query >= 0 && vw->heat_step > 0) {
        // Outline the selected query's row.
        pl_axes *ax = pl_figure_axes(vw->heat_fig, 0, 0);
        double row = vw->query / vw->heat_step, x0, y0, x1, y1;
        if (pl_axes_data_to_px(ax, -0.5, row - 0.5, &x0, &y0) == 0 && pl_axes_data_to_px(ax, row + 0.5, row + 0.5, &x1, &y1) == 0)
            stroke_rect(cr, x0, y0, x1, y1, 2);
    }
}

static void heat_click(GtkGestureClick *g, int n_press, double x, double y, gpointer data) {
    viewer *vw = data;
    int64_t row, col;
    if (vw->heat_fig && pl_axes_heatmap_cell_at(pl_figure_axes(vw->heat_fig, 0, 0), x, y, &row, &col) == 0)
        viewer_select_query(vw, (int)(row * vw->heat_step));
}

static void heat_motion(GtkEventControllerMotion *c, double x, double y, gpointer data) {
    viewer *vw = data;
    int64_t row, col;
    if (!vw->heat_fig || !vw->att || pl_axes_heatmap_cell_at(pl_figure_axes(vw->heat_fig, 0, 0), x, y, &row, &col) != 0) return;
    int q = (int)(row * vw->heat_step), k = (int)(col * vw->heat_step);
    if (q >= vw->att_n || k >= vw->att_n) return;
    char qb[PL_TOKEN_DISPLAY_SIZE], kb[sizeof qb], buf[400];
    float a = vw->att[(size_t)q * (size_t)vw->att_n + (size_t)k];
    snprintf(buf, sizeof buf, "query %d ‘%s’ → key %d ‘%s’: attention %s", q,
             q < vw->n_tokens ? piece_display(vw->tokens[q].display, qb, sizeof qb) : "", k,
             k < vw->n_tokens ? piece_display(vw->tokens[k].display, kb, sizeof kb) : "", isfinite(a) ? "" : "masked");
    if (isfinite(a)) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%.4f%s", a, vw->heat_step > 1 ? " (cell pooled)" : "");
    gtk_label_set_text(GTK_LABEL(vw->att_info), buf);
}

// All layer/head maps as one mosaic heatmap (blocks of thumb_m cells, one NaN cell between
// blocks) so they share one colour bar and the thumbnails get the whole area.
static int thumb_rows(viewer *vw) { return MIN(vw->n_layers, 16); }
static int thumb_cols(viewer *vw) { return MIN(vw->n_heads, 16); }

static int build_thumbs(viewer *vw) {
    int rows = thumb_rows(vw), cols = thumb_cols(vw), m = vw->thumb_m, gap = 1;
    int64_t R = (int64_t)rows * (m + gap) - gap, C = (int64_t)cols * (m + gap) - gap;
    float *mosaic = malloc(sizeof *mosaic * (size_t)(R * C));
    if (!mosaic) return -1;
    for (int64_t i = 0; i < R * C; i++) mosaic[i] = NAN;
    for (int l = 0; l < rows; l++)
        for (int h = 0; h < cols; h++) {
            const float *map = vw->thumbs[l * vw->n_heads + h];
            for (int i = 0; map && i < m; i++)
                memcpy(mosaic + (size_t)((int64_t)l * (m + gap) + i) * (size_t)C + (size_t)h * (m + gap), map + (size_t)i * m,
                       sizeof *mosaic * (size_t)m);
        }
    pl_figure *fig = pl_figure_new(1, 1);
    int rc = -1;
    if (fig) {
        pl_figure_set_theme(fig, viewer_theme(vw));
        pl_axes *ax = pl_figure_axes(fig, 0, 0);
        pl_axes_set_title(ax, "all layers (rows) × heads (columns)");
        pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, 0.0, NAN);
        // Tick labels would name mosaic cells, not layers: hide them with empty strings.
        const char **blank = g_new0(const char *, (size_t)MAX(R, C) + 1);
        for (int64_t i = 0; i < MAX(R, C); i++) blank[i] = "";
        rc = pl_axes_heatmap(ax, mosaic, R, C, blank, blank, "attention") < 0 ? -1 : 0;
        g_free(blank);
    }
    free(mosaic);
    if (rc == 0) vw->thumbs_fig = fig;
    else pl_figure_free(fig);
    return rc;
}

// Pixel rectangle of thumbnail (layer, head) in the last drawing.
static int thumb_rect(viewer *vw, int l, int h, double *x0, double *y0, double *x1, double *y1) {
    pl_axes *ax = pl_figure_axes(vw->thumbs_fig, 0, 0);
    int m = vw->thumb_m, gap = 1;
    return pl_axes_data_to_px(ax, h * (m + gap) - 0.5, l * (m + gap) - 0.5, x0, y0) ||
           pl_axes_data_to_px(ax, h * (m + gap) + m - 0.5, l * (m + gap) + m - 0.5, x1, y1);
}

static void thumbs_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    viewer *vw = data;
    paint_background(vw, cr, w, h);
    if (!vw->thumbs || vw->n_thumbs != vw->n_layers * vw->n_heads || vw->thumb_m <= 0) return;
    if (!vw->thumbs_fig && build_thumbs(vw) != 0) return;
    pl_plot_draw(vw->thumbs_fig, cr, w, h);
    double x0, y0, x1, y1;
    pl_rgb fg = viewer_theme(vw) == PL_THEME_DARK ? (pl_rgb){0.85, 0.85, 0.85} : (pl_rgb){0.25, 0.25, 0.25};
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int l = 0; l < thumb_rows(vw); l++)
        for (int hd = 0; hd < thumb_cols(vw); hd++) {
            if (thumb_rect(vw, l, hd, &x0, &y0, &x1, &y1) != 0) continue;
            double size = fmin(11, fmax(7, (x1 - x0) / 5));
            cairo_set_font_size(cr, size);
            // Labels sit in the masked upper triangle of each map, where there is no data.
            char label[32];
            snprintf(label, sizeof label, "L%d H%d", l, hd);
            cairo_text_extents_t te;
            cairo_text_extents(cr, label, &te);
            if (te.width > (x1 - x0) - 4) continue;
            cairo_set_source_rgb(cr, fg.r, fg.g, fg.b);
            cairo_move_to(cr, x1 - te.width - 3, y0 + size + 2);
            cairo_show_text(cr, label);
        }
    if (thumb_rect(vw, vw->layer, vw->head, &x0, &y0, &x1, &y1) == 0) stroke_rect(cr, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 3);
}

static void thumbs_click(GtkGestureClick *g, int n_press, double x, double y, gpointer data) {
    viewer *vw = data;
    if (!vw->thumbs_fig) return;
    for (int l = 0; l < thumb_rows(vw); l++)
        for (int hd = 0; hd < thumb_cols(vw); hd++) {
            double x0, y0, x1, y1;
            if (thumb_rect(vw, l, hd, &x0, &y0, &x1, &y1) == 0 && x >= x0 - 2 && x <= x1 + 2 && y >= y0 - 2 && y <= y1 + 2) {
                viewer_set_layer_head(vw, l, hd);
                return;
            }
        }
}

// Tokens coloured by the selected query's attention row (keys after the query are blank).
static void att_tokens_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    viewer *vw = data;
    paint_background(vw, cr, w, h);
    if (!vw->att || vw->query < 0 || vw->query >= vw->att_n || vw->n_tokens == 0) return;
    if (!vw->att_tokens_fig) {
        int64_t lo = vw->token_lo, n = MIN((int64_t)vw->token_window, vw->n_tokens - lo);
        const char **pieces = g_new0(const char *, (size_t)n + 1);
        float *scores = g_new0(float, (size_t)n + 1);
        int *segments = g_new0(int, (size_t)n + 1);
        const float *row = vw->att + (size_t)vw->query * (size_t)vw->att_n;
        float peak = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = lo + i;
            pieces[i] = vw->tokens[k].display;
            segments[i] = vw->tokens[k].segment;
            scores[i] = k <= vw->query && k < vw->att_n ? row[k] : NAN;
            if (isfinite(scores[i])) peak = fmaxf(peak, scores[i]);
        }
        pl_figure *fig = pl_figure_new(1, 1);
        if (fig) {
            pl_figure_set_theme(fig, viewer_theme(vw));
            pl_axes *ax = pl_figure_axes(fig, 0, 0);
            char title[160];
            snprintf(title, sizeof title, "attention from query %d (layer %d head %d) over the tokens", vw->query, vw->layer, vw->head);
            pl_axes_set_title(ax, title);
            pl_axes_set_colormap(ax, PL_CMAP_VIRIDIS, 0.0, peak > 0 ? peak : 1.0);
            if (pl_axes_tokens(ax, pieces, scores, segments, n) < 0) pl_figure_free(fig), fig = NULL;
        }
        vw->att_tokens_fig = fig;
        g_free(pieces);
        g_free(scores);
        g_free(segments);
        if (!fig) return;
    }
    pl_plot_draw(vw->att_tokens_fig, cr, w, h);
    pl_rect q;
    if (pl_axes_token_rect(pl_figure_axes(vw->att_tokens_fig, 0, 0), vw->query - vw->token_lo, &q) == 0)
        stroke_rect(cr, q.x - 1, q.y - 1, q.x + q.w + 1, q.y + q.h + 1, 2);
}

static void att_tokens_click(GtkGestureClick *g, int n_press, double x, double y, gpointer data) {
    viewer *vw = data;
    int i = token_under(vw, vw->att_tokens_fig, vw->token_lo, x, y);
    if (i >= 0) viewer_select_query(vw, i);
}

static void on_layer_head_spin(GtkSpinButton *s, gpointer data) {
    viewer *vw = data;
    viewer_set_layer_head(vw, gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(vw->layer_spin)),
                          gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(vw->head_spin)));
}

static GtkWidget *drawing_area(viewer *vw, GtkDrawingAreaDrawFunc draw, GCallback click, GCallback motion) {
    GtkWidget *a = gtk_drawing_area_new();
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), draw, vw, NULL);
    if (click) {
        GtkGesture *g = gtk_gesture_click_new();
        g_signal_connect(g, "pressed", click, vw);
        gtk_widget_add_controller(a, GTK_EVENT_CONTROLLER(g));
    }
    if (motion) {
        GtkEventController *m = gtk_event_controller_motion_new();
        g_signal_connect(m, "motion", motion, vw);
        gtk_widget_add_controller(a, m);
    }
    return a;
}

static GtkWidget *attention_create(viewer *vw) {
    GtkWidget *page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *bar = toolbar_box();
    gtk_box_append(GTK_BOX(bar), gtk_label_new("Layer"));
    vw->layer_spin = gtk_spin_button_new_with_range(0, 0, 1);
    gtk_box_append(GTK_BOX(bar), vw->layer_spin);
    gtk_box_append(GTK_BOX(bar), gtk_label_new("Head"));
    vw->head_spin = gtk_spin_button_new_with_range(0, 0, 1);
    gtk_box_append(GTK_BOX(bar), vw->head_spin);
    g_signal_connect(vw->layer_spin, "value-changed", G_CALLBACK(on_layer_head_spin), vw);
    g_signal_connect(vw->head_spin, "value-changed", G_CALLBACK(on_layer_head_spin), vw);
    GtkWidget *hint = gtk_label_new("[ ] layer · { } head · click a thumbnail or a heatmap row");
    gtk_widget_add_css_class(hint, "dim-label");
    gtk_widget_set_hexpand(hint, TRUE);
    gtk_label_set_xalign(GTK_LABEL(hint), 1);
    gtk_box_append(GTK_BOX(bar), hint);
    gtk_box_append(GTK_BOX(page), bar);

    GtkWidget *top = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    vw->heat_area = drawing_area(vw, heat_draw, G_CALLBACK(heat_click), G_CALLBACK(heat_motion));
    vw->thumbs_area = drawing_area(vw, thumbs_draw, G_CALLBACK(thumbs_click), NULL);
    gtk_widget_set_size_request(vw->heat_area, 420, 360);
    gtk_widget_set_size_request(vw->thumbs_area, 300, 200);
    gtk_paned_set_start_child(GTK_PANED(top), vw->heat_area);
    gtk_paned_set_end_child(GTK_PANED(top), vw->thumbs_area);
    gtk_paned_set_position(GTK_PANED(top), 540);
    gtk_widget_set_vexpand(top, TRUE);
    gtk_box_append(GTK_BOX(page), top);
    vw->att_tokens_area = drawing_area(vw, att_tokens_draw, G_CALLBACK(att_tokens_click), NULL);
    gtk_widget_set_size_request(vw->att_tokens_area, -1, 150);
    gtk_box_append(GTK_BOX(page), vw->att_tokens_area);
    vw->att_info = info_label();
    gtk_box_append(GTK_BOX(page), vw->att_info);
    return page;
}

static void attention_update(viewer *vw) {
    g_signal_handlers_block_by_func(vw->layer_spin, on_layer_head_spin, vw);
    g_signal_handlers_block_by_func(vw->head_spin, on_layer_head_spin, vw);
    gtk_spin_button_set_range(GTK_SPIN_BUTTON(vw->layer_spin), 0, MAX(vw->n_layers - 1, 0));
    gtk_spin_button_set_range(GTK_SPIN_BUTTON(vw->head_spin), 0, MAX(vw->n_heads - 1, 0));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(vw->layer_spin), vw->layer);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(vw->head_spin), vw->head);
    g_signal_handlers_unblock_by_func(vw->layer_spin, on_layer_head_spin, vw);
    g_signal_handlers_unblock_by_func(vw->head_spin, on_layer_head_spin, vw);
    char buf[400], piece[PL_TOKEN_DISPLAY_SIZE];
    if (vw->n_layers == 0) snprintf(buf, sizeof buf, "This run has no attention patterns (record blocks.*.attn.hook_pattern).");
    else if (!vw->att) snprintf(buf, sizeof buf, "Loading attention…");
    else if (vw->query >= 0 && vw->query < vw->att_n) {
        const float *row = vw->att + (size_t)vw->query * (size_t)vw->att_n;
        int best = 0;
        for (int k = 0; k <= vw->query; k++)
            if (isfinite(row[k]) && row[k] > row[best]) best = k;
        char qp[sizeof piece];
        snprintf(buf, sizeof buf, "query %d ‘%s’ attends most to key %d ‘%s’ (%.3f) in layer %d head %d", vw->query,
                 vw->query < vw->n_tokens ? piece_display(vw->tokens[vw->query].display, qp, sizeof qp) : "", best,
                 best < vw->n_tokens ? piece_display(vw->tokens[best].display, piece, sizeof piece) : "", row[best], vw->layer, vw->head);
    } else snprintf(buf, sizeof buf, "Click a token or a heatmap row to select a query.");
    gtk_label_set_text(GTK_LABEL(vw->att_info), buf);
}

static int has_attention(viewer *vw) { return vw->n_layers > 0; }

// ---- analyses page ----

static void analysis_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    viewer *vw = data;
    paint_background(vw, cr, w, h);
    if (!vw->v || vw->n_analyses == 0) return;
    if (!vw->analysis_fig &&
        pl_figures_analysis(&vw->analysis_fig, vw->v, vw->analysis_names[vw->analysis_index], viewer_theme(vw)) != 0)
        return;
    pl_plot_draw(vw->analysis_fig, cr, w, h);
}

static void on_analysis_selected(GtkListBox *box, GtkListBoxRow *row, gpointer data) {
    viewer *vw = data;
    if (!row) return;
    int i = gtk_list_box_row_get_index(row);
    if (i < 0 || i >= vw->n_analyses || i == vw->analysis_index) return;
    vw->analysis_index = i;
    pl_figure_free(vw->analysis_fig);
    vw->analysis_fig = NULL;
    gtk_widget_queue_draw(vw->analysis_area);
}

static GtkWidget *analyses_create(viewer *vw) {
    GtkWidget *page = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    vw->analysis_list = gtk_list_box_new();
    gtk_list_box_set_selection_mode(GTK_LIST_BOX(vw->analysis_list), GTK_SELECTION_BROWSE);
    g_signal_connect(vw->analysis_list, "row-selected", G_CALLBACK(on_analysis_selected), vw);
    GtkWidget *scroll = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), vw->analysis_list);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_size_request(scroll, 230, -1);
    vw->analysis_area = drawing_area(vw, analysis_draw, NULL, NULL);
    gtk_widget_set_size_request(vw->analysis_area, 400, 300);
    gtk_widget_set_hexpand(vw->analysis_area, TRUE);
    gtk_paned_set_start_child(GTK_PANED(page), scroll);
    gtk_paned_set_shrink_start_child(GTK_PANED(page), FALSE);
    gtk_paned_set_resize_start_child(GTK_PANED(page), FALSE);
    gtk_paned_set_end_child(GTK_PANED(page), vw->analysis_area);
    gtk_paned_set_position(GTK_PANED(page), 250);
    return page;
}

static void analyses_update(viewer *vw) {
    // Rebuild the list when the store's analyses changed.
    int n_rows = 0;
    for (GtkWidget *c = gtk_widget_get_first_child(vw->analysis_list); c; c = gtk_widget_get_next_sibling(c)) n_rows++;
    int same = n_rows == vw->n_analyses;
    for (int i = 0; same && i < n_rows; i++) {
        GtkListBoxRow *row = gtk_list_box_get_row_at_index(GTK_LIST_BOX(vw->analysis_list), i);
        same = row && strcmp(gtk_widget_get_name(GTK_WIDGET(row)), vw->analysis_names[i]) == 0;
    }
    if (same) return;
    g_signal_handlers_block_by_func(vw->analysis_list, on_analysis_selected, vw);
    GtkWidget *c;
    while ((c = gtk_widget_get_first_child(vw->analysis_list))) gtk_list_box_remove(GTK_LIST_BOX(vw->analysis_list), c);
    for (int i = 0; i < vw->n_analyses; i++) {
        char *name = g_markup_escape_text(vw->analysis_names[i], -1);
        char *kind = g_markup_escape_text(pl_analysis_renderer_find(vw->analysis_kinds[i])->description, -1);
        char *markup = g_strdup_printf("%s\n<small>%s</small>", name, kind);
        GtkWidget *label = gtk_label_new(NULL);
        gtk_label_set_markup(GTK_LABEL(label), markup);
        gtk_label_set_xalign(GTK_LABEL(label), 0);
        gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_END);
        gtk_widget_set_margin_start(label, 8);
        gtk_widget_set_margin_top(label, 4);
        gtk_widget_set_margin_bottom(label, 4);
        gtk_list_box_append(GTK_LIST_BOX(vw->analysis_list), label);
        GtkListBoxRow *row = gtk_list_box_get_row_at_index(GTK_LIST_BOX(vw->analysis_list), i);
        gtk_widget_set_name(GTK_WIDGET(row), vw->analysis_names[i]);
        g_free(markup);
        g_free(name);
        g_free(kind);
    }
    if (vw->analysis_index >= vw->n_analyses) vw->analysis_index = 0;
    if (vw->n_analyses > 0)
        gtk_list_box_select_row(GTK_LIST_BOX(vw->analysis_list),
                                gtk_list_box_get_row_at_index(GTK_LIST_BOX(vw->analysis_list), vw->analysis_index));
    g_signal_handlers_unblock_by_func(vw->analysis_list, on_analysis_selected, vw);
    pl_figure_free(vw->analysis_fig);
    vw->analysis_fig = NULL;
    gtk_widget_queue_draw(vw->analysis_area);
}

static int has_analyses(viewer *vw) { return vw->n_analyses > 0; }

const viewer_page viewer_pages[] = {
    {"tokens", "Tokens", always, tokens_create, tokens_update},
    {"attention", "Attention", has_attention, attention_create, attention_update},
    {"analyses", "Analyses", has_analyses, analyses_create, analyses_update},
};
const int viewer_n_pages = (int)(sizeof viewer_pages / sizeof viewer_pages[0]);
