// A store traced from a Hugging Face folder, from one working directory, and read from another
// (issue 9 defects 2 and 5): the store records the folder's absolute path and the sha256 every
// command computes the same way (pl_model_identify: the folder's model.safetensors); `lens` and
// `precot` steering reopen it from elsewhere; a moved model is found with --model PATH, and a
// different model given there is refused by its sha256.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "tests/support/hf_folder.h"
#include "tests/support/test_support.h"

static char dir[512];

// Run `probelab ARGS` in directory cwd; returns the status, output (stdout + stderr) in *out.
static int run_in(const char *cwd, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_in(const char *cwd, char **out, const char *fmt, ...) {
    char args[3000], cmd[4000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", cwd, test_probelab_bin(), args);
    *out = NULL;
    int status = test_run(cmd, out);
    if (!*out) *out = strdup("");
    if (status != 0) fprintf(stderr, "(in %s) probelab %s\n -> %d: %s", cwd, args, status, *out);
    return status;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char path[1400];
    snprintf(path, sizeof path, "mkdir -p '%s/a' '%s/b'", dir, dir);
    if (test_run(path, NULL) != 0) return -1;
    snprintf(path, sizeof path, "%s/a/hf-llama", dir);
    if (test_write_hf_llama(path, 48, 2, 1)) return -1;
    snprintf(path, sizeof path, "%s/other", dir);
    if (test_write_hf_llama(path, 48, 2, 2)) return -1;
    pl_dataset d;
    snprintf(path, sizeof path, "%s/max.jsonl", dir);
    if (pl_task_generate(&d, "max", 24, 7, 1, 3) || pl_dataset_write_jsonl(&d, path)) return -1;
    pl_dataset_free(&d);
    return 0;
}

static void hf_store_read_from_elsewhere(void **state) {
    (void)state;
    char a[700], b[700], *out;
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    // Trace with a relative folder path, from a/.
    assert_int_equal(run_in(a, &out, "trace hf-llama --dataset ../max.jsonl --store ../s.db --record"
                                     " 'blocks.*.hook_resid_post,hook_embed' --dtype f32 --max-new 6 --no-progress"), 0);
    free(out);
    // The store holds the absolute folder and the sha256 of its model.safetensors (sha256sum's).
    assert_int_equal(run_in(b, &out, "runs ../s.db --models --json"), 0);
    json_t *models = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(models), 1);
    json_t *m = json_array_get(models, 0);
    char real[PATH_MAX], cmd[PATH_MAX + 200], *sum = NULL;
    snprintf(cmd, sizeof cmd, "%s/a/hf-llama", dir);
    assert_non_null(realpath(cmd, real));
    assert_string_equal(json_string_value(json_object_get(m, "path")), real);
    assert_string_equal(json_string_value(json_object_get(m, "name")), "hf-llama");
    assert_int_equal(json_integer_value(json_object_get(m, "d_model")), 48);
    snprintf(cmd, sizeof cmd, "sha256sum '%s/model.safetensors'", real);
    assert_int_equal(test_run(cmd, &sum), 0);
    assert_memory_equal(sum, json_string_value(json_object_get(m, "sha256")), 64);
    free(sum);
    json_decref(models);
    // lens and precot (steering reopens the model) from another directory.
    assert_int_equal(run_in(b, &out, "lens ../s.db --run 1 --top-k 2 --json"), 0);
    assert_non_null(strstr(out, "\"layers\""));
    free(out);
    assert_int_equal(run_in(b, &out, "precot ../s.db --n-steer 1 --alphas 0,1 --folds 2 --bootstrap 10 --quiet --json"), 0);
    free(out);
    // Moved: the recorded path is gone; --model PATH finds it, checked by sha256.
    snprintf(cmd, sizeof cmd, "mv '%s/a/hf-llama' '%s/moved'", dir, dir);
    assert_int_equal(test_run(cmd, NULL), 0);
    assert_int_not_equal(run_in(b, &out, "lens ../s.db --run 1"), 0);
    assert_non_null(strstr(out, "pass --model PATH if it moved"));
    free(out);
    assert_int_equal(run_in(b, &out, "lens ../s.db --run 1 --model ../moved"), 0);
    free(out);
    assert_int_equal(run_in(b, &out, "lens ../s.db --run 1 --model ../moved/config.json"), 0);  // a file inside it
    free(out);
    assert_int_not_equal(run_in(b, &out, "lens ../s.db --run 1 --model ../other"), 0);
    assert_non_null(strstr(out, "is not model 1 (hf-llama)"));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));  // one line
    free(out);
    assert_int_not_equal(run_in(b, &out, "precot ../s.db --n-steer 1 --folds 2 --bootstrap 10 --quiet --model ../other"), 0);
    assert_non_null(strstr(out, "is not model 1 (hf-llama)"));
    free(out);
    assert_int_equal(run_in(b, &out, "precot ../s.db --n-steer 1 --alphas 0,1 --folds 2 --bootstrap 10 --quiet --model ../moved"), 0);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(hf_store_read_from_elsewhere)};
    return cmocka_run_group_tests(tests, setup, NULL);
}
