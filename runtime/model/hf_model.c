// Hugging Face model folders: config.json + model.safetensors (or shards listed in
// model.safetensors.index.json), optionally tokenizer.json. Supported model_type values:
//   llama, mistral  RMSNorm, SwiGLU, RoPE as HF applies it (NeoX half split), GQA
//   qwen2           the same plus q/k/v biases
//   qwen3           the same plus per-head RMSNorm on q and k (before RoPE), explicit head_dim
//   gpt2            LayerNorm with bias, learned positions, gelu_new; Conv1D weights stored
//                   [in, out] are transposed to [out, in], the fused c_attn is split into q/k/v
// Every weight is checked against the shape config.json implies before it is used.
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/tokenizer/tokenizer.h"

typedef struct {
    pl_model *m;
    char dir[1024];
    char source[1100];      // model.safetensors or the index: named when a tensor is missing
    pl_st_file *files;      // parsed shards
    char (*file_paths)[1100];
    int n_files;
    bool failed;            // set by the getters below; pl_errmsg holds the first problem
} hf_loader;

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// ---- config.json ----

static int cfg_int(json_t *cfg, const char *key, int fallback, bool required, const char *path, int *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        if (required) return pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing \"%s\"", path, key);
        *out = fallback;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return pl_fail_code(PL_ERR_FORMAT, "%s: \"%s\" is not a non-negative integer", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_float(json_t *cfg, const char *key, double fallback, const char *path, float *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = (float)fallback;
        return 0;
    }
    if (!json_is_number(v)) return pl_fail_code(PL_ERR_FORMAT, "%s: \"%s\" is not a number", path, key);
    *out = (float)json_number_value(v);
    return 0;
}

static bool cfg_bool(json_t *cfg, const char *key, bool fallback) {
    json_t *v = json_object_get(cfg, key);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

static const char *cfg_str(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

// Fill m->config from config.json. Sizes are checked against the tensors later.
static int parse_config(pl_config *c, json_t *cfg, const char *path) {
    const char *type = cfg_str(cfg, "model_type");
    if (!type) return pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing \"model_type\"", path);
    snprintf(c->arch_name, sizeof c->arch_name, "%s", type);
    if (strcmp(type, "gpt2") == 0) {
        c->arch = PL_ARCH_GPT2;
        c->rope_style = PL_ROPE_NONE;
        if (cfg_int(cfg, "n_embd", 0, true, path, &c->d_model) || cfg_int(cfg, "n_layer", 0, true, path, &c->n_layers) ||
            cfg_int(cfg, "n_head", 0, true, path, &c->n_heads) ||
            cfg_int(cfg, "n_positions", 1024, false, path, &c->context_length) ||
            cfg_int(cfg, "vocab_size", 0, true, path, &c->vocab_size))
            return -1;
        // n_inner defaults to 4 * n_embd: bound n_embd first so the product cannot overflow.
        if (c->d_model > (1 << 20))
            return pl_fail_code(PL_ERR_CORRUPT, "%s: n_embd %d is implausibly large (at most %d)", path, c->d_model,
                                1 << 20);
        if (cfg_int(cfg, "n_inner", 4 * c->d_model, false, path, &c->d_ff) ||
            cfg_float(cfg, "layer_norm_epsilon", 1e-5, path, &c->norm_eps))
            return -1;
        const char *act = cfg_str(cfg, "activation_function");
        if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
            return pl_fail_code(PL_ERR_FORMAT, "%s: activation_function \"%s\" is not supported (gelu_new only)", path,
                                act);
        if (cfg_bool(cfg, "scale_attn_by_inverse_layer_idx", false) || cfg_bool(cfg, "reorder_and_upcast_attn", false) ||
            !cfg_bool(cfg, "scale_attn_weights", true))
            return pl_fail_code(PL_ERR_FORMAT, "%s: non-standard GPT-2 attention scaling is not supported", path);
        c->n_kv_heads = c->n_heads;
        c->rope_theta = 10000.0f;  // unused (no RoPE); keeps the config valid
        c->qkv_bias = true;        // c_attn has a bias (as the GGUF loader marks it)
        c->tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
    } else if (strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0 || strcmp(type, "qwen2") == 0 ||
               strcmp(type, "qwen3") == 0) {
        c->arch = strcmp(type, "qwen2") == 0 ? PL_ARCH_QWEN2 : strcmp(type, "qwen3") == 0 ? PL_ARCH_QWEN3 : PL_ARCH_LLAMA;
        c->rope_style = PL_ROPE_NEOX;  // HF's rotate_half pairs (i, i + dh/2)
        c->qkv_bias = c->arch == PL_ARCH_QWEN2;
        c->qk_norm = c->arch == PL_ARCH_QWEN3;
        if (cfg_int(cfg, "hidden_size", 0, true, path, &c->d_model) ||
            cfg_int(cfg, "num_hidden_layers", 0, true, path, &c->n_layers) ||
            cfg_int(cfg, "num_attention_heads", 0, true, path, &c->n_heads) ||
            cfg_int(cfg, "intermediate_size", 0, true, path, &c->d_ff) ||
            cfg_int(cfg, "vocab_size", 0, true, path, &c->vocab_size) ||
            cfg_int(cfg, "max_position_embeddings", 2048, false, path, &c->context_length) ||
            cfg_float(cfg, "rms_norm_eps", 1e-6, path, &c->norm_eps) ||
            cfg_float(cfg, "rope_theta", 10000.0, path, &c->rope_theta))
            return -1;
        if (c->n_heads <= 0) return pl_fail_code(PL_ERR_FORMAT, "%s: num_attention_heads must be positive", path);
        if (cfg_int(cfg, "num_key_value_heads", c->n_heads, false, path, &c->n_kv_heads) ||
            cfg_int(cfg, "head_dim", c->d_model / c->n_heads, false, path, &c->head_dim))
            return -1;
        const char *act = cfg_str(cfg, "hidden_act");
        if (act && strcmp(act, "silu") != 0)
            return pl_fail_code(PL_ERR_FORMAT, "%s: hidden_act \"%s\" is not supported (silu only)", path, act);
        json_t *scaling = json_object_get(cfg, "rope_scaling");
        if (scaling && !json_is_null(scaling)) {
            const char *rt = cfg_str(scaling, "rope_type");
            if (!rt) rt = cfg_str(scaling, "type");
            if (!rt || strcmp(rt, "default") != 0)
                return pl_fail_code(PL_ERR_FORMAT, "%s: rope_scaling \"%s\" is not supported", path, rt ? rt : "?");
        }
        if (cfg_bool(cfg, "attention_bias", false) && c->arch != PL_ARCH_QWEN2)
            return pl_fail_code(PL_ERR_FORMAT, "%s: attention_bias is not supported for %s", path, type);
        if (cfg_bool(cfg, "mlp_bias", false)) return pl_fail_code(PL_ERR_FORMAT, "%s: mlp_bias is not supported", path);
        // A sliding window shorter than the context changes attention beyond it: cap the context
        // so that everything we compute is exact.
        int window = 0;
        bool sliding = strcmp(type, "mistral") == 0 || cfg_bool(cfg, "use_sliding_window", false);
        if (sliding && cfg_int(cfg, "sliding_window", 0, false, path, &window)) return -1;
        if (sliding && window > 0 && window < c->context_length) c->context_length = window;
        c->tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", false);
    } else {
        return pl_fail_code(
            PL_ERR_FORMAT, "%s: unknown model_type \"%s\" (supported: llama, mistral, qwen2, qwen3, gpt2)", path, type);
    }
    if (c->d_model <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->vocab_size <= 0 ||
        c->d_ff <= 0 || c->context_length <= 0)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: sizes must be positive", path);
    if (c->arch == PL_ARCH_GPT2) {
        if (c->d_model % c->n_heads)
            return pl_fail_code(PL_ERR_FORMAT, "%s: n_embd %d is not a multiple of n_head %d", path, c->d_model,
                                c->n_heads);
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->head_dim <= 0 || (c->rope_style != PL_ROPE_NONE && c->head_dim % 2))
        return pl_fail_code(PL_ERR_FORMAT, "%s: head_dim %d is not a positive even number", path, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return pl_fail_code(PL_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                            path, c->n_heads, c->n_kv_heads);
    // Bound the sizes so every product below fits comfortably in int64.
    if (c->d_model > (1 << 20) || c->d_ff > (1 << 22) || c->vocab_size > (1 << 24) || c->n_layers > 4096 ||
        c->n_heads > 4096 || c->head_dim > 65536 || c->context_length > (1 << 24))
        return pl_fail_code(PL_ERR_CORRUPT, "%s: implausibly large sizes", path);
    return 0;
}

// ---- tensors ----

static const pl_st_tensor *find_tensor(hf_loader *L, const char *name, const char **file) {
    for (int i = 0; i < L->n_files; i++) {
        const pl_st_tensor *t = pl_st_find(&L->files[i], name);
        if (t) {
            if (file) *file = L->file_paths[i];
            return t;
        }
    }
    return NULL;
}

static void format_shape(char *buf, size_t size, int n_dims, const int64_t *shape) {
    int k = snprintf(buf, size, "[");
    for (int i = 0; i < n_dims && k < (int)size; i++)
        k += snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < (int)size) snprintf(buf + k, size - k, "]");
}

// Look a tensor up and check its stored shape. NULL (and L->failed, unless optional) on failure.
static const pl_st_tensor *lookup(hf_loader *L, const char *name, int n_dims, const int64_t *shape, bool optional) {
    if (L->failed) return NULL;
    const char *file = NULL;
    const pl_st_tensor *t = find_tensor(L, name, &file);
    if (!t) {
        if (!optional) {
            pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing tensor %s", L->source, name);
            L->failed = true;
        }
        return NULL;
    }
    bool same = t->n_dims == n_dims;
    for (int i = 0; same && i < n_dims; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[96], want[96];
        format_shape(got, sizeof got, t->n_dims, t->shape);
        format_shape(want, sizeof want, n_dims, shape);
        pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s has shape %s but config.json implies %s", file, name, got, want);
        L->failed = true;
        return NULL;
    }
    return t;
}

// Elements [first, first + n) of t as float32: in place when F32 and aligned, else converted.
static float *elements(hf_loader *L, const pl_st_tensor *t, int64_t first, int64_t n) {
    const uint8_t *p = (const uint8_t *)t->data + (size_t)first * pl_st_dtype_size(t->dtype);
    if (t->dtype == PL_ST_F32 && ((uintptr_t)p % sizeof(float)) == 0) return (float *)p;  // zero copy (read-only)
    float *out = pl_model_alloc(L->m, (size_t)n);
    if (!out) {
        pl_fail_code(PL_ERR_NOMEM, "%s: out of memory converting %s", L->source, t->name);
        L->failed = true;
        return NULL;
    }
    pl_st_to_f32(out, t, first, n);
    return out;
}

// A vector of n floats, or a slice [first, first + n) of a longer stored vector of `total`.
static float *get_vector_slice(hf_loader *L, const char *name, int64_t total, int64_t first, int64_t n, bool optional) {
    int64_t shape[1] = {total};
    const pl_st_tensor *t = lookup(L, name, 1, shape, optional);
    return t ? elements(L, t, first, n) : NULL;
}

static float *get_vector(hf_loader *L, const char *name, int64_t n, bool optional) {
    return get_vector_slice(L, name, n, 0, n, optional);
}

// A [rows × cols] matrix stored as is (torch.nn.Linear layout).
static float *get_matrix(hf_loader *L, const char *name, int64_t rows, int64_t cols, bool optional) {
    int64_t shape[2] = {rows, cols};
    const pl_st_tensor *t = lookup(L, name, 2, shape, optional);
    return t ? elements(L, t, 0, rows * cols) : NULL;
}

// GPT-2 Conv1D: stored [in × total_out]; returns columns [col0, col0 + n_out) transposed to
// [n_out × in] (torch.nn.Linear layout).
static float *get_conv1d(hf_loader *L, const char *name, int64_t in, int64_t total_out, int64_t col0, int64_t n_out) {
    int64_t shape[2] = {in, total_out};
    const pl_st_tensor *t = lookup(L, name, 2, shape, false);
    if (!t) return NULL;
    float *out = pl_model_alloc(L->m, (size_t)(n_out * in));
    float *row = malloc((size_t)total_out * sizeof *row);
    if (!out || !row) {
        free(row);
        pl_fail_code(PL_ERR_NOMEM, "%s: out of memory converting %s", L->source, name);
        L->failed = true;
        return NULL;
    }
    for (int64_t i = 0; i < in; i++) {
        pl_st_to_f32(row, t, i * total_out, total_out);
        for (int64_t o = 0; o < n_out; o++) out[o * in + i] = row[col0 + o];
    }
    free(row);
    return out;
}

static void load_llama_like(hf_loader *L) {
    pl_config *c = &L->m->config;
    pl_weights *w = &L->m->weights;
    int64_t d = c->d_model, f = c->d_ff, V = c->vocab_size, q_dim = (int64_t)c->n_heads * c->head_dim,
            kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    char name[256];
    w->token_embd = get_matrix(L, "model.embed_tokens.weight", V, d, false);
    for (int l = 0; l < c->n_layers && !L->failed; l++) {
        pl_layer_weights *lw = &w->layers[l];
#define NAME(fmt) (snprintf(name, sizeof name, "model.layers.%d." fmt, l), name)
        lw->attn_norm = get_vector(L, NAME("input_layernorm.weight"), d, false);
        lw->wq = get_matrix(L, NAME("self_attn.q_proj.weight"), q_dim, d, false);
        lw->wk = get_matrix(L, NAME("self_attn.k_proj.weight"), kv_dim, d, false);
        lw->wv = get_matrix(L, NAME("self_attn.v_proj.weight"), kv_dim, d, false);
        if (c->qkv_bias) {
            lw->bq = get_vector(L, NAME("self_attn.q_proj.bias"), q_dim, false);
            lw->bk = get_vector(L, NAME("self_attn.k_proj.bias"), kv_dim, false);
            lw->bv = get_vector(L, NAME("self_attn.v_proj.bias"), kv_dim, false);
        }
        if (c->qk_norm) {
            lw->q_norm = get_vector(L, NAME("self_attn.q_norm.weight"), c->head_dim, false);
            lw->k_norm = get_vector(L, NAME("self_attn.k_norm.weight"), c->head_dim, false);
        }
        lw->wo = get_matrix(L, NAME("self_attn.o_proj.weight"), d, q_dim, false);
        lw->ffn_norm = get_vector(L, NAME("post_attention_layernorm.weight"), d, false);
        lw->w_gate = get_matrix(L, NAME("mlp.gate_proj.weight"), f, d, false);
        lw->w_up = get_matrix(L, NAME("mlp.up_proj.weight"), f, d, false);
        lw->w_down = get_matrix(L, NAME("mlp.down_proj.weight"), d, f, false);
#undef NAME
    }
    w->out_norm = get_vector(L, "model.norm.weight", d, false);
    w->output = c->tied_embeddings ? w->token_embd : get_matrix(L, "lm_head.weight", V, d, false);
}

static void load_gpt2(hf_loader *L) {
    pl_config *c = &L->m->config;
    pl_weights *w = &L->m->weights;
    int64_t d = c->d_model, f = c->d_ff, V = c->vocab_size;
    // GPT2LMHeadModel checkpoints prefix everything with "transformer."; GPT2Model ones do not.
    const char *prefix = find_tensor(L, "transformer.wte.weight", NULL) ? "transformer." : "";
    char name[256];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
    w->token_embd = get_matrix(L, NAME("%swte.weight", prefix), V, d, false);
    w->pos_embd = get_matrix(L, NAME("%swpe.weight", prefix), c->context_length, d, false);
    for (int l = 0; l < c->n_layers && !L->failed; l++) {
        pl_layer_weights *lw = &w->layers[l];
        lw->attn_norm = get_vector(L, NAME("%sh.%d.ln_1.weight", prefix, l), d, false);
        lw->attn_norm_b = get_vector(L, NAME("%sh.%d.ln_1.bias", prefix, l), d, false);
        // c_attn: [d, 3d], columns q | k | v
        NAME("%sh.%d.attn.c_attn.weight", prefix, l);
        lw->wq = get_conv1d(L, name, d, 3 * d, 0, d);
        lw->wk = get_conv1d(L, name, d, 3 * d, d, d);
        lw->wv = get_conv1d(L, name, d, 3 * d, 2 * d, d);
        NAME("%sh.%d.attn.c_attn.bias", prefix, l);
        lw->bq = get_vector_slice(L, name, 3 * d, 0, d, false);
        lw->bk = get_vector_slice(L, name, 3 * d, d, d, false);
        lw->bv = get_vector_slice(L, name, 3 * d, 2 * d, d, false);
        lw->wo = get_conv1d(L, NAME("%sh.%d.attn.c_proj.weight", prefix, l), d, d, 0, d);
        lw->bo = get_vector(L, NAME("%sh.%d.attn.c_proj.bias", prefix, l), d, false);
        lw->ffn_norm = get_vector(L, NAME("%sh.%d.ln_2.weight", prefix, l), d, false);
        lw->ffn_norm_b = get_vector(L, NAME("%sh.%d.ln_2.bias", prefix, l), d, false);
        lw->w_up = get_conv1d(L, NAME("%sh.%d.mlp.c_fc.weight", prefix, l), d, f, 0, f);
        lw->b_up = get_vector(L, NAME("%sh.%d.mlp.c_fc.bias", prefix, l), f, false);
        lw->w_down = get_conv1d(L, NAME("%sh.%d.mlp.c_proj.weight", prefix, l), f, d, 0, d);
        lw->b_down = get_vector(L, NAME("%sh.%d.mlp.c_proj.bias", prefix, l), d, false);
    }
    w->out_norm = get_vector(L, NAME("%sln_f.weight", prefix), d, false);
    w->out_norm_b = get_vector(L, NAME("%sln_f.bias", prefix), d, false);
#undef NAME
    // The head is tied to wte; a checkpoint may still carry an explicit copy.
    w->output = c->tied_embeddings ? NULL : get_matrix(L, "lm_head.weight", V, d, true);
    if (!w->output) w->output = w->token_embd;
    c->tied_embeddings = w->output == w->token_embd;
}

// ---- files ----

// Map and parse a shard once; *index receives its position in L->files.
static int add_shard(hf_loader *L, const char *path, int *index) {
    for (int i = 0; i < L->n_files; i++)
        if (strcmp(L->file_paths[i], path) == 0) {
            *index = i;
            return 0;
        }
    const pl_mapping *map = pl_model_map_file(L->m, path);
    if (!map) return -1;
    pl_st_file parsed;
    if (pl_st_parse(&parsed, map->data, map->size, path)) return -1;
    pl_st_file *files = realloc(L->files, (L->n_files + 1) * sizeof *files);
    char(*paths)[1100] = files ? realloc(L->file_paths, (L->n_files + 1) * sizeof *paths) : NULL;
    if (files) L->files = files;
    if (!files || !paths) {
        pl_st_file_free(&parsed);
        return pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
    }
    L->file_paths = paths;
    L->files[L->n_files] = parsed;
    snprintf(L->file_paths[L->n_files], sizeof L->file_paths[0], "%s", path);
    *index = L->n_files++;
    // Register every stored tensor for `probelab info`, as it is stored.
    for (int i = 0; i < parsed.n_tensors; i++) {
        const pl_st_tensor *t = &parsed.tensors[i];
        pl_tensor_info info = {0};
        snprintf(info.name, sizeof info.name, "%s", t->name);
        snprintf(info.dtype, sizeof info.dtype, "%s", pl_st_dtype_name(t->dtype));
        info.n_dims = t->n_dims;
        for (int k = 0; k < t->n_dims; k++) info.shape[k] = t->shape[k];
        info.offset = t->file_offset;
        info.n_bytes = t->n_bytes;
        pl_model_add_tensor_info(L->m, &info);
    }
    return 0;
}

// model.safetensors.index.json: {"weight_map": {"tensor name": "shard file name", ...}}
static int load_index(hf_loader *L, const char *index_path) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, 0, &jerr);
    if (!root) return pl_fail_code(PL_ERR_FORMAT, "%s:%d: %s", index_path, jerr.line, jerr.text);
    int rc = -1;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing or empty \"weight_map\"", index_path);
        goto done;
    }
    const char *tensor;
    json_t *file;
    json_object_foreach(map, tensor, file) {
        const char *shard = json_string_value(file);
        if (!shard || !shard[0] || strchr(shard, '/') || strcmp(shard, "..") == 0) {
            pl_fail_code(PL_ERR_FORMAT, "%s: weight_map entry for %s is not a file name in this folder", index_path,
                         tensor);
            goto done;
        }
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", L->dir, shard);
        int index;
        if (add_shard(L, path, &index)) goto done;
        if (!pl_st_find(&L->files[index], tensor)) {
            pl_fail_code(PL_ERR_FORMAT, "%s: weight_map puts %s in %s, which does not contain it", index_path, tensor,
                         shard);
            goto done;
        }
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

// Accept the folder itself or a file inside it (config.json, model.safetensors, the index).
static void folder_of(char *dir, size_t size, const char *path) {
    snprintf(dir, size, "%s", path);
    if (dir_exists(dir)) {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
        return;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, size, ".");
}

int pl_load_hf_folder(const char *path, pl_model *m) {
    hf_loader L = {.m = m};
    json_t *cfg = NULL;
    int rc = -1;
    folder_of(L.dir, sizeof L.dir, path);
    char config_path[1100], file_path[1100];
    snprintf(config_path, sizeof config_path, "%s/config.json", L.dir);
    if (!file_exists(config_path)) {
        pl_fail_code(PL_ERR_NOT_FOUND, "%s: no config.json in this folder", L.dir);
        goto done;
    }
    json_error_t jerr;
    cfg = json_load_file(config_path, 0, &jerr);
    if (!cfg) {
        pl_fail_code(PL_ERR_FORMAT, "%s:%d: %s", config_path, jerr.line, jerr.text);
        goto done;
    }
    if (!json_is_object(cfg)) {
        pl_fail_code(PL_ERR_FORMAT, "%s: not a JSON object", config_path);
        goto done;
    }
    if (parse_config(&m->config, cfg, config_path)) goto done;

    snprintf(file_path, sizeof file_path, "%s/model.safetensors.index.json", L.dir);
    if (file_exists(file_path)) {
        snprintf(L.source, sizeof L.source, "%s", file_path);
        if (load_index(&L, file_path)) goto done;
    } else {
        snprintf(file_path, sizeof file_path, "%s/model.safetensors", L.dir);
        if (!file_exists(file_path)) {
            pl_fail_code(PL_ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json", L.dir);
            goto done;
        }
        snprintf(L.source, sizeof L.source, "%s", file_path);
        int index;
        if (add_shard(&L, file_path, &index)) goto done;
    }

    m->weights.layers = calloc((size_t)m->config.n_layers, sizeof *m->weights.layers);
    if (!m->weights.layers) {
        pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", L.dir);
        goto done;
    }
    if (m->config.arch == PL_ARCH_GPT2) load_gpt2(&L);
    else load_llama_like(&L);
    if (L.failed) goto done;

    snprintf(file_path, sizeof file_path, "%s/tokenizer.json", L.dir);
    if (file_exists(file_path)) {
        // The weights are usable without it (--token-ids), so an unsupported tokenizer.json is
        // remembered for commands that need text, not a load failure.
        m->tokenizer = pl_tokenizer_load_hf_json(file_path);
        if (!m->tokenizer) snprintf(m->tokenizer_error, sizeof m->tokenizer_error, "%s", pl_errmsg());
    }
    if (!m->path[0]) snprintf(m->path, sizeof m->path, "%s", L.dir);
    snprintf(m->format, sizeof m->format, "safetensors");
    rc = 0;
done:
    for (int i = 0; i < L.n_files; i++) pl_st_file_free(&L.files[i]);
    free(L.files);
    free(L.file_paths);
    json_decref(cfg);
    return rc;
}
