// Position rules, the streaming design-matrix builder and export to .npy / .safetensors.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime/base/error.h"
#include "runtime/base/npy.h"
#include "runtime/store/store_internal.h"

static const char *const rule_names[] = {"all",      "prompt",   "cot",         "answer",      "generated",
                                         "last-prompt", "last-cot", "mean-prompt", "mean-cot", "mean-all"};

int pl_pos_rule_parse(const char *name, pl_pos_rule *out) {
    for (int i = 0; name && i < (int)(sizeof rule_names / sizeof rule_names[0]); i++)
        if (strcmp(name, rule_names[i]) == 0) return *out = (pl_pos_rule)i, 0;
    return pl_fail("positions '%s': expected all, prompt, cot, answer, generated, last-prompt, last-cot, mean-prompt,"
                   " mean-cot or mean-all", name ? name : "");
}

const char *pl_pos_rule_name(pl_pos_rule r) {
    return (int)r >= 0 && (int)r < (int)(sizeof rule_names / sizeof rule_names[0]) ? rule_names[r] : "?";
}

static bool rule_is_mean(pl_pos_rule r) { return r == PL_POS_MEAN_PROMPT || r == PL_POS_MEAN_COT || r == PL_POS_MEAN_ALL; }

// Positions of a run selected by a rule (before intersecting with what was recorded).
static int rule_positions(const pl_token_row *t, int n, pl_pos_rule rule, int32_t *out) {
    int k = 0, last = -1;
    for (int p = 0; p < n; p++) {
        pl_segment sg = t[p].segment;
        bool take = false;
        switch (rule) {
        case PL_POS_ALL:
        case PL_POS_MEAN_ALL: take = true; break;
        case PL_POS_PROMPT:
        case PL_POS_MEAN_PROMPT: take = sg == PL_SEG_PROMPT; break;
        case PL_POS_COT:
        case PL_POS_MEAN_COT: take = sg == PL_SEG_COT; break;
        case PL_POS_ANSWER: take = sg == PL_SEG_ANSWER; break;
        case PL_POS_GENERATED: take = sg != PL_SEG_PROMPT; break;
        case PL_POS_LAST_PROMPT: if (sg == PL_SEG_PROMPT) last = p; break;
        case PL_POS_LAST_COT: if (sg == PL_SEG_COT) last = p; break;
        }
        if (take) out[k++] = p;
    }
    if (rule == PL_POS_LAST_PROMPT || rule == PL_POS_LAST_COT) {
        if (last < 0) return 0;
        out[0] = last;
        k = 1;
    }
    return k;
}

struct pl_design {
    pl_store *s;
    char hook[128];
    pl_pos_rule rule;
    int64_t model_id;  // every run is of this model (0: the store has no models)
    int dim;           // that model's row size of the hook
    pl_run_info *runs;
    int n_runs, next_run;
    // rows of the current run not yet handed out
    float *rows;
    int32_t *row_pos;
    int64_t row_run;
    int n_rows, taken;
};

int pl_design_open(pl_design **out, pl_store *s, const char *hook, pl_pos_rule rule, const pl_run_filter *f) {
    *out = NULL;
    pl_design *d = calloc(1, sizeof *d);
    if (!d) return store_fail(s, "%s: out of memory", s->path);
    d->s = s;
    snprintf(d->hook, sizeof d->hook, "%s", hook);
    d->rule = rule;
    pl_run_filter filter = f ? *f : pl_run_filter_complete();
    // One model: rows of two models have different widths and never share a matrix.
    if (pl_store_resolve_model(s, filter.model_id, &filter.model_id) != 0 ||
        pl_store_hook_row_size(s, hook, filter.model_id, &d->dim) != 0 ||
        pl_store_list_runs(s, &filter, &d->runs, &d->n_runs) != 0) {
        pl_design_close(d);
        return -1;
    }
    d->model_id = filter.model_id;
    *out = d;
    return 0;
}

int pl_design_dim(const pl_design *d) { return d->dim; }
int64_t pl_design_model_id(const pl_design *d) { return d->model_id; }
int pl_design_n_runs(const pl_design *d) { return d->n_runs; }

// Read the rows of the next run into d->rows. Returns 0, or -1.
static int load_run(pl_design *d, const pl_run_info *run) {
    pl_store *s = d->s;
    pl_token_row *tokens;
    int n_tok;
    d->n_rows = d->taken = 0;
    d->row_run = run->id;
    if (pl_store_get_tokens(s, run->id, &tokens, &n_tok) != 0) return -1;
    int32_t *want = malloc(sizeof(int32_t) * (size_t)(n_tok > 0 ? n_tok : 1));
    int32_t *ranges = NULL;
    int n_ranges = 0, rc = -1;
    if (!want) goto done;
    int n_want = rule_positions(tokens, n_tok, d->rule, want);
    if (n_want == 0) {  // e.g. no chain of thought in this run: it contributes no row
        rc = 0;
        goto done;
    }
    if (pl_store_recorded_positions(s, run->id, d->hook, &ranges, &n_ranges) != 0) goto done;
    // Keep the positions that were recorded (the last generated token may lack rows if the
    // context ran out); a rule that hits none of them is an error, not an empty result.
    int k = 0;
    for (int i = 0; i < n_want; i++) {
        bool in = false;
        for (int j = 0; j < n_ranges && !in; j++) in = want[i] >= ranges[2 * j] && want[i] < ranges[2 * j + 1];
        if (in) want[k++] = want[i];
    }
    if (k == 0) {
        store_fail(s, "%s: run %lld has no rows of '%s' at positions '%s' (recorded %s); trace with --positions all",
                   s->path, (long long)run->id, d->hook, pl_pos_rule_name(d->rule),
                   n_ranges ? "other positions" : "nothing for this hook");
        goto done;
    }
    float *rows = realloc(d->rows, sizeof(float) * (size_t)k * (size_t)d->dim);
    int32_t *pos = realloc(d->row_pos, sizeof(int32_t) * (size_t)k);
    if (rows) d->rows = rows;
    if (pos) d->row_pos = pos;
    if (!rows || !pos) {
        store_fail(s, "%s: out of memory", s->path);
        goto done;
    }
    if (pl_store_read_acts(s, run->id, d->hook, want, k, d->dim, d->rows) != 0) goto done;
    memcpy(d->row_pos, want, sizeof(int32_t) * (size_t)k);
    d->n_rows = k;
    if (rule_is_mean(d->rule)) {
        for (int i = 1; i < k; i++)
            for (int j = 0; j < d->dim; j++) d->rows[j] += d->rows[(size_t)i * d->dim + j];
        for (int j = 0; j < d->dim; j++) d->rows[j] /= (float)k;
        d->row_pos[0] = -1;
        d->n_rows = 1;
    }
    rc = 0;
done:
    free(tokens);
    free(want);
    free(ranges);
    return rc;
}

// Rows read from the store and not yet handed out, loading the next runs as needed (0 at the
// end, -1 on error). Callers size their buffers by this, never by a guess: the rows of a run
// were read from validated chunks, so buffers stay bounded by the tensor files, whatever width
// a (corrupt) index claims.
static int design_ready(pl_design *d) {
    while (d->taken == d->n_rows) {
        if (d->next_run == d->n_runs) return 0;
        if (load_run(d, &d->runs[d->next_run++]) != 0) return -1;
    }
    return d->n_rows - d->taken;
}

int pl_design_next(pl_design *d, float *X, int64_t *run_ids, int32_t *positions, int max_rows) {
    int filled = 0;
    while (filled < max_rows) {
        int take = design_ready(d);
        if (take < 0) return -1;
        if (take == 0) break;
        if (take > max_rows - filled) take = max_rows - filled;
        if (X) memcpy(X + (size_t)filled * d->dim, d->rows + (size_t)d->taken * d->dim, sizeof(float) * (size_t)take * d->dim);
        for (int i = 0; i < take; i++) {
            if (run_ids) run_ids[filled + i] = d->row_run;
            if (positions) positions[filled + i] = d->row_pos[d->taken + i];
        }
        d->taken += take;
        filled += take;
    }
    return filled;
}

void pl_design_close(pl_design *d) {
    if (!d) return;
    free(d->runs);
    free(d->rows);
    free(d->row_pos);
    free(d);
}

int pl_store_design_matrix(pl_store *s, const char *hook, pl_pos_rule rule, const pl_run_filter *f, float **X,
                           int64_t **run_ids, int32_t **positions, int *n_rows, int *dim) {
    *X = NULL;
    *run_ids = NULL;
    *positions = NULL;
    *n_rows = 0;
    pl_design *d;
    if (pl_design_open(&d, s, hook, rule, f) != 0) return -1;
    *dim = d->dim;
    int cap = 0;
    for (;;) {
        int ready = design_ready(d);
        if (ready < 0) goto fail;
        if (ready == 0) break;
        if (ready > INT_MAX - *n_rows) {
            store_fail(s, "%s: design matrix of more than %d rows", s->path, INT_MAX);
            goto fail;
        }
        if (*n_rows + ready > cap) {
            cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
            if (cap < *n_rows + ready) cap = *n_rows + ready;
            float *x = realloc(*X, sizeof(float) * (size_t)cap * (size_t)d->dim);
            int64_t *r = realloc(*run_ids, sizeof(int64_t) * (size_t)cap);
            int32_t *p = realloc(*positions, sizeof(int32_t) * (size_t)cap);
            if (x) *X = x;
            if (r) *run_ids = r;
            if (p) *positions = p;
            if (!x || !r || !p) {
                store_fail(s, "%s: out of memory building the design matrix", s->path);
                goto fail;
            }
        }
        int got = pl_design_next(d, *X + (size_t)*n_rows * d->dim, *run_ids + *n_rows, *positions + *n_rows, ready);
        if (got < 0) goto fail;
        *n_rows += got;
    }
    pl_design_close(d);
    return 0;
fail:
    pl_design_close(d);
    free(*X), free(*run_ids), free(*positions);
    *X = NULL, *run_ids = NULL, *positions = NULL, *n_rows = 0;
    return -1;
}

// ---- export --------------------------------------------------------------------------------

// An .npy v1.0 header padded to 128 bytes, so it can be rewritten in place once n is known.
static int npy_header(FILE *f, const char *descr, int64_t n, int64_t cols) {
    char head[128];
    int64_t shape[2] = {n, cols};
    int len = pl_npy_header(head, sizeof head, descr, cols > 0 ? 2 : 1, shape, sizeof head);
    return len == (int)sizeof head && fwrite(head, 1, sizeof head, f) == sizeof head ? 0 : -1;
}

static char *stem_of(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    char *stem = malloc(n + 1);
    memcpy(stem, path, n + 1);
    if (n > e && strcmp(path + n - e, ext) == 0) stem[n - e] = '\0';
    return stem;
}

typedef struct {
    int type;           // 0 = int, 1 = float, 2 = text (class ids)
    char **classes;     // sorted distinct text values
    int n_classes;
} label_kind;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Labels of the rows' runs: values[i] is the text of run i's label (NULL if absent).
static void classify_labels(char **values, int n, label_kind *k) {
    memset(k, 0, sizeof *k);
    for (int i = 0; i < n; i++) {
        if (!values[i]) continue;
        char *end;
        double v = strtod(values[i], &end);
        if (*values[i] == '\0' || *end != '\0') {
            k->type = 2;
            break;
        }
        if (v != floor(v) || fabs(v) > 2e9) k->type = 1;
    }
    if (k->type != 2) return;
    k->classes = malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        if (values[i]) k->classes[k->n_classes++] = values[i];
    qsort(k->classes, (size_t)k->n_classes, sizeof(char *), cmp_str);
    int u = 0;
    for (int i = 0; i < k->n_classes; i++)
        if (u == 0 || strcmp(k->classes[u - 1], k->classes[i]) != 0) k->classes[u++] = k->classes[i];
    k->n_classes = u;
}

static float label_value(const char *v, const label_kind *k, bool *is_int, int32_t *iv) {
    *is_int = k->type != 1;
    if (!v) return *iv = -1, NAN;
    if (k->type == 2) {
        char *const *hit = bsearch(&v, k->classes, (size_t)k->n_classes, sizeof(char *), cmp_str);
        *iv = hit ? (int32_t)(hit - k->classes) : -1;
        return (float)*iv;
    }
    double x = strtod(v, NULL);
    // Integer labels are within +-2e9 (classify_labels); any other value makes the column float.
    *iv = k->type == 0 && fabs(x) <= 2e9 ? (int32_t)x : -1;
    return (float)x;
}

int pl_store_export(pl_store *s, const char *path, const char *hook, pl_pos_rule rule, const pl_run_filter *f,
                    const char *label_key, int *n_rows_out, int *dim_out) {
    bool st_format = strlen(path) > 12 && strcmp(path + strlen(path) - 12, ".safetensors") == 0;
    bool npy_format = strlen(path) > 4 && strcmp(path + strlen(path) - 4, ".npy") == 0;
    if (!st_format && !npy_format) return store_fail(s, "%s: output must end in .npy or .safetensors", path);
    if (!label_key) label_key = "correct";
    if (pl_store_require_label(s, label_key) != 0) return -1;
    pl_design *d = NULL;
    if (pl_design_open(&d, s, hook, rule, f) != 0) return -1;
    int dim = d->dim, n = 0, cap = 0, rc = -1;
    char *stem = stem_of(path, st_format ? ".safetensors" : ".npy");
    char side[2048];
    FILE *xf = NULL;
    float *X = NULL, *batch = NULL;
    int64_t *run_ids = NULL;
    int32_t *pos = NULL;
    char **values = NULL;
    label_kind lk = {0};
    enum { BATCH = 512 };
    int batch_rows = 0;  // grown to what the store has ready (design_ready), at most BATCH
    if (npy_format) {  // stream X to disk; the header is rewritten with the final row count
        xf = fopen(path, "wb");
        if (!xf) {
            store_fail(s, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        if (npy_header(xf, "<f4", 0, dim) != 0) goto write_fail;
    }
    for (;;) {
        int ready = design_ready(d);
        if (ready < 0) goto done;
        if (ready == 0) break;
        if (ready > BATCH) ready = BATCH;
        if (ready > batch_rows) {
            float *b = realloc(batch, sizeof(float) * (size_t)ready * (size_t)dim);
            if (!b) goto oom;
            batch = b;
            batch_rows = ready;
        }
        if (ready > INT_MAX - n) {
            store_fail(s, "%s: design matrix of more than %d rows", s->path, INT_MAX);
            goto done;
        }
        if (n + ready > cap) {
            cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
            if (cap < n + ready) cap = n + ready;
            int64_t *r = realloc(run_ids, sizeof(int64_t) * (size_t)cap);
            int32_t *p = realloc(pos, sizeof(int32_t) * (size_t)cap);
            if (r) run_ids = r;
            if (p) pos = p;
            if (!r || !p) goto oom;
            if (st_format) {
                float *x = realloc(X, sizeof(float) * (size_t)cap * (size_t)dim);
                if (!x) goto oom;
                X = x;
            }
        }
        int got = pl_design_next(d, batch, run_ids + n, pos + n, ready);
        if (got < 0) goto done;
        if (xf && fwrite(batch, sizeof(float) * (size_t)dim, (size_t)got, xf) != (size_t)got) goto write_fail;
        if (X) memcpy(X + (size_t)n * dim, batch, sizeof(float) * (size_t)got * dim);
        n += got;
    }
    if (n == 0) {
        store_fail(s, "%s: no rows: no complete run has positions '%s'", s->path, pl_pos_rule_name(rule));
        goto done;
    }
    // Labels: one lookup per distinct run (rows of a run are consecutive).
    values = calloc((size_t)n, sizeof(char *));
    if (!values) goto oom;
    for (int i = 0; i < n; i++) {
        if (i > 0 && run_ids[i] == run_ids[i - 1]) {
            values[i] = values[i - 1] ? strdup(values[i - 1]) : NULL;
            continue;
        }
        char buf[512];
        int found = pl_store_get_label(s, run_ids[i], label_key, buf, sizeof buf);
        if (found < 0) goto done;
        values[i] = found ? strdup(buf) : NULL;
    }
    classify_labels(values, n, &lk);
    float *labels_f = malloc(sizeof(float) * (size_t)n);
    int32_t *labels_i = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *runs2 = malloc(sizeof(int32_t) * 2 * (size_t)n);
    if (!labels_f || !labels_i || !runs2) {
        free(labels_f), free(labels_i), free(runs2);
        goto oom;
    }
    bool is_int = true;
    for (int i = 0; i < n; i++) {
        labels_f[i] = label_value(values[i], &lk, &is_int, &labels_i[i]);
        runs2[2 * i] = (int32_t)run_ids[i];
        runs2[2 * i + 1] = pos[i];
    }
    const char *label_descr = is_int ? "<i4" : "<f4";
    const void *label_data = is_int ? (const void *)labels_i : (const void *)labels_f;
    int write_rc = 0;
    if (npy_format) {
        if (fseek(xf, 0, SEEK_SET) != 0 || npy_header(xf, "<f4", n, dim) != 0 || fclose(xf) != 0) write_rc = -1;
        xf = NULL;
        const char *names[2] = {"labels", "runs"};
        for (int w = 0; w < 2 && write_rc == 0; w++) {
            snprintf(side, sizeof side, "%s.%s.npy", stem, names[w]);
            FILE *o = fopen(side, "wb");
            if (!o) {
                write_rc = -1;
                break;
            }
            if (w == 0) write_rc |= npy_header(o, label_descr, n, 0) | (fwrite(label_data, 4, (size_t)n, o) != (size_t)n);
            else write_rc |= npy_header(o, "<i4", n, 2) | (fwrite(runs2, 4, 2 * (size_t)n, o) != 2 * (size_t)n);
            if (fclose(o) != 0) write_rc = -1;
        }
    } else {
        size_t x_bytes = sizeof(float) * (size_t)n * dim, l_bytes = 4 * (size_t)n, r_bytes = 8 * (size_t)n;
        char header[1024];
        int hl = snprintf(header, sizeof header,
                          "{\"__metadata__\":{\"hook\":\"%s\",\"positions\":\"%s\",\"label\":\"%s\"},"
                          "\"X\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
                          "\"labels\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
                          "\"runs\":{\"dtype\":\"I32\",\"shape\":[%d,2],\"data_offsets\":[%zu,%zu]}}",
                          hook, pl_pos_rule_name(rule), label_key, n, dim, x_bytes, is_int ? "I32" : "F32", n, x_bytes,
                          x_bytes + l_bytes, n, x_bytes + l_bytes, x_bytes + l_bytes + r_bytes);
        while (hl % 8) header[hl++] = ' ';  // data starts 8-byte aligned
        uint64_t hlen = (uint64_t)hl;
        FILE *o = fopen(path, "wb");
        if (!o) write_rc = -1;
        else {
            write_rc |= fwrite(&hlen, 8, 1, o) != 1;
            write_rc |= fwrite(header, 1, (size_t)hl, o) != (size_t)hl;
            write_rc |= fwrite(X, 1, x_bytes, o) != x_bytes;
            write_rc |= fwrite(label_data, 1, l_bytes, o) != l_bytes;
            write_rc |= fwrite(runs2, 1, r_bytes, o) != r_bytes;
            if (fclose(o) != 0) write_rc = -1;
        }
    }
    free(labels_f), free(labels_i), free(runs2);
    if (write_rc != 0) goto write_fail;
    // JSON sidecar: what the arrays are.
    json_t *meta = json_object();
    json_object_set_new(meta, "store", json_string(s->path));
    json_object_set_new(meta, "hook", json_string(hook));
    json_object_set_new(meta, "positions", json_string(pl_pos_rule_name(rule)));
    json_object_set_new(meta, "n_rows", json_integer(n));
    json_object_set_new(meta, "dim", json_integer(dim));
    json_object_set_new(meta, "n_runs", json_integer(d->n_runs));
    json_object_set_new(meta, "model_id", json_integer(d->model_id));
    json_object_set_new(meta, "label", json_string(label_key));
    json_object_set_new(meta, "label_type", json_string(lk.type == 2 ? "class" : lk.type == 1 ? "float" : "int"));
    json_t *classes = json_array();
    for (int i = 0; i < lk.n_classes; i++) json_array_append_new(classes, json_string(lk.classes[i]));
    json_object_set_new(meta, "label_classes", classes);
    json_object_set_new(meta, "missing_label", json_string(is_int ? "-1" : "nan"));
    json_object_set_new(meta, "format", json_string(st_format ? "safetensors" : "npy"));
    json_object_set_new(meta, "runs_columns", json_pack("[ss]", "run_id", "position (-1 for mean rules)"));
    snprintf(side, sizeof side, "%s.json", stem);
    int jrc = json_dump_file(meta, side, JSON_INDENT(2));
    json_decref(meta);
    if (jrc != 0) goto write_fail;
    *n_rows_out = n;
    *dim_out = dim;
    rc = 0;
    goto done;
oom:
    store_fail(s, "%s: out of memory exporting", path);
    goto done;
write_fail:
    store_fail(s, "%s: write failed: %s", path, strerror(errno));
done:
    if (xf) fclose(xf);
    if (values)
        for (int i = 0; i < n; i++) free(values[i]);
    free(values);
    free(lk.classes);
    free(X), free(batch), free(run_ids), free(pos), free(stem);
    pl_design_close(d);
    return rc;
}
