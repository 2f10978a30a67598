// The layer library: forward and backward passes of the layers that the trainer
// (runtime/train/) and the small probe networks (attention probes, the Gnosis failure predictor)
// are built from. llm.c style: each layer is a pair `pl_X_forward(out, saved..., inp, params..., sizes)`
// and `pl_X_backward(dinp, dparams..., dout, inp, params, saved..., sizes)`. Whatever a backward pass
// needs is saved by its forward pass in buffers the caller owns. Each backward pass is written once.
//
// Conventions:
// - Activations are row-major [N × C]: N positions (all sequences of a batch packed one after the
//   other), C features. Weights follow torch.nn.Linear: [out × in] row-major.
// - Backward passes ACCUMULATE into parameter gradients (dweight += ...) so a layer used several
//   times (a tied embedding) sums its contributions; the caller zeroes them once per step.
//   Input gradients (dinp) are ACCUMULATED too, so residual branches add up without copies.
// - Packed sequences: sequence s covers positions seq_start[s] .. seq_start[s+1]-1 (like
//   flash-attention's cu_seqlens), so no padding is computed. Attention never crosses sequences.
// - Every matrix product uses OpenBLAS sgemm.
#ifndef PL_LAYERS_H
#define PL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

// ---- token embedding: out[N × C] = wte[ids[i]] ----
void pl_embedding_forward(float *out, const int32_t *ids, const float *wte, int N, int C);
void pl_embedding_backward(float *dwte, const float *dout, const int32_t *ids, int N, int C);

// ---- RMSNorm: out = x / sqrt(mean(x²) + eps) * weight; saves rstd[N] (NULL: not saved) ----
void pl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void pl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, int N, int C);

// ---- linear / dense: out[N × OC] = inp[N × C] · weight[OC × C]ᵀ (+ bias[OC] if non-NULL) ----
// The same pair serves the transformer's projections (no bias) and the probes' dense layers (bias);
// the forward function is also the CPU backend's linear (a single row is a matrix-vector product).
void pl_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
// dinp may be NULL (first layer), dbias may be NULL (no bias).
void pl_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);

// ---- RoPE, adjacent pairs (2i, 2i+1) as in GGUF llama ----
// Tables for positions 0..max_pos-1: cos/sin[max_pos × head_dim/2], angle = pos · theta^(-2i/head_dim)
// (computed in double by the same code as kernels' pl_rope, so both give the same floats).
void pl_rope_tables(float *cos_table, float *sin_table, int max_pos, int head_dim, float theta);
// x[N × n_heads × head_dim]; pos[N] is each row's position inside its sequence. out may equal inp.
void pl_rope_forward(float *out, const float *inp, const int32_t *pos, const float *cos_table, const float *sin_table,
                  int N, int n_heads, int head_dim);
// The rotation is orthogonal, so the backward pass rotates dout by the opposite angle (accumulates).
void pl_rope_backward(float *dinp, const float *dout, const int32_t *pos, const float *cos_table,
                   const float *sin_table, int N, int n_heads, int head_dim);

// ---- causal softmax attention with grouped-query heads ----
// q[N × H·hd], k,v[N × Hkv·hd] (H a multiple of Hkv; query head h reads kv head h / (H/Hkv)).
// out[N × H·hd]. att saves the softmax pattern of every sequence and head: pl_attention_att_size()
// floats, laid out per sequence s as [H × T_s × T_s] (T_s its length), sequences one after another.
size_t pl_attention_att_size(const int *seq_start, int n_seq, int H);
void pl_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *seq_start,
                       int n_seq, int H, int Hkv, int hd);
// scratch: pl_attention_scratch_size() floats. dq, dk, dv accumulate.
size_t pl_attention_scratch_size(const int *seq_start, int n_seq);
void pl_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, const int *seq_start, int n_seq, int H,
                        int Hkv, int hd);

// ---- SwiGLU: out = silu(gate) · up, elementwise over n ----
void pl_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
void pl_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);

// ---- residual: out = a + b; the backward pass is dout flowing to both (accumulate) ----
void pl_residual_forward(float *out, const float *a, const float *b, size_t n);
void pl_residual_backward(float *da, float *db, const float *dout, size_t n);

// ---- softmax cross-entropy with a per-position weight (0 masks a position out) ----
// logits[N × V] -> probs[N × V] (saved) and losses[N] = -log p[target] (0 where weight is 0).
// Returns Σ weight[i] · losses[i] (double). Pass weight[i] = 1/n_counted for a mean loss.
double pl_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                            const float *weight, int N, int V);
// dlogits = weight[i] · (probs - onehot(target)) (overwrites: the loss is the graph's end).
void pl_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, const float *weight, int N,
                           int V);

// ---- pooling over the positions of each sequence (for probes): out[n_seq × C] ----
void pl_meanpool_forward(float *out, const float *inp, const int *seq_start, int n_seq, int C);
void pl_meanpool_backward(float *dinp, const float *dout, const int *seq_start, int n_seq, int C);
// Attention pooling with a learned query: score_t = inp_t · query / sqrt(C), a = softmax over the
// sequence's positions, out_s = Σ_t a_t inp_t. Saves a[N] (the pooling weights, per position).
void pl_attnpool_forward(float *out, float *a, const float *inp, const float *query, const int *seq_start, int n_seq,
                      int C);
void pl_attnpool_backward(float *dinp, float *dquery, const float *dout, const float *inp, const float *query,
                       const float *a, const int *seq_start, int n_seq, int C);

// ---- sigmoid binary cross-entropy on logits z[N] with targets y[N] in [0,1] and weights ----
// losses[i] = weight[i] · (softplus(z) - y·z) (stable form). Returns Σ losses.
double pl_bce_forward(float *losses, const float *logits, const float *targets, const float *weight, int N);
// dlogits = weight · (sigmoid(z) - y) (overwrites).
void pl_bce_backward(float *dlogits, const float *logits, const float *targets, const float *weight, int N);

#endif
