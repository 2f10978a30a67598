// The runs list's model: the ids of the runs that pass the filter (computed off the UI thread) and
// their details, fetched one page of 128 rows at a time when GtkListView first asks for an item.
// A 10,000-run store thus costs one id query plus a page per screenful.
#include "gui/viewer/viewer_internal.h"

#define PAGE_ROWS 128

G_DEFINE_TYPE(PlRunItem, pl_run_item, G_TYPE_OBJECT)
static void pl_run_item_class_init(PlRunItemClass *c) { (void)c; }
static void pl_run_item_init(PlRunItem *it) { it->run.id = -1; }

struct _PlRunsModel {
    GObject parent;
    pl_vstore *v;
    int64_t *ids;
    guint n;
    PlRunItem **items;  // (n) loaded items, NULL until their page is read
    guint pages_loaded;
};

static GType runs_model_item_type(GListModel *m) { return PL_TYPE_RUN_ITEM; }
static guint runs_model_n_items(GListModel *m) { return PL_RUNS_MODEL(m)->n; }

static void load_page(PlRunsModel *m, guint page) {
    guint lo = page * PAGE_ROWS, hi = MIN(m->n, lo + PAGE_ROWS);
    pl_run_info rows[PAGE_ROWS];
    if (!m->v || pl_store_get_runs(pl_vstore_store(m->v), m->ids + lo, (int)(hi - lo), rows) != 0) {
        for (guint i = 0; i < hi - lo; i++) memset(&rows[i], 0, sizeof rows[i]), rows[i].id = m->ids[lo + i], rows[i].correct = -1;
    }
    for (guint i = lo; i < hi; i++) {
        if (m->items[i]) continue;
        PlRunItem *it = g_object_new(PL_TYPE_RUN_ITEM, NULL);
        it->run = rows[i - lo];
        if (it->run.id < 0) it->run.id = m->ids[i], snprintf(it->run.status, sizeof it->run.status, "deleted");
        m->items[i] = it;
    }
    m->pages_loaded++;
}

static gpointer runs_model_get_item(GListModel *lm, guint i) {
    PlRunsModel *m = PL_RUNS_MODEL(lm);
    if (i >= m->n) return NULL;
    if (!m->items[i]) load_page(m, i / PAGE_ROWS);
    return g_object_ref(m->items[i]);
}

static void runs_model_iface_init(GListModelInterface *iface) {
    iface->get_item_type = runs_model_item_type;
    iface->get_n_items = runs_model_n_items;
    iface->get_item = runs_model_get_item;
}

G_DEFINE_TYPE_WITH_CODE(PlRunsModel, pl_runs_model, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_LIST_MODEL, runs_model_iface_init))

static void clear_items(PlRunsModel *m, guint from) {
    for (guint i = from; i < m->n; i++)
        if (m->items[i]) g_object_unref(m->items[i]);
}

static void runs_model_finalize(GObject *o) {
    PlRunsModel *m = PL_RUNS_MODEL(o);
    clear_items(m, 0);
    g_free(m->items);
    g_free(m->ids);
    G_OBJECT_CLASS(pl_runs_model_parent_class)->finalize(o);
}

static void pl_runs_model_class_init(PlRunsModelClass *c) { G_OBJECT_CLASS(c)->finalize = runs_model_finalize; }
static void pl_runs_model_init(PlRunsModel *m) { (void)m; }

PlRunsModel *pl_runs_model_new(pl_vstore *v) {
    PlRunsModel *m = g_object_new(PL_TYPE_RUNS_MODEL, NULL);
    m->v = v;
    return m;
}

void pl_runs_model_set_ids(PlRunsModel *m, int64_t *ids, guint n) {
    guint old_n = m->n;
    gboolean appended = n >= old_n && (old_n == 0 || memcmp(ids, m->ids, sizeof *ids * old_n) == 0);
    if (appended && old_n > 0) {
        // Only the tail is new; the last old page may have been partial, so forget it.
        guint keep = (old_n / PAGE_ROWS) * PAGE_ROWS;
        clear_items(m, keep);
        m->items = g_renew(PlRunItem *, m->items, MAX(n, 1));
        for (guint i = keep; i < n; i++) m->items[i] = NULL;
        g_free(m->ids);
        m->ids = ids;
        m->n = n;
        if (n > old_n) g_list_model_items_changed(G_LIST_MODEL(m), old_n, 0, n - old_n);
        return;
    }
    clear_items(m, 0);
    g_free(m->items);
    g_free(m->ids);
    m->ids = ids;
    m->n = n;
    m->items = g_new0(PlRunItem *, MAX(n, 1));
    g_list_model_items_changed(G_LIST_MODEL(m), 0, old_n, n);
}

guint pl_runs_model_find(PlRunsModel *m, int64_t id) {
    // ids are ascending: binary search.
    guint lo = 0, hi = m->n;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        if (m->ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->ids[lo] == id ? lo : GTK_INVALID_LIST_POSITION;
}

guint pl_runs_model_pages_loaded(PlRunsModel *m) { return m->pages_loaded; }
