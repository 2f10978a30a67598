// Model lifetime: dispatch to the GGUF or Hugging Face loader, own mappings and converted buffers,
// and check the result is complete and consistent before anyone runs it.
#include "runtime/model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/base/error.h"
#include "runtime/base/sha256.h"
#include "runtime/tokenizer/tokenizer.h"

const pl_mapping *pl_model_map_file(pl_model *m, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        pl_fail_code(PL_ERR_IO, "%s: cannot open", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        pl_fail_code(PL_ERR_IO, "%s: not a regular file", path);
        return NULL;
    }
    void *data = NULL;
    if (st.st_size > 0) {
        data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            close(fd);
            pl_fail_code(PL_ERR_IO, "%s: cannot memory-map", path);
            return NULL;
        }
    }
    close(fd);
    m->mappings = realloc(m->mappings, (size_t)(m->n_mappings + 1) * sizeof *m->mappings);
    pl_mapping *mp = &m->mappings[m->n_mappings++];
    mp->data = data;
    mp->size = (size_t)st.st_size;
    snprintf(mp->path, sizeof mp->path, "%s", path);
    return mp;
}

float *pl_model_alloc(pl_model *m, size_t n) {
    if (n == 0 || n > SIZE_MAX / sizeof(float)) return NULL;
    float *p = malloc(n * sizeof(float));
    if (!p) return NULL;
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? m->cap_owned * 2 : 64;
        m->owned = realloc(m->owned, (size_t)m->cap_owned * sizeof *m->owned);
    }
    m->owned[m->n_owned++] = p;
    return p;
}

void pl_model_add_tensor_info(pl_model *m, const pl_tensor_info *info) {
    m->tensors = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *m->tensors);
    m->tensors[m->n_tensors++] = *info;
}

void pl_model_free(pl_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_mappings; i++)
        if (m->mappings[i].data) munmap(m->mappings[i].data, m->mappings[i].size);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->mappings);
    free(m->owned);
    free(m->tensors);
    free(m->weights.layers);
    pl_tokenizer_free(m->tokenizer);
    free(m);
}

int pl_model_validate_config(const pl_model *m) {
    const pl_config *c = &m->config;
    const char *f = m->path;
    if (c->d_model <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->d_ff <= 0 || c->vocab_size <= 0)
        return pl_fail_code(
            PL_ERR_FORMAT,
            "%s: config has a non-positive size (d_model %d, layers %d, heads %d, kv heads %d, head_dim %d, "
            "ffn %d, vocab %d)",
            f, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff, c->vocab_size);
    if (c->d_model > (1 << 20) || c->n_layers > 4096 || c->n_heads > 4096 || c->head_dim > 4096 || c->d_ff > (1 << 22))
        return pl_fail_code(PL_ERR_CORRUPT, "%s: config sizes are implausibly large", f);
    if (c->n_heads % c->n_kv_heads != 0)
        return pl_fail_code(PL_ERR_FORMAT, "%s: %d query heads is not a multiple of %d key/value heads", f, c->n_heads,
                            c->n_kv_heads);
    if (c->rope_style != PL_ROPE_NONE && c->head_dim % 2 != 0)
        return pl_fail_code(PL_ERR_FORMAT, "%s: RoPE needs an even head_dim, got %d", f, c->head_dim);
    if (c->context_length <= 0)
        return pl_fail_code(PL_ERR_FORMAT, "%s: context length %d is not positive", f, c->context_length);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return pl_fail_code(PL_ERR_FORMAT, "%s: norm epsilon and rope theta must be positive", f);
    return 0;
}

int pl_model_validate(const pl_model *m) {
    const pl_config *c = &m->config;
    const char *f = m->path;
    if (pl_model_validate_config(m) != 0) return -1;
    const pl_weights *w = &m->weights;
    if (!w->token_embd || !w->out_norm || !w->output)
        return pl_fail_code(PL_ERR_NOT_FOUND, "%s: missing embedding, final norm or output weights", f);
    if (c->arch == PL_ARCH_GPT2 && !w->pos_embd)
        return pl_fail_code(PL_ERR_FORMAT, "%s: gpt2 model without position embeddings", f);
    for (int l = 0; l < c->n_layers; l++) {
        const pl_layer_weights *L = &w->layers[l];
        if (!L->attn_norm || !L->wq || !L->wk || !L->wv || !L->wo || !L->ffn_norm || !L->w_up || !L->w_down)
            return pl_fail_code(PL_ERR_NOT_FOUND, "%s: block %d is missing attention or MLP weights", f, l);
        if (c->arch != PL_ARCH_GPT2 && !L->w_gate)
            return pl_fail_code(PL_ERR_NOT_FOUND, "%s: block %d has no MLP gate weights", f, l);
        if (c->qkv_bias && (!L->bq || !L->bk || !L->bv))
            return pl_fail_code(PL_ERR_NOT_FOUND, "%s: block %d is missing q/k/v biases", f, l);
        if (c->qk_norm && (!L->q_norm || !L->k_norm))
            return pl_fail_code(PL_ERR_NOT_FOUND, "%s: block %d is missing q/k norms", f, l);
    }
    if (m->tokenizer && pl_tokenizer_vocab_size(m->tokenizer) > c->vocab_size)
        return pl_fail_code(PL_ERR_FORMAT, "%s: tokenizer has %d tokens but the embedding only %d rows", f,
                            pl_tokenizer_vocab_size(m->tokenizer), c->vocab_size);
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int pl_model_open(pl_model **out, const char *path) {
    *out = NULL;
    pl_error_clear();
    struct stat st;
    if (stat(path, &st) != 0) return pl_fail_code(PL_ERR_NOT_FOUND, "%s: no such file or folder", path);
    pl_model *m = calloc(1, sizeof *m);
    if (!m) return pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc;
    if (S_ISDIR(st.st_mode)) {
        snprintf(m->format, sizeof m->format, "safetensors");
        rc = pl_load_hf_folder(path, m);
    } else if (ends_with(path, "config.json") || ends_with(path, ".safetensors") ||
               ends_with(path, ".safetensors.index.json")) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        snprintf(m->format, sizeof m->format, "safetensors");
        rc = pl_load_hf_folder(dir, m);
    } else {
        snprintf(m->format, sizeof m->format, "gguf");
        rc = pl_load_gguf(path, m);
    }
    if (rc == 0) rc = pl_model_validate(m);
    if (rc != 0) {
        pl_model_free(m);
        return pl_error_status();
    }
    *out = m;
    return PL_OK;
}

int pl_model_identify(const char *path, pl_model_identity *out) {
    memset(out, 0, sizeof *out);
    char *abs = realpath(path, NULL);
    if (!abs) return pl_fail("%s: no such file or folder (%s)", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (stat(abs, &st) != 0) {
        pl_fail("%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    bool folder = S_ISDIR(st.st_mode);
    if (!folder && (ends_with(abs, "/config.json") || ends_with(abs, ".safetensors") ||
                    ends_with(abs, ".safetensors.index.json"))) {
        *strrchr(abs, '/') = '\0';  // a file inside a Hugging Face folder: the folder is the model
        folder = true;
    }
    if (strlen(abs) >= sizeof out->path) {
        pl_fail("%s: path longer than %zu bytes", path, sizeof out->path - 1);
        goto done;
    }
    snprintf(out->path, sizeof out->path, "%s", abs);
    const char *slash = strrchr(abs, '/');
    snprintf(out->name, sizeof out->name, "%s", slash && slash[1] ? slash + 1 : abs);
    char file[1200];
    snprintf(file, sizeof file, "%s", abs);
    if (folder) {
        snprintf(file, sizeof file, "%s/model.safetensors", abs);
        if (access(file, R_OK) != 0) snprintf(file, sizeof file, "%s/config.json", abs);
    }
    rc = pl_sha256_file(out->sha256, file);
done:
    free(abs);
    return rc;
}

int64_t pl_model_n_params(const pl_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        int64_t k = 1;
        for (int d = 0; d < m->tensors[i].n_dims; d++) k *= m->tensors[i].shape[d];
        n += k;
    }
    return n;
}
