// A loaded model: its config (the blueprint), its weights (float32, [out × in] row-major like
// torch.nn.Linear) and its tokenizer. Loaded from a GGUF file or a Hugging Face folder.
//
// Memory: files are memory-mapped. F32 tensors whose layout already matches are used in place
// (zero copy); other dtypes (F16, BF16, Q8_0, Q4_0) and layouts that need a transpose are
// converted once at load into buffers the model owns. No tensor is ever held twice.
#ifndef PL_MODEL_H
#define PL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PL_ARCH_LLAMA, PL_ARCH_QWEN2, PL_ARCH_QWEN3, PL_ARCH_GPT2 } pl_arch;
typedef enum { PL_ROPE_NONE, PL_ROPE_ADJACENT, PL_ROPE_NEOX } pl_rope_style;

typedef struct {
    pl_arch arch;
    char arch_name[32];    // as the file names it: "llama", "mistral", "qwen2", "qwen3", "gpt2"
    int d_model;           // residual width d
    int n_layers;
    int n_heads;           // query heads H
    int n_kv_heads;        // key/value heads Hkv (GQA when < H)
    int head_dim;          // dh (may differ from d_model / n_heads, e.g. qwen3)
    int d_ff;              // MLP width f
    int vocab_size;
    int context_length;    // trained / maximum context
    float norm_eps;
    float rope_theta;
    pl_rope_style rope_style;  // ADJACENT for GGUF llama (q/k rows permuted), NEOX for HF and qwen
    bool qkv_bias;             // qwen2
    bool qk_norm;              // qwen3: RMSNorm per head on q and k before RoPE
    bool tied_embeddings;      // output == token_embd
} pl_config;

typedef struct {
    float *attn_norm, *attn_norm_b;  // (d) ; bias only for gpt2 LayerNorm
    float *wq;                       // (H*dh, d)
    float *wk, *wv;                  // (Hkv*dh, d)
    float *bq, *bk, *bv;             // (H*dh), (Hkv*dh) or NULL
    float *q_norm, *k_norm;          // (dh) or NULL (qwen3)
    float *wo;                       // (d, H*dh)
    float *bo;                       // (d) or NULL (gpt2)
    float *ffn_norm, *ffn_norm_b;    // (d)
    float *w_gate;                   // (f, d) or NULL for gpt2
    float *w_up;                     // (f, d): up projection (gpt2: c_fc)
    float *b_up;                     // (f) or NULL (gpt2)
    float *w_down;                   // (d, f)
    float *b_down;                   // (d) or NULL (gpt2)
} pl_layer_weights;

typedef struct {
    float *token_embd;               // (V, d)
    float *pos_embd;                 // (context, d) or NULL (gpt2 only)
    pl_layer_weights *layers;        // n_layers
    float *out_norm, *out_norm_b;    // (d)
    float *output;                   // (V, d); == token_embd when tied
} pl_weights;

// One row of `probelab info`'s tensor table.
typedef struct {
    char name[96];
    char dtype[8];   // "F32", "F16", "BF16", "Q8_0", "Q4_0"
    int n_dims;
    int64_t shape[4];  // as stored, outermost first
    uint64_t offset;   // byte offset in its file
    uint64_t n_bytes;
} pl_tensor_info;

typedef struct pl_tokenizer pl_tokenizer;

typedef struct pl_model {
    pl_config config;
    pl_weights weights;
    pl_tokenizer *tokenizer;   // NULL if the file has none (commands that need one say so)
    char tokenizer_error[512]; // why a tokenizer that is present could not be used ("" if none)
    char path[1024];           // the file or folder it came from
    char format[16];           // "gguf" or "safetensors"
    pl_tensor_info *tensors;
    int n_tensors;
    // Ownership: mapped files and converted buffers, released by pl_model_free.
    struct pl_mapping *mappings;
    int n_mappings;
    void **owned;
    int n_owned, cap_owned;
} pl_model;

// Load a model from a .gguf file or a Hugging Face folder (config.json + *.safetensors, or the
// path of the config.json / model.safetensors inside it). Returns PL_OK, or a pl_status
// (runtime/base/error.h: PL_ERR_NOT_FOUND, PL_ERR_IO, PL_ERR_FORMAT for an unsupported or foreign
// file, PL_ERR_CORRUPT for one that contradicts itself, PL_ERR_NOMEM) with pl_errmsg() naming the
// file and the problem. The caller owns *out and frees it with pl_model_free.
int pl_model_open(pl_model **out, const char *path);
void pl_model_free(pl_model *m);
// Build a random-weight llama/qwen-style model of the given config in memory (benchmarks, tests).
// cfg->arch_name, sizes, eps, theta and rope_style must be set. The caller owns *out.
int pl_model_random(const pl_config *cfg, uint64_t seed, pl_model **out);
// Number of parameters (embedding counted once when tied).
int64_t pl_model_n_params(const pl_model *m);

// Who a model on disk is, for the trace store and every command that reopens a traced model:
// its absolute path (a Hugging Face folder for a folder or a config.json / *.safetensors inside
// one) and a sha256: of the GGUF file; of a folder's model.safetensors, or its config.json when the
// weights are sharded. Two paths of one model give the same sha256.
typedef struct {
    char path[1024];   // absolute, symlinks resolved
    char name[128];    // the last component of path
    char sha256[65];   // hex
} pl_model_identity;
// Identify the model at `path` (as pl_model_open accepts it). Fails naming the path if it does not
// exist or cannot be read.
int pl_model_identify(const char *path, pl_model_identity *out);

// ---- for loaders (runtime/model/*.c) ----
typedef struct pl_mapping {
    void *data;
    size_t size;
    char path[1024];
} pl_mapping;
// Map a whole file read-only into m (kept until pl_model_free). Returns the mapping or NULL (pl_errmsg set).
const pl_mapping *pl_model_map_file(pl_model *m, const char *path);
// Allocate n floats owned by the model (freed with it). NULL on overflow / out of memory.
float *pl_model_alloc(pl_model *m, size_t n);
// Register a tensor in the info table.
void pl_model_add_tensor_info(pl_model *m, const pl_tensor_info *info);
// Check the config alone (positive, plausible sizes; heads divide): call before sizing tensors.
int pl_model_validate_config(const pl_model *m);
// Check that every weight the architecture needs is present and the config is consistent.
int pl_model_validate(const pl_model *m);

int pl_load_gguf(const char *path, pl_model *m);         // runtime/model/gguf_model.c
int pl_load_hf_folder(const char *dir, pl_model *m);     // runtime/model/hf_model.c

#endif
