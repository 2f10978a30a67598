// Validation of what a store's index says: the per-chunk checks every reader makes before it
// allocates or reads (a store is a file users copy, share and corrupt), and pl_store_check, which
// runs them and the whole-store invariants over every row.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/base/error.h"
#include "runtime/hooks.h"
#include "runtime/store/store_internal.h"

int store_corrupt(pl_store *s, const char *table, int64_t row, const char *fmt, ...) {
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    store_fail_code(s, PL_ERR_CORRUPT, "%s: store corrupt: %s row %lld: %s", s->path, table, (long long)row, detail);
    return -1;  // callers test for -1 like every other store failure; the code is PL_ERR_CORRUPT
}

const char *store_column_text(sqlite3_stmt *st, int col) {
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

void store_chunk_from_row(sqlite3_stmt *st, int col, bool attention, store_chunk *c) {
    memset(c, 0, sizeof *c);
    c->attention = attention;
    c->id = sqlite3_column_int64(st, col + 0);
    c->run_id = sqlite3_column_int64(st, col + 1);
    c->layer = sqlite3_column_int64(st, col + 2);
    c->pos0 = sqlite3_column_int64(st, col + 3);
    c->n_pos = sqlite3_column_int64(st, col + 4);
    c->row_size = sqlite3_column_int64(st, col + 5);
    snprintf(c->dtype_name, sizeof c->dtype_name, "%s", store_column_text(st, col + 6));
    c->dtype_ok = strcmp(c->dtype_name, "f32") == 0 || strcmp(c->dtype_name, "f16") == 0 || strcmp(c->dtype_name, "bf16") == 0;
    if (c->dtype_ok) pl_dtype_parse(c->dtype_name, &c->dtype);
    c->file_id = sqlite3_column_int64(st, col + 7);
    c->offset = sqlite3_column_int64(st, col + 8);
    c->nbytes = sqlite3_column_int64(st, col + 9);
}

int store_check_chunk(pl_store *s, const store_chunk *c) {
    const char *table = c->attention ? "attention" : "tensors";
    const char *first = c->attention ? "q0" : "pos0", *count = c->attention ? "n_q" : "n_pos";
    if (!c->dtype_ok) return store_corrupt(s, table, c->id, "dtype '%s' is not f32, f16 or bf16", c->dtype_name);
    if (c->layer < (c->attention ? 0 : -1) || c->layer >= PL_STORE_MAX_LAYERS)
        return store_corrupt(s, table, c->id, "layer %lld out of range %d..%d", (long long)c->layer, c->attention ? 0 : -1,
                             PL_STORE_MAX_LAYERS - 1);
    if (c->pos0 < 0 || c->pos0 >= PL_STORE_MAX_POSITIONS)
        return store_corrupt(s, table, c->id, "%s %lld out of range 0..%d", first, (long long)c->pos0,
                             PL_STORE_MAX_POSITIONS - 1);
    if (c->n_pos < 1 || c->n_pos > PL_STORE_MAX_POSITIONS - c->pos0)
        return store_corrupt(s, table, c->id, "%s %lld out of range 1..%lld", count, (long long)c->n_pos,
                             (long long)(PL_STORE_MAX_POSITIONS - c->pos0));
    int64_t max_width = c->attention ? PL_STORE_MAX_HEADS : PL_STORE_MAX_ROW_SIZE;
    if (c->row_size < 1 || c->row_size > max_width)
        return store_corrupt(s, table, c->id, "%s %lld out of range 1..%lld", c->attention ? "n_heads" : "row_size",
                             (long long)c->row_size, (long long)max_width);
    // Bytes the chunk must hold: position-major [n_pos × row_size], attention [n_heads][causal
    // triangle of rows q0..q0+n_q-1]. The bounds above keep both products below 2^63.
    int64_t es = (int64_t)pl_dtype_size(c->dtype);
    int64_t elements = c->attention ? (store_tri(c->pos0 + c->n_pos) - store_tri(c->pos0)) * c->row_size : c->n_pos * c->row_size;
    if (c->nbytes != elements * es)
        return store_corrupt(s, table, c->id, "nbytes %lld, but %s %lld × %s %lld of %s need %lld", (long long)c->nbytes, count,
                             (long long)c->n_pos, c->attention ? "n_heads" : "row_size", (long long)c->row_size, c->dtype_name,
                             (long long)(elements * es));
    if (c->offset < 0) return store_corrupt(s, table, c->id, "offset %lld is negative", (long long)c->offset);
    char why[1024];
    int fd = store_tensor_fd(s, c->file_id);
    if (fd < 0) {
        const char *msg = s->err;
        size_t plen = strlen(s->path);
        if (strncmp(msg, s->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
        if (strncmp(msg, "store corrupt: ", 15) == 0) msg += 15;
        snprintf(why, sizeof why, "%s", msg);
        return store_corrupt(s, table, c->id, "file_id %lld: %s", (long long)c->file_id, why);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) return store_fail(s, "%s: cannot stat tensor file %lld", s->path, (long long)c->file_id);
    if (c->offset > (int64_t)st.st_size - c->nbytes)
        return store_corrupt(s, table, c->id, "offset %lld + nbytes %lld is past the end of its tensor file (%lld bytes)",
                             (long long)c->offset, (long long)c->nbytes, (long long)st.st_size);
    return 0;
}

// ---- the whole store -----------------------------------------------------------------------

typedef struct {
    pl_store *s;
    pl_store_check_report *r;
    int max_listed;
    int64_t bad_files[32];  // tensor files already reported: their chunks are not reported again
    int n_bad_files;
} checker;

static bool bad_file(const checker *k, int64_t id) {
    for (int i = 0; i < k->n_bad_files; i++)
        if (k->bad_files[i] == id) return true;
    return false;
}

// Record one finding: the message the failing check left on the handle.
static void finding(checker *k) {
    pl_store_check_report *r = k->r;
    r->n_findings++;
    if (r->n_listed >= k->max_listed) return;
    char **grown = realloc(r->findings, sizeof(char *) * (size_t)(r->n_listed + 1));
    if (!grown) return;
    r->findings = grown;
    const char *msg = k->s->err;
    size_t plen = strlen(k->s->path);
    if (strncmp(msg, k->s->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;  // the path is said once
    r->findings[r->n_listed] = strdup(msg);
    if (r->findings[r->n_listed]) r->n_listed++;
}

static void corrupt(checker *k, const char *table, int64_t row, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void corrupt(checker *k, const char *table, int64_t row, const char *fmt, ...) {
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    store_corrupt(k->s, table, row, "%s", detail);
    finding(k);
}

// Prepare a statement; a failure (a damaged schema) is a finding, not an abort of the check.
static sqlite3_stmt *prepare(checker *k, const char *sql, const char *what) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(k->s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_sql_fail(k->s, k->s->db, what);
        finding(k);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static void finish(checker *k, sqlite3_stmt *st, int rc, const char *what) {
    if (rc != SQLITE_DONE) {
        store_sql_fail(k->s, k->s->db, what);
        finding(k);
    }
    sqlite3_finalize(st);
}

static void check_pragmas(checker *k) {
    sqlite3_stmt *st = prepare(k, "PRAGMA integrity_check", "integrity_check");
    int rc;
    if (st) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *msg = store_column_text(st, 0);
            if (strcmp(msg, "ok") == 0) continue;
            char line[512];
            snprintf(line, sizeof line, "%s", msg);
            for (char *c = line; *c; c++)
                if (*c == '\n') *c = ' ';  // one finding, one line
            store_fail(k->s, "%s: integrity_check: %s", k->s->path, line);
            finding(k);
        }
        finish(k, st, rc, "integrity_check");
    }
    st = prepare(k, "PRAGMA foreign_key_check", "foreign_key_check");
    if (st) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            corrupt(k, store_column_text(st, 0), sqlite3_column_int64(st, 1), "references a missing %s row",
                    store_column_text(st, 2));
        finish(k, st, rc, "foreign_key_check");
    }
}

static void check_runs(checker *k) {
    sqlite3_stmt *st = prepare(k,
                               "SELECT r.id, r.status, r.n_prompt, r.n_tokens, typeof(r.n_tokens), count(t.pos), min(t.pos),"
                               " max(t.pos) FROM runs r LEFT JOIN tokens t ON t.run_id = r.id GROUP BY r.id ORDER BY r.id",
                               "check runs");
    if (!st) return;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        k->r->n_runs++;
        int64_t id = sqlite3_column_int64(st, 0), n_prompt = sqlite3_column_int64(st, 2), n_tokens = sqlite3_column_int64(st, 3);
        int64_t n_rows = sqlite3_column_int64(st, 5), lo = sqlite3_column_int64(st, 6), hi = sqlite3_column_int64(st, 7);
        const char *status = store_column_text(st, 1);
        bool complete = strcmp(status, "complete") == 0;
        k->r->n_tokens += n_rows;
        if (!complete && strcmp(status, "running") && strcmp(status, "aborted") && strcmp(status, "failed"))
            corrupt(k, "runs", id, "status '%s' is not running, complete, aborted or failed", status);
        else if (n_prompt < 0 || n_prompt > PL_STORE_MAX_POSITIONS)
            corrupt(k, "runs", id, "n_prompt %lld out of range 0..%d", (long long)n_prompt, PL_STORE_MAX_POSITIONS);
        else if (n_tokens < 0 || n_tokens > PL_STORE_MAX_POSITIONS)
            corrupt(k, "runs", id, "n_tokens %lld out of range 0..%d", (long long)n_tokens, PL_STORE_MAX_POSITIONS);
        else if (complete && n_prompt > n_tokens)
            corrupt(k, "runs", id, "n_prompt %lld is more than n_tokens %lld", (long long)n_prompt, (long long)n_tokens);
        else if ((complete || n_rows > 0) && n_rows != n_tokens)
            corrupt(k, "runs", id, "n_tokens %lld, but the run has %lld token rows", (long long)n_tokens, (long long)n_rows);
        else if (n_rows > 0 && (lo != 0 || hi != n_rows - 1))
            corrupt(k, "runs", id, "token positions %lld..%lld are not 0..%lld", (long long)lo, (long long)hi,
                    (long long)(n_rows - 1));
    }
    finish(k, st, rc, "check runs");
    st = prepare(k,
                 "SELECT run_id, pos, token_id, segment FROM tokens WHERE typeof(pos) != 'integer' OR typeof(token_id) != 'integer'"
                 " OR token_id < 0 OR segment IS NULL OR segment NOT IN ('prompt', 'cot', 'answer')",
                 "check tokens");
    if (!st) return;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_fail(k->s, "%s: store corrupt: tokens run %lld pos %s: token_id %s, segment '%s'", k->s->path,
                   (long long)sqlite3_column_int64(st, 0), store_column_text(st, 1), store_column_text(st, 2),
                   store_column_text(st, 3));
        finding(k);
    }
    finish(k, st, rc, "check tokens");
}

static void check_files(checker *k) {
    sqlite3_stmt *st = prepare(k, "SELECT id FROM tensor_files ORDER BY id", "check tensor files");
    if (!st) return;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        k->r->n_files++;
        int64_t id = sqlite3_column_int64(st, 0);
        if (store_tensor_fd(k->s, id) >= 0) continue;
        finding(k);
        if (k->n_bad_files < (int)(sizeof k->bad_files / sizeof k->bad_files[0])) k->bad_files[k->n_bad_files++] = id;
    }
    finish(k, st, rc, "check tensor files");
}

// Residual-stream hooks hold d_model floats per position.
static bool resid_width(const char *hook) {
    pl_hook_kind kind;
    int layer;
    if (pl_hook_parse(hook, &kind, &layer) != 0) return false;
    switch (kind) {
    case PL_HOOK_EMBED:
    case PL_HOOK_POS_EMBED:
    case PL_HOOK_RESID_PRE:
    case PL_HOOK_LN1_OUT:
    case PL_HOOK_ATTN_OUT:
    case PL_HOOK_RESID_MID:
    case PL_HOOK_LN2_OUT:
    case PL_HOOK_MLP_OUT:
    case PL_HOOK_RESID_POST:
    case PL_HOOK_LN_FINAL: return true;
    default: return false;
    }
}

// Every chunk of a table on its own, then how chunks of one (run, hook) or (run, layer) fit
// together and into the run: no overlap, inside the run's tokens, one width per hook and model
// (d_model for residual-stream hooks, the model's n_heads for attention, else the usual width).
static void check_chunks(checker *k, bool attention) {
    const char *table = attention ? "attention" : "tensors", *group = attention ? "layer" : "hook";
    const char *width = attention ? "n_heads" : "row_size", *first = attention ? "q0" : "pos0";
    char sql[1600];
    snprintf(sql, sizeof sql,
             "WITH cfg AS (SELECT id, CASE WHEN json_valid(config) THEN coalesce(json_extract(config, '$.%s'), 0) ELSE 0 END"
             "   AS width FROM models),"
             " counts AS (SELECT t.%s AS g, r.model_id AS model, t.%s AS width, count(*) AS n FROM %s t"
             "   LEFT JOIN runs r ON r.id = t.run_id GROUP BY 1, 2, 3),"
             " usual AS (SELECT g, model, width, max(n) FROM counts GROUP BY g, model)"
             " SELECT t.%s, t.id, t.run_id, t.layer, t.%s, t.%s, t.%s, t.dtype, t.file_id, t.offset, t.nbytes,"
             "  r.status, r.n_tokens, coalesce(cfg.width, 0), u.width"
             " FROM %s t LEFT JOIN runs r ON r.id = t.run_id LEFT JOIN cfg ON cfg.id = r.model_id"
             " LEFT JOIN usual u ON u.g IS t.%s AND u.model IS r.model_id ORDER BY t.run_id, t.%s, t.%s",
             attention ? "n_heads" : "d_model", group, width, table, group, first, attention ? "n_q" : "n_pos", width, table,
             group, group, first);
    sqlite3_stmt *st = prepare(k, sql, attention ? "check attention" : "check tensors");
    if (!st) return;
    int rc;
    int64_t prev_run = -1, prev_end = 0;
    char prev_group[160] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_chunk c;
        store_chunk_from_row(st, 1, attention, &c);
        const char *g = store_column_text(st, 0);
        const char *status = store_column_text(st, 11);
        int64_t n_tokens = sqlite3_column_int64(st, 12), config_width = sqlite3_column_int64(st, 13);
        int64_t usual_width = sqlite3_column_int64(st, 14);
        if (attention) k->r->n_attention_rows++;
        else k->r->n_tensor_rows++;
        bool same_group = c.run_id == prev_run && strcmp(g, prev_group) == 0;
        int64_t end = -1;  // -1: this chunk is unusable, so are comparisons with it
        if (!attention && resid_width(g) && config_width > 0 && c.row_size != config_width) {
            corrupt(k, table, c.id, "row_size %lld for hook with d_model %lld", (long long)c.row_size, (long long)config_width);
        } else if (store_check_chunk(k->s, &c) != 0) {
            if (!bad_file(k, c.file_id)) finding(k);
        } else {
            end = c.pos0 + c.n_pos;  // bounded by the chunk check
            bool after_good = same_group && prev_end >= 0;
            if (attention && config_width > 0 && c.row_size != config_width)
                corrupt(k, table, c.id, "n_heads %lld for a model with %lld heads", (long long)c.row_size, (long long)config_width);
            else if (c.row_size != usual_width)
                corrupt(k, table, c.id, "%s %lld, but the other rows of %s%s%s have %lld", attention ? "n_heads" : "row_size",
                        (long long)c.row_size, attention ? "layer " : "hook '", g, attention ? "" : "'", (long long)usual_width);
            else if (strcmp(status, "complete") == 0 && end > n_tokens)
                corrupt(k, table, c.id, "positions %lld..%lld, but run %lld has %lld tokens", (long long)c.pos0,
                        (long long)(end - 1), (long long)c.run_id, (long long)n_tokens);
            else if (after_good && c.pos0 < prev_end)
                corrupt(k, table, c.id, "positions from %lld overlap the previous chunk (to %lld)", (long long)c.pos0,
                        (long long)(prev_end - 1));
            else if (attention && after_good && c.pos0 != prev_end)
                corrupt(k, table, c.id, "q0 %lld leaves a gap after the previous chunk (to %lld)", (long long)c.pos0,
                        (long long)(prev_end - 1));
            else if (attention && !same_group && c.pos0 != 0)
                corrupt(k, table, c.id, "the first chunk of run %lld layer %lld starts at q0 %lld, not 0",
                        (long long)c.run_id, (long long)c.layer, (long long)c.pos0);
        }
        prev_run = c.run_id;
        prev_end = end;
        snprintf(prev_group, sizeof prev_group, "%s", g);
    }
    finish(k, st, rc, attention ? "check attention" : "check tensors");
}

static void check_results(checker *k) {
    if (k->s->version < 2) return;
    sqlite3_stmt *st = prepare(k, "SELECT id, length(weights) FROM probes WHERE typeof(weights) NOT IN ('blob', 'null')"
                                  " OR length(weights) % 4 != 0", "check probes");
    int rc;
    if (st) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            corrupt(k, "probes", sqlite3_column_int64(st, 0), "weights of %lld bytes are not float32 values",
                    (long long)sqlite3_column_int64(st, 1));
        finish(k, st, rc, "check probes");
    }
    st = prepare(k, "SELECT rowid, n_rows, n_cols, length(data), name FROM analysis_matrices ORDER BY rowid", "check matrices");
    if (!st) return;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), n_rows = sqlite3_column_int64(st, 1), n_cols = sqlite3_column_int64(st, 2);
        int64_t bytes = sqlite3_column_int64(st, 3);
        if (n_rows < 0 || n_cols < 0 || n_rows > (1 << 28) || n_cols > (1 << 28) || n_rows * n_cols > (1 << 28))
            corrupt(k, "analysis_matrices", id, "size %lld x %lld out of range", (long long)n_rows, (long long)n_cols);
        else if (bytes != 4 * n_rows * n_cols)
            corrupt(k, "analysis_matrices", id, "%lld bytes of data for %lld x %lld floats", (long long)bytes,
                    (long long)n_rows, (long long)n_cols);
    }
    finish(k, st, rc, "check matrices");
}

int pl_store_check(pl_store *s, int max_listed, pl_store_check_report *out) {
    memset(out, 0, sizeof *out);
    checker k = {.s = s, .r = out, .max_listed = max_listed};
    check_pragmas(&k);
    check_runs(&k);
    check_files(&k);
    check_chunks(&k, false);
    check_chunks(&k, true);
    check_results(&k);
    s->err[0] = '\0';
    return 0;
}

void pl_store_check_free(pl_store_check_report *r) {
    if (!r) return;
    pl_strings_free(r->findings, r->n_listed);
    memset(r, 0, sizeof *r);
}
