// User labels are first-class (issue 9, defect 6): a dataset's meta keys and extra fields become
// run labels at trace time; `probelab label S.db --from FILE.csv|.jsonl` adds or updates labels by
// run id or example id, all or nothing; unknown label names and probe names are errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store/store.h"
#include "tests/support/test_support.h"

static char dir[256], store[512];

// Run `probelab ARGS 2>&1`; returns the exit status, *out the output (caller frees).
static int probelab(char **out, const char *fmt, ...) {
    char args[3000], cmd[3600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", test_probelab_bin(), args);
    return test_run(cmd, out);
}

static void write_file(const char *name, const char *text, char *path, size_t size) {
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// The label of run `run` as text, or "<absent>".
static const char *label(int64_t run, const char *key) {
    static char buf[256];
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store, PL_STORE_READ), 0);
    int got = pl_store_get_label(s, run, key, buf, sizeof buf);
    assert_true(got >= 0);
    if (got == 0) snprintf(buf, sizeof buf, "<absent>");
    pl_store_close(s);
    return buf;
}

static int setup(void **state) {
    test_require_shared("models/stories260K.gguf");
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(store, sizeof store, "%s/labels.db", dir);
    char data[600], *out;
    // meta keys of every kind, a key the checker also computes (n_steps), and an extra top-level field
    write_file("data.jsonl",
               "{\"id\":\"e1\",\"task\":\"arith\",\"prompt\":\"Q:1+1=?\",\"answer\":\"2\",\"source\":\"web\","
               "\"meta\":{\"topic\":\"sums\",\"weight\":2.5,\"hard\":true,\"n_steps\":7,\"list\":[1,2],\"none\":null}}\n"
               "{\"id\":\"e2\",\"task\":\"arith\",\"prompt\":\"Q:2+2=?\",\"answer\":\"4\",\"meta\":{\"topic\":\"more sums\"}}\n",
               data, sizeof data);
    int rc = probelab(&out, "trace %s --dataset %s --store %s --max-new 4 --no-progress",
                      test_shared_path("models/stories260K.gguf"), data, store);
    if (rc != 0) fprintf(stderr, "%s", out);
    free(out);
    return rc;
}

static void meta_and_extra_fields_become_labels(void **state) {
    assert_string_equal(label(1, "topic"), "sums");
    assert_string_equal(label(1, "weight"), "2.5");
    assert_string_equal(label(1, "hard"), "1");
    assert_string_equal(label(1, "source"), "web");
    assert_string_equal(label(1, "meta.n_steps"), "7");       // the checker's n_steps keeps its name
    assert_string_not_equal(label(1, "n_steps"), "<absent>");
    assert_string_equal(label(1, "list"), "<absent>");         // lists and null stay in examples.meta
    assert_string_equal(label(1, "none"), "<absent>");
    assert_string_equal(label(2, "topic"), "more sums");
    assert_string_equal(label(2, "source"), "<absent>");
}

static void label_import_csv_and_jsonl(void **state) {
    char path[600], *out;
    // by run id; quoted fields (a comma, a doubled quote, a newline); an empty cell sets nothing
    write_file("by_run.csv", "run,topic,score,note\n1,\"carry, twice\",0.75,\"say \"\"hi\"\"\nthere\"\n2,,3,\n", path,
               sizeof path);
    assert_int_equal(probelab(&out, "label %s --from %s", store, path), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "4 labels from 2 rows"));  // 3 + 1: empty cells set nothing
    free(out);
    assert_string_equal(label(1, "topic"), "carry, twice");   // updated
    assert_string_equal(label(1, "score"), "0.75");
    assert_string_equal(label(1, "note"), "say \"hi\"\nthere");
    assert_string_equal(label(2, "topic"), "more sums");      // empty cell: unchanged
    assert_string_equal(label(2, "score"), "3");
    // by example id, JSONL, with --json
    write_file("by_example.jsonl", "{\"example\":\"e2\",\"human\":\"wrong\",\"ok\":false}\n\n{\"run\":1,\"human\":\"right\"}\n",
               path, sizeof path);
    assert_int_equal(probelab(&out, "label %s --from %s --json", store, path), 0);
    assert_non_null(strstr(out, "\"rows\": 2"));
    free(out);
    assert_string_equal(label(2, "human"), "wrong");
    assert_string_equal(label(2, "ok"), "0");
    assert_string_equal(label(1, "human"), "right");
}

// A bad row anywhere fails the whole file with FILE:LINE and leaves the store as it was.
static void label_import_is_all_or_nothing(void **state) {
    static const struct {
        const char *name, *text, *message;
    } bad[] = {
        {"a.csv", "run,fresh\n1,x\n99,y\n", "a.csv:3: run 99 does not exist"},
        {"b.csv", "example,fresh\ne1,x\nnope,y\n", "b.csv:3: example 'nope' has no run"},
        {"c.csv", "run,fresh\n1,x\n2,y,z\n", "c.csv:3: 3 fields, the header has 2"},
        {"d.csv", "fresh,other\n1,x\n", "d.csv:1: no column 'run'"},
        {"e.csv", "run,bad name\n1,x\n", "e.csv:1: label name 'bad name'"},
        {"f.csv", "run,fresh\n1,\"open\n", "f.csv:2: a quoted field is not closed"},
        {"g.jsonl", "{\"run\":1,\"fresh\":\"x\"}\n{\"run\":2,\"fresh\":[1]}\n", "g.jsonl:2: label 'fresh': a value must be"},
        {"h.jsonl", "{\"run\":1,\"fresh\":\"x\"}\nnot json\n", "h.jsonl:2: not JSON"},
        {"i.jsonl", "{\"fresh\":\"x\"}\n", "i.jsonl:1: give one of 'run'"},
        {"j.txt", "run,fresh\n1,x\n", "j.txt: a labels file ends in .csv or .jsonl"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[600], *out;
        write_file(bad[k].name, bad[k].text, path, sizeof path);
        int rc = probelab(&out, "label %s --from %s", store, path);
        printf("%s", out);
        assert_int_equal(rc, 1);
        if (!strstr(out, bad[k].message)) fail_msg("expected '%s' in: %s", bad[k].message, out);
        assert_null(strchr(out, '\n') == NULL ? NULL : strchr(strchr(out, '\n') + 1, '\n'));  // one line
        free(out);
        assert_string_equal(label(1, "fresh"), "<absent>");  // the good first row was rolled back
    }
}

static void unknown_names_are_errors(void **state) {
    char *out, x[600], db[600];
    // export --label with a name no run has: an error naming it, and no file written
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(db, sizeof db, "%s/embed.db", dir);
    int rc = probelab(&out, "trace %s --dataset %s/data.jsonl --store %s --max-new 4 --no-progress --record hook_embed",
                      test_shared_path("models/stories260K.gguf"), dir, db);
    assert_int_equal(rc, 0);
    free(out);
    assert_int_equal(probelab(&out, "export %s --hook hook_embed --positions last-prompt --label topic -o %s", db, x), 0);
    free(out);
    unlink(x);
    rc = probelab(&out, "export %s --hook hook_embed --positions last-prompt --label nosuch -o %s", db, x);
    printf("%s", out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "no run has a label 'nosuch'"));
    free(out);
    struct stat st;
    assert_int_not_equal(stat(x, &st), 0);
    // plot --score probe:NAME with no such probe
    snprintf(x, sizeof x, "%s/t.png", dir);
    rc = probelab(&out, "plot %s --figure tokens --run 1 --score probe:nonexistent -o %s", db, x);
    printf("%s", out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "no probe named 'nonexistent'"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(meta_and_extra_fields_become_labels),
        cmocka_unit_test(label_import_csv_and_jsonl),
        cmocka_unit_test(label_import_is_all_or_nothing),
        cmocka_unit_test(unknown_names_are_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
