// Hugging Face folder loading (runtime/model/hf_model.c, safetensors.c) on tiny hand-built files:
// values arrive exactly for F32 (used in place from the mapping), F16 and BF16 (converted), an
// unaligned data region (copied), GPT-2 Conv1D weights (transposed, fused c_attn split into q/k/v)
// and sharded checkpoints; and every kind of malformed input (truncated file, bad header length,
// offsets past the end, overlapping tensors, byte size contradicting the shape, unknown dtype,
// unknown model_type, missing tensor, shape contradicting config.json, bad index) is refused with
// -1 and a message naming the file, never a crash (run under ASan with -DPL_SANITIZE=ON).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "tests/support/test_support.h"

typedef struct {
    char name[96];
    const char *dtype;
    int n_dims;
    int64_t shape[2];
} spec;

// Element k of tensor number j: multiples of 1/64 below 1 in magnitude, exact in F16 and BF16.
static float value_of(int j, int64_t k) { return (float)((j * 131 + k * 17) % 97 - 48) / 64.0f; }

static int64_t n_elements(const spec *s) { return s->n_dims == 1 ? s->shape[0] : s->shape[0] * s->shape[1]; }

typedef struct {
    int bad_dtype_of;       // tensor index whose dtype is written as "I8" (-1: none)
    int shift_end_of;       // tensor index whose end offset is pushed past the data (-1: none)
    int shrink_bytes_of;    // tensor index whose end offset is 2 bytes short (size != shape)
    int overlap_of;         // tensor index whose bytes are moved onto the previous tensor's
    int64_t header_len;     // > 0: written instead of the real header length
    int misalign;           // pad the header to 8k + 2 bytes (F32 data unaligned)
    long truncate_to;       // > 0: cut the file to this many bytes; < 0: cut this many off the end
    int spec_offset;        // index of spec[0] in value_of numbering (for shards)
} st_opts;

static const st_opts DEFAULT_OPTS = {-1, -1, -1, -1, 0, 0, 0, 0};

static void write_st(const char *path, const spec *t, int n, const st_opts *o) {
    char *header = malloc(65536);
    size_t hl = 0;
    hl += snprintf(header + hl, 65536 - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0, prev_off = 0;
    for (int i = 0; i < n; i++) {
        size_t el = strcmp(t[i].dtype, "F32") == 0 ? 4 : 2;
        uint64_t bytes = (uint64_t)n_elements(&t[i]) * el;
        uint64_t begin = off, end = off + bytes;
        if (i == o->shift_end_of) end += 1000;
        if (i == o->shrink_bytes_of) end -= 2;
        if (i == o->overlap_of) begin = prev_off, end = prev_off + bytes;
        const char *dtype = i == o->bad_dtype_of ? "I8" : t[i].dtype;
        hl += snprintf(header + hl, 65536 - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t[i].name, dtype,
                       (long long)t[i].shape[0]);
        if (t[i].n_dims == 2) hl += snprintf(header + hl, 65536 - hl, ",%lld", (long long)t[i].shape[1]);
        hl += snprintf(header + hl, 65536 - hl, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin,
                       (unsigned long long)end);
        prev_off = off;
        off += bytes;
    }
    header[hl++] = '}';
    while (hl % 8) header[hl++] = ' ';
    if (o->misalign) header[hl++] = ' ', header[hl++] = ' ';
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t len = o->header_len > 0 ? (uint64_t)o->header_len : hl;
    for (int b = 0; b < 8; b++) fputc((int)((len >> (8 * b)) & 0xff), fp);
    fwrite(header, 1, hl, fp);
    for (int i = 0; i < n; i++) {
        for (int64_t k = 0; k < n_elements(&t[i]); k++) {
            float v = value_of(o->spec_offset + i, k);
            if (strcmp(t[i].dtype, "F32") == 0) {
                fwrite(&v, 4, 1, fp);  // the test machine is little-endian, as the format
            } else {
                uint16_t h = strcmp(t[i].dtype, "F16") == 0 ? pl_f32_to_f16(v) : pl_f32_to_bf16(v);
                fwrite(&h, 2, 1, fp);
            }
        }
    }
    long size = ftell(fp);
    fclose(fp);
    long keep = o->truncate_to < 0 ? size + o->truncate_to : o->truncate_to;
    if (o->truncate_to != 0 && keep < size) assert_int_equal(truncate(path, keep), 0);
    free(header);
}

// Tiny llama: d 4, 1 layer, 2 query heads, 1 kv head, head_dim 2, ffn 8, vocab 6, untied.
enum { D = 4, F = 8, V = 6, QD = 4, KVD = 2 };

static int llama_specs(spec *s, const char *dtype) {
    int n = 0;
#define ADD1(nm, a) (snprintf(s[n].name, 96, "%s", nm), s[n].dtype = dtype, s[n].n_dims = 1, s[n].shape[0] = a, n++)
#define ADD2(nm, a, b) \
    (snprintf(s[n].name, 96, "%s", nm), s[n].dtype = dtype, s[n].n_dims = 2, s[n].shape[0] = a, s[n].shape[1] = b, n++)
    ADD2("model.embed_tokens.weight", V, D);                  // 0
    ADD1("model.layers.0.input_layernorm.weight", D);         // 1
    ADD2("model.layers.0.self_attn.q_proj.weight", QD, D);    // 2
    ADD2("model.layers.0.self_attn.k_proj.weight", KVD, D);   // 3
    ADD2("model.layers.0.self_attn.v_proj.weight", KVD, D);   // 4
    ADD2("model.layers.0.self_attn.o_proj.weight", D, QD);    // 5
    ADD1("model.layers.0.post_attention_layernorm.weight", D);  // 6
    ADD2("model.layers.0.mlp.gate_proj.weight", F, D);        // 7
    ADD2("model.layers.0.mlp.up_proj.weight", F, D);          // 8
    ADD2("model.layers.0.mlp.down_proj.weight", D, F);        // 9
    ADD1("model.norm.weight", D);                             // 10
    ADD2("lm_head.weight", V, D);                             // 11
    return n;
}

static void write_config(const char *dir, const char *model_type) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "{\"model_type\": \"%s\", \"hidden_size\": %d, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
            " \"num_key_value_heads\": 1, \"intermediate_size\": %d, \"vocab_size\": %d,"
            " \"max_position_embeddings\": 16, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,"
            " \"hidden_act\": \"silu\", \"tie_word_embeddings\": false}\n",
            model_type, D, F, V);
    fclose(fp);
}

// A llama folder with the given dtype and file options; returns the folder (static buffer).
static const char *make_llama(const char *dtype, const st_opts *o, const char *model_type) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    write_config(dir, model_type);
    spec s[16];
    int n = llama_specs(s, dtype);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, s, n, o);
    return dir;
}

static void check_llama_values(const pl_model *m, bool exact_f32) {
    const pl_config *c = &m->config;
    assert_int_equal(c->arch, PL_ARCH_LLAMA);
    assert_int_equal(c->rope_style, PL_ROPE_NEOX);
    assert_int_equal(c->d_model, D);
    assert_int_equal(c->n_heads, 2);
    assert_int_equal(c->n_kv_heads, 1);
    assert_int_equal(c->head_dim, 2);
    assert_int_equal(c->d_ff, F);
    assert_int_equal(c->vocab_size, V);
    assert_false(c->tied_embeddings);
    const pl_layer_weights *l = &m->weights.layers[0];
    struct {
        const float *w;
        int j;
        int64_t n;
    } checks[] = {{m->weights.token_embd, 0, V * D}, {l->attn_norm, 1, D}, {l->wq, 2, QD * D}, {l->wk, 3, KVD * D},
                  {l->wv, 4, KVD * D},          {l->wo, 5, D * QD},  {l->ffn_norm, 6, D}, {l->w_gate, 7, F * D},
                  {l->w_up, 8, F * D},          {l->w_down, 9, D * F}, {m->weights.out_norm, 10, D},
                  {m->weights.output, 11, V * D}};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        assert_non_null(checks[i].w);
        for (int64_t k = 0; k < checks[i].n; k++) assert_true(checks[i].w[k] == value_of(checks[i].j, k));
    }
    assert_int_equal(m->n_tensors, 12);
    if (exact_f32) {
        // F32 with an aligned data region is used in place: the pointer lies inside the mapping.
        const char *base = m->mappings[0].data;
        assert_true((const char *)l->wq >= base && (const char *)l->wq < base + m->mappings[0].size);
    }
}

static void test_llama_f32_in_place(void **state) {
    pl_model *m = NULL;
    const char *dir = make_llama("F32", &DEFAULT_OPTS, "llama");
    if (pl_model_open(&m, dir) != 0) fail_msg("%s", pl_errmsg());
    check_llama_values(m, true);
    assert_string_equal(m->format, "safetensors");
    pl_model_free(m);
    // The path of config.json or model.safetensors names the same folder.
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (pl_model_open(&m, path) != 0) fail_msg("%s", pl_errmsg());
    check_llama_values(m, true);
    pl_model_free(m);
}

static void test_llama_f16_bf16_unaligned(void **state) {
    const char *dtypes[] = {"F16", "BF16"};
    for (int i = 0; i < 2; i++) {
        pl_model *m = NULL;
        if (pl_model_open(&m, make_llama(dtypes[i], &DEFAULT_OPTS, "mistral")) != 0) fail_msg("%s", pl_errmsg());
        check_llama_values(m, false);
        assert_string_equal(m->tensors[2].dtype, dtypes[i]);
        pl_model_free(m);
    }
    st_opts o = DEFAULT_OPTS;
    o.misalign = 1;
    pl_model *m = NULL;
    if (pl_model_open(&m, make_llama("F32", &o, "llama")) != 0) fail_msg("%s", pl_errmsg());
    check_llama_values(m, false);
    pl_model_free(m);
}

static void test_sharded(void **state) {
    const char *dir = test_tmpdir();
    write_config(dir, "llama");
    spec s[16];
    int n = llama_specs(s, "F32");
    char path[512];
    st_opts o = DEFAULT_OPTS;
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    o.misalign = 1;
    write_st(path, s, 5, &o);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    o.misalign = 0, o.spec_offset = 5;
    write_st(path, s + 5, n - 5, &o);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < n; i++)
        fprintf(fp, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? "," : "", s[i].name, i < 5 ? 1 : 2);
    fprintf(fp, "}}\n");
    fclose(fp);
    pl_model *m = NULL;
    if (pl_model_open(&m, dir) != 0) fail_msg("%s", pl_errmsg());
    check_llama_values(m, false);
    pl_model_free(m);

    // An index that puts a tensor in the wrong shard is refused.
    fp = fopen(path, "w");
    fprintf(fp, "{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00002.safetensors\"}}\n");
    fclose(fp);
    assert_int_equal(pl_model_open(&m, dir), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_errmsg(), "model.safetensors.index.json"));
    // ... and one naming a shard outside the folder.
    fp = fopen(path, "w");
    fprintf(fp, "{\"weight_map\": {\"lm_head.weight\": \"../model-00001-of-00002.safetensors\"}}\n");
    fclose(fp);
    assert_int_equal(pl_model_open(&m, dir), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_errmsg(), "model.safetensors.index.json"));
}

static void test_gpt2_conv1d(void **state) {
    enum { GD = 4, GF = 8, GV = 6, GP = 5 };
    const char *prefixes[] = {"transformer.", ""};
    for (int pi = 0; pi < 2; pi++) {
        const char *dir = test_tmpdir();
        const char *P = prefixes[pi];
        spec s[20];
        int n = 0;
#define G1(nm, a) (snprintf(s[n].name, 96, "%s" nm, P), s[n].dtype = "F32", s[n].n_dims = 1, s[n].shape[0] = a, n++)
#define G2(nm, a, b) \
    (snprintf(s[n].name, 96, "%s" nm, P), s[n].dtype = "F32", s[n].n_dims = 2, s[n].shape[0] = a, s[n].shape[1] = b, n++)
        G2("wte.weight", GV, GD);                 // 0
        G2("wpe.weight", GP, GD);                 // 1
        G1("h.0.ln_1.weight", GD);                // 2
        G1("h.0.ln_1.bias", GD);                  // 3
        G2("h.0.attn.c_attn.weight", GD, 3 * GD); // 4: [in, out]
        G1("h.0.attn.c_attn.bias", 3 * GD);       // 5
        G2("h.0.attn.c_proj.weight", GD, GD);     // 6
        G1("h.0.attn.c_proj.bias", GD);           // 7
        G1("h.0.ln_2.weight", GD);                // 8
        G1("h.0.ln_2.bias", GD);                  // 9
        G2("h.0.mlp.c_fc.weight", GD, GF);        // 10
        G1("h.0.mlp.c_fc.bias", GF);              // 11
        G2("h.0.mlp.c_proj.weight", GF, GD);      // 12
        G1("h.0.mlp.c_proj.bias", GD);            // 13
        G1("ln_f.weight", GD);                    // 14
        G1("ln_f.bias", GD);                      // 15
        char path[512];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_st(path, s, n, &DEFAULT_OPTS);
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *fp = fopen(path, "w");
        fprintf(fp, "{\"model_type\": \"gpt2\", \"n_embd\": %d, \"n_layer\": 1, \"n_head\": 2, \"n_positions\": %d,"
                    " \"vocab_size\": %d, \"layer_norm_epsilon\": 1e-5, \"activation_function\": \"gelu_new\","
                    " \"n_inner\": %d}\n", GD, GP, GV, GF);
        fclose(fp);
        pl_model *m = NULL;
        if (pl_model_open(&m, dir) != 0) fail_msg("%s", pl_errmsg());
        const pl_layer_weights *l = &m->weights.layers[0];
        assert_int_equal(m->config.arch, PL_ARCH_GPT2);
        assert_int_equal(m->config.head_dim, 2);
        assert_int_equal(m->config.d_ff, GF);
        assert_int_equal(m->config.context_length, GP);
        assert_true(m->weights.output == m->weights.token_embd);
        for (int o = 0; o < GD; o++) {
            for (int i = 0; i < GD; i++) {
                // stored c_attn[i][o'] with o' = o (q), GD + o (k), 2 GD + o (v)
                assert_true(l->wq[o * GD + i] == value_of(4, i * 3 * GD + o));
                assert_true(l->wk[o * GD + i] == value_of(4, i * 3 * GD + GD + o));
                assert_true(l->wv[o * GD + i] == value_of(4, i * 3 * GD + 2 * GD + o));
                assert_true(l->wo[o * GD + i] == value_of(6, i * GD + o));
            }
            assert_true(l->bq[o] == value_of(5, o));
            assert_true(l->bk[o] == value_of(5, GD + o));
            assert_true(l->bv[o] == value_of(5, 2 * GD + o));
            assert_true(l->bo[o] == value_of(7, o));
            assert_true(l->b_down[o] == value_of(13, o));
            assert_true(m->weights.out_norm_b[o] == value_of(15, o));
        }
        for (int o = 0; o < GF; o++)
            for (int i = 0; i < GD; i++) {
                assert_true(l->w_up[o * GD + i] == value_of(10, i * GF + o));    // [GF × GD] from [GD, GF]
                assert_true(l->w_down[i * GF + o] == value_of(12, o * GD + i));  // [GD × GF] from [GF, GD]
            }
        assert_true(m->weights.pos_embd[7] == value_of(1, 7));
        pl_model_free(m);
    }
}

// Load must fail with status `code` and a message that names `file`.
static void expect_failure(const char *dir, const char *file, pl_status code) {
    pl_model *m = (pl_model *)1;
    int rc = pl_model_open(&m, dir);
    if (rc == PL_OK) fail_msg("loading %s succeeded; expected failure '%s'", dir, pl_status_name(code));
    assert_null(m);
    const char *msg = pl_errmsg();
    printf("  refused (%s): %s\n", pl_status_name((pl_status)rc), msg);
    if (rc != (int)code)
        fail_msg("status %s, expected %s ('%s')", pl_status_name((pl_status)rc), pl_status_name(code), msg);
    assert_int_equal(pl_errcode(), code);
    char path[512];
    snprintf(path, sizeof path, file[0] ? "%s/%s" : "%s", dir, file);
    if (!strstr(msg, path)) fail_msg("message '%s' does not name %s", msg, path);
}

static void test_bad_files(void **state) {
    st_opts o;
    const char *st = "model.safetensors";
    o = DEFAULT_OPTS, o.truncate_to = -100;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.truncate_to = 5;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_FORMAT);
    o = DEFAULT_OPTS, o.truncate_to = 100;  // cut inside the header
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.header_len = 1LL << 40;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.header_len = 64;  // inside the file but not the whole JSON
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_FORMAT);
    o = DEFAULT_OPTS, o.shift_end_of = 11;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.shrink_bytes_of = 3;
    expect_failure(make_llama("F16", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.overlap_of = 4;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_CORRUPT);
    o = DEFAULT_OPTS, o.bad_dtype_of = 2;
    expect_failure(make_llama("F32", &o, "llama"), st, PL_ERR_FORMAT);
    expect_failure(make_llama("F32", &DEFAULT_OPTS, "bert"), "config.json", PL_ERR_FORMAT);
}

static void test_bad_model(void **state) {
    char path[512];
    // Missing tensor: drop lm_head (the config says the head is not tied).
    const char *dir = test_tmpdir();
    write_config(dir, "llama");
    spec s[16];
    int n = llama_specs(s, "F32");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, s, n - 1, &DEFAULT_OPTS);
    expect_failure(dir, "model.safetensors", PL_ERR_NOT_FOUND);

    // Shape contradicting config.json: k_proj written for 2 kv heads while the config says 1.
    dir = test_tmpdir();
    write_config(dir, "llama");
    n = llama_specs(s, "F32");
    s[3].shape[0] = 4;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, s, n, &DEFAULT_OPTS);
    expect_failure(dir, "model.safetensors", PL_ERR_CORRUPT);

    // Broken config.json, and a folder without weights.
    dir = test_tmpdir();
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "{\"model_type\": \"llama\", \"hidden_size\": ");
    fclose(fp);
    expect_failure(dir, "config.json", PL_ERR_FORMAT);
    write_config(dir, "llama");
    expect_failure(dir, "", PL_ERR_NOT_FOUND);
    // GQA that does not divide.
    fp = fopen(path, "w");
    fprintf(fp, "{\"model_type\": \"qwen2\", \"hidden_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 3,"
                " \"num_key_value_heads\": 2, \"intermediate_size\": 8, \"vocab_size\": 6, \"head_dim\": 2}");
    fclose(fp);
    expect_failure(dir, "config.json", PL_ERR_FORMAT);
    // Issue 10 #4: gpt2 without n_inner defaults d_ff to 4 * n_embd, which overflowed int for
    // n_embd >= 2^29 before the size bounds were checked.
    fp = fopen(path, "w");
    fprintf(fp, "{\"model_type\": \"gpt2\", \"n_embd\": 536870912, \"n_layer\": 1, \"n_head\": 1, \"vocab_size\": 6}");
    fclose(fp);
    expect_failure(dir, "config.json", PL_ERR_CORRUPT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_f32_in_place), cmocka_unit_test(test_llama_f16_bf16_unaligned),
        cmocka_unit_test(test_sharded),            cmocka_unit_test(test_gpt2_conv1d),
        cmocka_unit_test(test_bad_files),          cmocka_unit_test(test_bad_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
