// Cross-validated choice of the L2 strength for linear probes. Folds are built from groups (an int
// id per row, e.g. the example or run id) so that the rows of one example, e.g. its tokens, never
// straddle a training and a held-out split. Everything is deterministic given the seed.
#ifndef PL_PROBE_CV_H
#define PL_PROBE_CV_H

#include <stdint.h>

#include "probes/linear/logreg.h"

#define PL_CV_MAX_LAMBDAS 32

typedef struct pl_cv_options {
    int n_folds;            // default 5
    uint64_t seed;          // fold assignment seed (default 0)
    const double *lambdas;  // the grid, any order; NULL: 1e-4, 1e-3, ..., 1e2 (7 values)
    int n_lambdas;          // <= PL_CV_MAX_LAMBDAS
} pl_cv_options;

// Held-out scores of every lambda of the grid, sorted by descending lambda (strongest first).
typedef struct pl_cv_result {
    int n_folds, n_lambdas;
    double lambdas[PL_CV_MAX_LAMBDAS];
    double mean_score[PL_CV_MAX_LAMBDAS];     // mean over folds of the held-out log-loss (ridge: MSE); lower is better
    double std_score[PL_CV_MAX_LAMBDAS];      // its standard deviation over folds
    double mean_accuracy[PL_CV_MAX_LAMBDAS];  // mean held-out accuracy (ridge: R²)
    int best_index;                           // argmin of mean_score (ties: the stronger lambda)
    double best_lambda;
    int all_converged;                        // 1 if every fold's fit converged
} pl_cv_result;

// Defaults described above.
pl_cv_options pl_cv_defaults(void);

// Assign each row a fold in 0..n_folds-1 (fold[n], caller-allocated): groups are shuffled with the
// seed and each goes, whole, to the fold with the fewest rows so far. Returns 0, or -1 with
// pl_errmsg() if there are fewer distinct groups than folds.
int pl_group_kfold(int32_t *fold, const int32_t *groups, int64_t n, int n_folds, uint64_t seed);

// A held-out split by group: is_test[n] (caller-allocated) marks whole groups, shuffled with the
// seed, until at least test_fraction of the rows are marked. Returns 0, or -1 if there are fewer
// than two groups or test_fraction is not in (0, 1).
int pl_group_split(uint8_t *is_test, const int32_t *groups, int64_t n, double test_fraction, uint64_t seed);

// Choose lambda by group k-fold cross-validation (mean held-out log-loss), then refit on all rows
// with it. opts->lambda is ignored; the other options apply to every fit. *probe is new and owned
// by the caller; cv (may be NULL) receives the grid's scores. Returns -1 with pl_errmsg() on bad
// input: NaN/inf in x, a single class, fewer groups than folds, a fold whose training rows have a
// single class.
int pl_probe_cv_fit(pl_probe **probe, pl_cv_result *cv, const float *x, const int32_t *y, const int32_t *groups,
                    int64_t n, int d, const pl_probe_options *opts, const pl_cv_options *cv_opts);

// The same for ridge regression on scalar targets y[n] (score: held-out MSE; accuracy column: R²).
int pl_ridge_cv_fit(pl_probe **probe, pl_cv_result *cv, const float *x, const float *y, const int32_t *groups,
                    int64_t n, int d, const pl_probe_options *opts, const pl_cv_options *cv_opts);

#endif
