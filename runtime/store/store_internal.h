// Internals shared by the store's files (not for callers outside runtime/store/).
#ifndef PL_STORE_INTERNAL_H
#define PL_STORE_INTERNAL_H

#include <sqlite3.h>

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
    int *file_fds;            // read fds by tensor_files.id (-1 = not open)
    int n_file_fds;
    sqlite3_stmt *lookup_rows;  // cached: chunk holding (run, hook, pos)
};

// Record an error on the handle and in pl_errmsg(); returns -1.
int store_fail(pl_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// pl_fail with "<path>: <sqlite message>" for a failed statement.
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
// Elements of the causal lower triangle for query rows 0..p-1: p(p+1)/2.
static inline int64_t store_tri(int64_t p) { return p * (p + 1) / 2; }

#endif
