#include "probes/linear/cv.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/rng.h"
#include "runtime/base/error.h"

pl_cv_options pl_cv_defaults(void) { return (pl_cv_options){.n_folds = 5, .seed = 0, .lambdas = NULL, .n_lambdas = 0}; }

static const double default_grid[] = {1e2, 1e1, 1e0, 1e-1, 1e-2, 1e-3, 1e-4};

// Dense group index per row into dense[n]; returns the number of groups, or -1.
static int dense_groups(int32_t *dense, const int32_t *groups, int64_t n) {
    int32_t *ids = NULL;
    int n_groups = pl_distinct_labels(&ids, groups, n);
    if (n_groups < 0) return -1;
    for (int64_t i = 0; i < n; i++) {
        int a = 0, b = n_groups - 1;
        while (a < b) {
            int mid = (a + b) / 2;
            if (ids[mid] < groups[i]) a = mid + 1;
            else b = mid;
        }
        dense[i] = a;
    }
    free(ids);
    return n_groups;
}

// Dense groups, their sizes, and a seeded shuffle of the group order. Caller frees the three arrays.
static int shuffled_groups(int32_t **dense, int64_t **size, int32_t **order, const int32_t *groups, int64_t n,
                           uint64_t seed) {
    *dense = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    *size = NULL, *order = NULL;
    if (!*dense) return pl_fail("folds: out of memory");
    int n_groups = dense_groups(*dense, groups, n);
    if (n_groups < 0) return -1;
    *size = calloc((size_t)n_groups + 1, sizeof(int64_t));
    *order = malloc(sizeof(int32_t) * ((size_t)n_groups + 1));
    if (!*size || !*order) return pl_fail("folds: out of memory for %d groups", n_groups);
    for (int64_t i = 0; i < n; i++) (*size)[(*dense)[i]]++;
    pl_rng rng = pl_rng_seed(seed);
    for (int g = 0; g < n_groups; g++) (*order)[g] = g;
    for (int g = n_groups - 1; g > 0; g--) {  // Fisher-Yates
        int j = (int)pl_rng_below(&rng, (uint64_t)g + 1);
        int32_t t = (*order)[g];
        (*order)[g] = (*order)[j], (*order)[j] = t;
    }
    return n_groups;
}

int pl_group_kfold(int32_t *fold, const int32_t *groups, int64_t n, int n_folds, uint64_t seed) {
    if (n_folds < 2) return pl_fail("cross-validation: need at least 2 folds, got %d", n_folds);
    int32_t *dense, *order;
    int64_t *size;
    int n_groups = shuffled_groups(&dense, &size, &order, groups, n, seed);
    int rc = -1;
    int32_t *fold_of_group = NULL;
    int64_t *fold_rows = NULL;
    if (n_groups < 0) goto done;
    if (n_groups < n_folds) {
        pl_fail("cross-validation: %d distinct groups is fewer than the %d folds; use fewer folds or more examples",
                n_groups, n_folds);
        goto done;
    }
    fold_of_group = malloc(sizeof(int32_t) * (size_t)n_groups);
    fold_rows = calloc((size_t)n_folds, sizeof(int64_t));
    if (!fold_of_group || !fold_rows) {
        pl_fail("cross-validation: out of memory");
        goto done;
    }
    for (int i = 0; i < n_groups; i++) {
        int g = order[i], best = 0;
        for (int f = 1; f < n_folds; f++)
            if (fold_rows[f] < fold_rows[best]) best = f;
        fold_of_group[g] = best;
        fold_rows[best] += size[g];
    }
    for (int64_t i = 0; i < n; i++) fold[i] = fold_of_group[dense[i]];
    rc = 0;
done:
    free(dense), free(size), free(order), free(fold_of_group), free(fold_rows);
    return rc;
}

int pl_group_split(uint8_t *is_test, const int32_t *groups, int64_t n, double test_fraction, uint64_t seed) {
    if (!(test_fraction > 0 && test_fraction < 1))
        return pl_fail("split: test fraction must be in (0, 1), got %g", test_fraction);
    int32_t *dense, *order;
    int64_t *size;
    int n_groups = shuffled_groups(&dense, &size, &order, groups, n, seed);
    int rc = -1;
    uint8_t *test_group = NULL;
    if (n_groups < 0) goto done;
    if (n_groups < 2) {
        pl_fail("split: need at least 2 distinct groups for a held-out split, got %d", n_groups);
        goto done;
    }
    test_group = calloc((size_t)n_groups, 1);
    if (!test_group) {
        pl_fail("split: out of memory");
        goto done;
    }
    int64_t taken = 0;
    // Leave at least one group for training.
    for (int i = 0; i < n_groups - 1 && (double)taken < test_fraction * (double)n; i++) {
        test_group[order[i]] = 1;
        taken += size[order[i]];
    }
    for (int64_t i = 0; i < n; i++) is_test[i] = test_group[dense[i]];
    rc = 0;
done:
    free(dense), free(size), free(order), free(test_group);
    return rc;
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

// Fill cv's grid (sorted strongest first) from the options.
static int grid_init(pl_cv_result *cv, const pl_cv_options *o) {
    memset(cv, 0, sizeof *cv);
    const double *grid = o->lambdas ? o->lambdas : default_grid;
    int m = o->lambdas ? o->n_lambdas : (int)(sizeof default_grid / sizeof default_grid[0]);
    if (m < 1 || m > PL_CV_MAX_LAMBDAS)
        return pl_fail("cross-validation: the lambda grid needs 1..%d values, got %d", PL_CV_MAX_LAMBDAS, m);
    for (int i = 0; i < m; i++) {
        if (!(grid[i] >= 0) || !isfinite(grid[i]))
            return pl_fail("cross-validation: lambda %g in the grid is not a finite value >= 0", grid[i]);
        cv->lambdas[i] = grid[i];
    }
    qsort(cv->lambdas, (size_t)m, sizeof(double), cmp_desc);
    cv->n_lambdas = m, cv->n_folds = o->n_folds, cv->all_converged = 1;
    return 0;
}

// Mean and std over folds of score[f * m + l]; choose the lowest mean (ties: first = strongest).
static void grid_summarize(pl_cv_result *cv, const double *score, const double *accuracy) {
    int m = cv->n_lambdas, nf = cv->n_folds;
    cv->best_index = 0;
    for (int l = 0; l < m; l++) {
        double s = 0, s2 = 0, a = 0;
        for (int f = 0; f < nf; f++) s += score[f * m + l], a += accuracy[f * m + l];
        s /= nf, a /= nf;
        for (int f = 0; f < nf; f++) s2 += (score[f * m + l] - s) * (score[f * m + l] - s);
        cv->mean_score[l] = s, cv->mean_accuracy[l] = a;
        cv->std_score[l] = nf > 1 ? sqrt(s2 / (nf - 1)) : 0;
        if (s < cv->mean_score[cv->best_index]) cv->best_index = l;
    }
    cv->best_lambda = cv->lambdas[cv->best_index];
}

// Row lists of fold f: train (all other folds) and test.
static void fold_rows(int64_t *train, int64_t *n_train, int64_t *test, int64_t *n_test, const int32_t *fold,
                      int64_t n, int f) {
    *n_train = *n_test = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fold[i] == f) test[(*n_test)++] = i;
        else train[(*n_train)++] = i;
    }
}

// Class probabilities probs[n × k] from parameters [W, b] on standardized rows xs[n × d].
static void probs_from_params(float *probs, float *w, const double *params, const float *xs, int64_t n, int d, int k,
                              int binary) {
    int n_out = binary ? 1 : k;
    for (size_t j = 0; j < (size_t)n_out * d; j++) w[j] = (float)params[j];
    const double *b = params + (size_t)n_out * d;
    float *z = probs;  // binary: logits land in z[0..n), then expand backwards into (1 - p, p) pairs
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, n_out, d, 1.0f, xs, d, w, d, 0.0f, z, n_out);
    if (binary) {
        for (int64_t i = n - 1; i >= 0; i--) {  // backwards: row i's logit sits at index i <= 2i
            double t = z[i] + b[0];
            double p1 = t >= 0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
            probs[2 * i] = (float)(1 - p1), probs[2 * i + 1] = (float)p1;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float *row = probs + i * k;
        double zmax, log_z = pl_logsumexp(row, b, k, &zmax, NULL);
        for (int c = 0; c < k; c++) row[c] = (float)exp(row[c] + b[c] - zmax - log_z);
    }
}

int pl_probe_cv_fit(pl_probe **probe, pl_cv_result *cv, const float *x, const int32_t *y, const int32_t *groups,
                    int64_t n, int d, const pl_probe_options *opts, const pl_cv_options *cv_opts) {
    pl_probe_options o = opts ? *opts : pl_probe_defaults();
    pl_cv_options co = cv_opts ? *cv_opts : pl_cv_defaults();
    pl_cv_result local;
    if (!cv) cv = &local;
    *probe = NULL;
    if (n < 2 || d < 1) return pl_fail("probe cv: need at least 2 rows and 1 feature, got %lld × %d", (long long)n, d);
    int64_t bad = pl_first_non_finite(x, n, d);
    if (bad >= 0)
        return pl_fail("probe cv: X has a non-finite value (%g) at row %lld, column %lld", (double)x[bad],
                       (long long)(bad / d), (long long)(bad % d));
    if (o.kind == PL_PROBE_RIDGE) return pl_fail("probe cv: ridge probes take float targets: use pl_ridge_cv_fit");
    if (grid_init(cv, &co)) return -1;
    int m = cv->n_lambdas, nf = co.n_folds;
    int rc = -1;
    int32_t *classes = NULL, *fold = NULL, *y_idx = NULL, *y_train = NULL;
    int64_t *train = NULL, *test = NULL;
    float *xs_train = NULL, *xs_test = NULL, *mean = NULL, *std = NULL, *row_weight = NULL, *probs = NULL, *w = NULL;
    double *params = NULL, *score = NULL, *accuracy = NULL;
    int k = pl_distinct_labels(&classes, y, n);
    if (k < 0) goto done;
    if (k < 2) {
        pl_fail("probe cv: the labels have a single class (%d); a probe needs at least two", classes[0]);
        goto done;
    }
    pl_probe_kind kind = o.kind == PL_PROBE_AUTO ? (k == 2 ? PL_PROBE_BINARY : PL_PROBE_MULTINOMIAL) : o.kind;
    if (kind == PL_PROBE_BINARY && k != 2) {
        pl_fail("probe cv: a binary probe needs exactly 2 classes, the labels have %d", k);
        goto done;
    }
    int binary = kind == PL_PROBE_BINARY, n_out = binary ? 1 : k;
    fold = malloc(sizeof(int32_t) * (size_t)n);
    y_idx = malloc(sizeof(int32_t) * (size_t)n);
    y_train = malloc(sizeof(int32_t) * (size_t)n);
    train = malloc(sizeof(int64_t) * (size_t)n);
    test = malloc(sizeof(int64_t) * (size_t)n);
    xs_train = pl_probe_alloc_features((size_t)n * d);
    xs_test = pl_probe_alloc_features((size_t)n * d);
    mean = malloc(sizeof(float) * (size_t)d);
    std = malloc(sizeof(float) * (size_t)d);
    row_weight = o.balanced ? malloc(sizeof(float) * (size_t)n) : NULL;
    probs = malloc(sizeof(float) * (size_t)n * k);
    w = malloc(sizeof(float) * (size_t)n_out * d);
    params = malloc(sizeof(double) * (size_t)n_out * (d + 1));
    score = malloc(sizeof(double) * (size_t)nf * m);
    accuracy = malloc(sizeof(double) * (size_t)nf * m);
    if (!fold || !y_idx || !y_train || !train || !test || !xs_train || !xs_test || !mean || !std ||
        (o.balanced && !row_weight) || !probs || !w || !params || !score || !accuracy) {
        pl_fail("probe cv: out of memory for %lld × %d features", (long long)n, d);
        goto done;
    }
    if (pl_group_kfold(fold, groups, n, nf, co.seed)) goto done;
    for (int64_t i = 0; i < n; i++) {
        int lo = 0, hi = k - 1;  // classes is sorted: binary search
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (classes[mid] < y[i]) lo = mid + 1;
            else hi = mid;
        }
        y_idx[i] = lo;
    }
    for (int f = 0; f < nf; f++) {
        int64_t n_train, n_test;
        fold_rows(train, &n_train, test, &n_test, fold, n, f);
        int first = -1, two_classes = 0;
        for (int64_t i = 0; i < n_train; i++) {
            y_train[i] = y_idx[train[i]];
            if (first < 0) first = y_train[i];
            else if (y_train[i] != first) two_classes = 1;
        }
        if (!two_classes) {
            pl_fail("probe cv: the training rows of fold %d have a single class (%d); use fewer folds or more examples",
                    f, first >= 0 ? classes[first] : 0);
            goto done;
        }
        if (o.standardize) pl_standardize_fit(mean, std, x, train, n_train, d);
        else
            for (int j = 0; j < d; j++) mean[j] = 0, std[j] = 1;
        pl_standardize_apply(xs_train, x, train, n_train, d, mean, std);
        pl_standardize_apply(xs_test, x, test, n_test, d, mean, std);
        if (row_weight) pl_balanced_weights(row_weight, y_train, n_train, k);
        memset(params, 0, sizeof(double) * (size_t)n_out * (d + 1));
        for (int l = 0; l < m; l++) {  // strongest first, each fit warm-started from the previous
            pl_lbfgs_result res;
            if (pl_logreg_fit_prepared(params, &res, xs_train, y_train, row_weight, n_train, d, k, binary,
                                       cv->lambdas[l], &o.lbfgs))
                goto done;
            cv->all_converged &= res.converged;
            probs_from_params(probs, w, params, xs_test, n_test, d, k, binary);
            for (int64_t i = 0; i < n_test; i++) y_train[i] = y_idx[test[i]];  // reuse as held-out labels
            double ll, acc;
            pl_metric_eval(&ll, PL_METRIC_LOG_LOSS, probs, y_train, n_test, k);
            pl_metric_eval(&acc, PL_METRIC_ACCURACY, probs, y_train, n_test, k);
            score[f * m + l] = ll, accuracy[f * m + l] = acc;
            for (int64_t i = 0; i < n_train; i++) y_train[i] = y_idx[train[i]];
        }
    }
    grid_summarize(cv, score, accuracy);
    o.lambda = cv->best_lambda;
    o.kind = kind;
    rc = pl_probe_fit(probe, x, y, n, d, &o);
done:
    free(classes), free(fold), free(y_idx), free(y_train), free(train), free(test), free(xs_train), free(xs_test);
    free(mean), free(std), free(row_weight), free(probs), free(w), free(params), free(score), free(accuracy);
    return rc;
}

int pl_ridge_cv_fit(pl_probe **probe, pl_cv_result *cv, const float *x, const float *y, const int32_t *groups,
                    int64_t n, int d, const pl_probe_options *opts, const pl_cv_options *cv_opts) {
    pl_probe_options o = opts ? *opts : pl_probe_defaults();
    pl_cv_options co = cv_opts ? *cv_opts : pl_cv_defaults();
    pl_cv_result local;
    if (!cv) cv = &local;
    *probe = NULL;
    if (n < 2 || d < 1) return pl_fail("ridge cv: need at least 2 rows and 1 feature, got %lld × %d", (long long)n, d);
    int64_t bad = pl_first_non_finite(x, n, d);
    if (bad >= 0)
        return pl_fail("ridge cv: X has a non-finite value (%g) at row %lld, column %lld", (double)x[bad],
                       (long long)(bad / d), (long long)(bad % d));
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return pl_fail("ridge cv: target y has a non-finite value at row %lld", (long long)i);
    if (grid_init(cv, &co)) return -1;
    int m = cv->n_lambdas, nf = co.n_folds;
    int rc = -1;
    int32_t *fold = malloc(sizeof(int32_t) * (size_t)n);
    int64_t *train = malloc(sizeof(int64_t) * (size_t)n), *test = malloc(sizeof(int64_t) * (size_t)n);
    float *xs_train = malloc(sizeof(float) * (size_t)n * d), *xs_test = malloc(sizeof(float) * (size_t)n * d);
    float *y_train = malloc(sizeof(float) * (size_t)n);
    float *mean = malloc(sizeof(float) * (size_t)d), *std = malloc(sizeof(float) * (size_t)d);
    double *A = malloc(sizeof(double) * (size_t)d * d), *b = malloc(sizeof(double) * (size_t)d);
    double *wd = malloc(sizeof(double) * (size_t)d);
    double *score = malloc(sizeof(double) * (size_t)nf * m), *r2 = malloc(sizeof(double) * (size_t)nf * m);
    if (!fold || !train || !test || !xs_train || !xs_test || !y_train || !mean || !std || !A || !b || !wd || !score ||
        !r2) {
        pl_fail("ridge cv: out of memory for %lld × %d features", (long long)n, d);
        goto done;
    }
    if (pl_group_kfold(fold, groups, n, nf, co.seed)) goto done;
    for (int f = 0; f < nf; f++) {
        int64_t n_train, n_test;
        fold_rows(train, &n_train, test, &n_test, fold, n, f);
        pl_standardize_fit(mean, std, x, train, n_train, d);
        if (!o.standardize)
            for (int j = 0; j < d; j++) std[j] = 1;
        pl_standardize_apply(xs_train, x, train, n_train, d, mean, std);
        pl_standardize_apply(xs_test, x, test, n_test, d, mean, std);
        for (int64_t i = 0; i < n_train; i++) y_train[i] = y[train[i]];
        double y_mean, test_mean = 0, sst = 0;
        if (pl_ridge_normal_equations(A, b, &y_mean, xs_train, y_train, n_train, d)) goto done;
        for (int64_t i = 0; i < n_test; i++) test_mean += y[test[i]];
        test_mean /= (double)n_test;
        for (int64_t i = 0; i < n_test; i++) sst += (y[test[i]] - test_mean) * (y[test[i]] - test_mean);
        for (int l = 0; l < m; l++) {
            if (pl_ridge_solve(wd, A, b, d, cv->lambdas[l])) goto done;
            double sse = 0;
            for (int64_t i = 0; i < n_test; i++) {
                double pred = y_mean;
                for (int j = 0; j < d; j++) pred += wd[j] * xs_test[i * d + j];
                sse += (y[test[i]] - pred) * (y[test[i]] - pred);
            }
            score[f * m + l] = sse / (double)n_test;
            r2[f * m + l] = sst > 0 ? 1 - sse / sst : NAN;
        }
    }
    grid_summarize(cv, score, r2);
    o.lambda = cv->best_lambda;
    rc = pl_ridge_fit(probe, x, y, n, d, &o);
done:
    free(fold), free(train), free(test), free(xs_train), free(xs_test), free(y_train), free(mean), free(std);
    free(A), free(b), free(wd), free(score), free(r2);
    return rc;
}
