// The `probelab` command as a user meets it, driving the real binary (PL_BIN): every command has
// --help and --version, names an unknown option in a one-line error "probelab: <command>: ...",
// exits 2 for usage errors and 1 for failures, and prints JSON that parses with --json. Also the
// regressions of issue 9 (defect 8: view of a missing store or run, show accepting --bogus,
// generate accepting --temp -1 / --top-p 5) and issue 10 (#6: numeric options that wrapped around
// or were accepted silently), and `tokenize MODEL -- "-text"`.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/sample_store.h"
#include "tests/support/test_support.h"

static char dir[512], model[1024], data[600], store[600], sample[600];

typedef struct {
    int status;
    char *out, *err;  // stdout and stderr of the command (malloc'd)
} result;

static void result_free(result *r) {
    free(r->out);
    free(r->err);
}

// Run `probelab ARGS` (a shell-quoted argument string), capturing stdout and stderr separately.
static result probelab(const char *fmt, ...) {
    char args[3000], cmd[8192], errfile[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    // fontconfig's caches (held by cairo until exit) read as leaks under ASan: suppress them.
    snprintf(cmd, sizeof cmd, "LSAN_OPTIONS=suppressions='%s/lsan.supp' '%s' %s 2>'%s'", dir, test_probelab_bin(), args,
             errfile);
    result r = {0};
    r.status = test_run(cmd, &r.out);
    FILE *f = fopen(errfile, "r");
    size_t cap = 1 << 16, n = 0;
    r.err = calloc(cap, 1);
    if (f) {
        n = fread(r.err, 1, cap - 1, f);
        fclose(f);
    }
    r.err[n] = '\0';
    return r;
}

// stderr is exactly one line that starts "probelab: <command>: " and contains every needle.
static void assert_error_line(const result *r, const char *command, const char *needle1, const char *needle2) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "probelab: %s: ", command);
    if (strncmp(r->err, prefix, strlen(prefix)) != 0 || (needle1 && !strstr(r->err, needle1)) ||
        (needle2 && !strstr(r->err, needle2))) {
        print_error("want one line '%s...%s...%s', got: %s\n", prefix, needle1 ? needle1 : "", needle2 ? needle2 : "", r->err);
        fail();
    }
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    assert_true(nl[1] == '\0');
}

static json_t *parse_json(const result *r) {
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    if (!j) {
        print_error("not JSON (%s at line %d): %s\n", e.text, e.line, r->out);
        fail();
    }
    return j;
}

// Every command and subcommand with options, as the user types it.
static const char *const commands[] = {
    "info", "tokenize", "generate", "run", "trace", "runs", "show", "export", "label", "probe train", "probe apply",
    "probe list", "probe show", "precot", "lens", "view", "plot", "tasks list", "tasks generate", "tasks check",
    "train", "train eval", "bench forward", "bench store", "bench probe", "bench train", "demo", "store check",
};
static const char *const groups[] = {"probe", "tasks", "bench", "store"};

static void test_help_version_unknown(void **state) {
    (void)state;
    result r = probelab("--version");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "probelab ", 9) == 0);
    char version[128];
    snprintf(version, sizeof version, "%s", r.out);
    result_free(&r);
    r = probelab("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: probelab COMMAND"));
    result_free(&r);
    r = probelab("nosuchcommand");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command 'nosuchcommand'"));
    result_free(&r);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *c = commands[i];
        char want[128];
        snprintf(want, sizeof want, "usage: probelab %s ", c);
        r = probelab("%s --help", c);
        if (r.status != 0 || strncmp(r.out, want, strlen(want)) != 0 || !strstr(r.out, "--version")) {
            print_error("%s --help: status %d, stdout: %.300s\n", c, r.status, r.out);
            fail();
        }
        result_free(&r);
        r = probelab("%s --version", c);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, version);
        result_free(&r);
        // Unknown options are named, in one line with the command's prefix; exit 2.
        r = probelab("%s --no-such-option", c);
        if (r.status != 2) print_error("%s --no-such-option: status %d\n", c, r.status);
        assert_int_equal(r.status, 2);
        assert_error_line(&r, c, "unknown option '--no-such-option'", NULL);
        result_free(&r);
    }
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        r = probelab("%s --help", groups[i]);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "subcommands:"));
        result_free(&r);
        r = probelab("%s nosuch", groups[i]);
        assert_int_equal(r.status, 2);
        assert_error_line(&r, groups[i], "unknown subcommand 'nosuch'", NULL);
        result_free(&r);
        r = probelab("%s", groups[i]);
        assert_int_equal(r.status, 2);
        result_free(&r);
    }
}

// Issue 10 #6 and issue 9 defect 8: numbers are finite, in range, never wrapped; the error names
// the option and its range.
static void test_numeric_ranges(void **state) {
    (void)state;
    struct {
        const char *cmd, *args, *needle1, *needle2;
    } cases[] = {
        {"trace", "--limit 4294967296", "--limit 4294967296", "[0, 2147483647]"},
        {"trace", "--limit -1", "--limit -1", "[0, 2147483647]"},
        {"trace", "--temperature nan", "--temperature nan", "[0, 100]"},
        {"trace", "--temperature inf", "--temperature inf", "[0, 100]"},
        {"trace", "--temperature -1", "--temperature -1", "[0, 100]"},
        {"trace", "--record ''", "--record ''", NULL},
        {"trace", "--hooks ''", "--hooks ''", NULL},
        {"trace", "--max-new 0", "--max-new 0", "[1, 1048576]"},
        {"trace", "--positions cot", "--positions 'cot'", "generated"},
        {"generate", "--prompt x --top-p 2", "--top-p 2", "[0, 1]"},
        {"generate", "--prompt x --top-p 5", "--top-p 5", "[0, 1]"},
        {"generate", "--prompt x --top-k -5", "--top-k -5", "[0, 2147483647]"},
        {"generate", "--prompt x --temp -1", "--temp -1", "[0, 100]"},
        {"generate", "--prompt x --temperature nan", "--temperature nan", "[0, 100]"},
        {"generate", "--prompt x --max-new 99999999999999999999", "--max-new", "[1, 1048576]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r;
        if (strcmp(cases[i].cmd, "trace") == 0)
            r = probelab("trace '%s' --dataset '%s' --store '%s/never.db' --no-progress %s", model, data, dir, cases[i].args);
        else r = probelab("generate '%s' %s", model, cases[i].args);
        if (r.status != 2) print_error("%s %s: status %d\n", cases[i].cmd, cases[i].args, r.status);
        assert_int_equal(r.status, 2);
        assert_error_line(&r, cases[i].cmd, cases[i].needle1, cases[i].needle2);
        assert_string_equal(r.out, "");
        result_free(&r);
    }
    char never[700];
    snprintf(never, sizeof never, "%s/never.db", dir);
    assert_int_equal(access(never, F_OK), -1);  // nothing was written by a refused command
    result r = probelab("runs '%s' --correct 2", store);
    assert_int_equal(r.status, 2);
    assert_error_line(&r, "runs", "--correct 2", "[0, 1]");
    result_free(&r);
    r = probelab("runs '%s' --limit 4294967296", store);
    assert_int_equal(r.status, 2);
    assert_error_line(&r, "runs", "--limit 4294967296", NULL);
    result_free(&r);
}

// Issue 9 defect 8.
static void test_defect8(void **state) {
    (void)state;
    result r = probelab("view '%s/nonexist.db'", dir);
    assert_int_equal(r.status, 1);
    assert_error_line(&r, "view", "nonexist.db", NULL);
    result_free(&r);
    r = probelab("view '%s' --run 999", sample);
    assert_int_equal(r.status, 1);
    assert_error_line(&r, "view", "run 999 does not exist", NULL);
    result_free(&r);
    r = probelab("show '%s' 2 --bogus", store);
    assert_int_equal(r.status, 2);
    assert_error_line(&r, "show", "unknown option '--bogus'", NULL);
    assert_string_equal(r.out, "");
    result_free(&r);
    r = probelab("show '%s' 999", store);
    assert_int_equal(r.status, 1);
    assert_error_line(&r, "show", "run 999 does not exist", NULL);
    result_free(&r);
    r = probelab("show '%s' 1 --run 2", store);
    assert_int_equal(r.status, 2);
    assert_error_line(&r, "show", "disagree", NULL);
    result_free(&r);
    // The positional RUN and --run R name the same run.
    r = probelab("show '%s' 2", store);
    result r2 = probelab("show '%s' --run 2", store);
    assert_int_equal(r.status, 0);
    assert_int_equal(r2.status, 0);
    assert_string_equal(r.out, r2.out);
    result_free(&r);
    result_free(&r2);
    // Failures exit 1 with the command's prefix.
    r = probelab("runs '%s/nonexist.db'", dir);
    assert_int_equal(r.status, 1);
    assert_error_line(&r, "runs", "nonexist.db", NULL);
    result_free(&r);
}

static void test_double_dash(void **state) {
    (void)state;
    result r = probelab("tokenize '%s' --json -- -text", model);
    assert_int_equal(r.status, 0);
    json_t *j = parse_json(&r);
    json_t *ids = json_object_get(j, "ids");
    // The same ids as the tokenizer gives in-process.
    pl_model *m;
    assert_int_equal(pl_model_open(&m, model), 0);
    int32_t *want;
    int n = pl_tokenizer_encode(m->tokenizer, "-text", true, &want);
    assert_true(n > 1);
    assert_int_equal((int)json_array_size(ids), n);
    for (int i = 0; i < n; i++) assert_int_equal(json_integer_value(json_array_get(ids, (size_t)i)), want[i]);
    assert_int_equal((int)json_array_size(json_object_get(j, "pieces")), n);
    free(want);
    pl_model_free(m);
    json_decref(j);
    result_free(&r);
    r = probelab("tokenize '%s' -text", model);
    assert_int_equal(r.status, 2);
    assert_error_line(&r, "tokenize", "unknown option '-text'", NULL);
    result_free(&r);
}

// --json on every command that prints results: parseable, with the documented keys.
static void test_json_everywhere(void **state) {
    (void)state;
    struct {
        const char *args, *key;
    } cases[] = {
        {"info '%s' --json", "d_model"},
        {"info '%s' --hooks --json", "hooks"},
        {"tokenize '%s' 'Q: 1+2' --json", "pieces"},
        {"generate '%s' --prompt 'Q: 1+2=' --max-new 4 --json", "logprobs"},
        {"run '%s' --token-ids 1,2,3 --hooks logits --dump \"$TMPDIR_CLI/dump\" --json", "hooks"},
    };
    setenv("TMPDIR_CLI", dir, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = probelab(cases[i].args, model);
        assert_int_equal(r.status, 0);
        json_t *j = parse_json(&r);
        assert_non_null(json_object_get(j, cases[i].key));
        json_decref(j);
        result_free(&r);
    }
    struct {
        const char *args, *key;
    } store_cases[] = {
        {"runs '%s' --json", "runs"},
        {"runs '%s' --summary --json", "summary"},
        {"runs '%s' --hooks --json", "hooks"},
        {"show '%s' --run 1 --json", "tokens"},
        {"lens '%s' --run 1 --json", "layers"},
        {"probe list '%s' --json", NULL},
        {"store check '%s' --json", "findings"},
        {"plot '%s' --figure list --json", NULL},
    };
    for (size_t i = 0; i < sizeof store_cases / sizeof store_cases[0]; i++) {
        result r = probelab(store_cases[i].args, store);
        if (r.status != 0) print_error("%s: %s\n", store_cases[i].args, r.err);
        assert_int_equal(r.status, 0);
        json_t *j = parse_json(&r);
        if (store_cases[i].key) assert_non_null(json_object_get(j, store_cases[i].key));
        json_decref(j);
        result_free(&r);
    }
    // Arrays and objects of the commands that do not read a store.
    {
        result t = probelab("train eval --model '%s' --task max --n 1 --json", model);
        assert_int_equal(t.status, 0);
        json_t *a = parse_json(&t);
        assert_true(json_is_array(a) && json_array_size(a) > 0);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "task")), "max");
        json_decref(a);
        result_free(&t);
        t = probelab("tasks list --json");
        assert_int_equal(t.status, 0);
        a = parse_json(&t);
        assert_true(json_array_size(a) >= 5);
        json_decref(a);
        result_free(&t);
        t = probelab("tasks check '%s' --json", data);
        assert_int_equal(t.status, 0);
        a = parse_json(&t);
        assert_int_equal(json_integer_value(json_object_get(a, "n")), 4);
        json_decref(a);
        result_free(&t);
    }
    // show: tokens with pieces, segments and labels.
    result r = probelab("show '%s' --run 1 --json", store);
    json_t *j = parse_json(&r);
    json_t *tokens = json_object_get(j, "tokens");
    assert_true(json_array_size(tokens) == (size_t)json_integer_value(json_object_get(json_object_get(j, "run"), "n_tokens")));
    assert_non_null(json_object_get(json_object_get(j, "labels"), "correct"));
    json_decref(j);
    result_free(&r);
    // export: what was written.
    r = probelab("export '%s' --hooks blocks.1.hook_resid_post --positions generated -o '%s/X.npy' --json", store, dir);
    assert_int_equal(r.status, 0);
    j = parse_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "positions")), "generated");
    assert_string_equal(json_string_value(json_object_get(j, "hook")), "blocks.1.hook_resid_post");
    assert_true(json_integer_value(json_object_get(j, "n_rows")) > 0);
    json_t *files = json_object_get(j, "files");
    assert_int_equal((int)json_array_size(files), 4);
    for (size_t k = 0; k < json_array_size(files); k++) assert_int_equal(access(json_string_value(json_array_get(files, k)), R_OK), 0);
    json_decref(j);
    result_free(&r);
    // --hook and --at: the old spellings of export's --hooks and --positions.
    r = probelab("export '%s' --hook blocks.1.hook_resid_post --at last-prompt -o '%s/Y.npy' --json", store, dir);
    assert_int_equal(r.status, 0);
    j = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "n_rows")), 4);  // one row per complete run
    json_decref(j);
    result_free(&r);
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(model, sizeof model, "%s/share/models/probelab-cot.gguf", test_source_dir());
    if (access(model, R_OK) != 0) {
        printf("skip: %s is missing\n", model);
        exit(PL_TEST_SKIP);
    }
    char supp[600];
    snprintf(supp, sizeof supp, "%s/lsan.supp", dir);
    if (write_file(supp, "leak:libfontconfig.so\n") != 0) return -1;
    snprintf(data, sizeof data, "%s/arith.jsonl", dir);
    snprintf(store, sizeof store, "%s/s.db", dir);
    snprintf(sample, sizeof sample, "%s/sample.db", dir);
    result r = probelab("tasks generate --task arith --n 4 --seed 1 -o '%s'", data);
    if (r.status != 0) return fprintf(stderr, "%s", r.err), -1;
    result_free(&r);
    r = probelab("trace '%s' --dataset '%s' --store '%s' --hooks 'hook_embed,blocks.*.hook_resid_post' --no-progress --json",
                 model, data, store);
    if (r.status != 0) return fprintf(stderr, "%s", r.err), -1;
    json_t *j = json_loads(r.out, 0, NULL);
    int traced = j ? (int)json_integer_value(json_object_get(j, "n_traced")) : -1;
    json_decref(j);
    result_free(&r);
    if (traced != 4) return fprintf(stderr, "trace --json: n_traced %d, want 4\n", traced), -1;
    if (test_sample_store_write(sample, 6, 0) != 0) return fprintf(stderr, "%s\n", pl_errmsg()), -1;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version_unknown), cmocka_unit_test(test_numeric_ranges),
        cmocka_unit_test(test_defect8),              cmocka_unit_test(test_double_dash),
        cmocka_unit_test(test_json_everywhere),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
