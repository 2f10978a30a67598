// Controls that can refute a probe, on stores built here with a planted signal (synthetic hook
// events through the recorder, no model):
// - a feature linearly present in the input (the count of one prompt token): the input-only
//   baseline matches the probe;
// - a signal present only in a hidden residual direction (prompts independent of the label): the
//   probe beats every input baseline by a wide margin;
// - labels with no information and a high-variance residual subspace that a (synthetic) model
//   reads: the covariance-matched and shuffled-label directions flip as often as the probe's,
//   the isotropic control far less (it would wrongly confirm the probe);
// - the pieces: bag / positional / categorical design matrices against hand counts, label
//   shuffling keeps the multiset, the covariance control is orthogonal to w with its norm;
// - bad input: one class after filtering, --by a key no run has, steering without a model file.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/linear/controls.h"
#include "probes/precot/precot.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"
#include "runtime/base/rng.h"
#include "runtime/hooks.h"
#include "runtime/store/recorder.h"
#include "runtime/store/store.h"
#include "tests/support/test_support.h"

enum { D = 32, N_PROMPT = 6, VOCAB = 10, TOKEN0 = 20 };

typedef enum { PLANT_INPUT, PLANT_HIDDEN, PLANT_VARIANCE } plant_kind;

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

// A fixed unit direction per index (seeded): the hidden signal and the high-variance subspace.
static void direction(float *v, int which) {
    pl_rng r = pl_rng_seed(1000 + (uint64_t)which);
    for (int j = 0; j < D; j++) v[j] = (float)pl_rng_normal(&r);
    double n = sqrt(dot(v, v, D));
    for (int j = 0; j < D; j++) v[j] = (float)(v[j] / n);
}

// The prompt, label and last-prompt residual of example i under a plant.
static void plant(plant_kind kind, int i, int32_t *ids, char *label, float *resid) {
    pl_rng r = pl_rng_seed(77 + (uint64_t)i * 31 + (uint64_t)kind * 100003);
    for (int t = 0; t < N_PROMPT; t++) ids[t] = TOKEN0 + (int32_t)pl_rng_below(&r, VOCAB);
    for (int j = 0; j < D; j++) resid[j] = (float)pl_rng_normal(&r);
    float h[D];
    if (kind == PLANT_INPUT) {  // the label is "does token 20 occur"; the residual carries its count
        int count = 0;
        for (int t = 0; t < N_PROMPT; t++) count += ids[t] == TOKEN0;
        snprintf(label, 8, "%d", count > 0);
        direction(h, 0);
        for (int j = 0; j < D; j++) resid[j] += 2.0f * (float)count * h[j];
    } else if (kind == PLANT_HIDDEN) {  // a label the prompt knows nothing of, in a hidden direction
        int y = (int)pl_rng_below(&r, 2);
        snprintf(label, 8, "%d", y);
        direction(h, 0);
        for (int j = 0; j < D; j++) resid[j] += 1.5f * (2.0f * y - 1.0f) * h[j];
    } else {  // three labels with no information; eight directions of sd 10
        snprintf(label, 8, "%d", (int)pl_rng_below(&r, 3));
        for (int k = 0; k < 8; k++) {
            direction(h, 10 + k);
            double z = 10.0 * pl_rng_normal(&r);
            for (int j = 0; j < D; j++) resid[j] += (float)(z * h[j]);
        }
    }
}

// A store of n examples of task "syn" (plus, with constant_task, 20 of task "const" whose answer
// is always 5): hook_embed (a fixed vector per token id) at every prompt position and
// blocks.0.hook_resid_post (the plant at the last prompt position, noise before it).
static void build_store(const char *path, plant_kind kind, int n, int constant_task) {
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE) != 0) fail_msg("%s", pl_errmsg());
    pl_config cfg = {0};
    cfg.arch = PL_ARCH_LLAMA, cfg.n_layers = 1, cfg.d_model = D, cfg.n_heads = 1, cfg.n_kv_heads = 1, cfg.head_dim = D;
    pl_hooks *hooks = pl_hooks_new(&cfg);
    pl_record_opts o = {.record = "hook_embed,blocks.0.hook_resid_post", .positions = PL_POS_ALL, .dtype = PL_DTYPE_F32};
    pl_recorder *rec;
    if (pl_recorder_new(&rec, s, hooks, &o) != 0) fail_msg("%s", pl_errmsg());
    int64_t ds, model_id;  // a model whose file is gone: steering must refuse before any work
    assert_int_equal(pl_store_put_model(s, "gone", "/nonexistent/gone.gguf", "00", "{}", &model_id), 0);
    assert_int_equal(pl_store_put_dataset(s, "syn", "syn.jsonl", "00", n, &ds), 0);
    int total = n + (constant_task ? 20 : 0);
    for (int i = 0; i < total; i++) {
        int32_t ids[N_PROMPT];
        char label[8], prompt[64] = "";
        float resid[D], rows[N_PROMPT * D];
        plant(kind, i, ids, label, resid);
        int is_const = i >= n;
        if (is_const) snprintf(label, sizeof label, "5");
        for (int t = 0; t < N_PROMPT; t++) snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "%c", 'a' + ids[t] - TOKEN0);
        pl_store_example e = {.task = is_const ? "const" : "syn", .prompt = prompt, .answer = label, .difficulty = 1 + i % 3};
        int64_t ex;
        assert_int_equal(pl_store_put_example(s, ds, i, &e, &ex), 0);
        assert_int_equal(pl_recorder_begin_run(rec, model_id, ex, "{}", N_PROMPT), 0);
        for (int t = 0; t < N_PROMPT; t++) {
            float e_row[D];
            pl_rng er = pl_rng_seed(5000 + (uint64_t)ids[t]);
            for (int j = 0; j < D; j++) e_row[j] = (float)pl_rng_normal(&er);
            memcpy(rows + t * D, e_row, sizeof e_row);
        }
        pl_hook_event ev = {.kind = PL_HOOK_EMBED, .layer = -1, .pos0 = 0, .n_pos = N_PROMPT, .n_ctx = N_PROMPT, .ndim = 2,
                            .row_size = D, .data = rows};
        ev.shape[0] = N_PROMPT, ev.shape[1] = D;
        pl_hooks_fire(hooks, &ev);
        pl_rng nr = pl_rng_seed(9000 + (uint64_t)i);
        for (int t = 0; t < N_PROMPT - 1; t++)
            for (int j = 0; j < D; j++) rows[t * D + j] = (float)pl_rng_normal(&nr);
        memcpy(rows + (N_PROMPT - 1) * D, resid, sizeof resid);
        pl_hook_event er = ev;
        er.kind = PL_HOOK_RESID_POST, er.layer = 0;
        pl_hooks_fire(hooks, &er);
        pl_token_row tokens[N_PROMPT];
        for (int t = 0; t < N_PROMPT; t++) {
            tokens[t] = (pl_token_row){.id = ids[t], .segment = PL_SEG_PROMPT, .logprob = NAN, .entropy = NAN};
            snprintf(tokens[t].piece, sizeof tokens[t].piece, "%c", 'a' + ids[t] - TOKEN0);
        }
        pl_label labels[2] = {{.key = "answer", .is_text = true}, {.key = "correct", .num = i % 4 != 0}};
        snprintf(labels[0].text, sizeof labels[0].text, "%s", label);
        assert_int_equal(pl_recorder_end_run(rec, tokens, N_PROMPT, labels, 2, label), 0);
    }
    assert_int_equal(pl_recorder_close(rec), 0);
    pl_hooks_free(hooks);
    pl_store_close(s);
}

static void sweep(pl_probe_sweep *sw, const char *path, int controls) {
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
    pl_probe_train_options o = pl_probe_train_defaults();
    o.sel.task = "syn";
    o.save = 0;
    o.controls = controls;
    o.eval.n_bootstrap = 50;
    o.eval.cv.n_folds = 3;
    int rc = pl_probe_train_sweep(sw, s, &o);
    if (rc) fprintf(stderr, "%s\n", pl_errmsg());
    assert_int_equal(rc, 0);
    pl_store_close(s);
}

static void print_inputs(const char *what, const pl_probe_sweep *sw) {
    printf("%s: probe AUROC %.3f ± %.3f over %d splits; input-only:", what, sw->layers[0].probe->metrics.auroc,
           sw->layers[0].probe->metrics.auroc_sd, sw->n_splits);
    for (int k = 0; k < PL_INPUT_KINDS; k++)
        if (sw->inputs[k].available) printf(" %s %.3f", pl_input_kind_name(k), sw->inputs[k].metrics.auroc);
    printf("; shuffled %.3f\n", sw->layers[0].probe->metrics.shuffled_auroc);
}

static void test_input_feature_matches_probe(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/input.db", test_tmpdir());
    build_store(path, PLANT_INPUT, 300, 0);
    pl_probe_sweep sw;
    sweep(&sw, path, PL_CONTROL_INPUT | PL_CONTROL_SHUFFLED);
    print_inputs("input-linear feature", &sw);
    const pl_probe_metrics *m = &sw.layers[0].probe->metrics;
    assert_int_equal(sw.n_splits, 5);
    assert_true(sw.best_input >= 0);
    for (int k = 0; k < PL_INPUT_KINDS; k++) assert_true(sw.inputs[k].available);
    assert_true(sw.inputs[PL_INPUT_BAG].metrics.auroc > 0.97);      // the label is a function of the token counts
    assert_true(m->input_auroc >= m->auroc - 0.03);                  // the input explains the probe
    assert_true(m->input_kind == sw.best_input);
    assert_true(fabs(m->shuffled_auroc - 0.5) < 0.15);
    assert_true(m->auroc_sd >= 0 && m->auroc_lo <= m->auroc && m->auroc <= m->auroc_hi);
    pl_probe_sweep_free(&sw);
}

static void test_hidden_signal_beats_input(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/hidden.db", test_tmpdir());
    build_store(path, PLANT_HIDDEN, 300, 0);
    pl_probe_sweep sw;
    sweep(&sw, path, PL_CONTROL_INPUT);
    print_inputs("hidden direction", &sw);
    const pl_probe_metrics *m = &sw.layers[0].probe->metrics;
    assert_true(m->auroc > 0.9);
    for (int k = 0; k < PL_INPUT_KINDS; k++)
        if (sw.inputs[k].available) assert_true(sw.inputs[k].metrics.auroc < 0.65);
    assert_true(m->auroc - m->input_auroc > 0.3);
    // The model's "wrong" runs (every fourth): the probe's top class is their own label most often.
    assert_true(m->n_wrong > 0 && m->wrong_own > 0.7);
    pl_probe_sweep_free(&sw);
}

// A synthetic model that reads only the high-variance subspace U: steering flips an item when
// the part of the direction in U exceeds the item's threshold t ~ U(0.3, 1) of its norm.
static double u_fraction(const float *v) {
    double in = 0;  // the eight directions are nearly orthogonal in 32 dims: sum of squared projections
    for (int k = 0; k < 8; k++) {
        float u[D];
        direction(u, 10 + k);
        double c = dot(v, u, D);
        in += c * c;
    }
    return sqrt(in / dot(v, v, D));
}

static void test_matched_controls_flip_like_a_variance_probe(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/variance.db", test_tmpdir());
    build_store(path, PLANT_VARIANCE, 300, 0);
    pl_probe_sweep sw;
    sweep(&sw, path, PL_CONTROL_SHUFFLED);
    const pl_probe_layer *L = &sw.layers[0];
    assert_non_null(L->shuffled);
    assert_int_equal(L->shuffled->n_classes, L->probe->n_classes);
    pl_store *s;  // the rows' x holds the last hook fitted (hook_embed): read the layer's back
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
    assert_int_equal(pl_probe_rows_read(&sw.rows, s, L->hook), 0);
    pl_store_close(s);
    int flips[4] = {0}, n = 0;
    pl_rng r = pl_rng_seed(3);
    float v[4][D];
    for (int item = 0; item < 120; item++) {
        int from = item % 3, to = (from + 1 + item / 3 % 2) % 3;
        assert_int_equal(pl_steer_direction(v[0], L->probe, from, to, L->mean_norm), 0);
        assert_int_equal(pl_orthogonal_control(v[1], v[0], D, (uint64_t)item), 0);
        assert_int_equal(pl_covariance_control(v[2], v[0], sw.rows.x, sw.rows.n, D, (uint64_t)item), 0);
        assert_int_equal(pl_steer_direction(v[3], L->shuffled, from, to, L->mean_norm), 0);
        double t = 0.3 + 0.7 * pl_rng_uniform(&r);
        for (int k = 0; k < 4; k++) flips[k] += u_fraction(v[k]) > t;
        n++;
    }
    double rate[4];
    for (int k = 0; k < 4; k++) rate[k] = (double)flips[k] / n;
    printf("flip rates (synthetic model reading the high-variance subspace): probe %.2f, orthogonal %.2f, "
           "covariance %.2f, shuffled %.2f\n", rate[0], rate[1], rate[2], rate[3]);
    assert_true(rate[2] >= rate[0] - 0.15);  // the matched controls flip as often as the probe
    assert_true(rate[3] >= rate[0] - 0.15);
    assert_true(rate[1] <= rate[0] - 0.3);   // the isotropic control would have "confirmed" it
    pl_probe_sweep_free(&sw);
}

static void test_design_matrices(void **state) {
    (void)state;
    // Rows: [3 5 3], [5], [] -> bag columns {3, 5}; positional {(0,3), (0,5), (1,5), (2,3)}.
    int32_t ids[] = {3, 5, 3, 5};
    int64_t off[] = {0, 3, 4, 4};
    float *x;
    int d;
    assert_int_equal(pl_input_bag_of_tokens(&x, &d, ids, off, 3), 0);
    assert_int_equal(d, 2);
    float bag[] = {2, 1, 0, 1, 0, 0};
    assert_memory_equal(x, bag, sizeof bag);
    free(x);
    assert_int_equal(pl_input_positional(&x, &d, ids, off, 3), 0);
    assert_int_equal(d, 4);
    float posn[] = {1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(x, posn, sizeof posn);
    free(x);
    // Field 0 varies (values 1, 2, 1), field 1 is constant: two columns.
    int32_t meta[] = {1, 7, 2, 7, 1, 7};
    assert_int_equal(pl_input_categorical(&x, &d, meta, 3, 2), 0);
    assert_int_equal(d, 2);
    float cat[] = {1, 0, 0, 1, 1, 0};
    assert_memory_equal(x, cat, sizeof cat);
    free(x);
    // Shuffling keeps the label multiset and moves whole groups.
    int32_t y[200], g[200], out[200];
    int hist[2][4] = {{0}};
    for (int i = 0; i < 200; i++) y[i] = (i / 2) % 4, g[i] = i / 2;
    assert_int_equal(pl_shuffle_labels(out, y, g, 200, 9), 0);
    int same = 0;
    for (int i = 0; i < 200; i++) {
        hist[0][y[i]]++, hist[1][out[i]]++, same += out[i] == y[i];
        if (i % 2) assert_int_equal(out[i], out[i - 1]);
    }
    assert_memory_equal(hist[0], hist[1], sizeof hist[0]);
    assert_true(same < 100);  // ~50 expected by chance of 4 classes
    // The covariance control: orthogonal to w, |c| = |w|, seeded, inside the data's span.
    float xs[50 * 8], w[8], c[8], c2[8];
    pl_rng r = pl_rng_seed(4);
    for (int i = 0; i < 50; i++)
        for (int j = 0; j < 8; j++) xs[i * 8 + j] = j < 3 ? (float)pl_rng_normal(&r) : 0.0f;  // data lives in dims 0..2
    for (int j = 0; j < 8; j++) w[j] = j == 0 ? 1.0f : 0.0f;
    assert_int_equal(pl_covariance_control(c, w, xs, 50, 8, 1), 0);
    assert_int_equal(pl_covariance_control(c2, w, xs, 50, 8, 1), 0);
    assert_memory_equal(c, c2, sizeof c);
    assert_true(fabs(dot(c, w, 8)) < 1e-6);
    assert_true(fabs(sqrt(dot(c, c, 8)) - 1.0) < 1e-6);
    for (int j = 3; j < 8; j++) assert_true(c[j] == 0.0f);
    assert_int_equal(pl_covariance_control(c, w, xs, 1, 8, 1), -1);
}

static char *run_cli(const char *args, int *status) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", test_probelab_bin(), args);
    char *out = NULL;
    *status = test_run(cmd, &out);
    return out ? out : strdup("");
}

static void expect_fail(const char *args, const char *needle) {
    int status;
    char *out = run_cli(args, &status);
    if (status == 0 || !strstr(out, needle)) fprintf(stderr, "probelab %s\n -> status %d, output:\n%s\n", args, status, out);
    assert_int_not_equal(status, 0);
    assert_true(status < 128);
    assert_non_null(strstr(out, needle));
    int lines = 0;
    for (const char *c = out; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 1);  // one line
    free(out);
}

static void test_bad_input(void **state) {
    (void)state;
    char path[600], args[1024];
    snprintf(path, sizeof path, "%s/bad.db", test_tmpdir());
    build_store(path, PLANT_HIDDEN, 60, 1);
    snprintf(args, sizeof args, "probe train %s --task const --no-save", path);
    expect_fail(args, "single class ('5') over 20 runs (after filtering: task const)");
    snprintf(args, sizeof args, "precot %s --by nokey --n-steer 0 --quiet", path);
    expect_fail(args, "precot --by nokey: no run has 'nokey'");
    snprintf(args, sizeof args, "precot %s --quiet", path);
    expect_fail(args, "/nonexistent/gone.gguf");
    snprintf(args, sizeof args, "probe train %s --controls input,nope", path);
    expect_fail(args, "--controls 'input,nope'");
    // The library refuses steering without a model file too.
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), 0);
    pl_precot_options o = pl_precot_defaults();
    assert_int_equal(pl_precot_run(s, &o, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "/nonexistent/gone.gguf"));
    pl_analysis none;  // nothing half-written
    assert_int_not_equal(pl_store_get_analysis(s, "precot.auroc_by_layer", &none), 0);
    // --by difficulty: every cell of task syn, pooled and per difficulty, with the input baseline.
    o.n_steer = 0, o.by = "difficulty", o.n_folds = 3, o.n_bootstrap = 20, o.tasks = "syn";
    int rc = pl_precot_run(s, &o, NULL);
    if (rc) fprintf(stderr, "%s\n", pl_errmsg());
    assert_int_equal(rc, 0);
    pl_analysis a;
    assert_int_equal(pl_store_get_analysis(s, "precot.auroc_by_layer", &a), 0);
    int seen[4] = {0};
    const char *want[4] = {"syn/answer", "syn/answer/input", "syn@1/answer", "syn@3/answer/input"};
    for (int i = 0; i < a.n_rows; i++)
        for (int k = 0; k < 4; k++) seen[k] += strcmp(a.rows[i].series, want[k]) == 0;
    for (int k = 0; k < 4; k++) assert_int_equal(seen[k], 1);  // one layer
    pl_analysis_free(&a);
    pl_store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_matrices),
        cmocka_unit_test(test_input_feature_matches_probe),
        cmocka_unit_test(test_hidden_signal_beats_input),
        cmocka_unit_test(test_matched_controls_flip_like_a_variance_probe),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
