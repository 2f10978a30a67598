// Compute kernels used by the forward pass (and, in kernels/cpu/layers.h, the trainer and small
// probe networks). Kernels know nothing of models, files or the store: plain float arrays in,
// float arrays out. Outputs come first, then inputs, then sizes (llm.c order).
//
// Backends: the CPU backend (OpenBLAS + plain C) is always present. A CUDA + cuBLAS backend can
// slot in beside it by filling the same pl_backend table; host and device buffers never mix
// inside one call, so the forward pass keeps its activations wherever the backend wants them.
#ifndef PL_KERNELS_H
#define PL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// How pl_softmax_row accumulates the sum of the exponentials.
typedef enum { PL_SUM_DOUBLE, PL_SUM_FLOAT } pl_sum_kind;

// Every op of the forward pass (runtime/session.c), so a backend computes all of it where its
// buffers live. Every pointer handed to an op is a buffer of the same backend; hooks read the
// activations between ops.
typedef struct pl_backend {
    const char *name;
    // out[n × d_out] = x[n × d_in] · w[d_out × d_in]ᵀ (+ bias[d_out] if non-NULL). Row-major.
    void (*linear)(float *out, const float *x, const float *w, const float *bias, int n, int d_in, int d_out);
    // out[n × d] = x / rms(x) * weight, rows independent. out may equal x.
    void (*rmsnorm)(float *out, const float *x, const float *weight, int n, int d, float eps);
    // out[n × d] = (x - mean) / std * weight + bias.
    void (*layernorm)(float *out, const float *x, const float *weight, const float *bias, int n, int d, float eps);
    // out[n × d] = rows ids[0..n) of table[vocab × d] (the token embedding).
    void (*embed)(float *out, const float *table, const int32_t *ids, int n, int d);
    // RoPE in place, as pl_rope.
    void (*rope)(float *x, int n, int n_heads, int head_dim, int pos0, float theta, int neox);
    // Causal attention of n queries at positions pos0..pos0+n-1 over the keys 0..pos0+n-1, in the
    // three steps the hooks read between. q[n × H·dh]; k, v[(pos0+n) × Hkv·dh] (query head h reads
    // kv head h / (H/Hkv)); att[H × n × ld], ld >= pos0+n.
    // Scores: att[h][i][j] = q_h,i · k_j / √dh for j <= pos0+i, -inf above (the causal mask).
    void (*attn_scores)(float *att, int ld, const float *q, const float *k, int n, int pos0, int H, int Hkv, int dh);
    // Pattern, in place: each row a softmax over its keys 0..pos0+i, exact zeros above.
    void (*attn_softmax)(float *att, int ld, int n, int pos0, int H);
    // z[n × H·dh]: z_h = pattern_h · v.
    void (*attn_mix)(float *z, const float *att, int ld, const float *v, int n, int pos0, int H, int Hkv, int dh);
    // out[i] = silu(gate[i]) * up[i]. out may equal gate.
    void (*swiglu)(float *out, const float *gate, const float *up, size_t n);
    // GPT-2's tanh approximation of GELU, in place.
    void (*gelu_new)(float *x, size_t n);
    // a[i] += b[i] (the residual stream).
    void (*add)(float *a, const float *b, size_t n);
    // dst[0..n) = src[0..n) (KV cache writes, position embeddings); no overlap.
    void (*copy)(float *dst, const float *src, size_t n);
} pl_backend;

// The CPU backend (always available).
const pl_backend *pl_backend_cpu(void);

// ---- CPU kernels shared by the backend, the layer library and the callers on the host ----
// RoPE in place on x[n × n_heads × head_dim] for absolute positions pos0..pos0+n-1.
// adjacent: rotate pairs (2i, 2i+1) (GGUF llama layout); neox: pairs (i, i + head_dim/2) (HF layout).
void pl_rope(float *x, int n, int n_heads, int head_dim, int pos0, float theta, int neox);
// The one softmax: x[0..n) in place becomes exp(x - max) / Σ exp(x - max), the exponentials in
// float, their sum accumulated in double (PL_SUM_DOUBLE) or in float (PL_SUM_FLOAT: the trainer's
// attention, kept so the bundled model's recipe reproduces byte for byte). Returns the
// log-sum-exp of the input, log Σ exp(x), in double (for losses and log-probabilities). n >= 1.
double pl_softmax_row(float *x, int n, pl_sum_kind sum);
// The log-sum-exp log Σ exp(x + bias) in double, without writing (bias may be NULL), in two parts
// so that log-probabilities near 0 keep their digits: *max = max(x + bias) and the result
// r = log Σ exp(x + bias - *max), so log-sum-exp = *max + r and log p_i = (x_i + bias_i - *max) - r.
// With entropy non-NULL, also the entropy (nats) of softmax(x + bias). n >= 1.
double pl_logsumexp(const float *x, const double *bias, int n, double *max, double *entropy);
// GPT-2's tanh approximation of GELU ("gelu_new"), in place.
void pl_gelu_new(float *x, size_t n);

// ---- dtype conversion (dequantization) ----
float pl_f16_to_f32(uint16_t h);
float pl_bf16_to_f32(uint16_t h);
uint16_t pl_f32_to_f16(float f);
uint16_t pl_f32_to_bf16(float f);
// GGML block formats: 32 weights a block. Q8_0 = f16 scale + 32 int8 (34 bytes).
// Q4_0 = f16 scale + 16 bytes of nibbles (18 bytes); low nibbles are weights 0..15, high 16..31, value (q - 8) * d.
void pl_dequant_q8_0(float *out, const void *blocks, size_t n_weights);
void pl_dequant_q4_0(float *out, const void *blocks, size_t n_weights);

// ---- SIMD dispatch ----
// The hand-vectorized CPU kernels (the fused probe gradient, standardization, f16 conversion) are
// compiled for several instruction sets and pick one at run time, so a portable build (the
// default, PL_NATIVE=OFF) still runs AVX-512 code on a CPU that has it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PL_SIMD_X86 1  // GCC on x86-64: AVX2 / AVX-512 functions built with target pragmas, chosen by cpuid
#endif
typedef enum { PL_SIMD_PORTABLE, PL_SIMD_AVX2, PL_SIMD_AVX512 } pl_simd_level;
// The level in effect: the best this CPU has (AVX2 = avx2 + fma + f16c, AVX512 = avx512f + avx512dq),
// or a lower one named by the environment variable PL_SIMD (portable, avx2, avx512f; another
// value is ignored and pl_simd_path() says so). Thread-safe.
pl_simd_level pl_simd_level_get(void);
// Uses `want` from now on, capped at what the CPU has (tests run every path); returns the level set.
pl_simd_level pl_simd_level_set(pl_simd_level want);
// "portable", "avx2" or "avx512f" (the names PL_SIMD takes).
const char *pl_simd_level_name(pl_simd_level level);
// The SIMD path this binary runs, for `probelab --version` and the benchmarks: "avx512f", "avx2",
// "sse2 (portable)", or in a PL_NATIVE build "native (-march=native), dispatched kernels avx512f".
// A static string.
const char *pl_simd_path(void);

#endif
