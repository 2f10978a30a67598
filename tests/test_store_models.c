// Several models in one store (issue 9 defect 1; issue 10 findings 1 and 2): the bundled model
// (d_model 128) and a tiny model trained here for one step (d_model 32) are traced into one store,
// in both orders. Every command that reads runs refuses without --model-id, naming the models;
// with it, `export` writes exactly that model's width, and every row equals the stored tensor of
// that run and position (read back through the store API with that width). `runs --models` lists
// id, name, absolute path, sha256 (checked against sha256sum), d_model, layers and run counts.
// A corrupt index (row_size 0 on a hook's first row, or a row of another width) is an error naming
// the row, never a double free or a write past the matrix (run under ASan).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "datasets/tasks.h"
#include "runtime/base/npy.h"
#include "runtime/store/store.h"
#include "tests/support/test_support.h"

static char dir[512], bundled[1024], tiny[700], dataset[700], store_ab[700], store_ba[700];
static const char *const HOOK = "blocks.1.hook_resid_post";

static char *run_cli(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run_cli(int *status, const char *fmt, ...) {
    char args[3000], cmd[3400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", test_probelab_bin(), args);
    char *out = NULL;
    *status = test_run(cmd, &out);
    if (*status != 0) fprintf(stderr, "probelab %s\n -> %d: %s", args, *status, out ? out : "");
    return out ? out : strdup("");
}

static void trace(const char *model, const char *store) {
    int status;
    char *out = run_cli(&status, "trace '%s' --dataset '%s' --store '%s' --record %s --dtype f32 --max-new 6 --no-progress",
                        model, dataset, store, HOOK);
    assert_int_equal(status, 0);
    free(out);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(bundled, sizeof bundled, "%s/share/models/probelab-cot.gguf", test_source_dir());
    snprintf(tiny, sizeof tiny, "%s/tiny.gguf", dir);
    snprintf(dataset, sizeof dataset, "%s/max.jsonl", dir);
    snprintf(store_ab, sizeof store_ab, "%s/ab.db", dir);
    snprintf(store_ba, sizeof store_ba, "%s/ba.db", dir);
    int status;  // a d_model 32 model of 2 layers: one training step is enough to trace it
    free(run_cli(&status, "train --task max --out '%s' --steps 1 --batch 2 --warmup 1 --d-model 32 --layers 2 --heads 2"
                          " --kv-heads 1 --ffn 64 --ctx 64 --log-every 0 --checkpoint-every 0 --threads 1 >/dev/null", tiny));
    if (status != 0) return -1;
    pl_dataset d;
    if (pl_task_generate(&d, "max", 4, 5, 1, 2) || pl_dataset_write_jsonl(&d, dataset)) return -1;
    pl_dataset_free(&d);
    return 0;
}

// Status and output of a command expected to fail with one line containing needle.
static void expect_fail(const char *needle, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect_fail(const char *needle, const char *fmt, ...) {
    char args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int status;
    char *out = run_cli(&status, "%s", args);
    if (status == 0 || !strstr(out, needle)) fprintf(stderr, "probelab %s\n -> %d: %s\nwanted: %s\n", args, status, out, needle);
    assert_true(status > 0 && status < 128);  // an error, not a crash
    assert_non_null(strstr(out, needle));
    assert_null(strchr(out, '\n') == NULL ? NULL : strchr(strchr(out, '\n') + 1, '\n'));  // one line
    free(out);
}

// runs.npy of an export: int32 [n × 2] (run id, position).
static int32_t *read_runs_npy(const char *path, int64_t n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char head[10];
    assert_int_equal(fread(head, 1, 10, f), 10);
    assert_memory_equal(head, "\x93NUMPY\x01\x00", 8);
    assert_int_equal(fseek(f, 10 + head[8] + 256 * head[9], SEEK_SET), 0);
    int32_t *r = malloc(sizeof(int32_t) * 2 * (size_t)n);
    assert_int_equal(fread(r, sizeof(int32_t), 2 * (size_t)n, f), 2 * (size_t)n);
    fclose(f);
    return r;
}

// Export model `model_id` of store and check width and every value against the store's tensors.
static void export_matches_store(const char *store, int64_t model_id, int want_dim) {
    char x_path[800], runs_path[800];
    snprintf(x_path, sizeof x_path, "%s/m%lld.npy", dir, (long long)model_id);
    snprintf(runs_path, sizeof runs_path, "%s/m%lld.runs.npy", dir, (long long)model_id);
    int status;
    free(run_cli(&status, "export '%s' --hook %s --positions all --model-id %lld -o '%s'", store, HOOK, (long long)model_id,
                 x_path));
    assert_int_equal(status, 0);
    float *X;
    int ndim;
    int64_t shape[PL_NPY_MAX_DIMS];
    assert_int_equal(pl_npy_read_f32(x_path, &X, &ndim, shape), 0);
    assert_int_equal(ndim, 2);
    assert_int_equal(shape[1], want_dim);
    int32_t *runs = read_runs_npy(runs_path, shape[0]);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store, PL_STORE_READ), 0);
    // Every complete run of the model contributes all its recorded positions; no other run does.
    pl_run_filter f = pl_run_filter_complete();
    f.model_id = model_id;
    int64_t *ids, n_ids;
    assert_int_equal(pl_store_run_ids(s, &f, &ids, &n_ids, NULL, NULL), 0);
    assert_true(n_ids == 4);
    int64_t expect_rows = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t *ranges;
        int n_ranges;
        assert_int_equal(pl_store_recorded_positions(s, ids[i], HOOK, &ranges, &n_ranges), 0);
        for (int k = 0; k < n_ranges; k++) expect_rows += ranges[2 * k + 1] - ranges[2 * k];
        free(ranges);
    }
    assert_int_equal(shape[0], expect_rows);
    float *row = malloc(sizeof(float) * (size_t)want_dim);
    double worst = 0;
    for (int64_t i = 0; i < shape[0]; i++) {
        pl_run_info r;
        assert_int_equal(pl_store_get_run(s, runs[2 * i], &r), 0);
        assert_int_equal(r.model_id, model_id);
        int32_t pos = runs[2 * i + 1];
        if (pl_store_read_acts(s, r.id, HOOK, &pos, 1, want_dim, row) != 0) fail_msg("%s", pl_store_errmsg(s));
        worst = fmax(worst, test_max_abs_diff(row, X + (size_t)i * want_dim, (size_t)want_dim));
    }
    printf("%s model %lld: %lld x %d, max |export - stored| = %g\n", store, (long long)model_id, (long long)shape[0], want_dim,
           worst);
    assert_true(worst == 0);
    // A run of the other model read at this width is refused, naming the index row.
    pl_run_filter other = pl_run_filter_complete();
    other.model_id = model_id == 1 ? 2 : 1;
    int64_t *other_ids, n_other;
    assert_int_equal(pl_store_run_ids(s, &other, &other_ids, &n_other, NULL, NULL), 0);
    assert_true(n_other > 0);
    int32_t p0 = 0;
    assert_int_not_equal(pl_store_read_acts(s, other_ids[0], HOOK, &p0, 1, want_dim, row), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "floats, expected"));
    free(other_ids);
    free(row);
    free(ids);
    pl_store_close(s);
    free(runs);
    free(X);
}

static void two_models_never_mix(void **state) {
    (void)state;
    trace(bundled, store_ab);  // d 128 first, then d 32
    trace(tiny, store_ab);
    trace(tiny, store_ba);     // d 32 first, then d 128 (the order that overflowed)
    trace(bundled, store_ba);
    const char *stores[2] = {store_ab, store_ba};
    for (int k = 0; k < 2; k++) {
        const char *st = stores[k];
        char x_path[800];
        snprintf(x_path, sizeof x_path, "%s/mixed.npy", dir);
        const char *names = k == 0 ? "(1 probelab-cot.gguf, 2 tiny.gguf)" : "(1 tiny.gguf, 2 probelab-cot.gguf)";
        char needle[200];
        snprintf(needle, sizeof needle, "holds 2 models %s; choose one with --model-id N", names);
        expect_fail(needle, "export '%s' --hook %s --positions all -o '%s'", st, HOOK, x_path);
        expect_fail(needle, "runs '%s' --summary", st);
        expect_fail(needle, "runs '%s'", st);
        expect_fail(needle, "plot '%s' --figure tokens -o '%s/t.png'", st, dir);
        expect_fail("--model-id 3: no such model", "export '%s' --hook %s --model-id 3 -o '%s'", st, HOOK, x_path);
        export_matches_store(st, 1, k == 0 ? 128 : 32);
        export_matches_store(st, 2, k == 0 ? 32 : 128);
        // The summary counts the runs of one model only.
        int status;
        char *out = run_cli(&status, "runs '%s' --summary --model-id 2", st);
        assert_int_equal(status, 0);
        assert_non_null(strstr(out, "max"));
        int runs_d1 = 0, runs_d2 = 0, diff, n;
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            if (sscanf(line, "max %d %d", &diff, &n) == 2) {
                if (diff == 1) runs_d1 += n;
                else runs_d2 += n;
            }
        assert_int_equal(runs_d1 + runs_d2, 4);  // 4 examples, not 8
        free(out);
    }
    // runs --models (--json): ids in the order first traced, absolute paths, sha256 as sha256sum says.
    int status;
    char *out = run_cli(&status, "runs '%s' --models --json", store_ba);
    assert_int_equal(status, 0);
    json_error_t err;
    json_t *a = json_loads(out, 0, &err);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 2);
    const char *paths[2] = {tiny, bundled};
    const int dims[2] = {32, 128}, layers[2] = {2, -1};
    for (int i = 0; i < 2; i++) {
        json_t *m = json_array_get(a, (size_t)i);
        assert_int_equal(json_integer_value(json_object_get(m, "id")), i + 1);
        char real[PATH_MAX], cmd[1200], *sum = NULL;
        assert_non_null(realpath(paths[i], real));
        assert_string_equal(json_string_value(json_object_get(m, "path")), real);
        assert_int_equal(json_integer_value(json_object_get(m, "d_model")), dims[i]);
        if (layers[i] > 0) assert_int_equal(json_integer_value(json_object_get(m, "n_layers")), layers[i]);
        assert_int_equal(json_integer_value(json_object_get(m, "n_runs")), 4);
        snprintf(cmd, sizeof cmd, "sha256sum '%s'", paths[i]);
        assert_int_equal(test_run(cmd, &sum), 0);
        assert_memory_equal(sum, json_string_value(json_object_get(m, "sha256")), 64);
        free(sum);
    }
    json_decref(a);
    free(out);
    out = run_cli(&status, "runs '%s' --models", store_ba);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "tiny.gguf"));
    assert_non_null(strstr(out, "probelab-cot.gguf"));
    free(out);
}

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

// Issue 10 findings 1 and 2: a corrupt row_size is an error naming the row, not a crash.
static void corrupt_row_sizes_are_errors(void **state) {
    (void)state;
    char bad[800], x_path[800], cmd[5000];
    snprintf(bad, sizeof bad, "%s/bad.db", dir);
    snprintf(x_path, sizeof x_path, "%s/bad.npy", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s-tensors' && cp '%s' '%s' && cp -r '%s-tensors' '%s-tensors'", bad, bad, store_ab,
             bad, store_ab, bad);
    assert_int_equal(test_run(cmd, NULL), 0);
    // row_size 0 on the hook's first index row (realloc(rows, 0) freed the matrix once before).
    exec_sql(bad, "UPDATE tensors SET row_size=0 WHERE id=(SELECT min(id) FROM tensors WHERE hook='blocks.1.hook_resid_post')");
    expect_fail("store corrupt: tensors row 1: row_size 0 for hook 'blocks.1.hook_resid_post'",
                "export '%s' --hook %s --positions all --model-id 1 -o '%s'", bad, HOOK, x_path);
    // A later row of model 1 claiming another width (the narrower model's rows once overflowed);
    // nbytes agrees with it, so the chunk itself is consistent and only the width is wrong.
    exec_sql(bad, "UPDATE tensors SET row_size=128 WHERE id=1;"
                  " UPDATE tensors SET row_size=32, nbytes=nbytes/4 WHERE id=(SELECT max(t.id) FROM tensors t JOIN runs r ON r.id=t.run_id"
                  " WHERE r.model_id=1)");
    expect_fail("has rows of 32 floats, expected 128", "export '%s' --hook %s --positions all --model-id 1 -o '%s'", bad, HOOK,
                x_path);
    exec_sql(bad, "UPDATE tensors SET row_size=-5 WHERE id=1");
    expect_fail("store corrupt: tensors row 1: row_size -5", "export '%s' --hook %s --model-id 1 -o '%s'", bad, HOOK, x_path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_models_never_mix),
        cmocka_unit_test(corrupt_row_sizes_are_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
