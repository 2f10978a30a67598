// GGUF -> pl_model: the config from "<arch>.*" metadata, weights by llama.cpp's tensor names, and
// the tokenizer from "tokenizer.ggml.*". Architectures: llama (incl. Mistral-style GQA, q/k rows
// already permuted for adjacent-pair RoPE), qwen2 (q/k/v biases, NeoX RoPE), qwen3 (per-head q/k
// RMSNorm, explicit head_dim, NeoX RoPE), gpt2 (LayerNorm with bias, learned positions, fused qkv).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/model/gguf.h"
#include "runtime/model/model.h"
#include "runtime/tokenizer/tokenizer.h"

typedef struct {
    pl_model *m;
    pl_gguf *g;
} loader;

// Return float32 weights for tensor `name` with shape ne0 × ne1 (innermost first), converting
// non-F32 types into a model-owned buffer. Missing + optional -> NULL with *ok untouched.
static float *tensor(loader *L, const char *name, int64_t ne0, int64_t ne1, bool required, int *ok) {
    const pl_gguf_tensor *t = pl_gguf_find_tensor(L->g, name);
    if (!t) {
        if (required && *ok == 0) *ok = pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing tensor '%s'", L->g->path, name);
        return NULL;
    }
    uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if ((int64_t)t->ne[0] != ne0 || (int64_t)(n / t->ne[0]) != ne1) {
        if (*ok == 0)
            *ok = pl_fail_code(PL_ERR_CORRUPT,
                               "%s: tensor '%s' has shape [%llu, %llu], but the config implies [%lld, %lld]",
                               L->g->path, name, (unsigned long long)t->ne[0], (unsigned long long)(n / t->ne[0]),
                               (long long)ne0, (long long)ne1);
        return NULL;
    }
    const uint8_t *src = L->g->data + L->g->data_offset + t->offset;
    if (t->type == PL_GGML_F32 && ((uintptr_t)src % sizeof(float)) == 0) return (float *)src;  // zero copy
    float *dst = pl_model_alloc(L->m, n);
    if (!dst) {
        if (*ok == 0) *ok = pl_fail_code(PL_ERR_NOMEM, "%s: out of memory converting '%s'", L->g->path, name);
        return NULL;
    }
    switch (t->type) {
    case PL_GGML_F32: memcpy(dst, src, n * 4); break;
    case PL_GGML_F16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = pl_f16_to_f32(h);
        }
        break;
    case PL_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = pl_bf16_to_f32(h);
        }
        break;
    case PL_GGML_Q8_0: pl_dequant_q8_0(dst, src, n); break;
    case PL_GGML_Q4_0: pl_dequant_q4_0(dst, src, n); break;
    }
    return dst;
}

static int read_config(loader *L, const char *arch) {
    pl_config *c = &L->m->config;
    const char *f = L->g->path;
    char key[128];
    int64_t v;
    double d;
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);
    if (strcmp(arch, "llama") == 0) c->arch = PL_ARCH_LLAMA, c->rope_style = PL_ROPE_ADJACENT;
    else if (strcmp(arch, "qwen2") == 0) c->arch = PL_ARCH_QWEN2, c->rope_style = PL_ROPE_NEOX, c->qkv_bias = true;
    else if (strcmp(arch, "qwen3") == 0) c->arch = PL_ARCH_QWEN3, c->rope_style = PL_ROPE_NEOX, c->qk_norm = true;
    else if (strcmp(arch, "gpt2") == 0) c->arch = PL_ARCH_GPT2, c->rope_style = PL_ROPE_NONE;
    else
        return pl_fail_code(PL_ERR_FORMAT, "%s: unknown architecture '%s' (supported: llama, qwen2, qwen3, gpt2)", f,
                            arch);

#define REQUIRED_INT(field, suffix)                                                                                  \
    snprintf(key, sizeof key, "%s." suffix, arch);                                                                   \
    if (!pl_gguf_get_int(L->g, key, &v)) return pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing metadata '%s'", f, key); \
    if (v <= 0 || v > (1 << 24))                                                                                     \
        return pl_fail_code(PL_ERR_RANGE, "%s: metadata '%s' = %lld is out of range", f, key, (long long)v);         \
    c->field = (int)v;
    REQUIRED_INT(d_model, "embedding_length");
    REQUIRED_INT(n_layers, "block_count");
    REQUIRED_INT(d_ff, "feed_forward_length");
    REQUIRED_INT(n_heads, "attention.head_count");
    REQUIRED_INT(context_length, "context_length");
#undef REQUIRED_INT
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    c->n_kv_heads = pl_gguf_get_int(L->g, key, &v) ? (int)v : c->n_heads;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    c->head_dim = pl_gguf_get_int(L->g, key, &v) ? (int)v : c->d_model / c->n_heads;
    snprintf(key, sizeof key, "%s.attention.layer_norm_%s", arch, c->arch == PL_ARCH_GPT2 ? "epsilon" : "rms_epsilon");
    c->norm_eps = pl_gguf_get_float(L->g, key, &d) ? (float)d : 1e-5f;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    c->rope_theta = pl_gguf_get_float(L->g, key, &d) ? (float)d : 10000.0f;
    return 0;
}

static char **string_array(const pl_gguf *g, const char *key, uint64_t *n) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv || kv->type != PL_GGUF_ARRAY || kv->elem_type != PL_GGUF_STRING) return NULL;
    *n = kv->n_elems;
    return pl_gguf_string_array(g, kv);
}

// Copy a numeric array of the given element type, or NULL if absent / wrong type / wrong length.
static void *numeric_array(const pl_gguf *g, const char *key, uint32_t elem_type, uint64_t n) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv || kv->type != PL_GGUF_ARRAY || kv->elem_type != elem_type || kv->n_elems != n) return NULL;
    void *out = malloc(n * 4 + 4);
    memcpy(out, kv->value, n * 4);
    return out;
}

static int read_tokenizer(loader *L) {
    pl_gguf *g = L->g;
    char *model = pl_gguf_get_string(g, "tokenizer.ggml.model");
    if (!model) return 0;  // no tokenizer: commands that need one say so
    uint64_t n = 0, n_merges = 0;
    char **tokens = string_array(g, "tokenizer.ggml.tokens", &n);
    int rc = 0;
    if (!tokens || n == 0 || n > (1u << 24)) {
        rc = pl_fail_code(PL_ERR_NOT_FOUND, "%s: tokenizer.ggml.tokens is missing or empty", g->path);
        goto done;
    }
    int64_t bos = -1, eos = -1, unk = -1;
    pl_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos);
    pl_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos);
    pl_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &unk);
    if (bos >= (int64_t)n) bos = -1;  // 0xFFFFFFFF means "unset"
    if (eos >= (int64_t)n) eos = -1;
    if (unk >= (int64_t)n) unk = -1;
    int32_t *types = numeric_array(g, "tokenizer.ggml.token_type", PL_GGUF_I32, n);
    bool add_bos = true, add_space_prefix = true;
    if (strcmp(model, "llama") == 0) {
        float *scores = numeric_array(g, "tokenizer.ggml.scores", PL_GGUF_F32, n);
        pl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
        pl_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &add_space_prefix);
        L->m->tokenizer = pl_tokenizer_new_spm((int)n, (const char *const *)tokens, scores, types, (int32_t)bos,
                                               (int32_t)eos, (int32_t)unk, add_bos, add_space_prefix);
        free(scores);
    } else if (strcmp(model, "gpt2") == 0) {
        char **merges = string_array(g, "tokenizer.ggml.merges", &n_merges);
        char *pre = pl_gguf_get_string(g, "tokenizer.ggml.pre");
        add_bos = false;
        pl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
        if (!merges)
            rc = pl_fail_code(PL_ERR_FORMAT, "%s: byte-level BPE tokenizer without tokenizer.ggml.merges", g->path);
        else L->m->tokenizer = pl_tokenizer_new_bpe((int)n, (const char *const *)tokens, types, (int)n_merges,
                                                    (const char *const *)merges, pre ? pre : "gpt2", (int32_t)bos,
                                                    (int32_t)eos, add_bos);
        if (merges) {
            for (uint64_t i = 0; i < n_merges; i++) free(merges[i]);
            free(merges);
        }
        free(pre);
    } else {
        rc = pl_fail_code(PL_ERR_FORMAT, "%s: tokenizer model '%s' is not supported (llama, gpt2)", g->path, model);
    }
    if (rc == 0 && !L->m->tokenizer) {
        char why[512];  // pl_errmsg() is the buffer pl_fail writes: copy it out first
        snprintf(why, sizeof why, "%s", pl_errmsg());
        rc = pl_fail_code(PL_ERR_FORMAT, "%s: cannot build the %s tokenizer: %s", g->path, model, why);
    }
    free(types);
done:
    if (tokens) {
        for (uint64_t i = 0; i < n; i++) free(tokens[i]);
        free(tokens);
    }
    free(model);
    return rc;
}

int pl_load_gguf(const char *path, pl_model *m) {
    const pl_mapping *map = pl_model_map_file(m, path);
    if (!map) return -1;
    pl_gguf g;
    loader L = {m, &g};
    int ok = pl_gguf_parse(&g, path, map->data, map->size);
    char *arch = NULL;
    if (ok != 0) goto done;
    arch = pl_gguf_get_string(&g, "general.architecture");
    if (!arch) {
        ok = pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing metadata 'general.architecture'", path);
        goto done;
    }
    if ((ok = read_config(&L, arch)) != 0) goto done;
    pl_config *c = &m->config;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        pl_tensor_info info = {0};
        snprintf(info.name, sizeof info.name, "%s", g.tensors[i].name);
        snprintf(info.dtype, sizeof info.dtype, "%s", pl_ggml_type_name(g.tensors[i].type));
        info.n_dims = (int)g.tensors[i].n_dims;
        for (int d = 0; d < info.n_dims; d++) info.shape[d] = (int64_t)g.tensors[i].ne[info.n_dims - 1 - d];
        info.offset = g.data_offset + g.tensors[i].offset;
        info.n_bytes = g.tensors[i].n_bytes;
        pl_model_add_tensor_info(m, &info);
    }

    const pl_gguf_tensor *embd = pl_gguf_find_tensor(&g, "token_embd.weight");
    if (!embd) {
        ok = pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing tensor 'token_embd.weight'", path);
        goto done;
    }
    c->vocab_size = (int)(embd->n_dims >= 2 ? embd->ne[1] : 0);
    if ((ok = pl_model_validate_config(m)) != 0) goto done;
    int64_t d = c->d_model, f = c->d_ff, qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    pl_weights *w = &m->weights;
    w->token_embd = tensor(&L, "token_embd.weight", d, c->vocab_size, true, &ok);
    w->out_norm = tensor(&L, "output_norm.weight", d, 1, true, &ok);
    w->output = tensor(&L, "output.weight", d, c->vocab_size, false, &ok);
    c->tied_embeddings = w->output == NULL;
    if (!w->output) w->output = w->token_embd;
    bool gpt2 = c->arch == PL_ARCH_GPT2;
    if (gpt2) {
        w->pos_embd = tensor(&L, "position_embd.weight", d, c->context_length, true, &ok);
        w->out_norm_b = tensor(&L, "output_norm.bias", d, 1, true, &ok);
    }
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    char name[96];
#define T(field, suffix, ne0, ne1, req)                              \
    snprintf(name, sizeof name, "blk.%d." suffix, l);                \
    Lw->field = tensor(&L, name, ne0, ne1, req, &ok);
    for (int l = 0; l < c->n_layers && ok == 0; l++) {
        pl_layer_weights *Lw = &w->layers[l];
        T(attn_norm, "attn_norm.weight", d, 1, true);
        T(wo, "attn_output.weight", qd, d, true);
        T(ffn_norm, "ffn_norm.weight", d, 1, true);
        T(w_up, "ffn_up.weight", d, f, true);
        T(w_down, "ffn_down.weight", f, d, true);
        if (gpt2) {
            T(attn_norm_b, "attn_norm.bias", d, 1, true);
            T(bo, "attn_output.bias", d, 1, true);
            T(ffn_norm_b, "ffn_norm.bias", d, 1, true);
            T(b_up, "ffn_up.bias", f, 1, true);
            T(b_down, "ffn_down.bias", d, 1, true);
            snprintf(name, sizeof name, "blk.%d.attn_qkv.weight", l);
            if (pl_gguf_find_tensor(&g, name)) {
                // Fused [3d × d]: q, k, v are consecutive row blocks, so they are views into one buffer.
                float *qkv = tensor(&L, name, d, qd + 2 * kvd, true, &ok);
                snprintf(name, sizeof name, "blk.%d.attn_qkv.bias", l);
                float *qkv_b = tensor(&L, name, qd + 2 * kvd, 1, true, &ok);
                if (qkv && qkv_b) {
                    Lw->wq = qkv, Lw->wk = qkv + qd * d, Lw->wv = qkv + (qd + kvd) * d;
                    Lw->bq = qkv_b, Lw->bk = qkv_b + qd, Lw->bv = qkv_b + qd + kvd;
                }
                continue;
            }
            T(bq, "attn_q.bias", qd, 1, true);
            T(bk, "attn_k.bias", kvd, 1, true);
            T(bv, "attn_v.bias", kvd, 1, true);
        } else {
            T(w_gate, "ffn_gate.weight", d, f, true);
        }
        T(wq, "attn_q.weight", d, qd, true);
        T(wk, "attn_k.weight", d, kvd, true);
        T(wv, "attn_v.weight", d, kvd, true);
        if (c->qkv_bias) {
            T(bq, "attn_q.bias", qd, 1, true);
            T(bk, "attn_k.bias", kvd, 1, true);
            T(bv, "attn_v.bias", kvd, 1, true);
        }
        if (c->qk_norm) {
            T(q_norm, "attn_q_norm.weight", c->head_dim, 1, true);
            T(k_norm, "attn_k_norm.weight", c->head_dim, 1, true);
        }
    }
#undef T
    if (gpt2) c->qkv_bias = true;
    // The weights are usable without a tokenizer (--token-ids), so an unsupported one is remembered
    // for commands that need text, as the Hugging Face loader does, not a load failure.
    if (ok == 0 && read_tokenizer(&L) != 0) snprintf(m->tokenizer_error, sizeof m->tokenizer_error, "%s", pl_errmsg());
done:
    free(arch);
    pl_gguf_free(&g);
    return ok;
}
