// Gradient check of every layer in kernels/cpu/layers.h. For each layer the test has its own
// double-precision reference forward pass (written independently of layers.c), reduces the output
// to a scalar L = Σ out · r with random r, and compares the float analytic backward pass (fed
// dout = r) with central finite differences of L computed in double. It prints the worst relative
// error per layer, max|analytic - numeric| / max|numeric|, and asserts it is below 1e-4 (float
// arithmetic in the analytic pass; the numeric side is exact to ~1e-9). The forward outputs are
// also compared with the double reference.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/cpu/layers.h"
#include "kernels/kernels.h"

#define TOL 1e-4

static uint64_t rng_state = 42;
static double urand(void) {  // uniform in [-1, 1)
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}
static double *drand_array(size_t n) {
    double *a = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) a[i] = urand();
    return a;
}
static float *to_float(const double *a, size_t n) {
    float *f = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
    return f;
}
static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

// The reference loss of one layer: reads its inputs through ctx (double arrays that the checker perturbs).
typedef double (*loss_fn)(void *ctx);

// Worst relative error of an analytic gradient against central differences of loss over param[n].
static double fd_error(loss_fn loss, void *ctx, double *param, const float *analytic, size_t n) {
    const double h = 1e-6;
    double worst_abs = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = param[i];
        param[i] = keep + h;
        double lp = loss(ctx);
        param[i] = keep - h;
        double lm = loss(ctx);
        param[i] = keep;
        double numeric = (lp - lm) / (2 * h);
        double diff = fabs(numeric - analytic[i]);
        if (diff > worst_abs) worst_abs = diff;
        if (fabs(numeric) > scale) scale = fabs(numeric);
    }
    return worst_abs / (scale > 1e-12 ? scale : 1e-12);
}

static double forward_error(const float *out, const double *ref, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(out[i] - ref[i]) > worst) worst = fabs(out[i] - ref[i]);
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return worst / (scale > 1e-12 ? scale : 1e-12);
}

static void report(const char *layer, double fwd, double worst) {
    printf("%-14s forward rel err %.2e   worst gradient rel err %.2e\n", layer, fwd, worst);
    assert_true(fwd < 1e-5);
    assert_true(worst < TOL);
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// ------------------------------------------------------------------ embedding
typedef struct { int N, C; const int32_t *ids; double *wte, *r, *out; } emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    for (int i = 0; i < c->N; i++)
        for (int j = 0; j < c->C; j++) c->out[i * c->C + j] = c->wte[c->ids[i] * c->C + j];
    return dot(c->out, c->r, (size_t)c->N * c->C);
}
static void test_embedding(void **state) {
    int N = 6, C = 4, V = 5;
    int32_t ids[] = {1, 3, 1, 0, 4, 1};  // repeats: gradients must accumulate
    emb_ctx c = {N, C, ids, drand_array(V * C), drand_array(N * C), calloc(N * C, sizeof(double))};
    float *wte = to_float(c.wte, V * C), *r = to_float(c.r, N * C), *out = zeros(N * C), *dwte = zeros(V * C);
    pl_embedding_forward(out, ids, wte, N, C);
    pl_embedding_backward(dwte, r, ids, N, C);
    emb_loss(&c);
    double fwd = forward_error(out, c.out, N * C);
    report("embedding", fwd, fd_error(emb_loss, &c, c.wte, dwte, V * C));
    free(c.wte), free(c.r), free(c.out), free(wte), free(r), free(out), free(dwte);
}

// ------------------------------------------------------------------ RMSNorm
typedef struct { int N, C; double eps, *x, *w, *r, *out; } rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    for (int i = 0; i < c->N; i++) {
        double ms = 0;
        for (int j = 0; j < c->C; j++) ms += c->x[i * c->C + j] * c->x[i * c->C + j];
        double r = 1.0 / sqrt(ms / c->C + c->eps);
        for (int j = 0; j < c->C; j++) c->out[i * c->C + j] = c->x[i * c->C + j] * r * c->w[j];
    }
    return dot(c->out, c->r, (size_t)c->N * c->C);
}
static void test_rmsnorm(void **state) {
    int N = 3, C = 8;
    rms_ctx c = {N, C, 1e-5, drand_array(N * C), drand_array(C), drand_array(N * C), calloc(N * C, sizeof(double))};
    float *x = to_float(c.x, N * C), *w = to_float(c.w, C), *r = to_float(c.r, N * C);
    float *out = zeros(N * C), *rstd = zeros(N), *dx = zeros(N * C), *dw = zeros(C);
    pl_rmsnorm_forward(out, rstd, x, w, N, C, 1e-5f);
    pl_rmsnorm_backward(dx, dw, r, x, w, rstd, N, C);
    rms_loss(&c);
    double fwd = forward_error(out, c.out, N * C);
    double e1 = fd_error(rms_loss, &c, c.x, dx, N * C), e2 = fd_error(rms_loss, &c, c.w, dw, C);
    report("rmsnorm", fwd, fmax(e1, e2));
    free(c.x), free(c.w), free(c.r), free(c.out), free(x), free(w), free(r), free(out), free(rstd), free(dx), free(dw);
}

// ------------------------------------------------------------------ linear (dense with bias)
typedef struct { int N, C, OC; double *x, *w, *b, *r, *out; } lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = p;
    for (int i = 0; i < c->N; i++)
        for (int o = 0; o < c->OC; o++) {
            double s = c->b ? c->b[o] : 0;
            for (int j = 0; j < c->C; j++) s += c->x[i * c->C + j] * c->w[o * c->C + j];
            c->out[i * c->OC + o] = s;
        }
    return dot(c->out, c->r, (size_t)c->N * c->OC);
}
static void test_linear(void **state) {
    int N = 5, C = 7, OC = 3;
    lin_ctx c = {N, C, OC, drand_array(N * C), drand_array(OC * C), drand_array(OC), drand_array(N * OC),
                 calloc(N * OC, sizeof(double))};
    float *x = to_float(c.x, N * C), *w = to_float(c.w, OC * C), *b = to_float(c.b, OC), *r = to_float(c.r, N * OC);
    float *out = zeros(N * OC), *dx = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
    pl_linear_forward(out, x, w, b, N, C, OC);
    pl_linear_backward(dx, dw, db, r, x, w, N, C, OC);
    lin_loss(&c);
    double fwd = forward_error(out, c.out, N * OC);
    double e = fd_error(lin_loss, &c, c.x, dx, N * C);
    e = fmax(e, fd_error(lin_loss, &c, c.w, dw, OC * C));
    e = fmax(e, fd_error(lin_loss, &c, c.b, db, OC));
    report("linear+bias", fwd, e);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.out);
    free(x), free(w), free(b), free(r), free(out), free(dx), free(dw), free(db);
}

// ------------------------------------------------------------------ RoPE
typedef struct { int N, H, hd; const int32_t *pos; double theta, *x, *r, *out; } rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    for (int t = 0; t < c->N; t++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->hd / 2; i++) {
                double ang = c->pos[t] * pow(c->theta, -2.0 * i / c->hd);
                int base = (t * c->H + h) * c->hd;
                double x0 = c->x[base + 2 * i], x1 = c->x[base + 2 * i + 1];
                c->out[base + 2 * i] = x0 * cos(ang) - x1 * sin(ang);
                c->out[base + 2 * i + 1] = x0 * sin(ang) + x1 * cos(ang);
            }
    return dot(c->out, c->r, (size_t)c->N * c->H * c->hd);
}
static void test_rope(void **state) {
    int N = 6, H = 2, hd = 8, n = N * H * hd, max_pos = 16;
    int32_t pos[] = {0, 1, 2, 0, 1, 13};  // two packed sequences and a far position
    rope_ctx c = {N, H, hd, pos, 10000.0, drand_array(n), drand_array(n), calloc(n, sizeof(double))};
    float *x = to_float(c.x, n), *r = to_float(c.r, n), *out = zeros(n), *dx = zeros(n);
    float *ct = zeros(max_pos * hd / 2), *st = zeros(max_pos * hd / 2);
    pl_rope_tables(ct, st, max_pos, hd, 10000.0f);
    pl_rope_forward(out, x, pos, ct, st, N, H, hd);
    pl_rope_backward(dx, r, pos, ct, st, N, H, hd);
    rope_loss(&c);
    report("rope", forward_error(out, c.out, n), fd_error(rope_loss, &c, c.x, dx, n));
    free(c.x), free(c.r), free(c.out), free(x), free(r), free(out), free(dx), free(ct), free(st);
}

// ------------------------------------------------------------------ causal GQA attention
typedef struct { int n_seq, H, Hkv, hd; const int *seq_start; double *q, *k, *v, *r, *out; } att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    int ldq = c->H * c->hd, ldk = c->Hkv * c->hd;
    double sc[64];
    for (int s = 0; s < c->n_seq; s++)
        for (int h = 0; h < c->H; h++) {
            int g = h / (c->H / c->Hkv);
            for (int i = c->seq_start[s]; i < c->seq_start[s + 1]; i++) {
                double max = -1e300, sum = 0;
                for (int j = c->seq_start[s]; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < c->hd; e++) d += c->q[i * ldq + h * c->hd + e] * c->k[j * ldk + g * c->hd + e];
                    sc[j] = d / sqrt(c->hd);
                    if (sc[j] > max) max = sc[j];
                }
                for (int j = c->seq_start[s]; j <= i; j++) sum += (sc[j] = exp(sc[j] - max));
                for (int e = 0; e < c->hd; e++) {
                    double o = 0;
                    for (int j = c->seq_start[s]; j <= i; j++) o += sc[j] / sum * c->v[j * ldk + g * c->hd + e];
                    c->out[i * ldq + h * c->hd + e] = o;
                }
            }
        }
    return dot(c->out, c->r, (size_t)c->seq_start[c->n_seq] * ldq);
}
static void test_attention(void **state) {
    int seq_start[] = {0, 3, 7, 12};  // three packed sequences of lengths 3, 4, 5
    int n_seq = 3, N = 12, H = 4, Hkv = 2, hd = 4, nq = N * H * hd, nk = N * Hkv * hd;
    att_ctx c = {n_seq, H, Hkv, hd, seq_start, drand_array(nq), drand_array(nk), drand_array(nk), drand_array(nq),
                 calloc(nq, sizeof(double))};
    float *q = to_float(c.q, nq), *k = to_float(c.k, nk), *v = to_float(c.v, nk), *r = to_float(c.r, nq);
    float *out = zeros(nq), *att = zeros(pl_attention_att_size(seq_start, n_seq, H));
    float *scratch = zeros(pl_attention_scratch_size(seq_start, n_seq));
    float *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk);
    pl_attention_forward(out, att, q, k, v, seq_start, n_seq, H, Hkv, hd);
    pl_attention_backward(dq, dk, dv, scratch, r, q, k, v, att, seq_start, n_seq, H, Hkv, hd);
    att_loss(&c);
    double fwd = forward_error(out, c.out, nq);
    double e = fd_error(att_loss, &c, c.q, dq, nq);
    e = fmax(e, fd_error(att_loss, &c, c.k, dk, nk));
    e = fmax(e, fd_error(att_loss, &c, c.v, dv, nk));
    report("attention-gqa", fwd, e);
    free(c.q), free(c.k), free(c.v), free(c.r), free(c.out);
    free(q), free(k), free(v), free(r), free(out), free(att), free(scratch), free(dq), free(dk), free(dv);
}

// ------------------------------------------------------------------ SwiGLU
typedef struct { int n; double *g, *u, *r, *out; } swi_ctx;
static double swi_loss(void *p) {
    swi_ctx *c = p;
    for (int i = 0; i < c->n; i++) c->out[i] = c->g[i] / (1 + exp(-c->g[i])) * c->u[i];
    return dot(c->out, c->r, c->n);
}
static void test_swiglu(void **state) {
    int n = 20;
    swi_ctx c = {n, drand_array(n), drand_array(n), drand_array(n), calloc(n, sizeof(double))};
    for (int i = 0; i < n; i++) c.g[i] *= 4;  // reach both tails of the sigmoid
    float *g = to_float(c.g, n), *u = to_float(c.u, n), *r = to_float(c.r, n);
    float *out = zeros(n), *dg = zeros(n), *du = zeros(n);
    pl_swiglu_forward(out, g, u, n);
    pl_swiglu_backward(dg, du, r, g, u, n);
    swi_loss(&c);
    double e = fmax(fd_error(swi_loss, &c, c.g, dg, n), fd_error(swi_loss, &c, c.u, du, n));
    report("swiglu", forward_error(out, c.out, n), e);
    free(c.g), free(c.u), free(c.r), free(c.out), free(g), free(u), free(r), free(out), free(dg), free(du);
}

// ------------------------------------------------------------------ residual
typedef struct { int n; double *a, *b, *r, *out; } res_ctx;
static double res_loss(void *p) {
    res_ctx *c = p;
    for (int i = 0; i < c->n; i++) c->out[i] = c->a[i] + c->b[i];
    return dot(c->out, c->r, c->n);
}
static void test_residual(void **state) {
    int n = 9;
    res_ctx c = {n, drand_array(n), drand_array(n), drand_array(n), calloc(n, sizeof(double))};
    float *a = to_float(c.a, n), *b = to_float(c.b, n), *r = to_float(c.r, n);
    float *out = zeros(n), *da = zeros(n), *db = zeros(n);
    pl_residual_forward(out, a, b, n);
    pl_residual_backward(da, db, r, n);
    res_loss(&c);
    double e = fmax(fd_error(res_loss, &c, c.a, da, n), fd_error(res_loss, &c, c.b, db, n));
    report("residual", forward_error(out, c.out, n), e);
    free(c.a), free(c.b), free(c.r), free(c.out), free(a), free(b), free(r), free(out), free(da), free(db);
}

// ------------------------------------------------------------------ masked cross-entropy
typedef struct { int N, V; const int32_t *tgt; const double *w; double *z, *losses; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    double total = 0;
    for (int i = 0; i < c->N; i++) {
        double max = -1e300, sum = 0;
        for (int j = 0; j < c->V; j++) max = fmax(max, c->z[i * c->V + j]);
        for (int j = 0; j < c->V; j++) sum += exp(c->z[i * c->V + j] - max);
        c->losses[i] = c->w[i] == 0 ? 0 : log(sum) + max - c->z[i * c->V + c->tgt[i]];
        total += c->w[i] * c->losses[i];
    }
    return total;
}
static void test_crossentropy(void **state) {
    int N = 5, V = 7;
    int32_t tgt[] = {3, 0, 6, 2, 2};
    double w[] = {0.25, 0, 0.25, 0.25, 0.25};  // position 1 masked out
    float wf[] = {0.25f, 0, 0.25f, 0.25f, 0.25f};
    ce_ctx c = {N, V, tgt, w, drand_array(N * V), calloc(N, sizeof(double))};
    for (int i = 0; i < N * V; i++) c.z[i] *= 5;
    float *z = to_float(c.z, N * V), *probs = zeros(N * V), *losses = zeros(N), *dz = zeros(N * V);
    double loss = pl_crossentropy_forward(losses, probs, z, tgt, wf, N, V);
    pl_crossentropy_backward(dz, probs, tgt, wf, N, V);
    double ref = ce_loss(&c);
    double fwd = forward_error(losses, c.losses, N);
    fwd = fmax(fwd, fabs(loss - ref) / fabs(ref));
    report("crossentropy", fwd, fd_error(ce_loss, &c, c.z, dz, N * V));
    for (int j = 0; j < V; j++) assert_true(dz[1 * V + j] == 0.0f);  // the masked position gets no gradient
    free(c.z), free(c.losses), free(z), free(probs), free(losses), free(dz);
}

// ------------------------------------------------------------------ pooling
typedef struct { int n_seq, C; const int *seq_start; double *x, *q, *r, *out; } pool_ctx;
static double meanpool_loss(void *p) {
    pool_ctx *c = p;
    for (int s = 0; s < c->n_seq; s++)
        for (int j = 0; j < c->C; j++) {
            double sum = 0;
            for (int t = c->seq_start[s]; t < c->seq_start[s + 1]; t++) sum += c->x[t * c->C + j];
            c->out[s * c->C + j] = sum / (c->seq_start[s + 1] - c->seq_start[s]);
        }
    return dot(c->out, c->r, (size_t)c->n_seq * c->C);
}
static double attnpool_loss(void *p) {
    pool_ctx *c = p;
    double a[64];
    for (int s = 0; s < c->n_seq; s++) {
        double max = -1e300, sum = 0;
        for (int t = c->seq_start[s]; t < c->seq_start[s + 1]; t++) {
            a[t] = dot(c->x + t * c->C, c->q, c->C) / sqrt(c->C);
            max = fmax(max, a[t]);
        }
        for (int t = c->seq_start[s]; t < c->seq_start[s + 1]; t++) sum += (a[t] = exp(a[t] - max));
        for (int j = 0; j < c->C; j++) {
            double o = 0;
            for (int t = c->seq_start[s]; t < c->seq_start[s + 1]; t++) o += a[t] / sum * c->x[t * c->C + j];
            c->out[s * c->C + j] = o;
        }
    }
    return dot(c->out, c->r, (size_t)c->n_seq * c->C);
}
static void test_pooling(void **state) {
    int seq_start[] = {0, 2, 7}, n_seq = 2, N = 7, C = 5;
    pool_ctx c = {n_seq, C, seq_start, drand_array(N * C), drand_array(C), drand_array(n_seq * C),
                  calloc(n_seq * C, sizeof(double))};
    for (int j = 0; j < C; j++) c.q[j] *= 3;  // peaked pooling weights
    float *x = to_float(c.x, N * C), *q = to_float(c.q, C), *r = to_float(c.r, n_seq * C);
    float *out = zeros(n_seq * C), *dx = zeros(N * C), *a = zeros(N), *dq = zeros(C);
    pl_meanpool_forward(out, x, seq_start, n_seq, C);
    pl_meanpool_backward(dx, r, seq_start, n_seq, C);
    meanpool_loss(&c);
    report("meanpool", forward_error(out, c.out, n_seq * C), fd_error(meanpool_loss, &c, c.x, dx, N * C));
    memset(dx, 0, sizeof(float) * N * C);
    pl_attnpool_forward(out, a, x, q, seq_start, n_seq, C);
    pl_attnpool_backward(dx, dq, r, x, q, a, seq_start, n_seq, C);
    attnpool_loss(&c);
    double fwd = forward_error(out, c.out, n_seq * C);
    double e = fmax(fd_error(attnpool_loss, &c, c.x, dx, N * C), fd_error(attnpool_loss, &c, c.q, dq, C));
    report("attnpool", fwd, e);
    free(c.x), free(c.q), free(c.r), free(c.out), free(x), free(q), free(r), free(out), free(dx), free(a), free(dq);
}

// ------------------------------------------------------------------ sigmoid BCE
typedef struct { int N; const double *y, *w; double *z, *losses; } bce_ctx;
static double bce_loss(void *p) {
    bce_ctx *c = p;
    double total = 0;
    for (int i = 0; i < c->N; i++) {
        double s = 1 / (1 + exp(-c->z[i]));
        c->losses[i] = -c->w[i] * (c->y[i] * log(s) + (1 - c->y[i]) * log(1 - s));
        total += c->losses[i];
    }
    return total;
}
static void test_bce(void **state) {
    int N = 6;
    double y[] = {1, 0, 1, 0, 0.3, 1}, w[] = {1, 1, 0.5, 2, 1, 0};
    float yf[6], wf[6];
    for (int i = 0; i < N; i++) yf[i] = (float)y[i], wf[i] = (float)w[i];
    bce_ctx c = {N, y, w, drand_array(N), calloc(N, sizeof(double))};
    for (int i = 0; i < N; i++) c.z[i] *= 6;
    float *z = to_float(c.z, N), *losses = zeros(N), *dz = zeros(N);
    double total = pl_bce_forward(losses, z, yf, wf, N);
    pl_bce_backward(dz, z, yf, wf, N);
    double ref = bce_loss(&c);
    double fwd = fmax(forward_error(losses, c.losses, N), fabs(total - ref) / fabs(ref));
    report("bce", fwd, fd_error(bce_loss, &c, c.z, dz, N));
    free(c.z), free(c.losses), free(z), free(losses), free(dz);
}

// The SIMD level follows the CPU (cpuid through GCC's builtins, the independent check here), in any
// build: a portable build on an AVX-512 machine runs the AVX-512 kernels. Lower levels can be forced
// and the highest is capped at what the CPU has.
static void test_simd_dispatch(void **state) {
    pl_simd_level want = PL_SIMD_PORTABLE;
#ifdef PL_SIMD_X86
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) want = PL_SIMD_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        want = PL_SIMD_AVX2;
#endif
    const char *forced = getenv("PL_SIMD");
    pl_simd_level got = pl_simd_level_get();
    printf("SIMD path: %s (level %s, CPU has %s, PL_SIMD=%s)\n", pl_simd_path(), pl_simd_level_name(got),
           pl_simd_level_name(want), forced ? forced : "(unset)");
    if (!forced) assert_int_equal(got, want);
    const char *path = pl_simd_path();
#ifdef PL_NATIVE_BUILD
    assert_non_null(strstr(path, "native (-march=native)"));
#else
    assert_null(strstr(path, "native"));
#endif
    assert_non_null(strstr(path, got == PL_SIMD_PORTABLE ? "portable" : pl_simd_level_name(got)));
    assert_int_equal(pl_simd_level_set(PL_SIMD_PORTABLE), PL_SIMD_PORTABLE);
    assert_int_equal(pl_simd_level_get(), PL_SIMD_PORTABLE);
    assert_non_null(strstr(pl_simd_path(), "portable"));
    assert_int_equal(pl_simd_level_set(PL_SIMD_AVX512), want);  // capped
    pl_simd_level_set(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding), cmocka_unit_test(test_rmsnorm),      cmocka_unit_test(test_linear),
        cmocka_unit_test(test_rope),      cmocka_unit_test(test_attention),    cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_residual),  cmocka_unit_test(test_crossentropy), cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_bce),       cmocka_unit_test(test_simd_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
