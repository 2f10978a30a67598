// Opening a store: file checks, schema migrations, the writer lock; metadata writes; runs,
// tokens and labels. Every statement is parameterized (sqlite3_bind_*); no SQL is built from
// user text.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/store/store_internal.h"

#ifdef PL_SIMD_X86
#include <immintrin.h>
#endif

// ---- schema --------------------------------------------------------------------------------
// migrations[v-1] takes a store from version v-1 to v. Never edit a released entry: append one.
static const char *const migrations[PL_STORE_SCHEMA_VERSION] = {
    // v1: models, datasets, examples, runs, tokens, tensor index, attention index, labels
    "CREATE TABLE models(id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,"
    "  config TEXT NOT NULL);"
    "CREATE TABLE datasets(id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,"
    "  n_examples INTEGER NOT NULL, created REAL NOT NULL);"
    "CREATE TABLE examples(id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id),"
    "  idx INTEGER NOT NULL, ext_id TEXT, task TEXT, prompt TEXT NOT NULL, cot TEXT, answer TEXT, options TEXT,"
    "  difficulty INTEGER, meta TEXT, UNIQUE(dataset_id, idx));"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, model_id INTEGER REFERENCES models(id),"
    "  example_id INTEGER REFERENCES examples(id), params TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK(status IN ('running','complete','aborted','failed')),"
    "  started REAL NOT NULL, finished REAL, n_prompt INTEGER, n_tokens INTEGER, text TEXT);"
    "CREATE INDEX runs_by_example ON runs(example_id, model_id, status);"
    "CREATE TABLE tokens(run_id INTEGER NOT NULL REFERENCES runs(id), pos INTEGER NOT NULL, token_id INTEGER NOT NULL,"
    "  piece TEXT, segment TEXT NOT NULL CHECK(segment IN ('prompt','cot','answer')), logprob REAL, entropy REAL,"
    "  PRIMARY KEY(run_id, pos)) WITHOUT ROWID;"
    "CREATE TABLE tensor_files(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, created REAL NOT NULL,"
    "  writer_pid INTEGER);"
    "CREATE TABLE tensors(id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), hook TEXT NOT NULL,"
    "  layer INTEGER NOT NULL, pos0 INTEGER NOT NULL, n_pos INTEGER NOT NULL, row_size INTEGER NOT NULL,"
    "  dtype TEXT NOT NULL CHECK(dtype IN ('f32','f16','bf16')), file_id INTEGER NOT NULL REFERENCES tensor_files(id),"
    "  offset INTEGER NOT NULL, nbytes INTEGER NOT NULL);"
    "CREATE INDEX tensors_lookup ON tensors(run_id, hook, pos0);"
    "CREATE INDEX tensors_by_hook ON tensors(hook);"
    "CREATE TABLE attention(id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),"
    "  layer INTEGER NOT NULL, n_heads INTEGER NOT NULL, q0 INTEGER NOT NULL, n_q INTEGER NOT NULL,"
    "  dtype TEXT NOT NULL CHECK(dtype IN ('f32','f16','bf16')), file_id INTEGER NOT NULL REFERENCES tensor_files(id),"
    "  offset INTEGER NOT NULL, nbytes INTEGER NOT NULL);"
    "CREATE INDEX attention_lookup ON attention(run_id, layer, q0);"
    "CREATE TABLE labels(run_id INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value,"
    "  PRIMARY KEY(run_id, key)) WITHOUT ROWID;",
    // v2: probes and named analyses for plots
    "CREATE TABLE probes(id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, hook TEXT, positions TEXT,"
    "  params TEXT, weights BLOB, created REAL NOT NULL);"
    "CREATE TABLE probe_outputs(probe_id INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id), pos INTEGER NOT NULL, value REAL,"
    "  PRIMARY KEY(probe_id, run_id, pos)) WITHOUT ROWID;"
    "CREATE TABLE analyses(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, created REAL NOT NULL,"
    "  params TEXT);"
    "CREATE TABLE analysis_rows(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
    "  series TEXT NOT NULL, x REAL, y REAL, lo REAL, hi REAL);"
    "CREATE INDEX analysis_rows_by_id ON analysis_rows(analysis_id, series, x);"
    "CREATE TABLE analysis_matrices(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, n_rows INTEGER NOT NULL, n_cols INTEGER NOT NULL, data BLOB NOT NULL,"
    "  PRIMARY KEY(analysis_id, name));",
    // v3: generated text as raw bytes (BLOB) plus a valid UTF-8 display form (TEXT): a byte-level
    // token is often part of a character, and TEXT holding invalid UTF-8 broke readers
    "ALTER TABLE tokens ADD COLUMN piece_bytes BLOB;"
    "ALTER TABLE runs ADD COLUMN text_bytes BLOB;"
    "UPDATE tokens SET piece_bytes=CAST(piece AS BLOB), piece=pl_display(CAST(piece AS BLOB)) WHERE piece IS NOT NULL;"
    "UPDATE runs SET text_bytes=CAST(text AS BLOB), text=pl_display(CAST(text AS BLOB)) WHERE text IS NOT NULL;"
    "UPDATE labels SET value=pl_display(CAST(value AS BLOB)) WHERE typeof(value)='text';",
};

const char *store_migration_sql(int v) {
    return v >= 1 && v <= PL_STORE_SCHEMA_VERSION ? migrations[v - 1] : NULL;
}

// ---- errors and small helpers ----------------------------------------------------------------

static void store_record(pl_store *s, pl_status code, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (s) snprintf(s->err, sizeof s->err, "%s", msg);
    if (s) s->err_code = code;
    pl_fail_code(code, "%s", msg);
}

int store_fail(pl_store *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    store_record(s, PL_ERROR, fmt, ap);
    va_end(ap);
    return -1;
}

int store_fail_code(pl_store *s, pl_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    store_record(s, code, fmt, ap);
    va_end(ap);
    return (int)code;
}

int store_sql_fail(pl_store *s, sqlite3 *db, const char *what) {
    int code = sqlite3_extended_errcode(db), primary = code & 0xff;
    const char *hint = "";
    if (primary == SQLITE_READONLY) hint = " (the store is read-only)";
    if (primary == SQLITE_FULL) hint = " (disk full)";
    if (primary == SQLITE_BUSY) hint = " (locked by another process)";
    pl_status status = PL_ERROR;
    switch (primary) {
    case SQLITE_NOTADB: case SQLITE_CORRUPT: status = PL_ERR_CORRUPT; break;
    case SQLITE_NOMEM: status = PL_ERR_NOMEM; break;
    case SQLITE_READONLY: case SQLITE_FULL: case SQLITE_BUSY: case SQLITE_CANTOPEN: case SQLITE_IOERR: case SQLITE_PERM:
        status = PL_ERR_IO;
        break;
    }
    store_fail_code(s, status, "%s: %s: %s%s", s->path, what, sqlite3_errmsg(db), hint);
    return -1;
}

const char *pl_store_errmsg(const pl_store *s) { return s ? s->err : pl_errmsg(); }
const char *pl_store_path(const pl_store *s) { return s->path; }
int pl_store_schema_version(const pl_store *s) { return s->version; }

double store_unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *pl_dtype_name(pl_dtype t) { return t == PL_DTYPE_F16 ? "f16" : t == PL_DTYPE_BF16 ? "bf16" : "f32"; }
size_t pl_dtype_size(pl_dtype t) { return t == PL_DTYPE_F32 ? 4 : 2; }
int pl_dtype_parse(const char *name, pl_dtype *out) {
    if (!name) return pl_fail("dtype: missing value (f32, f16 or bf16)");
    if (strcmp(name, "f32") == 0 || strcmp(name, "float32") == 0) *out = PL_DTYPE_F32;
    else if (strcmp(name, "f16") == 0 || strcmp(name, "float16") == 0) *out = PL_DTYPE_F16;
    else if (strcmp(name, "bf16") == 0 || strcmp(name, "bfloat16") == 0) *out = PL_DTYPE_BF16;
    else return pl_fail("dtype '%s': expected f32, f16 or bf16", name);
    return 0;
}

// Conversions run on every recorded row, so where the CPU has AVX2 + F16C (pl_simd_level_get(),
// whatever the build targets) 8 values go at a time; the scalar kernels/ conversions handle the
// tails and the rest, and are the reference in tests (same bits).
#ifdef PL_SIMD_X86
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
static size_t f16_to_f32_avx2(float *out, const uint16_t *h, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return i;
}

static size_t f32_to_f16_avx2(uint16_t *o, const float *in, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(o + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return i;
}

static size_t f32_to_bf16_avx2(uint16_t *o, const float *in, size_t n) {
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), absmask = _mm256_set1_epi32(0x7fffffff),
                  inf = _mm256_set1_epi32(0x7f800000), quiet = _mm256_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(in + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
        __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(bias, lsb)), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, absmask), inf);
        __m256i nan_val = _mm256_or_si256(_mm256_srli_epi32(bits, 16), quiet);
        __m256i v = _mm256_blendv_epi8(rounded, nan_val, nan);
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);  // lanes 0 and 2
        _mm_storeu_si128((__m128i *)(o + i), _mm256_castsi256_si128(packed));
    }
    return i;
}
#pragma GCC pop_options
#define SIMD_PART(call) (pl_simd_level_get() >= PL_SIMD_AVX2 ? (call) : 0)
#else
#define SIMD_PART(call) 0
#endif

void store_to_f32(float *out, const void *in, pl_dtype t, size_t n) {
    size_t i = 0;
    if (t == PL_DTYPE_F32) {
        memcpy(out, in, n * sizeof(float));
    } else if (t == PL_DTYPE_F16) {
        const uint16_t *h = in;
        for (i = SIMD_PART(f16_to_f32_avx2(out, h, n)); i < n; i++) out[i] = pl_f16_to_f32(h[i]);
    } else {
        for (; i < n; i++) out[i] = pl_bf16_to_f32(((const uint16_t *)in)[i]);
    }
}

void store_from_f32(void *out, const float *in, pl_dtype t, size_t n) {
    size_t i = 0;
    uint16_t *o = out;
    if (t == PL_DTYPE_F32) {
        memcpy(out, in, n * sizeof(float));
    } else if (t == PL_DTYPE_F16) {
        for (i = SIMD_PART(f32_to_f16_avx2(o, in, n)); i < n; i++) o[i] = pl_f32_to_f16(in[i]);
    } else {
        for (i = SIMD_PART(f32_to_bf16_avx2(o, in, n)); i < n; i++) o[i] = pl_f32_to_bf16(in[i]);
    }
}

const char *pl_segment_name(pl_segment seg) {
    return seg == PL_SEG_PROMPT ? "prompt" : seg == PL_SEG_COT ? "cot" : "answer";
}

static pl_segment segment_parse(const char *name) {
    if (name && strcmp(name, "cot") == 0) return PL_SEG_COT;
    if (name && strcmp(name, "answer") == 0) return PL_SEG_ANSWER;
    return PL_SEG_PROMPT;
}

void pl_strings_free(char **strings, int n) {
    if (!strings) return;
    for (int i = 0; i < n; i++) free(strings[i]);
    free(strings);
}

// Run one statement with no result rows; text parameters bound in order (NULL binds NULL).
static int exec_params(pl_store *s, const char *sql, int n, const char *const *params) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "prepare");
    for (int i = 0; i < n; i++) sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sql_fail(s, s->db, sql);
}

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

// ---- open / close --------------------------------------------------------------------------

// pl_display(x): the display form of x's bytes (pl_utf8_display), NULL for NULL.
static void sql_display(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
    const char *bytes = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    char *out = sqlite3_malloc64(4 * (sqlite3_uint64)n + 1);
    if (!out) return sqlite3_result_error_nomem(ctx);
    size_t len = pl_utf8_display(out, 4 * n + 1, bytes ? bytes : "", n);
    sqlite3_result_text(ctx, out, (int)len, sqlite3_free);
}

static int configure_connection(sqlite3 *db, bool writable) {
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_create_function(db, "pl_display", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_display, NULL, NULL) !=
        SQLITE_OK)
        return -1;
    if (writable && sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    return sqlite3_exec(db, "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int store_open_connection(pl_store *s, sqlite3 **db) {
    if (sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        configure_connection(*db, true) != 0) {
        store_sql_fail(s, *db, "open writer connection");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

// A non-empty file must start with SQLite's magic before we hand it to SQLite (which would
// otherwise report "file is not a database" only at the first statement).
static int check_sqlite_header(pl_store *s, bool *exists) {
    struct stat st;
    *exists = stat(s->path, &st) == 0;
    if (!*exists) return 0;
    if (S_ISDIR(st.st_mode))
        return store_fail_code(s, PL_ERR_FORMAT, "%s: not a probelab store (it is a directory)", s->path);
    if (st.st_size == 0) return 0;
    FILE *f = fopen(s->path, "rb");
    if (!f) return store_fail_code(s, PL_ERR_IO, "%s: cannot open: %s", s->path, strerror(errno));
    char magic[16] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got < 16 || memcmp(magic, "SQLite format 3", 16) != 0)
        return store_fail_code(s, PL_ERR_FORMAT, "%s: not a probelab store (not a SQLite database)", s->path);
    return 0;
}

static int take_writer_lock(pl_store *s) {
    if (mkdir(s->tensor_dir, 0777) != 0 && errno != EEXIST)
        return store_fail_code(s, PL_ERR_IO, "%s: cannot create the tensor folder: %s", s->tensor_dir, strerror(errno));
    char lock_path[1200];
    snprintf(lock_path, sizeof lock_path, "%s/writer.lock", s->tensor_dir);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (s->lock_fd < 0) {
        int e = errno;
        if (e == EROFS || e == EACCES || e == EPERM)
            return store_fail_code(s, PL_ERR_IO, "%s: the store is read-only (%s)", s->path, strerror(e));
        return store_fail_code(s, PL_ERR_IO, "%s: cannot create the writer lock: %s", lock_path, strerror(e));
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t got = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        if (got > 0) pid[got] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return store_fail(s, "%s: locked by another writer (pid %s); one writer at a time, readers are fine", s->path, pid);
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, buf, (size_t)len, 0) != len) {
        // The pid is informational only; the flock is what excludes other writers.
    }
    return 0;
}

static int migrate(pl_store *s, int from) {
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "begin migration");
    for (int v = from + 1; v <= PL_STORE_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(s->db, migrations[v - 1], NULL, NULL, NULL) != SQLITE_OK) {
            store_sql_fail(s, s->db, "schema migration");
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    char sql[96];
    // PRAGMA values cannot be bound as parameters; these are our own integer constants.
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;", PL_STORE_APPLICATION_ID,
             PL_STORE_SCHEMA_VERSION);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        store_sql_fail(s, s->db, "schema migration");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int pl_store_open(pl_store **out, const char *path, pl_store_mode mode) {
    *out = NULL;
    pl_error_clear();
    pl_store *s = calloc(1, sizeof *s);
    if (!s) return pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
    s->lock_fd = -1;
    s->mode = mode;
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->tensor_dir, sizeof s->tensor_dir, "%s-tensors", path);
    bool exists;
    if (check_sqlite_header(s, &exists) != 0) goto fail;
    if (!exists && mode == PL_STORE_READ) {
        store_fail_code(s, PL_ERR_NOT_FOUND, "%s: no such store", path);
        goto fail;
    }
    if (mode == PL_STORE_WRITE) {
        if (!exists) {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
            if (fd < 0 && errno != EEXIST) {
                store_fail_code(s, PL_ERR_IO, "%s: cannot create the store: %s", path, strerror(errno));
                goto fail;
            }
            if (fd >= 0) close(fd);
        } else if (access(path, W_OK) != 0) {
            store_fail_code(s, PL_ERR_IO, "%s: the store is read-only (%s)", path, strerror(errno));
            goto fail;
        }
        if (take_writer_lock(s) != 0) goto fail;
    }
    int flags = (mode == PL_STORE_WRITE ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        store_sql_fail(s, s->db, "open");
        goto fail;
    }
    if (configure_connection(s->db, mode == PL_STORE_WRITE) != 0) {
        store_sql_fail(s, s->db, "configure");
        goto fail;
    }
    int app_id = 0, version = 0, n_tables = 0;
    if (pragma_int(s->db, "PRAGMA application_id", &app_id) != 0 || pragma_int(s->db, "PRAGMA user_version", &version) != 0 ||
        pragma_int(s->db, "SELECT count(*) FROM sqlite_schema", &n_tables) != 0) {
        int code = sqlite3_errcode(s->db);
        if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
            store_fail_code(s, PL_ERR_FORMAT, "%s: not a probelab store (%s)", path, sqlite3_errmsg(s->db));
        else
            store_sql_fail(s, s->db, "read the schema version");
        goto fail;
    }
    bool fresh = app_id == 0 && version == 0 && n_tables == 0;
    if (!fresh && app_id != PL_STORE_APPLICATION_ID) {
        store_fail_code(s, PL_ERR_FORMAT, "%s: not a probelab store (a SQLite database with other tables)", path);
        goto fail;
    }
    if (version > PL_STORE_SCHEMA_VERSION) {
        store_fail_code(s, PL_ERR_FORMAT,
                        "%s: store schema version %d is newer than this probelab supports (%d); use a newer probelab",
                        path, version, PL_STORE_SCHEMA_VERSION);
        goto fail;
    }
    if (version < PL_STORE_SCHEMA_VERSION) {
        if (mode != PL_STORE_WRITE) {
            if (fresh) {
                store_fail_code(s, PL_ERR_FORMAT, "%s: empty file, not a probelab store", path);
                goto fail;
            }
            // Readers of an older store see only the tables it has; open it for writing to migrate.
        } else if (migrate(s, version) != 0) {
            goto fail;
        } else {
            version = PL_STORE_SCHEMA_VERSION;
        }
    }
    s->version = version;
    if (mode == PL_STORE_WRITE) {
        // The lock is ours, so any run still 'running' belongs to a writer that died.
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "UPDATE runs SET status='aborted' WHERE status='running'", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            store_sql_fail(s, s->db, "mark interrupted runs");
            goto fail;
        }
        sqlite3_finalize(st);
    }
    *out = s;
    return 0;
fail:;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", s->err);
    pl_status code = s->err_code != PL_OK ? s->err_code : PL_ERROR;
    pl_store_close(s);
    return pl_fail_code(code, "%s", msg);
}

void pl_store_close(pl_store *s) {
    if (!s) return;
    sqlite3_finalize(s->lookup_rows);
    if (s->db) sqlite3_close(s->db);
    for (int i = 0; i < s->n_file_fds; i++)
        if (s->file_fds[i] >= 0) close(s->file_fds[i]);
    free(s->file_fds);
    if (s->lock_fd >= 0) close(s->lock_fd);  // releases the flock
    free(s);
}

int store_tensor_fd(pl_store *s, int64_t file_id) {
    if (file_id <= 0 || file_id > 1000000) return store_fail(s, "%s: bad tensor file id %lld", s->path, (long long)file_id);
    if (file_id >= s->n_file_fds) {
        int n = (int)file_id + 8;
        int *fds = realloc(s->file_fds, sizeof(int) * (size_t)n);
        if (!fds) return store_fail(s, "%s: out of memory", s->path);
        for (int i = s->n_file_fds; i < n; i++) fds[i] = -1;
        s->file_fds = fds;
        s->n_file_fds = n;
    }
    if (s->file_fds[file_id] >= 0) return s->file_fds[file_id];
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT path FROM tensor_files WHERE id=?1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "tensor file");
    sqlite3_bind_int64(st, 1, file_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return store_fail(s, "%s: tensor file %lld is not registered", s->path, (long long)file_id);
    }
    // A file name inside the tensor folder, never a path out of it.
    const char *name = store_column_text(st, 0);
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        char shown[64];
        snprintf(shown, sizeof shown, "%s", name);
        sqlite3_finalize(st);
        return store_corrupt(s, "tensor_files", file_id, "path '%s' is not a file name in %s", shown, s->tensor_dir);
    }
    char full[2400];
    snprintf(full, sizeof full, "%s/%s", s->tensor_dir, name);
    sqlite3_finalize(st);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return store_fail(s, "%s: cannot open tensor file: %s", full, strerror(errno));
    s->file_fds[file_id] = fd;
    return fd;
}

// ---- metadata ------------------------------------------------------------------------------

int pl_store_begin(pl_store *s) {
    return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : store_sql_fail(s, s->db, "begin");
}
int pl_store_commit(pl_store *s) {
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return 0;
    store_sql_fail(s, s->db, "commit");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}
void pl_store_rollback(pl_store *s) {
    if (s && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

// Insert-or-find by a unique text key: returns the id of the row whose `key_col` equals key.
static int find_id(pl_store *s, const char *sql, const char *key, int64_t *id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "prepare");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "lookup");
}

int pl_store_put_model(pl_store *s, const char *name, const char *file, const char *sha256_hex, const char *config_json,
                       int64_t *id) {
    int found = find_id(s, "SELECT id FROM models WHERE sha256=?1", sha256_hex, id);
    if (found < 0) return -1;
    if (found) {  // the same model traced again, maybe from elsewhere: remember where it is now
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "UPDATE models SET file=?1 WHERE id=?2", -1, &st, NULL) != SQLITE_OK)
            return store_sql_fail(s, s->db, "prepare");
        sqlite3_bind_text(st, 1, file, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, *id);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "update model");
    }
    const char *p[] = {name, file, sha256_hex, config_json ? config_json : "{}"};
    if (exec_params(s, "INSERT INTO models(name, file, sha256, config) VALUES(?1, ?2, ?3, ?4)", 4, p) != 0) return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int pl_store_put_dataset(pl_store *s, const char *name, const char *file, const char *sha256_hex, int n_examples,
                         int64_t *id) {
    int found = find_id(s, "SELECT id FROM datasets WHERE sha256=?1", sha256_hex, id);
    if (found != 0) return found < 0 ? -1 : 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO datasets(name, file, sha256, n_examples, created) VALUES(?1, ?2, ?3, ?4, ?5)", -1,
                           &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "prepare");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, sha256_hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, n_examples);
    sqlite3_bind_double(st, 5, store_unix_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "insert dataset");
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int pl_store_put_example(pl_store *s, int64_t dataset_id, int idx, const pl_store_example *e, int64_t *id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM examples WHERE dataset_id=?1 AND idx=?2", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "prepare");
    sqlite3_bind_int64(st, 1, dataset_id);
    sqlite3_bind_int(st, 2, idx);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "lookup example");
    char *options = NULL;
    if (e->n_options > 0) {
        json_t *a = json_array();
        for (int i = 0; i < e->n_options; i++) json_array_append_new(a, json_string(e->options[i] ? e->options[i] : ""));
        options = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    }
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO examples(dataset_id, idx, ext_id, task, prompt, cot, answer, options, difficulty,"
                           " meta) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &st, NULL) != SQLITE_OK) {
        free(options);
        return store_sql_fail(s, s->db, "prepare");
    }
    sqlite3_bind_int64(st, 1, dataset_id);
    sqlite3_bind_int(st, 2, idx);
    sqlite3_bind_text(st, 3, e->ext_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, e->task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, e->prompt ? e->prompt : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, e->cot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, e->answer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, options, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 9, e->difficulty);
    sqlite3_bind_text(st, 10, e->meta_json ? e->meta_json : "{}", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(options);
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "insert example");
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int pl_store_run_done(pl_store *s, int64_t model_id, int64_t example_id, const char *params_json, bool *done) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT 1 FROM runs WHERE example_id=?1 AND model_id=?2 AND status='complete' AND params=?3 LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "prepare");
    sqlite3_bind_int64(st, 1, example_id);
    sqlite3_bind_int64(st, 2, model_id);
    sqlite3_bind_text(st, 3, params_json, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sql_fail(s, s->db, "resume check");
    *done = rc == SQLITE_ROW;
    return 0;
}

// ---- models --------------------------------------------------------------------------------

static const char model_select[] =
    "SELECT m.id, m.name, m.file, m.sha256, m.config, (SELECT count(*) FROM runs WHERE model_id=m.id) FROM models m";

static void model_from_row(sqlite3_stmt *st, pl_model_info *m) {
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    const char *v = (const char *)sqlite3_column_text(st, 1);
    snprintf(m->name, sizeof m->name, "%s", v ? v : "");
    v = (const char *)sqlite3_column_text(st, 2);
    snprintf(m->path, sizeof m->path, "%s", v ? v : "");
    v = (const char *)sqlite3_column_text(st, 3);
    snprintf(m->sha256, sizeof m->sha256, "%s", v ? v : "");
    v = (const char *)sqlite3_column_text(st, 4);
    json_t *config = v ? json_loads(v, 0, NULL) : NULL;
    json_t *d = json_object_get(config, "d_model"), *l = json_object_get(config, "n_layers");
    m->d_model = json_is_integer(d) ? (int)json_integer_value(d) : 0;
    m->n_layers = json_is_integer(l) ? (int)json_integer_value(l) : 0;
    json_decref(config);
    m->n_runs = sqlite3_column_int64(st, 5);
}

int pl_store_list_models(pl_store *s, pl_model_info **models, int *n) {
    *models = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql, "%s ORDER BY m.id", model_select);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "list models");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            pl_model_info *grown = realloc(*models, sizeof **models * (size_t)cap);
            if (!grown) {
                sqlite3_finalize(st);
                free(*models);
                *models = NULL;
                *n = 0;
                return store_fail(s, "%s: out of memory listing models", s->path);
            }
            *models = grown;
        }
        model_from_row(st, &(*models)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*models);
        *models = NULL;
        *n = 0;
        return store_sql_fail(s, s->db, "list models");
    }
    return 0;
}

// "1 probelab-cot.gguf, 2 tiny" (truncated with "..." to fit).
static void model_names(const pl_model_info *m, int n, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len + 8 < size; i++) {
        int w = snprintf(buf + len, size - len, "%s%lld %s", i ? ", " : "", (long long)m[i].id, m[i].name);
        if (w < 0 || (size_t)w >= size - len) {
            snprintf(buf + (size > 4 ? size - 4 : 0), 4, "...");
            return;
        }
        len += (size_t)w;
    }
}

int pl_store_get_model(pl_store *s, int64_t model_id, pl_model_info *out) {
    pl_model_info *models;
    int n;
    if (pl_store_list_models(s, &models, &n) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (models[i].id == model_id) {
            *out = models[i];
            free(models);
            return 0;
        }
    char names[512];
    model_names(models, n, names, sizeof names);
    free(models);
    return store_fail(s, "%s: model %lld does not exist (models: %s)", s->path, (long long)model_id, n ? names : "none");
}

int pl_store_resolve_model(pl_store *s, int64_t requested, int64_t *model_id) {
    *model_id = 0;
    pl_model_info *models;
    int n;
    if (pl_store_list_models(s, &models, &n) != 0) return -1;
    char names[512];
    model_names(models, n, names, sizeof names);
    int rc = 0;
    if (requested > 0) {
        int i = 0;
        while (i < n && models[i].id != requested) i++;
        if (i < n) *model_id = requested;
        else rc = store_fail(s, "%s: --model-id %lld: no such model (models: %s)", s->path, (long long)requested,
                             n ? names : "none");
    } else if (n == 1) {
        *model_id = models[0].id;
    } else if (n > 1) {
        rc = store_fail(s, "%s: holds %d models (%s); choose one with --model-id N (probelab runs %s --models)", s->path, n,
                        names, s->path);
    }
    free(models);
    return rc;
}

int pl_store_model_file(pl_store *s, int64_t model_id, const char *relocated, char *out, size_t out_size) {
    pl_model_info m;
    if (pl_store_get_model(s, model_id, &m) != 0) return -1;
    const char *path = relocated ? relocated : m.path;
    if (!path[0]) return store_fail(s, "%s: model %lld (%s) has no recorded path; pass --model PATH", s->path, (long long)m.id, m.name);
    pl_model_identity id;
    if (pl_model_identify(path, &id) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", pl_errmsg());
        return store_fail(s, "%s: model %lld (%s): %s%s", s->path, (long long)m.id, m.name, why,
                          relocated ? "" : "; pass --model PATH if it moved");
    }
    if (strcmp(id.sha256, m.sha256) != 0)
        return store_fail(s, "%s: sha256 %.12s... is not model %lld (%s) of %s, traced with sha256 %.12s...", path, id.sha256,
                          (long long)m.id, m.name, s->path, m.sha256);
    if (strlen(id.path) >= out_size) return store_fail(s, "%s: path too long", id.path);
    snprintf(out, out_size, "%s", id.path);
    return 0;
}

// ---- runs, tokens, labels ------------------------------------------------------------------

pl_run_filter pl_run_filter_any(void) { return (pl_run_filter){.correct = -1}; }
pl_run_filter pl_run_filter_complete(void) { return (pl_run_filter){.status = "complete", .correct = -1}; }

static const char run_select[] =
    "SELECT r.id, r.model_id, r.example_id, r.status, e.task, e.difficulty, r.n_prompt, r.n_tokens,"
    " (SELECT value FROM labels WHERE run_id=r.id AND key='correct'),"
    " (SELECT value FROM labels WHERE run_id=r.id AND key='answer'), r.started, r.finished, substr(e.prompt, 1, 200)"
    " FROM runs r LEFT JOIN examples e ON e.id = r.example_id";

// The WHERE clause of a pl_run_filter: ?1 status, ?2 task, ?3 model, ?4 correct, ?5 LIKE pattern
// of the text, ?6 the text itself (a run id); ?7 limit and ?8 offset are bound for callers that page.
static const char run_where[] =
    " WHERE (?1 IS NULL OR r.status=?1) AND (?2 IS NULL OR e.task=?2) AND (?3=0 OR r.model_id=?3)"
    " AND (?4<0 OR (SELECT value FROM labels WHERE run_id=r.id AND key='correct')=?4)"
    " AND (?5 IS NULL OR e.prompt LIKE ?5 ESCAPE '\\' OR r.text LIKE ?5 ESCAPE '\\' OR e.answer LIKE ?5 ESCAPE '\\'"
    "      OR CAST(r.id AS TEXT)=?6)";

static const char *nonempty(const char *text) { return text && text[0] ? text : NULL; }

// Prepare head + run_where + tail with f bound (NULL f = every run).
static int prepare_run_query(pl_store *s, sqlite3_stmt **st, const char *head, const char *tail, const pl_run_filter *f,
                             const char *what) {
    pl_run_filter any = pl_run_filter_any();
    if (!f) f = &any;
    size_t len = strlen(head) + strlen(run_where) + strlen(tail) + 1;
    char *sql = malloc(len);
    if (!sql) return store_fail(s, "%s: out of memory", s->path);
    snprintf(sql, len, "%s%s%s", head, run_where, tail);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    free(sql);
    if (rc != SQLITE_OK) return store_sql_fail(s, s->db, what);
    sqlite3_bind_text(*st, 1, nonempty(f->status), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*st, 2, nonempty(f->task), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(*st, 3, f->model_id);
    sqlite3_bind_int(*st, 4, f->correct);
    const char *text = nonempty(f->text);
    if (text) {
        // %text% with LIKE's own wildcards in the text escaped: the user searches for characters.
        size_t n = strlen(text);
        char *like = malloc(2 * n + 3), *p = like;
        if (!like) {
            sqlite3_finalize(*st);
            *st = NULL;
            return store_fail(s, "%s: out of memory", s->path);
        }
        *p++ = '%';
        for (const char *c = text; *c; c++) {
            if (*c == '%' || *c == '_' || *c == '\\') *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '%';
        *p = '\0';
        sqlite3_bind_text(*st, 5, like, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(*st, 6, text, -1, SQLITE_TRANSIENT);
        free(like);
    }
    if (sqlite3_bind_parameter_count(*st) >= 8) {
        sqlite3_bind_int(*st, 7, f->limit > 0 ? f->limit : -1);
        sqlite3_bind_int(*st, 8, f->offset > 0 ? f->offset : 0);
    }
    return 0;
}

static void run_from_row(sqlite3_stmt *st, pl_run_info *r) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->model_id = sqlite3_column_int64(st, 1);
    r->example_id = sqlite3_column_int64(st, 2);
    snprintf(r->status, sizeof r->status, "%s", store_column_text(st, 3));
    const char *task = (const char *)sqlite3_column_text(st, 4);
    snprintf(r->task, sizeof r->task, "%s", task ? task : "");
    r->difficulty = sqlite3_column_int(st, 5);
    r->n_prompt = sqlite3_column_int(st, 6);
    r->n_tokens = sqlite3_column_int(st, 7);
    r->correct = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 8);
    const char *answer = (const char *)sqlite3_column_text(st, 9);
    snprintf(r->answer, sizeof r->answer, "%s", answer ? answer : "");
    r->started = sqlite3_column_double(st, 10);
    r->finished = sqlite3_column_double(st, 11);
    const char *prompt = (const char *)sqlite3_column_text(st, 12);
    snprintf(r->preview, sizeof r->preview, "%s", prompt ? prompt : "");
    for (char *p = r->preview; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r') *p = ' ';
}

// The run's counts within the schema's bounds (callers index tokens with n_prompt).
static int run_check(pl_store *s, sqlite3_stmt *st, const pl_run_info *r) {
    int64_t n_prompt = sqlite3_column_int64(st, 6), n_tokens = sqlite3_column_int64(st, 7);
    if (n_prompt < 0 || n_prompt > PL_STORE_MAX_POSITIONS)
        return store_corrupt(s, "runs", r->id, "n_prompt %lld out of range 0..%d", (long long)n_prompt, PL_STORE_MAX_POSITIONS);
    if (n_tokens < 0 || n_tokens > PL_STORE_MAX_POSITIONS)
        return store_corrupt(s, "runs", r->id, "n_tokens %lld out of range 0..%d", (long long)n_tokens, PL_STORE_MAX_POSITIONS);
    if (strcmp(r->status, "complete") == 0 && n_prompt > n_tokens)
        return store_corrupt(s, "runs", r->id, "n_prompt %lld is more than n_tokens %lld", (long long)n_prompt,
                             (long long)n_tokens);
    return 0;
}

int pl_store_list_runs(pl_store *s, const pl_run_filter *f, pl_run_info **runs, int *n) {
    *runs = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare_run_query(s, &st, run_select, " ORDER BY r.id LIMIT ?7 OFFSET ?8", f, "list runs") != 0) return -1;
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            pl_run_info *grown = realloc(*runs, sizeof **runs * (size_t)cap);
            if (!grown) {
                sqlite3_finalize(st);
                free(*runs);
                *runs = NULL;
                *n = 0;
                return store_fail(s, "%s: out of memory listing runs", s->path);
            }
            *runs = grown;
        }
        run_from_row(st, &(*runs)[*n]);
        if (run_check(s, st, &(*runs)[(*n)++]) != 0) {
            sqlite3_finalize(st);
            free(*runs);
            *runs = NULL;
            *n = 0;
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*runs);
        *runs = NULL;
        *n = 0;
        return store_sql_fail(s, s->db, "list runs");
    }
    return 0;
}

int pl_store_get_run(pl_store *s, int64_t run_id, pl_run_info *out) {
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE r.id=?1", run_select);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "get run");
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        run_from_row(st, out);
        if (run_check(s, st, out) != 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return store_fail(s, "%s: run %lld does not exist", s->path, (long long)run_id);
    return rc == SQLITE_ROW ? 0 : store_sql_fail(s, s->db, "get run");
}

int pl_store_get_runs(pl_store *s, const int64_t *ids, int n, pl_run_info *out) {
    for (int i = 0; i < n; i++) out[i].id = -1;
    if (n <= 0) return 0;
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE r.id=?1", run_select);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return store_sql_fail(s, s->db, "get runs");
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            run_from_row(st, &out[i]);
            if (run_check(s, st, &out[i]) != 0) {
                sqlite3_finalize(st);
                return -1;
            }
        } else if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return store_sql_fail(s, s->db, "get runs");
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int pl_store_count_runs(pl_store *s, const pl_run_filter *f, int64_t *n, int64_t *n_correct, int64_t *n_incorrect) {
    *n = 0;
    if (n_correct) *n_correct = 0;
    if (n_incorrect) *n_incorrect = 0;
    pl_run_filter all = f ? *f : pl_run_filter_any();
    all.limit = all.offset = 0;
    sqlite3_stmt *st;
    if (prepare_run_query(s, &st,
                          "SELECT count(*), coalesce(sum(c IS NOT NULL AND c<>0), 0), coalesce(sum(c IS NOT NULL AND c=0), 0)"
                          " FROM (SELECT (SELECT value FROM labels WHERE run_id=r.id AND key='correct') AS c"
                          " FROM runs r LEFT JOIN examples e ON e.id = r.example_id",
                          ")", &all, "count runs") != 0)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        if (n_correct) *n_correct = sqlite3_column_int64(st, 1);
        if (n_incorrect) *n_incorrect = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_sql_fail(s, s->db, "count runs");
}

int pl_store_run_ids(pl_store *s, const pl_run_filter *f, int64_t **ids, int64_t *n, int64_t *n_correct,
                     int64_t *n_incorrect) {
    *ids = NULL;
    *n = 0;
    int64_t good = 0, bad = 0, cap = 0;
    sqlite3_stmt *st;
    if (prepare_run_query(s, &st,
                          "SELECT r.id, (SELECT value FROM labels WHERE run_id=r.id AND key='correct')"
                          " FROM runs r LEFT JOIN examples e ON e.id = r.example_id",
                          " ORDER BY r.id LIMIT ?7 OFFSET ?8", f, "list run ids") != 0)
        return -1;
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
                return store_fail(s, "%s: out of memory listing runs", s->path);
            }
            *ids = grown;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            if (sqlite3_column_int(st, 1)) good++;
            else bad++;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return store_sql_fail(s, s->db, "list run ids");
    }
    if (n_correct) *n_correct = good;
    if (n_incorrect) *n_incorrect = bad;
    return 0;
}

int pl_store_get_tokens(pl_store *s, int64_t run_id, pl_token_row **tokens, int *n) {
    *tokens = NULL;
    *n = 0;
    pl_run_info info;
    if (pl_store_get_run(s, run_id, &info) != 0) return -1;
    sqlite3_stmt *st;
    // The raw bytes: piece_bytes since schema 3; an older store's TEXT piece holds them.
    if (sqlite3_prepare_v2(s->db,
                           s->version >= 3
                               ? "SELECT pos, token_id, piece_bytes, segment, logprob, entropy FROM tokens WHERE run_id=?1 ORDER BY pos"
                               : "SELECT pos, token_id, CAST(piece AS BLOB), segment, logprob, entropy FROM tokens WHERE run_id=?1"
                                 " ORDER BY pos",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "tokens");
    sqlite3_bind_int64(st, 1, run_id);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            pl_token_row *grown = realloc(*tokens, sizeof **tokens * (size_t)cap);
            if (!grown) break;
            *tokens = grown;
        }
        // Callers index tokens by position: positions must be 0, 1, 2, ... and ids non-negative.
        int64_t pos = sqlite3_column_int64(st, 0), id = sqlite3_column_int64(st, 1);
        if (pos != *n || id < 0 || id > INT32_MAX) {
            int want = *n;
            sqlite3_finalize(st);
            free(*tokens);
            *tokens = NULL;
            *n = 0;
            return pos != want ? store_fail_code(s, PL_ERR_CORRUPT, "%s: store corrupt: tokens of run %lld: position %lld where %d was expected",
                                          s->path, (long long)run_id, (long long)pos, want)
                             : store_fail_code(s, PL_ERR_CORRUPT, "%s: store corrupt: tokens of run %lld: position %lld has token_id %lld", s->path,
                                          (long long)run_id, (long long)pos, (long long)id);
        }
        pl_token_row *t = &(*tokens)[(*n)++];
        t->id = (int32_t)id;
        const char *piece = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (len > sizeof t->piece - 1) len = sizeof t->piece - 1;
        if (piece) memcpy(t->piece, piece, len);
        t->piece[piece ? len : 0] = '\0';
        pl_utf8_display(t->display, sizeof t->display, t->piece, strlen(t->piece));
        t->segment = segment_parse((const char *)sqlite3_column_text(st, 3));
        t->logprob = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : (float)sqlite3_column_double(st, 4);
        t->entropy = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : (float)sqlite3_column_double(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || (*n > 0 && *n != info.n_tokens)) {
        int count = *n;
        free(*tokens);
        *tokens = NULL;
        *n = 0;
        if (rc == SQLITE_DONE)
            return store_corrupt(s, "runs", run_id, "n_tokens %d, but the run has %d token rows", info.n_tokens, count);
        return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory reading tokens", s->path) : store_sql_fail(s, s->db, "tokens");
    }
    return 0;
}

int pl_store_put_label(pl_store *s, int64_t run_id, const char *key, const char *text, double num, bool is_text) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO labels(run_id, key, value) VALUES(?1, ?2, " STORE_LABEL_VALUE_SQL(3) ")",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "put label");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    if (is_text) sqlite3_bind_blob(st, 3, text ? text : "", text ? (int)strlen(text) : 0, SQLITE_TRANSIENT);
    else if (num == floor(num) && fabs(num) < 9e15) sqlite3_bind_int64(st, 3, (sqlite3_int64)num);
    else sqlite3_bind_double(st, 3, num);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "put label");
}

int pl_store_get_label(pl_store *s, int64_t run_id, const char *key, char *buf, size_t buf_size) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM labels WHERE run_id=?1 AND key=?2", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "get label");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(buf, buf_size, "%s", v ? v : "");
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, s->db, "get label");
}

int pl_store_list_labels(pl_store *s, int64_t run_id, char ***keys, char ***values, int *n) {
    *keys = *values = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, value FROM labels WHERE run_id=?1 ORDER BY key", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "labels");
    sqlite3_bind_int64(st, 1, run_id);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **k = realloc(*keys, sizeof(char *) * (size_t)cap), **v = realloc(*values, sizeof(char *) * (size_t)cap);
            if (k) *keys = k;
            if (v) *values = v;
            if (!k || !v) break;
        }
        (*keys)[*n] = strdup(store_column_text(st, 0));
        (*values)[*n] = strdup(store_column_text(st, 1));
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return 0;
    // A failed step (a corrupt page, say) leaves nothing for the caller to free.
    pl_strings_free(*keys, *n);
    pl_strings_free(*values, *n);
    *keys = *values = NULL;
    *n = 0;
    return store_sql_fail(s, s->db, "labels");
}
