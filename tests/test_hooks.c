// Hook semantics on a random-weight model: names and globs, reads in prefill and every decode
// step, and the writing edits (zero / mean ablation, steering, patching) checked against what
// they must do by construction.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/hooks.h"
#include "runtime/session.h"
#include "tests/support/test_support.h"

static pl_model *model;
enum { D = 32, T = 6 };

static int make_model(void **state) {
    (void)state;
    pl_config c = {.arch = PL_ARCH_LLAMA, .d_model = D, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                   .d_ff = 48, .vocab_size = 50, .context_length = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                   .rope_style = PL_ROPE_NEOX};
    snprintf(c.arch_name, sizeof c.arch_name, "llama");
    return pl_model_random(&c, 3, &model);
}

static int free_model(void **state) {
    (void)state;
    pl_model_free(model);
    return 0;
}

static const int32_t prompt[T] = {1, 7, 9, 3, 22, 41};

// Records rows of one hook for every position it sees.
typedef struct {
    float rows[64][128];
    int row_size, n_calls, max_pos;
    int seen[64];
} recorder;

static void record(const pl_hook_event *ev, void *user) {
    recorder *r = user;
    r->n_calls++;
    r->row_size = ev->row_size;
    for (int i = 0; i < ev->n_pos; i++) {
        memcpy(r->rows[ev->pos0 + i], ev->data + (size_t)i * ev->row_size, sizeof(float) * (size_t)ev->row_size);
        r->seen[ev->pos0 + i] = 1;
        if (ev->pos0 + i > r->max_pos) r->max_pos = ev->pos0 + i;
    }
}

static void names_and_globs(void **state) {
    (void)state;
    pl_hooks *h = pl_hooks_new(&model->config);
    const char **names;
    int n = pl_hooks_list(h, &names);
    assert_int_equal(n, 3 + 3 * 18);  // embed, 18 per block, ln_final, logits (no pos_embed for llama)
    assert_string_equal(names[0], "hook_embed");
    assert_string_equal(names[1], "blocks.0.hook_resid_pre");
    assert_string_equal(names[n - 1], "logits");
    recorder r = {0};
    assert_int_equal(pl_hooks_add(h, "blocks.*.hook_resid_post", record, &r), 3);
    assert_int_equal(pl_hooks_add(h, "blocks.1.attn.hook_*", record, &r), 8);
    assert_int_equal(pl_hooks_add(h, "logits, ln_final.hook_out", record, &r), 2);
    assert_int_equal(pl_hooks_add(h, "blocks.*.hook_nothing", record, &r), -1);
    assert_non_null(strstr(pl_errmsg(), "hook_nothing"));
    assert_int_equal(pl_hooks_add(h, "hook_pos_embed", record, &r), -1);  // gpt2 only
    pl_hook_kind kind;
    int layer;
    assert_int_equal(pl_hook_parse("blocks.2.mlp.hook_post", &kind, &layer), 0);
    assert_int_equal(kind, PL_HOOK_MLP_POST);
    assert_int_equal(layer, 2);
    assert_int_equal(pl_hook_parse("blocks.x.hook_resid_post", &kind, &layer), -1);
    assert_int_equal(pl_hook_parse("hook_resid_post", &kind, &layer), -1);
    pl_hooks_free(h);
}

static void reads_cover_prefill_and_decode(void **state) {
    (void)state;
    pl_hooks *h = pl_hooks_new(&model->config);
    recorder *r = calloc(1, sizeof *r);
    pl_hooks_add(h, "blocks.2.hook_resid_post", record, r);
    pl_session *s;
    assert_int_equal(pl_session_open(&s, model, 0), 0);
    pl_session_set_hooks(s, h);
    pl_sample_params p = pl_sample_defaults();
    p.max_new = 5;
    p.stop_at_eos = false;
    pl_generation g;
    assert_int_equal(pl_generate(s, prompt, T, &p, NULL, NULL, &g), 0);
    // prefill (1 call) + 4 decode steps (the 5th token is sampled, never fed back)
    assert_int_equal(r->n_calls, 1 + 4);
    assert_int_equal(r->max_pos, T + 3);
    // A decode row equals the row a fresh prefill of the same tokens computes.
    int32_t all[T + 4];
    memcpy(all, prompt, sizeof prompt);
    memcpy(all + T, g.ids, 4 * sizeof(int32_t));
    recorder *r2 = calloc(1, sizeof *r2);
    pl_hooks *h2 = pl_hooks_new(&model->config);
    pl_hooks_add(h2, "blocks.2.hook_resid_post", record, r2);
    pl_session_set_hooks(s, h2);
    pl_session_reset(s);
    const float *logits;
    assert_int_equal(pl_forward(s, all, T + 4, &logits), 0);
    for (int pos = 0; pos < T + 4; pos++) assert_true(test_max_abs_diff(r->rows[pos], r2->rows[pos], D) < 1e-5);
    pl_generation_free(&g);
    pl_session_free(s);
    pl_hooks_free(h);
    pl_hooks_free(h2);
    free(r);
    free(r2);
}

// Run the prompt with an edit on one hook; record another hook and return the last logits.
static void run_with(const char *edit_hook, pl_edit *e, const char *read_hook, recorder *r, float *logits_out) {
    pl_hooks *h = pl_hooks_new(&model->config);
    if (edit_hook) assert_true(pl_hooks_add(h, edit_hook, pl_hook_edit, e) > 0);
    if (read_hook) assert_true(pl_hooks_add(h, read_hook, record, r) > 0);
    pl_session *s;
    assert_int_equal(pl_session_open(&s, model, 0), 0);
    pl_session_set_hooks(s, h);
    const float *logits;
    assert_int_equal(pl_forward(s, prompt, T, &logits), 0);
    if (logits_out) memcpy(logits_out, logits, sizeof(float) * (size_t)model->config.vocab_size);
    pl_session_free(s);
    pl_hooks_free(h);
}

static void zero_ablation_removes_the_contribution(void **state) {
    (void)state;
    // Zeroing attn_out at positions 2..3 of block 1 makes resid_mid equal resid_pre there.
    pl_edit e = {.op = PL_EDIT_ZERO, .pos_lo = 2, .pos_hi = 4};
    recorder *pre = calloc(1, sizeof *pre), *mid = calloc(1, sizeof *mid);
    run_with("blocks.1.hook_attn_out", &e, "blocks.1.hook_resid_pre", pre, NULL);
    run_with("blocks.1.hook_attn_out", &e, "blocks.1.hook_resid_mid", mid, NULL);
    for (int pos = 0; pos < T; pos++) {
        double diff = test_max_abs_diff(pre->rows[pos], mid->rows[pos], D);
        if (pos == 2 || pos == 3) assert_true(diff == 0);
        else assert_true(diff > 1e-4);
    }
    free(pre);
    free(mid);
}

static void mean_ablation_and_patching(void **state) {
    (void)state;
    int V = model->config.vocab_size;
    float *clean = malloc(sizeof(float) * V), *patched = malloc(sizeof(float) * V);
    recorder *r = calloc(1, sizeof *r);
    run_with(NULL, NULL, "blocks.1.hook_resid_post", r, clean);
    // Patching every position of resid_post with its own clean rows changes nothing ...
    float rows[T * D];
    for (int pos = 0; pos < T; pos++) memcpy(rows + pos * D, r->rows[pos], sizeof(float) * D);
    pl_edit patch = {.op = PL_EDIT_REPLACE, .pos_lo = 0, .pos_hi = -1, .rows = rows, .n_rows = T};
    run_with("blocks.1.hook_resid_post", &patch, NULL, NULL, patched);
    assert_true(test_max_abs_diff(clean, patched, V) < 1e-6);
    // ... while patching the last position with row 0 changes the last logits, and the recorded
    // row downstream equals the patch (mean-ablation writes the given row the same way).
    patch.pos_lo = T - 1;
    patch.n_rows = 1;
    recorder *after = calloc(1, sizeof *after);
    run_with("blocks.1.hook_resid_post", &patch, "blocks.2.hook_resid_pre", after, patched);
    assert_true(test_max_abs_diff(clean, patched, V) > 1e-3);
    assert_true(test_max_abs_diff(after->rows[T - 1], rows, D) == 0);
    float mean[D];
    for (int j = 0; j < D; j++) {
        mean[j] = 0;
        for (int pos = 0; pos < T; pos++) mean[j] += r->rows[pos][j] / T;
    }
    pl_edit mean_edit = {.op = PL_EDIT_MEAN, .pos_lo = 0, .pos_hi = -1, .vector = mean};
    run_with("blocks.1.hook_resid_post", &mean_edit, "blocks.2.hook_resid_pre", after, NULL);
    for (int pos = 0; pos < T; pos++) assert_true(test_max_abs_diff(after->rows[pos], mean, D) == 0);
    free(r);
    free(after);
    free(clean);
    free(patched);
}

static void steering_adds_the_vector_everywhere(void **state) {
    (void)state;
    float v[D];
    for (int j = 0; j < D; j++) v[j] = (float)sin(j + 1.0);
    recorder *base = calloc(1, sizeof *base), *steered = calloc(1, sizeof *steered);
    run_with(NULL, NULL, "blocks.0.hook_resid_post", base, NULL);
    pl_edit add = {.op = PL_EDIT_ADD, .pos_lo = 0, .pos_hi = -1, .vector = v, .alpha = 2.5f};
    // The edit is on resid_post of block 0; the next block's resid_pre sees base + 2.5 v.
    run_with("blocks.0.hook_resid_post", &add, "blocks.1.hook_resid_pre", steered, NULL);
    for (int pos = 0; pos < T; pos++)
        for (int j = 0; j < D; j++) assert_float_equal(steered->rows[pos][j], base->rows[pos][j] + 2.5f * v[j], 1e-5);
    // During generation the edit applies at every decode step too: alpha = 0 reproduces the
    // unsteered tokens exactly, a large alpha changes them.
    pl_sample_params p = pl_sample_defaults();
    p.max_new = 8;
    p.stop_at_eos = false;
    int32_t ids[3][8];
    float alphas[3] = {0, 0, 40};
    for (int k = 0; k < 3; k++) {
        pl_hooks *h = pl_hooks_new(&model->config);
        pl_edit e = {.op = PL_EDIT_ADD, .pos_lo = 0, .pos_hi = -1, .vector = v, .alpha = alphas[k]};
        if (k > 0) pl_hooks_add(h, "blocks.*.hook_resid_post", pl_hook_edit, &e);
        pl_session *s;
        pl_session_open(&s, model, 0);
        pl_session_set_hooks(s, h);
        pl_generation g;
        assert_int_equal(pl_generate(s, prompt, T, &p, NULL, NULL, &g), 0);
        memcpy(ids[k], g.ids, sizeof ids[k]);
        pl_generation_free(&g);
        pl_session_free(s);
        pl_hooks_free(h);
    }
    assert_memory_equal(ids[0], ids[1], sizeof ids[0]);
    assert_memory_not_equal(ids[0], ids[2], sizeof ids[0]);
    free(base);
    free(steered);
}

typedef struct {
    int calls;
    double worst;
} pattern_check;

static void on_pattern(const pl_hook_event *ev, void *user) {
    pattern_check *c = user;
    c->calls++;
    assert_int_equal(ev->shape[0], 4);
    assert_int_equal(ev->n_ctx, ev->pos0 + ev->n_pos);
    for (int h = 0; h < 4; h++)
        for (int i = 0; i < ev->n_pos; i++) {
            const float *row = ev->data + ((size_t)h * ev->n_pos + i) * ev->n_ctx;
            double sum = 0;
            for (int j = 0; j < ev->n_ctx; j++) {
                if (j > ev->pos0 + i) assert_true(row[j] == 0);  // causal
                sum += row[j];
            }
            if (fabs(sum - 1) > c->worst) c->worst = fabs(sum - 1);
        }
}

static void attention_pattern_rows_sum_to_one(void **state) {
    (void)state;
    pl_hooks *h = pl_hooks_new(&model->config);
    pattern_check c = {0, 0};
    pl_hooks_add(h, "blocks.*.attn.hook_pattern", on_pattern, &c);
    pl_session *s;
    pl_session_open(&s, model, 0);
    pl_session_set_hooks(s, h);
    const float *logits;
    pl_forward(s, prompt, T, &logits);
    int32_t next = 5;
    pl_forward(s, &next, 1, &logits);  // a decode step: one row over T + 1 keys
    assert_int_equal(c.calls, 6);
    assert_true(c.worst < 1e-5);
    pl_session_free(s);
    pl_hooks_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_globs),
        cmocka_unit_test(reads_cover_prefill_and_decode),
        cmocka_unit_test(zero_ablation_removes_the_contribution),
        cmocka_unit_test(mean_ablation_and_patching),
        cmocka_unit_test(steering_adds_the_vector_everywhere),
        cmocka_unit_test(attention_pattern_rows_sum_to_one),
    };
    return cmocka_run_group_tests(tests, make_model, free_model);
}
