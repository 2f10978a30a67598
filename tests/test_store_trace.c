// `trace` on a real model (stories260K): what the store holds must equal an independent
// recomputation: one prefill forward over the run's full token sequence with our own hook
// callbacks (the trace recorded prefill + decode steps, so this also checks the KV-cache path),
// logprobs from all-position logits, segments from the text, labels from pl_check_cot.
// Then resume, the CLI commands and their bad-input messages.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/session.h"
#include "runtime/store/store.h"
#include "runtime/trace/trace.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

static pl_model *model;
static pl_dataset data;
static char dir[256], dataset_path[512], store_path[512];

static int check_cb(pl_label *labels, int max, const pl_example *e, const char *generated, void *user) {
    pl_cot_check c;
    if (pl_check_cot(&c, e, generated) != 0) return -1;
    labels[0] = (pl_label){.key = "correct", .num = c.correct};
    labels[1] = (pl_label){.key = "answer", .is_text = true};
    snprintf(labels[1].text, sizeof labels[1].text, "%s", c.has_answer ? c.answer : "");
    return 2;
}

static int setup(void **state) {
    test_require_shared("models/stories260K.gguf");
    if (pl_model_open(&model, test_shared_path("models/stories260K.gguf")) != 0) return -1;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(dataset_path, sizeof dataset_path, "%s/arith.jsonl", dir);
    snprintf(store_path, sizeof store_path, "%s/s.db", dir);
    if (pl_task_generate(&data, "arith", 6, 7, 1, 4) != 0 || pl_dataset_write_jsonl(&data, dataset_path) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    pl_model_free(model);
    pl_dataset_free(&data);
    return 0;
}

// Independent capture: resid_post of one layer and the pattern of one layer over a full prefill.
typedef struct {
    int layer;
    float *resid;  // [T × d]
    float *att;    // [H × T × T]
} capture;

static void cap_resid(const pl_hook_event *ev, void *user) {
    capture *c = user;
    memcpy(c->resid + (size_t)ev->pos0 * ev->row_size, ev->data, sizeof(float) * (size_t)ev->n_pos * ev->row_size);
}
static void cap_att(const pl_hook_event *ev, void *user) {
    capture *c = user;
    memcpy(c->att, ev->data, sizeof(float) * (size_t)ev->shape[0] * ev->n_pos * ev->n_ctx);
}

static void traced_values_match_recomputation(void **state) {
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_WRITE), 0);
    pl_trace_opts o = pl_trace_defaults();
    o.record = "blocks.*.hook_resid_post,blocks.*.attn.hook_pattern";
    o.dtype = PL_DTYPE_F32;
    o.sampling.max_new = 24;
    o.check = check_cb;
    o.dataset_path = dataset_path;
    o.progress = false;
    o.limit = 4;
    pl_trace_stats st;
    if (pl_trace_dataset(&st, s, model, &data, &o) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(st.n_traced, 4);
    assert_int_equal(st.n_skipped, 0);
    // Resume: the same settings skip everything already complete; a bigger limit adds the rest.
    o.limit = 0;
    if (pl_trace_dataset(&st, s, model, &data, &o) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(st.n_skipped, 4);
    assert_int_equal(st.n_traced, 2);
    pl_store_close(s);

    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_READ), 0);
    pl_run_info *runs;
    int n_runs;
    assert_int_equal(pl_store_list_runs(s, NULL, &runs, &n_runs), 0);
    assert_int_equal(n_runs, 6);
    const pl_config *cfg = &model->config;
    int V = cfg->vocab_size, d = cfg->d_model, H = cfg->n_heads;
    double worst_resid = 0, worst_att = 0, worst_lp = 0;
    for (int r = 0; r < n_runs; r++) {
        pl_token_row *t;
        int T;
        assert_int_equal(pl_store_get_tokens(s, runs[r].id, &t, &T), 0);
        assert_int_equal(T, runs[r].n_tokens);
        int32_t *ids = malloc(sizeof(int32_t) * T);
        for (int p = 0; p < T; p++) ids[p] = t[p].id;
        // the prompt tokens are the tokenized prompt
        int32_t *prompt_ids;
        int n_prompt = pl_tokenizer_encode(model->tokenizer, data.items[r].prompt, true, &prompt_ids);
        assert_int_equal(n_prompt, runs[r].n_prompt);
        assert_memory_equal(prompt_ids, ids, sizeof(int32_t) * n_prompt);
        free(prompt_ids);
        // segments: generated text before "A:" is cot, from the token reaching into "A:" on it is answer
        char *gen = pl_tokenizer_decode(model->tokenizer, ids + n_prompt, T - n_prompt);
        const char *a = strstr(gen, "A:");
        size_t at = 0;
        for (int p = 0; p < T; p++) {
            pl_segment want = PL_SEG_PROMPT;
            if (p >= n_prompt) {
                size_t len;
                pl_tokenizer_piece_bytes(model->tokenizer, ids[p], &len);
                at += len;
                want = a && at > (size_t)(a - gen) ? PL_SEG_ANSWER : PL_SEG_COT;
            }
            assert_int_equal(t[p].segment, want);
        }
        // labels: pl_check_cot on the generated text
        pl_cot_check c;
        pl_check_cot(&c, &data.items[r], gen);
        assert_int_equal(runs[r].correct, c.correct);
        free(gen);

        capture cap = {.layer = r % cfg->n_layers};
        cap.resid = calloc((size_t)T * d, sizeof(float));
        cap.att = calloc((size_t)H * T * T, sizeof(float));
        pl_hooks *hooks = pl_hooks_new(cfg);
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.hook_resid_post", cap.layer);
        assert_int_equal(pl_hooks_add(hooks, name, cap_resid, &cap), 1);
        snprintf(name, sizeof name, "blocks.%d.attn.hook_pattern", cap.layer);
        assert_int_equal(pl_hooks_add(hooks, name, cap_att, &cap), 1);
        pl_session *sess;
        assert_int_equal(pl_session_open(&sess, model, 0), 0);
        pl_session_set_hooks(sess, hooks);
        pl_session_want_all_logits(sess, true);
        const float *logits;
        assert_int_equal(pl_forward(sess, ids, T, &logits), 0);
        // logprob of token p under the logits of row p-1, computed here in double
        for (int p = 1; p < T; p++) {
            const float *row = logits + (size_t)(p - 1) * V;
            double max = row[0], z = 0;
            for (int i = 1; i < V; i++) max = row[i] > max ? row[i] : max;
            for (int i = 0; i < V; i++) z += exp(row[i] - max);
            double lp = row[ids[p]] - max - log(z);
            worst_lp = fmax(worst_lp, fabs(lp - t[p].logprob));
        }
        assert_true(isnan(t[0].logprob));
        // every recorded position of the captured layer
        int32_t *pos = malloc(sizeof(int32_t) * T);
        for (int p = 0; p < T; p++) pos[p] = p;
        float *got = malloc(sizeof(float) * (size_t)T * d);
        snprintf(name, sizeof name, "blocks.%d.hook_resid_post", cap.layer);
        if (pl_store_read_acts(s, runs[r].id, name, pos, T, d, got) != 0) fail_msg("%s", pl_store_errmsg(s));
        worst_resid = fmax(worst_resid, test_max_abs_diff(got, cap.resid, (size_t)T * d));
        for (int h = 0; h < H; h++) {
            float *att;
            int q0, nq, nk;
            assert_int_equal(pl_store_read_attention(s, runs[r].id, cap.layer, h, &att, &q0, &nq, &nk), 0);
            assert_int_equal(q0, 0);
            assert_int_equal(nq, T);
            for (int q = 0; q < T; q++)
                for (int k = 0; k <= q; k++)
                    worst_att = fmax(worst_att, fabs(att[q * nk + k] - cap.att[((size_t)h * T + q) * T + k]));
            free(att);
        }
        free(got);
        free(pos);
        pl_session_free(sess);
        pl_hooks_free(hooks);
        free(cap.resid);
        free(cap.att);
        free(ids);
        free(t);
    }
    printf("stored vs recomputed (f32): resid_post %.3g, attention %.3g, logprob %.3g\n", worst_resid, worst_att, worst_lp);
    assert_true(worst_resid < 1e-4);
    assert_true(worst_att < 1e-5);
    assert_true(worst_lp < 1e-4);
    free(runs);
    pl_store_close(s);
}

static int run_cmd(const char *cmd, char **out) {
    char full[4200];
    snprintf(full, sizeof full, "%.4000s 2>&1", cmd);
    return test_run(full, out);
}

static void cli_commands_and_bad_input(void **state) {
    const char *bin = test_probelab_bin();
    const char *model_path = test_shared_path("models/stories260K.gguf");
    char cmd[4096], *out;
    char cli_store[600];
    snprintf(cli_store, sizeof cli_store, "%s/cli.db", dir);
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --record 'blocks.*.hook_resid_post' --max-new 16 --limit 3",
             bin, model_path, dataset_path, cli_store);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "traced 3 runs"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s runs %s", bin, cli_store);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "3 runs, 3 complete"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s show %s 2", bin, cli_store);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "prompt"));
    assert_non_null(strstr(out, "'Q'"));
    free(out);
    // a run id that does not exist
    snprintf(cmd, sizeof cmd, "%s show %s 77", bin, cli_store);
    assert_int_not_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "run 77 does not exist"));
    free(out);
    // a hook that was not recorded
    snprintf(cmd, sizeof cmd, "%s export %s --hook blocks.0.hook_mlp_out --positions last-prompt -o %s/x.npy", bin, cli_store, dir);
    assert_int_not_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "hook 'blocks.0.hook_mlp_out' was not recorded"));
    free(out);
    // not a store
    snprintf(cmd, sizeof cmd, "%s runs %s", bin, dataset_path);
    assert_int_not_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "not a probelab store"));
    free(out);
    // a dataset line that does not parse: the error names the line; the store is untouched
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    FILE *f = fopen(bad, "w");
    fprintf(f, "{\"id\":\"a\",\"task\":\"arith\",\"prompt\":\"Q:1+1=?\",\"cot\":\"\",\"answer\":\"2\",\"difficulty\":1,\"meta\":{}}\n");
    fprintf(f, "{\"id\":\"b\",\"task\":\"arith\",\"prompt\":\"Q:1+2=?\",\"cot\":\"\",\"answer\":\"3\",\"difficulty\":1,\"meta\":{}}\n");
    fprintf(f, "{\"id\":\"c\", this is not json\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --max-new 4", bin, model_path, bad, cli_store);
    assert_int_not_equal(run_cmd(cmd, &out), 0);
    printf("bad dataset: %s", out);
    assert_non_null(strstr(out, "bad.jsonl:3"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s runs %s", bin, cli_store);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "3 runs, 3 complete"));
    free(out);
    // --record glob that matches nothing
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --record 'blocks.*.hook_nope'", bin, model_path,
             dataset_path, cli_store);
    assert_int_not_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "matches no hook point"));
    free(out);
    // rerun resumes: nothing new with the same settings
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --record 'blocks.*.hook_resid_post' --max-new 16 --limit 3",
             bin, model_path, dataset_path, cli_store);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "traced 0 runs (3 skipped"));
    free(out);
}

// Defect: `--record '*'` failed (it matched the attention scores, which are not recordable) and
// its message printed freed memory. '*' means every recordable hook; a glob matching only
// scores fails with a message that names the glob.
static void record_star_means_every_recordable_hook(void **state) {
    char path[600];
    snprintf(path, sizeof path, "%s/star.db", dir);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), 0);
    pl_trace_opts o = pl_trace_defaults();
    o.record = "*";
    o.sampling.max_new = 4;
    o.progress = false;
    o.limit = 1;
    pl_trace_stats st;
    if (pl_trace_dataset(&st, s, model, &data, &o) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(st.n_traced, 1);
    // Reference: the model's hook list without the attention scores.
    pl_hooks *h = pl_hooks_new(&model->config);
    const char **names;
    int n_names = pl_hooks_list(h, &names), n_recordable = 0;
    for (int i = 0; i < n_names; i++) {
        pl_hook_kind kind;
        int layer;
        assert_int_equal(pl_hook_parse(names[i], &kind, &layer), 0);
        n_recordable += kind != PL_HOOK_ATTN_SCORES;
    }
    pl_hooks_free(h);
    char **hooks;
    int n_hooks;
    assert_int_equal(pl_store_list_hooks(s, &hooks, &n_hooks), 0);
    assert_int_equal(n_hooks, n_recordable);
    for (int i = 0; i < n_hooks; i++) assert_null(strstr(hooks[i], "attn_scores"));
    pl_strings_free(hooks, n_hooks);
    o.record = "blocks.*.attn.hook_attn_scores";
    assert_int_not_equal(pl_trace_dataset(&st, s, model, &data, &o), 0);
    printf("scores only: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), "'blocks.*.attn.hook_attn_scores' matches only attention scores"));
    pl_store_close(s);
}

// Defect: one prompt longer than the context aborted the whole trace, even with --skip-bad.
// With --skip-bad it is skipped (warned, counted in the summary); without it the trace stops with
// a one-line error naming the example.
static void long_prompt_skipped_with_skip_bad(void **state) {
    const char *bin = test_probelab_bin();
    const char *model_path = test_shared_path("models/stories260K.gguf");
    char path[600], db[600], cmd[4096], *out;
    snprintf(path, sizeof path, "%s/long.jsonl", dir);
    snprintf(db, sizeof db, "%s/long.db", dir);
    int ctx = model->config.context_length;
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"id\":\"a\",\"task\":\"arith\",\"prompt\":\"Q:1+1=?\",\"cot\":\"\",\"answer\":\"2\"}\n");
    fprintf(f, "{\"id\":\"too-long\",\"task\":\"arith\",\"prompt\":\"");
    for (int i = 0; i < ctx; i++) fputs("Q:1+1 ", f);  // far more tokens than the context holds
    fprintf(f, "\",\"cot\":\"\",\"answer\":\"2\"}\n");
    fprintf(f, "{\"id\":\"c\",\"task\":\"arith\",\"prompt\":\"Q:2+2=?\",\"cot\":\"\",\"answer\":\"4\"}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --max-new 4 --no-progress", bin, model_path, path, db);
    assert_int_equal(run_cmd(cmd, &out) != 0, 1);
    printf("without --skip-bad: %s", out);
    assert_non_null(strstr(out, "example 2 (too-long): prompt of "));
    assert_non_null(strstr(out, "does not fit the context"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --max-new 4 --no-progress --skip-bad", bin, model_path,
             path, db);
    assert_int_equal(run_cmd(cmd, &out), 0);
    printf("with --skip-bad: %s", out);
    assert_non_null(strstr(out, "warning: example 2 (too-long)"));
    assert_non_null(strstr(out, "1 too long for the context"));
    free(out);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, db, PL_STORE_READ), 0);
    pl_run_filter rf = pl_run_filter_complete();
    pl_run_info *runs;
    int n;
    assert_int_equal(pl_store_list_runs(s, &rf, &runs, &n), 0);
    assert_int_equal(n, 2);  // examples 1 and 3
    char ex[64];
    assert_int_equal(pl_store_get_label(s, runs[0].id, "example", ex, sizeof ex), 1);
    assert_string_equal(ex, "a");
    assert_int_equal(pl_store_get_label(s, runs[1].id, "example", ex, sizeof ex), 1);
    assert_string_equal(ex, "c");
    free(runs);
    pl_store_close(s);
}

// The concatenated pieces of a run's tokens in one segment.
static void segment_text(const pl_token_row *t, int n, pl_segment seg, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        if (t[i].segment == seg) len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s", t[i].piece);
}

// The answer delimiter and the stop rule come from the dataset (fields answer_prefix, stop), and a
// chain of thought may span lines. stories260K continues "Once upon a time" over several lines
// (", there was a little girl named Lily. ... too high.\nLily's mom said, ... Lily was sad and
// didn't know what to do."), so a dataset whose answer starts at "Lily was sad" and stops at "what
// to do." has a two-line chain of thought. --stop (sampling.stop_strings) overrides the dataset.
static void dataset_answer_prefix_and_stop_multiline_cot(void **state) {
    char path[600], copy[600], db[600];
    snprintf(path, sizeof path, "%s/story.jsonl", dir);
    snprintf(copy, sizeof copy, "%s/story-copy.jsonl", dir);
    snprintf(db, sizeof db, "%s/story.db", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"id\":\"story\",\"task\":\"story\",\"prompt\":\"Once upon a time\",\"answer\":\"and didn't know\","
               "\"answer_prefix\":\"Lily was sad\",\"stop\":[\"what to do.\",\"THE END\"]}\n");
    fclose(f);
    pl_dataset d, d2;
    assert_int_equal(pl_dataset_load(&d, path, false, NULL), 0);
    assert_string_equal(d.items[0].answer_prefix, "Lily was sad");
    assert_int_equal(d.items[0].n_stop, 2);
    assert_int_equal(pl_dataset_write_jsonl(&d, copy), 0);  // the fields survive a round trip
    assert_int_equal(pl_dataset_load(&d2, copy, false, NULL), 0);
    assert_string_equal(d2.items[0].answer_prefix, "Lily was sad");
    assert_int_equal(d2.items[0].n_stop, 2);
    assert_string_equal(d2.items[0].stop[1], "THE END");
    pl_dataset_free(&d2);

    pl_store *s;
    assert_int_equal(pl_store_open(&s, db, PL_STORE_WRITE), 0);
    pl_trace_opts o = pl_trace_defaults();
    o.sampling.max_new = 160;
    o.check = pl_trace_check_cot;
    o.dataset_path = path;
    o.progress = false;
    pl_trace_stats st;
    if (pl_trace_dataset(&st, s, model, &d, &o) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(st.n_traced, 1);
    // the override: the first "park." is on the first line
    const char *stops[] = {"park."};
    o.sampling.stop_strings = stops;
    o.sampling.n_stop_strings = 1;
    if (pl_trace_dataset(&st, s, model, &d, &o) != 0) fail_msg("%s", pl_errmsg());
    assert_int_equal(st.n_traced, 1);

    pl_run_filter rf = pl_run_filter_complete();
    pl_run_info *runs;
    int n;
    assert_int_equal(pl_store_list_runs(s, &rf, &runs, &n), 0);
    assert_int_equal(n, 2);
    char buf[256], cot[4096], answer[4096];
    pl_token_row *t;
    int nt;
    // run 1: two lines of chain of thought, then the answer up to the dataset's stop string
    assert_int_equal(pl_store_get_tokens(s, runs[0].id, &t, &nt), 0);
    segment_text(t, nt, PL_SEG_COT, cot, sizeof cot);
    segment_text(t, nt, PL_SEG_ANSWER, answer, sizeof answer);
    printf("cot: [%s]\nanswer: [%s]\n", cot, answer);
    assert_non_null(strchr(cot, '\n'));
    assert_null(strstr(cot, "Lily was sad"));
    assert_non_null(strstr(answer, "Lily was sad and"));
    size_t alen = strlen(answer);
    assert_true(alen > 11 && strcmp(answer + alen - 11, "what to do.") == 0);
    free(t);
    assert_int_equal(pl_store_get_label(s, runs[0].id, "stop", buf, sizeof buf), 1);
    assert_string_equal(buf, "stop-string");
    assert_int_equal(pl_store_get_label(s, runs[0].id, "answer", buf, sizeof buf), 1);
    assert_string_equal(buf, "and didn't know");
    assert_int_equal(pl_store_get_label(s, runs[0].id, "correct", buf, sizeof buf), 1);
    assert_string_equal(buf, "1");
    assert_int_equal(pl_store_get_label(s, runs[0].id, "n_steps", buf, sizeof buf), 1);
    assert_string_equal(buf, "2");  // one step per line
    // run 2: --stop park. ends it on the first line, before any answer
    assert_int_equal(pl_store_get_tokens(s, runs[1].id, &t, &nt), 0);
    segment_text(t, nt, PL_SEG_COT, cot, sizeof cot);
    assert_null(strchr(cot, '\n'));
    size_t clen = strlen(cot);
    assert_true(clen > 5 && strcmp(cot + clen - 5, "park.") == 0);
    free(t);
    assert_int_equal(pl_store_get_label(s, runs[1].id, "has_answer", buf, sizeof buf), 1);
    assert_string_equal(buf, "0");
    free(runs);
    pl_store_close(s);
    pl_dataset_free(&d);
}

// trace's sampling options are generate's: --stop (repeatable) overrides the stop rule, --top-k 1
// and a tiny --top-p at temperature 1 choose the argmax as greedy decoding does, while plain
// temperature-1 sampling does not.
static void cli_stop_top_k_top_p(void **state) {
    const char *bin = test_probelab_bin();
    const char *model_path = test_shared_path("models/stories260K.gguf");
    char path[600], db[600], cmd[4096], *out;
    snprintf(path, sizeof path, "%s/once.jsonl", dir);
    snprintf(db, sizeof db, "%s/once.db", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"id\":\"once\",\"prompt\":\"Once upon a time\",\"answer\":\"x\"}\n");
    fclose(f);
    static const char *const variants[] = {"", "--stop park. --stop 'THE END'", "--temperature 1 --top-k 1 --seed 5",
                                           "--temperature 1 --top-p 0.000001 --seed 5", "--temperature 1 --seed 5"};
    for (int v = 0; v < 5; v++) {
        snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --max-new 40 --stop '<none>' --no-progress %s", bin,
                 model_path, path, db, variants[v]);
        if (v == 1)  // its own stop strings instead of the never-matching '<none>' the others share
            snprintf(cmd, sizeof cmd, "%s trace %s --dataset %s --store %s --max-new 40 --no-progress %s", bin, model_path,
                     path, db, variants[v]);
        if (run_cmd(cmd, &out) != 0) fail_msg("%s: %s", cmd, out);
        free(out);
    }
    pl_store *s;
    assert_int_equal(pl_store_open(&s, db, PL_STORE_READ), 0);
    pl_run_filter rf = pl_run_filter_complete();
    pl_run_info *runs;
    int n;
    assert_int_equal(pl_store_list_runs(s, &rf, &runs, &n), 0);
    assert_int_equal(n, 5);
    pl_token_row *t[5];
    int nt[5];
    for (int r = 0; r < 5; r++) assert_int_equal(pl_store_get_tokens(s, runs[r].id, &t[r], &nt[r]), 0);
    // run 2 ended at "park." (the first of the two stop strings to occur)
    char text[4096] = "";
    size_t len = 0;
    for (int i = runs[1].n_prompt; i < nt[1]; i++) len += (size_t)snprintf(text + len, sizeof text - len, "%s", t[1][i].piece);
    printf("--stop: [%s]\n", text);
    assert_true(len > 5 && strcmp(text + len - 5, "park.") == 0);
    char buf[64];
    assert_int_equal(pl_store_get_label(s, runs[1].id, "stop", buf, sizeof buf), 1);
    assert_string_equal(buf, "stop-string");
    // runs 3 and 4 equal greedy (run 1); run 5 does not
    for (int r = 2; r < 5; r++) {
        bool same = nt[r] == nt[0];
        for (int i = 0; same && i < nt[0]; i++) same = t[r][i].id == t[0][i].id;
        printf("variant '%s': %s greedy\n", variants[r], same ? "equals" : "differs from");
        assert_int_equal(same, r < 4);
    }
    for (int r = 0; r < 5; r++) free(t[r]);
    free(runs);
    pl_store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traced_values_match_recomputation),
        cmocka_unit_test(cli_commands_and_bad_input),
        cmocka_unit_test(record_star_means_every_recordable_hook),
        cmocka_unit_test(long_prompt_skipped_with_skip_bad),
        cmocka_unit_test(dataset_answer_prefix_and_stop_multiline_cot),
        cmocka_unit_test(cli_stop_top_k_top_p),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
