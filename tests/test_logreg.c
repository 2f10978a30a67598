// Linear probes (probes/linear): the logistic loss and gradient against a double-precision
// reference and central finite differences (multinomial and binary, with L2 and class weights),
// the fused one-pass kernel against the two-sgemm evaluation and a double gradient, blocked
// one-pass standardization against two-pass double,
// ridge against the normal equations solved independently here in double, L-BFGS on Rosenbrock,
// group k-fold folds never splitting a group, cross-validation, and clear errors for bad input.
// Run as `test_logreg fit-npy DIR LAMBDA BALANCED` it fits on DIR/x_train.npy, y_train.npy and
// writes coef, intercept, mean, std, probs (on x_test.npy) and auroc for tests/py_probe_sklearn.sh.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "probes/linear/cv.h"
#include "probes/linear/evaluate.h"
#include "probes/linear/lbfgs.h"
#include "probes/linear/logreg.h"
#include "probes/linear/logreg_fused.h"
#include "probes/linear/metrics.h"
#include "runtime/base/rng.h"
#include "runtime/base/error.h"
#include "runtime/base/npy.h"
#include "tests/support/test_support.h"

// ---- helpers -------------------------------------------------------------------------------------

static void fill_normal(float *x, int64_t n, uint64_t seed) {
    pl_rng rng = pl_rng_seed(seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)pl_rng_normal(&rng);
}

// Gaussian blobs: class c has mean `separation` * N(0, 1) per feature; labels are class indices.
static void make_blobs(float *x, int32_t *y, int64_t n, int d, int k, double separation, uint64_t seed) {
    pl_rng rng = pl_rng_seed(seed);
    double *means = malloc(sizeof(double) * (size_t)k * d);
    for (int i = 0; i < k * d; i++) means[i] = separation * pl_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)pl_rng_below(&rng, (uint64_t)k);
        for (int j = 0; j < d; j++) x[i * d + j] = (float)(means[y[i] * d + j] + pl_rng_normal(&rng));
    }
    free(means);
}

// The objective written out in double precision, independently of probes/linear (no sgemm).
static double reference_loss(const double *params, const float *x, const int32_t *y, const float *row_weight,
                             int64_t n, int d, int k, int binary, double lambda) {
    int n_out = binary ? 1 : k;
    const double *b = params + (size_t)n_out * d;
    double loss = 0;
    for (int64_t i = 0; i < n; i++) {
        double z[32];
        for (int c = 0; c < n_out; c++) {
            z[c] = b[c];
            for (int j = 0; j < d; j++) z[c] += params[c * d + j] * x[i * d + j];
        }
        double wi = row_weight ? row_weight[i] : 1, li;
        if (binary) {
            double p = 1 / (1 + exp(-z[0]));
            li = y[i] ? -log(p) : -log(1 - p);
        } else {
            double sum = 0;
            for (int c = 0; c < k; c++) sum += exp(z[c]);
            li = log(sum) - z[y[i]];
        }
        loss += wi * li;
    }
    double reg = 0;
    for (int j = 0; j < n_out * d; j++) reg += params[j] * params[j];
    return loss / (double)n + 0.5 * lambda * reg;
}

static void check_gradient(int binary) {
    const int64_t n = 60;
    const int d = 7, k = binary ? 2 : 4, n_out = binary ? 1 : k;
    const int n_params = n_out * (d + 1);
    const double lambda = 0.3;
    float x[60 * 7], row_weight[60];
    int32_t y[60];
    make_blobs(x, y, n, d, k, 0.7, 11 + binary);
    // Unbalanced classes so the balanced weights differ from 1.
    for (int64_t i = 0; i < n; i++)
        if (i % 3 == 0) y[i] = 0;
    pl_balanced_weights(row_weight, y, n, k);
    double params[64], grad[64], reference_grad[64], p2[64];
    pl_rng rng = pl_rng_seed(5);
    for (int j = 0; j < n_params; j++) params[j] = 0.5 * pl_rng_normal(&rng);
    for (int weighted = 0; weighted < 2; weighted++) {
        const float *w = weighted ? row_weight : NULL;
        double f = pl_logreg_loss(grad, params, x, y, w, n, d, k, binary, lambda);
        double f_ref = reference_loss(params, x, y, w, n, d, k, binary, lambda);
        const double h = 1e-5;
        double worst = 0, scale = 0;
        for (int j = 0; j < n_params; j++) {
            memcpy(p2, params, sizeof params);
            p2[j] = params[j] + h;
            double fp = reference_loss(p2, x, y, w, n, d, k, binary, lambda);
            p2[j] = params[j] - h;
            double fm = reference_loss(p2, x, y, w, n, d, k, binary, lambda);
            reference_grad[j] = (fp - fm) / (2 * h);
            worst = fmax(worst, fabs(grad[j] - reference_grad[j]));
            scale = fmax(scale, fabs(reference_grad[j]));
        }
        printf("%s weighted=%d: loss %.9f vs reference %.9f; gradient max error %.3g (max |g| %.3g)\n",
               binary ? "binary" : "multinomial", weighted, f, f_ref, worst, scale);
        assert_true(fabs(f - f_ref) < 1e-5 * fmax(1, fabs(f_ref)));
        assert_true(worst < 1e-4 * scale);
        assert_true(scale > 1e-2);  // the comparison is not vacuous
    }
}

// The gradient of the objective in double precision, straight from its definition (no sgemm).
static void reference_gradient(double *grad, const double *params, const float *x, const int32_t *y,
                               const float *row_weight, int64_t n, int d, int k, int binary, double lambda) {
    int n_out = binary ? 1 : k;
    const double *b = params + (size_t)n_out * d;
    memset(grad, 0, sizeof(double) * (size_t)n_out * (d + 1));
    double z[32];  // up to 32 outputs
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double wi = (row_weight ? row_weight[i] : 1) / (double)n, zmax = -INFINITY, sum = 0;
        for (int c = 0; c < n_out; c++) {
            z[c] = b[c];
            for (int j = 0; j < d; j++) z[c] += params[(size_t)c * d + j] * xi[j];
            zmax = fmax(zmax, z[c]);
        }
        if (binary) {
            z[0] = wi * (1 / (1 + exp(-z[0])) - y[i]);
        } else {
            for (int c = 0; c < k; c++) sum += exp(z[c] - zmax);
            for (int c = 0; c < k; c++) z[c] = wi * (exp(z[c] - zmax) / sum - (c == y[i]));
        }
        for (int c = 0; c < n_out; c++) {
            for (int j = 0; j < d; j++) grad[(size_t)c * d + j] += z[c] * xi[j];
            grad[(size_t)n_out * d + c] += z[c];
        }
    }
    for (int j = 0; j < n_out * d; j++) grad[j] += lambda * params[j];
}

static double max_abs_diff(const double *a, const double *b, int n, double *scale) {
    double worst = 0;
    *scale = 0;
    for (int j = 0; j < n; j++) worst = fmax(worst, fabs(a[j] - b[j])), *scale = fmax(*scale, fabs(b[j]));
    return worst;
}

// The fused one-pass kernel against the two-sgemm evaluation and a double-precision reference:
// shapes that leave partial row blocks, partial 16/32-column vectors and output tiles, 1 to 3
// threads giving the same bits, class weights, multinomial and binary.
static void check_fused(int64_t n, int d, int k, int binary, int weighted) {
    int n_out = binary ? 1 : k, n_params = n_out * (d + 1);
    const double lambda = 0.05;
    float *x = malloc(sizeof(float) * n * d), *row_weight = malloc(sizeof(float) * n);
    int32_t *y = malloc(sizeof(int32_t) * n);
    double *params = malloc(sizeof(double) * n_params), *g_ref = malloc(sizeof(double) * n_params);
    double *g_sgemm = malloc(sizeof(double) * n_params), *g_fused = malloc(sizeof(double) * n_params);
    double *g_first = malloc(sizeof(double) * n_params), f_first = 0;
    make_blobs(x, y, n, d, k, 0.3, 7 + d + k);
    for (int64_t i = 0; i < n; i++)
        if (i % 4 == 0) y[i] = 0;  // unbalanced, so the class weights differ from 1
    pl_balanced_weights(row_weight, y, n, k);
    const float *w = weighted ? row_weight : NULL;
    pl_rng rng = pl_rng_seed(3 + d);
    for (int j = 0; j < n_params; j++) params[j] = 0.2 * pl_rng_normal(&rng);
    reference_gradient(g_ref, params, x, y, w, n, d, k, binary, lambda);
    double f_ref = reference_loss(params, x, y, w, n, d, k, binary, lambda);
    double f_sgemm = pl_logreg_loss_sgemm(g_sgemm, params, x, y, w, n, d, k, binary, lambda), scale;
    double err_sgemm = max_abs_diff(g_sgemm, g_ref, n_params, &scale);
    for (int threads = 1; threads <= 3; threads++) {
        pl_logreg_fused *ws;
        assert_int_equal(pl_logreg_fused_new(&ws, n, d, n_out, threads), 0);
        double f = pl_logreg_fused_eval(ws, g_fused, params, x, y, w, binary, lambda);
        double f_only = pl_logreg_fused_eval(ws, NULL, params, x, y, w, binary, lambda);
        double vs_sgemm = max_abs_diff(g_fused, g_sgemm, n_params, &scale);
        double vs_ref = max_abs_diff(g_fused, g_ref, n_params, &scale);
        printf("n=%lld d=%d k=%d %s%s, %d thread(s): loss %.9f (sgemm %.9f, double %.9f); gradient max |fused - "
               "sgemm| %.2g, |fused - double| %.2g, |sgemm - double| %.2g (max |g| %.3g)\n",
               (long long)n, d, k, binary ? "binary" : "multinomial", weighted ? " weighted" : "",
               pl_logreg_fused_threads(ws), f, f_sgemm, f_ref, vs_sgemm, vs_ref, err_sgemm, scale);
        assert_true(fabs(f - f_ref) < 1e-6 * fabs(f_ref) && fabs(f - f_sgemm) < 1e-6 * fabs(f_ref));
        assert_true(f_only == f);
        if (threads == 1) memcpy(g_first, g_fused, sizeof(double) * n_params), f_first = f;
        assert_true(f == f_first && memcmp(g_fused, g_first, sizeof(double) * n_params) == 0);  // same bits
        assert_true(vs_sgemm < 2e-6 * scale);
        assert_true(vs_ref < 2e-6 * scale);
        assert_true(scale > 1e-2);  // not vacuous
        pl_logreg_fused_free(ws);
    }
    free(x), free(row_weight), free(y), free(params), free(g_ref), free(g_sgemm), free(g_fused), free(g_first);
}

// ---- tests ---------------------------------------------------------------------------------------

static void test_multinomial_gradient(void **state) { check_gradient(0); }
static void test_binary_gradient(void **state) { check_gradient(1); }

// Every SIMD path this CPU has (run-time dispatch: the portable build runs AVX-512 code too).
static void test_fused_kernel(void **state) {
    pl_simd_level best = pl_simd_level_get();
    for (int level = best; level >= PL_SIMD_PORTABLE; level--) {
        assert_int_equal(pl_simd_level_set((pl_simd_level)level), level);
        printf("SIMD path %s:\n", pl_simd_level_name((pl_simd_level)level));
        check_fused(1500, 100, 7, 0, 0);  // d = 100: 16- and 32-column tails; k = 7: a 4-tile and 3 singles
        check_fused(1500, 100, 7, 0, 1);
        check_fused(2003, 37, 2, 1, 1);   // binary, d < 64: blocks of 1024 rows, a partial second block
        check_fused(700, 512, 10, 0, 0);  // the benchmark's shape
        check_fused(50, 3, 5, 0, 1);      // fewer rows than a block, fewer columns than a vector
        check_fused(900, 45, 13, 0, 1);   // output tiles 5 + 4 + 4 forward, 7 + 6 backward
        check_fused(300, 20, 17, 0, 0);   // more than 16 classes: the scalar softmax
    }
    pl_simd_level_set(best);
}

// Standardization in one pass over blocks matches a two-pass double computation, also for columns
// whose mean is 10^4 times their spread (no cancellation), and over a row subset.
static void check_standardize(void) {
    const int64_t n = 1000;
    const int d = 21;
    float *x = malloc(sizeof(float) * n * d), *out = malloc(sizeof(float) * n * d);
    float mean[21], std[21];
    int64_t rows[300];
    fill_normal(x, n * d, 17);
    for (int64_t i = 0; i < n; i++) x[i * d + 2] = 1e4f + 0.5f * x[i * d + 2], x[i * d + 5] = 3.0f;
    for (int r = 0; r < 300; r++) rows[r] = (r * 7919) % n;
    for (int subset = 0; subset < 2; subset++) {
        int64_t m = subset ? 300 : n;
        pl_standardize_fit(mean, std, x, subset ? rows : NULL, m, d);
        double worst = 0;
        for (int j = 0; j < d; j++) {
            double mu = 0, ss = 0;
            for (int64_t i = 0; i < m; i++) mu += x[(subset ? rows[i] : i) * d + j];
            mu /= m;
            for (int64_t i = 0; i < m; i++) ss += pow(x[(subset ? rows[i] : i) * d + j] - mu, 2);
            double sd = sqrt(ss / m);
            if (j == 5) {  // constant column: std 1
                assert_true(std[j] == 1.0f && mean[j] == 3.0f);
                continue;
            }
            worst = fmax(worst, fmax(fabs(mean[j] - mu) / fmax(1, fabs(mu)), fabs(std[j] - sd) / sd));
        }
        printf("standardize (%s): worst relative error of mean/std %.2g\n", subset ? "row subset" : "all rows", worst);
        assert_true(worst < 1e-6);
        pl_standardize_apply(out, x, subset ? rows : NULL, m, d, mean, std);
        for (int64_t i = 0; i < m; i++)
            for (int j = 0; j < d; j++)
                assert_true(out[i * d + j] == (x[(subset ? rows[i] : i) * d + j] - mean[j]) / std[j]);
    }
    free(x), free(out);
}

static void test_standardize(void **state) {
    pl_simd_level best = pl_simd_level_get();
    for (int level = best; level >= PL_SIMD_PORTABLE; level--) {
        printf("SIMD path %s:\n", pl_simd_level_name(pl_simd_level_set((pl_simd_level)level)));
        check_standardize();
    }
    pl_simd_level_set(best);
}

static double rosenbrock(double *g, const double *x, void *ctx) {
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
}

static void test_lbfgs_rosenbrock(void **state) {
    double x[2] = {-1.2, 1.0};
    pl_lbfgs_options o = pl_lbfgs_defaults();
    o.gtol = 1e-9, o.ftol = 0;
    pl_lbfgs_result r;
    assert_int_equal(pl_lbfgs_minimize(x, &r, rosenbrock, NULL, 2, &o), 0);
    printf("rosenbrock: x = (%.9f, %.9f) after %d iterations, %d evaluations, stop %s\n", x[0], x[1], r.iterations,
           r.evaluations, pl_lbfgs_stop_name(r.stop));
    assert_true(r.converged);
    assert_int_equal(r.stop, PL_LBFGS_GTOL);
    assert_true(fabs(x[0] - 1) < 1e-6 && fabs(x[1] - 1) < 1e-6);
    assert_true(r.iterations < 100);
    // The iteration cap is honoured and reported as not converged.
    double y[2] = {-1.2, 1.0};
    o.max_iter = 3;
    assert_int_equal(pl_lbfgs_minimize(y, &r, rosenbrock, NULL, 2, &o), 0);
    assert_false(r.converged);
    assert_int_equal(r.stop, PL_LBFGS_MAX_ITER);
    assert_int_equal(r.iterations, 3);
}

// Fitted probes satisfy the optimality conditions: the gradient of the objective, recomputed from
// the stored weights on the stored standardization, is ~0; probabilities sum to 1.
static void check_fit(int k, int balanced) {
    const int64_t n = 400;
    const int d = 12;
    float *x = malloc(sizeof(float) * n * d);
    int32_t *y = malloc(sizeof(int32_t) * n), *labels = malloc(sizeof(int32_t) * n);
    make_blobs(x, y, n, d, k, 0.5, 100 + k);
    for (int64_t i = 0; i < n; i++) {
        if (balanced && i % 2 == 0) y[i] = 0;
        y[i] = 10 * y[i] + 3;  // arbitrary label values
        x[i * d + 3] = 5 * x[i * d + 3] + 40;  // a column with large mean and scale
    }
    pl_probe_options o = pl_probe_defaults();
    o.lambda = 1e-2, o.balanced = balanced, o.lbfgs.gtol = 1e-7;
    pl_probe *p;
    assert_int_equal(pl_probe_fit(&p, x, y, n, d, &o), 0);
    printf("k=%d balanced=%d: %d iterations, %d evaluations, converged %d (%s), loss %.6f\n", k, balanced,
           p->iterations, p->evaluations, p->converged, pl_lbfgs_stop_name(p->stop), p->train_loss);
    assert_true(p->converged);
    assert_int_equal(p->kind, k == 2 ? PL_PROBE_BINARY : PL_PROBE_MULTINOMIAL);
    for (int c = 0; c < k; c++) assert_int_equal(p->classes[c], 10 * c + 3);
    // Standardization: mean and population std of the training columns, computed here in double.
    for (int j = 0; j < d; j++) {
        double m = 0, s = 0;
        for (int64_t i = 0; i < n; i++) m += x[i * d + j];
        m /= n;
        for (int64_t i = 0; i < n; i++) s += (x[i * d + j] - m) * (x[i * d + j] - m);
        s = sqrt(s / n);
        assert_true(fabs(p->mean[j] - m) < 1e-4 * fmax(1, fabs(m)) && fabs(p->std[j] - s) < 1e-4 * s);
    }
    // Optimality at the stored parameters.
    float *xs = malloc(sizeof(float) * n * d);
    int32_t *y_idx = malloc(sizeof(int32_t) * n);
    float *w = malloc(sizeof(float) * n);
    pl_standardize_apply(xs, x, NULL, n, d, p->mean, p->std);
    assert_int_equal(pl_probe_class_index(y_idx, p, y, n), 0);
    if (balanced) pl_balanced_weights(w, y_idx, n, k);
    int n_out = p->n_outputs, n_params = n_out * (d + 1);
    double params[128], grad[128];
    for (int j = 0; j < n_out * d; j++) params[j] = p->weights[j];
    for (int c = 0; c < n_out; c++) params[n_out * d + c] = p->bias[c];
    double f = pl_logreg_loss(grad, params, xs, y_idx, balanced ? w : NULL, n, d, k, k == 2, o.lambda);
    double gmax = 0;
    for (int j = 0; j < n_params; j++) gmax = fmax(gmax, fabs(grad[j]));
    printf("  gradient at the fit: max %.3g (loss %.6f)\n", gmax, f);
    assert_true(gmax < 1e-5);
    // Probabilities sum to one and predictions agree with the argmax.
    float *probs = malloc(sizeof(float) * n * k);
    assert_int_equal(pl_probe_predict_proba(probs, p, x, n), 0);
    assert_int_equal(pl_probe_predict(labels, p, x, n), 0);
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        int best = 0;
        for (int c = 0; c < k; c++) {
            s += probs[i * k + c];
            if (probs[i * k + c] > probs[i * k + best]) best = c;
        }
        assert_true(fabs(s - 1) < 1e-5);
        assert_int_equal(labels[i], p->classes[best]);
        correct += labels[i] == y[i];
    }
    printf("  training accuracy %.3f\n", (double)correct / n);
    assert_true(correct > n / 2);
    pl_probe_free(p);
    free(x), free(y), free(labels), free(xs), free(y_idx), free(w), free(probs);
}

static void test_fit_optimality(void **state) {
    check_fit(2, 0);
    check_fit(2, 1);
    check_fit(5, 0);
    check_fit(5, 1);
}

// Solve A x = b (A m × m, row-major, copied) by Gaussian elimination with partial pivoting.
static void gauss_solve(double *xout, const double *A_in, const double *b_in, int m) {
    double *A = malloc(sizeof(double) * m * m), *b = malloc(sizeof(double) * m);
    memcpy(A, A_in, sizeof(double) * m * m), memcpy(b, b_in, sizeof(double) * m);
    for (int c = 0; c < m; c++) {
        int piv = c;
        for (int r = c + 1; r < m; r++)
            if (fabs(A[r * m + c]) > fabs(A[piv * m + c])) piv = r;
        for (int j = 0; j < m; j++) {
            double t = A[c * m + j];
            A[c * m + j] = A[piv * m + j], A[piv * m + j] = t;
        }
        double t = b[c];
        b[c] = b[piv], b[piv] = t;
        for (int r = c + 1; r < m; r++) {
            double f = A[r * m + c] / A[c * m + c];
            for (int j = c; j < m; j++) A[r * m + j] -= f * A[c * m + j];
            b[r] -= f * b[c];
        }
    }
    for (int r = m - 1; r >= 0; r--) {
        double s = b[r];
        for (int j = r + 1; j < m; j++) s -= A[r * m + j] * xout[j];
        xout[r] = s / A[r * m + r];
    }
    free(A), free(b);
}

// Ridge against the normal equations in double: with an explicit unpenalized intercept column,
// [X̂ 1]ᵀ[X̂ 1] θ + n λ diag(1..1, 0) θ = [X̂ 1]ᵀ y.
static void test_ridge_closed_form(void **state) {
    const int64_t n = 300;
    const int d = 9, m = d + 1;
    float x[300 * 9], y[300];
    fill_normal(x, n * d, 21);
    pl_rng rng = pl_rng_seed(22);
    for (int64_t i = 0; i < n; i++) {
        x[i * d + 2] = 3 * x[i * d + 2] + 7;
        y[i] = 2.5f + (float)pl_rng_normal(&rng);
        for (int j = 0; j < d; j++) y[i] += (float)(0.3 * (j - 4)) * x[i * d + j];
    }
    for (int standardize = 0; standardize < 2; standardize++) {
        const double lambdas[] = {0.0, 0.05, 2.0};
        for (int li = 0; li < 3; li++) {
            double lambda = lambdas[li];
            pl_probe_options o = pl_probe_defaults();
            o.lambda = lambda, o.standardize = standardize;
            pl_probe *p;
            assert_int_equal(pl_ridge_fit(&p, x, y, n, d, &o), 0);
            // Reference: scale columns by the population std (or 1), no centering: the intercept column absorbs it.
            double scale[9];
            for (int j = 0; j < d; j++) {
                double mu = 0, s = 0;
                for (int64_t i = 0; i < n; i++) mu += x[i * d + j];
                mu /= n;
                for (int64_t i = 0; i < n; i++) s += (x[i * d + j] - mu) * (x[i * d + j] - mu);
                scale[j] = standardize ? sqrt(s / n) : 1;
            }
            double A[100] = {0}, b[10] = {0}, theta[10];
            for (int64_t i = 0; i < n; i++) {
                double row[10];
                for (int j = 0; j < d; j++) row[j] = x[i * d + j] / scale[j];
                row[d] = 1;
                for (int a = 0; a < m; a++) {
                    b[a] += row[a] * y[i];
                    for (int c = 0; c < m; c++) A[a * m + c] += row[a] * row[c];
                }
            }
            for (int j = 0; j < d; j++) A[j * m + j] += n * lambda;
            gauss_solve(theta, A, b, m);
            // Compare weights and predictions on new points.
            double worst_w = 0;
            for (int j = 0; j < d; j++) worst_w = fmax(worst_w, fabs(p->weights[j] - theta[j]));
            float xt[5 * 9], pred[5];
            fill_normal(xt, 5 * d, 23);
            assert_int_equal(pl_ridge_predict(pred, p, xt, 5), 0);
            double worst_pred = 0;
            for (int i = 0; i < 5; i++) {
                double r = theta[d];
                for (int j = 0; j < d; j++) r += theta[j] * xt[i * d + j] / scale[j];
                worst_pred = fmax(worst_pred, fabs(pred[i] - r));
            }
            printf("ridge standardize=%d lambda=%g: max weight error %.3g, max prediction error %.3g\n", standardize,
                   lambda, worst_w, worst_pred);
            assert_true(worst_w < 1e-4);
            assert_true(worst_pred < 1e-4);
            pl_probe_free(p);
        }
    }
}

static void test_group_kfold(void **state) {
    const int64_t n = 1000;
    int32_t groups[1000], fold[1000], fold2[1000], fold3[1000];
    pl_rng rng = pl_rng_seed(3);
    // 97 groups of unequal sizes, rows of a group not contiguous.
    for (int64_t i = 0; i < n; i++) groups[i] = 1000 + (int32_t)(pl_rng_below(&rng, 97) * 7 % 97) * 3;
    assert_int_equal(pl_group_kfold(fold, groups, n, 5, 42), 0);
    assert_int_equal(pl_group_kfold(fold2, groups, n, 5, 42), 0);
    assert_int_equal(pl_group_kfold(fold3, groups, n, 5, 43), 0);
    int64_t rows[5] = {0};
    int differs = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_true(fold[i] >= 0 && fold[i] < 5);
        assert_int_equal(fold[i], fold2[i]);  // deterministic
        differs |= fold[i] != fold3[i];
        rows[fold[i]]++;
        for (int64_t j = 0; j < i; j++)
            if (groups[j] == groups[i]) assert_int_equal(fold[j], fold[i]);  // a group never straddles folds
    }
    assert_true(differs);  // the seed matters
    for (int f = 0; f < 5; f++) {
        printf("fold %d: %lld rows\n", f, (long long)rows[f]);
        assert_true(rows[f] > 150 && rows[f] < 250);
    }
    // Held-out split by group.
    uint8_t is_test[1000];
    assert_int_equal(pl_group_split(is_test, groups, n, 0.2, 7), 0);
    int64_t n_test = 0;
    for (int64_t i = 0; i < n; i++) {
        n_test += is_test[i];
        for (int64_t j = 0; j < i; j++)
            if (groups[j] == groups[i]) assert_int_equal(is_test[j], is_test[i]);
    }
    assert_true(n_test >= 200 && n_test < 300);
}

static void test_errors(void **state) {
    float x[40 * 3];
    int32_t y[40], groups[40];
    fill_normal(x, 40 * 3, 1);
    for (int i = 0; i < 40; i++) y[i] = 7, groups[i] = i % 3;
    pl_probe *p = (pl_probe *)1;
    assert_int_equal(pl_probe_fit(&p, x, y, 40, 3, NULL), -1);
    printf("single class: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), "single class"));
    assert_null(p);
    assert_int_equal(pl_probe_cv_fit(&p, NULL, x, y, groups, 40, 3, NULL, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "single class"));
    for (int i = 0; i < 40; i++) y[i] = i % 2;
    assert_int_equal(pl_probe_cv_fit(&p, NULL, x, y, groups, 40, 3, NULL, NULL), -1);
    printf("3 groups, 5 folds: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), "3 distinct groups is fewer than the 5 folds"));
    x[17 * 3 + 2] = NAN;
    assert_int_equal(pl_probe_fit(&p, x, y, 40, 3, NULL), -1);
    printf("NaN: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), "row 17, column 2"));
    for (int i = 0; i < 40; i++) groups[i] = i;
    assert_int_equal(pl_probe_cv_fit(&p, NULL, x, y, groups, 40, 3, NULL, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "non-finite"));
    x[17 * 3 + 2] = INFINITY;
    float yr[40];
    for (int i = 0; i < 40; i++) yr[i] = (float)i;
    assert_int_equal(pl_ridge_fit(&p, x, yr, 40, 3, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "non-finite"));
    x[17 * 3 + 2] = 0;
    yr[5] = NAN;
    assert_int_equal(pl_ridge_fit(&p, x, yr, 40, 3, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "row 5"));
    assert_int_equal(pl_group_split((uint8_t[40]){0}, (int32_t[40]){0}, 40, 0.2, 1), -1);
}

// Cross-validation picks a strong lambda when labels are noise and a weak one when the classes
// separate well; the refit probe carries the chosen lambda.
static void test_cv_choice(void **state) {
    const int64_t n = 600;
    const int d = 20;
    float *x = malloc(sizeof(float) * n * d);
    int32_t *y = malloc(sizeof(int32_t) * n), *groups = malloc(sizeof(int32_t) * n);
    make_blobs(x, y, n, d, 3, 0.8, 31);
    for (int64_t i = 0; i < n; i++) groups[i] = (int32_t)(i / 6);  // 100 "examples" of 6 tokens
    pl_cv_options co = pl_cv_defaults();
    co.seed = 9;
    pl_cv_result cv;
    pl_probe *p;
    assert_int_equal(pl_probe_cv_fit(&p, &cv, x, y, groups, n, d, NULL, &co), 0);
    for (int l = 0; l < cv.n_lambdas; l++)
        printf("separable: lambda %-8g log-loss %.4f ± %.4f accuracy %.3f\n", cv.lambdas[l], cv.mean_score[l],
               cv.std_score[l], cv.mean_accuracy[l]);
    printf("  best lambda %g, all converged %d\n", cv.best_lambda, cv.all_converged);
    assert_true(cv.best_lambda <= 1e-1);
    assert_true(cv.mean_accuracy[cv.best_index] > 0.9);
    assert_true(p->lambda == cv.best_lambda);
    pl_probe_free(p);
    // Labels independent of x: the strongest regularization wins (log-loss near log 3).
    pl_rng rng = pl_rng_seed(4);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)pl_rng_below(&rng, 3);
    assert_int_equal(pl_probe_cv_fit(&p, &cv, x, y, groups, n, d, NULL, &co), 0);
    printf("noise: best lambda %g, log-loss %.4f (log 3 = %.4f)\n", cv.best_lambda, cv.mean_score[cv.best_index],
           log(3.0));
    assert_true(cv.best_lambda >= 1);
    pl_probe_free(p);
    // Ridge: a linear target with little noise prefers small lambda.
    float *t = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        t[i] = 0.1f * (float)pl_rng_normal(&rng);
        for (int j = 0; j < d; j++) t[i] += (float)(j % 3 - 1) * x[i * d + j];
    }
    assert_int_equal(pl_ridge_cv_fit(&p, &cv, x, t, groups, n, d, NULL, &co), 0);
    printf("ridge: best lambda %g, MSE %.4f, R² %.4f\n", cv.best_lambda, cv.mean_score[cv.best_index],
           cv.mean_accuracy[cv.best_index]);
    assert_true(cv.best_lambda <= 1e-2);
    assert_true(cv.mean_accuracy[cv.best_index] > 0.95);
    pl_probe_free(p);
    free(x), free(y), free(groups), free(t);
}

// The whole protocol and the control task. (a) Features identify the type (a random embedding per
// type) and the label is a function of the type: the control task is as learnable as the real one,
// so selectivity is near 0. (b) Features carry the label but not the type (types are random per
// row): control accuracy stays near chance and selectivity is high.
static void test_train_eval_selectivity(void **state) {
    const int64_t n = 1200;
    const int d = 24, n_types = 40;
    float *x = malloc(sizeof(float) * n * d), *emb = malloc(sizeof(float) * n_types * d);
    int32_t *y = malloc(sizeof(int32_t) * n), *groups = malloc(sizeof(int32_t) * n), *types = malloc(sizeof(int32_t) * n);
    int32_t label_of_type[40];
    pl_rng rng = pl_rng_seed(17);
    fill_normal(emb, n_types * d, 18);
    for (int t = 0; t < n_types; t++) label_of_type[t] = (int32_t)pl_rng_below(&rng, 3);
    for (int64_t i = 0; i < n; i++) {
        types[i] = (int32_t)pl_rng_below(&rng, n_types);
        y[i] = label_of_type[types[i]];
        groups[i] = (int32_t)(i / 8);
        for (int j = 0; j < d; j++) x[i * d + j] = 2 * emb[types[i] * d + j] + (float)pl_rng_normal(&rng);
    }
    pl_probe_eval_options o = pl_probe_eval_defaults();
    o.n_bootstrap = 200, o.seed = 3;
    pl_probe *p;
    pl_cv_result cv;
    assert_int_equal(pl_probe_train_eval(&p, &cv, x, y, groups, types, NULL, n, d, &o), 0);
    pl_probe_metrics m = p->metrics;
    printf("type features: accuracy %.3f [%.3f, %.3f], auroc %.3f, control %.3f, selectivity %.3f, majority %.3f, "
           "lambda %g, %lld held-out rows in %lld groups\n",
           m.accuracy, m.accuracy_lo, m.accuracy_hi, m.auroc, m.control_accuracy, m.selectivity,
           m.majority_accuracy, p->lambda, (long long)m.n, (long long)m.n_groups);
    assert_true(m.accuracy > 0.75 && m.control_accuracy > 0.65 && fabs(m.selectivity) < 0.15);
    assert_true(m.accuracy_lo <= m.accuracy && m.accuracy <= m.accuracy_hi);
    assert_true(m.n > 150 && m.n < 400 && m.n_groups * 8 == m.n);
    pl_probe_free(p);
    for (int64_t i = 0; i < n; i++) {
        types[i] = (int32_t)pl_rng_below(&rng, 400);
        y[i] = (int32_t)pl_rng_below(&rng, 3);
        for (int j = 0; j < d; j++) x[i * d + j] = 2 * emb[y[i] * d + j] + (float)pl_rng_normal(&rng);
    }
    assert_int_equal(pl_probe_train_eval(&p, NULL, x, y, groups, types, NULL, n, d, &o), 0);
    m = p->metrics;
    printf("label features: accuracy %.3f, control %.3f, selectivity %.3f, majority %.3f\n", m.accuracy,
           m.control_accuracy, m.selectivity, m.majority_accuracy);
    assert_true(m.accuracy > 0.9 && m.control_accuracy < 0.6 && m.selectivity > 0.3);
    assert_true(m.majority_accuracy > 0.2 && m.majority_accuracy < 0.5);
    pl_probe_free(p);
    free(x), free(emb), free(y), free(groups), free(types);
}

// ---- fit-npy mode for tests/py_probe_sklearn.sh --------------------------------------------------

static int write_f32(const char *dir, const char *name, const float *data, int ndim, const int64_t *shape) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return pl_npy_write_f32(path, data, ndim, shape);
}

static int fit_npy(const char *dir, double lambda, int balanced) {
    char path[4096];
    float *x = NULL, *yf = NULL, *xt = NULL;
    int ndim;
    int64_t shape[PL_NPY_MAX_DIMS], shape_y[PL_NPY_MAX_DIMS], shape_t[PL_NPY_MAX_DIMS];
    snprintf(path, sizeof path, "%s/x_train.npy", dir);
    if (pl_npy_read_f32(path, &x, &ndim, shape)) goto fail;
    snprintf(path, sizeof path, "%s/y_train.npy", dir);
    if (pl_npy_read_f32(path, &yf, &ndim, shape_y)) goto fail;
    snprintf(path, sizeof path, "%s/x_test.npy", dir);
    if (pl_npy_read_f32(path, &xt, &ndim, shape_t)) goto fail;
    int64_t n = shape[0], n_test = shape_t[0];
    int d = (int)shape[1];
    int32_t *y = malloc(sizeof(int32_t) * n);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)yf[i];
    pl_probe_options o = pl_probe_defaults();
    o.lambda = lambda, o.balanced = balanced, o.lbfgs.gtol = 1e-8, o.lbfgs.ftol = 0, o.lbfgs.max_iter = 5000;
    pl_probe *p;
    if (pl_probe_fit(&p, x, y, n, d, &o)) goto fail;
    int k = p->n_classes;
    float *probs = malloc(sizeof(float) * n_test * k);
    if (pl_probe_predict_proba(probs, p, xt, n_test)) goto fail;
    int64_t s_w[2] = {p->n_outputs, d}, s_b[1] = {p->n_outputs}, s_d[1] = {d}, s_p[2] = {n_test, k};
    if (write_f32(dir, "coef.npy", p->weights, 2, s_w) || write_f32(dir, "intercept.npy", p->bias, 1, s_b) ||
        write_f32(dir, "mean.npy", p->mean, 1, s_d) || write_f32(dir, "std.npy", p->std, 1, s_d) ||
        write_f32(dir, "probs.npy", probs, 2, s_p))
        goto fail;
    // AUROC of these probabilities on the test labels (class index = position in p->classes).
    float *yt = NULL;
    int64_t shape_yt[PL_NPY_MAX_DIMS];
    snprintf(path, sizeof path, "%s/y_test.npy", dir);
    if (pl_npy_read_f32(path, &yt, &ndim, shape_yt)) goto fail;
    int32_t *yt_idx = malloc(sizeof(int32_t) * n_test), *yt_i = malloc(sizeof(int32_t) * n_test);
    for (int64_t i = 0; i < n_test; i++) yt_i[i] = (int32_t)yt[i];
    if (pl_probe_class_index(yt_idx, p, yt_i, n_test) != 0) {
        pl_fail("%s: y_test has labels the probe never saw", dir);
        goto fail;
    }
    double auroc, ll, acc;
    if (pl_metric_eval(&auroc, PL_METRIC_AUROC, probs, yt_idx, n_test, k) ||
        pl_metric_eval(&ll, PL_METRIC_LOG_LOSS, probs, yt_idx, n_test, k) ||
        pl_metric_eval(&acc, PL_METRIC_ACCURACY, probs, yt_idx, n_test, k))
        goto fail;
    printf("{\"auroc\": %.12f, \"log_loss\": %.12f, \"accuracy\": %.12f, \"iterations\": %d, \"converged\": %d}\n",
           auroc, ll, acc, p->iterations, p->converged);
    // Binary AUROC of raw scores with many ties, if the script provided them.
    float *scores = NULL, *pos = NULL;
    int64_t shape_s[PL_NPY_MAX_DIMS];
    snprintf(path, sizeof path, "%s/tie_scores.npy", dir);
    if (pl_npy_read_f32(path, &scores, &ndim, shape_s) == 0) {
        snprintf(path, sizeof path, "%s/tie_labels.npy", dir);
        if (pl_npy_read_f32(path, &pos, &ndim, shape_s)) goto fail;
        uint8_t *pb = malloc((size_t)shape_s[0]);
        for (int64_t i = 0; i < shape_s[0]; i++) pb[i] = pos[i] != 0;
        double a;
        if (pl_auroc_binary(&a, scores, pb, shape_s[0])) goto fail;
        printf("{\"tie_auroc\": %.12f}\n", a);
        free(pb), free(scores), free(pos);
    }
    pl_probe_free(p);
    free(x), free(yf), free(xt), free(y), free(probs), free(yt), free(yt_idx), free(yt_i);
    return 0;
fail:
    pl_print_error();
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "fit-npy") == 0) return fit_npy(argv[2], atof(argv[3]), atoi(argv[4]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multinomial_gradient), cmocka_unit_test(test_binary_gradient),
        cmocka_unit_test(test_fused_kernel),         cmocka_unit_test(test_standardize),
        cmocka_unit_test(test_lbfgs_rosenbrock),     cmocka_unit_test(test_fit_optimality),
        cmocka_unit_test(test_ridge_closed_form),    cmocka_unit_test(test_group_kfold),
        cmocka_unit_test(test_errors),               cmocka_unit_test(test_cv_choice),
        cmocka_unit_test(test_train_eval_selectivity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
