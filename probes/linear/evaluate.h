// The whole linear-probe protocol over arrays, as `probelab probe train` runs it: a held-out split
// by group, lambda by group k-fold cross-validation on the training rows, a refit, held-out metrics
// with group-bootstrap intervals, the majority baseline, and (given type ids) the Hewitt & Liang
// control task with selectivity. The trace-store wiring reads x / y / groups / types and calls this.
#ifndef PL_PROBE_EVALUATE_H
#define PL_PROBE_EVALUATE_H

#include <stdint.h>

#include "probes/linear/cv.h"
#include "probes/linear/logreg.h"
#include "probes/linear/metrics.h"

typedef struct pl_probe_eval_options {
    pl_probe_options probe;  // kind, balanced, standardize, optimizer (lambda comes from CV)
    pl_cv_options cv;        // folds, seed, lambda grid
    int n_bootstrap;         // resamples for the 95% intervals (default 1000; 0 = none, bounds NaN)
    uint64_t seed;           // bootstrap and control-label seed (default 0)
} pl_probe_eval_options;

// Defaults described above.
pl_probe_eval_options pl_probe_eval_defaults(void);

// Held-out metrics of a fitted classifier probe on x[n × d] with label values y[n] (from
// probe->classes) and groups[n] (bootstrap unit; NULL = rows): accuracy, AUROC, log-loss and their
// 95% group-bootstrap intervals into *metrics (other fields untouched). Returns 0, or -1 with
// pl_errmsg() (a label the probe never saw, a ridge probe, AUROC undefined).
int pl_probe_evaluate(pl_probe_metrics *metrics, const pl_probe *probe, const float *x, const int32_t *y,
                      const int32_t *groups, int64_t n, int n_bootstrap, uint64_t seed);

// The protocol above on x[n × d], labels y[n], groups[n]; is_test[n] marks held-out rows (NULL:
// a 20% split by group, seeded). types[n] (NULL: skip) gives the control task's type per row; the
// control probe is fitted with the lambda chosen for the real one. *probe (owned by the caller)
// carries the held-out metrics in probe->metrics; cv (may be NULL) receives the grid. Returns 0,
// or -1 with pl_errmsg().
int pl_probe_train_eval(pl_probe **probe, pl_cv_result *cv, const float *x, const int32_t *y, const int32_t *groups,
                        const int32_t *types, const uint8_t *is_test, int64_t n, int d,
                        const pl_probe_eval_options *opts);

// A control fit: fit on the rows with is_test[i] == 0 with opts (its lambda as given, no CV) and
// evaluate on the held-out rows whose label the fit saw (the others are dropped) without a
// bootstrap: accuracy, AUROC and log-loss into *metrics (NaN where undefined, e.g. one class left).
// Used for the shuffled-label control with the real probe's lambda. Returns 0, or -1 with pl_errmsg().
int pl_probe_fixed_eval(pl_probe_metrics *metrics, const float *x, const int32_t *y, const uint8_t *is_test, int64_t n,
                        int d, const pl_probe_options *opts);

#endif
