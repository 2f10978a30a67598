// Internals shared by the store's files (not for callers outside runtime/store/).
#ifndef PL_STORE_INTERNAL_H
#define PL_STORE_INTERNAL_H

#include <sqlite3.h>

#include "runtime/base/error.h"
#include "runtime/store/store.h"

#define PL_STORE_APPLICATION_ID 0x706c6162  // 'plab'

struct pl_store {
    sqlite3 *db;
    char path[1024];          // the database file
    char tensor_dir[1100];    // <path>-tensors
    pl_store_mode mode;
    int lock_fd;              // writer lock (flock) or -1
    int version;              // schema version after open
    char err[1024];
    pl_status err_code;       // the code of err (PL_OK: none)
    int *file_fds;            // read fds by tensor_files.id (-1 = not open)
    int n_file_fds;
    sqlite3_stmt *lookup_rows;  // cached: chunk holding (run, hook, pos)
};

// Generated text is stored twice (schema 3): the raw bytes as a BLOB and a valid UTF-8 display form
// (pl_utf8_display) as TEXT. pl_display(x) is that conversion as an SQL function, registered on
// every connection; a text label bound as a blob is stored in its display form.
#define STORE_LABEL_VALUE_SQL(n) "CASE WHEN typeof(?" #n ")='blob' THEN pl_display(?" #n ") ELSE ?" #n " END"

// Record an error on the handle and in pl_errmsg() (code PL_ERROR); returns -1.
int store_fail(pl_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The same with a status code (pl_errcode()), which it returns.
int store_fail_code(pl_store *s, pl_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// store_fail with "<path>: <sqlite message>" for a failed statement, its code mapped from SQLite's
// (read-only, full, busy, cannot open: PL_ERR_IO; not a database, corrupt: PL_ERR_CORRUPT); returns -1.
int store_sql_fail(pl_store *s, sqlite3 *db, const char *what);
// Open another connection to the same database (the writer thread's), WAL + busy timeout set.
int store_open_connection(pl_store *s, sqlite3 **db);
// The SQL that migrates schema version v-1 to v (v = 1..PL_STORE_SCHEMA_VERSION), for tests.
const char *store_migration_sql(int v);
// A read fd for tensor file id (cached on the handle), or -1 (error set).
int store_tensor_fd(pl_store *s, int64_t file_id);
// Convert n values of storage dtype t to f32.
void store_to_f32(float *out, const void *in, pl_dtype t, size_t n);
// Convert n f32 values to storage dtype t.
void store_from_f32(void *out, const float *in, pl_dtype t, size_t n);
double store_unix_now(void);
// ---- validation of what the index says (validate.c) ---------------------------------------
// A store is a file users copy, share and corrupt: every size, count, offset and dtype read from
// the index is checked against these bounds and the sidecar file's length before it is used.
#define PL_STORE_MAX_POSITIONS (1 << 24)  // tokens of one run
#define PL_STORE_MAX_ROW_SIZE (1 << 24)   // floats per position of a hook
#define PL_STORE_MAX_LAYERS (1 << 16)
#define PL_STORE_MAX_HEADS (1 << 16)

// One chunk of the tensor index: a tensors row, or an attention row (pos0 = q0, n_pos = n_q,
// row_size = n_heads). Read with store_chunk_from_row from a SELECT of STORE_TENSOR_COLUMNS /
// STORE_ATTENTION_COLUMNS (in that order, starting at column `col`).
typedef struct {
    bool attention;
    int64_t id, run_id, layer, pos0, n_pos, row_size;
    pl_dtype dtype;
    char dtype_name[12];  // as stored ("" if not text); dtype is valid only if store_check_chunk passed
    bool dtype_ok;
    int64_t file_id, offset, nbytes;
} store_chunk;
#define STORE_TENSOR_COLUMNS "id, run_id, layer, pos0, n_pos, row_size, dtype, file_id, offset, nbytes"
#define STORE_ATTENTION_COLUMNS "id, run_id, layer, q0, n_q, n_heads, dtype, file_id, offset, nbytes"
void store_chunk_from_row(sqlite3_stmt *st, int col, bool attention, store_chunk *c);
// Check a chunk against the schema's invariants and the length of its sidecar file (opened and
// cached on the handle). Returns 0, or -1 with "store corrupt: <table> row N: <what>".
int store_check_chunk(pl_store *s, const store_chunk *c);
// Record "<path>: store corrupt: <table> row <row>: <detail>" with code PL_ERR_CORRUPT; return -1.
int store_corrupt(pl_store *s, const char *table, int64_t row, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
// A text column, "" for NULL (a damaged file can hold NULL where the schema says NOT NULL).
const char *store_column_text(sqlite3_stmt *st, int col);

// Elements of the causal lower triangle for query rows 0..p-1: p(p+1)/2.
static inline int64_t store_tri(int64_t p) { return p * (p + 1) / 2; }

#endif
