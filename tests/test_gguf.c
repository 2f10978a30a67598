// GGUF reading: dequantization against hand-computed blocks, f16/bf16 conversions, and every kind
// of malformed file (made by corrupting a valid file written here) failing with a clear message.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_write.h"
#include "runtime/model/model.h"
#include "runtime/session.h"
#include "tests/support/test_support.h"

static void q8_0_block_by_hand(void **state) {
    (void)state;
    uint8_t block[34];
    uint16_t d = 0x3800;  // f16 0.5
    memcpy(block, &d, 2);
    for (int i = 0; i < 32; i++) block[2 + i] = (uint8_t)(int8_t)(i * 8 - 128);
    float out[32];
    pl_dequant_q8_0(out, block, 32);
    for (int i = 0; i < 32; i++) assert_float_equal(out[i], 0.5f * (float)(i * 8 - 128), 0);
}

static void q4_0_block_by_hand(void **state) {
    (void)state;
    uint8_t block[18];
    uint16_t d = 0x3400;  // f16 0.25
    memcpy(block, &d, 2);
    for (int i = 0; i < 16; i++) block[2 + i] = (uint8_t)((i & 15) | ((15 - i) << 4));
    float out[32];
    pl_dequant_q4_0(out, block, 32);
    for (int i = 0; i < 16; i++) {
        assert_float_equal(out[i], 0.25f * (float)(i - 8), 0);        // low nibble -> weight i
        assert_float_equal(out[i + 16], 0.25f * (float)(7 - i), 0);   // high nibble -> weight i + 16
    }
}

static void f16_bf16_conversions(void **state) {
    (void)state;
    assert_float_equal(pl_f16_to_f32(0x3c00), 1.0f, 0);
    assert_float_equal(pl_f16_to_f32(0xc000), -2.0f, 0);
    assert_float_equal(pl_f16_to_f32(0x7bff), 65504.0f, 0);
    assert_float_equal(pl_f16_to_f32(0x0001), ldexpf(1, -24), 0);  // smallest subnormal
    assert_true(isinf(pl_f16_to_f32(0x7c00)));
    assert_true(isnan(pl_f16_to_f32(0x7e00)));
    assert_float_equal(pl_bf16_to_f32(0x3f80), 1.0f, 0);
    assert_float_equal(pl_bf16_to_f32(0x4049), 3.140625f, 0);
    // Every finite f16 survives f16 -> f32 -> f16 exactly; bf16 likewise.
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = pl_f16_to_f32((uint16_t)h);
        if (!isnan(f)) assert_int_equal(pl_f32_to_f16(f), h);
        float b = pl_bf16_to_f32((uint16_t)h);
        if (!isnan(b)) assert_int_equal(pl_f32_to_bf16(b), h);
    }
    // Rounding to nearest even: 1 + 2^-11 is halfway between two f16 values and rounds down to 1.
    assert_int_equal(pl_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    assert_int_equal(pl_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
}

// ---- a small valid llama GGUF written from a random model, then corrupted ----
static char valid_path[512];
static uint8_t *valid_bytes;
static size_t valid_size;

static int write_valid_gguf(void **state) {
    (void)state;
    pl_config c = {.arch = PL_ARCH_LLAMA, .d_model = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                   .d_ff = 64, .vocab_size = 300, .context_length = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                   .rope_style = PL_ROPE_ADJACENT, .tied_embeddings = true};
    snprintf(c.arch_name, sizeof c.arch_name, "llama");
    pl_model *m;
    if (pl_model_random(&c, 7, &m) != 0) return -1;
    pl_gguf_writer *w = pl_gguf_writer_new();
    pl_gguf_add_string(w, "general.architecture", "llama");
    pl_gguf_add_u32(w, "llama.context_length", 64);
    pl_gguf_add_u32(w, "llama.embedding_length", 32);
    pl_gguf_add_u32(w, "llama.block_count", 2);
    pl_gguf_add_u32(w, "llama.feed_forward_length", 64);
    pl_gguf_add_u32(w, "llama.attention.head_count", 4);
    pl_gguf_add_u32(w, "llama.attention.head_count_kv", 2);
    pl_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    // A byte-level-free SentencePiece vocabulary: <unk>, <s>, </s>, then single characters.
    const char *tokens[300];
    char storage[300][8];
    float scores[300];
    int32_t types[300];
    for (int i = 0; i < 300; i++) {
        if (i < 3) tokens[i] = (const char *[]){"<unk>", "<s>", "</s>"}[i];
        else {
            snprintf(storage[i], sizeof storage[i], "%c%c", 'a' + (i - 3) % 26, 'a' + (i - 3) / 26);
            tokens[i] = storage[i];
        }
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
    }
    pl_gguf_add_string(w, "tokenizer.ggml.model", "llama");
    pl_gguf_add_string_array(w, "tokenizer.ggml.tokens", tokens, 300);
    pl_gguf_add_f32_array(w, "tokenizer.ggml.scores", scores, 300);
    pl_gguf_add_i32_array(w, "tokenizer.ggml.token_type", types, 300);
    pl_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    pl_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    int64_t ne_embd[2] = {32, 300}, ne_d[1] = {32};
    pl_gguf_add_tensor_f32(w, "token_embd.weight", m->weights.token_embd, 2, ne_embd);
    pl_gguf_add_tensor_f32(w, "output_norm.weight", m->weights.out_norm, 1, ne_d);
    for (int l = 0; l < 2; l++) {
        const pl_layer_weights *L = &m->weights.layers[l];
        char name[64];
        struct { const char *n; const float *p; int64_t ne0, ne1; } t[] = {
            {"attn_norm.weight", L->attn_norm, 32, 0}, {"ffn_norm.weight", L->ffn_norm, 32, 0},
            {"attn_q.weight", L->wq, 32, 32}, {"attn_k.weight", L->wk, 32, 16}, {"attn_v.weight", L->wv, 32, 16},
            {"attn_output.weight", L->wo, 32, 32}, {"ffn_gate.weight", L->w_gate, 32, 64},
            {"ffn_up.weight", L->w_up, 32, 64}, {"ffn_down.weight", L->w_down, 64, 32}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, t[i].n);
            int64_t ne[2] = {t[i].ne0, t[i].ne1};
            pl_gguf_add_tensor_f32(w, name, t[i].p, t[i].ne1 ? 2 : 1, ne);
        }
    }
    snprintf(valid_path, sizeof valid_path, "%s/valid.gguf", test_tmpdir());
    int rc = pl_gguf_write_file(w, valid_path);
    pl_gguf_writer_free(w);
    pl_model_free(m);
    if (rc != 0) return -1;
    FILE *f = fopen(valid_path, "rb");
    fseek(f, 0, SEEK_END);
    valid_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    valid_bytes = malloc(valid_size);
    if (fread(valid_bytes, 1, valid_size, f) != valid_size) return -1;
    fclose(f);
    return 0;
}

static int free_valid(void **state) {
    (void)state;
    free(valid_bytes);
    return 0;
}

// Write bytes[0..size) to a new file; load it; expect failure with status `code`, naming the file.
static void expect_load_error(const uint8_t *bytes, size_t size, pl_status code) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, size, f);
    fclose(f);
    pl_model *m = NULL;
    int rc = pl_model_open(&m, path);
    if (rc == PL_OK) fail_msg("loading a corrupt file succeeded (expected %s)", pl_status_name(code));
    assert_null(m);
    const char *msg = pl_errmsg();
    printf("  %s: %s\n", pl_status_name((pl_status)rc), msg);
    assert_non_null(strstr(msg, path));  // names the file
    if (rc != (int)code)
        fail_msg("status %s, expected %s ('%s')", pl_status_name((pl_status)rc), pl_status_name(code), msg);
    assert_int_equal(pl_errcode(), code);
}

static size_t find(const uint8_t *hay, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return i;
    fail_msg("'%s' not found in the file", needle);
    return 0;
}

static void valid_file_loads_and_runs(void **state) {
    (void)state;
    pl_model *m;
    if (pl_model_open(&m, valid_path) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(m->config.n_kv_heads, 2);
    assert_true(m->config.tied_embeddings);
    pl_session *s;
    assert_int_equal(pl_session_open(&s, m, 0), 0);
    const float *logits;
    int32_t ids[] = {1, 5, 6, 7};
    assert_int_equal(pl_forward(s, ids, 4, &logits), 0);
    for (int i = 0; i < m->config.vocab_size; i++) assert_true(isfinite(logits[i]));
    pl_session_free(s);
    pl_model_free(m);
}

static void malformed_files_fail_cleanly(void **state) {
    (void)state;
    uint8_t *b = malloc(valid_size);
    // every truncation point of the header region, and a few in the data
    for (size_t cut = 0; cut < valid_size; cut += cut < 2048 ? 1 : 997) {
        char path[600];
        snprintf(path, sizeof path, "%s/trunc.gguf", test_tmpdir());
        FILE *f = fopen(path, "wb");
        fwrite(valid_bytes, 1, cut, f);
        fclose(f);
        pl_model *m = NULL;
        if (pl_model_open(&m, path) == 0) fail_msg("truncated at %zu bytes but loaded", cut);
    }
    expect_load_error(valid_bytes, valid_size / 2, PL_ERR_CORRUPT);
    // An empty file maps to NULL (issue 10 #4: NULL + 0 in the parser, reported by clang's UBSan).
    expect_load_error(valid_bytes, 0, PL_ERR_FORMAT);
    pl_gguf g;
    assert_int_equal(pl_gguf_parse(&g, "empty.gguf", NULL, 0), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_errmsg(), "empty.gguf"));

    memcpy(b, valid_bytes, valid_size);
    memcpy(b, "GGUX", 4);
    expect_load_error(b, valid_size, PL_ERR_FORMAT);

    memcpy(b, valid_bytes, valid_size);
    b[4] = 9;  // version
    expect_load_error(b, valid_size, PL_ERR_FORMAT);

    // general.architecture value "llama" -> "llamx"
    memcpy(b, valid_bytes, valid_size);
    size_t at = find(b, valid_size, "general.architecture") + strlen("general.architecture") + 4 + 8;
    b[at + 4] = 'x';
    expect_load_error(b, valid_size, PL_ERR_FORMAT);

    // llama.embedding_length 32 -> 48: every tensor contradicts the config
    memcpy(b, valid_bytes, valid_size);
    at = find(b, valid_size, "llama.embedding_length") + strlen("llama.embedding_length") + 4;
    uint32_t v = 48;
    memcpy(b + at, &v, 4);
    expect_load_error(b, valid_size, PL_ERR_CORRUPT);

    // tensor type and offset of token_embd.weight (after name: n_dims u32, 2 × u64 ne, type u32, offset u64)
    memcpy(b, valid_bytes, valid_size);
    at = find(b, valid_size, "token_embd.weight") + strlen("token_embd.weight") + 4 + 16;
    uint32_t bad_type = 99;
    memcpy(b + at, &bad_type, 4);
    expect_load_error(b, valid_size, PL_ERR_FORMAT);
    memcpy(b, valid_bytes, valid_size);
    uint64_t far = 1ull << 36;
    memcpy(b + at + 4, &far, 8);
    expect_load_error(b, valid_size, PL_ERR_CORRUPT);

    // huge metadata count
    memcpy(b, valid_bytes, valid_size);
    uint64_t huge = 1ull << 60;
    memcpy(b + 16, &huge, 8);
    expect_load_error(b, valid_size, PL_ERR_CORRUPT);

    // a string length running past the end
    memcpy(b, valid_bytes, valid_size);
    at = find(b, valid_size, "general.architecture") - 8;
    memcpy(b + at, &huge, 8);
    expect_load_error(b, valid_size, PL_ERR_CORRUPT);
    free(b);
}

static void missing_tokenizer_is_reported(void **state) {
    (void)state;
    uint8_t *b = malloc(valid_size);
    memcpy(b, valid_bytes, valid_size);
    size_t at = find(b, valid_size, "tokenizer.ggml.model");
    b[at] = 'X';  // the key is gone: the model loads without a tokenizer
    char path[600], cmd[2048];
    snprintf(path, sizeof path, "%s/notok.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, valid_size, f);
    fclose(f);
    free(b);
    snprintf(cmd, sizeof cmd, "%s generate %s --prompt hello 2>&1", test_probelab_bin(), path);
    char *out;
    int rc = test_run(cmd, &out);
    printf("  %s", out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "has no tokenizer"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s generate %s --token-ids 1,5,600 2>&1", test_probelab_bin(), path);
    rc = test_run(cmd, &out);
    printf("  %s", out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "out of range"));
    free(out);
}

static void cli_bad_prompts(void **state) {
    (void)state;
    char cmd[2048];
    char *out;
    snprintf(cmd, sizeof cmd, "%s generate %s --prompt \"$(printf 'bad \\377')\" 2>&1", test_probelab_bin(), valid_path);
    int rc = test_run(cmd, &out);
    printf("  %s", out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "UTF-8"));
    free(out);
    // 70 tokens do not fit the 64-token context
    char ids[512] = "1";
    for (int i = 0; i < 69; i++) strcat(ids, ",5");
    snprintf(cmd, sizeof cmd, "%s run %s --token-ids %s --hooks logits --dump %s 2>&1", test_probelab_bin(),
             valid_path, ids, test_tmpdir());
    rc = test_run(cmd, &out);
    printf("  %s", out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "context"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s info %s/does-not-exist.gguf 2>&1", test_probelab_bin(), test_tmpdir());
    rc = test_run(cmd, &out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "does-not-exist.gguf"));
    free(out);
}

static void random_corruptions_never_crash(void **state) {
    // 400 copies of the valid file with 1-4 random bytes changed in the header and metadata: each
    // either loads (and runs) or fails with a message; under ASan any out-of-bounds read aborts.
    (void)state;
    uint8_t *b = malloc(valid_size);
    uint64_t rng = 12345;
    char path[600];
    snprintf(path, sizeof path, "%s/fuzz.gguf", test_tmpdir());
    int loaded = 0, failed = 0;
    size_t header = valid_size < 8192 ? valid_size : 8192;
    for (int iter = 0; iter < 400; iter++) {
        memcpy(b, valid_bytes, valid_size);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            b[(rng >> 33) % header] = (uint8_t)(rng >> 17);
        }
        FILE *f = fopen(path, "wb");
        fwrite(b, 1, valid_size, f);
        fclose(f);
        pl_model *m = NULL;
        if (pl_model_open(&m, path) == 0) {
            pl_session *s = NULL;
            if (pl_session_open(&s, m, 16) == 0) {
                const float *logits;
                int32_t ids[] = {1, 5};
                pl_forward(s, ids, 2, &logits);
                pl_session_free(s);
            }
            pl_model_free(m);
            loaded++;
        } else {
            assert_true(strlen(pl_errmsg()) > 0);
            failed++;
        }
    }
    printf("  %d corrupted files loaded, %d refused with a message\n", loaded, failed);
    assert_true(failed > 0);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(q8_0_block_by_hand),
        cmocka_unit_test(q4_0_block_by_hand),
        cmocka_unit_test(f16_bf16_conversions),
        cmocka_unit_test_setup_teardown(valid_file_loads_and_runs, write_valid_gguf, free_valid),
        cmocka_unit_test_setup_teardown(malformed_files_fail_cleanly, write_valid_gguf, free_valid),
        cmocka_unit_test_setup_teardown(missing_tokenizer_is_reported, write_valid_gguf, free_valid),
        cmocka_unit_test_setup_teardown(cli_bad_prompts, write_valid_gguf, free_valid),
        cmocka_unit_test_setup_teardown(random_corruptions_never_crash, write_valid_gguf, free_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
