// Probes over the trace store (probes/probe_store.h, `probelab probe`): on a store traced in the
// test with a tiny model trained for two seconds, the layer sweep stores one probe per hook; the
// probes reload with bit-identical parameters and predictions; `probe apply` stores per-token
// scores equal to a softmax computed here by hand from the stored activations; list/show/--json
// work. Bad input gets a one-line error and a non-zero exit: a hook not in the store, a single
// class, fewer examples than folds, a probe applied to another hook or another model, NaN in the
// activations.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/probe_store.h"
#include "runtime/base/error.h"
#include "tests/support/test_support.h"
#include "tests/precot_fixture.h"

static precot_fixture fx;
static int64_t probe_ids[8];
static int n_probe_ids;

static void test_sweep_store_reload(void **state) {
    (void)state;
    pl_store *s;
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_WRITE), 0);
    pl_probe_train_options o = pl_probe_train_defaults();
    o.sel.label = "gold";
    o.eval.cv.n_folds = 3;
    o.eval.n_bootstrap = 200;
    pl_probe_sweep sw;
    int rc = pl_probe_train_sweep(&sw, s, &o);
    if (rc) fprintf(stderr, "%s\n", pl_errmsg());
    assert_int_equal(rc, 0);
    assert_int_equal(sw.n_layers, 2);  // blocks.0/1.hook_resid_post, layer order
    assert_int_equal(sw.layers[0].layer, 0);
    assert_int_equal(sw.layers[1].layer, 1);
    assert_true(sw.has_embed);
    assert_int_equal(sw.rows.n, 40);  // every run has a gold label
    assert_true(sw.rows.n_classes >= 2);
    for (int i = 0; i < sw.n_layers; i++) {
        const pl_probe_layer *L = &sw.layers[i];
        const pl_probe_metrics *m = &L->probe->metrics;
        assert_true(L->probe_id > 0);
        probe_ids[n_probe_ids++] = L->probe_id;
        assert_true(m->n > 0 && m->n < 40);  // a held-out split, not the training rows
        assert_true(m->auroc >= 0 && m->auroc <= 1 && m->accuracy >= 0 && m->accuracy <= 1);
        assert_true(m->auroc_lo <= m->auroc + 1e-12 && m->auroc <= m->auroc_hi + 1e-12);
        assert_true(m->accuracy_lo <= m->accuracy + 1e-12 && m->accuracy <= m->accuracy_hi + 1e-12);
        assert_true(isfinite(m->majority_accuracy) && isfinite(m->control_accuracy));
        assert_true(fabs(m->selectivity - (m->accuracy - m->control_accuracy)) < 1e-12);
        // Reload: identical parameters and identical predictions on the same rows.
        char ref[32];
        snprintf(ref, sizeof ref, "%lld", (long long)L->probe_id);
        pl_probe *q;
        pl_probe_record rec;
        assert_int_equal(pl_probe_load(s, ref, &q, &rec), 0);
        assert_string_equal(rec.hook, L->hook);
        assert_string_equal(rec.at, "last-prompt");
        assert_string_equal(rec.label, "gold");
        assert_int_equal(rec.model_sha256[0] != 0, 1);
        assert_int_equal(q->d, L->probe->d);
        assert_int_equal(q->n_outputs, L->probe->n_outputs);
        size_t nw = (size_t)q->n_outputs * q->d;
        assert_memory_equal(q->weights, L->probe->weights, sizeof(float) * nw);
        assert_memory_equal(q->bias, L->probe->bias, sizeof(float) * q->n_outputs);
        assert_memory_equal(q->mean, L->probe->mean, sizeof(float) * q->d);
        assert_memory_equal(q->std, L->probe->std, sizeof(float) * q->d);
        assert_memory_equal(q->classes, L->probe->classes, sizeof(int32_t) * q->n_classes);
        assert_true(fabs(rec.metrics.auroc - m->auroc) < 1e-9);
        assert_int_equal(pl_probe_rows_read(&sw.rows, s, L->hook), 0);
        size_t np = (size_t)sw.rows.n * q->n_classes;
        float *a = malloc(sizeof(float) * np), *b = malloc(sizeof(float) * np);
        assert_int_equal(pl_probe_predict_proba(a, L->probe, sw.rows.x, sw.rows.n), 0);
        assert_int_equal(pl_probe_predict_proba(b, q, sw.rows.x, sw.rows.n), 0);
        assert_memory_equal(a, b, sizeof(float) * np);
        // Loading by name gives the newest probe of that name: this one.
        pl_probe_record rec2;
        pl_probe *q2;
        assert_int_equal(pl_probe_load(s, rec.name, &q2, &rec2), 0);
        assert_int_equal(rec2.id, rec.id);
        pl_probe_free(q2), pl_probe_record_free(&rec2);
        free(a), free(b);
        pl_probe_free(q);
        pl_probe_record_free(&rec);
    }
    pl_probe_sweep_free(&sw);
    pl_store_close(s);
}

// probe_outputs of (probe, run) against a softmax computed here from the stored activations.
static void test_apply_matches_hand_softmax(void **state) {
    (void)state;
    assert_true(n_probe_ids >= 2);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_WRITE), 0);
    char ref[32];
    snprintf(ref, sizeof ref, "%lld", (long long)probe_ids[1]);
    pl_probe *p;
    pl_probe_record rec;
    assert_int_equal(pl_probe_load(s, ref, &p, &rec), 0);
    int64_t runs[2] = {3, 7}, scored = 0;
    const char *cls = rec.class_names[1];
    assert_int_equal(pl_probe_apply(s, ref, 0, runs, 2, NULL, cls, &scored, NULL), 0);
    pl_run_info r3, r7;
    assert_int_equal(pl_store_get_run(s, 3, &r3), 0);
    assert_int_equal(pl_store_get_run(s, 7, &r7), 0);
    assert_int_equal(scored, r3.n_tokens + r7.n_tokens);  // every recorded token (positions all)
    int c_idx = 1;  // stored class names follow the probe's class order
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(fx.store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT run_id, pos, value FROM probe_outputs WHERE probe_id = ?1", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, probe_ids[1]);
    int rows = 0;
    double worst = 0;
    float *x = malloc(sizeof(float) * p->d);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(st, 0);
        int32_t pos = sqlite3_column_int(st, 1);
        double v = sqlite3_column_double(st, 2);
        assert_int_equal(pl_store_read_acts(s, run, rec.hook, &pos, 1, p->d, x), 0);
        double z[16], mx = -1e300, sum = 0, want;
        assert_true(p->n_outputs <= 16);
        for (int k = 0; k < p->n_outputs; k++) {
            z[k] = p->bias[k];
            for (int j = 0; j < p->d; j++) z[k] += (double)p->weights[(size_t)k * p->d + j] * ((x[j] - p->mean[j]) / p->std[j]);
            mx = fmax(mx, z[k]);
        }
        if (p->kind == PL_PROBE_BINARY) {
            double p1 = 1 / (1 + exp(-z[0]));
            want = c_idx == 1 ? p1 : 1 - p1;
        } else {
            for (int k = 0; k < p->n_outputs; k++) sum += exp(z[k] - mx);
            want = exp(z[c_idx] - mx) / sum;
        }
        worst = fmax(worst, fabs(v - want));
        rows++;
    }
    printf("apply: %d stored scores, max |stored - hand softmax| = %.2e\n", rows, worst);
    assert_int_equal(rows, (int)scored);
    assert_true(worst < 1e-5);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(x);
    pl_probe_free(p);
    pl_probe_record_free(&rec);
    pl_store_close(s);
}

static char *run_cli(const char *args, int *status) {
    char cmd[2048];
    if (snprintf(cmd, sizeof cmd, "%s %s 2>&1", test_probelab_bin(), args) >= (int)sizeof cmd)
        fail_msg("command too long: %s", args);
    char *out = NULL;
    *status = test_run(cmd, &out);
    return out ? out : strdup("");
}

static void expect_fail(const char *args, const char *needle) {
    int status;
    char *out = run_cli(args, &status);
    if (status == 0 || !strstr(out, needle)) fprintf(stderr, "probelab %s\n -> status %d, output:\n%s\n", args, status, out);
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(out, needle));
    // One clear line naming what is wrong, no crash (a crash gives status >= 128).
    assert_true(status < 128);
    free(out);
}

static void test_cli_tables_and_json(void **state) {
    (void)state;
    char args[4096];
    int status;
    snprintf(args, sizeof args, "probe train %s --label gold --folds 3 --bootstrap 100 --no-save --json", fx.store);
    char *out = run_cli(args, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "\"probes\""));
    assert_non_null(strstr(out, "blocks.1.hook_resid_post"));
    assert_non_null(strstr(out, "\"embed_baseline\""));
    free(out);
    // --at answer: the old spelling of --positions answer-prefix (the token ending "A:").
    snprintf(args, sizeof args, "probe train %s --label correct --at answer --folds 3 --bootstrap 100 --name t/", fx.store);
    out = run_cli(args, &status);
    if (status) fprintf(stderr, "%s\n", out);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "AUROC"));
    assert_non_null(strstr(out, "hook_embed"));
    free(out);
    snprintf(args, sizeof args, "probe list %s --json", fx.store);
    out = run_cli(args, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "t/correct@answer-prefix/blocks.0.hook_resid_post"));
    free(out);
    snprintf(args, sizeof args, "probe show %s t/correct@answer-prefix/blocks.1.hook_resid_post", fx.store);
    out = run_cli(args, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "AUROC"));
    free(out);
    snprintf(args, sizeof args, "probe apply %s %lld --runs 1,2 --json", fx.store, (long long)probe_ids[0]);
    out = run_cli(args, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "\"values\""));
    free(out);
}

static void test_bad_inputs(void **state) {
    (void)state;
    char args[4096];
    snprintf(args, sizeof args, "probe train %s --hook 'blocks.*.hook_nope' --label gold", fx.store);
    expect_fail(args, "no recorded hook matches");
    snprintf(args, sizeof args, "probe train %s --label task_name --no-save", fx.store);
    expect_fail(args, "single class");
    snprintf(args, sizeof args, "probe train %s --label gold --folds 40 --no-save", fx.store);
    expect_fail(args, "too few for 40 folds");
    snprintf(args, sizeof args, "probe show %s 9999", fx.store);
    expect_fail(args, "no probe with id '9999'");
    snprintf(args, sizeof args, "probe apply %s %lld --runs 1 --hook blocks.0.hook_resid_post", fx.store, (long long)probe_ids[1]);
    expect_fail(args, "was trained on blocks.1.hook_resid_post, not blocks.0.hook_resid_post");
    snprintf(args, sizeof args, "probe train %s --at token:x", fx.store);
    expect_fail(args, "N must be an integer");
    // Runs of another model in the same store: a probe of model 1 refuses them, and so does the lens.
    pl_model *m2 = NULL;
    pl_store *s = NULL;
    pl_dataset d;
    assert_int_equal(pl_task_generate(&d, "max", 3, 99, 1, 1), 0);
    assert_int_equal(pl_model_open(&m2, fx.model2), 0);
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_WRITE), 0);
    pl_trace_opts o = pl_trace_defaults();
    o.record = "blocks.*.hook_resid_post,hook_embed";
    o.dtype = PL_DTYPE_F32;
    o.sampling.max_new = 8;
    o.progress = false;
    o.check = fixture_check;
    o.dataset_path = fx.dataset;
    pl_trace_stats st;
    assert_int_equal(pl_trace_dataset(&st, s, m2, &d, &o), 0);
    pl_run_filter f = pl_run_filter_complete();
    pl_run_info *runs;
    int nr;
    assert_int_equal(pl_store_list_runs(s, &f, &runs, &nr), 0);
    int64_t other = runs[nr - 1].id;
    free(runs);
    pl_store_close(s);
    pl_model_free(m2);
    pl_dataset_free(&d);
    // Two models: without --model-id every command refuses, naming them.
    snprintf(args, sizeof args, "probe apply %s %lld --runs %lld", fx.store, (long long)probe_ids[0], (long long)other);
    expect_fail(args, "holds 2 models (1 tiny.gguf, 2 tiny2.gguf); choose one with --model-id N");
    snprintf(args, sizeof args, "probe apply %s %lld --model-id 1 --runs %lld", fx.store, (long long)probe_ids[0], (long long)other);
    expect_fail(args, "is a run of model 2, not of model 1");
    snprintf(args, sizeof args, "probe apply %s %lld --model-id 2", fx.store, (long long)probe_ids[0]);
    expect_fail(args, "was trained on model 1 (tiny.gguf), not on model 2");
    snprintf(args, sizeof args, "probe apply %s %lld --model-id 3", fx.store, (long long)probe_ids[0]);
    expect_fail(args, "--model-id 3: no such model (models: 1 tiny.gguf, 2 tiny2.gguf)");
    snprintf(args, sizeof args, "probe train %s --label gold --no-save", fx.store);
    expect_fail(args, "holds 2 models (1 tiny.gguf, 2 tiny2.gguf)");
    snprintf(args, sizeof args, "precot %s --n-steer 0 --folds 3 --bootstrap 20", fx.store);
    expect_fail(args, "holds 2 models (1 tiny.gguf, 2 tiny2.gguf)");
    snprintf(args, sizeof args, "lens %s --run %lld --model-id 1", fx.store, (long long)other);
    expect_fail(args, "is a run of model 2, not of --model-id 1");
    // Another model's file given as the traced one: its sha256 does not match.
    snprintf(args, sizeof args, "lens %s --run 1 --model %s", fx.store, fx.model2);
    expect_fail(args, "is not model 1 (tiny.gguf)");
    snprintf(args, sizeof args, "precot %s --model %s --model-id 1 --n-steer 2 --folds 3 --bootstrap 20", fx.store, fx.model2);
    expect_fail(args, "is not model 1 (tiny.gguf)");
    // NaN in the activations (last: it corrupts the store's tensor file).
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(fx.store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT f.path, t.offset, t.nbytes FROM tensors t JOIN tensor_files f ON f.id = t.file_id"
                                        " WHERE t.run_id = 5 AND t.hook = 'blocks.1.hook_resid_post'",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int patched = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *fp = (const char *)sqlite3_column_text(q, 0);
        char full[1200];
        if (fp[0] == '/') snprintf(full, sizeof full, "%s", fp);
        else snprintf(full, sizeof full, "%s-tensors/%s", fx.store, fp);
        FILE *fh = fopen(full, "r+b");
        assert_non_null(fh);
        int64_t off = sqlite3_column_int64(q, 1), nb = sqlite3_column_int64(q, 2);
        fseek(fh, (long)off, SEEK_SET);
        for (int64_t i = 0; i < nb; i++) fputc(0xFF, fh);  // f32 0xFFFFFFFF is a NaN
        fclose(fh);
        patched++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(patched > 0);
    snprintf(args, sizeof args, "probe train %s --label gold --model-id 1 --hook blocks.1.hook_resid_post --no-save", fx.store);
    expect_fail(args, "holds NaN");
}

int main(void) {
    if (fixture_build(&fx, 40)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_store_reload),
        cmocka_unit_test(test_apply_matches_hand_softmax),
        cmocka_unit_test(test_cli_tables_and_json),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
