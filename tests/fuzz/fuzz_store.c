// libFuzzer harness: a real store (tests/store_fixture.h: the bundled model traced, a probe and an
// analysis), damaged by the input, then every read path over it: runs, tokens, labels, hooks,
// activations, attention, design matrices and export, models, probes, analyses, store check.
//
// The input is a list of edits, applied to a fresh copy of the store each time:
//   0 T R C K v[8]  set column C of row R of table T to a value of kind K built from v (an
//                   integer, an interesting integer, a real, NULL, text, blob), CHECKs ignored
//   1 o[3] b        xor byte o (mod the size) of the database file with b
//   2 f o[3] b      xor byte o of tensor file f with b
//   3 f n[3]        truncate tensor file f to n bytes (mod its size)
#include <dirent.h>
#include <stdbool.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "runtime/store/store.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/store_fixture.h"

#ifndef PL_SOURCE_DIR
#define PL_SOURCE_DIR "."
#endif

typedef struct {
    uint8_t *bytes;
    size_t size;
} blob;

static const char *const tables[] = {"runs",  "tokens", "tensors",       "attention", "labels",   "tensor_files",    "models",
                                     "examples", "probes", "probe_outputs", "analyses", "analysis_rows", "analysis_matrices"};
enum { N_TABLES = sizeof tables / sizeof tables[0], MAX_COLS = 16, MAX_FILES = 4 };
static char columns[N_TABLES][MAX_COLS][32];
static int n_columns[N_TABLES];
static blob db_template, file_template[MAX_FILES];
static char file_names[MAX_FILES][128];
static int n_files;

static blob slurp(const char *path) {
    blob b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    b.size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.bytes = malloc(b.size ? b.size : 1);
    if (!b.bytes || fread(b.bytes, 1, b.size, f) != b.size) abort();
    fclose(f);
    return b;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char model[1024], db[256], dir[300];
    const char *src = getenv("PL_SOURCE_DIR") ? getenv("PL_SOURCE_DIR") : PL_SOURCE_DIR;
    snprintf(model, sizeof model, "%s/share/models/probelab-cot.gguf", src);
    snprintf(db, sizeof db, "%s/template.db", fuzz_dir());
    if (store_fixture_build(model, db, 2) != 0) {
        fprintf(stderr, "fuzz_store: cannot build the template store: %s\n", pl_errmsg());
        abort();
    }
    // A copied store without its -wal file: in WAL mode every read-only open of a fresh copy waits
    // on SQLite's WAL recovery (60 ms), so the template is switched to a rollback journal.
    sqlite3 *conn;
    if (sqlite3_open(db, &conn) != SQLITE_OK || sqlite3_exec(conn, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_close(conn);
    db_template = slurp(db);
    snprintf(dir, sizeof dir, "%s-tensors", db);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n_files < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".bin") != 0) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(file_names[n_files], sizeof file_names[n_files], "%.127s", e->d_name);
        file_template[n_files++] = slurp(path);
    }
    if (d) closedir(d);
    if (sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) abort();
    for (int t = 0; t < N_TABLES; t++) {
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", tables[t]);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK) abort();
        while (sqlite3_step(st) == SQLITE_ROW && n_columns[t] < MAX_COLS)
            snprintf(columns[t][n_columns[t]++], sizeof columns[t][0], "%s", (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
    }
    sqlite3_close(conn);
    return 0;
}

// The row selector of a table: rowid, or the primary key of a WITHOUT ROWID table.
static const char *row_key(const char *table) {
    if (strcmp(table, "tokens") == 0) return "run_id, pos";
    if (strcmp(table, "labels") == 0) return "run_id, key";
    if (strcmp(table, "probe_outputs") == 0) return "probe_id, run_id, pos";
    return "rowid";
}

static void bind_value(sqlite3_stmt *st, int kind, const uint8_t *v) {
    static const int64_t special[] = {0, -1, 1, INT64_MAX, INT64_MIN, INT32_MAX, (int64_t)1 << 31, 1 << 24, (1 << 24) + 1,
                                      -((int64_t)1 << 31), 1 << 16, 128, 4, 2};
    static const double reals[] = {9e99, -0.0, NAN, INFINITY, -INFINITY, 1e-300, 0.5, 2147483648.0};
    int64_t i;
    double r;
    memcpy(&i, v, 8);
    memcpy(&r, v, 8);
    switch (kind % 8) {
    case 0: sqlite3_bind_int64(st, 1, i); break;
    case 1: sqlite3_bind_int64(st, 1, (int8_t)v[0]); break;
    case 2: sqlite3_bind_int64(st, 1, special[v[0] % (sizeof special / sizeof special[0])]); break;
    case 3: sqlite3_bind_double(st, 1, r); break;
    case 4: sqlite3_bind_double(st, 1, reals[v[0] % (sizeof reals / sizeof reals[0])]); break;
    case 5: sqlite3_bind_null(st, 1); break;
    case 6: sqlite3_bind_text(st, 1, (const char *)v + 1, v[0] % 8, SQLITE_TRANSIENT); break;
    default: sqlite3_bind_blob(st, 1, v, v[0] % 9, SQLITE_TRANSIENT); break;
    }
}

static void sql_edit(sqlite3 *db, const uint8_t *op) {
    int t = op[0] % N_TABLES;
    if (n_columns[t] == 0) return;
    const char *col = columns[t][op[2] % n_columns[t]], *key = row_key(tables[t]);
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE OR IGNORE %s SET \"%s\" = ?1 WHERE (%s) IN (SELECT %s FROM %s LIMIT 1 OFFSET ?2)",
             tables[t], col, key, key, tables[t]);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return;
    bind_value(st, op[3], op + 4);
    sqlite3_bind_int(st, 2, op[1]);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

static uint32_t u24(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16; }

// Write the damaged copy: database bytes and tensor files from the templates with the byte
// edits applied, then the SQL edits through SQLite. Returns the database path.
static const char *make_store(const uint8_t *data, size_t size) {
    static char db[256];
    char dir[300], path[700];
    snprintf(db, sizeof db, "%s/w.db", fuzz_dir());
    snprintf(dir, sizeof dir, "%s-tensors", db);
    mkdir(dir, 0777);
    for (const char *ext = "-wal"; ext; ext = strcmp(ext, "-wal") == 0 ? "-shm" : NULL) {
        snprintf(path, sizeof path, "%s%s", db, ext);
        unlink(path);
    }
    uint8_t *bytes = malloc(db_template.size);
    uint8_t *files[MAX_FILES];
    size_t file_size[MAX_FILES];
    if (!bytes) abort();
    memcpy(bytes, db_template.bytes, db_template.size);
    for (int f = 0; f < n_files; f++) {
        files[f] = malloc(file_template[f].size ? file_template[f].size : 1);
        if (!files[f]) abort();
        memcpy(files[f], file_template[f].bytes, file_template[f].size);
        file_size[f] = file_template[f].size;
    }
    // First pass: byte edits; the SQL edits wait until the files exist.
    size_t i = 0;
    while (i < size) {
        int op = data[i] % 4;
        size_t len = op == 0 ? 13 : op == 1 ? 5 : op == 2 ? 6 : 5;
        if (i + len > size) break;
        const uint8_t *a = data + i + 1;
        if (op == 1) bytes[u24(a) % db_template.size] ^= a[3];
        if ((op == 2 || op == 3) && n_files > 0) {
            int f = a[0] % n_files;
            if (op == 2 && file_size[f]) files[f][u24(a + 1) % file_size[f]] ^= a[4];
            if (op == 3 && file_size[f]) file_size[f] = u24(a + 1) % file_size[f];
        }
        i += len;
    }
    fuzz_write("w.db", bytes, db_template.size);
    for (int f = 0; f < n_files; f++) {
        char name[700];
        snprintf(name, sizeof name, "w.db-tensors/%s", file_names[f]);
        fuzz_write(name, files[f], file_size[f]);
        free(files[f]);
    }
    free(bytes);
    bool any_sql = false;
    for (i = 0; i < size;) {
        int op = data[i] % 4;
        size_t len = op == 0 ? 13 : op == 1 ? 5 : op == 2 ? 6 : 5;
        if (i + len > size) break;
        any_sql |= op == 0;
        i += len;
    }
    sqlite3 *conn = NULL;
    if (any_sql && sqlite3_open_v2(db, &conn, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_exec(conn, "PRAGMA ignore_check_constraints=ON; PRAGMA synchronous=OFF", NULL, NULL, NULL);
        for (i = 0; i < size;) {
            int op = data[i] % 4;
            size_t len = op == 0 ? 13 : op == 1 ? 5 : op == 2 ? 6 : 5;
            if (i + len > size) break;
            if (op == 0) sql_edit(conn, data + i + 1);
            i += len;
        }
    }
    sqlite3_close(conn);
    return db;
}

static void free_design(float *X, int64_t *runs, int32_t *pos) {
    free(X);
    free(runs);
    free(pos);
}

static void read_runs(pl_store *s) {
    pl_run_info *runs;
    int n;
    pl_run_filter any = pl_run_filter_any();
    if (pl_store_list_runs(s, &any, &runs, &n) != 0) return;
    int64_t count, good, bad, *ids, n_ids, max_id, version;
    pl_store_count_runs(s, &any, &count, &good, &bad);
    if (pl_store_run_ids(s, &any, &ids, &n_ids, &good, &bad) == 0) {
        pl_run_info page[4];
        pl_store_get_runs(s, ids, n_ids < 4 ? (int)n_ids : 4, page);
        free(ids);
    }
    pl_store_max_run_id(s, &max_id);
    pl_store_data_version(s, &version);
    char **tasks;
    int64_t *counts;
    int n_tasks;
    if (pl_store_list_tasks(s, &tasks, &counts, &n_tasks) == 0) pl_strings_free(tasks, n_tasks), free(counts);
    for (int r = 0; r < n && r < 6; r++) {
        pl_run_info info;
        pl_token_row *tokens;
        int n_tok, n_labels, n_layers, n_heads;
        char **keys, **values, buf[64];
        pl_store_get_run(s, runs[r].id, &info);
        if (pl_store_get_tokens(s, runs[r].id, &tokens, &n_tok) == 0) free(tokens);
        if (pl_store_list_labels(s, runs[r].id, &keys, &values, &n_labels) == 0)
            pl_strings_free(keys, n_labels), pl_strings_free(values, n_labels);
        pl_store_get_label(s, runs[r].id, "correct", buf, sizeof buf);
        if (pl_store_attention_shape(s, runs[r].id, &n_layers, &n_heads) != 0) continue;
        for (int l = 0; l < n_layers && l < 6; l++)
            for (int h = 0; h < n_heads && h < 3; h++) {
                float *att;
                int q0, n_q, n_k;
                if (pl_store_read_attention(s, runs[r].id, l, h, &att, &q0, &n_q, &n_k) == 0) free(att);
            }
    }
    free(runs);
}

static void read_tensors(pl_store *s) {
    char **hooks;
    int n_hooks;
    if (pl_store_list_hooks(s, &hooks, &n_hooks) != 0) return;
    int64_t model_id = 0;
    pl_store_resolve_model(s, 0, &model_id);
    static const pl_pos_rule rules[] = {PL_POS_ALL, PL_POS_LAST_PROMPT, PL_POS_MEAN_COT, PL_POS_ANSWER};
    for (int h = 0; h < n_hooks && h < 7; h++) {
        int row_size;
        pl_store_hook_row_size(s, hooks[h], model_id, &row_size);
        int32_t *ranges;
        int n_ranges;
        if (pl_store_recorded_positions(s, 1, hooks[h], &ranges, &n_ranges) == 0) free(ranges);
        pl_run_filter f = pl_run_filter_complete();
        f.model_id = model_id;
        float *X;
        int64_t *run_ids;
        int32_t *pos;
        int n_rows, dim;
        if (pl_store_design_matrix(s, hooks[h], rules[h % 4], &f, &X, &run_ids, &pos, &n_rows, &dim) == 0)
            free_design(X, run_ids, pos);
        if (h == 1 || h == 5) {
            char out[300];
            snprintf(out, sizeof out, "%s/x.%s", fuzz_dir(), h == 1 ? "npy" : "safetensors");
            pl_store_export(s, out, hooks[h], PL_POS_ALL, &f, h == 1 ? "correct" : "answer", &n_rows, &dim);
        }
    }
    pl_strings_free(hooks, n_hooks);
}

static void read_results(pl_store *s) {
    pl_model_info *models;
    int n;
    if (pl_store_list_models(s, &models, &n) == 0) {
        pl_model_info one;
        if (n > 0) pl_store_get_model(s, models[0].id, &one);
        free(models);
    }
    pl_probe_info *probes;
    if (pl_store_list_probes(s, &probes, &n) == 0) free(probes);
    int64_t probe_id;
    if (pl_store_find_probe(s, "fixture", &probe_id) == 1) {
        int32_t *pos;
        float *value;
        if (pl_store_get_probe_outputs(s, probe_id, 1, &pos, &value, &n) == 0) free(pos), free(value);
    }
    char **names, **kinds;
    if (pl_store_list_analysis_kinds(s, &names, &kinds, &n) == 0) pl_strings_free(names, n), pl_strings_free(kinds, n);
    if (pl_store_list_analyses(s, &names, &n) != 0) return;
    for (int i = 0; i < n && i < 4; i++) {
        pl_analysis a;
        if (pl_store_get_analysis(s, names[i], &a) != 0) continue;
        for (int m = 0; m < a.n_matrices; m++) {
            float *data;
            int rows, cols;
            if (pl_store_get_analysis_matrix(s, names[i], a.matrix_names[m], &data, &rows, &cols) == 0) free(data);
        }
        pl_analysis_free(&a);
    }
    pl_strings_free(names, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *db = make_store(data, size);
    pl_store *s;
    if (pl_store_open(&s, db, PL_STORE_READ) != 0) return 0;
    read_runs(s);
    read_tensors(s);
    read_results(s);
    char **paths;
    int n;
    if (pl_store_tensor_files(s, &paths, &n) == 0) pl_strings_free(paths, n);
    pl_store_check_report r;
    pl_store_check(s, 8, &r);
    pl_store_check_free(&r);
    pl_store_close(s);
    return 0;
}
