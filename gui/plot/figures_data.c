// Read-only store access for figures and the viewer. The store's own API answers most questions;
// a second read-only SQLite connection answers the browsing ones it has no call for (pages of runs,
// counts, probe outputs, attention shape, data_version), all with indexed or bounded queries.
#include "gui/plot/figures_data.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/store/store.h"

struct pl_vstore {
    pl_store *store;
    sqlite3 *db;
    char path[1024];
};

static int sql_fail(pl_vstore *v, const char *what) {
    return pl_fail("%s: %s: %s", v->path, what, sqlite3_errmsg(v->db));
}

int pl_vstore_open(pl_vstore **out, const char *path) {
    *out = NULL;
    pl_vstore *v = calloc(1, sizeof *v);
    if (!v) return pl_fail("%s: out of memory", path);
    snprintf(v->path, sizeof v->path, "%s", path);
    if (pl_store_open(&v->store, path, PL_STORE_READ) != 0) {
        free(v);
        return -1;
    }
    if (sqlite3_open_v2(path, &v->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sql_fail(v, "open");
        pl_vstore_close(v);
        return -1;
    }
    sqlite3_busy_timeout(v->db, 5000);
    *out = v;
    return 0;
}

void pl_vstore_close(pl_vstore *v) {
    if (!v) return;
    if (v->db) sqlite3_close(v->db);
    pl_store_close(v->store);
    free(v);
}

const char *pl_vstore_path(const pl_vstore *v) { return v->path; }

// Run a query whose first row's first column is an integer (0 if NULL or no row).
static int query_int64(pl_vstore *v, const char *sql, int64_t *out) {
    sqlite3_stmt *st;
    *out = 0;
    if (sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK) return sql_fail(v, "query");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_fail(v, "query");
}

int pl_vstore_data_version(pl_vstore *v, int64_t *out) { return query_int64(v, "PRAGMA data_version", out); }
int pl_vstore_max_run_id(pl_vstore *v, int64_t *out) { return query_int64(v, "SELECT max(id) FROM runs", out); }

// ---- runs ----

#define RUN_COLUMNS                                                                                      \
    "SELECT r.id, r.status, coalesce(e.task, ''), coalesce(r.n_prompt, 0), coalesce(r.n_tokens, 0),"     \
    " (SELECT value FROM labels WHERE run_id = r.id AND key = 'correct'),"                                \
    " (SELECT value FROM labels WHERE run_id = r.id AND key = 'answer'), substr(coalesce(e.prompt, ''), 1, 200)" \
    " FROM runs r LEFT JOIN examples e ON e.id = r.example_id"
// ?1 task, ?2 correct, ?3 LIKE pattern, ?4 the text itself (matches a run id).
#define RUN_FILTER                                                                                        \
    " (?1 IS NULL OR e.task = ?1)"                                                                        \
    " AND (?2 < 0 OR (SELECT value FROM labels WHERE run_id = r.id AND key = 'correct') = ?2)"           \
    " AND (?3 IS NULL OR e.prompt LIKE ?3 OR r.text LIKE ?3 OR e.answer LIKE ?3 OR CAST(r.id AS TEXT) = ?4)"

static void bind_filter(sqlite3_stmt *st, const pl_vrun_filter *f, char *like, size_t like_size) {
    const char *task = f && f->task && f->task[0] ? f->task : NULL;
    const char *text = f && f->text && f->text[0] ? f->text : NULL;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, f ? f->correct : -1);
    if (text) {
        snprintf(like, like_size, "%%%s%%", text);
        sqlite3_bind_text(st, 3, like, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 3);
        sqlite3_bind_null(st, 4);
    }
}

static void run_from_row(sqlite3_stmt *st, pl_vrun *r) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    snprintf(r->status, sizeof r->status, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(r->task, sizeof r->task, "%s", (const char *)sqlite3_column_text(st, 2));
    r->n_prompt = sqlite3_column_int(st, 3);
    r->n_tokens = sqlite3_column_int(st, 4);
    r->correct = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5);
    const char *answer = (const char *)sqlite3_column_text(st, 6);
    snprintf(r->answer, sizeof r->answer, "%s", answer ? answer : "");
    const char *prompt = (const char *)sqlite3_column_text(st, 7);
    snprintf(r->preview, sizeof r->preview, "%s", prompt ? prompt : "");
    for (char *p = r->preview; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r') *p = ' ';
}

int pl_vstore_run_ids(pl_vstore *v, const pl_vrun_filter *f, int64_t **ids, int64_t *n, int64_t *n_correct,
                      int64_t *n_incorrect) {
    *ids = NULL;
    *n = *n_correct = *n_incorrect = 0;
    sqlite3_stmt *st;
    const char *sql = "SELECT r.id, (SELECT value FROM labels WHERE run_id = r.id AND key = 'correct')"
                      " FROM runs r LEFT JOIN examples e ON e.id = r.example_id WHERE" RUN_FILTER " ORDER BY r.id";
    if (sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK) return sql_fail(v, "list runs");
    char like[300];
    bind_filter(st, f, like, sizeof like);
    int64_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *grown = realloc(*ids, sizeof **ids * (size_t)cap);
            if (!grown) {
                sqlite3_finalize(st);
                free(*ids);
                *ids = NULL;
                *n = 0;
                return pl_fail("%s: out of memory listing runs", v->path);
            }
            *ids = grown;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            if (sqlite3_column_int(st, 1)) (*n_correct)++;
            else (*n_incorrect)++;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return sql_fail(v, "list runs");
    }
    return 0;
}

int pl_vstore_runs_by_id(pl_vstore *v, pl_vrun *out, const int64_t *ids, int n) {
    for (int i = 0; i < n; i++) out[i].id = -1;
    if (n == 0) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db, RUN_COLUMNS " WHERE r.id BETWEEN ?1 AND ?2 ORDER BY r.id", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(v, "read runs");
    sqlite3_bind_int64(st, 1, ids[0]);
    sqlite3_bind_int64(st, 2, ids[n - 1]);
    int i = 0, rc;
    // Both sides are ascending: merge, skipping runs in the range that the filter left out.
    while (i < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        while (i < n && ids[i] < id) i++;
        if (i < n && ids[i] == id) run_from_row(st, &out[i++]);
    }
    sqlite3_finalize(st);
    return 0;
}

int pl_vstore_get_run(pl_vstore *v, int64_t run_id, pl_vrun *out) {
    if (pl_vstore_runs_by_id(v, out, &run_id, 1) != 0) return -1;
    if (out->id != run_id) return pl_fail("%s: run %lld does not exist", v->path, (long long)run_id);
    return 0;
}

int pl_vstore_tasks(pl_vstore *v, char ***tasks, int64_t **counts, int *n) {
    *tasks = NULL;
    *counts = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db,
                           "SELECT coalesce(e.task, ''), count(*) FROM runs r LEFT JOIN examples e ON e.id = r.example_id"
                           " GROUP BY 1 ORDER BY 1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(v, "list tasks");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **t = realloc(*tasks, sizeof *t * (size_t)cap);
            if (t) *tasks = t;
            int64_t *c = realloc(*counts, sizeof *c * (size_t)cap);
            if (c) *counts = c;
            if (!t || !c) break;
        }
        (*tasks)[*n] = strdup((const char *)sqlite3_column_text(st, 0));
        (*counts)[*n] = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pl_vstore_free_tasks(*tasks, *counts, *n);
        *tasks = NULL;
        *counts = NULL;
        *n = 0;
        return sql_fail(v, "list tasks");
    }
    return 0;
}

void pl_vstore_free_tasks(char **tasks, int64_t *counts, int n) {
    for (int i = 0; tasks && i < n; i++) free(tasks[i]);
    free(tasks);
    free(counts);
}

// ---- tokens and scores ----

int pl_vstore_tokens(pl_vstore *v, int64_t run_id, pl_vtoken **out, int *n) {
    *out = NULL;
    *n = 0;
    pl_token_row *rows;
    int n_rows;
    if (pl_store_get_tokens(v->store, run_id, &rows, &n_rows) != 0) return -1;
    pl_vtoken *t = calloc(n_rows > 0 ? (size_t)n_rows : 1, sizeof *t);
    if (!t) {
        free(rows);
        return pl_fail("%s: out of memory reading tokens", v->path);
    }
    for (int i = 0; i < n_rows; i++) {
        snprintf(t[i].piece, sizeof t[i].piece, "%s", rows[i].piece);
        t[i].segment = (int)rows[i].segment;
        t[i].logprob = rows[i].logprob;
        t[i].entropy = rows[i].entropy;
    }
    free(rows);
    *out = t;
    *n = n_rows;
    return 0;
}

// Score providers: each lists the sources it offers in a store and fills one source's scores.
typedef struct {
    const char *prefix;  // a source named exactly `prefix`, or "prefix:..." belongs to this provider
    int (*list)(pl_vstore *v, pl_vscore_source **out, int *n, int *cap);
    int (*fill)(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens);
} score_provider;

static int add_source(pl_vscore_source **out, int *n, int *cap, const char *name, const char *title, int diverging) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 8;
        pl_vscore_source *grown = realloc(*out, sizeof *grown * (size_t)c);
        if (!grown) return pl_fail("out of memory listing score sources");
        *out = grown;
        *cap = c;
    }
    pl_vscore_source *s = &(*out)[(*n)++];
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->title, sizeof s->title, "%s", title);
    s->diverging = diverging;
    return 0;
}

static int token_list(pl_vstore *v, pl_vscore_source **out, int *n, int *cap) {
    return add_source(out, n, cap, "logprob", "log-probability", 0) ||
           add_source(out, n, cap, "entropy", "entropy (nats)", 0) ? -1 : 0;
}

static int token_fill(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens) {
    pl_token_row *rows;
    int n_rows;
    if (pl_store_get_tokens(v->store, run_id, &rows, &n_rows) != 0) return -1;
    int entropy = strcmp(name, "entropy") == 0;
    for (int i = 0; i < n_tokens; i++) out[i] = i < n_rows ? (entropy ? rows[i].entropy : rows[i].logprob) : NAN;
    free(rows);
    return 0;
}

static int probe_list(pl_vstore *v, pl_vscore_source **out, int *n, int *cap) {
    sqlite3_stmt *st;
    // Stores of schema 1 have no probes table: nothing to offer.
    if (sqlite3_prepare_v2(v->db, "SELECT name, kind, coalesce(hook, '') FROM probes ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[80], title[96];
        snprintf(name, sizeof name, "probe:%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(title, sizeof title, "probe %s (%s)", (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 2));
        int dup = 0;
        for (int i = 0; i < *n; i++) dup |= strcmp((*out)[i].name, name) == 0;
        if (!dup && add_source(out, n, cap, name, title, 1) != 0) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int probe_fill(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens) {
    for (int i = 0; i < n_tokens; i++) out[i] = NAN;
    sqlite3_stmt *st;
    // The newest probe of that name wins when a probe was refitted under the same name.
    if (sqlite3_prepare_v2(v->db,
                           "SELECT pos, value FROM probe_outputs WHERE run_id = ?2 AND probe_id ="
                           " (SELECT max(id) FROM probes WHERE name = ?1) AND pos >= 0",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(v, "probe outputs");
    sqlite3_bind_text(st, 1, name + strlen("probe:"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int pos = sqlite3_column_int(st, 0);
        if (pos < n_tokens && sqlite3_column_type(st, 1) != SQLITE_NULL) out[pos] = (float)sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(v, "probe outputs");
}

// The registry: later modules (Gnosis, theater) add a row here.
static const score_provider score_providers[] = {
    {"probe", probe_list, probe_fill},
    {"logprob", token_list, token_fill},
    {"entropy", NULL, token_fill},
};

int pl_vstore_score_sources(pl_vstore *v, pl_vscore_source **out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    for (size_t i = 0; i < sizeof score_providers / sizeof score_providers[0]; i++) {
        if (score_providers[i].list && score_providers[i].list(v, out, n, &cap) != 0) {
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
    }
    return 0;
}

int pl_vstore_token_scores(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens) {
    for (size_t i = 0; i < sizeof score_providers / sizeof score_providers[0]; i++) {
        const score_provider *p = &score_providers[i];
        size_t len = strlen(p->prefix);
        if (strncmp(name, p->prefix, len) == 0 && (name[len] == '\0' || name[len] == ':'))
            return p->fill(v, name, run_id, out, n_tokens);
    }
    return pl_fail("%s: unknown score source '%s' (logprob, entropy or probe:NAME)", v->path, name);
}

// ---- attention ----

int pl_vstore_attention_shape(pl_vstore *v, int64_t run_id, int *n_layers, int *n_heads) {
    *n_layers = *n_heads = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db, "SELECT max(layer) + 1, max(n_heads) FROM attention WHERE run_id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(v, "attention shape");
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *n_layers = sqlite3_column_int(st, 0);
        *n_heads = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}

int pl_vstore_attention(pl_vstore *v, int64_t run_id, int layer, int head, float **out, int *n) {
    *out = NULL;
    *n = 0;
    float *tri;
    int q0, n_q, n_k;
    if (pl_store_read_attention(v->store, run_id, layer, head, &tri, &q0, &n_q, &n_k) != 0) return -1;
    // tri is [n_q × n_k] for query rows q0..; widen to the full square with NaN where unrecorded.
    size_t size = (size_t)n_k;
    float *m = malloc(sizeof *m * (size ? size * size : 1));
    if (!m) {
        free(tri);
        return pl_fail("%s: out of memory for a %d x %d attention matrix", v->path, n_k, n_k);
    }
    for (size_t i = 0; i < size * size; i++) m[i] = NAN;
    for (int q = 0; q < n_q; q++) {
        int row = q0 + q;
        memcpy(m + (size_t)row * size, tri + (size_t)q * (size_t)n_k, sizeof *m * (size_t)(row + 1));
    }
    free(tri);
    *out = m;
    *n = n_k;
    return 0;
}

// ---- analyses ----

int pl_vstore_analyses(pl_vstore *v, char ***names, char ***kinds, int *n) {
    *names = *kinds = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db, "SELECT name, kind FROM analyses ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return 0;  // schema 1: no analyses
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **a = realloc(*names, sizeof *a * (size_t)cap);
            if (a) *names = a;
            char **b = realloc(*kinds, sizeof *b * (size_t)cap);
            if (b) *kinds = b;
            if (!a || !b) break;
        }
        (*names)[*n] = strdup((const char *)sqlite3_column_text(st, 0));
        (*kinds)[*n] = strdup((const char *)sqlite3_column_text(st, 1));
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pl_vstore_free_strings(*names, *n);
        pl_vstore_free_strings(*kinds, *n);
        *names = *kinds = NULL;
        *n = 0;
        return sql_fail(v, "list analyses");
    }
    return 0;
}

void pl_vstore_free_strings(char **strings, int n) {
    for (int i = 0; strings && i < n; i++) free(strings[i]);
    free(strings);
}

int pl_vstore_analysis(pl_vstore *v, const char *name, pl_vanalysis *out) {
    memset(out, 0, sizeof *out);
    pl_analysis a;
    if (pl_store_get_analysis(v->store, name, &a) != 0) return -1;
    out->name = strdup(a.name ? a.name : name);
    out->kind = strdup(a.kind ? a.kind : "");
    int n = a.n_rows;
    out->series = calloc(n > 0 ? (size_t)n : 1, sizeof *out->series);
    out->x = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->y = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->lo = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->hi = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->matrix_names = calloc(a.n_matrices > 0 ? (size_t)a.n_matrices : 1, sizeof(char *));
    if (!out->name || !out->kind || !out->series || !out->x || !out->y || !out->lo || !out->hi || !out->matrix_names) {
        pl_analysis_free(&a);
        pl_vanalysis_free(out);
        return pl_fail("%s: out of memory reading analysis %s", v->path, name);
    }
    out->n_rows = n;
    for (int i = 0; i < n; i++) {
        out->series[i] = strdup(a.rows[i].series ? a.rows[i].series : "");
        out->x[i] = a.rows[i].x;
        out->y[i] = a.rows[i].y;
        out->lo[i] = a.rows[i].lo;
        out->hi[i] = a.rows[i].hi;
    }
    out->n_matrices = a.n_matrices;
    for (int i = 0; i < a.n_matrices; i++) out->matrix_names[i] = strdup(a.matrix_names[i]);
    pl_analysis_free(&a);
    return 0;
}

void pl_vanalysis_free(pl_vanalysis *a) {
    if (!a) return;
    free(a->name);
    free(a->kind);
    pl_vstore_free_strings(a->series, a->n_rows);
    free(a->x);
    free(a->y);
    free(a->lo);
    free(a->hi);
    pl_vstore_free_strings(a->matrix_names, a->n_matrices);
    memset(a, 0, sizeof *a);
}

int pl_vstore_analysis_matrix(pl_vstore *v, const char *analysis, const char *matrix, float **data, int *n_rows,
                              int *n_cols) {
    return pl_store_get_analysis_matrix(v->store, analysis, matrix, data, n_rows, n_cols);
}
