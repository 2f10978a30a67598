// A random-weight model built in memory (no file): for benchmarks and tests that need a model of
// a given shape. Weights ~ N(0, 0.02²), norms = 1, like a freshly initialised transformer.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/base/rng.h"
#include "runtime/model/model.h"

static float *random_tensor(pl_model *m, size_t n, float stddev, pl_rng *rng, const char *name, int64_t d0, int64_t d1) {
    float *p = pl_model_alloc(m, n);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = (float)(stddev * pl_rng_normal(rng));
    pl_tensor_info info = {.n_dims = d1 ? 2 : 1, .shape = {d1 ? d1 : d0, d1 ? d0 : 0}, .n_bytes = n * 4};
    snprintf(info.name, sizeof info.name, "%s", name);
    snprintf(info.dtype, sizeof info.dtype, "F32");
    pl_model_add_tensor_info(m, &info);
    return p;
}

static float *ones(pl_model *m, size_t n) {
    float *p = pl_model_alloc(m, n);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = 1.0f;
    return p;
}

int pl_model_random(const pl_config *cfg, uint64_t seed, pl_model **out) {
    *out = NULL;
    if (cfg->arch == PL_ARCH_GPT2) return pl_fail("random models: gpt2 is not supported, use a llama-style config");
    pl_model *m = calloc(1, sizeof *m);
    m->config = *cfg;
    snprintf(m->path, sizeof m->path, "<random %s seed %llu>", cfg->arch_name, (unsigned long long)seed);
    snprintf(m->format, sizeof m->format, "random");
    if (pl_model_validate_config(m) != 0) {
        pl_model_free(m);
        return -1;
    }
    pl_rng rng = pl_rng_state(seed);
    size_t d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff, qd = (size_t)cfg->n_heads * cfg->head_dim,
           kvd = (size_t)cfg->n_kv_heads * cfg->head_dim, V = (size_t)cfg->vocab_size;
    pl_weights *w = &m->weights;
    w->token_embd = random_tensor(m, V * d, 0.02f, &rng, "token_embd.weight", (int64_t)V, (int64_t)d);
    w->out_norm = ones(m, d);
    w->output = cfg->tied_embeddings ? w->token_embd : random_tensor(m, V * d, 0.02f, &rng, "output.weight", (int64_t)V, (int64_t)d);
    w->layers = calloc((size_t)cfg->n_layers, sizeof *w->layers);
    for (int l = 0; l < cfg->n_layers; l++) {
        pl_layer_weights *L = &w->layers[l];
        char name[64];
#define RT(field, rows, cols, label)                                                          \
        snprintf(name, sizeof name, "blk.%d." label, l);                                   \
        L->field = random_tensor(m, (rows) * (cols), 0.02f, &rng, name, (int64_t)(rows), (int64_t)(cols));
        RT(wq, qd, d, "attn_q.weight");
        RT(wk, kvd, d, "attn_k.weight");
        RT(wv, kvd, d, "attn_v.weight");
        RT(wo, d, qd, "attn_output.weight");
        RT(w_gate, f, d, "ffn_gate.weight");
        RT(w_up, f, d, "ffn_up.weight");
        RT(w_down, d, f, "ffn_down.weight");
#undef RT
        L->attn_norm = ones(m, d);
        L->ffn_norm = ones(m, d);
        if (cfg->qkv_bias) {
            L->bq = random_tensor(m, qd, 0.02f, &rng, "attn_q.bias", (int64_t)qd, 0);
            L->bk = random_tensor(m, kvd, 0.02f, &rng, "attn_k.bias", (int64_t)kvd, 0);
            L->bv = random_tensor(m, kvd, 0.02f, &rng, "attn_v.bias", (int64_t)kvd, 0);
        }
        if (cfg->qk_norm) {
            L->q_norm = ones(m, (size_t)cfg->head_dim);
            L->k_norm = ones(m, (size_t)cfg->head_dim);
        }
    }
    if (pl_model_validate(m) != 0) {
        pl_model_free(m);
        return pl_fail("random model: out of memory or invalid config");
    }
    *out = m;
    return 0;
}
