#include "probes/linear/logreg.h"

#include "kernels/kernels.h"
#include "probes/linear/logreg_fused.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/kernels.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"

#ifdef PL_SIMD_X86
#include <immintrin.h>
#endif

// LAPACK (Debian's OpenBLAS exports it): Cholesky factorization and solve, column-major.
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
                    const int *ldb, int *info);

#define PREDICT_CHUNK 4096  // rows standardized at a time when predicting

pl_probe_options pl_probe_defaults(void) {
    return (pl_probe_options){.kind = PL_PROBE_AUTO, .lambda = 1e-2, .balanced = 0, .standardize = 1,
                              .lbfgs = pl_lbfgs_defaults()};
}

#define HUGE_PAGE ((size_t)2 << 20)

float *pl_probe_alloc_features(size_t count) {
    size_t bytes = sizeof(float) * (count > 0 ? count : 1);
    if (bytes < 2 * HUGE_PAGE) return malloc(bytes);
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;  // aligned_alloc wants a multiple of the alignment
    float *p = aligned_alloc(HUGE_PAGE, bytes);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure just means 4 KB pages
#endif
    return p;
}

int64_t pl_first_non_finite(const float *x, int64_t n, int d) {
    for (int64_t i = 0; i < n * (int64_t)d; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

#define STD_BLOCK 64  // rows per block of pl_standardize_fit: small enough to stay in L2 for its second pass

#ifdef PL_SIMD_X86
// AVX-512 versions, compiled for AVX-512 whatever the build targets and run only where
// pl_simd_level_get() says the CPU has it.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
static inline __mmask16 lane_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

static void block_moment_avx512(double *s, const double *center, const float *x, const int64_t *rows, int64_t r0,
                                int m, int64_t n, int d) {
    // 16 columns at a time, accumulators in registers across the rows
    for (int j = 0; j < d; j += 16) {
        __mmask16 k = lane_mask(d - j);
        __mmask8 klo = (__mmask8)k, khi = (__mmask8)(k >> 8);
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        __m512d c_lo = center ? _mm512_maskz_loadu_pd(klo, center + j) : lo;
        __m512d c_hi = center ? _mm512_maskz_loadu_pd(khi, center + j + 8) : hi;
        for (int i = 0; i < m; i++) {
            int64_t next = r0 + m + i;
            if (!center && next < n)
                _mm_prefetch((const char *)(x + (rows ? rows[next] : next) * (int64_t)d + j), _MM_HINT_T0);
            __m512 v = _mm512_maskz_loadu_ps(k, x + (rows ? rows[r0 + i] : r0 + i) * (int64_t)d + j);
            __m512d a = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), c_lo);
            __m512d b = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), c_hi);
            if (center) lo = _mm512_fmadd_pd(a, a, lo), hi = _mm512_fmadd_pd(b, b, hi);
            else lo = _mm512_add_pd(lo, a), hi = _mm512_add_pd(hi, b);
        }
        _mm512_mask_storeu_pd(s + j, klo, lo);
        if (khi) _mm512_mask_storeu_pd(s + j + 8, khi, hi);
    }
}

static void standardize_row_avx512(float *o, const float *row, const float *mean, const float *std, int d) {
    for (int j = 0; j < d; j += 16) {  // the same IEEE subtract and divide as the scalar loop
        __mmask16 k = lane_mask(d - j);
        __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), _mm512_maskz_loadu_ps(k, mean + j));
        _mm512_mask_storeu_ps(o + j, k, _mm512_div_ps(v, _mm512_mask_loadu_ps(_mm512_set1_ps(1), k, std + j)));
    }
}
#pragma GCC pop_options
#endif

// Per column of m rows: s[j] = Σ x (center NULL) or Σ (x - center[j])² (double), into s[d].
// The first pass (center NULL) also prefetches the same columns of the next block's rows (up to
// row n): strided reads down a column block would otherwise wait on memory for every row.
static void block_moment(double *s, const double *center, const float *x, const int64_t *rows, int64_t r0, int m,
                         int64_t n, int d) {
#ifdef PL_SIMD_X86
    if (pl_simd_level_get() >= PL_SIMD_AVX512) {
        block_moment_avx512(s, center, x, rows, r0, m, n, d);
        return;
    }
#endif
    memset(s, 0, sizeof(double) * (size_t)d);
    for (int i = 0; i < m; i++) {
        const float *row = x + (rows ? rows[r0 + i] : r0 + i) * (int64_t)d;
        if (center)
            for (int j = 0; j < d; j++) s[j] += (row[j] - center[j]) * (row[j] - center[j]);
        else
            for (int j = 0; j < d; j++) s[j] += row[j];
    }
}

void pl_standardize_fit(float *mean, float *std, const float *x, const int64_t *rows, int64_t n, int d) {
    // One pass over x: each block of rows gets its exact two-pass mean and centered sum of squares
    // while it is in cache, merged into the running totals (Chan, Golub & LeVeque's pairwise
    // update), so large means cause no cancellation.
    double *mu = calloc((size_t)d * 4, sizeof(double));
    if (!mu || n < 1) {  // degrade to the identity map rather than fail: callers check memory elsewhere
        for (int j = 0; j < d; j++) mean[j] = 0, std[j] = 1;
        free(mu);
        return;
    }
    double *m2 = mu + d, *bmean = m2 + d, *bm2 = bmean + d;
    int64_t seen = 0;
    for (int64_t r0 = 0; r0 < n; r0 += STD_BLOCK) {
        int m = (int)(n - r0 < STD_BLOCK ? n - r0 : STD_BLOCK);
        block_moment(bmean, NULL, x, rows, r0, m, n, d);
        for (int j = 0; j < d; j++) bmean[j] /= m;
        block_moment(bm2, bmean, x, rows, r0, m, n, d);
        double total = (double)(seen + m), w = (double)seen * m / total;
        for (int j = 0; j < d; j++) {
            double delta = bmean[j] - mu[j];
            mu[j] += delta * m / total;
            m2[j] += bm2[j] + delta * delta * w;
        }
        seen += m;
    }
    for (int j = 0; j < d; j++) {
        double sd = sqrt(m2[j] / (double)n);
        mean[j] = (float)mu[j];
        std[j] = sd > 1e-12 * fmax(1.0, fabs(mu[j])) ? (float)sd : 1.0f;
    }
    free(mu);
}

void pl_standardize_apply(float *out, const float *x, const int64_t *rows, int64_t n, int d, const float *mean,
                          const float *std) {
    int avx512 = pl_simd_level_get() >= PL_SIMD_AVX512;
    (void)avx512;
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + (rows ? rows[i] : i) * (int64_t)d;
        float *o = out + i * (int64_t)d;
#ifdef PL_SIMD_X86
        if (avx512) {
            standardize_row_avx512(o, row, mean, std, d);
            continue;
        }
#endif
        for (int j = 0; j < d; j++) o[j] = (row[j] - mean[j]) / std[j];
    }
}

void pl_balanced_weights(float *row_weight, const int32_t *y, int64_t n, int k) {
    int64_t *count = calloc((size_t)k, sizeof(int64_t));
    if (!count) {
        for (int64_t i = 0; i < n; i++) row_weight[i] = 1;
        return;
    }
    for (int64_t i = 0; i < n; i++) count[y[i]]++;
    int present = 0;
    for (int c = 0; c < k; c++) present += count[c] > 0;
    for (int64_t i = 0; i < n; i++) row_weight[i] = (float)((double)n / ((double)present * (double)count[y[i]]));
    free(count);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int pl_distinct_labels(int32_t **classes, const int32_t *y, int64_t n) {
    int32_t *sorted = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!sorted) return pl_fail("probe: out of memory for %lld labels", (long long)n);
    memcpy(sorted, y, sizeof(int32_t) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(int32_t), cmp_i32);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[k - 1]) sorted[k++] = sorted[i];
    *classes = sorted;
    return (int)k;
}

static int64_t class_of(const int32_t *classes, int k, int32_t label) {
    int lo = 0, hi = k - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (classes[mid] == label) return mid;
        if (classes[mid] < label) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

// ---- the logistic objective ----

// Buffers for one problem, reused by every evaluation: z, w, gw for the two-sgemm evaluation,
// fused for the one-pass kernel (probes/linear/logreg_fused.h) the optimizer uses.
typedef struct logreg_problem {
    const float *x;           // [n × d] standardized
    const int32_t *y;         // [n] class index
    const float *row_weight;  // [n] or NULL
    int64_t n;
    int d, n_out, binary;
    double lambda;
    float *w;   // [n_out × d] float copy of the parameters
    float *z;   // [n × n_out] logits, then dL/dlogits
    float *gw;  // [n_out × d]
    pl_logreg_fused *fused;
} logreg_problem;

// The objective with two sgemm calls over all of x: the reference for the fused kernel.
static double logreg_eval_sgemm(double *grad, const double *params, void *ctx) {
    logreg_problem *P = ctx;
    int64_t n = P->n;
    int d = P->d, n_out = P->n_out;
    size_t n_w = (size_t)n_out * d;
    const double *b = params + n_w;
    for (size_t j = 0; j < n_w; j++) P->w[j] = (float)params[j];
    // z[n × n_out] = x · wᵀ
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, n_out, d, 1.0f, P->x, d, P->w, d, 0.0f, P->z, n_out);
    double *gb = grad ? grad + n_w : NULL;
    if (gb) memset(gb, 0, sizeof(double) * (size_t)n_out);
    double loss = 0, inv_n = 1.0 / (double)n;
    for (int64_t i = 0; i < n; i++) {
        float *zi = P->z + i * n_out;
        double wi = P->row_weight ? P->row_weight[i] : 1.0;
        int yi = P->y[i];
        if (P->binary) {
            double t = zi[0] + b[0];
            loss += wi * (fmax(t, 0.0) + log1p(exp(-fabs(t))) - (yi ? t : 0.0));  // softplus(t) - y t
            double p = t >= 0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
            double gi = wi * (p - yi) * inv_n;
            zi[0] = (float)gi;
            if (gb) gb[0] += gi;
        } else {
            double zmax, log_z = pl_logsumexp(zi, b, n_out, &zmax, NULL), lse = zmax + log_z;
            loss += wi * (lse - (zi[yi] + b[yi]));
            for (int c = 0; c < n_out; c++) {
                double gi = wi * (exp(zi[c] + b[c] - lse) - (c == yi)) * inv_n;
                zi[c] = (float)gi;
                if (gb) gb[c] += gi;
            }
        }
    }
    loss *= inv_n;
    double reg = 0;
    for (size_t j = 0; j < n_w; j++) reg += params[j] * params[j];
    loss += 0.5 * P->lambda * reg;
    if (grad) {
        // gw[n_out × d] = Gᵀ · x
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, d, (int)n, 1.0f, P->z, n_out, P->x, d, 0.0f,
                    P->gw, d);
        for (size_t j = 0; j < n_w; j++) grad[j] = P->gw[j] + P->lambda * params[j];
    }
    return loss;
}

static double logreg_eval(double *grad, const double *params, void *ctx) {
    logreg_problem *P = ctx;
    return pl_logreg_fused_eval(P->fused, grad, params, P->x, P->y, P->row_weight, P->binary, P->lambda);
}

// sgemm: 1 allocates the two-sgemm buffers, 0 the fused workspace.
static int problem_init(logreg_problem *P, const float *x, const int32_t *y, const float *row_weight, int64_t n,
                        int d, int k, int binary, double lambda, int sgemm) {
    *P = (logreg_problem){.x = x, .y = y, .row_weight = row_weight, .n = n, .d = d, .n_out = binary ? 1 : k,
                          .binary = binary, .lambda = lambda};
    if (!sgemm) return pl_logreg_fused_new(&P->fused, n, d, P->n_out, 0);
    P->w = malloc(sizeof(float) * (size_t)P->n_out * d);
    P->gw = malloc(sizeof(float) * (size_t)P->n_out * d);
    P->z = malloc(sizeof(float) * (size_t)n * P->n_out);
    if (!P->w || !P->gw || !P->z) {
        free(P->w), free(P->gw), free(P->z);
        return pl_fail("probe: out of memory for %lld × %d logits", (long long)n, P->n_out);
    }
    return 0;
}

static void problem_free(logreg_problem *P) {
    free(P->w), free(P->gw), free(P->z);
    pl_logreg_fused_free(P->fused);
}

double pl_logreg_loss(double *grad, const double *params, const float *x, const int32_t *y, const float *row_weight,
                      int64_t n, int d, int k, int binary, double lambda) {
    logreg_problem P;
    if (problem_init(&P, x, y, row_weight, n, d, k, binary, lambda, 0)) return NAN;
    double loss = logreg_eval(grad, params, &P);
    problem_free(&P);
    return loss;
}

double pl_logreg_loss_sgemm(double *grad, const double *params, const float *x, const int32_t *y,
                            const float *row_weight, int64_t n, int d, int k, int binary, double lambda) {
    logreg_problem P;
    if (problem_init(&P, x, y, row_weight, n, d, k, binary, lambda, 1)) return NAN;
    double loss = logreg_eval_sgemm(grad, params, &P);
    problem_free(&P);
    return loss;
}

int pl_logreg_fit_prepared(double *params, pl_lbfgs_result *result, const float *x, const int32_t *y,
                           const float *row_weight, int64_t n, int d, int k, int binary, double lambda,
                           const pl_lbfgs_options *opts) {
    logreg_problem P;
    if (problem_init(&P, x, y, row_weight, n, d, k, binary, lambda, 0)) return -1;
    int64_t n_params = (int64_t)P.n_out * (d + 1);
    int rc = pl_lbfgs_minimize(params, result, logreg_eval, &P, n_params, opts);
    problem_free(&P);
    return rc;
}

// ---- probes ----

static pl_probe *probe_alloc(pl_probe_kind kind, int d, int n_classes, int n_outputs) {
    pl_probe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = kind, p->d = d, p->n_classes = n_classes, p->n_outputs = n_outputs;
    p->classes = malloc(sizeof(int32_t) * (size_t)(n_classes > 0 ? n_classes : 1));
    p->weights = calloc((size_t)n_outputs * d, sizeof(float));
    p->bias = calloc((size_t)n_outputs, sizeof(float));
    p->mean = calloc((size_t)d, sizeof(float));
    p->std = malloc(sizeof(float) * (size_t)d);
    if (!p->classes || !p->weights || !p->bias || !p->mean || !p->std) {
        pl_probe_free(p);
        return NULL;
    }
    for (int j = 0; j < d; j++) p->std[j] = 1;
    p->metrics = pl_probe_metrics_empty();
    return p;
}

void pl_probe_free(pl_probe *probe) {
    if (!probe) return;
    free(probe->classes), free(probe->weights), free(probe->bias), free(probe->mean), free(probe->std);
    free(probe);
}

static int check_inputs(const char *what, const float *x, int64_t n, int d) {
    if (n < 2) return pl_fail("%s: need at least 2 rows, got %lld", what, (long long)n);
    if (d < 1) return pl_fail("%s: need at least 1 feature, got %d", what, d);
    int64_t bad = pl_first_non_finite(x, n, d);
    if (bad >= 0)
        return pl_fail("%s: X has a non-finite value (%g) at row %lld, column %lld", what, (double)x[bad],
                       (long long)(bad / d), (long long)(bad % d));
    return 0;
}

int pl_probe_fit(pl_probe **probe, const float *x, const int32_t *y, int64_t n, int d, const pl_probe_options *opts) {
    pl_probe_options o = opts ? *opts : pl_probe_defaults();
    *probe = NULL;
    if (check_inputs("probe fit", x, n, d)) return -1;
    if (!(o.lambda >= 0) || !isfinite(o.lambda)) return pl_fail("probe fit: lambda must be >= 0, got %g", o.lambda);
    if (o.kind == PL_PROBE_RIDGE) return pl_fail("probe fit: ridge probes take float targets: use pl_ridge_fit");
    double t0 = pl_now_sec();
    int32_t *classes = NULL, *y_idx = NULL;
    float *xs = NULL, *row_weight = NULL;
    double *params = NULL;
    pl_probe *p = NULL;
    int k = pl_distinct_labels(&classes, y, n);
    if (k < 0) goto fail;
    if (k < 2) {
        pl_fail("probe fit: the labels have a single class (%d); a probe needs at least two", classes[0]);
        goto fail;
    }
    pl_probe_kind kind = o.kind == PL_PROBE_AUTO ? (k == 2 ? PL_PROBE_BINARY : PL_PROBE_MULTINOMIAL) : o.kind;
    if (kind == PL_PROBE_BINARY && k != 2) {
        pl_fail("probe fit: a binary probe needs exactly 2 classes, the labels have %d", k);
        goto fail;
    }
    int binary = kind == PL_PROBE_BINARY, n_out = binary ? 1 : k;
    p = probe_alloc(kind, d, k, n_out);
    y_idx = malloc(sizeof(int32_t) * (size_t)n);
    xs = pl_probe_alloc_features((size_t)n * d);
    params = calloc((size_t)n_out * (d + 1), sizeof(double));
    if (o.balanced) row_weight = malloc(sizeof(float) * (size_t)n);
    if (!p || !y_idx || !xs || !params || (o.balanced && !row_weight)) {
        pl_fail("probe fit: out of memory for %lld × %d features", (long long)n, d);
        goto fail;
    }
    memcpy(p->classes, classes, sizeof(int32_t) * (size_t)k);
    for (int64_t i = 0; i < n; i++) y_idx[i] = (int32_t)class_of(classes, k, y[i]);
    if (o.standardize) pl_standardize_fit(p->mean, p->std, x, NULL, n, d);
    pl_standardize_apply(xs, x, NULL, n, d, p->mean, p->std);
    if (row_weight) pl_balanced_weights(row_weight, y_idx, n, k);
    pl_lbfgs_result res;
    if (pl_logreg_fit_prepared(params, &res, xs, y_idx, row_weight, n, d, k, binary, o.lambda, &o.lbfgs)) goto fail;
    for (size_t j = 0; j < (size_t)n_out * d; j++) p->weights[j] = (float)params[j];
    for (int c = 0; c < n_out; c++) p->bias[c] = (float)params[(size_t)n_out * d + c];
    p->lambda = o.lambda, p->balanced = o.balanced, p->n_train = n;
    p->iterations = res.iterations, p->evaluations = res.evaluations, p->converged = res.converged;
    p->stop = res.stop, p->train_loss = res.f;
    p->fit_seconds = pl_now_sec() - t0;
    free(classes), free(y_idx), free(xs), free(row_weight), free(params);
    *probe = p;
    return 0;
fail:
    free(classes), free(y_idx), free(xs), free(row_weight), free(params);
    pl_probe_free(p);
    return -1;
}

// logits[n × n_out] of a probe for raw features x[n × d]; rows standardized in chunks.
static int probe_logits(float *logits, const pl_probe *p, const float *x, int64_t n) {
    int d = p->d, n_out = p->n_outputs;
    int64_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    float *xs = malloc(sizeof(float) * (size_t)(chunk > 0 ? chunk : 1) * d);
    if (!xs) return pl_fail("probe predict: out of memory");
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t m = n - r0 < chunk ? n - r0 : chunk;
        pl_standardize_apply(xs, x + r0 * d, NULL, m, d, p->mean, p->std);
        float *out = logits + r0 * n_out;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, n_out, d, 1.0f, xs, d, p->weights, d, 0.0f, out,
                    n_out);
        for (int64_t i = 0; i < m; i++)
            for (int c = 0; c < n_out; c++) out[i * n_out + c] += p->bias[c];
    }
    free(xs);
    return 0;
}

int pl_probe_predict_proba(float *probs, const pl_probe *probe, const float *x, int64_t n) {
    if (probe->kind == PL_PROBE_RIDGE) return pl_fail("probe predict: a ridge probe has no class probabilities");
    int k = probe->n_classes;
    if (probe->kind == PL_PROBE_BINARY) {
        // logits land in the second column, then become (1 - p, p)
        float *z = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!z) return pl_fail("probe predict: out of memory");
        if (probe_logits(z, probe, x, n)) {
            free(z);
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            double t = z[i];
            double p1 = t >= 0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
            probs[2 * i] = (float)(1.0 - p1), probs[2 * i + 1] = (float)p1;
        }
        free(z);
        return 0;
    }
    if (probe_logits(probs, probe, x, n)) return -1;
    for (int64_t i = 0; i < n; i++) {
        float *row = probs + i * k;
        double zmax, log_z = pl_logsumexp(row, NULL, k, &zmax, NULL);
        for (int c = 0; c < k; c++) row[c] = (float)exp(row[c] - zmax - log_z);
    }
    return 0;
}

int pl_probe_predict(int32_t *labels, const pl_probe *probe, const float *x, int64_t n) {
    int k = probe->n_classes;
    float *probs = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)(k > 0 ? k : 1));
    if (!probs) return pl_fail("probe predict: out of memory");
    if (pl_probe_predict_proba(probs, probe, x, n)) {
        free(probs);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < k; c++)
            if (probs[i * k + c] > probs[i * k + best]) best = c;
        labels[i] = probe->classes[best];
    }
    free(probs);
    return 0;
}

int64_t pl_probe_class_index(int32_t *idx, const pl_probe *probe, const int32_t *y, int64_t n) {
    int64_t unseen = 0;
    for (int64_t i = 0; i < n; i++) {
        idx[i] = (int32_t)class_of(probe->classes, probe->n_classes, y[i]);
        unseen += idx[i] < 0;
    }
    return unseen;
}

// ---- ridge ----

#define GRAM_BLOCK 256  // rows per double-precision syrk, so the Gram matrix accumulates in double

int pl_ridge_normal_equations(double *A, double *b, double *y_mean, const float *x, const float *y, int64_t n, int d) {
    double *block = malloc(sizeof(double) * GRAM_BLOCK * (size_t)d);
    double *r = malloc(sizeof(double) * GRAM_BLOCK);
    if (!block || !r) {
        free(block), free(r);
        return pl_fail("ridge: out of memory for a %d × %d Gram matrix", d, d);
    }
    double ym = 0;
    for (int64_t i = 0; i < n; i++) ym += y[i];
    ym /= (double)n;
    memset(A, 0, sizeof(double) * (size_t)d * d);
    memset(b, 0, sizeof(double) * (size_t)d);
    for (int64_t r0 = 0; r0 < n; r0 += GRAM_BLOCK) {
        int m = (int)(n - r0 < GRAM_BLOCK ? n - r0 : GRAM_BLOCK);
        for (int64_t i = 0; i < (int64_t)m * d; i++) block[i] = x[r0 * d + i];
        for (int i = 0; i < m; i++) r[i] = y[r0 + i] - ym;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, m, 1.0, block, d, 1.0, A, d);
        cblas_dgemv(CblasRowMajor, CblasTrans, m, d, 1.0, block, d, r, 1, 1.0, b, 1);
    }
    for (int i = 0; i < d; i++) {
        for (int j = i; j < d; j++) A[(size_t)i * d + j] /= (double)n, A[(size_t)j * d + i] = A[(size_t)i * d + j];
        b[i] /= (double)n;
    }
    *y_mean = ym;
    free(block), free(r);
    return 0;
}

int pl_ridge_solve(double *w, const double *A, const double *b, int d, double lambda) {
    double *L = malloc(sizeof(double) * (size_t)d * d);
    if (!L) return pl_fail("ridge: out of memory for a %d × %d factor", d, d);
    memcpy(L, A, sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d; i++) L[(size_t)i * d + i] += lambda;
    memcpy(w, b, sizeof(double) * (size_t)d);
    int info = 0, one = 1;
    dpotrf_("L", &d, L, &d, &info);
    if (info == 0) dpotrs_("L", &d, &one, L, &d, w, &d, &info);
    free(L);
    if (info != 0)
        return pl_fail("ridge: X̂ᵀX̂/n + λI is not positive definite (lambda %g, pivot %d); increase lambda", lambda,
                       info);
    return 0;
}

int pl_ridge_fit(pl_probe **probe, const float *x, const float *y, int64_t n, int d, const pl_probe_options *opts) {
    pl_probe_options o = opts ? *opts : pl_probe_defaults();
    *probe = NULL;
    if (check_inputs("ridge fit", x, n, d)) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return pl_fail("ridge fit: target y has a non-finite value at row %lld", (long long)i);
    if (!(o.lambda >= 0) || !isfinite(o.lambda)) return pl_fail("ridge fit: lambda must be >= 0, got %g", o.lambda);
    double t0 = pl_now_sec();
    pl_probe *p = probe_alloc(PL_PROBE_RIDGE, d, 0, 1);
    float *xs = malloc(sizeof(float) * (size_t)n * d);
    double *A = malloc(sizeof(double) * (size_t)d * d), *b = malloc(sizeof(double) * (size_t)d);
    double *w = malloc(sizeof(double) * (size_t)d);
    int rc = -1;
    if (!p || !xs || !A || !b || !w) {
        pl_fail("ridge fit: out of memory for %lld × %d features", (long long)n, d);
        goto done;
    }
    // Ridge always centers the columns (the intercept is not penalized, so it is the target mean
    // once the training columns have mean 0); standardize = 0 only skips the scaling.
    pl_standardize_fit(p->mean, p->std, x, NULL, n, d);
    if (!o.standardize)
        for (int j = 0; j < d; j++) p->std[j] = 1;
    pl_standardize_apply(xs, x, NULL, n, d, p->mean, p->std);
    double bias;
    if (pl_ridge_normal_equations(A, b, &bias, xs, y, n, d) || pl_ridge_solve(w, A, b, d, o.lambda)) goto done;
    for (int j = 0; j < d; j++) p->weights[j] = (float)w[j];
    p->bias[0] = (float)bias;
    p->lambda = o.lambda, p->n_train = n, p->converged = 1;
    double sse = 0;
    for (int64_t i = 0; i < n; i++) {
        double pred = bias;
        for (int j = 0; j < d; j++) pred += w[j] * xs[i * d + j];
        sse += (y[i] - pred) * (y[i] - pred);
    }
    double reg = 0;
    for (int j = 0; j < d; j++) reg += w[j] * w[j];
    p->train_loss = 0.5 * sse / (double)n + 0.5 * o.lambda * reg;
    p->fit_seconds = pl_now_sec() - t0;
    *probe = p;
    p = NULL;
    rc = 0;
done:
    pl_probe_free(p);
    free(xs), free(A), free(b), free(w);
    return rc;
}

int pl_ridge_predict(float *out, const pl_probe *probe, const float *x, int64_t n) {
    if (probe->kind != PL_PROBE_RIDGE) return pl_fail("ridge predict: this probe is a classifier");
    return probe_logits(out, probe, x, n);
}
