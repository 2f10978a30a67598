#include "probes/linear/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

pl_probe_eval_options pl_probe_eval_defaults(void) {
    return (pl_probe_eval_options){.probe = pl_probe_defaults(), .cv = pl_cv_defaults(), .n_bootstrap = 1000,
                                   .seed = 0};
}

int pl_probe_evaluate(pl_probe_metrics *metrics, const pl_probe *probe, const float *x, const int32_t *y,
                      const int32_t *groups, int64_t n, int n_bootstrap, uint64_t seed) {
    if (probe->kind == PL_PROBE_RIDGE) return pl_fail("probe evaluate: a ridge probe has no class metrics");
    if (n < 1) return pl_fail("probe evaluate: no held-out rows");
    int k = probe->n_classes, rc = -1;
    float *probs = malloc(sizeof(float) * (size_t)n * k);
    int32_t *y_idx = malloc(sizeof(int32_t) * (size_t)n);
    if (!probs || !y_idx) {
        pl_fail("probe evaluate: out of memory for %lld rows", (long long)n);
        goto done;
    }
    if (pl_probe_class_index(y_idx, probe, y, n) > 0) {
        for (int64_t i = 0; i < n; i++)
            if (y_idx[i] < 0) {
                pl_fail("probe evaluate: held-out label %d (row %lld) never appears in the training rows", y[i],
                        (long long)i);
                goto done;
            }
    }
    if (pl_probe_predict_proba(probs, probe, x, n)) goto done;
    const pl_metric which[3] = {PL_METRIC_ACCURACY, PL_METRIC_AUROC, PL_METRIC_LOG_LOSS};
    double *value[3] = {&metrics->accuracy, &metrics->auroc, &metrics->log_loss};
    double *lo[3] = {&metrics->accuracy_lo, &metrics->auroc_lo, &metrics->log_loss_lo};
    double *hi[3] = {&metrics->accuracy_hi, &metrics->auroc_hi, &metrics->log_loss_hi};
    for (int m = 0; m < 3; m++) {
        if (pl_metric_eval(value[m], which[m], probs, y_idx, n, k)) goto done;
        *lo[m] = *hi[m] = NAN;
        if (n_bootstrap > 0 && pl_metric_bootstrap(lo[m], hi[m], which[m], probs, y_idx, groups, n, k, n_bootstrap, seed))
            goto done;
    }
    metrics->n = n;
    int32_t *ids = NULL;
    int n_groups = groups ? pl_distinct_labels(&ids, groups, n) : (int)n;
    free(ids);
    metrics->n_groups = n_groups;
    rc = 0;
done:
    free(probs), free(y_idx);
    return rc;
}

// Copy the rows with is_test[i] == want into xo / yo / go.
static int64_t gather(float *xo, int32_t *yo, int32_t *go, const float *x, const int32_t *y, const int32_t *groups,
                      const uint8_t *is_test, int64_t n, int d, int want) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((is_test[i] != 0) != want) continue;
        memcpy(xo + m * d, x + i * d, sizeof(float) * (size_t)d);
        yo[m] = y[i], go[m] = groups[i];
        m++;
    }
    return m;
}

int pl_probe_train_eval(pl_probe **probe, pl_cv_result *cv, const float *x, const int32_t *y, const int32_t *groups,
                        const int32_t *types, const uint8_t *is_test, int64_t n, int d,
                        const pl_probe_eval_options *opts) {
    pl_probe_eval_options o = opts ? *opts : pl_probe_eval_defaults();
    *probe = NULL;
    int rc = -1;
    pl_probe *p = NULL, *control = NULL;
    uint8_t *split = malloc((size_t)(n > 0 ? n : 1));
    float *x_train = malloc(sizeof(float) * (size_t)n * d), *x_test = malloc(sizeof(float) * (size_t)n * d);
    int32_t *y_train = malloc(sizeof(int32_t) * (size_t)n), *y_test = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *g_train = malloc(sizeof(int32_t) * (size_t)n), *g_test = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *ctrl = types ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    int32_t *c_train = types ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    int32_t *c_test = types ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)n);
    if (!split || !x_train || !x_test || !y_train || !y_test || !g_train || !g_test || !idx ||
        (types && (!ctrl || !c_train || !c_test))) {
        pl_fail("probe train: out of memory for %lld × %d features", (long long)n, d);
        goto done;
    }
    if (is_test) memcpy(split, is_test, (size_t)n);
    else if (pl_group_split(split, groups, n, 0.2, o.seed)) goto done;
    int64_t n_train = gather(x_train, y_train, g_train, x, y, groups, split, n, d, 0);
    int64_t n_test = gather(x_test, y_test, g_test, x, y, groups, split, n, d, 1);
    if (n_train < 2 || n_test < 1) {
        pl_fail("probe train: need training and held-out rows, got %lld and %lld", (long long)n_train,
                (long long)n_test);
        goto done;
    }
    pl_cv_result local;
    if (!cv) cv = &local;
    if (pl_probe_cv_fit(&p, cv, x_train, y_train, g_train, n_train, d, &o.probe, &o.cv)) goto done;
    pl_probe_metrics m = pl_probe_metrics_empty();
    if (pl_probe_evaluate(&m, p, x_test, y_test, g_test, n_test, o.n_bootstrap, o.seed)) goto done;
    int32_t majority;
    pl_probe_class_index(idx, p, y_train, n_train);
    int32_t *idx_test = malloc(sizeof(int32_t) * (size_t)n_test);
    if (!idx_test) {
        pl_fail("probe train: out of memory");
        goto done;
    }
    pl_probe_class_index(idx_test, p, y_test, n_test);
    int brc = pl_majority_baseline(&majority, &m.majority_accuracy, idx, n_train, idx_test, n_test, p->n_classes);
    free(idx_test);
    if (brc) goto done;
    if (types) {
        // Control labels over all rows together, so a type keeps its label across the split.
        if (pl_control_labels(ctrl, y, types, n, o.seed)) goto done;
        int64_t a = 0, b = 0;
        for (int64_t i = 0; i < n; i++) {
            if (split[i]) c_test[b++] = ctrl[i];
            else c_train[a++] = ctrl[i];
        }
        bool one_class = true;  // few question types can give every training row one control label
        for (int64_t i = 1; i < n_train && one_class; i++) one_class = c_train[i] == c_train[0];
        if (one_class) {
            // Then the control task is solved by a constant: its accuracy is that class's share.
            int64_t correct = 0;
            for (int64_t i = 0; i < n_test; i++) correct += c_test[i] == c_train[0];
            m.control_accuracy = n_test ? (double)correct / (double)n_test : NAN;
            m.selectivity = m.accuracy - m.control_accuracy;
            goto store;
        }
        pl_probe_options co = o.probe;
        co.lambda = p->lambda;
        if (pl_probe_fit(&control, x_train, c_train, n_train, d, &co)) {
            char why[512];
            snprintf(why, sizeof why, "%s", pl_errmsg());
            pl_fail("probe train: control task: %s", why);
            goto done;
        }
        int32_t *pred = idx;  // reuse: predicted control labels on the held-out rows
        if (pl_probe_predict(pred, control, x_test, n_test)) goto done;
        int64_t correct = 0;
        for (int64_t i = 0; i < n_test; i++) correct += pred[i] == c_test[i];
        m.control_accuracy = (double)correct / (double)n_test;
        m.selectivity = m.accuracy - m.control_accuracy;
    }
store:
    p->metrics = m;
    *probe = p;
    p = NULL;
    rc = 0;
done:
    pl_probe_free(p), pl_probe_free(control);
    free(split), free(x_train), free(x_test), free(y_train), free(y_test), free(g_train), free(g_test);
    free(ctrl), free(c_train), free(c_test), free(idx);
    return rc;
}

int pl_probe_fixed_eval(pl_probe_metrics *metrics, const float *x, const int32_t *y, const uint8_t *is_test, int64_t n,
                        int d, const pl_probe_options *opts) {
    *metrics = pl_probe_metrics_empty();
    int rc = -1;
    pl_probe *p = NULL;
    float *xs = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * d);
    int32_t *ys = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1)), *gs = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!xs || !ys || !gs || !idx) { pl_fail("probe control: out of memory"); goto done; }
    int64_t n_train = gather(xs, ys, gs, x, y, ys, is_test, n, d, 0);  // groups unused: ys as a stand-in
    if (pl_probe_fit(&p, xs, ys, n_train, d, opts)) goto done;
    int64_t m = gather(xs, ys, gs, x, y, ys, is_test, n, d, 1);
    pl_probe_class_index(idx, p, ys, m);
    int64_t k = 0;  // keep the held-out rows whose label the fit knows
    for (int64_t i = 0; i < m; i++)
        if (idx[i] >= 0) memmove(xs + k * d, xs + i * d, sizeof(float) * (size_t)d), ys[k++] = ys[i];
    rc = 0;
    if (k > 0 && pl_probe_evaluate(metrics, p, xs, ys, NULL, k, 0, 0)) *metrics = pl_probe_metrics_empty();
done:
    pl_probe_free(p);
    free(xs), free(ys), free(gs), free(idx);
    return rc;
}
