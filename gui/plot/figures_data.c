// Read-only store access for figures and the viewer, entirely through the store's public API
// (runtime/store/store.h): only runtime/store/ knows the schema, and gui never writes it.
#include "gui/plot/figures_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/store/store.h"

struct pl_vstore {
    pl_store *store;
    char path[1024];
};

int pl_vstore_open(pl_vstore **out, const char *path) {
    *out = NULL;
    pl_vstore *v = calloc(1, sizeof *v);
    if (!v) return pl_fail("%s: out of memory", path);
    snprintf(v->path, sizeof v->path, "%s", path);
    if (pl_store_open(&v->store, path, PL_STORE_READ) != 0) {
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}

void pl_vstore_close(pl_vstore *v) {
    if (!v) return;
    pl_store_close(v->store);
    free(v);
}

const char *pl_vstore_path(const pl_vstore *v) { return v->path; }

int pl_vstore_data_version(pl_vstore *v, int64_t *out) { return pl_store_data_version(v->store, out); }
int pl_vstore_max_run_id(pl_vstore *v, int64_t *out) { return pl_store_max_run_id(v->store, out); }

pl_store *pl_vstore_store(pl_vstore *v) { return v->store; }

// ---- tokens and scores ----

// Score providers: each lists the sources it offers in a store and fills one source's scores.
typedef struct {
    const char *prefix;  // a source named exactly `prefix`, or "prefix:..." belongs to this provider
    int (*list)(pl_vstore *v, pl_vscore_source **out, int *n, int *cap);
    int (*fill)(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens);
} score_provider;

static int add_source(pl_vscore_source **out, int *n, int *cap, const char *name, const char *title, const char *unit,
                      pl_score_scale scale) {
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
    snprintf(s->unit, sizeof s->unit, "%s", unit);
    s->scale = scale;
    s->diverging = scale != PL_SCORE_SEQUENTIAL;
    return 0;
}

static int token_list(pl_vstore *v, pl_vscore_source **out, int *n, int *cap) {
    return add_source(out, n, cap, "logprob", "log-probability", "log-probability (nats)", PL_SCORE_SEQUENTIAL) ||
                   add_source(out, n, cap, "entropy", "entropy (nats)", "entropy (nats)", PL_SCORE_SEQUENTIAL)
               ? -1
               : 0;
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
    pl_probe_info *probes;
    int n_probes;
    if (pl_store_list_probes(v->store, &probes, &n_probes) != 0) return -1;
    int rc = 0;
    for (int k = 0; k < n_probes && rc == 0; k++) {
        char name[80], title[96];
        snprintf(name, sizeof name, "probe:%s", probes[k].name);
        snprintf(title, sizeof title, "probe %.40s (%.40s)", probes[k].name, probes[k].hook);
        // Only probes with stored outputs can colour tokens (`probe apply` writes them); they come
        // first, so the viewer opens on the most recently meaningful score.
        int dup = !probes[k].has_outputs;
        for (int i = 0; i < *n; i++) dup |= strcmp((*out)[i].name, name) == 0;
        // Classifier probes store a probability (of the run's label class, or class 1); ridge
        // probes an unbounded prediction.
        int ridge = strcmp(probes[k].kind, "ridge") == 0;
        if (!dup)
            rc = add_source(out, n, cap, name, title, ridge ? "probe output" : "probe probability",
                            ridge ? PL_SCORE_SIGNED : PL_SCORE_PROBABILITY);
    }
    free(probes);
    return rc;
}

static int probe_fill(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens) {
    for (int i = 0; i < n_tokens; i++) out[i] = NAN;
    // The newest probe of that name wins when a probe was refitted under the same name.
    int64_t probe_id;
    const char *probe = name + strlen("probe:");
    int found = pl_store_find_probe(v->store, probe, &probe_id);
    if (found < 0) return -1;
    if (found == 0) return pl_fail("%s: no probe named '%s' (probelab probe list %s lists them)", v->path, probe, v->path);
    int32_t *pos;
    float *value;
    int n;
    if (pl_store_get_probe_outputs(v->store, probe_id, run_id, &pos, &value, &n) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (pos[i] >= 0 && pos[i] < n_tokens) out[pos[i]] = value[i];  // run-level outputs (pos -1) have no token
    free(pos);
    free(value);
    return 0;
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
    return pl_store_attention_shape(v->store, run_id, n_layers, n_heads);
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
    return pl_store_list_analysis_kinds(v->store, names, kinds, n);
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
    out->params_json = strdup(a.params_json && a.params_json[0] ? a.params_json : "{}");
    int n = a.n_rows;
    out->series = calloc(n > 0 ? (size_t)n : 1, sizeof *out->series);
    out->x = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->y = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->lo = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->hi = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    out->matrix_names = calloc(a.n_matrices > 0 ? (size_t)a.n_matrices : 1, sizeof(char *));
    if (!out->name || !out->kind || !out->params_json || !out->series || !out->x || !out->y || !out->lo || !out->hi || !out->matrix_names) {
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
    free(a->params_json);
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
