// The forward pass. Reads top to bottom like the equations; every `HOOK(...)` line is a hook
// point named as TransformerLens names it (see docs/hooks.md), so this file is also the hook
// documentation. Activations are row-major [positions × features].
#include "runtime/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

struct pl_session {
    const pl_model *model;
    const pl_backend *be;
    const pl_hooks *hooks;
    int max_ctx;
    int chunk;        // most positions computed at once (bounds the attention buffer)
    int n_past;
    bool all_logits;
    // KV cache: (layer, max_ctx, n_kv_heads * head_dim), after RoPE
    float *k_cache, *v_cache;
    // activation buffers for one chunk (llama2.c's RunState)
    float *x;        // (chunk, d) residual stream
    float *xb;       // (chunk, d) normalized input of attention / MLP
    float *q;        // (chunk, H*dh)
    float *k, *v;    // (chunk, Hkv*dh)
    float *z;        // (chunk, H*dh)
    float *att;      // (H, chunk, max_ctx) scores, then pattern
    float *delta;    // (chunk, d) attention / MLP output
    float *hb, *hb2; // (chunk, f)
    float *logits;   // (chunk, V)
    float *long_logits;  // (n, V) when all logits of a call longer than one chunk are wanted
    size_t long_logits_cap;
};

static void *xcalloc(size_t n, size_t size, int *ok) {
    void *p = (n && size) ? calloc(n, size) : NULL;
    if (!p && *ok == 0)
        *ok = pl_fail_code(PL_ERR_NOMEM, "out of memory allocating session buffers (%zu × %zu bytes)", n, size);
    return p;
}

int pl_session_open(pl_session **out, const pl_model *m, int max_ctx) {
    *out = NULL;
    pl_error_clear();
    const pl_config *c = &m->config;
    if (max_ctx <= 0) max_ctx = c->context_length < 4096 ? c->context_length : 4096;
    if (max_ctx > c->context_length)
        return pl_fail_code(PL_ERR_RANGE,
                            "%s: %d tokens do not fit the model's context of %d (prompt longer than the context?)",
                            m->path, max_ctx, c->context_length);
    pl_session *s = calloc(1, sizeof *s);
    if (!s) return pl_fail_code(PL_ERR_NOMEM, "out of memory allocating a session");
    s->model = m;
    s->be = pl_backend_cpu();
    s->max_ctx = max_ctx;
    // Keep the attention buffer near 64 MB: H × chunk × max_ctx floats.
    size_t chunk = (16u << 20) / ((size_t)c->n_heads * (size_t)max_ctx);
    s->chunk = chunk < 16 ? 16 : chunk > 512 ? 512 : (int)chunk;
    if (s->chunk > max_ctx) s->chunk = max_ctx;
    size_t C = (size_t)s->chunk, d = (size_t)c->d_model, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, f = (size_t)c->d_ff;
    int ok = 0;
    s->k_cache = xcalloc((size_t)c->n_layers * max_ctx * kvd, sizeof(float), &ok);
    s->v_cache = xcalloc((size_t)c->n_layers * max_ctx * kvd, sizeof(float), &ok);
    s->x = xcalloc(C * d, sizeof(float), &ok);
    s->xb = xcalloc(C * d, sizeof(float), &ok);
    s->delta = xcalloc(C * d, sizeof(float), &ok);
    s->q = xcalloc(C * qd, sizeof(float), &ok);
    s->z = xcalloc(C * qd, sizeof(float), &ok);
    s->k = xcalloc(C * kvd, sizeof(float), &ok);
    s->v = xcalloc(C * kvd, sizeof(float), &ok);
    s->att = xcalloc((size_t)c->n_heads * C * max_ctx, sizeof(float), &ok);
    s->hb = xcalloc(C * f, sizeof(float), &ok);
    s->hb2 = xcalloc(C * f, sizeof(float), &ok);
    s->logits = xcalloc(C * (size_t)c->vocab_size, sizeof(float), &ok);
    if (ok != 0) {
        pl_session_free(s);
        return PL_ERR_NOMEM;
    }
    *out = s;
    return PL_OK;
}

void pl_session_free(pl_session *s) {
    if (!s) return;
    free(s->long_logits);
    float *bufs[] = {s->k_cache, s->v_cache, s->x, s->xb, s->delta, s->q, s->z, s->k, s->v, s->att, s->hb, s->hb2, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s);
}

void pl_session_reset(pl_session *s) { s->n_past = 0; }
void pl_session_set_hooks(pl_session *s, const pl_hooks *hooks) { s->hooks = hooks; }
void pl_session_want_all_logits(pl_session *s, bool all) { s->all_logits = all; }
bool pl_session_wants_all_logits(const pl_session *s) { return s->all_logits; }
int pl_session_n_past(const pl_session *s) { return s->n_past; }
int pl_session_max_ctx(const pl_session *s) { return s->max_ctx; }
const pl_model *pl_session_model(const pl_session *s) { return s->model; }

// Fire a position-major hook: data is [n × dims...].
static void hook_rows(pl_session *s, pl_hook_kind kind, int layer, float *data, int pos0, int n, int dim1, int dim2) {
    if (!pl_hooks_active(s->hooks, kind, layer)) return;
    pl_hook_event ev = {.kind = kind, .layer = layer, .pos0 = pos0, .n_pos = n, .n_ctx = pos0 + n, .data = data};
    ev.shape[0] = n;
    ev.shape[1] = dim1;
    ev.ndim = 2;
    ev.row_size = dim1;
    if (dim2 > 0) {
        ev.shape[2] = dim2;
        ev.ndim = 3;
        ev.row_size = dim1 * dim2;
    }
    pl_hooks_fire(s->hooks, &ev);
}

// Fire an attention hook: data is [H × n × n_ctx] with row stride max_ctx, compacted for the callback.
static void hook_attention(pl_session *s, pl_hook_kind kind, int layer, int pos0, int n) {
    if (!pl_hooks_active(s->hooks, kind, layer)) return;
    int H = s->model->config.n_heads, n_ctx = pos0 + n, stride = s->max_ctx;
    // Compact rows in place (stride max_ctx -> n_ctx): a callback sees a dense H × n × n_ctx array.
    for (size_t r = 0; r < (size_t)H * n; r++) memmove(s->att + r * n_ctx, s->att + r * stride, sizeof(float) * n_ctx);
    pl_hook_event ev = {.kind = kind, .layer = layer, .pos0 = pos0, .n_pos = n, .n_ctx = n_ctx, .data = s->att, .ndim = 3};
    ev.shape[0] = H;
    ev.shape[1] = n;
    ev.shape[2] = n_ctx;
    ev.row_size = n_ctx;
    pl_hooks_fire(s->hooks, &ev);
    for (size_t r = (size_t)H * n; r-- > 0;) memmove(s->att + r * stride, s->att + r * n_ctx, sizeof(float) * n_ctx);
}

static void norm(pl_session *s, float *out, const float *x, const float *w, const float *b, int n) {
    const pl_config *c = &s->model->config;
    if (c->arch == PL_ARCH_GPT2) s->be->layernorm(out, x, w, b, n, c->d_model, c->norm_eps);
    else s->be->rmsnorm(out, x, w, n, c->d_model, c->norm_eps);
}

// Attention of n queries at pos0.. over keys 0..pos0+n-1 of layer l: scores, pattern, z.
static void attention(pl_session *s, int l, int pos0, int n) {
    const pl_config *c = &s->model->config;
    int H = c->n_heads, Hkv = c->n_kv_heads, dh = c->head_dim, kvd = Hkv * dh;
    const float *kc = s->k_cache + (size_t)l * s->max_ctx * kvd, *vc = s->v_cache + (size_t)l * s->max_ctx * kvd;
    // att packs the heads as [H × n × max_ctx]
    s->be->attn_scores(s->att, s->max_ctx, s->q, kc, n, pos0, H, Hkv, dh);
    hook_attention(s, PL_HOOK_ATTN_SCORES, l, pos0, n);
    s->be->attn_softmax(s->att, s->max_ctx, n, pos0, H);
    hook_attention(s, PL_HOOK_PATTERN, l, pos0, n);
    s->be->attn_mix(s->z, s->att, s->max_ctx, vc, n, pos0, H, Hkv, dh);
}

static void forward_chunk(pl_session *s, const int32_t *tokens, int n, bool want_all) {
    const pl_model *m = s->model;
    const pl_config *c = &m->config;
    const pl_weights *w = &m->weights;
    const pl_backend *be = s->be;
    int d = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, dh = c->head_dim, f = c->d_ff, V = c->vocab_size;
    int qd = H * dh, kvd = Hkv * dh, pos0 = s->n_past;
    bool gpt2 = c->arch == PL_ARCH_GPT2;

    be->embed(s->x, w->token_embd, tokens, n, d);
    hook_rows(s, PL_HOOK_EMBED, -1, s->x, pos0, n, d, 0);
    if (gpt2) {
        be->copy(s->delta, w->pos_embd + (size_t)pos0 * d, (size_t)n * d);
        hook_rows(s, PL_HOOK_POS_EMBED, -1, s->delta, pos0, n, d, 0);
        be->add(s->x, s->delta, (size_t)n * d);
    }

    for (int l = 0; l < c->n_layers; l++) {
        const pl_layer_weights *L = &w->layers[l];
        hook_rows(s, PL_HOOK_RESID_PRE, l, s->x, pos0, n, d, 0);
        norm(s, s->xb, s->x, L->attn_norm, L->attn_norm_b, n);
        hook_rows(s, PL_HOOK_LN1_OUT, l, s->xb, pos0, n, d, 0);

        be->linear(s->q, s->xb, L->wq, L->bq, n, d, qd);
        be->linear(s->k, s->xb, L->wk, L->bk, n, d, kvd);
        be->linear(s->v, s->xb, L->wv, L->bv, n, d, kvd);
        hook_rows(s, PL_HOOK_Q, l, s->q, pos0, n, H, dh);
        hook_rows(s, PL_HOOK_K, l, s->k, pos0, n, Hkv, dh);
        hook_rows(s, PL_HOOK_V, l, s->v, pos0, n, Hkv, dh);
        if (c->qk_norm) {  // qwen3: RMSNorm over each head's dh features, before RoPE
            be->rmsnorm(s->q, s->q, L->q_norm, n * H, dh, c->norm_eps);
            be->rmsnorm(s->k, s->k, L->k_norm, n * Hkv, dh, c->norm_eps);
        }
        if (c->rope_style != PL_ROPE_NONE) {
            int neox = c->rope_style == PL_ROPE_NEOX;
            be->rope(s->q, n, H, dh, pos0, c->rope_theta, neox);
            be->rope(s->k, n, Hkv, dh, pos0, c->rope_theta, neox);
            hook_rows(s, PL_HOOK_ROT_Q, l, s->q, pos0, n, H, dh);
            hook_rows(s, PL_HOOK_ROT_K, l, s->k, pos0, n, Hkv, dh);
        }
        float *kc = s->k_cache + ((size_t)l * s->max_ctx + pos0) * kvd;
        float *vc = s->v_cache + ((size_t)l * s->max_ctx + pos0) * kvd;
        be->copy(kc, s->k, (size_t)n * kvd);
        be->copy(vc, s->v, (size_t)n * kvd);

        attention(s, l, pos0, n);
        hook_rows(s, PL_HOOK_Z, l, s->z, pos0, n, H, dh);
        be->linear(s->delta, s->z, L->wo, L->bo, n, qd, d);
        hook_rows(s, PL_HOOK_ATTN_OUT, l, s->delta, pos0, n, d, 0);
        be->add(s->x, s->delta, (size_t)n * d);
        hook_rows(s, PL_HOOK_RESID_MID, l, s->x, pos0, n, d, 0);

        norm(s, s->xb, s->x, L->ffn_norm, L->ffn_norm_b, n);
        hook_rows(s, PL_HOOK_LN2_OUT, l, s->xb, pos0, n, d, 0);
        if (gpt2) {
            be->linear(s->hb, s->xb, L->w_up, L->b_up, n, d, f);
            hook_rows(s, PL_HOOK_MLP_PRE, l, s->hb, pos0, n, f, 0);
            be->gelu_new(s->hb, (size_t)n * f);
        } else {
            be->linear(s->hb, s->xb, L->w_gate, NULL, n, d, f);
            hook_rows(s, PL_HOOK_MLP_PRE, l, s->hb, pos0, n, f, 0);
            be->linear(s->hb2, s->xb, L->w_up, NULL, n, d, f);
            hook_rows(s, PL_HOOK_MLP_PRE_LINEAR, l, s->hb2, pos0, n, f, 0);
            be->swiglu(s->hb, s->hb, s->hb2, (size_t)n * f);
        }
        hook_rows(s, PL_HOOK_MLP_POST, l, s->hb, pos0, n, f, 0);
        be->linear(s->delta, s->hb, L->w_down, L->b_down, n, f, d);
        hook_rows(s, PL_HOOK_MLP_OUT, l, s->delta, pos0, n, d, 0);
        be->add(s->x, s->delta, (size_t)n * d);
        hook_rows(s, PL_HOOK_RESID_POST, l, s->x, pos0, n, d, 0);
    }

    norm(s, s->xb, s->x, w->out_norm, w->out_norm_b, n);
    hook_rows(s, PL_HOOK_LN_FINAL, -1, s->xb, pos0, n, d, 0);
    if (want_all || pl_hooks_active(s->hooks, PL_HOOK_LOGITS, -1)) {
        be->linear(s->logits, s->xb, w->output, NULL, n, d, V);
        hook_rows(s, PL_HOOK_LOGITS, -1, s->logits, pos0, n, V, 0);
        if (!want_all && n > 1) be->copy(s->logits, s->logits + (size_t)(n - 1) * V, (size_t)V);
    } else {
        be->linear(s->logits, s->xb + (size_t)(n - 1) * d, w->output, NULL, 1, d, V);
    }
    s->n_past += n;
}

int pl_forward(pl_session *s, const int32_t *tokens, int n, const float **logits) {
    const pl_config *c = &s->model->config;
    if (n <= 0) return pl_fail_code(PL_ERR_USAGE, "no tokens to run");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return pl_fail_code(PL_ERR_RANGE,
                                "token id %d (at position %d) is out of range: the vocabulary has %d tokens", tokens[i],
                                s->n_past + i, c->vocab_size);
    if (n > s->max_ctx - s->n_past)
        return pl_fail_code(PL_ERR_RANGE,
                            "%d tokens do not fit the context: %d already used of %d (prompt longer than the context?)",
                            n, s->n_past, s->max_ctx);
    // With all logits wanted, the caller gets [n × V]: run in chunks and keep each chunk's rows.
    size_t V = (size_t)c->vocab_size;
    bool gather = s->all_logits && n > s->chunk;
    if (gather && s->long_logits_cap < (size_t)n * V) {
        free(s->long_logits);
        s->long_logits_cap = (size_t)n * V;
        s->long_logits = malloc(s->long_logits_cap * sizeof(float));
        if (!s->long_logits) {
            s->long_logits_cap = 0;
            return pl_fail_code(PL_ERR_NOMEM, "out of memory for %d × %zu logits", n, V);
        }
    }
    for (int done = 0; done < n;) {
        int k = n - done < s->chunk ? n - done : s->chunk;
        forward_chunk(s, tokens + done, k, s->all_logits);
        if (gather) memcpy(s->long_logits + (size_t)done * V, s->logits, sizeof(float) * (size_t)k * V);
        done += k;
    }
    *logits = gather ? s->long_logits : s->logits;
    return 0;
}
