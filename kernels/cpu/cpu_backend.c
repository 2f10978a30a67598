// The CPU backend: OpenBLAS for matrix products, plain C for the rest.
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

static void cpu_linear(float *out, const float *x, const float *w, const float *bias, int n, int d_in, int d_out) {
    if (n == 1) {
        // Decode: a matrix-vector product, bound by reading w once.
        if (bias) memcpy(out, bias, sizeof(float) * (size_t)d_out);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, d_out, d_in, 1.0f, w, d_in, x, 1, bias ? 1.0f : 0.0f, out, 1);
        return;
    }
    if (bias)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * d_out, bias, sizeof(float) * (size_t)d_out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d_out, d_in, 1.0f, x, d_in, w, d_in, bias ? 1.0f : 0.0f,
                out, d_out);
}

static void cpu_rmsnorm(float *out, const float *x, const float *weight, int n, int d, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float scale = (float)(1.0 / sqrt(ss / d + eps));
        for (int j = 0; j < d; j++) oi[j] = xi[j] * scale * weight[j];
    }
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

static const pl_backend cpu_backend = {
    .name = "cpu",
    .linear = cpu_linear,
    .rmsnorm = cpu_rmsnorm,
    .layernorm = cpu_layernorm,
};

const pl_backend *pl_backend_cpu(void) { return &cpu_backend; }

void pl_rope(float *x, int n, int n_heads, int head_dim, int pos0, float theta, int neox) {
    int half = head_dim / 2;
    for (int t = 0; t < n; t++) {
        int pos = pos0 + t;
        for (int i = 0; i < half; i++) {
            // Same frequency for pair i in both layouts; only which two elements form the pair differs.
            double freq = pow((double)theta, -2.0 * i / head_dim);
            double angle = pos * freq;
            float c = (float)cos(angle), s = (float)sin(angle);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((size_t)t * n_heads + h) * head_dim;
                int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

void pl_softmax_row(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void pl_silu_mul(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void pl_gelu_new(float *x, size_t n) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void pl_add_inplace(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] += b[i];
}
