// Limited-memory BFGS for smooth unconstrained minimization in double precision, with a
// strong-Wolfe line search (Nocedal & Wright, algorithms 3.5/3.6 and 7.4). Used by the
// logistic-regression probes; the objective may compute in float internally.
#ifndef PL_PROBE_LBFGS_H
#define PL_PROBE_LBFGS_H

#include <stdint.h>

// The objective: returns f(x) and writes its gradient into grad[n]. Outputs first.
// A non-finite return value makes the line search shrink the step.
typedef double (*pl_lbfgs_objective)(double *grad, const double *x, void *ctx);

typedef struct pl_lbfgs_options {
    int max_iter;        // iteration cap (default 1000)
    int history;         // number of (s, y) pairs kept (default 10)
    double gtol;         // converged when max_i |g_i| <= gtol * max(1, |f|) (default 1e-5)
    double ftol;         // converged when (f_{k-5} - f_k) / max(|f_{k-5}|, |f_k|, 1) <= 5 ftol, i.e. the
                         // mean relative decrease over the last 5 iterations is below ftol (default
                         // 1e-9; 0 disables)
    int max_linesearch;  // objective evaluations per line search (default 40)
} pl_lbfgs_options;

typedef enum pl_lbfgs_stop {
    PL_LBFGS_GTOL = 1,         // gradient test met (converged)
    PL_LBFGS_FTOL,             // relative decrease test met (converged)
    PL_LBFGS_MAX_ITER,         // iteration cap reached (not converged)
    PL_LBFGS_LINE_SEARCH,      // no step satisfied the Wolfe conditions (not converged)
} pl_lbfgs_stop;

typedef struct pl_lbfgs_result {
    int iterations;    // accepted steps
    int evaluations;   // objective + gradient evaluations, line searches included
    int converged;     // 1 if the gradient or decrease test was met
    pl_lbfgs_stop stop;
    double f;          // final objective
    double grad_max;   // final max_i |g_i|
} pl_lbfgs_result;

// Defaults described above.
pl_lbfgs_options pl_lbfgs_defaults(void);

// A short name for a stop reason ("gtol", "ftol", "max_iter", "line_search"); static string.
const char *pl_lbfgs_stop_name(pl_lbfgs_stop stop);
// Minimize from the start point in x[n] (overwritten with the minimizer). opts may be NULL for
// defaults. Returns 0 (see result->converged), or -1 with pl_errmsg() if memory runs out or the
// objective is not finite at the start point.
int pl_lbfgs_minimize(double *x, pl_lbfgs_result *result, pl_lbfgs_objective objective, void *ctx, int64_t n,
                      const pl_lbfgs_options *opts);

#endif
