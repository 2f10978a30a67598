// Probe metrics (probes/linear/metrics.h): AUROC with ties against hand-worked cases and a
// brute-force pair count, macro AUROC as the mean of per-class pair counts, log-loss and accuracy
// by hand, bootstrap intervals (contain the estimate, shrink with n, seeded, resample whole
// groups), ROC points (area = AUROC), reliability bins, the majority baseline, and control-task
// labels (one label per type, drawn from the label distribution).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/linear/metrics.h"
#include "runtime/base/rng.h"
#include "runtime/base/error.h"
#include "tests/support/test_support.h"

// AUROC as the probability that a positive outscores a negative, ties counting one half: O(n²).
static double brute_auroc(const float *s, const uint8_t *pos, int64_t n) {
    double wins = 0, pairs = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (pos[i] && !pos[j]) wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0, pairs++;
    return wins / pairs;
}

static void test_auroc_hand_cases(void **state) {
    double a;
    // Classic example (sklearn docs): 0.75.
    assert_int_equal(pl_auroc_binary(&a, (float[]){0.1f, 0.4f, 0.35f, 0.8f}, (uint8_t[]){0, 0, 1, 1}, 4), 0);
    assert_true(fabs(a - 0.75) < 1e-12);
    // Ties across classes: pairs (0.5>0.1)=1, (0.5=0.5)=½, (0.9>0.1)=1, (0.9>0.5)=1 → 3.5/4.
    assert_int_equal(pl_auroc_binary(&a, (float[]){0.1f, 0.5f, 0.5f, 0.9f}, (uint8_t[]){0, 1, 0, 1}, 4), 0);
    assert_true(fabs(a - 0.875) < 1e-12);
    // All scores equal: 0.5. Perfect and reversed rankings: 1 and 0.
    assert_int_equal(pl_auroc_binary(&a, (float[]){3, 3, 3, 3, 3}, (uint8_t[]){0, 1, 0, 1, 1}, 5), 0);
    assert_true(fabs(a - 0.5) < 1e-12);
    assert_int_equal(pl_auroc_binary(&a, (float[]){1, 2, 3, 4}, (uint8_t[]){0, 0, 1, 1}, 4), 0);
    assert_true(fabs(a - 1) < 1e-12);
    assert_int_equal(pl_auroc_binary(&a, (float[]){1, 2, 3, 4}, (uint8_t[]){1, 1, 0, 0}, 4), 0);
    assert_true(fabs(a) < 1e-12);
    // One class only: an error, not a number.
    assert_int_equal(pl_auroc_binary(&a, (float[]){1, 2}, (uint8_t[]){1, 1}, 2), -1);
    printf("one class: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), "only positive"));
    // Random scores quantized to 7 levels (many ties) against the brute-force pair count.
    pl_rng rng = pl_rng_seed(8);
    float s[500];
    uint8_t pos[500];
    for (int i = 0; i < 500; i++) {
        s[i] = (float)pl_rng_below(&rng, 7);
        pos[i] = pl_rng_uniform(&rng) < 0.2 + 0.08 * s[i];
    }
    double brute = brute_auroc(s, pos, 500);
    assert_int_equal(pl_auroc_binary(&a, s, pos, 500), 0);
    printf("tied random scores: %.12f vs brute force %.12f\n", a, brute);
    assert_true(fabs(a - brute) < 1e-12);
}

static void test_macro_auroc_and_simple_metrics(void **state) {
    const int n = 300, k = 4;
    float probs[300 * 4];
    int32_t y[300];
    pl_rng rng = pl_rng_seed(12);
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)pl_rng_below(&rng, k);
        double sum = 0;
        for (int c = 0; c < k; c++) {
            // Coarse values (ties) with signal for the true class.
            probs[i * k + c] = (float)(pl_rng_below(&rng, 5) + 1 + (c == y[i]) * 2);
            sum += probs[i * k + c];
        }
        for (int c = 0; c < k; c++) probs[i * k + c] /= (float)sum;
    }
    double expected = 0, a;
    for (int c = 0; c < k; c++) {
        float col[300];
        uint8_t pos[300];
        for (int i = 0; i < n; i++) col[i] = probs[i * k + c], pos[i] = y[i] == c;
        expected += brute_auroc(col, pos, n) / k;
    }
    assert_int_equal(pl_metric_eval(&a, PL_METRIC_AUROC, probs, y, n, k), 0);
    printf("macro auroc %.12f vs brute force %.12f\n", a, expected);
    assert_true(fabs(a - expected) < 1e-12);
    // Log-loss and accuracy by hand on three rows.
    float p3[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f, 0.3f, 0.4f, 0.3f};
    int32_t y3[] = {0, 2, 0};
    double ll, acc;
    assert_int_equal(pl_metric_eval(&ll, PL_METRIC_LOG_LOSS, p3, y3, 3, 3), 0);
    assert_int_equal(pl_metric_eval(&acc, PL_METRIC_ACCURACY, p3, y3, 3, 3), 0);
    double want = -(log(0.7f) + log(0.8f) + log(0.3f)) / 3;
    assert_true(fabs(ll - want) < 1e-7);
    assert_true(fabs(acc - 2.0 / 3) < 1e-12);
    // Binary (k = 2) AUROC uses the second column.
    float p2[] = {0.9f, 0.1f, 0.4f, 0.6f, 0.7f, 0.3f, 0.2f, 0.8f};
    int32_t y2[] = {0, 1, 1, 0};
    assert_int_equal(pl_metric_eval(&a, PL_METRIC_AUROC, p2, y2, 4, 2), 0);
    assert_true(fabs(a - 0.5) < 1e-12);  // positives 0.6, 0.3 vs negatives 0.1, 0.8: 2 of 4 pairs
    // Out-of-range class index is an error.
    int32_t bad[] = {0, 5, 0};
    assert_int_equal(pl_metric_eval(&acc, PL_METRIC_ACCURACY, p3, bad, 3, 3), -1);
    assert_non_null(strstr(pl_errmsg(), "row 1"));
}

// Synthetic predictions: n rows in groups of 4, correct with probability 0.8.
static void make_predictions(float *probs, int32_t *y, int32_t *groups, int n, uint64_t seed) {
    pl_rng rng = pl_rng_seed(seed);
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)pl_rng_below(&rng, 3);
        groups[i] = i / 4;
        int guess = pl_rng_uniform(&rng) < 0.8 ? y[i] : (int)pl_rng_below(&rng, 3);
        double conf = 0.5 + 0.4 * pl_rng_uniform(&rng);
        for (int c = 0; c < 3; c++) probs[i * 3 + c] = (float)(c == guess ? conf : (1 - conf) / 2);
    }
}

static void test_bootstrap(void **state) {
    const int n_small = 200, n_big = 2000;
    float *probs = malloc(sizeof(float) * n_big * 3);
    int32_t *y = malloc(sizeof(int32_t) * n_big), *groups = malloc(sizeof(int32_t) * n_big);
    double width_small = 0;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? n_big : n_small;
        make_predictions(probs, y, groups, n, 77);
        const pl_metric metrics[] = {PL_METRIC_ACCURACY, PL_METRIC_AUROC, PL_METRIC_LOG_LOSS};
        for (int m = 0; m < 3; m++) {
            double v, lo, hi, lo2, hi2;
            assert_int_equal(pl_metric_eval(&v, metrics[m], probs, y, n, 3), 0);
            assert_int_equal(pl_metric_bootstrap(&lo, &hi, metrics[m], probs, y, groups, n, 3, 1000, 5), 0);
            assert_int_equal(pl_metric_bootstrap(&lo2, &hi2, metrics[m], probs, y, groups, n, 3, 1000, 5), 0);
            printf("n=%d %s: %.4f [%.4f, %.4f]\n", n, pl_metric_name(metrics[m]), v, lo, hi);
            assert_true(lo <= v && v <= hi);
            assert_true(lo == lo2 && hi == hi2);  // seeded
            if (metrics[m] == PL_METRIC_ACCURACY) {
                // The binomial standard error gives the expected width: 2·1.96·sqrt(p(1-p)/n),
                // a bit wider because rows of a group are resampled together.
                double se = sqrt(v * (1 - v) / n);
                assert_true(hi - lo > 0.7 * 3.92 * se && hi - lo < 1.6 * 3.92 * se);
                if (!pass) width_small = hi - lo;
                else assert_true(hi - lo < 0.5 * width_small);  // sqrt(200/2000) ≈ 0.32
            }
        }
    }
    // Resampling whole groups: if every group is 4 copies of one row, group resampling gives the
    // same interval width as resampling rows of the 1/4-size data set, while row resampling of the
    // copies would be half as wide.
    for (int i = 0; i < n_small; i++) {
        int src = i / 4 * 4;
        y[i] = y[src];
        memcpy(probs + i * 3, probs + src * 3, sizeof(float) * 3);
    }
    double lo_g, hi_g, lo_r, hi_r;
    assert_int_equal(pl_metric_bootstrap(&lo_g, &hi_g, PL_METRIC_ACCURACY, probs, y, groups, n_small, 3, 2000, 1), 0);
    assert_int_equal(pl_metric_bootstrap(&lo_r, &hi_r, PL_METRIC_ACCURACY, probs, y, NULL, n_small, 3, 2000, 1), 0);
    printf("duplicated rows: group width %.4f, row width %.4f\n", hi_g - lo_g, hi_r - lo_r);
    assert_true(hi_g - lo_g > 1.5 * (hi_r - lo_r));
    assert_int_equal(pl_metric_bootstrap(&lo_g, &hi_g, PL_METRIC_ACCURACY, probs, y, (int32_t[4]){1, 1, 1, 1}, 4, 3, 100, 1), -1);
    free(probs), free(y), free(groups);
}

static void test_roc_curve(void **state) {
    pl_rng rng = pl_rng_seed(3);
    float s[300];
    uint8_t pos[300];
    for (int i = 0; i < 300; i++) {
        s[i] = (float)pl_rng_below(&rng, 20) / 20;
        pos[i] = pl_rng_uniform(&rng) < s[i];
    }
    float *fpr, *tpr, *th;
    int64_t m;
    assert_int_equal(pl_roc_curve(&fpr, &tpr, &th, &m, s, pos, 300), 0);
    assert_true(m >= 2 && m <= 21);
    assert_true(fpr[0] == 0 && tpr[0] == 0 && isinf(th[0]));
    assert_true(fpr[m - 1] == 1 && tpr[m - 1] == 1);
    double area = 0;
    for (int64_t i = 1; i < m; i++) {
        assert_true(fpr[i] >= fpr[i - 1] && tpr[i] >= tpr[i - 1] && th[i] < th[i - 1]);
        area += 0.5 * (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]);
    }
    double a;
    assert_int_equal(pl_auroc_binary(&a, s, pos, 300), 0);
    printf("roc: %lld points, trapezoid area %.6f, auroc %.6f\n", (long long)m, area, a);
    assert_true(fabs(area - a) < 1e-6);
    free(fpr), free(tpr), free(th);
}

static void test_reliability(void **state) {
    // Top-label confidences 0.95 (correct), 0.92 (wrong), 0.55 (correct), 0.6 (correct); 10 bins.
    float probs[] = {0.95f, 0.05f, 0.08f, 0.92f, 0.55f, 0.45f, 0.4f, 0.6f};
    int32_t y[] = {0, 0, 0, 1};
    double conf[10], acc[10], ece;
    int64_t count[10];
    assert_int_equal(pl_reliability_bins(conf, acc, count, &ece, probs, y, 4, 2, 10), 0);
    assert_int_equal(count[9], 2);
    assert_int_equal(count[5], 1);
    assert_int_equal(count[6], 1);
    assert_true(fabs(conf[9] - 0.935) < 1e-6 && fabs(acc[9] - 0.5) < 1e-12);
    assert_true(isnan(conf[0]) && count[0] == 0);
    double want = 0.5 * fabs(0.5 - 0.935) + 0.25 * fabs(1 - 0.55) + 0.25 * fabs(1 - 0.6);
    printf("ece %.6f (by hand %.6f)\n", ece, want);
    assert_true(fabs(ece - want) < 1e-6);
}

static void test_baselines(void **state) {
    int32_t y_train[] = {2, 1, 2, 0, 2, 1}, y_test[] = {2, 2, 1, 0};
    int32_t majority;
    double acc;
    assert_int_equal(pl_majority_baseline(&majority, &acc, y_train, 6, y_test, 4, 3), 0);
    assert_int_equal(majority, 2);
    assert_true(fabs(acc - 0.5) < 1e-12);
    // Control labels: 5000 rows over 50 types, labels 70% class 0, 20% class 1, 10% class 2.
    const int n = 5000;
    int32_t *y = malloc(sizeof(int32_t) * n), *types = malloc(sizeof(int32_t) * n);
    int32_t *ctrl = malloc(sizeof(int32_t) * n), *ctrl2 = malloc(sizeof(int32_t) * n);
    pl_rng rng = pl_rng_seed(2);
    for (int i = 0; i < n; i++) {
        double u = pl_rng_uniform(&rng);
        y[i] = u < 0.7 ? 0 : u < 0.9 ? 1 : 2;
        types[i] = 1000 + (int32_t)pl_rng_below(&rng, 50) * 17;
    }
    assert_int_equal(pl_control_labels(ctrl, y, types, n, 99), 0);
    assert_int_equal(pl_control_labels(ctrl2, y, types, n, 99), 0);
    int32_t label_of[2000];
    for (int t = 0; t < 2000; t++) label_of[t] = -1;
    for (int i = 0; i < n; i++) {
        int t = (types[i] - 1000) / 17;
        assert_int_equal(ctrl[i], ctrl2[i]);
        if (label_of[t] < 0) label_of[t] = ctrl[i];
        assert_int_equal(ctrl[i], label_of[t]);  // same type, same control label
        assert_true(ctrl[i] >= 0 && ctrl[i] <= 2);
    }
    // Over many seeds the per-type labels follow the label distribution (≈ 0.7 / 0.2 / 0.1).
    int64_t hist[3] = {0};
    for (uint64_t seed = 0; seed < 40; seed++) {
        assert_int_equal(pl_control_labels(ctrl, y, types, n, seed), 0);
        for (int t = 0; t < 50; t++)
            for (int i = 0; i < n; i++)
                if ((types[i] - 1000) / 17 == t) {
                    hist[ctrl[i]]++;
                    break;
                }
    }
    printf("control label shares over 2000 draws: %.3f %.3f %.3f\n", hist[0] / 2000.0, hist[1] / 2000.0,
           hist[2] / 2000.0);
    assert_true(fabs(hist[0] / 2000.0 - 0.7) < 0.05 && fabs(hist[1] / 2000.0 - 0.2) < 0.04 &&
                fabs(hist[2] / 2000.0 - 0.1) < 0.03);
    free(y), free(types), free(ctrl), free(ctrl2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auroc_hand_cases), cmocka_unit_test(test_macro_auroc_and_simple_metrics),
        cmocka_unit_test(test_bootstrap),        cmocka_unit_test(test_roc_curve),
        cmocka_unit_test(test_reliability),      cmocka_unit_test(test_baselines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
