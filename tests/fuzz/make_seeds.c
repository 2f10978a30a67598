// Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/<target>/ with the
// project's own writers (the trainer's GGUF export, the task generators and dataset writers, the
// store fixture's edit format) and a few tiny hand-made files. Run by scripts/fuzz.sh --seeds;
// the seeds are committed, so a normal build only replays them.
//   fuzz_make_seeds CORPUS_DIR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/train/train.h"

static const char *corpus;

static void put(const char *target, const char *name, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", corpus, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "fuzz_make_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*size + 1);
    if (b && fread(b, 1, *size, f) != *size) *size = 0;
    fclose(f);
    return b;
}

// A tiny model exported by the trainer (the bundled model's format and tokenizer, d_model 8).
static void gguf_seeds(const char *tmp) {
    pl_train_options o = pl_train_defaults();
    o.d_model = 8, o.n_layers = 1, o.n_heads = 2, o.n_kv_heads = 1, o.d_ff = 16, o.context_length = 16;
    pl_trainer *t;
    char path[600];
    snprintf(path, sizeof path, "%s/tiny.gguf", tmp);
    if (pl_trainer_new(&o, &t) != 0 || pl_trainer_export_gguf(t, path) != 0) {
        fprintf(stderr, "fuzz_make_seeds: %s\n", pl_errmsg());
        exit(1);
    }
    pl_trainer_free(t);
    size_t n;
    char *b = slurp(path, &n);
    put("gguf", "tiny.gguf", b, n);
    put("gguf", "header_only.gguf", b, n < 96 ? n : 96);
    free(b);
}

// A Hugging Face llama of d_model 4, 1 layer, vocab 6: config.json, separator, safetensors with
// every tensor the loader wants (zeros; the loader checks names, shapes and offsets).
static void hf_seeds(void) {
    static const char config[] =
        "{\"model_type\": \"llama\", \"hidden_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
        " \"num_key_value_heads\": 1, \"intermediate_size\": 8, \"vocab_size\": 6, \"max_position_embeddings\": 16,"
        " \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true}";
    struct {
        const char *name;
        int rows, cols;
    } t[] = {{"model.embed_tokens.weight", 6, 4},
             {"model.layers.0.input_layernorm.weight", 4, 0},
             {"model.layers.0.self_attn.q_proj.weight", 4, 4},
             {"model.layers.0.self_attn.k_proj.weight", 2, 4},
             {"model.layers.0.self_attn.v_proj.weight", 2, 4},
             {"model.layers.0.self_attn.o_proj.weight", 4, 4},
             {"model.layers.0.post_attention_layernorm.weight", 4, 0},
             {"model.layers.0.mlp.gate_proj.weight", 8, 4},
             {"model.layers.0.mlp.up_proj.weight", 8, 4},
             {"model.layers.0.mlp.down_proj.weight", 4, 8},
             {"model.norm.weight", 4, 0}};
    char header[4096];
    size_t hl = 0, at = 0;
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "{");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t bytes = 4 * (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        if (t[i].cols)
            hl += (size_t)snprintf(header + hl, sizeof header - hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].rows, t[i].cols, at, at + bytes);
        else
            hl += (size_t)snprintf(header + hl, sizeof header - hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].rows, at, at + bytes);
        at += bytes;
    }
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "}");
    while (hl % 8) header[hl++] = ' ';
    const char sep[] = "\n#safetensors#\n";
    size_t total = strlen(config) + strlen(sep) + 8 + hl + at;
    char *b = calloc(1, total);
    size_t k = 0;
    memcpy(b + k, config, strlen(config)), k += strlen(config);
    memcpy(b + k, sep, strlen(sep)), k += strlen(sep);
    uint64_t len = hl;
    memcpy(b + k, &len, 8), k += 8;
    memcpy(b + k, header, hl);  // the tensor data stays zero
    put("hf", "llama_tiny", b, total);
    free(b);
    static const char gpt2[] = "{\"model_type\": \"gpt2\", \"n_embd\": 4, \"n_layer\": 1, \"n_head\": 2, \"vocab_size\": 6}";
    put("hf", "gpt2_config_only", gpt2, strlen(gpt2));
}

static void tokenizer_seeds(void) {
    static const char small[] =
        "{\"added_tokens\": [{\"id\": 6, \"content\": \"<s>\", \"special\": true}],"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
        " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\":"
        " \"<s>\", \"ids\": [6], \"tokens\": [\"<s>\"]}}},"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
        " \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 5},"
        " \"merges\": [[\"a\", \"b\"], [\"\\u0120\", \"ab\"]]}}";
    put("tokenizer", "small.json", small, strlen(small));
    static const char split[] =
        "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\":"
        " \"\\\\p{N}\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\":"
        " false, \"use_regex\": true}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"1\": 0, \"2\": 1, \"a\": 2, \"<|endoftext|>\": 3},"
        " \"merges\": [\"1 2\"]}}";
    put("tokenizer", "split_digits.json", split, strlen(split));
}

// One seed per format: the first byte picks it (fuzz_dataset.c).
static void dataset_seeds(const char *tmp) {
    static const char *tasks[] = {"arith", "max", "mc", "vars", "memqa"};
    char path[600];
    snprintf(path, sizeof path, "%s/d.jsonl", tmp);
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
        pl_dataset d;
        if (pl_task_generate(&d, tasks[i], 2, 3, 1, 2) != 0 || pl_dataset_write_jsonl(&d, path) != 0) exit(1);
        pl_dataset_free(&d);
        size_t n;
        char *b = slurp(path, &n);
        const char *gen = "\n#generated#\n|3+4=7|7*2=14|A:14\n";
        char *s = malloc(1 + n + strlen(gen));
        s[0] = 1;  // probelab JSONL
        memcpy(s + 1, b, n);
        memcpy(s + 1 + n, gen, strlen(gen));
        char name[64];
        snprintf(name, sizeof name, "%s.jsonl", tasks[i]);
        put("dataset", name, s, 1 + n + strlen(gen));
        free(s);
        free(b);
    }
    snprintf(path, sizeof path, "%s/d.json", tmp);
    if (pl_memqa_write_locomo(path, 2, 3, 1, 2) != 0) exit(1);
    size_t n;
    char *b = slurp(path, &n);
    char *s = malloc(1 + n);
    s[0] = 4 | 0x08;  // LoCoMo, .json
    memcpy(s + 1, b, n);
    put("dataset", "locomo.json", s, 1 + n);
    free(s), free(b);
    static const char mc[] = "\x02{\"question\": \"Which is largest?\", \"options\": [\"1\", \"5\", \"3\"], \"answer\": \"B\"}\n";
    put("dataset", "mc.jsonl", mc, strlen(mc));
    static const char gsm[] = "\x03{\"question\": \"Tom has 3 apples and buys 4. How many?\", \"answer\": \"3+4=7\\n#### 7\"}\n";
    put("dataset", "gsm8k.jsonl", gsm, strlen(gsm));
}

// fuzz_store inputs are edit scripts: the pristine store, and one edit of each kind.
static void store_seeds(void) {
    put("store", "pristine", "", 0);
    // 0 T R C K v[8]: tensors (2) row 0 column 6 (row_size) := 0 (kind 2, special[0])
    const uint8_t row_size_zero[] = {0, 2, 0, 6, 2, 0, 0, 0, 0, 0, 0, 0, 0};
    put("store", "row_size_zero", row_size_zero, sizeof row_size_zero);
    // attention (3) row 1 column 5 (n_q) := -1 (kind 1, int8 0xff)
    const uint8_t n_q_negative[] = {0, 3, 1, 5, 1, 0xff, 0, 0, 0, 0, 0, 0, 0};
    put("store", "attention_n_q_negative", n_q_negative, sizeof n_q_negative);
    // labels (4) row 0 column 2 (value) := 9e99 (kind 4, reals[0])
    const uint8_t label_huge[] = {0, 4, 2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    put("store", "label_9e99", label_huge, sizeof label_huge);
    const uint8_t db_byte[] = {1, 0x10, 0x20, 0x00, 0xff};
    put("store", "db_byte", db_byte, sizeof db_byte);
    const uint8_t truncate[] = {3, 0, 0x00, 0x10, 0x00};
    put("store", "tensor_file_truncated", truncate, sizeof truncate);
    uint8_t several[sizeof row_size_zero + sizeof n_q_negative + sizeof db_byte + sizeof truncate];
    size_t k = 0;
    memcpy(several + k, n_q_negative, sizeof n_q_negative), k += sizeof n_q_negative;
    memcpy(several + k, label_huge, sizeof label_huge), k += sizeof label_huge;
    memcpy(several + k, truncate, sizeof truncate), k += sizeof truncate;
    put("store", "several_edits", several, k);
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n"), 2;
    corpus = argv[1];
    char tmp[] = "/tmp/plseeds.XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    gguf_seeds(tmp);
    hf_seeds();
    tokenizer_seeds();
    dataset_seeds(tmp);
    store_seeds();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
