// Reading tensors: activations of (run, hook, positions) and attention patterns of (run, layer,
// head), each with an indexed lookup and preads of only the bytes asked for.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base/error.h"
#include "runtime/store/store_internal.h"

static int read_exact(pl_store *s, int fd, void *buf, size_t n, int64_t offset) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(offset + (int64_t)done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return store_fail(s, "%s: tensor data truncated or unreadable at offset %lld (%s)", s->tensor_dir,
                              (long long)(offset + (int64_t)done), got < 0 ? strerror(errno) : "end of file");
        done += (size_t)got;
    }
    return 0;
}

int pl_store_list_hooks(pl_store *s, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    sqlite3_stmt *st;
    // Attention patterns live in their own table; they are listed under their hook name.
    if (sqlite3_prepare_v2(s->db,
                           "SELECT DISTINCT hook FROM tensors UNION SELECT DISTINCT 'blocks.' || layer || '.attn.hook_pattern'"
                           " FROM attention ORDER BY 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list hooks");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(*names, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            *names = grown;
        }
        (*names)[(*n)++] = strdup(store_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "list hooks");
}

int pl_store_tensor_files(pl_store *s, char ***paths, int *n) {
    *paths = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT path FROM tensor_files ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "list tensor files");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = realloc(*paths, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            *paths = grown;
        }
        char *path = NULL;
        if (asprintf(&path, "%s/%s", s->tensor_dir, (const char *)sqlite3_column_text(st, 0)) < 0) break;
        (*paths)[(*n)++] = path;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return 0;
    pl_strings_free(*paths, *n);
    *paths = NULL;
    *n = 0;
    return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory", s->path) : store_sql_fail(s, s->db, "list tensor files");
}

// "hook H was not recorded (recorded: a, b, ...)".
static int hook_not_recorded(pl_store *s, const char *hook) {
    char **names;
    int n;
    char list[600] = "";
    if (pl_store_list_hooks(s, &names, &n) == 0) {
        size_t len = 0;
        for (int i = 0; i < n && len + 64 < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
        if (n == 0) snprintf(list, sizeof list, "none");
        else if (len + 64 >= sizeof list) snprintf(list + len, sizeof list - len, ", ...");
        pl_strings_free(names, n);
    }
    return store_fail(s, "%s: hook '%s' was not recorded (recorded: %s)", s->path, hook, list);
}

int pl_store_hook_row_size(pl_store *s, const char *hook, int64_t model_id, int *row_size) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, row_size FROM tensors WHERE hook=?1"
                           " AND (?2=0 OR run_id IN (SELECT id FROM runs WHERE model_id=?2)) LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "row size");
    sqlite3_bind_text(st, 1, hook, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, model_id);
    int rc = sqlite3_step(st);
    int64_t id = 0, size = 0;
    if (rc == SQLITE_ROW) id = sqlite3_column_int64(st, 0), size = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        if (model_id == 0) return hook_not_recorded(s, hook);
        return store_fail(s, "%s: hook '%s' was not recorded in the runs of model %lld", s->path, hook, (long long)model_id);
    }
    if (rc != SQLITE_ROW) return store_sql_fail(s, s->db, "row size");
    if (size < 1 || size > PL_STORE_MAX_ROW_SIZE)
        return store_corrupt(s, "tensors", id, "row_size %lld for hook '%s' out of range 1..%d", (long long)size, hook,
                             PL_STORE_MAX_ROW_SIZE);
    *row_size = (int)size;
    return 0;
}

int pl_store_recorded_positions(pl_store *s, int64_t run_id, const char *hook, int32_t **ranges, int *n_ranges) {
    *ranges = NULL;
    *n_ranges = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT " STORE_TENSOR_COLUMNS " FROM tensors WHERE run_id=?1 AND hook=?2 ORDER BY pos0",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "recorded positions");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, hook, -1, SQLITE_TRANSIENT);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_chunk c;
        store_chunk_from_row(st, 0, false, &c);
        if (store_check_chunk(s, &c) != 0) {
            sqlite3_finalize(st);
            free(*ranges);
            *ranges = NULL;
            *n_ranges = 0;
            return -1;
        }
        int32_t lo = (int32_t)c.pos0, hi = (int32_t)(c.pos0 + c.n_pos);
        if (*n_ranges > 0 && (*ranges)[2 * *n_ranges - 1] == lo) {  // merge adjacent chunks
            (*ranges)[2 * *n_ranges - 1] = hi;
            continue;
        }
        if (*n_ranges == cap) {
            cap = cap ? cap * 2 : 8;
            int32_t *grown = realloc(*ranges, sizeof(int32_t) * 2 * (size_t)cap);
            if (!grown) break;
            *ranges = grown;
        }
        (*ranges)[2 * *n_ranges] = lo;
        (*ranges)[2 * *n_ranges + 1] = hi;
        (*n_ranges)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "recorded positions");
}

// Explain why (run, hook, pos) has no row: no such run, hook not recorded, or position not recorded.
static int explain_missing(pl_store *s, int64_t run_id, const char *hook, int pos) {
    pl_run_info info;
    if (pl_store_get_run(s, run_id, &info) != 0) return -1;
    int32_t *ranges;
    int n;
    if (pl_store_recorded_positions(s, run_id, hook, &ranges, &n) != 0) return -1;
    if (n == 0) {
        free(ranges);
        int d;
        if (pl_store_hook_row_size(s, hook, 0, &d) != 0) return -1;  // not recorded anywhere: lists the hooks
        return store_fail(s, "%s: run %lld has no rows of hook '%s' (status %s)", s->path, (long long)run_id, hook,
                          info.status);
    }
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < n && len + 32 < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d..%d", i ? ", " : "", ranges[2 * i], ranges[2 * i + 1] - 1);
    free(ranges);
    return store_fail(s, "%s: run %lld: position %d of hook '%s' was not recorded (recorded positions %s)", s->path,
                      (long long)run_id, pos, hook, list);
}

int pl_store_read_acts(pl_store *s, int64_t run_id, const char *hook, const int32_t *positions, int n_positions,
                       int row_size, float *out) {
    if (row_size <= 0) return store_fail(s, "%s: read activations of '%s': row size %d", s->path, hook, row_size);
    if (!s->lookup_rows &&
        sqlite3_prepare_v3(s->db,
                           "SELECT " STORE_TENSOR_COLUMNS " FROM tensors"
                           " WHERE run_id=?1 AND hook=?2 AND pos0<=?3 ORDER BY pos0 DESC LIMIT 1",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->lookup_rows, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "read activations");
    sqlite3_stmt *st = s->lookup_rows;
    // The chunk found last: consecutive positions usually fall in it, saving the lookup.
    store_chunk c = {.n_pos = 0};
    uint8_t stackbuf[16384];
    uint8_t *raw = stackbuf;
    int rc = -1;
    for (int i = 0; i < n_positions; i++) {
        int32_t p = positions[i];
        if (!(p >= c.pos0 && p < c.pos0 + c.n_pos)) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, run_id);
            sqlite3_bind_text(st, 2, hook, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, p);
            int step = sqlite3_step(st);
            if (step != SQLITE_ROW && step != SQLITE_DONE) {
                store_sql_fail(s, s->db, "read activations");
                goto done;
            }
            if (step == SQLITE_ROW) store_chunk_from_row(st, 0, false, &c);
            sqlite3_reset(st);
            if (step == SQLITE_ROW && store_check_chunk(s, &c) != 0) goto done;  // bounds below hold from here on
            if (step == SQLITE_DONE || p >= c.pos0 + c.n_pos) {
                explain_missing(s, run_id, hook, p);
                goto done;
            }
            // The caller's buffer holds row_size floats per position: a chunk of another width is a
            // run of another model (or a corrupt index), never something to copy.
            if (c.row_size != row_size) {
                store_fail(s, "%s: tensors row %lld (run %lld): hook '%s' has rows of %lld floats, expected %d%s", s->path,
                           (long long)c.id, (long long)run_id, hook, (long long)c.row_size, row_size,
                           " (runs of another model? choose one with --model-id N)");
                goto done;
            }
            size_t need = (size_t)row_size * pl_dtype_size(c.dtype);
            if (need > sizeof stackbuf && raw == stackbuf) {
                raw = malloc(need);
                if (!raw) {
                    raw = stackbuf;
                    store_fail(s, "%s: out of memory", s->path);
                    goto done;
                }
            }
        }
        int fd = store_tensor_fd(s, c.file_id);
        if (fd < 0) goto done;
        size_t row_bytes = (size_t)row_size * pl_dtype_size(c.dtype);
        if (read_exact(s, fd, raw, row_bytes, c.offset + (p - c.pos0) * (int64_t)row_bytes) != 0) goto done;
        store_to_f32(out + (size_t)i * row_size, raw, c.dtype, (size_t)row_size);
    }
    rc = 0;
done:
    if (raw != stackbuf) free(raw);
    return rc;
}

int pl_store_read_attention(pl_store *s, int64_t run_id, int layer, int head, float **out, int *q0_out, int *n_q_out,
                            int *n_k_out) {
    *out = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " STORE_ATTENTION_COLUMNS " FROM attention WHERE run_id=?1 AND layer=?2 ORDER BY q0", -1,
                           &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "read attention");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, layer);
    store_chunk *chunks = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            store_chunk *grown = realloc(chunks, sizeof *chunks * (size_t)cap);
            if (!grown) break;
            chunks = grown;
        }
        store_chunk *c = &chunks[n++];
        store_chunk_from_row(st, 0, true, c);
        // Every chunk is checked against its file before anything is allocated from its sizes.
        if (store_check_chunk(s, c) != 0) {
            sqlite3_finalize(st);
            free(chunks);
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(chunks);
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory reading attention", s->path)
                                : store_sql_fail(s, s->db, "read attention");
    }
    if (n == 0) {
        free(chunks);
        pl_run_info info;
        if (pl_store_get_run(s, run_id, &info) != 0) return -1;
        char hook[64];
        snprintf(hook, sizeof hook, "blocks.%d.attn.hook_pattern", layer);
        return hook_not_recorded(s, hook);
    }
    if (head < 0 || head >= chunks[0].row_size) {
        int H = (int)chunks[0].row_size;
        free(chunks);
        return store_fail(s, "%s: head %d out of range (the model has %d heads)", s->path, head, H);
    }
    // The query rows: chunks[0].q0 .. q_end-1 without gaps, each chunk with the same heads. The
    // chunk checks bound q_end by PL_STORE_MAX_POSITIONS and each chunk by its file's length, so
    // the dense [n_q × n_k] matrix (at most twice the triangles read) is bounded by the files.
    for (int i = 1; i < n; i++) {
        if (chunks[i].pos0 != chunks[i - 1].pos0 + chunks[i - 1].n_pos) {
            store_corrupt(s, "attention", chunks[i].id, "q0 %lld does not follow the previous chunk of run %lld layer %d (to %lld)",
                          (long long)chunks[i].pos0, (long long)run_id, layer,
                          (long long)(chunks[i - 1].pos0 + chunks[i - 1].n_pos - 1));
            free(chunks);
            return -1;
        }
        if (chunks[i].row_size != chunks[0].row_size) {
            store_corrupt(s, "attention", chunks[i].id, "n_heads %lld, but the layer's first chunk has %lld",
                          (long long)chunks[i].row_size, (long long)chunks[0].row_size);
            free(chunks);
            return -1;
        }
    }
    int q0 = (int)chunks[0].pos0, q_end = (int)(chunks[n - 1].pos0 + chunks[n - 1].n_pos);
    int n_q = q_end - q0, n_k = q_end;
    float *dense = calloc((size_t)n_q * (size_t)n_k, sizeof(float));
    uint8_t *raw = NULL;
    int status = -1;
    if (!dense) {
        store_fail(s, "%s: out of memory reading attention", s->path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        store_chunk *c = &chunks[i];
        // Chunk layout: [head][query q0..q0+n_q-1][keys 0..q]; one head's block is contiguous.
        int64_t per_head = store_tri(c->pos0 + c->n_pos) - store_tri(c->pos0);
        size_t es = pl_dtype_size(c->dtype);
        uint8_t *grown = realloc(raw, (size_t)per_head * es);
        if (!grown) {
            store_fail(s, "%s: out of memory reading attention", s->path);
            goto done;
        }
        raw = grown;
        int fd = store_tensor_fd(s, c->file_id);
        if (fd < 0 || read_exact(s, fd, raw, (size_t)per_head * es, c->offset + head * per_head * (int64_t)es) != 0) goto done;
        int64_t at = 0;
        for (int64_t q = c->pos0; q < c->pos0 + c->n_pos; q++) {
            store_to_f32(dense + (size_t)(q - q0) * n_k, raw + at * (int64_t)es, c->dtype, (size_t)q + 1);
            at += q + 1;
        }
    }
    *out = dense;
    dense = NULL;
    *q0_out = q0;
    *n_q_out = n_q;
    *n_k_out = n_k;
    status = 0;
done:
    free(dense);
    free(raw);
    free(chunks);
    return status;
}
