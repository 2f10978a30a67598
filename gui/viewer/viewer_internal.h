// Internals shared by the viewer's files: the lazily paged runs model, the viewer state and the
// page registry. Not for use outside gui/viewer.
#ifndef PL_VIEWER_INTERNAL_H
#define PL_VIEWER_INTERNAL_H

#include <gtk/gtk.h>

#include "gui/plot/figures.h"
#include "gui/viewer/viewer.h"

// ---- runs model: a GListModel over a list of run ids whose details load a page at a time ----

#define PL_TYPE_RUN_ITEM (pl_run_item_get_type())
G_DECLARE_FINAL_TYPE(PlRunItem, pl_run_item, PL, RUN_ITEM, GObject)
struct _PlRunItem {
    GObject parent;
    pl_run_info run;
};

#define PL_TYPE_RUNS_MODEL (pl_runs_model_get_type())
G_DECLARE_FINAL_TYPE(PlRunsModel, pl_runs_model, PL, RUNS_MODEL, GObject)

// A model reading run details through v (the UI thread's handle, borrowed) in pages of 128 rows.
PlRunsModel *pl_runs_model_new(pl_vstore *v);
// Replace the id list (the model takes ownership of ids). Keeps loaded rows when the new list only
// appends to the old one (a trace adding runs), so the selection and scroll position survive.
void pl_runs_model_set_ids(PlRunsModel *m, int64_t *ids, guint n);
// Position of run id in the list, or GTK_INVALID_LIST_POSITION.
guint pl_runs_model_find(PlRunsModel *m, int64_t id);
// Pages fetched so far (for tests of laziness).
guint pl_runs_model_pages_loaded(PlRunsModel *m);

// ---- viewer state ----

typedef struct viewer viewer;

// A page of the main area. Modules add a row to the table in viewer_pages.c.
typedef struct {
    const char *name, *title;
    int (*can_show)(viewer *vw);           // 0 hides the page (e.g. no analyses in the store)
    GtkWidget *(*create)(viewer *vw);      // build the page's widgets once
    void (*update)(viewer *vw);            // the run, layer/head, query or store changed
} viewer_page;
extern const viewer_page viewer_pages[];
extern const int viewer_n_pages;

struct viewer {
    pl_viewer_opts opts;
    GtkApplication *app;
    GtkWidget *window, *main_stack, *message, *pages_stack, *switcher;
    GtkWidget *search, *task_drop, *correct_drop, *count_label, *list_view;
    GtkStringList *task_names;
    char **tasks;
    int n_tasks;
    GtkSingleSelection *selection;
    PlRunsModel *runs;
    pl_vstore *v;               // UI thread's handle (NULL if the store could not be opened)
    char open_error[1024];
    int64_t data_version, max_run_id;
    unsigned filter_generation;  // results of older filter jobs are dropped
    int pending;                 // jobs in flight (the screenshot waits for 0)
    int filter_pending;
    guint poll_source;
    // current run
    int64_t run_id;
    pl_token_row *tokens;
    int n_tokens;
    int n_layers, n_heads;
    int layer, head, query;     // query = selected position (-1 none)
    int64_t token_lo;           // first token of the token window
    int token_window;
    char score[96];
    pl_vscore_source *sources;
    int n_sources;
    float *score_values;        // (n_tokens) values of `score` for the current run (hover text)
    int64_t score_values_run;
    char score_values_for[96];
    // attention of (run, layer, head): full matrix and the pooled map drawn when n is large
    float *att;
    int att_n;
    unsigned att_generation;
    float **thumbs;             // [n_layers * n_heads] pooled maps of thumb_m cells
    int thumb_m, n_thumbs;
    // analyses
    char **analysis_names, **analysis_kinds;
    int n_analyses;
    int analysis_index;
    int dark;
    // page widgets (owned by GTK)
    GtkWidget *tokens_area, *token_info, *score_drop, *window_label;
    GtkWidget *heat_area, *thumbs_area, *att_info, *layer_spin, *head_spin, *att_tokens_area;
    GtkWidget *analysis_list, *analysis_area;
    // figures drawn by the areas (rebuilt when their inputs change)
    pl_figure *tokens_fig, *att_tokens_fig, *heat_fig, *thumbs_fig, *analysis_fig;
    int heat_step;              // positions per heatmap cell (1 unless pooled)
    int screenshot_done;
    int closing;                // the window is gone: job results are dropped
    double shown_at;
};

// Helpers in viewer.c used by the pages.
void viewer_select_query(viewer *vw, int query);
void viewer_set_layer_head(viewer *vw, int layer, int head);
void viewer_invalidate(viewer *vw);  // drop cached figures and redraw all areas
// Draw an overlay of the selected query's attention row over a token strip figure's tokens.
void viewer_draw_attention_overlay(viewer *vw, cairo_t *cr, pl_figure *fig, int64_t first_token);
// Load attention maps for the current run/layer/head in a worker thread.
void viewer_load_attention(viewer *vw);
pl_theme viewer_theme(viewer *vw);

#endif
