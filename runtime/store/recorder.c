// The recorder: hook callbacks -> per-hook buffers -> bounded queue -> writer thread -> sidecar
// tensor file + SQLite index. The ordering that makes crashes safe: bytes are written and
// fdatasync'd before the transaction that commits their index rows and the run's 'complete'.
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/store/recorder.h"
#include "runtime/store/store_internal.h"

typedef enum { MSG_BEGIN, MSG_CHUNK, MSG_END, MSG_ABORT } msg_kind;
enum { PENDING_MAX = PL_RECORDER_GROUP_MAX };

// One index row waiting for its run's commit.
typedef struct {
    const char *hook;   // stream name (owned by the recorder)
    int layer, is_attention, pos0, n_pos, row_size;  // row_size = n_heads for attention
    int64_t offset, nbytes;
} index_row;

// A run as the writer thread sees it.
typedef struct {
    int64_t db_id;
    index_row *rows;
    int n_rows, cap_rows;
    bool failed;
} writer_run;

typedef struct msg {
    msg_kind kind;
    struct msg *next;
    writer_run *run;
    // BEGIN
    int64_t model_id, example_id;
    char *params;
    int n_prompt;
    // CHUNK
    index_row row;
    uint8_t *bytes;
    size_t nbytes, cap;   // cap: allocated size of bytes
    // END
    pl_token_row *tokens;
    int n_tokens;
    pl_label *labels;
    int n_labels;
    char *text;
} msg;

// Rows of one hook point for the current run, in storage dtype.
typedef struct stream {
    struct pl_recorder *rec;
    char name[64];
    int layer;
    bool attention;
    int n_heads;         // attention only
    int row_size;        // floats per position (position-major hooks), set at the first event
    int pos0, n_pos;     // buffered positions [pos0, pos0 + n_pos)
    uint8_t *buf;        // position-major: [n_pos × row_size]; attention: [q][head][keys 0..q]
    size_t len, cap;
    size_t cap_hint;     // size of the last buffer handed to the writer: the next one starts there
} stream;

struct pl_recorder {
    pl_store *store;
    pl_record_opts opts;
    stream *streams;
    int n_streams;
    // current run (compute thread)
    writer_run *run;
    int keep_lo, keep_hi;   // positions kept for this run: [lo, hi)
    bool in_run;
    float *scratch;         // conversion scratch for attention rows
    size_t scratch_cap;
    // queue
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, idle;
    msg *head, *tail;
    size_t queued_bytes;
    bool stopping, busy;
    pthread_t thread;
    bool thread_started;
    // writer thread state
    sqlite3 *db;
    int fd;
    int64_t file_id, file_offset;
    char file_path[1300];
    uint8_t *wbuf;          // large write buffer
    size_t wlen, wcap;
    int64_t written;        // bytes handed to write() so far (file_offset minus what waits in wbuf)
    int64_t wb_started, wb_dropped;  // writeback started / pages dropped below these offsets
    bool no_writeback;      // sync_file_range unsupported: fdatasync does it all
    uint8_t *pool[32];      // chunk buffers the writer is done with, reused by the hooks (under mu):
    size_t pool_cap[32];    // fresh buffers would cost a page fault per 4 KiB, on every run
    int n_pool;
    msg *pending[PENDING_MAX];  // finished runs waiting for the group commit
    int n_pending;
    size_t unsynced;        // bytes written since the last fdatasync
    double last_commit;
    // results (under mu)
    bool failed;
    char err[4096];
    int64_t bytes_total;
    int runs_committed;
};

// ---- writer thread -------------------------------------------------------------------------

static void writer_fail(pl_recorder *r, const char *fmt, const char *detail) {
    pthread_mutex_lock(&r->mu);
    if (!r->failed) {
        r->failed = true;
        snprintf(r->err, sizeof r->err, fmt, detail);
    }
    pthread_mutex_unlock(&r->mu);
}

// Keep the tensor file's pages in the page cache only while they are being written back. After
// each WRITEBACK_WINDOW of bytes the writer starts that window's writeback (asynchronous, like
// the kernel's own, but at once), and it drops the window two behind it once that one is on
// disk. So a trace of many GB reuses a few windows of page cache instead of growing it: on a VM,
// fresh page-cache pages cost ~10x more to fill than recycled ones (measured: 300 MB/s vs 3-5
// GB/s; docs/store.md, "Performance"), and the readers' cache is not evicted. This is not a
// durability point: a run's index rows still wait for fdatasync (commit_pending).
static void writeback_window(pl_recorder *r) {
    enum { WINDOW = 8 << 20 };
    if (r->no_writeback) return;
    while (r->written - r->wb_started >= WINDOW) {
        if (sync_file_range(r->fd, (off_t)r->wb_started, WINDOW, SYNC_FILE_RANGE_WRITE) != 0) {
            r->no_writeback = true;  // not supported here: leave it all to fdatasync
            return;
        }
        r->wb_started += WINDOW;
    }
    while (r->wb_started - r->wb_dropped > 2 * (int64_t)WINDOW) {
        unsigned wait_write = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
        if (sync_file_range(r->fd, (off_t)r->wb_dropped, WINDOW, wait_write) != 0) {
            r->no_writeback = true;
            return;
        }
        posix_fadvise(r->fd, (off_t)r->wb_dropped, WINDOW, POSIX_FADV_DONTNEED);  // best effort
        r->wb_dropped += WINDOW;
    }
}

// Append n bytes at the end of the tensor file with write().
static int write_all(pl_recorder *r, const uint8_t *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t put = write(r->fd, p + done, n - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            char detail[1600];
            snprintf(detail, sizeof detail, "%s: write failed: %s%s", r->file_path, put < 0 ? strerror(errno) : "short write",
                     put < 0 && (errno == ENOSPC || errno == EFBIG) ? " (disk full?)" : "");
            writer_fail(r, "%s", detail);
            return -1;
        }
        done += (size_t)put;
    }
    r->written += (int64_t)n;
    writeback_window(r);
    return 0;
}

static int flush_wbuf(pl_recorder *r) {
    int rc = write_all(r, r->wbuf, r->wlen);
    r->wlen = 0;
    return rc;
}

// Append bytes to the tensor file; returns the offset they start at, or -1.
static int64_t append_bytes(pl_recorder *r, const uint8_t *p, size_t n) {
    int64_t at = r->file_offset;
    if (r->wlen + n > r->wcap && flush_wbuf(r) != 0) return -1;
    if (n >= ((size_t)256 << 10)) {  // big chunk: straight to the file, no extra copy
        if (write_all(r, p, n) != 0) return -1;
    } else {
        memcpy(r->wbuf + r->wlen, p, n);
        r->wlen += n;
    }
    r->file_offset += (int64_t)n;
    return at;
}

static int sql_error(pl_recorder *r, const char *what) {
    char detail[1400];
    snprintf(detail, sizeof detail, "%s: %s: %s", r->store->path, what, sqlite3_errmsg(r->db));
    int code = sqlite3_errcode(r->db);
    if (code == SQLITE_FULL) strncat(detail, " (disk full)", sizeof detail - strlen(detail) - 1);
    if (code == SQLITE_READONLY) strncat(detail, " (the store is read-only)", sizeof detail - strlen(detail) - 1);
    writer_fail(r, "%s", detail);
    return -1;
}

static int do_begin(pl_recorder *r, msg *m) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO runs(model_id, example_id, params, status, started, n_prompt)"
                           " VALUES(?1, ?2, ?3, 'running', ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_error(r, "begin run");
    if (m->model_id > 0) sqlite3_bind_int64(st, 1, m->model_id);
    if (m->example_id > 0) sqlite3_bind_int64(st, 2, m->example_id);
    sqlite3_bind_text(st, 3, m->params ? m->params : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, store_unix_now());
    sqlite3_bind_int(st, 5, m->n_prompt);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_error(r, "begin run");
    m->run->db_id = sqlite3_last_insert_rowid(r->db);
    return 0;
}

static int do_chunk(pl_recorder *r, msg *m) {
    writer_run *run = m->run;
    int64_t at = append_bytes(r, m->bytes, m->nbytes);
    if (at < 0) return -1;
    if (run->n_rows == run->cap_rows) {
        int cap = run->cap_rows ? run->cap_rows * 2 : 64;
        index_row *grown = realloc(run->rows, sizeof *grown * (size_t)cap);
        if (!grown) {
            writer_fail(r, "%s: out of memory", r->store->path);
            return -1;
        }
        run->rows = grown;
        run->cap_rows = cap;
    }
    index_row row = m->row;
    row.offset = at;
    row.nbytes = (int64_t)m->nbytes;
    run->rows[run->n_rows++] = row;
    pthread_mutex_lock(&r->mu);
    r->bytes_total += (int64_t)m->nbytes;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

// Insert one finished run (inside the caller's transaction): tokens, labels, index rows, status.
static int insert_run(pl_recorder *r, msg *m) {
    writer_run *run = m->run;
    sqlite3_stmt *tok = NULL, *lab = NULL, *ten = NULL, *att = NULL, *upd = NULL;
    const char *dtype = pl_dtype_name(r->opts.dtype);
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO tokens(run_id, pos, token_id, piece_bytes, piece, segment, logprob, entropy)"
                           " VALUES(?1, ?2, ?3, ?4, pl_display(?4), ?5, ?6, ?7)",
                           -1, &tok, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO labels(run_id, key, value) VALUES(?1, ?2, " STORE_LABEL_VALUE_SQL(3) ")",
                           -1, &lab, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO tensors(run_id, hook, layer, pos0, n_pos, row_size, dtype, file_id, offset, nbytes)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &ten, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO attention(run_id, layer, n_heads, q0, n_q, dtype, file_id, offset, nbytes)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &att, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "UPDATE runs SET status='complete', finished=?2, n_tokens=?3, text_bytes=?4, text=pl_display(?4)"
                           " WHERE id=?1", -1, &upd,
                           NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < m->n_tokens; i++) {
        const pl_token_row *t = &m->tokens[i];
        sqlite3_reset(tok);
        sqlite3_bind_int64(tok, 1, run->db_id);
        sqlite3_bind_int(tok, 2, i);
        sqlite3_bind_int(tok, 3, t->id);
        sqlite3_bind_blob(tok, 4, t->piece, (int)strlen(t->piece), SQLITE_STATIC);  // raw bytes; the display form beside
        sqlite3_bind_text(tok, 5, pl_segment_name(t->segment), -1, SQLITE_STATIC);
        if (isfinite(t->logprob)) sqlite3_bind_double(tok, 6, t->logprob);
        else sqlite3_bind_null(tok, 6);
        if (isfinite(t->entropy)) sqlite3_bind_double(tok, 7, t->entropy);
        else sqlite3_bind_null(tok, 7);
        if (sqlite3_step(tok) != SQLITE_DONE) goto fail;
    }
    for (int i = 0; i < m->n_labels; i++) {
        const pl_label *l = &m->labels[i];
        sqlite3_reset(lab);
        sqlite3_bind_int64(lab, 1, run->db_id);
        sqlite3_bind_text(lab, 2, l->key, -1, SQLITE_STATIC);
        if (l->is_text) sqlite3_bind_blob(lab, 3, l->text, (int)strlen(l->text), SQLITE_STATIC);  // stored as display text
        else if (l->num == floor(l->num) && fabs(l->num) < 9e15) sqlite3_bind_int64(lab, 3, (sqlite3_int64)l->num);
        else sqlite3_bind_double(lab, 3, l->num);
        if (sqlite3_step(lab) != SQLITE_DONE) goto fail;
    }
    for (int i = 0; i < run->n_rows; i++) {
        const index_row *x = &run->rows[i];
        sqlite3_stmt *st = x->is_attention ? att : ten;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, run->db_id);
        if (x->is_attention) {
            sqlite3_bind_int(st, 2, x->layer);
            sqlite3_bind_int(st, 3, x->row_size);
            sqlite3_bind_int(st, 4, x->pos0);
            sqlite3_bind_int(st, 5, x->n_pos);
            sqlite3_bind_text(st, 6, dtype, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, r->file_id);
            sqlite3_bind_int64(st, 8, x->offset);
            sqlite3_bind_int64(st, 9, x->nbytes);
        } else {
            sqlite3_bind_text(st, 2, x->hook, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, x->layer);
            sqlite3_bind_int(st, 4, x->pos0);
            sqlite3_bind_int(st, 5, x->n_pos);
            sqlite3_bind_int(st, 6, x->row_size);
            sqlite3_bind_text(st, 7, dtype, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 8, r->file_id);
            sqlite3_bind_int64(st, 9, x->offset);
            sqlite3_bind_int64(st, 10, x->nbytes);
        }
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_bind_int64(upd, 1, run->db_id);
    sqlite3_bind_double(upd, 2, store_unix_now());
    sqlite3_bind_int(upd, 3, m->n_tokens);
    sqlite3_bind_blob(upd, 4, m->text, (int)strlen(m->text), SQLITE_STATIC);
    if (sqlite3_step(upd) != SQLITE_DONE) goto fail;
    sqlite3_finalize(tok);
    sqlite3_finalize(lab);
    sqlite3_finalize(ten);
    sqlite3_finalize(att);
    sqlite3_finalize(upd);
    return 0;
fail:
    sql_error(r, "commit run");
    sqlite3_finalize(tok);
    sqlite3_finalize(lab);
    sqlite3_finalize(ten);
    sqlite3_finalize(att);
    sqlite3_finalize(upd);
    return -1;
}

static void set_status(pl_recorder *r, writer_run *run, const char *status) {
    if (run->db_id <= 0) return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "UPDATE runs SET status=?2, finished=?3 WHERE id=?1 AND status='running'", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, run->db_id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, store_unix_now());
    sqlite3_step(st);  // best effort: a run left 'running' is marked aborted by the next writer
    sqlite3_finalize(st);
}

static void free_msg(msg *m) {
    if (m->kind == MSG_END || m->kind == MSG_ABORT) {  // the last message of a run owns it
        free(m->run->rows);
        free(m->run);
    }
    free(m->params);
    free(m->bytes);
    free(m->tokens);
    free(m->labels);
    free(m->text);
    free(m);
}

// Group commit: finished runs wait in r->pending; one fdatasync then one transaction commits them
// all. Runs are committed as soon as the queue is idle, so batches only form under load (when
// per-run syncs would make the disk, not the data, the limit).
static void commit_pending(pl_recorder *r) {
    if (r->n_pending == 0) return;
    int ok = flush_wbuf(r) == 0;  // 1. the bytes reach the disk before any index row that points at them
    if (ok && r->unsynced && fdatasync(r->fd) != 0) {
        char detail[1600];
        snprintf(detail, sizeof detail, "%s: fdatasync failed: %s", r->file_path, strerror(errno));
        writer_fail(r, "%s", detail);
        ok = 0;
    }
    r->unsynced = 0;
    // 2. one transaction: every pending run's rows and its status 'complete'
    if (ok && sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) ok = sql_error(r, "commit run") == 0;
    for (int i = 0; ok && i < r->n_pending; i++) ok = insert_run(r, r->pending[i]) == 0;
    if (ok && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) ok = sql_error(r, "commit run") == 0;
    if (!ok) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < r->n_pending; i++) {
        if (!ok) set_status(r, r->pending[i]->run, "failed");
        free_msg(r->pending[i]);
    }
    pthread_mutex_lock(&r->mu);
    if (ok) r->runs_committed += r->n_pending;
    pthread_mutex_unlock(&r->mu);
    r->n_pending = 0;
    r->last_commit = pl_now_sec();
}

static void *writer_main(void *arg) {
    pl_recorder *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->head && !r->stopping) pthread_cond_wait(&r->not_empty, &r->mu);
        if (!r->head) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        msg *m = r->head;
        r->head = m->next;
        if (!r->head) r->tail = NULL;
        r->busy = true;
        bool failed = r->failed;
        pthread_mutex_unlock(&r->mu);

        writer_run *run = m->run;
        bool kept = false;
        if (m->kind == MSG_BEGIN) {
            if (!failed) do_begin(r, m);
        } else if (m->kind == MSG_CHUNK) {
            if (!failed && !run->failed && do_chunk(r, m) != 0) run->failed = true;
            r->unsynced += m->nbytes;
        } else if (m->kind == MSG_END && !failed && !run->failed) {
            r->pending[r->n_pending++] = m;
            kept = true;
        } else {
            set_status(r, run, m->kind == MSG_ABORT ? "aborted" : "failed");
        }
        pthread_mutex_lock(&r->mu);
        r->queued_bytes -= m->nbytes;
        bool idle = r->head == NULL;
        pthread_cond_broadcast(&r->not_full);
        pthread_mutex_unlock(&r->mu);
        if (r->n_pending > 0 && (idle || r->n_pending == PENDING_MAX || r->unsynced >= ((size_t)256 << 20) ||
                                 pl_now_sec() - r->last_commit > 0.5))
            commit_pending(r);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        if (!r->head) pthread_cond_broadcast(&r->idle);
        pthread_mutex_unlock(&r->mu);
        if (!kept) {
            if (m->kind == MSG_CHUNK && m->bytes) {
                pthread_mutex_lock(&r->mu);
                if (r->n_pool < 32) {
                    r->pool[r->n_pool] = m->bytes;
                    r->pool_cap[r->n_pool++] = m->cap;
                    m->bytes = NULL;
                }
                pthread_mutex_unlock(&r->mu);
            }
            free_msg(m);
        }
    }
    commit_pending(r);
    flush_wbuf(r);
    if (r->fd >= 0 && fdatasync(r->fd) != 0 && !r->failed) writer_fail(r, "%s: fdatasync failed", r->file_path);
    return NULL;
}

// Queue a message; blocks while the queue holds more than queue_bytes (unless it is empty).
static void push(pl_recorder *r, msg *m) {
    pthread_mutex_lock(&r->mu);
    while (r->head && r->queued_bytes + m->nbytes > r->opts.queue_bytes) pthread_cond_wait(&r->not_full, &r->mu);
    r->queued_bytes += m->nbytes;
    if (r->tail) r->tail->next = m;
    else r->head = m;
    r->tail = m;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

static int check_failed(pl_recorder *r) {
    pthread_mutex_lock(&r->mu);
    bool failed = r->failed;
    char err[4096];
    snprintf(err, sizeof err, "%s", r->err);
    pthread_mutex_unlock(&r->mu);
    if (failed) return store_fail(r->store, "%s", err);
    return 0;
}

// ---- compute-thread side -------------------------------------------------------------------

// A buffer of at least `need` bytes, from the pool if one is big enough (*cap gets its size).
static uint8_t *take_buffer(pl_recorder *r, size_t need, size_t *cap) {
    uint8_t *b = NULL;
    size_t got = need;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_pool; i++)
        if (r->pool_cap[i] >= need) {
            b = r->pool[i];
            got = r->pool_cap[i];
            r->pool[i] = r->pool[r->n_pool - 1];
            r->pool_cap[i] = r->pool_cap[--r->n_pool];
            break;
        }
    pthread_mutex_unlock(&r->mu);
    if (!b) b = malloc(need);
    if (cap) *cap = b ? got : 0;
    return b;
}

// Hand a stream's buffer to the writer as one chunk. Attention buffers are reordered from
// [q][head][keys] (append order) to [head][q][keys] so one head's triangle is contiguous.
static void flush_stream(pl_recorder *r, stream *st) {
    if (st->n_pos == 0) return;
    msg *m = calloc(1, sizeof *m);
    if (!m) {
        writer_fail(r, "%s: out of memory", r->store->path);
        st->len = 0;
        st->n_pos = 0;
        return;
    }
    m->kind = MSG_CHUNK;
    m->run = r->run;
    m->row = (index_row){.hook = st->name, .layer = st->layer, .is_attention = st->attention, .pos0 = st->pos0,
                         .n_pos = st->n_pos, .row_size = st->attention ? st->n_heads : st->row_size};
    if (st->attention) {
        size_t es = pl_dtype_size(r->opts.dtype);
        uint8_t *out = take_buffer(r, st->len, NULL);
        if (!out) {
            free(m);
            writer_fail(r, "%s: out of memory", r->store->path);
            st->len = 0;
            st->n_pos = 0;
            return;
        }
        int64_t per_head = store_tri(st->pos0 + st->n_pos) - store_tri(st->pos0);
        size_t src = 0;
        int64_t before = 0;  // elements of earlier query rows within one head's block
        for (int q = st->pos0; q < st->pos0 + st->n_pos; q++) {
            size_t row_bytes = (size_t)(q + 1) * es;
            for (int h = 0; h < st->n_heads; h++) {
                memcpy(out + (size_t)(h * per_head + before) * es, st->buf + src, row_bytes);
                src += row_bytes;
            }
            before += q + 1;
        }
        m->bytes = out;
        m->nbytes = st->len;
        m->cap = st->len;
    } else {
        m->bytes = st->buf;  // hand over the buffer; the stream takes another from the pool
        m->nbytes = st->len;
        m->cap = st->cap;
        st->buf = NULL;
        st->cap_hint = st->cap;
        st->cap = 0;
    }
    st->len = 0;
    st->pos0 += st->n_pos;
    st->n_pos = 0;
    push(r, m);
}

static int reserve(stream *st, size_t extra) {
    if (st->len + extra <= st->cap) return 0;
    if (!st->buf) st->buf = take_buffer(st->rec, st->len + extra > st->cap_hint ? st->len + extra : st->cap_hint, &st->cap);
    if (st->len + extra <= st->cap) return 0;
    size_t cap = st->cap ? st->cap : st->cap_hint > 65536 ? st->cap_hint : 65536;
    while (cap < st->len + extra) cap *= 2;
    uint8_t *grown = realloc(st->buf, cap);
    if (!grown) return -1;
    st->buf = grown;
    st->cap = cap;
    return 0;
}

// Hook callback: keep the rows of positions in [keep_lo, keep_hi), converted to the storage dtype.
static void on_hook(const pl_hook_event *ev, void *user) {
    stream *st = user;
    pl_recorder *r = st->rec;
    if (!r->in_run || r->failed) return;
    int lo = ev->pos0 > r->keep_lo ? ev->pos0 : r->keep_lo;
    int hi = ev->pos0 + ev->n_pos < r->keep_hi ? ev->pos0 + ev->n_pos : r->keep_hi;
    if (lo >= hi) return;
    if (st->n_pos > 0 && st->pos0 + st->n_pos != lo) flush_stream(r, st);  // keep chunks contiguous
    if (st->n_pos == 0) st->pos0 = lo;
    size_t es = pl_dtype_size(r->opts.dtype);
    if (!st->attention) {
        if (st->row_size == 0) st->row_size = ev->row_size;
        size_t bytes = (size_t)(hi - lo) * (size_t)ev->row_size * es;
        if (ev->row_size != st->row_size || reserve(st, bytes) != 0) {
            writer_fail(r, "%s: hook row size changed or out of memory", st->name);
            return;
        }
        store_from_f32(st->buf + st->len, ev->data + (size_t)(lo - ev->pos0) * ev->row_size, r->opts.dtype,
                       (size_t)(hi - lo) * ev->row_size);
        st->len += bytes;
    } else {
        // ev->data is [H × n_pos × n_ctx]; keep keys 0..q of each query row q (the causal triangle).
        int H = (int)ev->shape[0];
        st->n_heads = H;
        size_t need = 0;
        for (int q = lo; q < hi; q++) need += (size_t)H * (size_t)(q + 1) * es;
        if (reserve(st, need) != 0) {
            writer_fail(r, "%s: out of memory", st->name);
            return;
        }
        for (int q = lo; q < hi; q++)
            for (int h = 0; h < H; h++) {
                const float *row = ev->data + ((size_t)h * ev->n_pos + (size_t)(q - ev->pos0)) * ev->n_ctx;
                store_from_f32(st->buf + st->len, row, r->opts.dtype, (size_t)q + 1);
                st->len += (size_t)(q + 1) * es;
            }
    }
    st->n_pos += hi - lo;
    if (st->len >= r->opts.chunk_bytes) flush_stream(r, st);
}

// Register one stream per matched hook point. pl_hooks_add takes one user pointer per call, so we
// expand the globs ourselves against the list of hook names.
int pl_recorder_new(pl_recorder **out, pl_store *s, pl_hooks *hooks, const pl_record_opts *o) {
    *out = NULL;
    if (s->mode != PL_STORE_WRITE) return store_fail(s, "%s: opened read-only; recording needs a writer", s->path);
    pl_recorder *r = calloc(1, sizeof *r);
    if (!r) return store_fail(s, "%s: out of memory", s->path);
    r->store = s;
    r->opts = *o;
    r->opts.record = NULL;
    r->fd = -1;
    // Measured (bench store): small chunks and a short queue keep the bytes in cache between the
    // hook's copy and the writer's write(); 4 MiB / 256 MiB ran at ~0.5 of fwrite, these at ~0.65.
    if (!r->opts.queue_bytes) r->opts.queue_bytes = (size_t)32 << 20;
    if (!r->opts.chunk_bytes) r->opts.chunk_bytes = (size_t)256 << 10;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    pthread_cond_init(&r->not_full, NULL);
    pthread_cond_init(&r->idle, NULL);
    // Positions are kept as they are generated, before the answer segment is known: no cot/answer.
    if (o->positions != PL_POS_ALL && o->positions != PL_POS_PROMPT && o->positions != PL_POS_GENERATED &&
        o->positions != PL_POS_LAST_PROMPT) {
        store_fail(s, "--positions %s: recording keeps all, prompt, generated or last-prompt",
                   pl_pos_rule_name(o->positions));
        goto fail;
    }
    if (o->record && o->record[0]) {
        const char **names;
        int n_names = pl_hooks_list(hooks, &names);
        r->streams = calloc((size_t)n_names, sizeof *r->streams);
        if (!r->streams) {
            store_fail(s, "%s: out of memory", s->path);
            goto fail;
        }
        // Split the comma-separated globs; every glob must match something recordable. Attention
        // scores are not a probability pattern (stored like patterns they would be
        // indistinguishable in the attention table), so a glob such as '*' skips them and only a
        // glob that matches nothing but scores is an error.
        char *globs = strdup(o->record), *save = NULL;
        if (!globs) {
            store_fail(s, "%s: out of memory", s->path);
            goto fail;
        }
        int bad = 0;  // 1 = matches nothing, 2 = matches only attention scores
        for (char *g = strtok_r(globs, ",", &save); g && !bad; g = strtok_r(NULL, ",", &save)) {
            while (*g == ' ') g++;
            if (!*g) continue;
            int matched = 0, recordable = 0;
            for (int i = 0; i < n_names; i++) {
                if (fnmatch(g, names[i], 0) != 0) continue;
                matched++;
                pl_hook_kind kind;
                int layer;
                if (pl_hook_parse(names[i], &kind, &layer) != 0 || kind == PL_HOOK_ATTN_SCORES) continue;
                recordable++;
                bool dup = false;
                for (int k = 0; k < r->n_streams; k++) dup |= strcmp(r->streams[k].name, names[i]) == 0;
                if (dup) continue;
                stream *st = &r->streams[r->n_streams++];
                st->rec = r;
                snprintf(st->name, sizeof st->name, "%s", names[i]);
                st->layer = layer;
                st->attention = kind == PL_HOOK_PATTERN;
            }
            if (matched == 0)
                bad = 1, store_fail(s, "--record: '%s' matches no hook point of this model (probelab info MODEL --hooks lists them)", g);
            else if (recordable == 0)
                bad = 2, store_fail(s, "--record: '%s' matches only attention scores, which cannot be recorded (record attn.hook_pattern)", g);
        }
        free(globs);
        if (bad) goto fail;
        for (int k = 0; k < r->n_streams; k++)
            if (pl_hooks_add(hooks, r->streams[k].name, on_hook, &r->streams[k]) < 0) {
                store_fail(s, "%s", pl_errmsg());
                goto fail;
            }
    }
    // The writer's tensor file: a new one per recorder, registered before any chunk points at it.
    if (store_open_connection(s, &r->db) != 0) goto fail;
    {
        char name[64];
        for (int attempt = 0; attempt < 1000; attempt++) {
            snprintf(name, sizeof name, "%lld-%d-%d.bin", (long long)store_unix_now(), (int)getpid(), attempt);
            snprintf(r->file_path, sizeof r->file_path, "%s/%s", s->tensor_dir, name);
            r->fd = open(r->file_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (r->fd >= 0 || errno != EEXIST) break;
        }
        if (r->fd < 0) {
            store_fail(s, "%s: cannot create tensor file: %s", r->file_path, strerror(errno));
            goto fail;
        }
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(r->db, "INSERT INTO tensor_files(path, created, writer_pid) VALUES(?1, ?2, ?3)", -1, &st,
                               NULL) != SQLITE_OK) {
            store_sql_fail(s, r->db, "register tensor file");
            goto fail;
        }
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 2, store_unix_now());
        sqlite3_bind_int(st, 3, (int)getpid());
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            store_sql_fail(s, r->db, "register tensor file");
            goto fail;
        }
        r->file_id = sqlite3_last_insert_rowid(r->db);
    }
    r->wcap = (size_t)8 << 20;
    r->wbuf = malloc(r->wcap);
    if (!r->wbuf || pthread_create(&r->thread, NULL, writer_main, r) != 0) {
        store_fail(s, "%s: cannot start the writer thread", s->path);
        goto fail;
    }
    r->thread_started = true;
    *out = r;
    return 0;
fail:
    pl_recorder_close(r);
    return pl_fail("%s", s->err);
}

int pl_recorder_begin_run(pl_recorder *r, int64_t model_id, int64_t example_id, const char *params_json, int n_prompt) {
    if (check_failed(r) != 0) return -1;
    if (r->in_run) return store_fail(r->store, "%s: begin_run while a run is open", r->store->path);
    msg *m = calloc(1, sizeof *m);
    writer_run *run = calloc(1, sizeof *run);
    if (!m || !run) {
        free(m);
        free(run);
        return store_fail(r->store, "%s: out of memory", r->store->path);
    }
    m->kind = MSG_BEGIN;
    m->run = run;
    m->model_id = model_id;
    m->example_id = example_id;
    m->params = strdup(params_json ? params_json : "{}");
    m->n_prompt = n_prompt;
    r->run = run;
    r->in_run = true;
    switch (r->opts.positions) {
    case PL_POS_PROMPT: r->keep_lo = 0, r->keep_hi = n_prompt; break;
    case PL_POS_LAST_PROMPT: r->keep_lo = n_prompt - 1, r->keep_hi = n_prompt; break;
    case PL_POS_GENERATED: r->keep_lo = n_prompt, r->keep_hi = 1 << 30; break;
    default: r->keep_lo = 0, r->keep_hi = 1 << 30; break;
    }
    for (int k = 0; k < r->n_streams; k++) r->streams[k].n_pos = 0, r->streams[k].len = 0;
    push(r, m);
    return 0;
}

int pl_recorder_end_run(pl_recorder *r, const pl_token_row *tokens, int n_tokens, const pl_label *labels, int n_labels,
                        const char *generated_text) {
    if (!r->in_run) return store_fail(r->store, "%s: end_run without begin_run", r->store->path);
    for (int k = 0; k < r->n_streams; k++) flush_stream(r, &r->streams[k]);
    msg *m = calloc(1, sizeof *m);
    if (!m) return store_fail(r->store, "%s: out of memory", r->store->path);
    m->kind = MSG_END;
    m->run = r->run;
    m->tokens = malloc(sizeof *tokens * (size_t)(n_tokens > 0 ? n_tokens : 1));
    m->labels = malloc(sizeof *labels * (size_t)(n_labels > 0 ? n_labels : 1));
    m->text = strdup(generated_text ? generated_text : "");
    if (n_tokens > 0) memcpy(m->tokens, tokens, sizeof *tokens * (size_t)n_tokens);
    if (n_labels > 0) memcpy(m->labels, labels, sizeof *labels * (size_t)n_labels);
    m->n_tokens = n_tokens;
    m->n_labels = n_labels;
    r->in_run = false;
    r->run = NULL;
    push(r, m);
    return check_failed(r);
}

int pl_recorder_abort_run(pl_recorder *r) {
    if (!r->in_run) return 0;
    for (int k = 0; k < r->n_streams; k++) r->streams[k].n_pos = 0, r->streams[k].len = 0;
    msg *m = calloc(1, sizeof *m);
    if (!m) return store_fail(r->store, "%s: out of memory", r->store->path);
    m->kind = MSG_ABORT;
    m->run = r->run;
    r->in_run = false;
    r->run = NULL;
    push(r, m);
    return 0;
}

int pl_recorder_close(pl_recorder *r) {
    if (!r) return 0;
    if (r->in_run) pl_recorder_abort_run(r);
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->stopping = true;
        pthread_cond_signal(&r->not_empty);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    int rc = r->failed ? store_fail(r->store, "%s", r->err) : 0;
    for (msg *m = r->head; m;) {  // only left if the thread never started
        msg *next = m->next;

        free_msg(m);
        m = next;
    }
    for (int k = 0; k < r->n_streams; k++) free(r->streams[k].buf);
    for (int i = 0; i < r->n_pool; i++) free(r->pool[i]);
    free(r->streams);
    free(r->wbuf);
    free(r->scratch);
    if (r->fd >= 0) close(r->fd);
    if (r->db) sqlite3_close(r->db);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->not_empty);
    pthread_cond_destroy(&r->not_full);
    pthread_cond_destroy(&r->idle);
    free(r);
    return rc;
}

int64_t pl_recorder_bytes(const pl_recorder *r) {
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    int64_t b = r->bytes_total;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
    return b;
}

int pl_recorder_runs_committed(const pl_recorder *r) {
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    int n = r->runs_committed;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
    return n;
}
