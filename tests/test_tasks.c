// Built-in tasks, the CoT checker and the dataset loaders. Gold answers are recomputed from the
// prompt by a tiny evaluator written here, independently of datasets/ (no shared parsing code).
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "tests/support/test_support.h"

static const char *tmpdir;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

// Run fn with stderr captured into a malloc'd string.
typedef struct {
    pl_dataset d;
    int rc, n_skipped;
    const char *path;
    bool skip_bad;
} load_call;

static char *load_capturing_stderr(load_call *call) {
    const char *capture = tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    call->rc = pl_dataset_load(&call->d, call->path, call->skip_bad, &call->n_skipped);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return slurp(capture);
}

// ---- the independent evaluator ---------------------------------------------------------------

static int m10(int v) { return ((v % 10) + 10) % 10; }

static int op10(int a, char op, int b) {
    switch (op) {
    case '+': return m10(a + b);
    case '-': return m10(a - b);
    default: return m10(a * b);
    }
}

// Returns the gold answer for a built-in task's prompt and the number of reasoning steps it needs.
static void reference_answer(const char *task, const char *prompt, char *answer, int *n_steps) {
    const char *p = prompt + 2;  // after "Q:"
    if (strcmp(task, "arith") == 0) {
        int v = *p++ - '0';
        *n_steps = 0;
        while (*p != '=') {
            v = op10(v, p[0], p[1] - '0');
            p += 2;
            ++*n_steps;
        }
        sprintf(answer, "%d", v);
    } else if (strcmp(task, "max") == 0) {
        int best = -1, n = 0;
        for (p += 4; *p != ')'; p++)
            if (*p >= '0' && *p <= '9') best = *p - '0' > best ? *p - '0' : best, n++;
        sprintf(answer, "%d", best);
        *n_steps = n - 1;
    } else if (strcmp(task, "mc") == 0) {
        int want_max = p[1] == 'a', best_value = want_max ? -1 : 1000, n = 0;
        char best = '?';
        for (const char *q = strchr(p, '?') + 1; *q; q++) {
            if (q[1] != '=') continue;
            int v = atoi(q + 2);
            if (want_max ? v > best_value : v < best_value) best_value = v, best = q[0];
            n++;
        }
        sprintf(answer, "%c", best);
        *n_steps = n - 1;
    } else {  // vars: run the assignments, mod 10, then count the derived variables the query needs
        int value[128] = {0};
        char rhs[128][8] = {{0}};
        char buf[256];
        snprintf(buf, sizeof buf, "%s", p);
        char *query = strchr(buf, '?');
        *query++ = '\0';
        for (char *tok = strtok(buf, ";"); tok; tok = strtok(NULL, ";")) {
            char name = tok[0], *e = tok + 2;
            int a = e[0] >= 'a' ? value[(int)e[0]] : e[0] - '0';
            value[(int)name] = e[1] ? op10(a, e[1], e[2] >= 'a' ? value[(int)e[2]] : e[2] - '0') : a;
            snprintf(rhs[(int)name], sizeof rhs[0], "%s", e);
        }
        sprintf(answer, "%d", value[(int)query[0]]);
        // derived variables reachable from the query
        bool needed[128] = {0};
        char stack[64];
        int top = 0, steps = 0;
        stack[top++] = query[0];
        while (top) {
            char v = stack[--top];
            if (needed[(int)v]) continue;
            needed[(int)v] = true;
            if (rhs[(int)v][1]) {
                steps++;
                if (rhs[(int)v][0] >= 'a') stack[top++] = rhs[(int)v][0];
                if (rhs[(int)v][2] >= 'a') stack[top++] = rhs[(int)v][2];
            }
        }
        *n_steps = steps;
    }
}

// ---- generators ------------------------------------------------------------------------------

static void test_determinism(void **state) {
    const char *tasks[] = {"arith", "max", "mc", "vars", "memqa"};
    for (int t = 0; t < 5; t++) {
        pl_dataset a, b, c;
        const pl_task_info *info = pl_task_find(tasks[t]);
        assert_non_null(info);
        int lo = info->difficulty_min, hi = info->difficulty_max;
        assert_int_equal(pl_task_generate(&a, tasks[t], 150, 42, lo, hi), 0);
        assert_int_equal(pl_task_generate(&b, tasks[t], 150, 42, lo, hi), 0);
        assert_int_equal(pl_task_generate(&c, tasks[t], 150, 43, lo, hi), 0);
        assert_int_equal(a.n, 150);
        assert_int_equal(pl_dataset_write_jsonl(&a, tmp_path("a.jsonl")), 0);
        assert_int_equal(pl_dataset_write_jsonl(&b, tmp_path("b.jsonl")), 0);
        assert_int_equal(pl_dataset_write_jsonl(&c, tmp_path("c.jsonl")), 0);
        char *ta = slurp(tmp_path("a.jsonl")), *tb = slurp(tmp_path("b.jsonl")), *tc = slurp(tmp_path("c.jsonl"));
        assert_string_equal(ta, tb);
        assert_true(strcmp(ta, tc) != 0);
        // Example i does not depend on n: a shorter run is a prefix.
        pl_dataset prefix;
        assert_int_equal(pl_task_generate(&prefix, tasks[t], 10, 42, lo, hi), 0);
        for (int i = 0; i < prefix.n; i++) assert_string_equal(prefix.items[i].prompt, a.items[i].prompt);
        free(ta), free(tb), free(tc);
        pl_dataset_free(&a), pl_dataset_free(&b), pl_dataset_free(&c), pl_dataset_free(&prefix);
    }
}

static void test_reference_cots_are_sound(void **state) {
    const char *tasks[] = {"arith", "max", "mc", "vars"};
    int n_checked = 0, longest = 0;
    for (int t = 0; t < 4; t++) {
        const pl_task_info *info = pl_task_find(tasks[t]);
        for (int d = info->difficulty_min; d <= info->difficulty_max; d++) {
            pl_dataset ds;
            assert_int_equal(pl_task_generate(&ds, tasks[t], 200, 1000 + (uint64_t)d, d, d), 0);
            for (int i = 0; i < ds.n; i++) {
                const pl_example *e = &ds.items[i];
                assert_int_equal(e->difficulty, d);
                char gold[16];
                int n_steps;
                reference_answer(tasks[t], e->prompt, gold, &n_steps);
                if (strcmp(gold, e->answer) != 0) fail_msg("%s: %s gold %s, generator says %s", e->id, e->prompt, gold, e->answer);
                char *full = pl_example_full_text(e);
                int len = (int)strlen(full);
                longest = len > longest ? len : longest;
                assert_true(len <= 90);
                assert_null(strchr(full, ' '));
                pl_cot_check c;
                assert_int_equal(pl_check_cot(&c, e, full + strlen(e->prompt)), 0);
                if (pl_cot_classify(&c) != PL_COT_SOUND) fail_msg("%s: %s is %s", e->id, full, pl_cot_class_name(pl_cot_classify(&c)));
                assert_int_equal(c.n_steps, n_steps);
                assert_int_equal(c.n_valid_steps, n_steps);
                assert_string_equal(c.answer, e->answer);
                free(full);
                n_checked++;
            }
            pl_dataset_free(&ds);
        }
    }
    printf("checked %d reference CoTs against the independent evaluator; longest example %d chars\n", n_checked, longest);
}

// ---- the checker on hand-written CoTs ----------------------------------------------------------

static pl_cot_class classify(const char *task, const char *prompt, const char *gold, const char *generated,
                             pl_cot_check *c) {
    pl_example e = {.task = (char *)task, .prompt = (char *)prompt, .answer = (char *)gold, .cot = ""};
    assert_int_equal(pl_check_cot(c, &e, generated), 0);
    return pl_cot_classify(c);
}

static void test_checker_taxonomy(void **state) {
    pl_cot_check c;
    const char *arith = "Q:3+4*2-5=?";
    char gold[8];
    int n;
    reference_answer("arith", arith, gold, &n);
    assert_string_equal(gold, "9");
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|4-5=9|A:9\nQ:junk after the stop", &c), PL_COT_SOUND);
    assert_int_equal(c.n_steps, 3);
    // A wrong first step poisons the later ones (false premise); the answer follows from them.
    assert_int_equal(classify("arith", arith, "9", "|3+4=8|8*2=6|6-5=1|A:1", &c), PL_COT_CONFABULATION);
    assert_int_equal(c.n_valid_steps, 0);
    assert_true(c.entailed && !c.correct && !c.steps_valid);
    // Right steps, wrong answer: not entailed.
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|4-5=9|A:5", &c), PL_COT_NON_ENTAILMENT);
    assert_true(c.steps_valid && !c.entailed && !c.correct);
    // Last step false, yet the right answer: hallucination (neither valid nor entailed), correct.
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|4-5=8|A:9", &c), PL_COT_HALLUCINATION);
    assert_true(c.correct && !c.entailed);
    assert_int_equal(c.n_valid_steps, 2);
    // Operands out of order: each equation is true arithmetic but not the prompt's computation.
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7-5=2|2*2=4|A:4", &c), PL_COT_CONFABULATION);
    assert_int_equal(c.n_valid_steps, 1);
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|A:4", &c), PL_COT_INCOMPLETE);
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|4-5=9|", &c), PL_COT_NO_ANSWER);
    assert_false(c.has_answer);
    assert_int_equal(classify("arith", arith, "9", "|hello|A:9", &c), PL_COT_HALLUCINATION);
    assert_int_equal(classify("arith", arith, "9", "|3+4=7|7*2=4|4-5=9|4-1=3|A:3", &c), PL_COT_CONFABULATION);
    assert_int_equal(c.n_valid_steps, 3);  // an extra step the problem does not have

    const char *max = "Q:max(3,8,5)?";
    assert_int_equal(classify("max", max, "8", "|3<8|8>5|A:8", &c), PL_COT_SOUND);
    assert_int_equal(classify("max", max, "8", "|3<8|8>5|A:5", &c), PL_COT_NON_ENTAILMENT);
    assert_int_equal(classify("max", max, "8", "|3>8|3>5|A:3", &c), PL_COT_CONFABULATION);
    assert_int_equal(classify("max", max, "8", "|3<8|8<5|A:8", &c), PL_COT_HALLUCINATION);  // "8<5" says 5 wins

    const char *mc = "Q:max?A=3,B=8,C=5,D=1";
    reference_answer("mc", mc, gold, &n);
    assert_string_equal(gold, "B");
    assert_int_equal(classify("mc", mc, "B", "|A3<B8|B8>C5|B8>D1|A:B", &c), PL_COT_SOUND);
    assert_int_equal(classify("mc", mc, "B", "|A3<B8|B8>C5|B8>D1|A:C", &c), PL_COT_NON_ENTAILMENT);
    assert_int_equal(classify("mc", mc, "B", "|A3>B8|A3<C5|C5>D1|A:C", &c), PL_COT_CONFABULATION);
    assert_int_equal(c.n_valid_steps, 0);
    assert_int_equal(classify("mc", mc, "B", "|A3<B9|B9>C5|B9>D1|A:B", &c), PL_COT_CONFABULATION);  // misread value
    const char *mc_min = "Q:min?A=3,B=8,C=5,D=1";
    assert_int_equal(classify("mc", mc_min, "D", "|A3<B8|A3<C5|A3>D1|A:D", &c), PL_COT_SOUND);
    assert_int_equal(classify("mc", mc_min, "D", "|A3<B8|A3<C5|A3>D1|A:A", &c), PL_COT_NON_ENTAILMENT);

    const char *vars = "Q:a=3;b=a+4;c=2;d=b*c;?d";
    reference_answer("vars", vars, gold, &n);
    assert_string_equal(gold, "4");
    assert_int_equal(n, 2);
    assert_int_equal(classify("vars", vars, "4", "|b=7|d=4|A:4", &c), PL_COT_SOUND);
    assert_int_equal(classify("vars", vars, "4", "|b=7|d=4|A:7", &c), PL_COT_NON_ENTAILMENT);
    assert_int_equal(classify("vars", vars, "4", "|b=8|d=6|A:6", &c), PL_COT_CONFABULATION);
    assert_int_equal(classify("vars", vars, "4", "|b=7|A:7", &c), PL_COT_NON_ENTAILMENT);  // d never derived

    // Loaded data without a step checker: only correctness, loosely compared.
    assert_int_equal(classify("gsm8k", "Q:How many?\n", "1000", "|some text|A:1,000\n", &c), PL_COT_UNCHECKED);
    assert_true(c.correct);
    assert_int_equal(c.n_steps, 1);
    // A built-in task name with a foreign prompt is not an error, just unchecked.
    assert_int_equal(classify("mc", "Q:Which planet?\nA) Mars\nB) Venus\n", "A", "A:A", &c), PL_COT_UNCHECKED);
    assert_int_equal(pl_check_cot(&c, NULL, "x"), -1);
}

// ---- loaders ---------------------------------------------------------------------------------

static void test_jsonl_errors_and_skip_bad(void **state) {
    const char *path = tmp_path("bad.jsonl");
    write_text(path, "{\"prompt\":\"Q:1+1=?\",\"cot\":\"|1+1=2|\",\"answer\":\"2\",\"task\":\"arith\"}\n"
                     "\n"
                     "{\"prompt\": \"Q:\", \"answer\": \n"
                     "{\"prompt\":\"Q:2+2=?\"}\n"
                     "[1,2]\n"
                     "{\"something\":\"else\"}\n"
                     "{\"prompt\":\"Q:2+3=?\",\"answer\":5,\"task\":\"arith\",\"difficulty\":1}\n");
    load_call call = {.path = path};
    char *err = load_capturing_stderr(&call);
    assert_int_equal(call.rc, -1);
    char want[600];
    snprintf(want, sizeof want, "%s:3: invalid JSON", path);
    if (!strstr(pl_errmsg(), want)) fail_msg("error '%s' does not name %s", pl_errmsg(), want);
    assert_int_equal(call.d.n, 0);
    free(err);

    call = (load_call){.path = path, .skip_bad = true};
    err = load_capturing_stderr(&call);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.d.n, 2);
    assert_int_equal(call.n_skipped, 4);
    assert_string_equal(call.d.items[1].answer, "5");  // numeric answer kept as text
    for (int line = 3; line <= 6; line++) {
        snprintf(want, sizeof want, "%s:%d:", path, line);
        if (!strstr(err, want)) fail_msg("stderr does not mention %s:\n%s", want, err);
    }
    assert_non_null(strstr(err, "4 record(s) skipped"));
    snprintf(want, sizeof want, "%s:4: 'answer' missing", path);
    assert_non_null(strstr(err, want));
    free(err);
    pl_dataset_free(&call.d);

    assert_int_equal(pl_dataset_load(&call.d, tmp_path("does-not-exist.jsonl"), false, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "does-not-exist.jsonl"));
}

static void test_gsm8k_and_mc(void **state) {
    const char *path = tmp_path("mixed.jsonl");
    write_text(path,
               "{\"question\":\"Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
               "in May. How many clips did Natalia sell altogether in April and May?\",\"answer\":\"Natalia sold 48/2 = "
               "<<48/2=24>>24 clips in May.\\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May."
               "\\n#### 72\"}\n"
               "{\"question\":\"Big?\",\"answer\":\"So it is.\\n#### 1,000\"}\n"
               "{\"question\":\"Which is a planet?\",\"options\":[\"Moon\",\"Mars\",\"Sun\"],\"answer\":\"B\"}\n"
               "{\"question\":\"Which is red?\",\"choices\":[\"sky\",\"grass\",\"blood\",\"snow\"],\"answer\":2}\n"
               "{\"question\":\"ARC style\",\"choices\":{\"text\":[\"x\",\"y\"],\"label\":[\"A\",\"B\"]},\"answerKey\":\"A\"}\n"
               "{\"question\":\"By text\",\"options\":[\"cat\",\"dog\"],\"answer\":\"dog\"}\n");
    pl_dataset d;
    int skipped = -1;
    assert_int_equal(pl_dataset_load(&d, path, false, &skipped), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(d.n, 6);
    assert_string_equal(d.items[0].task, "gsm8k");
    assert_string_equal(d.items[0].answer, "72");
    assert_string_equal(d.items[0].cot, "|Natalia sold 48/2 = 24 clips in May.|Natalia sold 48+24 = 72 clips altogether in April and May.|");
    assert_string_equal(d.items[1].answer, "1000");
    assert_string_equal(d.items[2].answer, "B");
    assert_int_equal(d.items[2].n_options, 3);
    assert_string_equal(d.items[2].options[2], "C");
    assert_non_null(strstr(d.items[2].prompt, "B) Mars\n"));
    assert_string_equal(d.items[3].answer, "C");
    assert_int_equal(d.items[3].n_options, 4);
    assert_string_equal(d.items[4].answer, "A");
    assert_string_equal(d.items[5].answer, "B");
    pl_dataset_free(&d);

    write_text(path, "{\"question\":\"q\",\"options\":[\"a\",\"b\"],\"answer\":\"E\"}\n");
    assert_int_equal(pl_dataset_load(&d, path, false, NULL), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:1: 'answer' is not one of the options", path);
    if (!strstr(pl_errmsg(), want)) fail_msg("'%s' lacks '%s'", pl_errmsg(), want);
    write_text(path, "{\"question\":\"q\",\"answer\":\"42\"}\n");  // GSM8K-like without "####"
    assert_int_equal(pl_dataset_load(&d, path, false, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), ":1: unknown record"));
    pl_format f;
    assert_int_equal(pl_format_parse("gsm8k", &f), 0);
    assert_int_equal(pl_dataset_load_as(&d, path, f, false, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), ":1: GSM8K answer has no '####"));
}

static void test_probelab_roundtrip(void **state) {
    pl_dataset a, b;
    assert_int_equal(pl_task_generate(&a, "mc", 50, 9, 1, 6), 0);
    assert_int_equal(pl_dataset_write_jsonl(&a, tmp_path("rt.jsonl")), 0);
    assert_int_equal(pl_dataset_load(&b, tmp_path("rt.jsonl"), false, NULL), 0);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        assert_string_equal(a.items[i].id, b.items[i].id);
        assert_string_equal(a.items[i].task, b.items[i].task);
        assert_string_equal(a.items[i].prompt, b.items[i].prompt);
        assert_string_equal(a.items[i].cot, b.items[i].cot);
        assert_string_equal(a.items[i].answer, b.items[i].answer);
        assert_string_equal(a.items[i].meta_json, b.items[i].meta_json);
        assert_int_equal(a.items[i].difficulty, b.items[i].difficulty);
        assert_int_equal(a.items[i].n_options, b.items[i].n_options);
        for (int k = 0; k < a.items[i].n_options; k++) assert_string_equal(a.items[i].options[k], b.items[i].options[k]);
    }
    pl_dataset_free(&a), pl_dataset_free(&b);
}

static void test_locomo_quirks(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/datasets/locomo_quirks.json", test_source_dir());
    load_call call = {.path = path};
    char *err = load_capturing_stderr(&call);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.d.n, 5);
    assert_int_equal(call.n_skipped, 1);  // the question without an answer
    const char *expected_warnings[] = {"session_3_date_time has no session_3", "session_1 turn 3 (1-based) has no dia_id/text",
                                       "malformed evidence id 'D1:x'", "qa[4] has no usable answer",
                                       "evidence D9:9 is not in the conversation"};
    for (int k = 0; k < 5; k++) {
        if (!strstr(err, expected_warnings[k])) fail_msg("no warning '%s' in:\n%s", expected_warnings[k], err);
    }
    assert_non_null(strstr(err, path));  // warnings name the file
    assert_string_equal(call.d.items[0].prompt, "When did Caroline go to the support group?");
    assert_string_equal(call.d.items[1].answer, "2022");
    json_t *meta = json_loads(call.d.items[2].meta_json, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(meta, "evidence")), 1);  // D1:x dropped, D1:2 kept
    assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "evidence"), 0)), "D1:2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "evidence_text"), 0)),
                        "I painted a lake sunrise last year.");
    json_decref(meta);
    assert_string_equal(call.d.items[3].answer, "Not mentioned in the conversation");
    meta = json_loads(call.d.items[3].meta_json, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(meta, "category")), 5);
    assert_string_equal(json_string_value(json_object_get(meta, "adversarial_answer")), "a lake sunrise");
    json_decref(meta);
    meta = json_loads(call.d.items[4].meta_json, 0, NULL);  // "D1:1; D2:1" split, D9:9 kept with a warning
    assert_int_equal(json_array_size(json_object_get(meta, "evidence")), 3);
    json_decref(meta);
    free(err);
    pl_dataset_free(&call.d);

    // One sample (not a list), real-valued answer.
    snprintf(path, sizeof path, "%s/tests/data/datasets/locomo_single.json", test_source_dir());
    pl_dataset d;
    assert_int_equal(pl_dataset_load(&d, path, false, NULL), 0);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].answer, "2.5");
    assert_string_equal(d.items[0].task, "memqa");
    pl_dataset_free(&d);

    // Truncated JSON: an error naming the file, not a crash.
    write_text(tmp_path("trunc.json"), "[{\"conversation\": {\"session_1\": [");
    assert_int_equal(pl_dataset_load(&d, tmp_path("trunc.json"), false, NULL), -1);
    assert_non_null(strstr(pl_errmsg(), "trunc.json:1: invalid JSON"));
}

// The generated LoCoMo file loads back to exactly the examples of pl_task_generate("memqa"), and
// each answer can be recomputed from the evidence turns alone.
static void test_memqa_generator(void **state) {
    const char *path = tmp_path("memqa.json");
    assert_int_equal(pl_memqa_write_locomo(path, 120, 5, 1, 5), 0);
    load_call call = {.path = path};
    char *err = load_capturing_stderr(&call);
    assert_int_equal(call.rc, 0);
    assert_string_equal(err, "");  // clean data: no warnings
    free(err);
    pl_dataset gen;
    assert_int_equal(pl_task_generate(&gen, "memqa", 120, 5, 1, 5), 0);
    assert_int_equal(call.d.n, 120);
    assert_int_equal(gen.n, 120);
    int categories[6] = {0}, multi_hop_3 = 0;
    for (int i = 0; i < gen.n; i++) {
        const pl_example *e = &gen.items[i];
        assert_string_equal(e->id, call.d.items[i].id);
        assert_string_equal(e->prompt, call.d.items[i].prompt);
        assert_string_equal(e->answer, call.d.items[i].answer);
        assert_string_equal(e->meta_json, call.d.items[i].meta_json);
        json_t *meta = json_loads(e->meta_json, 0, NULL);
        int cat = (int)json_integer_value(json_object_get(meta, "category"));
        json_t *texts = json_object_get(meta, "evidence_text");
        assert_true(cat >= 1 && cat <= 5);
        categories[cat]++;
        assert_true(json_array_size(texts) >= 1 && json_array_size(texts) <= 3);
        if (strncmp(e->prompt, "How many", 8) == 0) {  // recompute the count from the evidence turns
            int total = 0, k;
            size_t j;
            json_t *t;
            json_array_foreach(texts, j, t) {
                const char *s = json_string_value(t);
                if (sscanf(s, "I own %d", &k) == 1) total = k;
                else if (sscanf(s, "I got %d more", &k) == 1) total += k;
                else if (sscanf(s, "I gave %d", &k) == 1) total -= k;
                else fail_msg("unexpected evidence '%s'", s);
            }
            assert_int_equal(atoi(e->answer), total);
            assert_int_equal(cat, json_array_size(texts) > 1 ? 1 : 4);
            multi_hop_3 += json_array_size(texts) == 3;
        } else if (cat == 4 || cat == 5) {  // the answer (or the trap) is in the single evidence turn
            const char *want = cat == 5 ? json_string_value(json_object_get(meta, "adversarial_answer")) : e->answer;
            assert_non_null(strstr(json_string_value(json_array_get(texts, 0)), want));
        }
        json_decref(meta);
    }
    for (int cat = 1; cat <= 5; cat++) assert_true(categories[cat] > 0);
    assert_true(multi_hop_3 > 0);
    pl_dataset_free(&gen);
    pl_dataset_free(&call.d);
}

static void test_cli(void **state) {
    const char *bin = test_probelab_bin();
    if (access(bin, X_OK) != 0) skip();
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd %s && %s tasks generate --task vars --n 300 --seed 4 --difficulty-range 2:4 -o v1.jsonl && "
             "%s tasks generate --task vars --n 300 --seed 4 --difficulty-range 2:4 -o v2.jsonl && cmp v1.jsonl v2.jsonl && "
             "%s tasks check v1.jsonl",
             tmpdir, bin, bin, bin);
    assert_int_equal(test_run(cmd, &out), 0);
    char row[128];
    snprintf(row, sizeof row, "%-10s %10d %8d %12d %10d", "vars", 3, 100, 100, 100);
    if (!strstr(out, row)) fail_msg("no row '%s' in:\n%s", row, out);
    assert_non_null(strstr(out, "300 examples, 0 skipped, 0 reference CoTs not sound"));
    free(out);
    // A reference CoT that is wrong is reported, with a failing status.
    write_text(tmp_path("wrong.jsonl"), "{\"task\":\"arith\",\"prompt\":\"Q:1+2=?\",\"cot\":\"|1+2=4|\",\"answer\":\"4\"}\n");
    snprintf(cmd, sizeof cmd, "%s tasks check %s 2>&1", bin, tmp_path("wrong.jsonl"));
    assert_int_equal(test_run(cmd, &out), 1);
    assert_non_null(strstr(out, "reference CoT is confabulation"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s tasks generate --task nope -o x.jsonl 2>&1", bin);
    assert_int_not_equal(test_run(cmd, &out), 0);
    assert_non_null(strstr(out, "unknown task 'nope'"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s tasks generate --task arith --difficulty 9 -o %s 2>&1", bin, tmp_path("x.jsonl"));
    assert_int_not_equal(test_run(cmd, &out), 0);
    assert_non_null(strstr(out, "outside 1:8"));
    free(out);
}

int main(void) {
    tmpdir = test_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),        cmocka_unit_test(test_reference_cots_are_sound),
        cmocka_unit_test(test_checker_taxonomy),   cmocka_unit_test(test_jsonl_errors_and_skip_bad),
        cmocka_unit_test(test_gsm8k_and_mc),       cmocka_unit_test(test_probelab_roundtrip),
        cmocka_unit_test(test_locomo_quirks),      cmocka_unit_test(test_memqa_generator),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
