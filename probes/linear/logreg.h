// Linear probes over float feature matrices: multinomial (softmax) and binary logistic regression
// with L2 regularization, and ridge regression for scalar targets. Features are standardized with
// the mean/std of the training rows, which the probe stores so prediction applies the same map.
//
// Objective (mean loss, intercept not penalized):
//     L(W, b) = (1/n) Σ_i w_i · CE(softmax(W x̂_i + b), y_i) + (λ/2) ||W||²,   x̂ = (x - mean) / std
// where w_i = 1, or n / (k · n_c) for "balanced" class weights (as in scikit-learn). Scikit-learn's
// LogisticRegression(C) minimizes C Σ_i w_i CE_i + ½||W||², which is n·C times L with
// λ = 1 / (n · C): so C = 1 / (λ · n_train). Binary probes use one weight vector and a sigmoid,
// as scikit-learn does for two classes. Ridge minimizes (1/2n) Σ (y_i - w·x̂_i - b)² + (λ/2)||w||²,
// which is scikit-learn's Ridge(alpha) with alpha = λ · n_train.
//
// Logistic fits use L-BFGS (probes/linear/lbfgs.h); each gradient is one fused pass over X
// (probes/linear/logreg_fused.h) on OpenBLAS's thread count. Ridge is solved in closed form (normal equations, Cholesky, double precision).
#ifndef PL_PROBE_LOGREG_H
#define PL_PROBE_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "probes/linear/lbfgs.h"
#include "probes/linear/metrics.h"

typedef enum pl_probe_kind {
    PL_PROBE_AUTO = 0,     // binary for two classes, multinomial otherwise
    PL_PROBE_MULTINOMIAL,  // softmax over k classes: weights [k × d]
    PL_PROBE_BINARY,       // sigmoid for classes[1] vs classes[0]: weights [1 × d]
    PL_PROBE_RIDGE,        // scalar regression: weights [1 × d]
} pl_probe_kind;

typedef struct pl_probe_options {
    pl_probe_kind kind;
    double lambda;            // L2 strength in the mean-loss convention above (default 1e-2)
    int balanced;             // 1: class weights n / (k · n_c); 0: every row weighs 1 (default 0)
    int standardize;          // 1: standardize features with training mean/std (default 1); ridge
                              // always centers (its intercept is unpenalized), 0 only skips scaling
    pl_lbfgs_options lbfgs;   // optimizer settings (defaults from pl_lbfgs_defaults())
} pl_probe_options;

// A fitted probe. Everything is owned by the probe and freed by pl_probe_free().
typedef struct pl_probe {
    pl_probe_kind kind;   // MULTINOMIAL, BINARY or RIDGE (never AUTO)
    int d;                // features
    int n_classes;        // k (2 for binary, 0 for ridge)
    int n_outputs;        // rows of weights: k (multinomial) or 1 (binary, ridge)
    int32_t *classes;     // [n_classes] label values, ascending; class index c means classes[c]
    float *weights;       // [n_outputs × d] acting on standardized features
    float *bias;          // [n_outputs]
    float *mean, *std;    // [d] standardization from the training rows (0 and 1 if disabled)
    double lambda;        // the L2 strength it was fitted with
    int balanced;
    int64_t n_train;
    int iterations;       // L-BFGS iterations (0 for ridge)
    int evaluations;      // gradient evaluations (0 for ridge)
    int converged;        // 1 if the optimizer's convergence test was met (always 1 for ridge)
    pl_lbfgs_stop stop;
    double train_loss;    // final objective L
    double fit_seconds;
    pl_probe_metrics metrics;  // filled by the caller (e.g. from pl_probe_evaluate()); zero at fit
} pl_probe;

// Default options described above.
pl_probe_options pl_probe_defaults(void);

// Fit a logistic-regression probe on x[n × d] with integer labels y[n] (any values; at least two
// distinct). opts may be NULL. On success *probe is a new probe owned by the caller; on bad input
// (NaN/inf in x, a single class, n < 2) returns -1 with pl_errmsg() saying what is wrong.
int pl_probe_fit(pl_probe **probe, const float *x, const int32_t *y, int64_t n, int d, const pl_probe_options *opts);

// Fit ridge regression on x[n × d] with scalar targets y[n]. Same ownership and errors as above.
int pl_ridge_fit(pl_probe **probe, const float *x, const float *y, int64_t n, int d, const pl_probe_options *opts);

// Class probabilities probs[n × n_classes] (caller-allocated; binary probes give (1-p, p)).
// Rows of x with NaN/inf give NaN probabilities. Returns 0, or -1 for a ridge probe / no memory.
int pl_probe_predict_proba(float *probs, const pl_probe *probe, const float *x, int64_t n);

// Predicted label values (from probe->classes) for x[n × d] into labels[n]. Returns 0 or -1.
int pl_probe_predict(int32_t *labels, const pl_probe *probe, const float *x, int64_t n);

// Ridge predictions out[n] for x[n × d]. Returns 0, or -1 for a classification probe.
int pl_ridge_predict(float *out, const pl_probe *probe, const float *x, int64_t n);

// Map label values y[n] to class indices idx[n] of probe->classes; -1 for labels the probe never
// saw. Returns the number of unseen labels.
int64_t pl_probe_class_index(int32_t *idx, const pl_probe *probe, const int32_t *y, int64_t n);

// Free a probe and everything it owns (NULL is fine).
void pl_probe_free(pl_probe *probe);

// ---- lower level, shared with cross-validation and tests ----

// A buffer for count floats of a feature matrix, released with free() by the caller, or NULL on no
// memory. Large ones are advised to use transparent huge pages: first touch of a 40 MB copy then
// costs 20 page faults instead of 10,000, which otherwise rival a whole probe fit.
float *pl_probe_alloc_features(size_t count);

// Index of the first non-finite value of x[n × d], or -1 if all are finite.
int64_t pl_first_non_finite(const float *x, int64_t n, int d);

// The logistic objective L and its gradient at params = [W (n_outputs × d) row-major, b (n_outputs)]
// for already-standardized features x[n × d] and class indices y[n] in 0..k-1. row_weight[n] may
// be NULL (all ones). binary: one output with a sigmoid (y in {0,1}). grad may be NULL.
// Products in float (the fused one-pass kernel the optimizer uses); returns L in double.
double pl_logreg_loss(double *grad, const double *params, const float *x, const int32_t *y, const float *row_weight,
                      int64_t n, int d, int k, int binary, double lambda);

// The same objective computed with two sgemm calls over all of x (X·Wᵀ, then Gᵀ·X): the
// reference that tests compare the fused kernel with.
double pl_logreg_loss_sgemm(double *grad, const double *params, const float *x, const int32_t *y,
                            const float *row_weight, int64_t n, int d, int k, int binary, double lambda);

// Fit on already-standardized features: params[n_outputs × d + n_outputs] holds the start point
// (zeros, or a warm start) and receives the minimizer. k classes; binary uses one output.
// row_weight may be NULL. Returns 0 (see result->converged) or -1 with pl_errmsg().
int pl_logreg_fit_prepared(double *params, pl_lbfgs_result *result, const float *x, const int32_t *y,
                           const float *row_weight, int64_t n, int d, int k, int binary, double lambda,
                           const pl_lbfgs_options *opts);

// Column mean and population std (ddof 0, as scikit-learn's StandardScaler; constant columns get
// std 1) of the rows x[rows[i]] (rows NULL: rows 0..n-1) of x[· × d] into mean[d], std[d].
void pl_standardize_fit(float *mean, float *std, const float *x, const int64_t *rows, int64_t n, int d);

// out[i] = (x[rows[i]] - mean) / std for i < n (rows NULL: row i). out is [n × d], caller-owned.
void pl_standardize_apply(float *out, const float *x, const int64_t *rows, int64_t n, int d, const float *mean,
                          const float *std);

// Balanced class weights per row: row_weight[i] = n / (k_present · n_{y[i]}), k_present being the
// number of classes with at least one row (scikit-learn's "balanced").
void pl_balanced_weights(float *row_weight, const int32_t *y, int64_t n, int k);

// Sorted distinct values of y[n] into a malloc'd *classes (owned by the caller); returns their
// count, or -1 on no memory.
int pl_distinct_labels(int32_t **classes, const int32_t *y, int64_t n);

// Ridge pieces: A[d × d] = X̂ᵀX̂ / n and b[d] = X̂ᵀ(y - ȳ) / n in double for standardized rows
// x[n × d] (ȳ = mean of y, returned in *y_mean); then solve (A + λI) w = b by Cholesky into w[d].
// Return 0, or -1 with pl_errmsg() (no memory; matrix not positive definite).
int pl_ridge_normal_equations(double *A, double *b, double *y_mean, const float *x, const float *y, int64_t n, int d);
int pl_ridge_solve(double *w, const double *A, const double *b, int d, double lambda);

#endif
