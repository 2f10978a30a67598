// The pre-CoT analysis and the logit lens (probes/precot, probes/lens) on a store traced in the
// test with a tiny model trained for two seconds:
// - the control direction is orthogonal to w (|cos| < 1e-6) with the same norm, seeded;
// - the steering direction raises logit(to) - logit(from) of the probe by exactly the predicted
//   amount (a linear probe: checked against the probe's own predict_proba);
// - steering with alpha = 0 reproduces the unsteered generation (and the traced run) token for
//   token; a large alpha changes it;
// - pl_precot_run stores its analyses; flip rate at alpha 0 is 0; the taxonomy counts of every
//   (direction, alpha) add up to the number of steered items;
// - the logit lens's last row equals the model's own logits (ln_final + unembedding of the final
//   resid_post) to 1e-4, and its ranks agree with a sort of those logits.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/linear/controls.h"

#include "probes/lens/lens.h"
#include "runtime/base/rng.h"
#include "probes/precot/precot.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"
#include "tests/precot_fixture.h"

static precot_fixture fx;

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

static void test_orthogonal_control(void **state) {
    (void)state;
    for (int d = 8; d <= 512; d *= 4) {
        float *w = malloc(sizeof(float) * d), *c = malloc(sizeof(float) * d), *c2 = malloc(sizeof(float) * d);
        pl_rng r = pl_rng_seed((uint64_t)d);
        for (int j = 0; j < d; j++) w[j] = (float)(3.0 * pl_rng_normal(&r) + 0.5);
        assert_int_equal(pl_orthogonal_control(c, w, d, 42), 0);
        double nw = sqrt(dot(w, w, d)), nc = sqrt(dot(c, c, d));
        double cosine = dot(c, w, d) / (nw * nc);
        printf("d=%d: cos(control, w) = %.2e, |control|/|w| - 1 = %.2e\n", d, cosine, nc / nw - 1);
        assert_true(fabs(cosine) < 1e-6);
        assert_true(fabs(nc / nw - 1) < 1e-6);
        assert_int_equal(pl_orthogonal_control(c2, w, d, 42), 0);
        assert_memory_equal(c, c2, sizeof(float) * d);  // seeded
        assert_int_equal(pl_orthogonal_control(c2, w, d, 43), 0);
        assert_true(fabs(dot(c, c2, d)) < 0.9 * nc * nc);  // another seed, another direction
        free(w), free(c), free(c2);
    }
    float z[4] = {0};
    float out[4];
    assert_int_equal(pl_orthogonal_control(out, z, 4, 1), -1);
}

// logit_to - logit_from moves by exactly |w|·alpha·(unit direction · gradient): for a linear probe
// the change of log(p_to / p_from) equals the directional derivative times the step.
static void test_steer_direction(void **state) {
    (void)state;
    int n = 300, d = 6, k = 3;
    float *x = malloc(sizeof(float) * n * d);
    int32_t *y = malloc(sizeof(int32_t) * n);
    pl_rng r = pl_rng_seed(5);
    for (int i = 0; i < n; i++) {
        y[i] = i % k;
        for (int j = 0; j < d; j++) x[i * d + j] = (float)(pl_rng_normal(&r) * (1 + j) + (j == y[i] ? 2.0 : 0.0) + 10);
    }
    pl_probe *p;
    assert_int_equal(pl_probe_fit(&p, x, y, n, d, NULL), 0);
    float dir[6], base[6], moved[6], pb[3], pm[3];
    assert_int_equal(pl_steer_direction(dir, p, 0, 2, 5.0), 0);
    assert_true(fabs(sqrt(dot(dir, dir, d)) - 5.0) < 1e-5);
    // Predicted change of (z_2 - z_0) along dir: Σ_j (W2j - W0j)/std_j · dir_j.
    double want = 0;
    for (int j = 0; j < d; j++) want += ((double)p->weights[2 * d + j] - p->weights[j]) / p->std[j] * dir[j];
    assert_true(want > 0);  // it pushes toward class 2
    for (int j = 0; j < d; j++) base[j] = x[j], moved[j] = x[j] + dir[j];
    assert_int_equal(pl_probe_predict_proba(pb, p, base, 1), 0);
    assert_int_equal(pl_probe_predict_proba(pm, p, moved, 1), 0);
    double got = (log(pm[2]) - log(pm[0])) - (log(pb[2]) - log(pb[0]));
    printf("steer direction: Δ log(p2/p0) = %.5f, predicted %.5f\n", got, want);
    assert_true(fabs(got - want) < 1e-3 * fmax(1, fabs(want)));
    assert_int_equal(pl_steer_direction(dir, p, 1, 1, 1.0), -1);
    pl_probe_free(p);
    free(x), free(y);
}

static void test_steer_generate(void **state) {
    (void)state;
    pl_model *m;
    pl_session *sess;
    pl_store *s;
    assert_int_equal(pl_model_open(&m, fx.model), 0);
    assert_int_equal(pl_session_open(&sess, m, 0), 0);
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_READ), 0);
    pl_token_row *tok;
    int nt;
    pl_run_info run;
    assert_int_equal(pl_store_get_run(s, 4, &run), 0);
    assert_int_equal(pl_store_get_tokens(s, 4, &tok, &nt), 0);
    int32_t *ids = malloc(sizeof(int32_t) * nt);
    for (int i = 0; i < nt; i++) ids[i] = tok[i].id;
    int d = m->config.d_model, layers[2] = {0, 1};
    float *v = malloc(sizeof(float) * 2 * d);
    pl_rng r = pl_rng_seed(9);
    for (int j = 0; j < 2 * d; j++) v[j] = (float)pl_rng_normal(&r);
    const float *vecs[2] = {v, v + d};
    char *plain, *zero, *big;
    assert_int_equal(pl_steer_generate(&plain, sess, ids, run.n_prompt, NULL, NULL, 0, 0, 24), 0);
    assert_int_equal(pl_steer_generate(&zero, sess, ids, run.n_prompt, layers, vecs, 2, 0.0f, 24), 0);
    assert_int_equal(pl_steer_generate(&big, sess, ids, run.n_prompt, layers, vecs, 2, 40.0f, 24), 0);
    // The traced run's generated text, from its token ids.
    char *traced = pl_tokenizer_decode(m->tokenizer, ids + run.n_prompt, nt - run.n_prompt);
    printf("unsteered '%s' | alpha 0 '%s' | alpha 40 '%s'\n", plain, zero, big);
    assert_string_equal(plain, zero);
    assert_string_equal(plain, traced);
    assert_string_not_equal(plain, big);
    free(plain), free(zero), free(big), free(traced), free(ids), free(tok), free(v);
    pl_store_close(s);
    pl_session_free(sess);
    pl_model_free(m);
}

static void test_precot_end_to_end(void **state) {
    (void)state;
    pl_store *s;
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_WRITE), 0);
    pl_precot_options o = pl_precot_defaults();
    o.model_path = fx.model;
    float alphas[] = {-4, 0, 4, 16};
    o.n_alphas = 4;
    memcpy(o.alphas, alphas, sizeof alphas);
    o.n_steer = 6;
    o.steer_all = 1;  // the tiny model is mostly wrong; steer whatever it answers
    o.max_new = 24;
    o.n_folds = 3;
    o.n_bootstrap = 100;
    FILE *devnull = fopen("/dev/null", "w");
    int rc = pl_precot_run(s, &o, devnull);
    fclose(devnull);
    if (rc) fprintf(stderr, "%s\n", pl_errmsg());
    assert_int_equal(rc, 0);
    pl_analysis a;
    assert_int_equal(pl_store_get_analysis(s, "precot.auroc_by_layer", &a), 0);
    int seen[2] = {0, 0};
    for (int i = 0; i < a.n_rows; i++) {
        const pl_analysis_row *r = &a.rows[i];
        if (strcmp(r->series, "max/gold") == 0 || strcmp(r->series, "max/answer") == 0) {
            assert_true(r->x == 0 || r->x == 1);
            assert_true(r->y >= 0 && r->y <= 1 && r->lo <= r->y + 1e-12 && r->y <= r->hi + 1e-12);
            seen[strcmp(r->series, "max/gold") == 0]++;
        }
    }
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 2);
    pl_analysis_free(&a);
    // Selectivity is its own analysis: probe accuracy minus control-task accuracy, at every layer.
    pl_analysis acc, sel;
    assert_int_equal(pl_store_get_analysis(s, "precot.accuracy_by_layer", &acc), 0);
    assert_int_equal(pl_store_get_analysis(s, "precot.selectivity_by_layer", &sel), 0);
    assert_string_equal(acc.kind, "by_layer");
    int n_sel = 0;
    for (int i = 0; i < sel.n_rows; i++) {
        char control[96];
        snprintf(control, sizeof control, "%s/control", sel.rows[i].series);
        double a_probe = NAN, a_control = NAN;
        for (int j = 0; j < acc.n_rows; j++) {
            if (acc.rows[j].x != sel.rows[i].x) continue;
            if (strcmp(acc.rows[j].series, sel.rows[i].series) == 0) a_probe = acc.rows[j].y;
            if (strcmp(acc.rows[j].series, control) == 0) a_control = acc.rows[j].y;
        }
        assert_true(fabs(sel.rows[i].y - (a_probe - a_control)) < 1e-9);
        n_sel++;
    }
    assert_true(n_sel >= 4);  // max/answer and max/gold at layers 0 and 1, at least
    for (int j = 0; j < acc.n_rows; j++) assert_null(strstr(acc.rows[j].series, "selectivity"));
    // Drawing hints: one panel per task, chance line for AUROC, baselines named.
    json_t *pa = json_loads(acc.params_json, 0, NULL);
    assert_non_null(pa);
    assert_string_equal(json_string_value(json_object_get(pa, "facet")), "prefix");
    assert_non_null(json_string_value(json_object_get(pa, "x_label")));
    assert_int_equal(json_array_size(json_object_get(pa, "baselines")), 5);  // input, embed, shuffled, majority, control
    json_decref(pa);
    pl_analysis_free(&acc), pl_analysis_free(&sel);

    pl_analysis flip, tax;
    assert_int_equal(pl_store_get_analysis(s, "precot.flip_rate", &flip), 0);
    assert_int_equal(pl_store_get_analysis(s, "precot.taxonomy", &tax), 0);
    assert_string_equal(flip.kind, "flip_rate");
    assert_string_equal(tax.kind, "counts");
    // Sample sizes live in the params, not among the rates.
    json_t *fp = json_loads(flip.params_json, 0, NULL);
    assert_non_null(fp);
    double n_items = json_number_value(json_object_get(json_object_get(fp, "n_items"), "max"));
    double n_all = json_number_value(json_object_get(json_object_get(fp, "n_items"), "all"));
    json_decref(fp);
    assert_true(n_items == 6);  // n_steer items, every one steered at every alpha
    assert_true(n_all >= n_items);
    for (int i = 0; i < flip.n_rows; i++) {
        size_t len = strlen(flip.rows[i].series);
        assert_false(len >= 2 && strcmp(flip.rows[i].series + len - 2, "/n") == 0);
        assert_true(flip.rows[i].y >= 0 && flip.rows[i].y <= 1);
    }
    const char *dirs[4] = {"probe", "orthogonal", "covariance", "shuffled"};
    int checked = 0;
    for (int dir = 0; dir < 4; dir++)
        for (int k = 0; k < o.n_alphas; k++) {
            char fname[64];
            snprintf(fname, sizeof fname, "max/%s", dirs[dir]);
            double rate = -1, sum = 0;
            for (int i = 0; i < flip.n_rows; i++)
                if (flip.rows[i].x == o.alphas[k] && strcmp(flip.rows[i].series, fname) == 0) rate = flip.rows[i].y;
            char prefix[64];
            snprintf(prefix, sizeof prefix, "max/%s/", dirs[dir]);
            for (int i = 0; i < tax.n_rows; i++)
                if (tax.rows[i].x == o.alphas[k] && strncmp(tax.rows[i].series, prefix, strlen(prefix)) == 0) sum += tax.rows[i].y;
            assert_true(sum == n_items);  // each steered CoT gets exactly one class
            if (o.alphas[k] == 0) assert_true(rate == 0);
            assert_true(rate >= 0 && rate <= 1);
            checked++;
        }
    assert_int_equal(checked, 16);
    pl_analysis_free(&flip), pl_analysis_free(&tax);
    pl_store_close(s);
}

static void test_lens_matches_logits(void **state) {
    (void)state;
    pl_model *m;
    pl_session *sess;
    pl_store *s;
    assert_int_equal(pl_model_open(&m, fx.model), 0);
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_READ), 0);
    pl_token_row *tok;
    int nt;
    assert_int_equal(pl_store_get_tokens(s, 2, &tok, &nt), 0);
    int32_t *ids = malloc(sizeof(int32_t) * nt);
    for (int i = 0; i < nt; i++) ids[i] = tok[i].id;
    int V = m->config.vocab_size;
    int32_t target = pl_lens_answer_token(m, "A:", "7");
    assert_true(target >= 0);
    pl_lens lens;
    assert_int_equal(pl_logit_lens(&lens, m, ids, nt, 5, target), 0);
    assert_int_equal(lens.n_rows, m->config.n_layers + 1);
    // The model's own logits at every position, from a plain forward pass.
    assert_int_equal(pl_session_open(&sess, m, 0), 0);
    pl_session_want_all_logits(sess, true);
    const float *logits;
    assert_int_equal(pl_forward(sess, ids, nt, &logits), 0);
    double err = test_max_abs_diff(lens.last_logits, logits, (size_t)nt * V);
    printf("lens last row vs model logits: max |diff| = %.2e over %d positions x %d\n", err, nt, V);
    assert_true(err < 1e-4);
    // Ranks and top-k of the last row against the logits themselves.
    for (int p = 0; p < nt; p++) {
        const float *l = logits + (size_t)p * V;
        int above = 0;
        for (int v = 0; v < V; v++) above += l[v] > l[target];
        assert_int_equal(lens.target_rank[(size_t)(lens.n_rows - 1) * nt + p], above + 1);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (l[v] > l[best]) best = v;
        assert_int_equal(lens.top_ids[((size_t)(lens.n_rows - 1) * nt + p) * 5], best);
    }
    pl_lens_free(&lens);
    pl_session_free(sess);
    pl_store_close(s);
    // The stored analysis.
    assert_int_equal(pl_store_open(&s, fx.store, PL_STORE_WRITE), 0);
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(pl_lens_run(s, fx.model, 0, 2, 3, NULL, devnull, 0), 0);
    fclose(devnull);
    pl_analysis a;
    assert_int_equal(pl_store_get_analysis(s, "lens.2", &a), 0);
    int n_rank = 0;
    for (int i = 0; i < a.n_rows; i++)
        if (strcmp(a.rows[i].series, "gold_rank@answer") == 0) assert_true(a.rows[i].y >= 1), n_rank++;
    assert_int_equal(n_rank, m->config.n_layers + 1);
    // Drawn as a heatmap of p(gold) with the run's tokens as labels, beside p(gold) by layer.
    assert_string_equal(a.kind, "logit_lens");
    json_t *lp = json_loads(a.params_json, 0, NULL);
    assert_non_null(lp);
    json_t *panels = json_object_get(lp, "panels");
    assert_int_equal(json_array_size(panels), 2);
    json_t *heat = json_array_get(panels, 0);
    assert_string_equal(json_string_value(json_object_get(heat, "matrix")), "gold_prob");
    assert_int_equal(json_array_size(json_object_get(heat, "col_labels")), nt);
    assert_int_equal(json_array_size(json_object_get(heat, "row_labels")), m->config.n_layers + 1);
    json_decref(lp);
    pl_analysis_free(&a);
    float *mat;
    int r, c;
    assert_int_equal(pl_store_get_analysis_matrix(s, "lens.2", "top_ids", &mat, &r, &c), 0);
    assert_int_equal(r, (m->config.n_layers + 1) * nt);
    assert_int_equal(c, 3);
    // top1_prob[r][p] is the first of top_probs' k entries of (r, p).
    float *top, *top1;
    int r1, c1;
    assert_int_equal(pl_store_get_analysis_matrix(s, "lens.2", "top_probs", &top, &r, &c), 0);
    assert_int_equal(pl_store_get_analysis_matrix(s, "lens.2", "top1_prob", &top1, &r1, &c1), 0);
    assert_int_equal(r1, m->config.n_layers + 1);
    assert_int_equal(c1, nt);
    for (int i = 0; i < r1 * c1; i++) assert_true(top1[i] == top[(size_t)i * 3]);
    free(top), free(top1);
    free(mat);
    pl_store_close(s);
    free(ids), free(tok);
    pl_model_free(m);
}

int main(void) {
    if (fixture_build(&fx, 30)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orthogonal_control), cmocka_unit_test(test_steer_direction),
        cmocka_unit_test(test_steer_generate),     cmocka_unit_test(test_lens_matches_logits),
        cmocka_unit_test(test_precot_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
