// Probe metrics over predicted class probabilities: accuracy, AUROC (binary, and macro one-vs-rest
// with ties given average ranks, as scikit-learn's roc_auc_score), log-loss, percentile bootstrap
// intervals that resample groups (examples), ROC curve points and reliability-diagram bins; and
// the baselines: majority class and the Hewitt & Liang control task (selectivity).
//
// Conventions: probs[n × k] row-major, one row per example; y[n] holds class indices 0..k-1.
#ifndef PL_PROBE_METRICS_H
#define PL_PROBE_METRICS_H

#include <stdint.h>

typedef enum pl_metric {
    PL_METRIC_ACCURACY,  // fraction of rows whose argmax is the true class
    PL_METRIC_AUROC,     // binary AUROC for k = 2 (score = probs[:,1]); macro one-vs-rest for k > 2
    PL_METRIC_LOG_LOSS,  // mean -log p(true class), probabilities clipped to [1e-15, 1]
} pl_metric;

// Held-out metrics of a probe, with 95% bootstrap intervals [lo, hi]. NaN where not computed.
typedef struct pl_probe_metrics {
    int64_t n;                     // rows evaluated
    int64_t n_groups;              // groups among them (the bootstrap's resampling unit)
    double accuracy, accuracy_lo, accuracy_hi;
    double auroc, auroc_lo, auroc_hi;
    double log_loss, log_loss_lo, log_loss_hi;
    double majority_accuracy;      // always predicting the training split's most common class
    double control_accuracy;       // same protocol on control-task labels (Hewitt & Liang)
    double selectivity;            // accuracy - control_accuracy
    double mse, r2;                // ridge probes only
    // Repeated group splits (probes/probe_store.c): the values above are then means over splits,
    // [lo, hi] the mean of the splits' bootstrap bounds, and *_sd the spread across splits.
    int n_splits;
    double accuracy_sd, auroc_sd, log_loss_sd;
    double ece;                    // expected calibration error of the top class, 10 bins
    double shuffled_accuracy, shuffled_auroc;  // the same probe fitted to labels shuffled across examples
    int input_kind;                // strongest input-only baseline (index of pl_input_kind_name), -1 none
    double input_accuracy, input_auroc, input_auroc_sd;
    int64_t n_wrong;               // held-out rows (over all splits) where the model's answer was wrong
    double wrong_own, wrong_gold;  // ... where the top class is the model's own answer / the gold answer
} pl_probe_metrics;

// A pl_probe_metrics with every value NaN and counts zero.
pl_probe_metrics pl_probe_metrics_empty(void);

// Name of a metric ("accuracy", "auroc", "log_loss"); static string.
const char *pl_metric_name(pl_metric metric);

// One metric over n rows. Returns 0, or -1 with pl_errmsg() (e.g. AUROC when only one class is
// present, k < 2, a class index out of range).
int pl_metric_eval(double *value, pl_metric metric, const float *probs, const int32_t *y, int64_t n, int k);

// Binary AUROC of scores[n] for positive[n] (nonzero = positive); tied scores share their average
// rank. Returns 0, or -1 if either class is absent.
int pl_auroc_binary(double *auroc, const float *scores, const uint8_t *positive, int64_t n);

// Macro one-vs-rest AUROC: the mean over classes c present in y (and not all rows) of the binary
// AUROC of probs[:, c] for y == c. Returns 0, or -1 if fewer than two classes are present.
int pl_auroc_macro(double *auroc, const float *probs, const int32_t *y, int64_t n, int k);

// Percentile bootstrap interval [*lo, *hi] (2.5% and 97.5%) of a metric: each resample draws the
// groups (groups[n], e.g. example ids; NULL = every row its own group) with replacement and takes
// all rows of each drawn group. Resamples where the metric is undefined are skipped. Seeded and
// deterministic. Returns 0, or -1 (fewer than two groups, or most resamples undefined).
int pl_metric_bootstrap(double *lo, double *hi, pl_metric metric, const float *probs, const int32_t *y,
                        const int32_t *groups, int64_t n, int k, int n_resamples, uint64_t seed);

// ROC curve of scores[n] for positive[n]: one point per distinct threshold, from (0,0) to (1,1),
// thresholds descending (the first is +inf). *fpr, *tpr, *thresholds are malloc'd arrays of
// *n_points floats owned by the caller. Returns 0, or -1 if either class is absent.
int pl_roc_curve(float **fpr, float **tpr, float **thresholds, int64_t *n_points, const float *scores,
                 const uint8_t *positive, int64_t n);

// Reliability diagram of the top-label confidence: n_bins equal-width bins over [0, 1]; for each
// bin the mean confidence, the accuracy and the row count (caller-allocated arrays [n_bins]; empty
// bins get NaN means). *ece (may be NULL) is the expected calibration error Σ_b n_b/n |acc-conf|.
int pl_reliability_bins(double *mean_confidence, double *accuracy, int64_t *count, double *ece, const float *probs,
                        const int32_t *y, int64_t n, int k, int n_bins);

// Majority-class baseline: the most common class of y_train[n_train] (ties: lowest index) into
// *majority, and its accuracy on y_test[n_test] into *accuracy. Returns 0, or -1 if n_train is 0.
int pl_majority_baseline(int32_t *majority, double *accuracy, const int32_t *y_train, int64_t n_train,
                         const int32_t *y_test, int64_t n_test, int k);

// Control task (Hewitt & Liang 2019): every distinct type id (types[n], e.g. the token id) gets
// one label drawn from the empirical label distribution of y[n]; control_y[i] is the label of
// types[i]'s type. Compute it over train and test rows together so a type keeps its label across
// the split. Seeded. Returns 0, or -1 on no memory. Selectivity = accuracy - control accuracy.
int pl_control_labels(int32_t *control_y, const int32_t *y, const int32_t *types, int64_t n, uint64_t seed);

#endif
