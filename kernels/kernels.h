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

typedef struct pl_backend {
    const char *name;
    // out[n × d_out] = x[n × d_in] · w[d_out × d_in]ᵀ (+ bias[d_out] if non-NULL). Row-major.
    void (*linear)(float *out, const float *x, const float *w, const float *bias, int n, int d_in, int d_out);
    // out[n × d] = x / rms(x) * weight, rows independent.
    void (*rmsnorm)(float *out, const float *x, const float *weight, int n, int d, float eps);
    // out[n × d] = (x - mean) / std * weight + bias.
    void (*layernorm)(float *out, const float *x, const float *weight, const float *bias, int n, int d, float eps);
} pl_backend;

// The CPU backend (always available).
const pl_backend *pl_backend_cpu(void);

// ---- elementwise helpers (CPU) ----
// RoPE in place on x[n × n_heads × head_dim] for absolute positions pos0..pos0+n-1.
// adjacent: rotate pairs (2i, 2i+1) (GGUF llama layout); neox: pairs (i, i + head_dim/2) (HF layout).
void pl_rope(float *x, int n, int n_heads, int head_dim, int pos0, float theta, int neox);
// Numerically stable softmax of one row in place.
void pl_softmax_row(float *x, int n);
// out[i] = silu(gate[i]) * up[i]
void pl_silu_mul(float *out, const float *gate, const float *up, size_t n);
// GPT-2's tanh approximation of GELU ("gelu_new"), in place.
void pl_gelu_new(float *x, size_t n);
// a[i] += b[i]
void pl_add_inplace(float *a, const float *b, size_t n);

// ---- dtype conversion (dequantization) ----
float pl_f16_to_f32(uint16_t h);
float pl_bf16_to_f32(uint16_t h);
uint16_t pl_f32_to_f16(float f);
uint16_t pl_f32_to_bf16(float f);
// GGML block formats: 32 weights a block. Q8_0 = f16 scale + 32 int8 (34 bytes).
// Q4_0 = f16 scale + 16 bytes of nibbles (18 bytes); low nibbles are weights 0..15, high 16..31, value (q - 8) * d.
void pl_dequant_q8_0(float *out, const void *blocks, size_t n_weights);
void pl_dequant_q4_0(float *out, const void *blocks, size_t n_weights);

#endif
