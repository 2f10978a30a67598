// Probes, probe outputs and named analyses (result tables for plots).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/store/store_internal.h"

static void bind_real_or_null(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

static int rollback_fail(pl_store *s, const char *what) {
    store_sql_fail(s, s->db, what);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int pl_store_put_probe(pl_store *s, const char *name, const char *kind, const char *hook, const char *positions,
                       const char *params_json, const float *weights, int n_weights, int64_t *id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO probes(name, kind, hook, positions, params, weights, created)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "put probe");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, hook, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, positions, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, params_json ? params_json : "{}", -1, SQLITE_TRANSIENT);
    if (weights && n_weights > 0) sqlite3_bind_blob(st, 6, weights, (int)(sizeof(float) * (size_t)n_weights), SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 7, store_unix_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "put probe");
    if (id) *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int pl_store_put_probe_outputs(pl_store *s, int64_t probe_id, int64_t run_id, const int32_t *pos, const float *value,
                               int n) {
    if (sqlite3_exec(s->db, "SAVEPOINT probe_outputs", NULL, NULL, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "probe outputs");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO probe_outputs(probe_id, run_id, pos, value) VALUES(?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, probe_id);
        sqlite3_bind_int64(st, 2, run_id);
        sqlite3_bind_int(st, 3, pos ? pos[i] : -1);
        bind_real_or_null(st, 4, value[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(s->db, "RELEASE probe_outputs", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    return 0;
fail:
    store_sql_fail(s, s->db, "probe outputs");
    sqlite3_exec(s->db, "ROLLBACK TO probe_outputs; RELEASE probe_outputs", NULL, NULL, NULL);
    return -1;
}

int pl_store_put_analysis(pl_store *s, const char *name, const char *kind, const char *params_json,
                          const pl_analysis_row *rows, int n_rows) {
    if (!name || !*name) return store_fail(s, "%s: an analysis needs a name", s->path);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "put analysis");
    sqlite3_stmt *st = NULL;
    // Replacing: the old rows and matrices go with the old analysis row (ON DELETE CASCADE).
    if (sqlite3_prepare_v2(s->db, "DELETE FROM analyses WHERE name=?1", -1, &st, NULL) != SQLITE_OK) goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO analyses(name, kind, created, params) VALUES(?1, ?2, ?3, ?4)", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind ? kind : "table", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 3, store_unix_now());
    sqlite3_bind_text(st, 4, params_json ? params_json : "{}", -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO analysis_rows(analysis_id, series, x, y, lo, hi) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < n_rows; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, rows[i].series ? rows[i].series : "", -1, SQLITE_TRANSIENT);
        bind_real_or_null(st, 3, rows[i].x);
        bind_real_or_null(st, 4, rows[i].y);
        bind_real_or_null(st, 5, rows[i].lo);
        bind_real_or_null(st, 6, rows[i].hi);
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    return rollback_fail(s, "put analysis");
}

static int analysis_id(pl_store *s, const char *name, int64_t *id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM analyses WHERE name=?1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "analysis");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return store_fail(s, "%s: no analysis named '%s'", s->path, name);
    return rc == SQLITE_ROW ? 0 : store_sql_fail(s, s->db, "analysis");
}

int pl_store_put_analysis_matrix(pl_store *s, const char *analysis, const char *matrix, const float *data, int n_rows,
                                 int n_cols) {
    int64_t id;
    if (analysis_id(s, analysis, &id) != 0) return -1;
    if (n_rows < 0 || n_cols < 0 || (int64_t)n_rows * n_cols > (1 << 28))
        return store_fail(s, "%s: matrix %s of %s: bad size %d x %d", s->path, matrix, analysis, n_rows, n_cols);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO analysis_matrices(analysis_id, name, n_rows, n_cols, data)"
                           " VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "put matrix");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, matrix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, n_rows);
    sqlite3_bind_int(st, 4, n_cols);
    sqlite3_bind_blob(st, 5, data ? (const void *)data : (const void *)"", (int)(sizeof(float) * (size_t)n_rows * n_cols),
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "put matrix");
}

static double column_real(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int pl_store_get_analysis(pl_store *s, const char *name, pl_analysis *out) {
    memset(out, 0, sizeof *out);
    int64_t id;
    if (analysis_id(s, name, &id) != 0) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name, kind, params, created FROM analyses WHERE id=?1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "get analysis");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->name = strdup(store_column_text(st, 0));
        out->kind = strdup(store_column_text(st, 1));
        const char *params = (const char *)sqlite3_column_text(st, 2);
        out->params_json = strdup(params ? params : "{}");
        out->created = sqlite3_column_double(st, 3);
    }
    sqlite3_finalize(st);
    // Rows: the series strings are packed after the row array in one allocation.
    if (sqlite3_prepare_v2(s->db,
                           "SELECT series, x, y, lo, hi FROM analysis_rows WHERE analysis_id=?1 ORDER BY series, x, rowid", -1,
                           &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    size_t text_bytes = 0;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) n++, text_bytes += (size_t)sqlite3_column_bytes(st, 0) + 1;
    sqlite3_reset(st);
    char *block = malloc(sizeof(pl_analysis_row) * (size_t)n + text_bytes + 1);
    if (!block) {
        sqlite3_finalize(st);
        pl_analysis_free(out);
        return store_fail(s, "%s: out of memory", s->path);
    }
    out->rows = (pl_analysis_row *)block;
    char *text = block + sizeof(pl_analysis_row) * (size_t)n;
    int i = 0;
    while (i < n && sqlite3_step(st) == SQLITE_ROW) {
        const char *series = (const char *)sqlite3_column_text(st, 0);
        size_t len = strlen(series ? series : "");
        memcpy(text, series ? series : "", len + 1);
        out->rows[i] = (pl_analysis_row){.series = text, .x = column_real(st, 1), .y = column_real(st, 2),
                                         .lo = column_real(st, 3), .hi = column_real(st, 4)};
        text += len + 1;
        i++;
    }
    out->n_rows = i;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "SELECT name FROM analysis_matrices WHERE analysis_id=?1 ORDER BY name", -1, &st, NULL) !=
        SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    int cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (out->n_matrices == cap) {
            cap = cap ? 2 * cap : 4;
            char **grown = realloc(out->matrix_names, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            out->matrix_names = grown;
        }
        out->matrix_names[out->n_matrices++] = strdup(store_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return 0;
fail:
    store_sql_fail(s, s->db, "get analysis");
    pl_analysis_free(out);
    return -1;
}

void pl_analysis_free(pl_analysis *a) {
    if (!a) return;
    free(a->name);
    free(a->kind);
    free(a->params_json);
    free(a->rows);
    pl_strings_free(a->matrix_names, a->n_matrices);
    memset(a, 0, sizeof *a);
}

int pl_store_get_analysis_matrix(pl_store *s, const char *analysis, const char *matrix, float **data, int *n_rows,
                                 int *n_cols) {
    *data = NULL;
    int64_t id;
    if (analysis_id(s, analysis, &id) != 0) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT n_rows, n_cols, data FROM analysis_matrices WHERE analysis_id=?1 AND name=?2", -1,
                           &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "get matrix");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, matrix, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return store_fail(s, "%s: analysis '%s' has no matrix '%s'", s->path, analysis, matrix);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return store_sql_fail(s, s->db, "get matrix");
    }
    int64_t rows = sqlite3_column_int64(st, 0), cols = sqlite3_column_int64(st, 1);
    if (rows < 0 || cols < 0 || rows > (1 << 28) || cols > (1 << 28) || rows * cols > (1 << 28)) {
        sqlite3_finalize(st);
        return store_fail_code(s, PL_ERR_CORRUPT, "%s: store corrupt: matrix '%s' of '%s': size %lld x %lld out of range", s->path, matrix, analysis,
                          (long long)rows, (long long)cols);
    }
    *n_rows = (int)rows;
    *n_cols = (int)cols;
    size_t bytes = sizeof(float) * (size_t)rows * (size_t)cols;
    if ((size_t)sqlite3_column_bytes(st, 2) != bytes) {
        sqlite3_finalize(st);
        return store_fail(s, "%s: matrix '%s' of '%s' has the wrong size", s->path, matrix, analysis);
    }
    *data = malloc(bytes ? bytes : 1);
    if (*data && bytes) memcpy(*data, sqlite3_column_blob(st, 2), bytes);
    sqlite3_finalize(st);
    return *data ? 0 : store_fail(s, "%s: out of memory", s->path);
}

int pl_store_list_analyses(pl_store *s, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    if (s->version < 2) return 0;  // schema 1 had no analyses
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name FROM analyses ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list analyses");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*names, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            *names = grown;
        }
        (*names)[(*n)++] = strdup(store_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "list analyses");
}
