#include "probes/linear/bench_probe.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "probes/linear/logreg.h"
#include "probes/linear/logreg_fused.h"
#include "runtime/base/rng.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/base/npy.h"

#define BENCH_N_TRAIN 20000
#define BENCH_N_TEST 5000
#define BENCH_D 512
#define BENCH_K 10
#define BENCH_LAMBDA 1e-3
#define BENCH_GTOL 1e-4
#define BENCH_SEED 2024

void pl_bench_probe_data(float *x, int32_t *y, int64_t n, int d, int k, uint64_t seed) {
    pl_rng rng = pl_rng_seed(seed);
    float *means = malloc(sizeof(float) * (size_t)k * d);
    if (!means) return;
    for (int i = 0; i < k * d; i++) means[i] = (float)(0.12 * pl_rng_normal(&rng));
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)pl_rng_below(&rng, (uint64_t)k);
        for (int j = 0; j < d; j++) x[i * d + j] = means[y[i] * d + j] + (float)pl_rng_normal(&rng);
    }
    free(means);
}

static int export_data(const char *dir, const float *x, const int32_t *y, const pl_probe *p, double accuracy) {
    char path[4096];
    int64_t s_train[2] = {BENCH_N_TRAIN, BENCH_D}, s_test[2] = {BENCH_N_TEST, BENCH_D};
    int64_t s_ytrain[1] = {BENCH_N_TRAIN}, s_ytest[1] = {BENCH_N_TEST};
    snprintf(path, sizeof path, "%s/x_train.npy", dir);
    if (pl_npy_write_f32(path, x, 2, s_train)) return -1;
    snprintf(path, sizeof path, "%s/y_train.npy", dir);
    if (pl_npy_write_i32(path, y, 1, s_ytrain)) return -1;
    snprintf(path, sizeof path, "%s/x_test.npy", dir);
    if (pl_npy_write_f32(path, x + (int64_t)BENCH_N_TRAIN * BENCH_D, 2, s_test)) return -1;
    snprintf(path, sizeof path, "%s/y_test.npy", dir);
    if (pl_npy_write_i32(path, y + BENCH_N_TRAIN, 1, s_ytest)) return -1;
    snprintf(path, sizeof path, "%s/bench_probe.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return pl_fail("%s: cannot open for writing", path);
    fprintf(f,
            "{\"lambda\": %g, \"gtol\": %g, \"n_train\": %d, \"seconds\": %.6f, \"iterations\": %d, "
            "\"evaluations\": %d, \"converged\": %d, \"train_loss\": %.9f, \"accuracy\": %.6f}\n",
            BENCH_LAMBDA, BENCH_GTOL, BENCH_N_TRAIN, p->fit_seconds, p->iterations, p->evaluations, p->converged,
            p->train_loss, accuracy);
    if (fclose(f) != 0) return pl_fail("%s: write failed", path);
    return 0;
}

int pl_bench_probe(FILE *out) {
    const int64_t n = BENCH_N_TRAIN + BENCH_N_TEST;
    const int d = BENCH_D, k = BENCH_K;
    int rc = -1;
    pl_probe *p = NULL;
    float *x = malloc(sizeof(float) * (size_t)n * d), *w = NULL, *z = NULL, *gw = NULL;
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n), *pred = malloc(sizeof(int32_t) * BENCH_N_TEST);
    if (!x || !y || !pred) {
        pl_fail("bench probe: out of memory");
        goto done;
    }
    pl_bench_probe_data(x, y, n, d, k, BENCH_SEED);
    pl_probe_options o = pl_probe_defaults();
    o.kind = PL_PROBE_MULTINOMIAL, o.lambda = BENCH_LAMBDA, o.lbfgs.gtol = BENCH_GTOL;
    if (pl_probe_fit(&p, x, y, BENCH_N_TRAIN, d, &o)) goto done;
    if (pl_probe_predict(pred, p, x + (int64_t)BENCH_N_TRAIN * d, BENCH_N_TEST)) goto done;
    int64_t correct = 0;
    for (int64_t i = 0; i < BENCH_N_TEST; i++) correct += pred[i] == y[BENCH_N_TRAIN + i];
    double accuracy = (double)correct / BENCH_N_TEST;

    // The fused one-pass kernel alone, for the same evaluations (what the fit spends per gradient),
    // timed before the sgemm baseline, whose OpenBLAS threads keep spinning for a while afterwards.
    pl_logreg_fused *ws = NULL;
    double *params = calloc((size_t)k * (d + 1), sizeof(double)), *grad = malloc(sizeof(double) * (size_t)k * (d + 1));
    if (!params || !grad || pl_logreg_fused_new(&ws, BENCH_N_TRAIN, d, k, 0)) {
        free(params), free(grad);
        pl_fail("bench probe: out of memory");
        goto done;
    }
    double t0 = pl_now_sec();
    for (int e = 0; e < p->evaluations; e++) pl_logreg_fused_eval(ws, grad, params, x, y, NULL, 0, BENCH_LAMBDA);
    double fused_seconds = pl_now_sec() - t0;
    int fused_threads = pl_logreg_fused_threads(ws);
    pl_logreg_fused_free(ws);
    free(params), free(grad);
    // Baseline: the two matmuls of each gradient evaluation, nothing else.
    w = calloc((size_t)k * d, sizeof(float));
    z = calloc((size_t)BENCH_N_TRAIN * k, sizeof(float));
    gw = malloc(sizeof(float) * (size_t)k * d);
    if (!w || !z || !gw) {
        pl_fail("bench probe: out of memory");
        goto done;
    }
    t0 = pl_now_sec();
    for (int e = 0; e < p->evaluations; e++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BENCH_N_TRAIN, k, d, 1.0f, x, d, w, d, 0.0f, z, k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, BENCH_N_TRAIN, 1.0f, z, k, x, d, 0.0f, gw, d);
    }
    double sgemm_seconds = pl_now_sec() - t0;
    const char *coretype = getenv("OPENBLAS_CORETYPE");

    fprintf(out, "probe fit: multinomial L2 logistic regression, n=%d d=%d k=%d lambda=%g (sklearn C=%g), gtol %g\n",
            BENCH_N_TRAIN, d, k, BENCH_LAMBDA, 1.0 / (BENCH_LAMBDA * BENCH_N_TRAIN), BENCH_GTOL);
    fprintf(out, "  fit            %8.3f s  %d iterations, %d gradient evaluations, %s (%s), loss %.6f\n",
            p->fit_seconds, p->iterations, p->evaluations, p->converged ? "converged" : "NOT converged",
            pl_lbfgs_stop_name(p->stop), p->train_loss);
    fprintf(out, "  held-out accuracy %.4f on %d rows\n", accuracy, BENCH_N_TEST);
    fprintf(out, "  baseline: bare sgemm for %d evaluations (X·Wᵀ and Gᵀ·X) %8.3f s  ->  fit / sgemm = %.2fx\n",
            p->evaluations, sgemm_seconds, p->fit_seconds / sgemm_seconds);
    fprintf(out, "  fused one-pass kernel for the same %d evaluations %8.3f s  ->  sgemm / fused = %.2fx\n",
            p->evaluations, fused_seconds, sgemm_seconds / fused_seconds);
    fprintf(out, "  threads: %d (fused kernel), OpenBLAS %d; OPENBLAS_CORETYPE=%s; SIMD path: %s\n", fused_threads,
            openblas_get_num_threads(), coretype ? coretype : "(unset)", pl_simd_path());
    const char *dir = getenv("PL_BENCH_PROBE_EXPORT");
    if (dir && *dir) {
        if (export_data(dir, x, y, p, accuracy)) goto done;
        fprintf(out, "  exported the data to %s (compare: /usr/bin/python3 tests/bench_probe_sklearn.py %s)\n", dir,
                dir);
    }
    rc = 0;
done:
    pl_probe_free(p);
    free(x), free(y), free(pred), free(w), free(z), free(gw);
    return rc;
}
