// The trainer (see train.h): parameters in one flat array (so AdamW and checkpoints are single
// loops), a forward pass that saves what the layer library's backward passes need, the backward
// pass in reverse order, and the optimisation loop.
#include "runtime/train/train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/layers.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/base/rng.h"
#include "runtime/model/gguf_write.h"
#include "runtime/train/task_vocab.h"

pl_train_options pl_train_defaults(void) {
    pl_train_options o = {0};
    o.d_model = 128;
    o.n_layers = 4;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.d_ff = 384;
    o.context_length = 128;
    o.norm_eps = 1e-5f;
    o.rope_theta = 10000.0f;
    o.steps = 2000;
    o.batch = 64;
    o.warmup = 150;
    o.lr = 3e-3f;
    o.min_lr_frac = 0.1f;
    o.weight_decay = 0.01f;
    o.grad_clip = 1.0f;
    o.beta1 = 0.9f;
    o.beta2 = 0.95f;
    o.seed = 1;
    o.threads = 0;
    o.checkpoint_every = 250;
    o.log_every = 50;
    o.model_name = "probelab-cot";
    return o;
}

// Offsets of one block's tensors in the flat parameter array (same offsets index the gradients).
typedef struct {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
} layer_offsets;

// What the backward pass needs from the forward pass of one block (N positions).
typedef struct {
    float *resid_in;           // (N, d) block input
    float *ln1, *rstd1;        // (N, d), (N)
    float *q, *k, *v;          // (N, H*hd), (N, Hkv*hd), (N, Hkv*hd); q and k after RoPE
    float *att;                // softmax patterns, pl_attention_att_size floats
    float *z;                  // (N, H*hd) attention output before W_O
    float *resid_mid;          // (N, d)
    float *ln2, *rstd2;        // (N, d), (N)
    float *gate, *up, *act;    // (N, f); act = silu(gate) * up
} layer_acts;

typedef struct {
    size_t offset, n;
    int decay;  // matrices decay, norm gains do not
} param_tensor;

struct pl_trainer {
    pl_train_options opt;
    int V, d, H, Hkv, hd, f, L, ctx, qd, kd;
    float *params, *grads, *m, *v;  // n_params each
    size_t n_params;
    size_t off_embd, off_out_norm;  // token_embd (V, d) doubles as the unembedding
    layer_offsets *lo;
    param_tensor *tensors;
    int n_tensors;
    int step;
    float *rope_cos, *rope_sin;  // (ctx, hd/2)
    // the current batch, packed: sequence s covers positions seq_start[s]..seq_start[s+1]-1
    int32_t *ids, *targets, *pos;
    float *weights;  // per-position loss weight (0 on prompt positions)
    int *seq_start;
    int n_seq, N, cap_tokens, cap_seq;
    size_t cap_att, cap_scratch;
    // activations
    layer_acts *acts;
    float *resid_final, *lnf, *rstdf, *logits, *probs, *losses;
    // gradient scratch
    float *dres, *dln, *dz, *dq, *dk, *dv, *dq_pre, *dk_pre, *dact, *dgate, *dup, *tmp, *att_scratch;
};

// ------------------------------------------------------------------------------------- setup

// The initialisation's N(0, 1): Box-Muller on two open-interval uniforms. Not pl_rng_normal (which
// draws its first uniform as 1 - [0, 1)): the bundled model's recipe reproduces byte for byte only
// with the stream it was trained with.
static float init_normal(pl_rng *r) {
    double u1 = pl_rng_uniform_open(r), u2 = pl_rng_uniform_open(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static int check_options(const pl_train_options *o) {
    if (o->d_model <= 0 || o->n_layers <= 0 || o->n_heads <= 0 || o->n_kv_heads <= 0 || o->d_ff <= 0)
        return pl_fail("train: model sizes must be positive");
    if (o->d_model % o->n_heads) return pl_fail("train: d_model %d is not a multiple of heads %d", o->d_model, o->n_heads);
    if (o->n_heads % o->n_kv_heads)
        return pl_fail("train: heads %d is not a multiple of kv-heads %d", o->n_heads, o->n_kv_heads);
    if ((o->d_model / o->n_heads) % 2) return pl_fail("train: head size %d must be even for RoPE", o->d_model / o->n_heads);
    if (o->context_length < 8 || o->context_length > 4096) return pl_fail("train: context %d outside 8..4096", o->context_length);
    if (o->batch <= 0 || o->steps < 0) return pl_fail("train: batch must be > 0 and steps >= 0");
    if (!(o->lr > 0) || !(o->grad_clip >= 0)) return pl_fail("train: lr must be > 0 and grad clip >= 0");
    return 0;
}

static size_t add_tensor(pl_trainer *t, size_t n, int decay) {
    param_tensor *p = &t->tensors[t->n_tensors++];
    p->offset = t->n_params;
    p->n = n;
    p->decay = decay;
    t->n_params += n;
    return p->offset;
}

int pl_trainer_new(const pl_train_options *opt, pl_trainer **out) {
    *out = NULL;
    if (check_options(opt)) return -1;
    pl_trainer *t = calloc(1, sizeof *t);
    if (!t) return pl_fail("train: out of memory");
    t->opt = *opt;
    t->V = PL_TASK_VOCAB_SIZE;
    t->d = opt->d_model;
    t->H = opt->n_heads;
    t->Hkv = opt->n_kv_heads;
    t->hd = t->d / t->H;
    t->f = opt->d_ff;
    t->L = opt->n_layers;
    t->ctx = opt->context_length;
    t->qd = t->H * t->hd;
    t->kd = t->Hkv * t->hd;
    int d = t->d;
    t->lo = calloc((size_t)t->L, sizeof *t->lo);
    t->tensors = calloc((size_t)(9 * t->L + 2), sizeof *t->tensors);
    t->acts = calloc((size_t)t->L, sizeof *t->acts);
    if (!t->lo || !t->tensors || !t->acts) goto oom;
    t->off_embd = add_tensor(t, (size_t)t->V * d, 1);
    for (int l = 0; l < t->L; l++) {
        layer_offsets *o = &t->lo[l];
        o->attn_norm = add_tensor(t, (size_t)d, 0);
        o->wq = add_tensor(t, (size_t)t->qd * d, 1);
        o->wk = add_tensor(t, (size_t)t->kd * d, 1);
        o->wv = add_tensor(t, (size_t)t->kd * d, 1);
        o->wo = add_tensor(t, (size_t)d * t->qd, 1);
        o->ffn_norm = add_tensor(t, (size_t)d, 0);
        o->w_gate = add_tensor(t, (size_t)t->f * d, 1);
        o->w_up = add_tensor(t, (size_t)t->f * d, 1);
        o->w_down = add_tensor(t, (size_t)d * t->f, 1);
    }
    t->off_out_norm = add_tensor(t, (size_t)d, 0);
    t->params = malloc(sizeof(float) * t->n_params);
    t->grads = calloc(t->n_params, sizeof(float));
    t->m = calloc(t->n_params, sizeof(float));
    t->v = calloc(t->n_params, sizeof(float));
    t->rope_cos = malloc(sizeof(float) * (size_t)t->ctx * (size_t)(t->hd / 2));
    t->rope_sin = malloc(sizeof(float) * (size_t)t->ctx * (size_t)(t->hd / 2));
    if (!t->params || !t->grads || !t->m || !t->v || !t->rope_cos || !t->rope_sin) goto oom;
    pl_rope_tables(t->rope_cos, t->rope_sin, t->ctx, t->hd, opt->rope_theta);

    // GPT-2 style init: N(0, 0.02), residual output projections scaled by 1/sqrt(2 L), gains 1.
    pl_rng rng = pl_rng_state(opt->seed * 0x2545F4914F6CDD1DULL + 17);
    float out_std = 0.02f / sqrtf(2.0f * t->L);
    for (int i = 0; i < t->n_tensors; i++) {
        param_tensor *p = &t->tensors[i];
        float std = 0.02f;
        for (int l = 0; l < t->L; l++)
            if (p->offset == t->lo[l].wo || p->offset == t->lo[l].w_down) std = out_std;
        for (size_t j = 0; j < p->n; j++) t->params[p->offset + j] = p->decay ? std * init_normal(&rng) : 1.0f;
    }
    *out = t;
    return 0;
oom:
    pl_trainer_free(t);
    return pl_fail("train: out of memory");
}

static void free_acts(pl_trainer *t) {
    for (int l = 0; l < t->L && t->acts; l++) {
        layer_acts *a = &t->acts[l];
        float **bufs[] = {&a->resid_in, &a->ln1, &a->rstd1, &a->q, &a->k, &a->v, &a->att, &a->z, &a->resid_mid,
                          &a->ln2, &a->rstd2, &a->gate, &a->up, &a->act};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]), *bufs[i] = NULL;
    }
    float **bufs[] = {&t->resid_final, &t->lnf, &t->rstdf, &t->logits, &t->probs, &t->losses, &t->dres,
                      &t->dln, &t->dz, &t->dq, &t->dk, &t->dv, &t->dq_pre, &t->dk_pre, &t->dact, &t->dgate,
                      &t->dup, &t->tmp, &t->att_scratch, &t->weights};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]), *bufs[i] = NULL;
    free(t->ids), free(t->targets), free(t->pos);
    t->ids = t->targets = t->pos = NULL;
    t->cap_tokens = 0;
    t->cap_att = t->cap_scratch = 0;
}

void pl_trainer_free(pl_trainer *t) {
    if (!t) return;
    free_acts(t);
    free(t->acts);
    free(t->seq_start);
    free(t->params), free(t->grads), free(t->m), free(t->v);
    free(t->rope_cos), free(t->rope_sin);
    free(t->lo), free(t->tensors);
    free(t);
}

// Make every activation buffer hold N positions and the current sequences' attention patterns.
static int ensure_capacity(pl_trainer *t, int N) {
    size_t att = pl_attention_att_size(t->seq_start, t->n_seq, t->H);
    size_t scratch = pl_attention_scratch_size(t->seq_start, t->n_seq);
    if (N <= t->cap_tokens && att <= t->cap_att && scratch <= t->cap_scratch) return 0;
    int cap = N > t->cap_tokens ? N + N / 4 : t->cap_tokens;
    size_t cap_att = att > t->cap_att ? att + att / 4 : t->cap_att;
    size_t cap_scratch = scratch > t->cap_scratch ? scratch : t->cap_scratch;
    free_acts(t);
    size_t n = (size_t)cap, d = (size_t)t->d, qd = (size_t)t->qd, kd = (size_t)t->kd, f = (size_t)t->f;
    size_t V = (size_t)t->V;
    int ok = 1;
#define ALLOC(p, count) ok &= ((p) = malloc(sizeof(float) * (count))) != NULL
    for (int l = 0; l < t->L; l++) {
        layer_acts *a = &t->acts[l];
        ALLOC(a->resid_in, n * d);
        ALLOC(a->ln1, n * d);
        ALLOC(a->rstd1, n);
        ALLOC(a->q, n * qd);
        ALLOC(a->k, n * kd);
        ALLOC(a->v, n * kd);
        ALLOC(a->att, cap_att);
        ALLOC(a->z, n * qd);
        ALLOC(a->resid_mid, n * d);
        ALLOC(a->ln2, n * d);
        ALLOC(a->rstd2, n);
        ALLOC(a->gate, n * f);
        ALLOC(a->up, n * f);
        ALLOC(a->act, n * f);
    }
    ALLOC(t->resid_final, n * d);
    ALLOC(t->lnf, n * d);
    ALLOC(t->rstdf, n);
    ALLOC(t->logits, n * V);
    ALLOC(t->probs, n * V);
    ALLOC(t->losses, n);
    ALLOC(t->dres, n * d);
    ALLOC(t->dln, n * d);
    ALLOC(t->dz, n * qd);
    ALLOC(t->dq, n * qd);
    ALLOC(t->dk, n * kd);
    ALLOC(t->dv, n * kd);
    ALLOC(t->dq_pre, n * qd);
    ALLOC(t->dk_pre, n * kd);
    ALLOC(t->dact, n * f);
    ALLOC(t->dgate, n * f);
    ALLOC(t->dup, n * f);
    ALLOC(t->tmp, n * d);
    ALLOC(t->att_scratch, cap_scratch);
    ALLOC(t->weights, n);
#undef ALLOC
    ok &= (t->ids = malloc(sizeof(int32_t) * n)) != NULL;
    ok &= (t->targets = malloc(sizeof(int32_t) * n)) != NULL;
    ok &= (t->pos = malloc(sizeof(int32_t) * n)) != NULL;
    if (!ok) {
        free_acts(t);
        return pl_fail("train: out of memory for %d positions", N);
    }
    t->cap_tokens = cap;
    t->cap_att = cap_att;
    t->cap_scratch = cap_scratch;
    return 0;
}

static int ensure_seqs(pl_trainer *t, int n_seq) {
    if (n_seq + 1 <= t->cap_seq) return 0;
    int *s = realloc(t->seq_start, sizeof(int) * (size_t)(n_seq + 1));
    if (!s) return pl_fail("train: out of memory");
    t->seq_start = s;
    t->cap_seq = n_seq + 1;
    return 0;
}

// Pack texts into the batch: inputs <s> text[0..T-2], targets text[0..T-1], loss on targets past
// the prompt, T capped at the context length. Positions restart at 0 in every sequence.
static int load_batch(pl_trainer *t, const pl_train_text *texts, int n_texts) {
    if (ensure_seqs(t, n_texts)) return -1;
    int N = 0;
    t->n_seq = n_texts;
    t->seq_start[0] = 0;
    for (int s = 0; s < n_texts; s++) {
        size_t len = strlen(texts[s].text);
        int T = len > (size_t)t->ctx ? t->ctx : (int)len;
        if (T < 1) return pl_fail("train: empty training text (example %d)", s);
        N += T;
        t->seq_start[s + 1] = N;
    }
    t->N = N;
    if (ensure_capacity(t, N)) return -1;
    int n_pred = 0;
    for (int s = 0; s < n_texts; s++) {
        const unsigned char *text = (const unsigned char *)texts[s].text;
        int p0 = t->seq_start[s], T = t->seq_start[s + 1] - p0;
        for (int i = 0; i < T; i++) {
            t->ids[p0 + i] = i == 0 ? PL_TASK_BOS : pl_task_vocab_byte_id(text[i - 1]);
            t->targets[p0 + i] = pl_task_vocab_byte_id(text[i]);
            t->pos[p0 + i] = i;
            t->weights[p0 + i] = (size_t)i >= texts[s].prompt_len ? 1.0f : 0.0f;
            n_pred += (size_t)i >= texts[s].prompt_len;
        }
    }
    float w = n_pred > 0 ? 1.0f / (float)n_pred : 0.0f;
    for (int i = 0; i < N; i++) t->weights[i] *= w;
    return n_pred;
}

// ------------------------------------------------------------------------- forward / backward

static void forward(pl_trainer *t) {
    int N = t->N, d = t->d, qd = t->qd, kd = t->kd, f = t->f;
    const float *P = t->params;
    float *x = t->L > 0 ? t->acts[0].resid_in : t->resid_final;
    pl_embedding_forward(x, t->ids, P + t->off_embd, N, d);
    for (int l = 0; l < t->L; l++) {
        const layer_offsets *o = &t->lo[l];
        layer_acts *a = &t->acts[l];
        float *out = l + 1 < t->L ? t->acts[l + 1].resid_in : t->resid_final;
        pl_rmsnorm_forward(a->ln1, a->rstd1, a->resid_in, P + o->attn_norm, N, d, t->opt.norm_eps);
        pl_linear_forward(a->q, a->ln1, P + o->wq, NULL, N, d, qd);
        pl_linear_forward(a->k, a->ln1, P + o->wk, NULL, N, d, kd);
        pl_linear_forward(a->v, a->ln1, P + o->wv, NULL, N, d, kd);
        pl_rope_forward(a->q, a->q, t->pos, t->rope_cos, t->rope_sin, N, t->H, t->hd);
        pl_rope_forward(a->k, a->k, t->pos, t->rope_cos, t->rope_sin, N, t->Hkv, t->hd);
        pl_attention_forward(a->z, a->att, a->q, a->k, a->v, t->seq_start, t->n_seq, t->H, t->Hkv, t->hd);
        pl_linear_forward(t->tmp, a->z, P + o->wo, NULL, N, qd, d);
        pl_residual_forward(a->resid_mid, a->resid_in, t->tmp, (size_t)N * d);
        pl_rmsnorm_forward(a->ln2, a->rstd2, a->resid_mid, P + o->ffn_norm, N, d, t->opt.norm_eps);
        pl_linear_forward(a->gate, a->ln2, P + o->w_gate, NULL, N, d, f);
        pl_linear_forward(a->up, a->ln2, P + o->w_up, NULL, N, d, f);
        pl_swiglu_forward(a->act, a->gate, a->up, (size_t)N * f);
        pl_linear_forward(t->tmp, a->act, P + o->w_down, NULL, N, f, d);
        pl_residual_forward(out, a->resid_mid, t->tmp, (size_t)N * d);
    }
    pl_rmsnorm_forward(t->lnf, t->rstdf, t->resid_final, P + t->off_out_norm, N, d, t->opt.norm_eps);
    pl_linear_forward(t->logits, t->lnf, P + t->off_embd, NULL, N, d, t->V);  // tied unembedding
}

#define ZERO(p, n) memset((p), 0, sizeof(float) * (size_t)(n))

// Gradients of the loss of the last forward pass, accumulated into t->grads.
static void backward(pl_trainer *t) {
    int N = t->N, d = t->d, qd = t->qd, kd = t->kd, f = t->f, V = t->V;
    const float *P = t->params;
    float *G = t->grads;
    float *dlogits = t->logits;  // the logits are not needed any more
    pl_crossentropy_backward(dlogits, t->probs, t->targets, t->weights, N, V);
    ZERO(t->dln, N * d);
    pl_linear_backward(t->dln, G + t->off_embd, NULL, dlogits, t->lnf, P + t->off_embd, N, d, V);
    ZERO(t->dres, N * d);  // dres: gradient of the residual stream, flowing down
    pl_rmsnorm_backward(t->dres, G + t->off_out_norm, t->dln, t->resid_final, P + t->off_out_norm, t->rstdf, N, d);
    for (int l = t->L - 1; l >= 0; l--) {
        const layer_offsets *o = &t->lo[l];
        layer_acts *a = &t->acts[l];
        // MLP: out = resid_mid + W_down (silu(W_gate ln2) * W_up ln2); dres passes straight to resid_mid.
        ZERO(t->dact, N * f);
        pl_linear_backward(t->dact, G + o->w_down, NULL, t->dres, a->act, P + o->w_down, N, f, d);
        ZERO(t->dgate, N * f);
        ZERO(t->dup, N * f);
        pl_swiglu_backward(t->dgate, t->dup, t->dact, a->gate, a->up, (size_t)N * f);
        ZERO(t->dln, N * d);
        pl_linear_backward(t->dln, G + o->w_gate, NULL, t->dgate, a->ln2, P + o->w_gate, N, d, f);
        pl_linear_backward(t->dln, G + o->w_up, NULL, t->dup, a->ln2, P + o->w_up, N, d, f);
        pl_rmsnorm_backward(t->dres, G + o->ffn_norm, t->dln, a->resid_mid, P + o->ffn_norm, a->rstd2, N, d);
        // attention: resid_mid = resid_in + W_O z
        ZERO(t->dz, N * qd);
        pl_linear_backward(t->dz, G + o->wo, NULL, t->dres, a->z, P + o->wo, N, qd, d);
        ZERO(t->dq, N * qd);
        ZERO(t->dk, N * kd);
        ZERO(t->dv, N * kd);
        pl_attention_backward(t->dq, t->dk, t->dv, t->att_scratch, t->dz, a->q, a->k, a->v, a->att, t->seq_start,
                           t->n_seq, t->H, t->Hkv, t->hd);
        ZERO(t->dq_pre, N * qd);
        ZERO(t->dk_pre, N * kd);
        pl_rope_backward(t->dq_pre, t->dq, t->pos, t->rope_cos, t->rope_sin, N, t->H, t->hd);
        pl_rope_backward(t->dk_pre, t->dk, t->pos, t->rope_cos, t->rope_sin, N, t->Hkv, t->hd);
        ZERO(t->dln, N * d);
        pl_linear_backward(t->dln, G + o->wq, NULL, t->dq_pre, a->ln1, P + o->wq, N, d, qd);
        pl_linear_backward(t->dln, G + o->wk, NULL, t->dk_pre, a->ln1, P + o->wk, N, d, kd);
        pl_linear_backward(t->dln, G + o->wv, NULL, t->dv, a->ln1, P + o->wv, N, d, kd);
        pl_rmsnorm_backward(t->dres, G + o->attn_norm, t->dln, a->resid_in, P + o->attn_norm, a->rstd1, N, d);
    }
    pl_embedding_backward(G + t->off_embd, t->dres, t->ids, N, d);
}

// ------------------------------------------------------------------------------- optimisation

static float lr_at(const pl_train_options *o, int step) {
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    double span = o->steps > o->warmup ? (double)(o->steps - o->warmup) : 1.0;
    double progress = (step - o->warmup) / span;
    if (progress > 1) progress = 1;
    double min_lr = (double)o->lr * o->min_lr_frac;
    return (float)(min_lr + 0.5 * (o->lr - min_lr) * (1.0 + cos(3.141592653589793 * progress)));
}

// The example stream of step s: seed mixed with s, so the batch does not depend on history.
static uint64_t step_seed(uint64_t seed, int step) {
    pl_rng r = pl_rng_state(seed ^ ((uint64_t)step * PL_RNG_GOLDEN));
    return pl_rng_next(&r);
}

static void free_texts(pl_train_text *texts, int n) {
    for (int i = 0; i < n; i++) free(texts[i].text);
    free(texts);
}

int pl_trainer_step(pl_trainer *t, const pl_train_source *src, pl_train_stats *stats) {
    const pl_train_options *o = &t->opt;
    pl_train_text *texts = calloc((size_t)o->batch, sizeof *texts);
    if (!texts) return pl_fail("train: out of memory");
    uint64_t seed = step_seed(o->seed, t->step);
    for (int i = 0; i < o->batch; i++)
        if (src->next(src->user, seed, (uint64_t)i, &texts[i])) {
            free_texts(texts, o->batch);
            return -1;
        }
    int n_pred = load_batch(t, texts, o->batch);
    free_texts(texts, o->batch);
    if (n_pred < 0) return -1;

    ZERO(t->grads, t->n_params);
    forward(t);
    double loss = pl_crossentropy_forward(t->losses, t->probs, t->logits, t->targets, t->weights, t->N, t->V);
    backward(t);

    double norm2 = 0;
    for (size_t i = 0; i < t->n_params; i++) norm2 += (double)t->grads[i] * t->grads[i];
    double norm = sqrt(norm2);
    float clip = (o->grad_clip > 0 && norm > o->grad_clip) ? (float)(o->grad_clip / norm) : 1.0f;
    float lr = lr_at(o, t->step);
    // AdamW with bias correction; decoupled weight decay on matrices only.
    int step1 = t->step + 1;
    float bc1 = 1.0f - powf(o->beta1, (float)step1), bc2 = 1.0f - powf(o->beta2, (float)step1);
    for (int ti = 0; ti < t->n_tensors; ti++) {
        const param_tensor *p = &t->tensors[ti];
        float wd = p->decay ? o->weight_decay : 0.0f;
        for (size_t j = p->offset; j < p->offset + p->n; j++) {
            float g = t->grads[j] * clip;
            t->m[j] = o->beta1 * t->m[j] + (1.0f - o->beta1) * g;
            t->v[j] = o->beta2 * t->v[j] + (1.0f - o->beta2) * g * g;
            float mhat = t->m[j] / bc1, vhat = t->v[j] / bc2;
            t->params[j] -= lr * (mhat / (sqrtf(vhat) + 1e-8f) + wd * t->params[j]);
        }
    }
    t->step++;
    if (stats) {
        stats->step = t->step;
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->n_tokens = t->N;
        stats->n_predicted = n_pred;
    }
    return 0;
}

int pl_trainer_step_count(const pl_trainer *t) { return t->step; }

const float *pl_trainer_params(const pl_trainer *t, size_t *n) {
    if (n) *n = t->n_params;
    return t->params;
}

int pl_trainer_vocab_size(const pl_trainer *t) { return t->V; }

int pl_trainer_logits(pl_trainer *t, const int32_t *ids, int n, float *logits) {
    if (n < 1 || n > t->ctx) return pl_fail("train: %d tokens (1..%d allowed)", n, t->ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->V) return pl_fail("train: token id %d out of range", ids[i]);
    if (ensure_seqs(t, 1)) return -1;
    t->n_seq = 1;
    t->seq_start[0] = 0;
    t->seq_start[1] = n;
    t->N = n;
    if (ensure_capacity(t, n)) return -1;
    for (int i = 0; i < n; i++) t->ids[i] = ids[i], t->pos[i] = i;
    forward(t);
    memcpy(logits, t->logits, sizeof(float) * (size_t)n * t->V);
    return 0;
}

int pl_trainer_eval_loss(pl_trainer *t, const pl_train_text *texts, int n_texts, double *loss) {
    int n_pred = load_batch(t, texts, n_texts);
    if (n_pred < 0) return -1;
    forward(t);
    *loss = pl_crossentropy_forward(t->losses, t->probs, t->logits, t->targets, t->weights, t->N, t->V);
    return 0;
}

// -------------------------------------------------------------------------------- checkpoints

#define CKPT_MAGIC "PLTRAIN1"

typedef struct {
    char magic[8];
    int32_t d_model, n_layers, n_heads, n_kv_heads, d_ff, context_length, vocab_size, step;
    uint64_t seed, n_params;
} ckpt_header;

int pl_trainer_save_checkpoint(const pl_trainer *t, const char *path) {
    ckpt_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.d_model = t->d, h.n_layers = t->L, h.n_heads = t->H, h.n_kv_heads = t->Hkv, h.d_ff = t->f;
    h.context_length = t->ctx, h.vocab_size = t->V, h.step = t->step;
    h.seed = t->opt.seed, h.n_params = t->n_params;
    // Write to a temporary name and rename, so a crash never leaves a half-written checkpoint.
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return pl_fail("%s: cannot open for writing", tmp);
    int ok = fwrite(&h, sizeof h, 1, fp) == 1;
    const float *arrays[] = {t->params, t->m, t->v};
    for (int i = 0; i < 3 && ok; i++) ok = fwrite(arrays[i], sizeof(float), t->n_params, fp) == t->n_params;
    if (fclose(fp) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return pl_fail("%s: write failed", path);
    }
    return 0;
}

int pl_trainer_load_checkpoint(pl_trainer *t, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pl_fail("%s: cannot open checkpoint", path);
    ckpt_header h;
    int rc = -1;
    if (fread(&h, sizeof h, 1, fp) != 1 || memcmp(h.magic, CKPT_MAGIC, 8) != 0) {
        pl_fail("%s: not a probelab training checkpoint", path);
        goto done;
    }
    if (h.d_model != t->d || h.n_layers != t->L || h.n_heads != t->H || h.n_kv_heads != t->Hkv || h.d_ff != t->f ||
        h.context_length != t->ctx || h.vocab_size != t->V || h.n_params != t->n_params) {
        pl_fail("%s: checkpoint is for d_model %d layers %d heads %d/%d ffn %d ctx %d, not this architecture", path,
                h.d_model, h.n_layers, h.n_heads, h.n_kv_heads, h.d_ff, h.context_length);
        goto done;
    }
    if (h.step < 0) {
        pl_fail("%s: bad step count %d", path, h.step);
        goto done;
    }
    float *arrays[] = {t->params, t->m, t->v};
    for (int i = 0; i < 3; i++)
        if (fread(arrays[i], sizeof(float), t->n_params, fp) != t->n_params) {
            pl_fail("%s: truncated checkpoint", path);
            goto done;
        }
    t->step = h.step;
    t->opt.seed = h.seed;  // the data stream belongs to the run being continued
    rc = 0;
done:
    fclose(fp);
    return rc;
}

// ------------------------------------------------------------------------------------ export

int pl_trainer_export_gguf(const pl_trainer *t, const char *path) {
    pl_gguf_writer *w = pl_gguf_writer_new();
    if (!w) return pl_fail("%s: out of memory", path);
    const pl_train_options *o = &t->opt;
    int rc = 0;
    rc |= pl_gguf_add_string(w, "general.architecture", "llama");
    rc |= pl_gguf_add_string(w, "general.name", o->model_name ? o->model_name : "probelab-cot");
    rc |= pl_gguf_add_u32(w, "general.file_type", 0);  // all F32
    rc |= pl_gguf_add_u32(w, "llama.context_length", (uint32_t)t->ctx);
    rc |= pl_gguf_add_u32(w, "llama.embedding_length", (uint32_t)t->d);
    rc |= pl_gguf_add_u32(w, "llama.block_count", (uint32_t)t->L);
    rc |= pl_gguf_add_u32(w, "llama.feed_forward_length", (uint32_t)t->f);
    rc |= pl_gguf_add_u32(w, "llama.attention.head_count", (uint32_t)t->H);
    rc |= pl_gguf_add_u32(w, "llama.attention.head_count_kv", (uint32_t)t->Hkv);
    rc |= pl_gguf_add_u32(w, "llama.rope.dimension_count", (uint32_t)t->hd);
    rc |= pl_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", o->norm_eps);
    rc |= pl_gguf_add_f32(w, "llama.rope.freq_base", o->rope_theta);
    rc |= pl_gguf_add_u32(w, "llama.vocab_size", (uint32_t)t->V);
    rc |= pl_gguf_add_string(w, "tokenizer.ggml.model", "llama");
    rc |= pl_gguf_add_string_array(w, "tokenizer.ggml.tokens", pl_task_vocab_tokens(), t->V);
    rc |= pl_gguf_add_f32_array(w, "tokenizer.ggml.scores", pl_task_vocab_scores(), t->V);
    rc |= pl_gguf_add_i32_array(w, "tokenizer.ggml.token_type", pl_task_vocab_types(), t->V);
    rc |= pl_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", PL_TASK_BOS);
    rc |= pl_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", PL_TASK_EOS);
    rc |= pl_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", PL_TASK_UNK);
    rc |= pl_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", false);
    rc |= pl_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    rc |= pl_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", false);

    // GGUF dims are innermost first: a weight [out × in] row-major has ne = {in, out}.
    const float *P = t->params;
    char name[96];
#define MAT(nm, off, in, out) \
    rc |= pl_gguf_add_tensor_f32(w, nm, P + (off), 2, (int64_t[]){(int64_t)(in), (int64_t)(out)})
#define VEC(nm, off, n) rc |= pl_gguf_add_tensor_f32(w, nm, P + (off), 1, (int64_t[]){(int64_t)(n)})
    MAT("token_embd.weight", t->off_embd, t->d, t->V);
    for (int l = 0; l < t->L; l++) {
        const layer_offsets *lo = &t->lo[l];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), name)
        VEC(BLK("attn_norm.weight"), lo->attn_norm, t->d);
        MAT(BLK("attn_q.weight"), lo->wq, t->d, t->qd);
        MAT(BLK("attn_k.weight"), lo->wk, t->d, t->kd);
        MAT(BLK("attn_v.weight"), lo->wv, t->d, t->kd);
        MAT(BLK("attn_output.weight"), lo->wo, t->qd, t->d);
        VEC(BLK("ffn_norm.weight"), lo->ffn_norm, t->d);
        MAT(BLK("ffn_gate.weight"), lo->w_gate, t->d, t->f);
        MAT(BLK("ffn_up.weight"), lo->w_up, t->d, t->f);
        MAT(BLK("ffn_down.weight"), lo->w_down, t->f, t->d);
#undef BLK
    }
    VEC("output_norm.weight", t->off_out_norm, t->d);
#undef MAT
#undef VEC
    if (rc == 0) rc = pl_gguf_write_file(w, path);
    pl_gguf_writer_free(w);
    return rc ? -1 : 0;
}

// ------------------------------------------------------------------------------------ the run

int pl_train_run(const pl_train_options *opt, const pl_train_source *src, FILE *log) {
    pl_trainer *t = NULL;
    if (opt->threads > 0) openblas_set_num_threads(opt->threads);
    if (pl_trainer_new(opt, &t)) return -1;
    int rc = -1;
    if (opt->resume_path) {
        if (pl_trainer_load_checkpoint(t, opt->resume_path)) goto done;
        if (log) fprintf(log, "resumed from %s at step %d (seed %llu)\n", opt->resume_path, t->step,
                         (unsigned long long)t->opt.seed);
    }
    if (log)
        fprintf(log, "model: d_model %d, %d layers, %d heads (%d kv), ffn %d, ctx %d, vocab %d: %zu parameters\n",
                t->d, t->L, t->H, t->Hkv, t->f, t->ctx, t->V, t->n_params);
    double t0 = pl_now_sec(), t_last = t0;
    long tokens_since = 0;
    // --stop-at ends a run early at a reproducible point without changing its schedule.
    int last = opt->stop_at > 0 && opt->stop_at < opt->steps ? opt->stop_at : opt->steps;
    while (t->step < last) {
        pl_train_stats st;
        if (pl_trainer_step(t, src, &st)) goto done;
        tokens_since += st.n_tokens;
        if (log && (st.step == 1 || st.step % (opt->log_every > 0 ? opt->log_every : 50) == 0 ||
                    st.step == last)) {
            double now = pl_now_sec();
            fprintf(log, "step %5d/%d  loss %.4f  lr %.2e  grad-norm %.3f  %.0f tok/s  %.0fs\n", st.step, opt->steps,
                    st.loss, st.lr, st.grad_norm, tokens_since / (now - t_last), now - t0);
            fflush(log);
            t_last = now;
            tokens_since = 0;
        }
        if (opt->checkpoint_path && opt->checkpoint_every > 0 && st.step % opt->checkpoint_every == 0 &&
            pl_trainer_save_checkpoint(t, opt->checkpoint_path))
            goto done;
    }
    if (opt->checkpoint_path && pl_trainer_save_checkpoint(t, opt->checkpoint_path)) goto done;
    if (opt->out_path) {
        if (pl_trainer_export_gguf(t, opt->out_path)) goto done;
        if (log) fprintf(log, "wrote %s (%.1fs)\n", opt->out_path, pl_now_sec() - t0);
    }
    rc = 0;
done:
    pl_trainer_free(t);
    return rc;
}
