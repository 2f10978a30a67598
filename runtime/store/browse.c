// What a run browser asks a store besides tensors: the newest run id and a change counter for
// cheap polling, task counts, attention shapes, probes (rows and outputs), a run's example, analysis
// kinds. Every query is indexed or bounded by one run; stores of schema 1 (no probes or analyses) answer empty.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime/base/error.h"
#include "runtime/store/store_internal.h"

// Run a query whose first row's first column is an integer (0 if NULL or no row).
static int query_int64(pl_store *s, const char *sql, int64_t *out, const char *what) {
    sqlite3_stmt *st;
    *out = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, what);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, what);
}

int pl_store_data_version(pl_store *s, int64_t *out) { return query_int64(s, "PRAGMA data_version", out, "data version"); }
int pl_store_max_run_id(pl_store *s, int64_t *out) { return query_int64(s, "SELECT max(id) FROM runs", out, "max run id"); }

int pl_store_list_tasks(pl_store *s, char ***tasks, int64_t **counts, int *n) {
    *tasks = NULL;
    *counts = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT coalesce(e.task, ''), count(*) FROM runs r LEFT JOIN examples e ON e.id = r.example_id"
                           " GROUP BY 1 ORDER BY 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list tasks");
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
        (*tasks)[*n] = strdup(store_column_text(st, 0));
        (*counts)[*n] = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pl_strings_free(*tasks, *n);
        free(*counts);
        *tasks = NULL;
        *counts = NULL;
        *n = 0;
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory listing tasks", s->path)
                                : store_sql_fail(s, s->db, "list tasks");
    }
    return 0;
}

int pl_store_attention_shape(pl_store *s, int64_t run_id, int *n_layers, int *n_heads) {
    *n_layers = *n_heads = 0;
    pl_run_info info;
    if (pl_store_get_run(s, run_id, &info) != 0) return -1;
    sqlite3_stmt *st;
    // The row with the largest layer or head count decides; it must be within the schema's bounds.
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, layer, n_heads FROM attention WHERE run_id = ?1 AND (layer < 0 OR layer >= ?2 OR"
                           " n_heads < 1 OR n_heads > ?3) LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "attention shape");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, PL_STORE_MAX_LAYERS);
    sqlite3_bind_int(st, 3, PL_STORE_MAX_HEADS);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), layer = sqlite3_column_int64(st, 1), heads = sqlite3_column_int64(st, 2);
        sqlite3_finalize(st);
        return store_corrupt(s, "attention", id, "layer %lld / n_heads %lld out of range 0..%d / 1..%d", (long long)layer,
                             (long long)heads, PL_STORE_MAX_LAYERS - 1, PL_STORE_MAX_HEADS);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "attention shape");
    if (sqlite3_prepare_v2(s->db, "SELECT max(layer) + 1, max(n_heads) FROM attention WHERE run_id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return store_sql_fail(s, s->db, "attention shape");
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *n_layers = sqlite3_column_int(st, 0);
        *n_heads = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_sql_fail(s, s->db, "attention shape");
}

// ---- probes ----------------------------------------------------------------------------------

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col) {
    const char *t = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", t ? t : "");
}

int pl_store_list_probes(pl_store *s, pl_probe_info **probes, int *n) {
    *probes = NULL;
    *n = 0;
    if (s->version < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, name, kind, hook, positions, length(weights) / 4, created,"
                           " EXISTS(SELECT 1 FROM probe_outputs o WHERE o.probe_id = probes.id) FROM probes ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list probes");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            pl_probe_info *grown = realloc(*probes, sizeof *grown * (size_t)cap);
            if (!grown) break;
            *probes = grown;
        }
        pl_probe_info *p = &(*probes)[(*n)++];
        p->id = sqlite3_column_int64(st, 0);
        copy_text(p->name, sizeof p->name, st, 1);
        copy_text(p->kind, sizeof p->kind, st, 2);
        copy_text(p->hook, sizeof p->hook, st, 3);
        copy_text(p->positions, sizeof p->positions, st, 4);
        p->n_weights = sqlite3_column_int(st, 5);
        p->created = sqlite3_column_double(st, 6);
        p->has_outputs = sqlite3_column_int(st, 7) != 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*probes);
        *probes = NULL;
        *n = 0;
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory listing probes", s->path)
                                : store_sql_fail(s, s->db, "list probes");
    }
    return 0;
}

int pl_store_find_probe(pl_store *s, const char *name, int64_t *id) {
    *id = 0;
    if (s->version < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM probes WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "find probe");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (found) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? found : store_sql_fail(s, s->db, "find probe");
}

int pl_store_get_probe_outputs(pl_store *s, int64_t probe_id, int64_t run_id, int32_t **pos, float **value, int *n) {
    *pos = NULL;
    *value = NULL;
    *n = 0;
    if (s->version < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT pos, value FROM probe_outputs WHERE probe_id = ?1 AND run_id = ?2 ORDER BY pos", -1,
                           &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "probe outputs");
    sqlite3_bind_int64(st, 1, probe_id);
    sqlite3_bind_int64(st, 2, run_id);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            int32_t *p = realloc(*pos, sizeof *p * (size_t)cap);
            if (p) *pos = p;
            float *v = realloc(*value, sizeof *v * (size_t)cap);
            if (v) *value = v;
            if (!p || !v) break;
        }
        (*pos)[*n] = sqlite3_column_int(st, 0);
        (*value)[*n] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : (float)sqlite3_column_double(st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*pos);
        free(*value);
        *pos = NULL;
        *value = NULL;
        *n = 0;
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory reading probe outputs", s->path)
                                : store_sql_fail(s, s->db, "probe outputs");
    }
    return 0;
}

// ---- analyses --------------------------------------------------------------------------------

int pl_store_list_analysis_kinds(pl_store *s, char ***names, char ***kinds, int *n) {
    *names = *kinds = NULL;
    *n = 0;
    if (s->version < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name, kind FROM analyses ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list analyses");
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
        (*names)[*n] = strdup(store_column_text(st, 0));
        (*kinds)[*n] = strdup(store_column_text(st, 1));
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pl_strings_free(*names, *n);
        pl_strings_free(*kinds, *n);
        *names = *kinds = NULL;
        *n = 0;
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory listing analyses", s->path)
                                : store_sql_fail(s, s->db, "list analyses");
    }
    return 0;
}

static char *dup_text(sqlite3_stmt *st, int col) { return strdup(store_column_text(st, col)); }

void pl_stored_probe_free(pl_stored_probe *p) {
    if (!p) return;
    free(p->name), free(p->kind), free(p->hook), free(p->positions), free(p->params_json), free(p->weights);
    memset(p, 0, sizeof *p);
}

int pl_store_get_probe(pl_store *s, int64_t id, pl_stored_probe *out) {
    memset(out, 0, sizeof *out);
    if (s->version < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, name, kind, hook, positions, params, weights, created FROM probes WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "get probe");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "get probe");
    }
    int type = sqlite3_column_type(st, 6), bytes = sqlite3_column_bytes(st, 6);
    if ((type != SQLITE_BLOB && type != SQLITE_NULL) || bytes % (int)sizeof(float) != 0) {
        sqlite3_finalize(st);
        return store_corrupt(s, "probes", id, "weights are %d bytes, not a blob of whole floats", bytes);
    }
    out->id = sqlite3_column_int64(st, 0);
    out->name = dup_text(st, 1), out->kind = dup_text(st, 2), out->hook = dup_text(st, 3);
    out->positions = dup_text(st, 4), out->params_json = dup_text(st, 5);
    out->created = sqlite3_column_double(st, 7);
    out->n_weights = bytes / (int)sizeof(float);
    if (out->n_weights > 0) {
        out->weights = malloc((size_t)bytes);
        if (out->weights) memcpy(out->weights, sqlite3_column_blob(st, 6), (size_t)bytes);
    }
    sqlite3_finalize(st);
    if (!out->name || !out->kind || !out->hook || !out->positions || !out->params_json ||
        (out->n_weights > 0 && !out->weights)) {
        pl_stored_probe_free(out);
        return store_fail(s, "%s: out of memory reading probe %lld", s->path, (long long)id);
    }
    return 1;
}

void pl_stored_example_free(pl_stored_example *e) {
    if (!e) return;
    free(e->ext_id), free(e->task), free(e->prompt), free(e->cot), free(e->answer), free(e->meta_json);
    for (int i = 0; e->options && i < e->n_options; i++) free(e->options[i]);
    free(e->options);
    memset(e, 0, sizeof *e);
}

// Options are stored as a JSON list of strings (pl_store_put_example); an empty list means none.
static int parse_options(pl_store *s, int64_t example_id, const char *text, pl_stored_example *e) {
    if (!text[0]) return 0;
    json_t *a = json_loads(text, 0, NULL);
    int rc = 0;
    if (!json_is_array(a)) {
        rc = store_corrupt(s, "examples", example_id, "options are not a JSON list");
    } else if (json_array_size(a) > 0) {
        int n = (int)json_array_size(a);
        e->options = calloc((size_t)n, sizeof(char *));
        if (!e->options) rc = store_fail(s, "%s: out of memory reading example %lld", s->path, (long long)example_id);
        for (int i = 0; e->options && i < n && !rc; i++) {
            const char *v = json_string_value(json_array_get(a, (size_t)i));
            if (!v) rc = store_corrupt(s, "examples", example_id, "option %d is not a string", i);
            else if (!(e->options[i] = strdup(v)))
                rc = store_fail(s, "%s: out of memory reading example %lld", s->path, (long long)example_id);
            else e->n_options = i + 1;
        }
    }
    json_decref(a);
    return rc;
}

int pl_store_get_run_example(pl_store *s, int64_t run_id, pl_stored_example *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT e.ext_id, e.task, e.prompt, e.cot, e.answer, e.options, e.difficulty, e.meta, e.id"
                           " FROM runs r JOIN examples e ON e.id = r.example_id WHERE r.id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "get run example");
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? store_fail(s, "%s: run %lld has no example", s->path, (long long)run_id)
                                 : store_sql_fail(s, s->db, "get run example");
    }
    out->ext_id = dup_text(st, 0), out->task = dup_text(st, 1), out->prompt = dup_text(st, 2), out->cot = dup_text(st, 3);
    out->answer = dup_text(st, 4), out->difficulty = sqlite3_column_int(st, 6), out->meta_json = dup_text(st, 7);
    rc = parse_options(s, sqlite3_column_int64(st, 8), store_column_text(st, 5), out);
    if (!rc && (!out->ext_id || !out->task || !out->prompt || !out->cot || !out->answer || !out->meta_json))
        rc = store_fail(s, "%s: out of memory reading run %lld's example", s->path, (long long)run_id);
    sqlite3_finalize(st);
    if (rc) pl_stored_example_free(out);
    return rc ? -1 : 0;
}
