// A store is a file users copy, share and corrupt. Each case makes a real store (the bundled model
// traced by tests/store_fixture.h), damages one cell of its index (or bytes of its files) the way
// a user with the sqlite3 CLI or a bad copy would, then runs the reader that used to trust that
// cell: it must fail with one line naming the table, row and column, never crash or allocate from
// the value (the ASan/UBSan build runs these too), and `probelab store check` must report it and
// exit 1. Issue 10's findings #3 and #4 (attention sizes, negative row_size, offset overflow, a
// 9e99 label) are cases here.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/store_fixture.h"
#include "tests/support/test_support.h"

static char dir[512], base[600];

static int setup(void **state) {
    char model[1024];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(base, sizeof base, "%s/base.db", dir);
    snprintf(model, sizeof model, "%s/share/models/probelab-cot.gguf", test_source_dir());
    if (store_fixture_build(model, base, 3) != 0) {
        fprintf(stderr, "fixture: %s\n", pl_errmsg());
        return -1;
    }
    return 0;
}

// A copy of the fixture store (database and tensor folder) with `sql` applied to its index.
// CHECK constraints are ignored, as a byte-level edit or another tool would ignore them.
static const char *damaged(const char *name, const char *sql) {
    static char path[700];
    char cmd[4200];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s-tensors' && cp '%s' '%s' && cp -r '%s-tensors' '%s-tensors'", path, path, base,
             path, base, path);
    assert_int_equal(test_run(cmd, NULL), 0);
    if (sql) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        char *err = NULL;
        int rc = sqlite3_exec(db, "PRAGMA ignore_check_constraints=ON", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) fail_msg("%s: %s", sql, err);
        assert_true(sqlite3_changes(db) > 0);
        sqlite3_close(db);
    }
    return path;
}

// The reader failed with one line containing every `want` fragment.
static void assert_corrupt(int rc, pl_store *s, const char *want1, const char *want2) {
    const char *msg = pl_store_errmsg(s);
    printf("  reader: %s\n", msg);
    assert_int_not_equal(rc, 0);
    assert_int_equal(pl_errcode(), PL_ERR_CORRUPT);
    assert_null(strchr(msg, '\n'));
    if (!strstr(msg, want1) || (want2 && !strstr(msg, want2))) fail_msg("expected '%s' / '%s' in: %s", want1, want2, msg);
}

// `probelab store check` exits 1 and its report contains want.
static void assert_check_finds(const char *path, const char *want) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' store check '%s' 2>/dev/null", test_probelab_bin(), path);
    char *out = NULL;
    int rc = test_run(cmd, &out);
    printf("  store check (exit %d):\n%s", rc, out ? out : "");
    bool found = out && strstr(out, want);
    free(out);
    assert_int_equal(rc, 1);
    if (!found) fail_msg("store check did not report '%s'", want);
}

static pl_store *open_read(const char *path) {
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) fail_msg("%s", pl_errmsg());
    return s;
}

// The design matrix of a hook over every complete run (reads tokens, positions and activations).
static int read_design(pl_store *s, const char *hook) {
    float *X;
    int64_t *runs;
    int32_t *pos;
    int n, d;
    pl_run_filter f = pl_run_filter_complete();
    int rc = pl_store_design_matrix(s, hook, PL_POS_ALL, &f, &X, &runs, &pos, &n, &d);
    if (rc == 0) free(X), free(runs), free(pos);
    return rc;
}

static int read_attention(pl_store *s, int64_t run, int layer) {
    float *att;
    int q0, n_q, n_k;
    int rc = pl_store_read_attention(s, run, layer, 0, &att, &q0, &n_q, &n_k);
    if (rc == 0) free(att);
    return rc;
}

static void pristine_store_reads_and_checks_clean(void **state) {
    pl_store *s = open_read(base);
    assert_int_equal(read_design(s, "blocks.1.hook_resid_post"), 0);
    assert_int_equal(read_attention(s, 1, 0), 0);
    pl_store_check_report r;
    assert_int_equal(pl_store_check(s, 10, &r), 0);
    for (int i = 0; i < r.n_listed; i++) printf("  unexpected: %s\n", r.findings[i]);
    assert_int_equal(r.n_findings, 0);
    assert_int_equal(r.n_runs, 4);
    assert_true(r.n_tensor_rows >= 4 * 5 && r.n_attention_rows >= 4 * 4);
    pl_store_check_free(&r);
    pl_store_close(s);
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' store check '%s'", test_probelab_bin(), base);
    assert_int_equal(test_run(cmd, &out), 0);
    assert_non_null(strstr(out, ": ok: 4 runs"));
    free(out);
}

// Issue 10 #3: attention n_q / n_heads negative or huge used to size a calloc; q0 huge overflowed.
static void attention_sizes_are_validated(void **state) {
    static const struct {
        const char *set, *want;
    } cases[] = {
        {"n_q = -5", "n_q -5 out of range"},
        {"n_q = 1000000000", "n_q 1000000000 out of range"},
        {"q0 = 1099511627776", "q0 1099511627776 out of range"},
        {"n_heads = 0", "n_heads 0 out of range"},
        {"n_heads = 3", "nbytes"},
        {"nbytes = nbytes + 4", "nbytes"},
        {"offset = 9223372036854775000", "past the end of its tensor file"},
        {"dtype = 'f64'", "dtype 'f64'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "UPDATE attention SET %s WHERE id = (SELECT min(id) FROM attention WHERE run_id = 1 AND layer = 0)",
                 cases[i].set);
        printf("attention: %s\n", cases[i].set);
        const char *path = damaged("att", sql);
        pl_store *s = open_read(path);
        assert_corrupt(read_attention(s, 1, 0), s, "store corrupt: attention row ", cases[i].want);
        pl_store_close(s);
        assert_check_finds(path, cases[i].want);
    }
    // A gap between chunks, and a layer / head count no viewer could draw.
    const char *path = damaged("att_shape", "UPDATE attention SET n_heads = 100000 WHERE run_id = 2 AND layer = 1");
    pl_store *s = open_read(path);
    int n_layers, n_heads;
    assert_corrupt(pl_store_attention_shape(s, 2, &n_layers, &n_heads), s, "store corrupt: attention row ", "n_heads 100000");
    pl_store_close(s);
}

// Issue 10 #3/#4: row_size negative (a huge realloc in the design matrix), zero on a hook's first
// row with two runs (realloc(rows, 0) then a double free), offsets near INT64_MAX (signed overflow
// in read.c), a dtype the schema does not know, nbytes that disagree with the shape.
static void tensor_rows_are_validated(void **state) {
    static const struct {
        const char *set, *want, *check;  // check: what store check says, if it is not `want`
    } cases[] = {
        {"row_size = -4", "row_size -4", "row_size -4 for hook with d_model 128"},
        {"row_size = 0", "row_size 0", "row_size 0 for hook with d_model 128"},
        {"row_size = 64", "nbytes", "row_size 64 for hook with d_model 128"},
        {"n_pos = -1", "n_pos -1 out of range", NULL},
        {"pos0 = -3", "pos0 -3 out of range", NULL},
        {"pos0 = 9223372036854775800", "pos0 9223372036854775800 out of range", NULL},
        {"offset = 9223372036854775000", "past the end of its tensor file", NULL},
        {"offset = -512", "offset -512 is negative", NULL},
        {"nbytes = 12", "nbytes 12", NULL},
        {"dtype = 'f64'", "dtype 'f64'", NULL},
        {"dtype = 16", "dtype '16'", NULL},
        {"file_id = 7", "file_id 7", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "UPDATE tensors SET %s WHERE id = (SELECT min(id) FROM tensors WHERE hook = 'blocks.1.hook_resid_post')",
                 cases[i].set);
        printf("tensors: %s\n", cases[i].set);
        const char *path = damaged("tensors", sql);
        pl_store *s = open_read(path);
        assert_corrupt(read_design(s, "blocks.1.hook_resid_post"), s, "store corrupt: tensors row ", cases[i].want);
        // The same through export (the path of the double free).
        char out[800];
        snprintf(out, sizeof out, "%s/x.npy", dir);
        int n, d;
        pl_run_filter f = pl_run_filter_complete();
        assert_corrupt(pl_store_export(s, out, "blocks.1.hook_resid_post", PL_POS_ALL, &f, "correct", &n, &d), s,
                       "store corrupt: tensors row ", NULL);
        pl_store_close(s);
        assert_check_finds(path, cases[i].check ? cases[i].check : cases[i].want);
    }
}

// The sidecar file shorter than the index says (a truncated copy), and a tensor file path that
// leads out of the tensor folder.
static void tensor_files_are_validated(void **state) {
    const char *path = damaged("short", NULL);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "for f in '%s-tensors'/*.bin; do truncate -s 1000 \"$f\"; done", path);
    assert_int_equal(test_run(cmd, NULL), 0);
    pl_store *s = open_read(path);
    assert_corrupt(read_design(s, "blocks.3.hook_resid_post"), s, "store corrupt: tensors row ", "past the end of its tensor file (1000 bytes)");
    assert_corrupt(read_attention(s, 3, 3), s, "store corrupt: attention row ", "past the end");
    pl_store_close(s);
    assert_check_finds(path, "past the end of its tensor file (1000 bytes)");

    path = damaged("escape", "UPDATE tensor_files SET path = '../../etc/passwd' WHERE id = 1");
    s = open_read(path);
    assert_corrupt(read_design(s, "hook_embed"), s, "tensor_files row 1: path '../../etc/passwd' is not a file name", NULL);
    pl_store_close(s);
    assert_check_finds(path, "tensor_files row 1: path '../../etc/passwd'");
}

// Runs and tokens: callers index a run's tokens by position and by n_prompt.
static void runs_and_tokens_are_validated(void **state) {
    const char *path = damaged("ntok", "UPDATE runs SET n_tokens = 3 WHERE id = 2");
    pl_store *s = open_read(path);
    pl_token_row *t;
    int n;
    assert_corrupt(pl_store_get_tokens(s, 2, &t, &n), s, "store corrupt: runs row 2: ", "n_prompt");
    pl_store_close(s);
    assert_check_finds(path, "runs row 2: n_prompt");

    path = damaged("nprompt", "UPDATE runs SET n_prompt = -1 WHERE id = 2");
    s = open_read(path);
    pl_run_info info;
    assert_corrupt(pl_store_get_run(s, 2, &info), s, "store corrupt: runs row 2: n_prompt -1 out of range", NULL);
    pl_run_info *runs;
    assert_corrupt(pl_store_list_runs(s, NULL, &runs, &n), s, "store corrupt: runs row 2: n_prompt -1", NULL);
    pl_store_close(s);
    assert_check_finds(path, "runs row 2: n_prompt -1 out of range");

    path = damaged("gap", "UPDATE tokens SET pos = 1000 WHERE run_id = 1 AND pos = 4");
    s = open_read(path);
    assert_corrupt(pl_store_get_tokens(s, 1, &t, &n), s, "store corrupt: tokens of run 1: position 5 where 4 was expected", NULL);
    assert_corrupt(read_design(s, "hook_embed"), s, "store corrupt: tokens of run 1", NULL);
    pl_store_close(s);
    assert_check_finds(path, "runs row 1: token positions 0..1000");
}

// Issue 10 #4: a label of 9e99 was converted to int32 (undefined; clang's float-cast-overflow
// sanitizer in the fuzz build reports it). It is a float label now.
static void huge_label_exports_as_float(void **state) {
    const char *path = damaged("label", "UPDATE labels SET value = 9e99 WHERE run_id = 1 AND key = 'correct'");
    pl_store *s = open_read(path);
    char out[800], meta[800];
    snprintf(out, sizeof out, "%s/label.npy", dir);
    snprintf(meta, sizeof meta, "%s/label.json", dir);
    int n, d;
    pl_run_filter f = pl_run_filter_complete();
    if (pl_store_export(s, out, "hook_embed", PL_POS_LAST_PROMPT, &f, "correct", &n, &d) != 0) fail_msg("%s", pl_store_errmsg(s));
    pl_store_close(s);
    assert_int_equal(n, 4);
    json_error_t err;
    json_t *j = json_load_file(meta, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "label_type")), "float");
    json_decref(j);
    char labels[800];
    snprintf(labels, sizeof labels, "%s/label.labels.npy", dir);
    FILE *fl = fopen(labels, "rb");
    assert_non_null(fl);
    float v[4];
    assert_int_equal(fseek(fl, 128, SEEK_SET), 0);
    assert_int_equal(fread(v, sizeof(float), 4, fl), 4);
    fclose(fl);
    assert_true(isinf(v[0]));  // 9e99 as float32
}

static void analysis_matrix_sizes_are_validated(void **state) {
    // -1 x -1 floats "need" 4 bytes once the product wraps in size_t: the blob below used to pass.
    const char *path = damaged("matrix", "UPDATE analysis_matrices SET n_rows = -1, n_cols = -1, data = x'00000000'");
    pl_store *s = open_read(path);
    float *data;
    int rows, cols;
    assert_corrupt(pl_store_get_analysis_matrix(s, "fixture_analysis", "confusion", &data, &rows, &cols), s,
                   "store corrupt: matrix 'confusion' of 'fixture_analysis': size -1 x -1 out of range", NULL);
    pl_store_close(s);
    assert_check_finds(path, "analysis_matrices row 1: size -1 x -1 out of range");
}

// Damaged database bytes: SQLite refuses the pages, store check says so in one line each.
static void damaged_database_bytes_are_reported(void **state) {
    const char *path = damaged("bytes", NULL);
    char cmd[1600];
    // Overwrite the fourth page (a table's b-tree page) with garbage.
    snprintf(cmd, sizeof cmd, "printf '%%4096s' | tr ' ' '\\377' | dd of='%s' bs=4096 seek=3 conv=notrunc status=none", path);
    assert_int_equal(test_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "'%s' store check '%s' 2>&1", test_probelab_bin(), path);
    char *out = NULL;
    int rc = test_run(cmd, &out);
    printf("  store check (exit %d):\n%s", rc, out ? out : "");
    assert_int_equal(rc, 1);
    assert_true(strstr(out, "integrity_check") || strstr(out, "malformed") || strstr(out, "not a probelab store"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pristine_store_reads_and_checks_clean),
        cmocka_unit_test(attention_sizes_are_validated),
        cmocka_unit_test(tensor_rows_are_validated),
        cmocka_unit_test(tensor_files_are_validated),
        cmocka_unit_test(runs_and_tokens_are_validated),
        cmocka_unit_test(huge_label_exports_as_float),
        cmocka_unit_test(analysis_matrix_sizes_are_validated),
        cmocka_unit_test(damaged_database_bytes_are_reported),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
