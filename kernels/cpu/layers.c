// The layer library (see layers.h): forward/backward pairs on plain float arrays, sgemm for products.
#include "kernels/cpu/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

// ---------------------------------------------------------------- embedding

void pl_embedding_forward(float *out, const int32_t *ids, const float *wte, int N, int C) {
    for (int i = 0; i < N; i++) memcpy(out + (size_t)i * C, wte + (size_t)ids[i] * C, sizeof(float) * (size_t)C);
}

void pl_embedding_backward(float *dwte, const float *dout, const int32_t *ids, int N, int C) {
    for (int i = 0; i < N; i++) {
        float *row = dwte + (size_t)ids[i] * C;
        const float *d = dout + (size_t)i * C;
        for (int j = 0; j < C; j++) row[j] += d[j];
    }
}

// ---------------------------------------------------------------- RMSNorm

void pl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)x[j] * x[j];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        for (int j = 0; j < C; j++) o[j] = x[j] * r * weight[j];
        if (rstd) rstd[i] = r;
    }
}

void pl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, int N, int C) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float r = rstd[i];
        // y_j = x_j r w_j with r = (mean x² + eps)^-1/2, so dr/dx_k = -r³ x_k / C.
        double dot = 0;
        for (int j = 0; j < C; j++) dot += (double)dy[j] * weight[j] * x[j];
        float coef = (float)(dot * r * r * r / C);
        for (int j = 0; j < C; j++) {
            dx[j] += dy[j] * weight[j] * r - coef * x[j];
            dweight[j] += dy[j] * x[j] * r;
        }
    }
}

// ---------------------------------------------------------------- linear

void pl_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    if (N == 1) {
        // One row (a decode step): a matrix-vector product, bound by reading the weight once.
        if (bias) memcpy(out, bias, sizeof(float) * (size_t)OC);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, weight, C, inp, 1, bias ? 1.0f : 0.0f, out, 1);
        return;
    }
    if (bias)
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, bias, sizeof(float) * (size_t)OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out,
                OC);
}

void pl_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    // dinp[N × C] += dout[N × OC] · W[OC × C]
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    // dW[OC × C] += doutᵀ · inp
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias)
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * OC;
            for (int o = 0; o < OC; o++) dbias[o] += d[o];
        }
}

// ---------------------------------------------------------------- RoPE

// The angles of pairs i0..i1-1 at one position: pos · theta^(-2i/head_dim), computed in double.
static void rope_angles(float *c, float *s, int pos, int i0, int i1, int head_dim, float theta) {
    for (int i = i0; i < i1; i++) {
        double angle = pos * pow((double)theta, -2.0 * i / head_dim);
        c[i - i0] = (float)cos(angle);
        s[i - i0] = (float)sin(angle);
    }
}

// The one RoPE rotation: pairs i0..i1-1 of every head of one position, by the angles whose cosine
// and sine are c[i - i0], s[i - i0]. Pairs are (2i, 2i+1) (adjacent, GGUF llama) or (i, i + half)
// (neox, HF). sign -1 rotates backwards; accumulate adds into out. out may equal inp.
static void rope_rotate_pairs(float *out, const float *inp, const float *c, const float *s, int i0, int i1,
                              int n_heads, int head_dim, int neox, float sign, int accumulate) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        size_t base = (size_t)h * head_dim;
        for (int i = i0; i < i1; i++) {
            size_t a = base + (neox ? i : 2 * i), b = base + (neox ? i + half : 2 * i + 1);
            float x0 = inp[a], x1 = inp[b], ci = c[i - i0], si = sign * s[i - i0];
            float y0 = x0 * ci - x1 * si, y1 = x0 * si + x1 * ci;
            if (accumulate) {
                out[a] += y0;
                out[b] += y1;
            } else {
                out[a] = y0;
                out[b] = y1;
            }
        }
    }
}

void pl_rope(float *x, int n, int n_heads, int head_dim, int pos0, float theta, int neox) {
    enum { BLOCK = 64 };  // angles a block of pairs at a time, on the stack
    float c[BLOCK], s[BLOCK];
    int half = head_dim / 2;
    for (int t = 0; t < n; t++) {
        float *v = x + (size_t)t * n_heads * head_dim;
        for (int i0 = 0; i0 < half; i0 += BLOCK) {
            int i1 = i0 + BLOCK < half ? i0 + BLOCK : half;
            rope_angles(c, s, pos0 + t, i0, i1, head_dim, theta);
            rope_rotate_pairs(v, v, c, s, i0, i1, n_heads, head_dim, neox, 1.0f, 0);
        }
    }
}

void pl_rope_tables(float *cos_table, float *sin_table, int max_pos, int head_dim, float theta) {
    int half = head_dim / 2;
    for (int p = 0; p < max_pos; p++)
        rope_angles(cos_table + (size_t)p * half, sin_table + (size_t)p * half, p, 0, half, head_dim, theta);
}

static void rope_tabled(float *out, const float *inp, const int32_t *pos, const float *cos_table,
                        const float *sin_table, int N, int n_heads, int head_dim, float sign, int accumulate) {
    int half = head_dim / 2;
    for (int t = 0; t < N; t++) {
        size_t row = (size_t)t * n_heads * head_dim;
        rope_rotate_pairs(out + row, inp + row, cos_table + (size_t)pos[t] * half, sin_table + (size_t)pos[t] * half, 0,
                          half, n_heads, head_dim, 0, sign, accumulate);
    }
}

void pl_rope_forward(float *out, const float *inp, const int32_t *pos, const float *cos_table, const float *sin_table,
                     int N, int n_heads, int head_dim) {
    rope_tabled(out, inp, pos, cos_table, sin_table, N, n_heads, head_dim, 1.0f, 0);
}

void pl_rope_backward(float *dinp, const float *dout, const int32_t *pos, const float *cos_table,
                      const float *sin_table, int N, int n_heads, int head_dim) {
    rope_tabled(dinp, dout, pos, cos_table, sin_table, N, n_heads, head_dim, -1.0f, 1);
}

// ---------------------------------------------------------------- attention

size_t pl_attention_att_size(const int *seq_start, int n_seq, int H) {
    size_t n = 0;
    for (int s = 0; s < n_seq; s++) {
        size_t T = (size_t)(seq_start[s + 1] - seq_start[s]);
        n += (size_t)H * T * T;
    }
    return n;
}

size_t pl_attention_scratch_size(const int *seq_start, int n_seq) {
    size_t best = 0;
    for (int s = 0; s < n_seq; s++) {
        size_t T = (size_t)(seq_start[s + 1] - seq_start[s]);
        if (T * T > best) best = T * T;
    }
    return best;
}

void pl_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *seq_start,
                       int n_seq, int H, int Hkv, int hd) {
    int ldq = H * hd, ldk = Hkv * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    float *att_s = att;
    for (int s = 0; s < n_seq; s++) {
        int p0 = seq_start[s], T = seq_start[s + 1] - p0;
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *Qh = q + (size_t)p0 * ldq + (size_t)h * hd;
            const float *Kg = k + (size_t)p0 * ldk + (size_t)g * hd;
            const float *Vg = v + (size_t)p0 * ldk + (size_t)g * hd;
            float *P = att_s + (size_t)h * T * T;  // [T × T], row = query
            // scores = scale · Q Kᵀ (the upper triangle is computed and then masked: T is small)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Qh, ldq, Kg, ldk, 0.0f, P, T);
            for (int i = 0; i < T; i++) {
                float *row = P + (size_t)i * T;
                // Summed in float: the bundled model was trained so, and its recipe reproduces byte for byte.
                pl_softmax_row(row, i + 1, PL_SUM_FLOAT);
                for (int j = i + 1; j < T; j++) row[j] = 0.0f;
            }
            // out_h = P V
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, Vg, ldk, 0.0f,
                        out + (size_t)p0 * ldq + (size_t)h * hd, ldq);
        }
        att_s += (size_t)H * T * T;
    }
}

void pl_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, const int *seq_start, int n_seq, int H,
                        int Hkv, int hd) {
    int ldq = H * hd, ldk = Hkv * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    const float *att_s = att;
    for (int s = 0; s < n_seq; s++) {
        int p0 = seq_start[s], T = seq_start[s + 1] - p0;
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qoff = (size_t)p0 * ldq + (size_t)h * hd, koff = (size_t)p0 * ldk + (size_t)g * hd;
            const float *P = att_s + (size_t)h * T * T;
            const float *dO = dout + qoff;
            float *dP = scratch;
            // dP = dO Vᵀ ; dV += Pᵀ dO
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, ldq, v + koff, ldk, 0.0f, dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dO, ldq, 1.0f, dv + koff, ldk);
            // softmax backward, row by row: dS = P ⊙ (dP - Σ_j P dP); masked entries have P = 0.
            for (int i = 0; i < T; i++) {
                const float *p = P + (size_t)i * T;
                float *d = dP + (size_t)i * T;
                float dot = 0;
                for (int j = 0; j <= i; j++) dot += p[j] * d[j];
                for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot);
                for (int j = i + 1; j < T; j++) d[j] = 0.0f;
            }
            // dQ += scale · dS K ; dK += scale · dSᵀ Q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, k + koff, ldk, 1.0f,
                        dq + qoff, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, q + qoff, ldq, 1.0f,
                        dk + koff, ldk);
        }
        att_s += (size_t)H * T * T;
    }
}

// ---------------------------------------------------------------- SwiGLU, residual

void pl_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void pl_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        // d silu(g)/dg = σ(g) (1 + g (1 - σ(g)))
        dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
        dup[i] += dout[i] * g * sig;
    }
}

void pl_residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void pl_residual_backward(float *da, float *db, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

// ---------------------------------------------------------------- cross-entropy

double pl_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                            const float *weight, int N, int V) {
    double total = 0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * V;
        float *p = probs + (size_t)i * V;
        memcpy(p, z, sizeof(float) * (size_t)V);
        double lse = pl_softmax_row(p, V, PL_SUM_DOUBLE);
        if (weight[i] != 0.0f) {
            // -log p[target] from the logits (log-sum-exp) rather than from the rounded probability
            losses[i] = (float)(lse - z[targets[i]]);
            total += (double)weight[i] * losses[i];
        } else {
            losses[i] = 0.0f;
        }
    }
    return total;
}

void pl_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, const float *weight, int N,
                           int V) {
    for (int i = 0; i < N; i++) {
        float *d = dlogits + (size_t)i * V;
        const float *p = probs + (size_t)i * V;
        float w = weight[i];
        if (w == 0.0f) {
            memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        for (int j = 0; j < V; j++) d[j] = w * p[j];
        d[targets[i]] -= w;
    }
}

// ---------------------------------------------------------------- pooling

void pl_meanpool_forward(float *out, const float *inp, const int *seq_start, int n_seq, int C) {
    for (int s = 0; s < n_seq; s++) {
        float *o = out + (size_t)s * C;
        int T = seq_start[s + 1] - seq_start[s];
        memset(o, 0, sizeof(float) * (size_t)C);
        for (int t = seq_start[s]; t < seq_start[s + 1]; t++)
            for (int j = 0; j < C; j++) o[j] += inp[(size_t)t * C + j];
        float inv = T > 0 ? 1.0f / (float)T : 0.0f;
        for (int j = 0; j < C; j++) o[j] *= inv;
    }
}

void pl_meanpool_backward(float *dinp, const float *dout, const int *seq_start, int n_seq, int C) {
    for (int s = 0; s < n_seq; s++) {
        int T = seq_start[s + 1] - seq_start[s];
        if (T <= 0) continue;
        float inv = 1.0f / (float)T;
        for (int t = seq_start[s]; t < seq_start[s + 1]; t++)
            for (int j = 0; j < C; j++) dinp[(size_t)t * C + j] += dout[(size_t)s * C + j] * inv;
    }
}

void pl_attnpool_forward(float *out, float *a, const float *inp, const float *query, const int *seq_start, int n_seq,
                      int C) {
    float scale = 1.0f / sqrtf((float)C);
    for (int s = 0; s < n_seq; s++) {
        int p0 = seq_start[s], T = seq_start[s + 1] - p0;
        float *o = out + (size_t)s * C;
        memset(o, 0, sizeof(float) * (size_t)C);
        if (T <= 0) continue;
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)(p0 + t) * C;
            float dot = 0;
            for (int j = 0; j < C; j++) dot += x[j] * query[j];
            a[p0 + t] = dot * scale;
        }
        pl_softmax_row(a + p0, T, PL_SUM_DOUBLE);
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)(p0 + t) * C;
            for (int j = 0; j < C; j++) o[j] += a[p0 + t] * x[j];
        }
    }
}

void pl_attnpool_backward(float *dinp, float *dquery, const float *dout, const float *inp, const float *query,
                       const float *a, const int *seq_start, int n_seq, int C) {
    float scale = 1.0f / sqrtf((float)C);
    for (int s = 0; s < n_seq; s++) {
        int p0 = seq_start[s], T = seq_start[s + 1] - p0;
        const float *dO = dout + (size_t)s * C;
        // da_t = x_t · dout ; dscore_t = a_t (da_t - Σ a da)
        double mean = 0;
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)(p0 + t) * C;
            float da = 0;
            for (int j = 0; j < C; j++) da += x[j] * dO[j];
            mean += (double)a[p0 + t] * da;
        }
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)(p0 + t) * C;
            float *dx = dinp + (size_t)(p0 + t) * C;
            float da = 0;
            for (int j = 0; j < C; j++) da += x[j] * dO[j];
            float ds = a[p0 + t] * (da - (float)mean) * scale;
            for (int j = 0; j < C; j++) {
                dx[j] += a[p0 + t] * dO[j] + ds * query[j];
                dquery[j] += ds * x[j];
            }
        }
    }
}

// ---------------------------------------------------------------- sigmoid BCE

double pl_bce_forward(float *losses, const float *logits, const float *targets, const float *weight, int N) {
    double total = 0;
    for (int i = 0; i < N; i++) {
        float z = logits[i];
        // softplus(z) - y z, written so exp never overflows
        float l = fmaxf(z, 0.0f) - targets[i] * z + log1pf(expf(-fabsf(z)));
        losses[i] = weight[i] * l;
        total += losses[i];
    }
    return total;
}

void pl_bce_backward(float *dlogits, const float *logits, const float *targets, const float *weight, int N) {
    for (int i = 0; i < N; i++) dlogits[i] = weight[i] * (1.0f / (1.0f + expf(-logits[i])) - targets[i]);
}
