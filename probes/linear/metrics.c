#include "probes/linear/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probes/linear/logreg.h"
#include "runtime/base/rng.h"
#include "runtime/base/error.h"

pl_probe_metrics pl_probe_metrics_empty(void) {
    return (pl_probe_metrics){.accuracy = NAN, .accuracy_lo = NAN, .accuracy_hi = NAN, .auroc = NAN, .auroc_lo = NAN,
                              .auroc_hi = NAN, .log_loss = NAN, .log_loss_lo = NAN, .log_loss_hi = NAN,
                              .majority_accuracy = NAN, .control_accuracy = NAN, .selectivity = NAN, .mse = NAN,
                              .r2 = NAN, .accuracy_sd = NAN, .auroc_sd = NAN, .log_loss_sd = NAN, .ece = NAN,
                              .shuffled_accuracy = NAN, .shuffled_auroc = NAN, .input_kind = -1,
                              .input_accuracy = NAN, .input_auroc = NAN, .input_auroc_sd = NAN, .wrong_own = NAN,
                              .wrong_gold = NAN};
}

const char *pl_metric_name(pl_metric metric) {
    switch (metric) {
    case PL_METRIC_ACCURACY: return "accuracy";
    case PL_METRIC_AUROC: return "auroc";
    case PL_METRIC_LOG_LOSS: return "log_loss";
    }
    return "?";
}

typedef struct scored {
    float score;
    uint8_t positive;
} scored;

static int cmp_score_asc(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

int pl_auroc_binary(double *auroc, const float *scores, const uint8_t *positive, int64_t n) {
    scored *s = malloc(sizeof(scored) * (size_t)(n > 0 ? n : 1));
    if (!s) return pl_fail("auroc: out of memory for %lld scores", (long long)n);
    int64_t n_pos = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(scores[i])) {
            free(s);
            return pl_fail("auroc: score %lld is NaN", (long long)i);
        }
        s[i] = (scored){scores[i], positive[i] != 0};
        n_pos += s[i].positive;
    }
    int64_t n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) {
        free(s);
        return pl_fail("auroc: undefined with only %s examples (%lld rows)", n_pos ? "positive" : "negative",
                       (long long)n);
    }
    qsort(s, (size_t)n, sizeof(scored), cmp_score_asc);
    // Mann-Whitney U: sum of the positives' ranks, tied scores sharing their average rank.
    double rank_sum = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        int64_t pos_in_tie = 0;
        while (j < n && s[j].score == s[i].score) pos_in_tie += s[j++].positive;
        double avg_rank = 0.5 * (double)(i + 1 + j);  // ranks i+1 .. j
        rank_sum += avg_rank * (double)pos_in_tie;
        i = j;
    }
    *auroc = (rank_sum - 0.5 * (double)n_pos * (double)(n_pos + 1)) / ((double)n_pos * (double)n_neg);
    free(s);
    return 0;
}

static int check_classes(const char *what, const int32_t *y, int64_t n, int k) {
    if (k < 2) return pl_fail("%s: need at least 2 classes, got %d", what, k);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return pl_fail("%s: class index %d at row %lld is outside 0..%d", what, y[i], (long long)i, k - 1);
    return 0;
}

int pl_auroc_macro(double *auroc, const float *probs, const int32_t *y, int64_t n, int k) {
    if (check_classes("auroc", y, n, k)) return -1;
    float *col = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    uint8_t *pos = malloc((size_t)(n > 0 ? n : 1));
    int64_t *count = calloc((size_t)k, sizeof(int64_t));
    if (!col || !pos || !count) {
        free(col), free(pos), free(count);
        return pl_fail("auroc: out of memory");
    }
    for (int64_t i = 0; i < n; i++) count[y[i]]++;
    double sum = 0;
    int used = 0, rc = 0;
    for (int c = 0; c < k && rc == 0; c++) {
        if (count[c] == 0 || count[c] == n) continue;
        for (int64_t i = 0; i < n; i++) col[i] = probs[i * k + c], pos[i] = y[i] == c;
        double a;
        rc = pl_auroc_binary(&a, col, pos, n);
        sum += a, used++;
    }
    free(col), free(pos), free(count);
    if (rc) return -1;
    if (used < 2) return pl_fail("auroc: undefined with a single class among %lld rows", (long long)n);
    *auroc = sum / used;
    return 0;
}

int pl_metric_eval(double *value, pl_metric metric, const float *probs, const int32_t *y, int64_t n, int k) {
    if (n < 1) return pl_fail("%s: no rows", pl_metric_name(metric));
    if (check_classes(pl_metric_name(metric), y, n, k)) return -1;
    switch (metric) {
    case PL_METRIC_ACCURACY: {
        int64_t correct = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *row = probs + i * k;
            int best = 0;
            for (int c = 1; c < k; c++)
                if (row[c] > row[best]) best = c;
            correct += best == y[i];
        }
        *value = (double)correct / (double)n;
        return 0;
    }
    case PL_METRIC_AUROC:
        if (k == 2) {
            float *col = malloc(sizeof(float) * (size_t)n);
            uint8_t *pos = malloc((size_t)n);
            int rc = -1;
            if (col && pos) {
                for (int64_t i = 0; i < n; i++) col[i] = probs[2 * i + 1], pos[i] = y[i] == 1;
                rc = pl_auroc_binary(value, col, pos, n);
            } else {
                pl_fail("auroc: out of memory");
            }
            free(col), free(pos);
            return rc;
        }
        return pl_auroc_macro(value, probs, y, n, k);
    case PL_METRIC_LOG_LOSS: {
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double p = probs[i * k + y[i]];
            sum -= log(fmin(fmax(p, 1e-15), 1.0));
        }
        *value = sum / (double)n;
        return 0;
    }
    }
    return pl_fail("metric: unknown metric %d", (int)metric);
}

// Linear-interpolated quantile (numpy's default) of sorted v[m].
static double quantile(const double *v, int m, double q) {
    double pos = q * (m - 1);
    int lo = (int)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pl_metric_bootstrap(double *lo, double *hi, pl_metric metric, const float *probs, const int32_t *y,
                        const int32_t *groups, int64_t n, int k, int n_resamples, uint64_t seed) {
    if (n_resamples < 2) return pl_fail("bootstrap: need at least 2 resamples, got %d", n_resamples);
    if (check_classes("bootstrap", y, n, k)) return -1;
    int rc = -1;
    int32_t *group_ids = NULL;
    int64_t *offset = NULL, *member = NULL, *fill = NULL, *rows = NULL;
    float *rp = NULL;
    int32_t *ry = NULL;
    double *values = malloc(sizeof(double) * (size_t)n_resamples);
    // Dense group index per row, then rows grouped (CSR: member[offset[g] .. offset[g+1]]).
    int32_t *dense = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int n_groups = 0;
    if (!values || !dense) goto oom;
    if (groups) {
        n_groups = pl_distinct_labels(&group_ids, groups, n);
        if (n_groups < 0) goto done;
        for (int64_t i = 0; i < n; i++) {
            int a = 0, b = n_groups - 1;
            while (a < b) {
                int mid = (a + b) / 2;
                if (group_ids[mid] < groups[i]) a = mid + 1;
                else b = mid;
            }
            dense[i] = a;
        }
    } else {
        n_groups = (int)n;
        for (int64_t i = 0; i < n; i++) dense[i] = (int32_t)i;
    }
    if (n_groups < 2) {
        pl_fail("bootstrap: need at least 2 groups to resample, got %d", n_groups);
        goto done;
    }
    offset = calloc((size_t)n_groups + 1, sizeof(int64_t));
    member = malloc(sizeof(int64_t) * (size_t)n);
    fill = calloc((size_t)n_groups, sizeof(int64_t));
    if (!offset || !member || !fill) goto oom;
    for (int64_t i = 0; i < n; i++) offset[dense[i] + 1]++;
    for (int g = 0; g < n_groups; g++) offset[g + 1] += offset[g];
    for (int64_t i = 0; i < n; i++) member[offset[dense[i]] + fill[dense[i]]++] = i;
    int64_t cap = n;
    rows = malloc(sizeof(int64_t) * (size_t)cap);
    rp = malloc(sizeof(float) * (size_t)cap * k);
    ry = malloc(sizeof(int32_t) * (size_t)cap);
    if (!rows || !rp || !ry) goto oom;
    pl_rng rng = pl_rng_seed(seed);
    int m = 0;
    for (int r = 0; r < n_resamples; r++) {
        int64_t len = 0;
        for (int g = 0; g < n_groups; g++) {
            int pick = (int)pl_rng_below(&rng, (uint64_t)n_groups);
            int64_t size = offset[pick + 1] - offset[pick];
            if (len + size > cap) {  // groups of unequal size can overshoot n
                cap = 2 * (len + size);
                int64_t *nr = realloc(rows, sizeof(int64_t) * (size_t)cap);
                if (!nr) goto oom;
                rows = nr;
            }
            memcpy(rows + len, member + offset[pick], sizeof(int64_t) * (size_t)size);
            len += size;
        }
        if (len > n) {
            float *np_ = realloc(rp, sizeof(float) * (size_t)len * k);
            if (!np_) goto oom;
            rp = np_;
            int32_t *ny = realloc(ry, sizeof(int32_t) * (size_t)len);
            if (!ny) goto oom;
            ry = ny;
        }
        for (int64_t i = 0; i < len; i++) {
            memcpy(rp + i * k, probs + rows[i] * k, sizeof(float) * (size_t)k);
            ry[i] = y[rows[i]];
        }
        double v;
        if (pl_metric_eval(&v, metric, rp, ry, len, k) == 0) values[m++] = v;
    }
    if (m < n_resamples / 2) {
        pl_fail("bootstrap: %s was undefined in %d of %d resamples (too few groups of some class?)",
                pl_metric_name(metric), n_resamples - m, n_resamples);
        goto done;
    }
    qsort(values, (size_t)m, sizeof(double), cmp_double);
    *lo = quantile(values, m, 0.025);
    *hi = quantile(values, m, 0.975);
    rc = 0;
    goto done;
oom:
    pl_fail("bootstrap: out of memory for %lld rows", (long long)n);
done:
    free(values), free(dense), free(group_ids), free(offset), free(member), free(fill), free(rows), free(rp), free(ry);
    return rc;
}

static int cmp_score_desc(const void *a, const void *b) { return cmp_score_asc(b, a); }

int pl_roc_curve(float **fpr, float **tpr, float **thresholds, int64_t *n_points, const float *scores,
                 const uint8_t *positive, int64_t n) {
    *fpr = *tpr = *thresholds = NULL;
    *n_points = 0;
    scored *s = malloc(sizeof(scored) * (size_t)(n > 0 ? n : 1));
    float *f = malloc(sizeof(float) * (size_t)(n + 1)), *t = malloc(sizeof(float) * (size_t)(n + 1));
    float *th = malloc(sizeof(float) * (size_t)(n + 1));
    if (!s || !f || !t || !th) {
        free(s), free(f), free(t), free(th);
        return pl_fail("roc curve: out of memory for %lld scores", (long long)n);
    }
    int64_t n_pos = 0;
    for (int64_t i = 0; i < n; i++) s[i] = (scored){scores[i], positive[i] != 0}, n_pos += s[i].positive;
    int64_t n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) {
        free(s), free(f), free(t), free(th);
        return pl_fail("roc curve: undefined with only %s examples", n_pos ? "positive" : "negative");
    }
    qsort(s, (size_t)n, sizeof(scored), cmp_score_desc);
    int64_t m = 0, tp = 0, fp = 0;
    f[m] = 0, t[m] = 0, th[m] = INFINITY, m++;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && s[j].score == s[i].score) tp += s[j].positive, fp += !s[j].positive, j++;
        f[m] = (float)((double)fp / (double)n_neg), t[m] = (float)((double)tp / (double)n_pos), th[m] = s[i].score;
        m++;
        i = j;
    }
    free(s);
    *fpr = f, *tpr = t, *thresholds = th, *n_points = m;
    return 0;
}

int pl_reliability_bins(double *mean_confidence, double *accuracy, int64_t *count, double *ece, const float *probs,
                        const int32_t *y, int64_t n, int k, int n_bins) {
    if (n_bins < 1) return pl_fail("reliability: need at least 1 bin, got %d", n_bins);
    if (check_classes("reliability", y, n, k)) return -1;
    for (int b = 0; b < n_bins; b++) mean_confidence[b] = 0, accuracy[b] = 0, count[b] = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = probs + i * k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (row[c] > row[best]) best = c;
        double conf = row[best];
        int b = (int)floor(conf * n_bins);
        b = b < 0 ? 0 : b >= n_bins ? n_bins - 1 : b;
        mean_confidence[b] += conf, accuracy[b] += best == y[i], count[b]++;
    }
    double e = 0;
    for (int b = 0; b < n_bins; b++) {
        if (count[b] == 0) {
            mean_confidence[b] = accuracy[b] = NAN;
            continue;
        }
        mean_confidence[b] /= (double)count[b], accuracy[b] /= (double)count[b];
        e += (double)count[b] / (double)n * fabs(accuracy[b] - mean_confidence[b]);
    }
    if (ece) *ece = e;
    return 0;
}

int pl_majority_baseline(int32_t *majority, double *accuracy, const int32_t *y_train, int64_t n_train,
                         const int32_t *y_test, int64_t n_test, int k) {
    if (n_train < 1) return pl_fail("majority baseline: no training rows");
    if (check_classes("majority baseline", y_train, n_train, k < 2 ? 2 : k)) return -1;
    int64_t *count = calloc((size_t)k, sizeof(int64_t));
    if (!count) return pl_fail("majority baseline: out of memory");
    for (int64_t i = 0; i < n_train; i++) count[y_train[i]]++;
    int best = 0;
    for (int c = 1; c < k; c++)
        if (count[c] > count[best]) best = c;
    free(count);
    int64_t correct = 0;
    for (int64_t i = 0; i < n_test; i++) correct += y_test[i] == best;
    *majority = best;
    *accuracy = n_test > 0 ? (double)correct / (double)n_test : NAN;
    return 0;
}

int pl_control_labels(int32_t *control_y, const int32_t *y, const int32_t *types, int64_t n, uint64_t seed) {
    int32_t *type_ids = NULL;
    int n_types = pl_distinct_labels(&type_ids, types, n);
    if (n_types < 0) return -1;
    int32_t *label_of_type = malloc(sizeof(int32_t) * (size_t)(n_types > 0 ? n_types : 1));
    if (!label_of_type) {
        free(type_ids);
        return pl_fail("control labels: out of memory for %d types", n_types);
    }
    // Drawing the label of a uniformly random row samples the empirical label distribution.
    pl_rng rng = pl_rng_seed(seed);
    for (int t = 0; t < n_types; t++) label_of_type[t] = y[pl_rng_below(&rng, (uint64_t)n)];
    for (int64_t i = 0; i < n; i++) {
        int a = 0, b = n_types - 1;
        while (a < b) {
            int mid = (a + b) / 2;
            if (type_ids[mid] < types[i]) a = mid + 1;
            else b = mid;
        }
        control_y[i] = label_of_type[a];
    }
    free(type_ids), free(label_of_type);
    return 0;
}
