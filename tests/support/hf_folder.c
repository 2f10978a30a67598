// test_write_hf_llama: see hf_folder.h.
#include "tests/support/hf_folder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "runtime/base/error.h"
#include "runtime/base/rng.h"

enum { VOCAB = 257, MAX_TENSORS = 4 + 9 * 64 };

typedef struct {
    char name[96];
    int64_t rows, cols;  // cols 0: a vector
    int is_norm;         // RMSNorm weights are ones
} tensor_spec;

// The GPT-2 byte-to-unicode map: byte b is written in tokenizer.json as code point cp[b].
static void byte_code_points(int cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp[b] = printable ? b : 256 + n++;
    }
}

static void utf8_of(int c, char out[5]) {
    if (c < 0x80) out[0] = (char)c, out[1] = 0;
    else if (c < 0x800) out[0] = (char)(0xc0 | c >> 6), out[1] = (char)(0x80 | (c & 63)), out[2] = 0;
    else out[0] = (char)(0xe0 | c >> 12), out[1] = (char)(0x80 | (c >> 6 & 63)), out[2] = (char)(0x80 | (c & 63)), out[3] = 0;
}

static int write_tokenizer(const char *dir) {
    int cp[256];
    byte_code_points(cp);
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char s[5];
        utf8_of(cp[b], s);
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_object_set_new(vocab, "<|endoftext|>", json_integer(256));
    json_t *root = json_pack("{s:{s:s, s:o, s:[]}, s:[{s:i, s:s, s:b}], s:{s:s, s:b, s:b, s:b}, s:{s:s}, s:n}", "model",
                             "type", "BPE", "vocab", vocab, "merges", "added_tokens", "id", 256, "content",
                             "<|endoftext|>", "special", 1, "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0,
                             "trim_offsets", 1, "use_regex", 1, "decoder", "type", "ByteLevel", "normalizer");
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = root && json_dump_file(root, path, JSON_COMPACT) == 0 ? 0 : pl_fail("%s: cannot write", path);
    json_decref(root);
    return rc;
}

static int write_config(const char *dir, int d, int n_layers) {
    json_t *c = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s, s:b}", "model_type", "llama", "hidden_size",
                          d, "num_hidden_layers", n_layers, "num_attention_heads", 2, "num_key_value_heads", 1,
                          "intermediate_size", 2 * d, "vocab_size", VOCAB, "max_position_embeddings", 256, "rms_norm_eps",
                          1e-5, "rope_theta", 10000.0, "hidden_act", "silu", "tie_word_embeddings", 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = c && json_dump_file(c, path, JSON_INDENT(1)) == 0 ? 0 : pl_fail("%s: cannot write", path);
    json_decref(c);
    return rc;
}

static int llama_tensors(tensor_spec *t, int d, int n_layers) {
    int n = 0, hd = d / 2, kv = hd, f = 2 * d;
#define T(r, c, norm, ...) (snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__), t[n].rows = r, t[n].cols = c, t[n].is_norm = norm, n++)
    T(VOCAB, d, 0, "model.embed_tokens.weight");
    for (int l = 0; l < n_layers; l++) {
        T(d, 0, 1, "model.layers.%d.input_layernorm.weight", l);
        T(d, d, 0, "model.layers.%d.self_attn.q_proj.weight", l);
        T(kv, d, 0, "model.layers.%d.self_attn.k_proj.weight", l);
        T(kv, d, 0, "model.layers.%d.self_attn.v_proj.weight", l);
        T(d, d, 0, "model.layers.%d.self_attn.o_proj.weight", l);
        T(d, 0, 1, "model.layers.%d.post_attention_layernorm.weight", l);
        T(f, d, 0, "model.layers.%d.mlp.gate_proj.weight", l);
        T(f, d, 0, "model.layers.%d.mlp.up_proj.weight", l);
        T(d, f, 0, "model.layers.%d.mlp.down_proj.weight", l);
    }
    T(d, 0, 1, "model.norm.weight");
    T(VOCAB, d, 0, "lm_head.weight");
#undef T
    return n;
}

static int write_weights(const char *dir, int d, int n_layers, uint64_t seed) {
    tensor_spec t[MAX_TENSORS];
    int n = llama_tensors(t, d, n_layers);
    json_t *header = json_object();
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t count = t[i].rows * (t[i].cols ? t[i].cols : 1);
        json_t *shape = t[i].cols ? json_pack("[I, I]", (json_int_t)t[i].rows, (json_int_t)t[i].cols)
                                  : json_pack("[I]", (json_int_t)t[i].rows);
        json_object_set_new(header, t[i].name, json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                                         "data_offsets", (json_int_t)off, (json_int_t)(off + 4 * count)));
        off += 4 * (uint64_t)count;
    }
    char *text = json_dumps(header, JSON_COMPACT);
    json_decref(header);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f || !text) {
        free(text);
        if (f) fclose(f);
        return pl_fail("%s: cannot write: %s", path, strerror(errno));
    }
    size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
    uint64_t len = padded;
    int bad = fwrite(&len, 8, 1, f) != 1 || fwrite(text, 1, hl, f) != hl;  // little-endian, as the format
    for (size_t k = hl; k < padded; k++) bad |= fputc(' ', f) == EOF;
    free(text);
    pl_rng rng = pl_rng_seed(seed);
    for (int i = 0; i < n && !bad; i++) {
        int64_t count = t[i].rows * (t[i].cols ? t[i].cols : 1);
        for (int64_t k = 0; k < count && !bad; k++) {
            float v = t[i].is_norm ? 1.0f : (float)(0.4 * pl_rng_uniform(&rng) - 0.2);
            bad |= fwrite(&v, 4, 1, f) != 1;
        }
    }
    if (fclose(f) != 0) bad = 1;
    return bad ? pl_fail("%s: write failed", path) : 0;
}

int test_write_hf_llama(const char *dir, int d_model, int n_layers, uint64_t seed) {
    if (d_model < 4 || d_model % 4 || n_layers < 1 || n_layers > 64) return pl_fail("test_write_hf_llama: bad sizes");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return pl_fail("%s: cannot create: %s", dir, strerror(errno));
    return write_config(dir, d_model, n_layers) || write_tokenizer(dir) || write_weights(dir, d_model, n_layers, seed) ? -1 : 0;
}
