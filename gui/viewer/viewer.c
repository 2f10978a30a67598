// The viewer window: runs list with filters on the left, pages (tokens, attention, analyses) on
// the right. Slow reads (the filtered id list, attention maps) run on worker threads, each with
// its own read-only store handle; the UI thread reads only bounded things (a page of runs, one
// run's tokens). A 2 s timer polls SQLite's data_version and refreshes when a writer committed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gui/viewer/viewer_internal.h"
#include "runtime/base/error.h"

#define POLL_MS 2000
#define THUMB_CELLS 48
#define HEAT_CELLS 384  // longer runs are average-pooled to this many cells a side for the heatmap

pl_theme viewer_theme(viewer *vw) { return vw->dark ? PL_THEME_DARK : PL_THEME_LIGHT; }

static void show_message(viewer *vw, const char *markup) {
    gtk_label_set_markup(GTK_LABEL(vw->message), markup);
    gtk_widget_set_visible(vw->switcher, FALSE);
    gtk_stack_set_visible_child_name(GTK_STACK(vw->main_stack), "message");
}

static void show_error(viewer *vw, const char *title, const char *detail) {
    char *t = g_markup_escape_text(title, -1), *d = g_markup_escape_text(detail, -1);
    char *markup = g_strdup_printf("<span size='x-large' weight='bold'>%s</span>\n\n%s", t, d);
    show_message(vw, markup);
    g_free(markup);
    g_free(t);
    g_free(d);
}

void viewer_invalidate(viewer *vw) {
    pl_figure **figs[] = {&vw->tokens_fig, &vw->att_tokens_fig, &vw->heat_fig, &vw->thumbs_fig, &vw->analysis_fig};
    for (size_t i = 0; i < G_N_ELEMENTS(figs); i++) {
        pl_figure_free(*figs[i]);
        *figs[i] = NULL;
    }
    GtkWidget *areas[] = {vw->tokens_area, vw->att_tokens_area, vw->heat_area, vw->thumbs_area, vw->analysis_area};
    for (size_t i = 0; i < G_N_ELEMENTS(areas); i++)
        if (areas[i]) gtk_widget_queue_draw(areas[i]);
}

static void update_pages(viewer *vw) {
    for (int i = 0; i < viewer_n_pages; i++) {
        GtkWidget *child = gtk_stack_get_child_by_name(GTK_STACK(vw->pages_stack), viewer_pages[i].name);
        if (!child) continue;
        GtkStackPage *page = gtk_stack_get_page(GTK_STACK(vw->pages_stack), child);
        gtk_stack_page_set_visible(page, viewer_pages[i].can_show(vw) != 0);
        viewer_pages[i].update(vw);
    }
}

// ---- worker jobs ----

typedef enum { JOB_FILTER, JOB_ATTENTION } job_kind;

typedef struct {
    job_kind kind;
    viewer *vw;
    unsigned generation;
    char path[1024];
    // filter
    char task[64], text[200];
    int correct;
    int64_t *ids, n, n_correct, n_incorrect;
    char **tasks;
    int64_t *task_counts;
    int n_tasks;
    // attention
    int64_t run;
    int layer, head, n_layers, n_heads;
    float *att, **thumbs;
    int att_n, thumb_m;
    char err[1024];
} job;

static void job_free(job *j) {
    free(j->ids);
    pl_strings_free(j->tasks, j->n_tasks);
    free(j->task_counts);
    free(j->att);
    for (int i = 0; j->thumbs && i < j->n_layers * j->n_heads; i++) free(j->thumbs[i]);
    free(j->thumbs);
    g_free(j);
}

static void job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel) {
    job *j = data;
    pl_vstore *v;
    if (pl_vstore_open(&v, j->path) != 0) {
        snprintf(j->err, sizeof j->err, "%s", pl_errmsg());
        return;
    }
    if (j->kind == JOB_FILTER) {
        pl_run_filter f = pl_run_filter_any();
        f.task = j->task, f.correct = j->correct, f.text = j->text;
        if (pl_store_run_ids(pl_vstore_store(v), &f, &j->ids, &j->n, &j->n_correct, &j->n_incorrect) != 0 ||
            pl_store_list_tasks(pl_vstore_store(v), &j->tasks, &j->task_counts, &j->n_tasks) != 0)
            snprintf(j->err, sizeof j->err, "%s", pl_errmsg());
    } else {
        // The selected map at full resolution plus a small pooled map per layer and head.
        if (pl_vstore_attention(v, j->run, j->layer, j->head, &j->att, &j->att_n) != 0) {
            snprintf(j->err, sizeof j->err, "%s", pl_errmsg());
        } else if (j->n_layers > 0) {
            j->thumbs = calloc((size_t)(j->n_layers * j->n_heads), sizeof *j->thumbs);
            for (int l = 0; j->thumbs && l < j->n_layers; l++)
                for (int h = 0; h < j->n_heads; h++) {
                    float *a;
                    int n;
                    if (pl_vstore_attention(v, j->run, l, h, &a, &n) != 0) continue;
                    pl_figures_pool_attention(&j->thumbs[l * j->n_heads + h], &j->thumb_m, a, n, THUMB_CELLS);
                    free(a);
                }
        }
    }
    pl_vstore_close(v);
}

static void start_job(viewer *vw, job *j, GAsyncReadyCallback done) {
    j->vw = vw;
    snprintf(j->path, sizeof j->path, "%s", vw->opts.store_path);
    vw->pending++;
    GTask *task = g_task_new(NULL, NULL, done, j);
    g_task_set_task_data(task, j, NULL);
    g_task_run_in_thread(task, job_thread);
    g_object_unref(task);
}

// ---- runs list and filters ----

static void select_run(viewer *vw, int64_t run_id);

// GTK 4.8 has no gtk_list_view_scroll_to(); the list's own action does the same. It misplaces
// rows if run before the list has its size, so it waits for the list to be drawn once.
typedef struct {
    viewer *vw;
    guint pos;
} scroll_request;

static gboolean scroll_when_ready(GtkWidget *w, GdkFrameClock *clock, gpointer data) {
    scroll_request *r = data;
    if (gtk_widget_get_height(w) <= 0) return G_SOURCE_CONTINUE;
    if (!r->vw->closing) gtk_widget_activate_action(w, "list.scroll-to-item", "u", r->pos);
    r->vw->pending--;
    g_free(r);
    return G_SOURCE_REMOVE;
}

static void scroll_to_row(viewer *vw, guint pos) {
    if (gtk_widget_get_mapped(vw->list_view) && gtk_widget_get_height(vw->list_view) > 0) {
        gtk_widget_activate_action(vw->list_view, "list.scroll-to-item", "u", pos);
        return;
    }
    scroll_request *r = g_new0(scroll_request, 1);
    r->vw = vw;
    r->pos = pos;
    vw->pending++;
    gtk_widget_add_tick_callback(vw->list_view, scroll_when_ready, r, NULL);
}

static void set_count_label(viewer *vw, const job *j) {
    int64_t total = 0;
    for (int i = 0; i < j->n_tasks; i++) total += j->task_counts[i];
    char buf[256];
    snprintf(buf, sizeof buf, "%lld of %lld runs · %lld correct · %lld incorrect", (long long)j->n, (long long)total,
             (long long)j->n_correct, (long long)j->n_incorrect);
    gtk_label_set_text(GTK_LABEL(vw->count_label), buf);
}

static void update_task_dropdown(viewer *vw, job *j) {
    // Rebuild only when the task list changed (the counts in the labels may change every poll).
    int same = j->n_tasks == vw->n_tasks;
    for (int i = 0; same && i < j->n_tasks; i++) same = strcmp(j->tasks[i], vw->tasks[i]) == 0;
    int64_t total = 0;
    for (int i = 0; i < j->n_tasks; i++) total += j->task_counts[i];
    guint selected = gtk_drop_down_get_selected(GTK_DROP_DOWN(vw->task_drop));
    char label[128];
    snprintf(label, sizeof label, "all tasks (%lld)", (long long)total);
    const char **labels = g_new0(const char *, (size_t)j->n_tasks + 2);
    char **owned = g_new0(char *, (size_t)j->n_tasks + 1);
    labels[0] = label;
    for (int i = 0; i < j->n_tasks; i++) {
        owned[i] = g_strdup_printf("%s (%lld)", j->tasks[i][0] ? j->tasks[i] : "(no task)", (long long)j->task_counts[i]);
        labels[i + 1] = owned[i];
    }
    guint n_old = g_list_model_get_n_items(G_LIST_MODEL(vw->task_names));
    gtk_string_list_splice(vw->task_names, 0, n_old, labels);
    if (same && selected != GTK_INVALID_LIST_POSITION) gtk_drop_down_set_selected(GTK_DROP_DOWN(vw->task_drop), selected);
    g_strfreev(owned);
    g_free(labels);
    pl_vstore_free_strings(vw->tasks, vw->n_tasks);
    vw->tasks = j->tasks;
    vw->n_tasks = j->n_tasks;
    free(j->task_counts);
    j->tasks = NULL;
    j->task_counts = NULL;
    j->n_tasks = 0;
}

static gboolean updating_tasks;

static void filter_done(GObject *src, GAsyncResult *res, gpointer data) {
    job *j = data;
    viewer *vw = j->vw;
    vw->pending--;
    vw->filter_pending--;
    if (j->generation != vw->filter_generation || vw->closing) {
        job_free(j);
        return;
    }
    if (j->err[0]) {
        show_error(vw, "Cannot read the store", j->err);
        job_free(j);
        return;
    }
    set_count_label(vw, j);
    updating_tasks = TRUE;
    update_task_dropdown(vw, j);
    updating_tasks = FALSE;
    int64_t keep = vw->run_id;
    guint n = (guint)j->n;
    pl_runs_model_set_ids(vw->runs, j->ids, n);
    j->ids = NULL;
    if (vw->max_run_id == 0) {
        show_message(vw, "<span size='x-large' weight='bold'>This store has no runs yet</span>\n\n"
                         "Record some with <tt>probelab trace MODEL --dataset F.jsonl --store S.db</tt>;\n"
                         "they appear here while the trace runs (the store is checked every 2 s).");
    } else {
        gtk_stack_set_visible_child_name(GTK_STACK(vw->main_stack), "main");
        gtk_widget_set_visible(vw->switcher, TRUE);
    }
    // Keep the selected run selected; otherwise select the requested or first run.
    int64_t want = keep > 0 ? keep : vw->opts.run;
    guint pos = want > 0 ? pl_runs_model_find(vw->runs, want) : GTK_INVALID_LIST_POSITION;
    if (pos == GTK_INVALID_LIST_POSITION && n > 0) pos = 0;
    if (pos != GTK_INVALID_LIST_POSITION) {
        gtk_single_selection_set_selected(vw->selection, pos);
        PlRunItem *it = g_list_model_get_item(G_LIST_MODEL(vw->runs), pos);
        if (it->run.id != vw->run_id) select_run(vw, it->run.id);
        g_object_unref(it);
        if (keep <= 0) scroll_to_row(vw, pos);
    }
    job_free(j);
}

static void refilter(viewer *vw) {
    if (!vw->v) return;
    job *j = g_new0(job, 1);
    j->kind = JOB_FILTER;
    j->generation = ++vw->filter_generation;
    guint t = gtk_drop_down_get_selected(GTK_DROP_DOWN(vw->task_drop));
    if (t != GTK_INVALID_LIST_POSITION && t > 0 && (int)t - 1 < vw->n_tasks)
        snprintf(j->task, sizeof j->task, "%s", vw->tasks[t - 1]);
    guint c = gtk_drop_down_get_selected(GTK_DROP_DOWN(vw->correct_drop));
    j->correct = c == 1 ? 1 : c == 2 ? 0 : -1;
    snprintf(j->text, sizeof j->text, "%s", gtk_editable_get_text(GTK_EDITABLE(vw->search)));
    vw->filter_pending++;
    start_job(vw, j, filter_done);
}

static void on_filter_changed(GObject *o, GParamSpec *ps, gpointer data) {
    if (!updating_tasks) refilter(data);
}
static void on_search_changed(GtkSearchEntry *e, gpointer data) { refilter(data); }

static gboolean poll_store(gpointer data) {
    viewer *vw = data;
    int64_t version, max_id;
    if (!vw->v || vw->filter_pending > 0) return G_SOURCE_CONTINUE;
    if (pl_vstore_data_version(vw->v, &version) != 0 || pl_vstore_max_run_id(vw->v, &max_id) != 0) return G_SOURCE_CONTINUE;
    if (version == vw->data_version && max_id == vw->max_run_id) return G_SOURCE_CONTINUE;
    vw->data_version = version;
    int new_runs = max_id != vw->max_run_id;
    vw->max_run_id = max_id;
    if (new_runs) refilter(vw);
    // Analyses or probe outputs may have been added too.
    pl_vstore_free_strings(vw->analysis_names, vw->n_analyses);
    pl_vstore_free_strings(vw->analysis_kinds, vw->n_analyses);
    vw->analysis_names = vw->analysis_kinds = NULL;
    vw->n_analyses = 0;
    pl_vstore_analyses(vw->v, &vw->analysis_names, &vw->analysis_kinds, &vw->n_analyses);
    free(vw->sources);
    vw->sources = NULL;
    pl_vstore_score_sources(vw->v, &vw->sources, &vw->n_sources);
    viewer_invalidate(vw);
    update_pages(vw);
    return G_SOURCE_CONTINUE;
}

// ---- the selected run ----

static void attention_done(GObject *src, GAsyncResult *res, gpointer data) {
    job *j = data;
    viewer *vw = j->vw;
    vw->pending--;
    if (!vw->closing && j->generation == vw->att_generation && j->run == vw->run_id) {
        free(vw->att);
        vw->att = j->att;
        vw->att_n = j->att_n;
        j->att = NULL;
        if (j->thumbs) {
            for (int i = 0; i < vw->n_thumbs; i++) free(vw->thumbs[i]);
            free(vw->thumbs);
            vw->thumbs = j->thumbs;
            vw->n_thumbs = j->n_layers * j->n_heads;
            vw->thumb_m = j->thumb_m;
            j->thumbs = NULL;
        }
        if (j->err[0]) gtk_label_set_text(GTK_LABEL(vw->att_info), j->err);
        viewer_invalidate(vw);
        update_pages(vw);
    }
    job_free(j);
}

void viewer_load_attention(viewer *vw) {
    if (vw->n_layers == 0 || vw->run_id <= 0) return;
    job *j = g_new0(job, 1);
    j->kind = JOB_ATTENTION;
    j->generation = ++vw->att_generation;
    j->run = vw->run_id;
    j->layer = vw->layer;
    j->head = vw->head;
    // Thumbnails only when the run changed (they do not depend on the selected layer/head).
    j->n_layers = vw->thumbs ? 0 : vw->n_layers;
    j->n_heads = vw->n_heads;
    start_job(vw, j, attention_done);
}

static void select_run(viewer *vw, int64_t run_id) {
    if (!vw->v || run_id <= 0) return;
    vw->run_id = run_id;
    free(vw->tokens);
    vw->tokens = NULL;
    vw->n_tokens = 0;
    if (pl_store_get_tokens(pl_vstore_store(vw->v), run_id, &vw->tokens, &vw->n_tokens) != 0) gtk_label_set_text(GTK_LABEL(vw->token_info), pl_errmsg());
    pl_vstore_attention_shape(vw->v, run_id, &vw->n_layers, &vw->n_heads);
    if (vw->layer >= vw->n_layers) vw->layer = 0;
    if (vw->head >= vw->n_heads) vw->head = 0;
    // Start at the last prompt token: the position the pre-CoT analyses are about.
    vw->query = -1;
    for (int i = 0; i < vw->n_tokens; i++)
        if (vw->tokens[i].segment == PL_SEG_PROMPT) vw->query = i;
    if (vw->query < 0 && vw->n_tokens > 0) vw->query = 0;
    vw->token_lo = 0;
    free(vw->att);
    vw->att = NULL;
    vw->att_n = 0;
    for (int i = 0; i < vw->n_thumbs; i++) free(vw->thumbs[i]);
    free(vw->thumbs);
    vw->thumbs = NULL;
    vw->n_thumbs = 0;
    viewer_load_attention(vw);
    viewer_invalidate(vw);
    update_pages(vw);
}

static void on_selection_changed(GtkSelectionModel *sel, guint pos, guint n, gpointer data) {
    viewer *vw = data;
    PlRunItem *it = gtk_single_selection_get_selected_item(vw->selection);
    if (it && it->run.id != vw->run_id) select_run(vw, it->run.id);
}

void viewer_select_query(viewer *vw, int query) {
    if (vw->n_tokens == 0) return;
    vw->query = CLAMP(query, 0, vw->n_tokens - 1);
    // Keep the query inside the token window.
    if (vw->query < vw->token_lo || vw->query >= vw->token_lo + vw->token_window)
        vw->token_lo = (vw->query / vw->token_window) * vw->token_window;
    viewer_invalidate(vw);
    update_pages(vw);
}

void viewer_set_layer_head(viewer *vw, int layer, int head) {
    if (vw->n_layers == 0) return;
    layer = CLAMP(layer, 0, vw->n_layers - 1);
    head = CLAMP(head, 0, vw->n_heads - 1);
    if (layer == vw->layer && head == vw->head) return;
    vw->layer = layer;
    vw->head = head;
    viewer_load_attention(vw);
    update_pages(vw);
}

void viewer_draw_attention_overlay(viewer *vw, cairo_t *cr, pl_figure *fig, int64_t first_token) {
    if (!vw->att || vw->query < 0 || vw->query >= vw->att_n) return;
    pl_axes *ax = pl_figure_axes(fig, 0, 0);
    const float *row = vw->att + (size_t)vw->query * (size_t)vw->att_n;
    float peak = 0;
    for (int k = 0; k <= vw->query; k++)
        if (isfinite(row[k])) peak = fmaxf(peak, row[k]);
    if (peak <= 0) return;
    // A bar above each key token, its height the attention weight relative to the row's peak.
    for (int k = 0; k <= vw->query; k++) {
        pl_rect r;
        if (k < first_token || !isfinite(row[k]) || pl_axes_token_rect(ax, k - first_token, &r) != 0) continue;
        double h = 5 * (row[k] / peak);
        cairo_rectangle(cr, r.x, r.y - h - 1, r.w, h + 1);
        cairo_set_source_rgba(cr, 0.96, 0.55, 0.05, 0.35 + 0.65 * row[k] / peak);
        cairo_fill(cr);
    }
    pl_rect q;
    if (vw->query >= first_token && pl_axes_token_rect(ax, vw->query - first_token, &q) == 0) {
        cairo_set_line_width(cr, 2);
        cairo_set_source_rgb(cr, 0.96, 0.55, 0.05);
        cairo_rectangle(cr, q.x - 1, q.y - 1, q.w + 2, q.h + 2);
        cairo_stroke(cr);
    }
}

// ---- keyboard ----

static gboolean on_key(GtkEventControllerKey *c, guint key, guint code, GdkModifierType mods, gpointer data) {
    viewer *vw = data;
    GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(vw->window));
    gboolean typing = focus && (GTK_IS_TEXT(focus) || GTK_IS_EDITABLE(focus));
    if ((mods & GDK_CONTROL_MASK) && (key == GDK_KEY_q || key == GDK_KEY_w)) {
        gtk_window_destroy(GTK_WINDOW(vw->window));
        return TRUE;
    }
    if ((mods & GDK_CONTROL_MASK) && key == GDK_KEY_f) {
        gtk_widget_grab_focus(vw->search);
        return TRUE;
    }
    if (key == GDK_KEY_Escape && typing) {
        gtk_widget_grab_focus(vw->list_view);
        return TRUE;
    }
    if (typing || (mods & (GDK_CONTROL_MASK | GDK_ALT_MASK))) return FALSE;
    guint sel = gtk_single_selection_get_selected(vw->selection);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(vw->runs));
    switch (key) {
    case GDK_KEY_j:
    case GDK_KEY_k:
        if (n == 0) return TRUE;
        sel = sel == GTK_INVALID_LIST_POSITION ? 0 : key == GDK_KEY_j ? MIN(sel + 1, n - 1) : (sel > 0 ? sel - 1 : 0);
        gtk_single_selection_set_selected(vw->selection, sel);
        scroll_to_row(vw, sel);
        return TRUE;
    case GDK_KEY_h:
    case GDK_KEY_Left: viewer_select_query(vw, vw->query - 1); return TRUE;
    case GDK_KEY_l:
    case GDK_KEY_Right: viewer_select_query(vw, vw->query + 1); return TRUE;
    case GDK_KEY_Page_Down: viewer_select_query(vw, (int)MIN(vw->token_lo + vw->token_window, vw->n_tokens - 1)); return TRUE;
    case GDK_KEY_Page_Up: viewer_select_query(vw, (int)MAX(vw->token_lo - vw->token_window, 0)); return TRUE;
    case GDK_KEY_bracketright: viewer_set_layer_head(vw, vw->layer + 1, vw->head); return TRUE;
    case GDK_KEY_bracketleft: viewer_set_layer_head(vw, vw->layer - 1, vw->head); return TRUE;
    case GDK_KEY_braceright: viewer_set_layer_head(vw, vw->layer, vw->head + 1); return TRUE;
    case GDK_KEY_braceleft: viewer_set_layer_head(vw, vw->layer, vw->head - 1); return TRUE;
    case GDK_KEY_1:
    case GDK_KEY_2:
    case GDK_KEY_3: {
        int i = (int)(key - GDK_KEY_1);
        if (i < viewer_n_pages) gtk_stack_set_visible_child_name(GTK_STACK(vw->pages_stack), viewer_pages[i].name);
        return TRUE;
    }
    default: return FALSE;
    }
}

// ---- list rows ----

static void row_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 1);
    GtkWidget *top = gtk_label_new(""), *bottom = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(top), 0);
    gtk_label_set_xalign(GTK_LABEL(bottom), 0);
    gtk_label_set_ellipsize(GTK_LABEL(bottom), PANGO_ELLIPSIZE_END);
    gtk_widget_add_css_class(bottom, "dim-label");
    gtk_widget_set_margin_start(box, 8);
    gtk_widget_set_margin_end(box, 8);
    gtk_widget_set_margin_top(box, 4);
    gtk_widget_set_margin_bottom(box, 4);
    gtk_box_append(GTK_BOX(box), top);
    gtk_box_append(GTK_BOX(box), bottom);
    gtk_list_item_set_child(item, box);
}

static void row_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer data) {
    PlRunItem *it = gtk_list_item_get_item(item);
    GtkWidget *box = gtk_list_item_get_child(item);
    GtkWidget *top = gtk_widget_get_first_child(box), *bottom = gtk_widget_get_next_sibling(top);
    const pl_run_info *r = &it->run;
    const char *mark = r->correct == 1 ? "<span foreground='#2ca02c'>✓</span>"
                       : r->correct == 0 ? "<span foreground='#d62728'>✗</span>" : "·";
    char *task = g_markup_escape_text(r->task[0] ? r->task : "-", -1), *answer = g_markup_escape_text(r->answer, -1);
    char *markup = g_strdup_printf("%s <b>run %lld</b>  %s · %d tokens%s%s%s", mark, (long long)r->id, task, r->n_tokens,
                                   answer[0] ? " · answer " : "", answer,
                                   strcmp(r->status, "complete") == 0 ? "" : strcmp(r->status, "running") == 0 ? " · running" : " · aborted");
    gtk_label_set_markup(GTK_LABEL(top), markup);
    gtk_label_set_text(GTK_LABEL(bottom), r->preview);
    g_free(markup);
    g_free(task);
    g_free(answer);
}

// ---- screenshot (--screenshot FILE) ----

static void save_screenshot(viewer *vw) {
    GtkWidget *w = vw->window;
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
    GdkPaintable *paintable = gtk_widget_paintable_new(w);
    GtkSnapshot *snap = gtk_snapshot_new();
    gdk_paintable_snapshot(paintable, GDK_SNAPSHOT(snap), width, height);
    GskRenderNode *node = gtk_snapshot_free_to_node(snap);
    int ok = 0;
    if (node) {
        GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(w));
        graphene_rect_t rect = GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height);
        GdkTexture *tex = gsk_renderer_render_texture(renderer, node, &rect);
        if (tex) {
            ok = gdk_texture_save_to_png(tex, vw->opts.screenshot);
            g_object_unref(tex);
        }
        gsk_render_node_unref(node);
    }
    g_object_unref(paintable);
    if (!ok) fprintf(stderr, "probelab: view: %s: cannot write the screenshot\n", vw->opts.screenshot);
    vw->screenshot_done = ok ? 1 : -1;
    gtk_window_destroy(GTK_WINDOW(w));
}

static gboolean screenshot_tick(gpointer data) {
    viewer *vw = data;
    double waited = g_get_monotonic_time() / 1e6 - vw->shown_at;
    // Wait for the loads to finish and a few frames to be drawn; give up waiting after 15 s.
    if ((vw->pending == 0 && waited > 0.8) || waited > 15) {
        save_screenshot(vw);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

// ---- window ----

static int detect_dark(viewer *vw) {
    if (vw->opts.theme >= 0) return vw->opts.theme;
    GtkSettings *s = gtk_settings_get_default();
    gboolean prefer_dark = FALSE;
    char *theme = NULL;
    g_object_get(s, "gtk-application-prefer-dark-theme", &prefer_dark, "gtk-theme-name", &theme, NULL);
    int dark = prefer_dark || (theme && g_str_has_suffix(theme, "-dark"));
    g_free(theme);
    return dark;
}

static GtkWidget *build_sidebar(viewer *vw) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_start(box, 8);
    gtk_widget_set_margin_end(box, 4);
    gtk_widget_set_margin_top(box, 8);
    gtk_widget_set_margin_bottom(box, 8);
    vw->search = gtk_search_entry_new();
    gtk_search_entry_set_search_delay(GTK_SEARCH_ENTRY(vw->search), 250);
    g_object_set(vw->search, "placeholder-text", "Filter runs by text or id (Ctrl+F)", NULL);
    g_signal_connect(vw->search, "search-changed", G_CALLBACK(on_search_changed), vw);
    gtk_box_append(GTK_BOX(box), vw->search);

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    vw->task_names = gtk_string_list_new((const char *const[]){"all tasks", NULL});
    vw->task_drop = gtk_drop_down_new(G_LIST_MODEL(vw->task_names), NULL);
    gtk_widget_set_hexpand(vw->task_drop, TRUE);
    g_signal_connect(vw->task_drop, "notify::selected", G_CALLBACK(on_filter_changed), vw);
    vw->correct_drop = gtk_drop_down_new_from_strings((const char *const[]){"correct or not", "correct", "incorrect", NULL});
    gtk_widget_set_hexpand(vw->correct_drop, TRUE);
    g_signal_connect(vw->correct_drop, "notify::selected", G_CALLBACK(on_filter_changed), vw);
    gtk_box_append(GTK_BOX(row), vw->task_drop);
    gtk_box_append(GTK_BOX(row), vw->correct_drop);
    gtk_box_append(GTK_BOX(box), row);

    vw->count_label = gtk_label_new("loading runs…");
    gtk_label_set_xalign(GTK_LABEL(vw->count_label), 0);
    gtk_widget_add_css_class(vw->count_label, "dim-label");
    gtk_box_append(GTK_BOX(box), vw->count_label);

    vw->runs = pl_runs_model_new(vw->v);
    vw->selection = gtk_single_selection_new(G_LIST_MODEL(vw->runs));
    gtk_single_selection_set_autoselect(vw->selection, FALSE);
    g_signal_connect(vw->selection, "selection-changed", G_CALLBACK(on_selection_changed), vw);
    GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
    g_signal_connect(factory, "setup", G_CALLBACK(row_setup), vw);
    g_signal_connect(factory, "bind", G_CALLBACK(row_bind), vw);
    vw->list_view = gtk_list_view_new(GTK_SELECTION_MODEL(vw->selection), factory);
    GtkWidget *scroll = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), vw->list_view);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_vexpand(scroll, TRUE);
    gtk_box_append(GTK_BOX(box), scroll);
    gtk_widget_set_size_request(box, 330, -1);
    return box;
}

static void on_map(GtkWidget *w, gpointer data) {
    viewer *vw = data;
    vw->shown_at = g_get_monotonic_time() / 1e6;
    if (vw->opts.screenshot) g_timeout_add(100, screenshot_tick, vw);
}

static void activate(GtkApplication *app, gpointer data) {
    viewer *vw = data;
    vw->window = gtk_application_window_new(app);
    char *base = g_path_get_basename(vw->opts.store_path);
    char *title = g_strdup_printf("probelab · %s", base);
    gtk_window_set_title(GTK_WINDOW(vw->window), title);
    g_free(title);
    g_free(base);
    gtk_window_set_default_size(GTK_WINDOW(vw->window), vw->opts.width > 0 ? vw->opts.width : 1280,
                                vw->opts.height > 0 ? vw->opts.height : 800);
    vw->dark = detect_dark(vw);
    if (vw->opts.theme >= 0) g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", vw->dark, NULL);

    GtkWidget *header = gtk_header_bar_new();
    vw->pages_stack = gtk_stack_new();
    gtk_stack_set_transition_type(GTK_STACK(vw->pages_stack), GTK_STACK_TRANSITION_TYPE_NONE);
    vw->switcher = gtk_stack_switcher_new();
    gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(vw->switcher), GTK_STACK(vw->pages_stack));
    gtk_header_bar_set_title_widget(GTK_HEADER_BAR(header), vw->switcher);
    gtk_window_set_titlebar(GTK_WINDOW(vw->window), header);

    vw->main_stack = gtk_stack_new();
    vw->message = gtk_label_new("");
    gtk_label_set_justify(GTK_LABEL(vw->message), GTK_JUSTIFY_CENTER);
    gtk_label_set_wrap(GTK_LABEL(vw->message), TRUE);
    gtk_stack_add_named(GTK_STACK(vw->main_stack), vw->message, "message");

    GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_paned_set_start_child(GTK_PANED(paned), build_sidebar(vw));
    gtk_paned_set_resize_start_child(GTK_PANED(paned), FALSE);
    gtk_paned_set_shrink_start_child(GTK_PANED(paned), FALSE);
    for (int i = 0; i < viewer_n_pages; i++)
        gtk_stack_add_titled(GTK_STACK(vw->pages_stack), viewer_pages[i].create(vw), viewer_pages[i].name, viewer_pages[i].title);
    gtk_paned_set_end_child(GTK_PANED(paned), vw->pages_stack);
    gtk_paned_set_position(GTK_PANED(paned), 360);
    gtk_stack_add_named(GTK_STACK(vw->main_stack), paned, "main");
    gtk_window_set_child(GTK_WINDOW(vw->window), vw->main_stack);

    GtkEventController *keys = gtk_event_controller_key_new();
    gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
    g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key), vw);
    gtk_widget_add_controller(vw->window, keys);
    g_signal_connect(vw->window, "map", G_CALLBACK(on_map), vw);

    if (!vw->v) {
        show_error(vw, "Cannot open this store", vw->open_error);
    } else {
        gtk_stack_set_visible_child_name(GTK_STACK(vw->main_stack), "main");
        pl_vstore_data_version(vw->v, &vw->data_version);
        pl_vstore_max_run_id(vw->v, &vw->max_run_id);
        pl_vstore_analyses(vw->v, &vw->analysis_names, &vw->analysis_kinds, &vw->n_analyses);
        pl_vstore_score_sources(vw->v, &vw->sources, &vw->n_sources);
        for (int i = 0; vw->opts.analysis && i < vw->n_analyses; i++)
            if (strcmp(vw->analysis_names[i], vw->opts.analysis) == 0) vw->analysis_index = i;
        update_pages(vw);
        refilter(vw);
        vw->poll_source = g_timeout_add(POLL_MS, poll_store, vw);
    }
    if (vw->opts.page) gtk_stack_set_visible_child_name(GTK_STACK(vw->pages_stack), vw->opts.page);
    gtk_window_present(GTK_WINDOW(vw->window));
}

int pl_viewer_run(const pl_viewer_opts *o) {
    viewer *vw = g_new0(viewer, 1);
    vw->opts = *o;
    vw->query = -1;
    vw->token_window = 256;
    if (pl_vstore_open(&vw->v, o->store_path) != 0) {
        // Shown in the window; also on stderr for scripts.
        snprintf(vw->open_error, sizeof vw->open_error, "%s", pl_errmsg());
        fprintf(stderr, "probelab: view: %s\n", vw->open_error);
    }
    if (o->page) {
        int known = 0;
        for (int i = 0; i < viewer_n_pages; i++) known |= strcmp(o->page, viewer_pages[i].name) == 0;
        if (!known) {
            fprintf(stderr, "probelab: view: unknown page '%s' (tokens, attention, analyses)\n", o->page);
            pl_vstore_close(vw->v);
            g_free(vw);
            return 2;
        }
    }
    // NON_UNIQUE: every `probelab view` is its own process and window, even for the same store.
    vw->app = gtk_application_new("org.probelab.Viewer", G_APPLICATION_NON_UNIQUE);
    g_signal_connect(vw->app, "activate", G_CALLBACK(activate), vw);
    char *argv0[] = {"probelab-view", NULL};
    int status = g_application_run(G_APPLICATION(vw->app), 1, argv0);
    vw->closing = 1;
    if (vw->poll_source) g_source_remove(vw->poll_source);
    // Jobs still in flight hold pointers to vw: let them finish before freeing it.
    while (vw->pending > 0) g_main_context_iteration(NULL, TRUE);
    g_object_unref(vw->app);
    if (o->screenshot && vw->screenshot_done != 1) status = 1;
    vw->tokens_area = vw->att_tokens_area = vw->heat_area = vw->thumbs_area = vw->analysis_area = NULL;
    viewer_invalidate(vw);  // frees the cached figures
    pl_vstore_free_strings(vw->tasks, vw->n_tasks);
    pl_vstore_free_strings(vw->analysis_names, vw->n_analyses);
    pl_vstore_free_strings(vw->analysis_kinds, vw->n_analyses);
    for (int i = 0; i < vw->n_thumbs; i++) free(vw->thumbs[i]);
    free(vw->thumbs);
    free(vw->att);
    free(vw->tokens);
    free(vw->sources);
    free(vw->score_values);
    pl_vstore_close(vw->v);
    g_free(vw);
    return status;
}
