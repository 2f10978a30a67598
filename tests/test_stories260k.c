// stories260K (a real Llama GGUF) against independent references in ../shared/reference:
// every hook of one forward pass (PyTorch float64), greedy ids (llama.cpp / llama2.c), and the
// tokenizer (llama.cpp) on every line of stories260K_tokenize.jsonl.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/base/npy.h"
#include "runtime/model/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

static pl_model *model;

static int load_model(void **state) {
    (void)state;
    return pl_model_open(&model, test_shared_path("models/stories260K.gguf"));
}

static int free_model(void **state) {
    (void)state;
    pl_model_free(model);
    return 0;
}

static void every_hook_matches_reference(void **state) {
    (void)state;
    char ref_dir[4096];
    snprintf(ref_dir, sizeof ref_dir, "%s", test_shared_path("reference/stories260K_once"));
    const char *out_dir = test_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s run %s --token-ids 1,403,407,261,378,432,383,286 --hooks '*' --dump %s 2>&1",
             test_probelab_bin(), test_shared_path("models/stories260K.gguf"), out_dir);
    char *out;
    int rc = test_run(cmd, &out);
    if (rc != 0) fail_msg("probelab run failed: %s", out);
    free(out);

    char manifest_path[4200];
    snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", ref_dir);
    json_error_t err;
    json_t *manifest = json_load_file(manifest_path, 0, &err);
    assert_non_null(manifest);
    json_t *hooks = json_object_get(manifest, "hooks");
    const char *name;
    json_t *shape;
    int n_checked = 0;
    double worst = 0;
    json_object_foreach(hooks, name, shape) {
        char ref_path[4400], got_path[4400];
        snprintf(ref_path, sizeof ref_path, "%s/%s.npy", ref_dir, name);
        snprintf(got_path, sizeof got_path, "%s/%s.npy", out_dir, name);
        float *ref, *got;
        int nd_ref, nd_got;
        int64_t sh_ref[PL_NPY_MAX_DIMS], sh_got[PL_NPY_MAX_DIMS];
        assert_int_equal(pl_npy_read_f32(ref_path, &ref, &nd_ref, sh_ref), 0);
        if (pl_npy_read_f32(got_path, &got, &nd_got, sh_got) != 0) fail_msg("hook %s was not dumped", name);
        assert_int_equal(nd_ref, nd_got);
        size_t count = 1;
        for (int d = 0; d < nd_ref; d++) {
            assert_int_equal(sh_ref[d], sh_got[d]);
            count *= (size_t)sh_ref[d];
        }
        // -inf (masked scores) must match exactly; everything else within 1e-4.
        double err_max = 0;
        for (size_t i = 0; i < count; i++) {
            if (isinf(ref[i]) || isinf(got[i])) {
                if (ref[i] != got[i]) fail_msg("%s[%zu]: %g vs reference %g", name, i, got[i], ref[i]);
                continue;
            }
            double e = fabs((double)ref[i] - got[i]);
            if (!(e <= err_max)) err_max = e;
        }
        if (err_max > worst) worst = err_max;
        if (!(err_max <= 1e-4)) fail_msg("%s: max abs error %g > 1e-4", name, err_max);
        free(ref);
        free(got);
        n_checked++;
    }
    printf("checked %d hooks, worst max abs error %.3g\n", n_checked, worst);
    assert_true(n_checked >= 90);
    json_decref(manifest);
}

static void greedy_matches_llama_cpp(void **state) {
    (void)state;
    json_error_t err;
    json_t *ref = json_load_file(test_shared_path("reference/stories260K_greedy.json"), 0, &err);
    assert_non_null(ref);
    json_t *prompt = json_object_get(ref, "prompt_ids"), *greedy = json_object_get(ref, "greedy_ids");
    int n_prompt = (int)json_array_size(prompt), n_greedy = (int)json_array_size(greedy);
    int32_t ids[64];
    for (int i = 0; i < n_prompt; i++) ids[i] = (int32_t)json_integer_value(json_array_get(prompt, i));
    pl_session *s;
    assert_int_equal(pl_session_open(&s, model, 0), 0);
    pl_sample_params p = pl_sample_defaults();
    p.max_new = n_greedy;
    p.stop_at_eos = false;
    pl_generation g;
    assert_int_equal(pl_generate(s, ids, n_prompt, &p, NULL, NULL, &g), 0);
    assert_int_equal(g.n, n_greedy);
    for (int i = 0; i < n_greedy; i++) assert_int_equal(g.ids[i], json_integer_value(json_array_get(greedy, i)));
    // The same run with every prompt logit kept must choose the same tokens.
    pl_session_want_all_logits(s, true);
    pl_generation g2;
    assert_int_equal(pl_generate(s, ids, n_prompt, &p, NULL, NULL, &g2), 0);
    for (int i = 0; i < n_greedy; i++) assert_int_equal(g2.ids[i], g.ids[i]);
    pl_generation_free(&g);
    pl_generation_free(&g2);
    pl_session_free(s);
    json_decref(ref);
}

static void decode_steps_match_prefill(void **state) {
    // Logits of the last token computed by prefill equal those computed through the KV cache.
    (void)state;
    int32_t ids[] = {1, 403, 407, 261, 378, 432, 383, 286};
    int n = 8, V = model->config.vocab_size;
    pl_session *s;
    assert_int_equal(pl_session_open(&s, model, 0), 0);
    const float *logits;
    assert_int_equal(pl_forward(s, ids, n, &logits), 0);
    float *prefill = malloc(sizeof(float) * V);
    memcpy(prefill, logits, sizeof(float) * V);
    pl_session_reset(s);
    for (int i = 0; i < n; i++) assert_int_equal(pl_forward(s, &ids[i], 1, &logits), 0);
    double e = test_max_abs_diff(prefill, logits, (size_t)V);
    printf("prefill vs decode max abs diff %.3g\n", e);
    assert_true(e < 1e-5);
    free(prefill);
    pl_session_free(s);
}

static void tokenizer_matches_llama_cpp(void **state) {
    (void)state;
    FILE *f = fopen(test_shared_path("reference/stories260K_tokenize.jsonl"), "r");
    assert_non_null(f);
    char line[65536];
    int n_lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        assert_non_null(obj);
        const char *text = json_string_value(json_object_get(obj, "text"));
        json_t *want = json_object_get(obj, "ids");
        int32_t *ids;
        int n = pl_tokenizer_encode(model->tokenizer, text, true, &ids);
        if (n != (int)json_array_size(want)) fail_msg("'%s': %d ids, llama.cpp gives %zu", text, n, json_array_size(want));
        for (int i = 0; i < n; i++)
            if (ids[i] != json_integer_value(json_array_get(want, i)))
                fail_msg("'%s': id %d is %d, llama.cpp gives %lld", text, i, ids[i],
                         (long long)json_integer_value(json_array_get(want, i)));
        char *back = pl_tokenizer_decode(model->tokenizer, ids, n);
        if (strcmp(back, text) != 0) fail_msg("decode(encode('%s')) = '%s'", text, back);
        free(back);
        free(ids);
        json_decref(obj);
        n_lines++;
    }
    fclose(f);
    printf("%d tokenizer lines match\n", n_lines);
    assert_true(n_lines > 5);
}

static void bad_inputs_fail_cleanly(void **state) {
    (void)state;
    pl_session *s;
    assert_int_equal(pl_session_open(&s, model, 16), 0);
    const float *logits;
    int32_t bad[] = {1, 9999};
    assert_int_equal(pl_forward(s, bad, 2, &logits), PL_ERR_RANGE);  // token id
    int32_t many[17] = {1};
    assert_int_equal(pl_forward(s, many, 17, &logits), PL_ERR_RANGE);  // past the context
    assert_int_equal(pl_forward(s, many, 0, &logits), PL_ERR_USAGE);
    pl_session *too_long = NULL;
    assert_int_equal(pl_session_open(&too_long, model, model->config.context_length + 1), PL_ERR_RANGE);
    assert_null(too_long);
    int32_t *ids;
    assert_int_equal(pl_tokenizer_encode(model->tokenizer, "bad \xff byte", true, &ids), -1);  // a count, or -1
    assert_int_equal(pl_errcode(), PL_ERR_FORMAT);
    pl_session_free(s);
}

int main(void) {
    test_require_shared("models/stories260K.gguf");
    test_require_shared("reference/stories260K_once/manifest.json");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_hook_matches_reference),
        cmocka_unit_test(greedy_matches_llama_cpp),
        cmocka_unit_test(decode_steps_match_prefill),
        cmocka_unit_test(tokenizer_matches_llama_cpp),
        cmocka_unit_test(bad_inputs_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, load_model, free_model);
}
