// The CPU backend: OpenBLAS for matrix products, plain C for the rest. Ops the trainer shares
// (linear, RMSNorm, RoPE, SwiGLU, residual add, embedding) are the layer library's forward
// functions, so each exists once (kernels/cpu/layers.c).
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/layers.h"
#include "kernels/kernels.h"

static void cpu_rmsnorm(float *out, const float *x, const float *weight, int n, int d, float eps) {
    pl_rmsnorm_forward(out, NULL, x, weight, n, d, eps);
}

static void cpu_layernorm(float *out, const float *x, const float *weight, const float *bias, int n, int d, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double mean = 0, var = 0;
        for (int j = 0; j < d; j++) mean += xi[j];
        mean /= d;
        for (int j = 0; j < d; j++) var += (xi[j] - mean) * (xi[j] - mean);
        var /= d;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (int j = 0; j < d; j++) oi[j] = (float)(xi[j] - mean) * rstd * weight[j] + (bias ? bias[j] : 0.0f);
    }
}

static void cpu_embed(float *out, const float *table, const int32_t *ids, int n, int d) {
    pl_embedding_forward(out, ids, table, n, d);
}

static void cpu_attn_scores(float *att, int ld, const float *q, const float *k, int n, int pos0, int H, int Hkv,
                            int dh) {
    int group = H / Hkv, qd = H * dh, kvd = Hkv * dh, n_ctx = pos0 + n;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < H; h++) {
        // scores_h (n × n_ctx) = q_h (n × dh) · k_hkv (n_ctx × dh)ᵀ / √dh
        float *att_h = att + (size_t)h * n * ld;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n_ctx, dh, scale, q + h * dh, qd, k + (h / group) * dh,
                    kvd, 0.0f, att_h, ld);
        for (int i = 0; i < n; i++)
            for (int j = pos0 + i + 1; j < n_ctx; j++) att_h[(size_t)i * ld + j] = -INFINITY;  // causal mask
    }
}

static void cpu_attn_softmax(float *att, int ld, int n, int pos0, int H) {
    int n_ctx = pos0 + n;
    for (size_t r = 0; r < (size_t)H * n; r++) {
        int keys = pos0 + (int)(r % (size_t)n) + 1;
        pl_softmax_row(att + r * ld, keys, PL_SUM_DOUBLE);
        memset(att + r * ld + keys, 0, sizeof(float) * (size_t)(n_ctx - keys));  // masked keys exactly 0
    }
}

static void cpu_attn_mix(float *z, const float *att, int ld, const float *v, int n, int pos0, int H, int Hkv, int dh) {
    int group = H / Hkv, qd = H * dh, kvd = Hkv * dh, n_ctx = pos0 + n;
    for (int h = 0; h < H; h++)  // z_h (n × dh) = pattern_h (n × n_ctx) · v_hkv (n_ctx × dh)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n_ctx, 1.0f, att + (size_t)h * n * ld, ld,
                    v + (h / group) * dh, kvd, 0.0f, z + h * dh, qd);
}

static void cpu_add(float *a, const float *b, size_t n) { pl_residual_forward(a, a, b, n); }

static void cpu_copy(float *dst, const float *src, size_t n) { memcpy(dst, src, sizeof(float) * n); }

static const pl_backend cpu_backend = {
    .name = "cpu",
    .linear = pl_linear_forward,
    .rmsnorm = cpu_rmsnorm,
    .layernorm = cpu_layernorm,
    .embed = cpu_embed,
    .rope = pl_rope,
    .attn_scores = cpu_attn_scores,
    .attn_softmax = cpu_attn_softmax,
    .attn_mix = cpu_attn_mix,
    .swiglu = pl_swiglu_forward,
    .gelu_new = pl_gelu_new,
    .add = cpu_add,
    .copy = cpu_copy,
};

const pl_backend *pl_backend_cpu(void) { return &cpu_backend; }

double pl_softmax_row(float *x, int n, pl_sum_kind sum_kind) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0;
    if (sum_kind == PL_SUM_FLOAT) {
        float fsum = 0;
        for (int i = 0; i < n; i++) fsum += (x[i] = expf(x[i] - max));
        sum = fsum;
    } else {
        for (int i = 0; i < n; i++) sum += (x[i] = expf(x[i] - max));
    }
    // (float)(1 / sum) is 1.0f / sum exactly when sum is a float (double rounding is exact for division).
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
    return log(sum) + max;
}

double pl_logsumexp(const float *x, const double *bias, int n, double *max_out, double *entropy) {
    double max = -INFINITY;
    for (int i = 0; i < n; i++) max = fmax(max, x[i] + (bias ? bias[i] : 0.0));
    double z = 0, ez = 0;
    for (int i = 0; i < n; i++) {
        double t = x[i] + (bias ? bias[i] : 0.0) - max, e = exp(t);
        z += e;
        ez += e * t;
    }
    double log_z = log(z);
    if (entropy) *entropy = log_z - ez / z;
    *max_out = max;
    return log_z;
}

void pl_gelu_new(float *x, size_t n) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}
