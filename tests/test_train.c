// The trainer (runtime/train/) on a CI-sized model: training lowers the held-out loss; a run
// checkpointed and resumed ends with the same weights (bit for bit) as an uninterrupted run; two
// runs with one seed are identical and another seed differs; the exported GGUF parses with the
// GGUF reader (every metadata value and tensor shape checked), reloads with pl_model_open, its
// tokenizer encodes like the trainer, and pl_forward's logits equal the trainer's own forward
// pass (max abs diff < 1e-5). Also the `probelab train` command end to end, and its errors.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_write.h"
#include "runtime/model/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/train/task_vocab.h"
#include "runtime/train/train.h"
#include "tests/support/test_support.h"

// Examples from the real task generators: arith and max, difficulties 1..3 (the trainer's own source).
static pl_task_mix source_mix;
static const pl_train_source source = {pl_task_mix_next, &source_mix};

static pl_train_options tiny_options(void) {
    pl_train_options o = pl_train_defaults();
    o.d_model = 32;
    o.n_layers = 2;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.d_ff = 64;
    o.context_length = 64;
    o.batch = 16;
    o.steps = 40;
    o.warmup = 5;
    o.lr = 1e-2f;
    o.seed = 7;
    return o;
}

static pl_trainer *train_steps(const pl_train_options *o, int n) {
    pl_trainer *t = NULL;
    assert_int_equal(pl_trainer_new(o, &t), 0);
    for (int i = 0; i < n; i++) assert_int_equal(pl_trainer_step(t, &source, NULL), 0);
    return t;
}

static void test_loss_goes_down(void **state) {
    pl_train_options o = tiny_options();
    // Held-out texts from another seed stream than training uses.
    pl_train_text held[32];
    for (int i = 0; i < 32; i++) assert_int_equal(pl_task_mix_next(&source_mix, 999, (uint64_t)i, &held[i]), 0);
    pl_trainer *t = train_steps(&o, 0);
    double before, after;
    assert_int_equal(pl_trainer_eval_loss(t, held, 32, &before), 0);
    for (int i = 0; i < o.steps; i++) assert_int_equal(pl_trainer_step(t, &source, NULL), 0);
    assert_int_equal(pl_trainer_eval_loss(t, held, 32, &after), 0);
    printf("held-out loss %.3f -> %.3f after %d steps (uniform guess: %.3f)\n", before, after, o.steps,
           log((double)PL_TASK_VOCAB_SIZE));
    assert_true(fabs(before - log((double)PL_TASK_VOCAB_SIZE)) < 0.5);  // small init: close to uniform
    assert_true(after < 0.5 * before);
    for (int i = 0; i < 32; i++) free(held[i].text);
    pl_trainer_free(t);
}

static void test_resume_is_bit_identical(void **state) {
    pl_train_options o = tiny_options();
    pl_trainer *full = train_steps(&o, 12);
    pl_trainer *first = train_steps(&o, 5);
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt.bin", test_tmpdir());
    assert_int_equal(pl_trainer_save_checkpoint(first, path), 0);
    pl_trainer_free(first);
    pl_trainer *resumed = NULL;
    o.seed = 12345;  // the checkpoint's seed must win, or the data stream would change
    assert_int_equal(pl_trainer_new(&o, &resumed), 0);
    assert_int_equal(pl_trainer_load_checkpoint(resumed, path), 0);
    assert_int_equal(pl_trainer_step_count(resumed), 5);
    for (int i = 0; i < 7; i++) assert_int_equal(pl_trainer_step(resumed, &source, NULL), 0);
    size_t n1, n2;
    const float *a = pl_trainer_params(full, &n1), *b = pl_trainer_params(resumed, &n2);
    assert_int_equal(n1, n2);
    printf("resume: max |w_full - w_resumed| = %g over %zu weights\n", test_max_abs_diff(a, b, n1), n1);
    assert_memory_equal(a, b, n1 * sizeof(float));
    // A checkpoint of another architecture is refused with a message naming the file.
    pl_train_options other = tiny_options();
    other.d_model = 64;
    pl_trainer *wrong = NULL;
    assert_int_equal(pl_trainer_new(&other, &wrong), 0);
    assert_int_equal(pl_trainer_load_checkpoint(wrong, path), -1);
    assert_non_null(strstr(pl_errmsg(), "ckpt.bin"));
    // A truncated checkpoint too.
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 100), 0);
    fclose(f);
    assert_int_equal(pl_trainer_load_checkpoint(resumed, path), -1);
    printf("bad checkpoints: %s\n", pl_errmsg());
    pl_trainer_free(wrong);
    pl_trainer_free(full);
    pl_trainer_free(resumed);
}

static void test_deterministic_for_a_seed(void **state) {
    pl_train_options o = tiny_options();
    pl_trainer *a = train_steps(&o, 6), *b = train_steps(&o, 6);
    o.seed = 8;
    pl_trainer *c = train_steps(&o, 6);
    size_t n;
    const float *pa = pl_trainer_params(a, &n), *pb = pl_trainer_params(b, NULL), *pc = pl_trainer_params(c, NULL);
    assert_memory_equal(pa, pb, n * sizeof(float));
    double diff = test_max_abs_diff(pa, pc, n);
    printf("same seed: identical; other seed: max abs diff %g\n", diff);
    assert_true(diff > 1e-3);
    pl_trainer_free(a), pl_trainer_free(b), pl_trainer_free(c);
}

// The exported file: metadata and shapes through the GGUF reader, then the full runtime.
static void test_export_reloads_with_same_logits(void **state) {
    pl_train_options o = tiny_options();
    pl_trainer *t = train_steps(&o, 20);
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.gguf", test_tmpdir());
    assert_int_equal(pl_trainer_export_gguf(t, path), 0);

    // 1. Parse with the GGUF reader.
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *bytes = malloc((size_t)size);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    pl_gguf g;
    assert_int_equal(pl_gguf_parse(&g, path, bytes, (size_t)size), 0);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 32);
    assert_int_equal(g.data_offset % 32, 0);
    int64_t v;
    double fv;
    bool bv;
    char *arch = pl_gguf_get_string(&g, "general.architecture");
    assert_string_equal(arch, "llama");
    free(arch);
    assert_true(pl_gguf_get_int(&g, "llama.embedding_length", &v) && v == 32);
    assert_true(pl_gguf_get_int(&g, "llama.block_count", &v) && v == 2);
    assert_true(pl_gguf_get_int(&g, "llama.attention.head_count_kv", &v) && v == 2);
    assert_true(pl_gguf_get_int(&g, "llama.rope.dimension_count", &v) && v == 8);
    assert_true(pl_gguf_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &fv) && fabs(fv - 1e-5) < 1e-12);
    assert_true(pl_gguf_get_bool(&g, "tokenizer.ggml.add_space_prefix", &bv) && !bv);
    const pl_gguf_kv *tokens = pl_gguf_find(&g, "tokenizer.ggml.tokens");
    assert_non_null(tokens);
    assert_int_equal(tokens->n_elems, PL_TASK_VOCAB_SIZE);
    char **strs = pl_gguf_string_array(&g, tokens);
    assert_string_equal(strs[1], "<s>");
    assert_string_equal(strs[3 + 10], "<0x0A>");
    assert_string_equal(strs[259], "\xE2\x96\x81");
    assert_string_equal(strs[259 + ('A' - ' ')], "A");
    for (uint64_t i = 0; i < tokens->n_elems; i++) free(strs[i]);
    free(strs);
    const pl_gguf_tensor *wk = pl_gguf_find_tensor(&g, "blk.1.attn_k.weight");
    assert_non_null(wk);
    assert_int_equal(wk->ne[0], 32);  // innermost first: input width
    assert_int_equal(wk->ne[1], 16);  // Hkv * head_dim
    assert_null(pl_gguf_find_tensor(&g, "output.weight"));  // tied
    for (uint64_t i = 0; i < g.n_tensors; i++) assert_int_equal(g.tensors[i].offset % 32, 0);
    pl_gguf_free(&g);
    free(bytes);

    // 2. Load with the runtime and compare logits with the trainer's forward pass.
    pl_model *m = NULL;
    if (pl_model_open(&m, path) != 0) fail_msg("pl_model_open: %s", pl_errmsg());
    assert_true(m->config.tied_embeddings);
    assert_int_equal(m->config.n_kv_heads, 2);
    assert_int_equal(m->config.rope_style, PL_ROPE_ADJACENT);
    assert_non_null(m->tokenizer);
    const char *text = "Q:3+4*2-5=?|3+4=7|7*2=4|4-5=9|A:9\n";
    int32_t *ids = NULL;
    int n = pl_tokenizer_encode(m->tokenizer, text, true, &ids);
    assert_int_equal(n, (int)strlen(text) + 1);
    assert_int_equal(ids[0], PL_TASK_BOS);
    for (int i = 1; i < n; i++) assert_int_equal(ids[i], pl_task_vocab_byte_id((unsigned char)text[i - 1]));
    char *back = pl_tokenizer_decode(m->tokenizer, ids, n);
    assert_string_equal(back, text);
    free(back);

    int V = pl_trainer_vocab_size(t);
    float *mine = malloc(sizeof(float) * (size_t)n * V);
    assert_int_equal(pl_trainer_logits(t, ids, n, mine), 0);
    pl_session *s = NULL;
    assert_int_equal(pl_session_open(&s, m, 0), 0);
    pl_session_want_all_logits(s, true);
    const float *theirs = NULL;
    if (pl_forward(s, ids, n, &theirs) != 0) fail_msg("pl_forward: %s", pl_errmsg());
    double diff = test_max_abs_diff(mine, theirs, (size_t)n * V);
    printf("exported GGUF: pl_forward vs trainer logits max abs diff %.3g over %d positions\n", diff, n);
    assert_true(diff < 1e-5);
    // Token by token through the KV cache as well.
    pl_session_reset(s);
    double diff_decode = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(pl_forward(s, ids + i, 1, &theirs), 0);
        double d = test_max_abs_diff(mine + (size_t)i * V, theirs, (size_t)V);
        if (d > diff_decode) diff_decode = d;
    }
    printf("exported GGUF: decode step by step max abs diff %.3g\n", diff_decode);
    assert_true(diff_decode < 1e-4);
    pl_session_free(s);
    pl_model_free(m);
    free(ids);
    free(mine);
    pl_trainer_free(t);
}

// Every metadata type the writer offers, read back by the (independently written) GGUF reader.
static void test_gguf_writer_types(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/types.gguf", test_tmpdir());
    pl_gguf_writer *w = pl_gguf_writer_new();
    const char *strs[] = {"a", "", "\xE2\x96\x81x"};
    float fl[] = {1.5f, -2.25f};
    int32_t in[] = {-7, 0, 2147483647};
    float tensor[5] = {1, 2, 3, 4, 5};
    assert_int_equal(pl_gguf_add_u32(w, "k.u32", 4000000000u), 0);
    assert_int_equal(pl_gguf_add_i32(w, "k.i32", -123), 0);
    assert_int_equal(pl_gguf_add_f32(w, "k.f32", 0.125f), 0);
    assert_int_equal(pl_gguf_add_bool(w, "k.bool", true), 0);
    assert_int_equal(pl_gguf_add_string(w, "k.str", "hello"), 0);
    assert_int_equal(pl_gguf_add_string_array(w, "k.strs", strs, 3), 0);
    assert_int_equal(pl_gguf_add_f32_array(w, "k.f32s", fl, 2), 0);
    assert_int_equal(pl_gguf_add_i32_array(w, "k.i32s", in, 3), 0);
    assert_int_equal(pl_gguf_add_u32(w, "k.u32", 1), -1);  // duplicate key
    assert_int_equal(pl_gguf_add_tensor_f32(w, "t5", tensor, 1, (int64_t[]){5}), 0);
    assert_int_equal(pl_gguf_add_tensor_f32(w, "t5", tensor, 1, (int64_t[]){5}), -1);
    assert_int_equal(pl_gguf_add_tensor_f32(w, "t2x2", tensor + 1, 2, (int64_t[]){2, 2}), 0);
    assert_int_equal(pl_gguf_write_file(w, "/nonexistent-dir/x.gguf"), -1);
    assert_non_null(strstr(pl_errmsg(), "/nonexistent-dir/x.gguf"));
    assert_int_equal(pl_gguf_write_file(w, path), 0);
    pl_gguf_writer_free(w);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)size);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_memory_equal(bytes, "GGUF\x03\x00\x00\x00", 8);
    pl_gguf g;
    assert_int_equal(pl_gguf_parse(&g, path, bytes, (size_t)size), 0);
    int64_t v;
    double fv;
    bool bv;
    assert_true(pl_gguf_get_int(&g, "k.u32", &v) && v == 4000000000LL);
    assert_true(pl_gguf_get_int(&g, "k.i32", &v) && v == -123);
    assert_true(pl_gguf_get_float(&g, "k.f32", &fv) && fv == 0.125);
    assert_true(pl_gguf_get_bool(&g, "k.bool", &bv) && bv);
    char *hello = pl_gguf_get_string(&g, "k.str");
    assert_string_equal(hello, "hello");
    free(hello);
    const pl_gguf_kv *kv = pl_gguf_find(&g, "k.strs");
    assert_int_equal(kv->n_elems, 3);
    char **back = pl_gguf_string_array(&g, kv);
    for (int i = 0; i < 3; i++) assert_string_equal(back[i], strs[i]), free(back[i]);
    free(back);
    kv = pl_gguf_find(&g, "k.f32s");
    assert_int_equal(kv->elem_type, PL_GGUF_F32);
    assert_memory_equal(kv->value, fl, sizeof fl);
    kv = pl_gguf_find(&g, "k.i32s");
    assert_int_equal(kv->elem_type, PL_GGUF_I32);
    assert_memory_equal(kv->value, in, sizeof in);
    assert_true(pl_gguf_get_int(&g, "general.alignment", &v) && v == 32);
    const pl_gguf_tensor *t2 = pl_gguf_find_tensor(&g, "t2x2");
    assert_int_equal(t2->offset, 32);  // 5 floats = 20 bytes, padded to 32
    assert_memory_equal(bytes + g.data_offset + t2->offset, tensor + 1, 4 * sizeof(float));
    pl_gguf_free(&g);
    free(bytes);
}

// The bundled model answers easy items (arith and max at difficulty 2, vars with one hop) and fails
// more on the hardest (arith at the unseen length 8, vars with 5 hops); docs/training.md has the full
// table (200 items per cell: 100%, 100%, 99%; 15%, 19%).
static double bundled_accuracy(pl_session *s, const pl_model *m, const char *task, int difficulty, int n) {
    pl_dataset ds;
    assert_int_equal(pl_task_generate(&ds, task, n, 77, difficulty, difficulty), 0);
    pl_sample_params p = pl_sample_defaults();
    p.temperature = 0;
    const char *stops[] = {"\n"};
    p.stop_strings = stops;
    p.n_stop_strings = 1;
    int correct = 0;
    for (int i = 0; i < ds.n; i++) {
        int32_t *ids = NULL;
        int n_prompt = pl_tokenizer_encode(m->tokenizer, ds.items[i].prompt, true, &ids);
        assert_true(n_prompt > 0);
        p.max_new = 100;
        pl_generation g;
        assert_int_equal(pl_generate(s, ids, n_prompt, &p, NULL, NULL, &g), 0);
        char *text = pl_tokenizer_decode(m->tokenizer, g.ids, g.n);
        pl_cot_check c;
        assert_int_equal(pl_check_cot(&c, &ds.items[i], text), 0);
        correct += c.correct;
        free(text), free(ids);
        pl_generation_free(&g);
    }
    pl_dataset_free(&ds);
    return (double)correct / n;
}

static void test_bundled_model(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s/share/models/probelab-cot.gguf", test_source_dir());
    pl_model *m = NULL;
    if (pl_model_open(&m, path) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(pl_model_n_params(m), 832896);
    pl_session *s = NULL;
    assert_int_equal(pl_session_open(&s, m, 0), 0);
    double arith2 = bundled_accuracy(s, m, "arith", 2, 20), max2 = bundled_accuracy(s, m, "max", 2, 20);
    double arith8 = bundled_accuracy(s, m, "arith", 8, 20);
    double vars1 = bundled_accuracy(s, m, "vars", 1, 100), vars5 = bundled_accuracy(s, m, "vars", 5, 20);
    printf("bundled model: arith-2 %.0f%%, max-2 %.0f%%, vars-1 %.0f%%; arith-8 (unseen length) %.0f%%, "
           "vars-5 %.0f%%\n", 100 * arith2, 100 * max2, 100 * vars1, 100 * arith8, 100 * vars5);
    assert_true(arith2 >= 0.95 && max2 >= 0.95);
    // 97 of these 100; the previous model (71%) took the operand by position, not by name.
    assert_true(vars1 >= 0.9);
    assert_true(arith8 <= 0.6 && vars5 <= 0.6);
    pl_session_free(s);
    pl_model_free(m);
}

static void test_train_command(void **state) {
    char cmd[2048], *out = NULL;
    const char *dir = test_tmpdir();
    snprintf(cmd, sizeof cmd,
             "%s train --task arith,max --steps 4 --batch 4 --d-model 16 --layers 1 --heads 2 --kv-heads 1 --ffn 32 "
             "--ctx 64 --log-every 2 --out %s/cmd.gguf --checkpoint %s/cmd.ckpt 2>&1",
             test_probelab_bin(), dir, dir);
    int rc = test_run(cmd, &out);
    printf("%s", out ? out : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "step     4/4"));
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/cmd.gguf", dir);
    pl_model *m = NULL;
    assert_int_equal(pl_model_open(&m, path), 0);
    assert_int_equal(m->config.d_model, 16);
    pl_model_free(m);
    // Resuming a finished run does no steps and writes the same model.
    snprintf(cmd, sizeof cmd,
             "%s train --task arith,max --steps 4 --batch 4 --d-model 16 --layers 1 --heads 2 --kv-heads 1 --ffn 32 "
             "--ctx 64 --resume %s/cmd.ckpt --out %s/cmd2.gguf >/dev/null 2>&1 && cmp %s/cmd.gguf %s/cmd2.gguf",
             test_probelab_bin(), dir, dir, dir, dir);
    assert_int_equal(test_run(cmd, NULL), 0);
    // The accuracy table runs on the exported model (an untrained one: only the format is checked).
    snprintf(cmd, sizeof cmd, "%s train eval --model %s/cmd.gguf --task max --n 2 2>/dev/null", test_probelab_bin(), dir);
    rc = test_run(cmd, &out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "| max | 8 | 2 |"));
    free(out);
    // Errors: one line naming the problem, non-zero exit, no crash.
    snprintf(cmd, sizeof cmd, "%s train --task nosuch --out %s/x.gguf 2>&1", test_probelab_bin(), dir);
    rc = test_run(cmd, &out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "nosuch"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s train --heads 3 --out %s/x.gguf 2>&1", test_probelab_bin(), dir);
    rc = test_run(cmd, &out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "multiple"));
    free(out);
}

int main(void) {
    if (pl_task_mix_parse(&source_mix, "arith,max", 1, 3) != 0) return fprintf(stderr, "%s\n", pl_errmsg()), 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_goes_down),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_export_reloads_with_same_logits),
        cmocka_unit_test(test_gguf_writer_types),
        cmocka_unit_test(test_bundled_model),
        cmocka_unit_test(test_train_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
