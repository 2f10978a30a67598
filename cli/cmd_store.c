// The trace store's commands: `probelab trace`, `runs`, `show`, `export`. Format: docs/store.md.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/store/store.h"
#include "runtime/trace/trace.h"

// ---- trace ---------------------------------------------------------------------------------

static volatile sig_atomic_t stop_requested = 0;

static void on_sigint(int sig) {
    stop_requested = 1;
    signal(sig, SIG_DFL);  // a second Ctrl-C kills at once (the store stays consistent either way)
}

static int parse_dtype(const char *value, void *out) { return pl_dtype_parse(value, out); }

int cmd_trace(int argc, char **argv) {
    const char *model_path = NULL, *dataset = NULL, *store_path = NULL;
    pl_trace_opts o = pl_trace_defaults();
    int64_t max_new = o.sampling.max_new, top_k = o.sampling.top_k, seed = (int64_t)o.sampling.seed, limit = 0;
    double temperature = o.sampling.temperature, top_p = o.sampling.top_p;
    cli_strings stops = {0};
    bool skip_bad = false, no_progress = false, json = false;
    char positions_help[300];
    snprintf(positions_help, sizeof positions_help, "positions to record: %s (generated = every generated token)",
             cli_positions_list(CLI_POS_RECORD));
    const cli_option opts[] = {
        {"--dataset", CLI_STRING, &dataset, "FILE", .help = "examples (JSONL / LoCoMo JSON; docs/datasets.md)", .required = true},
        {"--store", CLI_STRING, &store_path, "S.db", .help = "the store (created if absent; tensors go to S.db-tensors/)",
         .required = true},
        {"--hooks", CLI_STRING, &o.record, "GLOBS",
         .help = "hooks to record: comma-separated globs, '*' = every recordable hook", .def = "none: tokens and labels only",
         .aliases = {"--record"}},
        {"--positions", CLI_CUSTOM, &o.positions, "RULE", .help = positions_help, .def = "all", .aliases = {"--at"},
         .parse = cli_parse_positions_record},
        {"--dtype", CLI_CUSTOM, &o.dtype, "T", .help = "storage dtype: f16 | bf16 | f32", .def = "f16", .parse = parse_dtype},
        CLI_SAMPLING_OPTIONS(max_new, temperature, top_k, top_p, seed, stops),
        {"--limit", CLI_INT, &limit, "N", .help = "trace only the first N examples; 0 = all", .def = "0", .min = 0,
         .max = INT32_MAX},
        {"--skip-bad", CLI_FLAG, &skip_bad,
         .help = "skip dataset lines that do not parse and prompts longer than the context (warned, counted) instead of failing"},
        {"--no-progress", CLI_FLAG, &no_progress, .help = "no progress bar"},
        {"--json", CLI_FLAG, &json, .help = "print the summary as one JSON object on stdout"},
        {0}};
    const cli_positional pos[] = {{"MODEL", &model_path, "a .gguf file or a Hugging Face folder", true}, {0}};
    const cli_spec spec = {
        "trace", opts, pos,
        .summary =
            "For each example: build the prompt, generate the chain of thought and answer (greedy unless --temperature;\n"
            "stop at --stop, else at the dataset's stop strings, else the task's: \"\\n\" for the built-in tasks),\n"
            "label token segments (prompt / cot / answer: the answer starts at the dataset's or the task's answer prefix,\n"
            "\"A:\" for the built-in tasks), check the answer, and record tokens (with logprobs and entropies), labels\n"
            "(the dataset's meta fields among them) and the requested hooks into the store. Rerunning the same\n"
            "command resumes: examples already complete with the same model and settings are skipped. Ctrl-C stops\n"
            "cleanly (exit 130)."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    o.sampling.max_new = (int)max_new, o.sampling.top_k = (int)top_k, o.sampling.seed = (uint64_t)seed;
    o.sampling.temperature = (float)temperature, o.sampling.top_p = (float)top_p;
    o.sampling.stop_strings = stops.v, o.sampling.n_stop_strings = stops.n;
    o.limit = (int)limit;
    o.progress = !no_progress;
    pl_dataset d = {0};
    int n_skipped = 0;
    if (pl_dataset_load(&d, dataset, skip_bad, &n_skipped) != 0) return cli_fail();
    if (d.n == 0) {
        pl_dataset_free(&d);
        return cli_error("%s: no examples", dataset);
    }
    pl_model *m = NULL;
    pl_store *s = NULL;
    int status = 1;
    if (pl_model_open(&m, model_path) != 0 || pl_store_open(&s, store_path, PL_STORE_WRITE) != 0) {
        cli_fail();
        goto done;
    }
    o.dataset_path = dataset;
    o.check = pl_trace_check_cot;
    o.skip_bad = skip_bad;
    o.stop = &stop_requested;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;  // no SA_RESTART: a blocking call returns and we notice the flag
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pl_trace_stats st;
    int rc = pl_trace_dataset(&st, s, m, &d, &o);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) {
        cli_fail();
        goto done;
    }
    if (json) {
        json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:o, s:b}", "store", store_path, "n_examples",
                              st.n_examples, "n_traced", st.n_traced, "n_skipped", st.n_skipped, "n_unfit", st.n_unfit,
                              "n_correct", st.n_correct,
                              "tensor_bytes", (json_int_t)st.tensor_bytes, "seconds", cli_json_real(st.seconds),
                              "interrupted", (int)st.interrupted);
        if (cli_print_json(j) != 0) goto done;
    } else {
        char unfit[64] = "";
        if (st.n_unfit) snprintf(unfit, sizeof unfit, ", %d too long for the context", st.n_unfit);
        fprintf(stderr, "%s: traced %d run%s (%d skipped as already complete%s), %d correct, %.1f MB of tensors, %.1f s\n",
                store_path, st.n_traced, st.n_traced == 1 ? "" : "s", st.n_skipped, unfit, st.n_correct,
                st.tensor_bytes / 1e6, st.seconds);
    }
    if (st.interrupted) {
        cli_error("interrupted; the run in progress was dropped. Rerun the same command to resume.");
        status = CLI_EXIT_INTERRUPTED;
    } else {
        status = 0;
    }
done:
    pl_store_close(s);
    pl_model_free(m);
    pl_dataset_free(&d);
    return status;
}

// ---- runs ----------------------------------------------------------------------------------

static int by_task_difficulty(const void *a, const void *b) {
    const pl_run_info *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    if (c) return c;
    if (x->difficulty != y->difficulty) return x->difficulty - y->difficulty;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Accuracy (label 'correct') and the share of runs whose every CoT step is valid (label
// 'steps_valid') by task and difficulty.
static int print_summary(pl_store *s, pl_run_filter f, bool json) {
    f.status = "complete";
    pl_run_info *runs;
    int n;
    if (pl_store_list_runs(s, &f, &runs, &n) != 0) return -1;
    qsort(runs, (size_t)n, sizeof *runs, by_task_difficulty);
    json_t *rows = json ? json_array() : NULL;
    if (!json) printf("%-8s %4s %6s %9s %10s\n", "task", "diff", "runs", "accuracy", "valid CoT");
    int i = 0;
    while (i < n) {
        int j = i, n_correct = 0, n_valid = 0, n_labelled = 0;
        for (; j < n && strcmp(runs[j].task, runs[i].task) == 0 && runs[j].difficulty == runs[i].difficulty; j++) {
            char buf[32];
            n_correct += runs[j].correct == 1;
            int got = pl_store_get_label(s, runs[j].id, "steps_valid", buf, sizeof buf);
            if (got < 0) {
                free(runs);
                json_decref(rows);
                return -1;
            }
            if (got == 1) n_labelled++, n_valid += strcmp(buf, "1") == 0;
        }
        if (json) {
            json_array_append_new(rows, json_pack("{s:s, s:i, s:i, s:f, s:o}", "task", runs[i].task, "difficulty",
                                                  runs[i].difficulty, "runs", j - i, "accuracy", (double)n_correct / (j - i),
                                                  "valid_cot", n_labelled ? json_real((double)n_valid / n_labelled) : json_null()));
        } else {
            char valid[16] = "-";
            if (n_labelled) snprintf(valid, sizeof valid, "%.0f%%", 100.0 * n_valid / n_labelled);
            printf("%-8s %4d %6d %8.0f%% %10s\n", runs[i].task, runs[i].difficulty, j - i, 100.0 * n_correct / (j - i), valid);
        }
        i = j;
    }
    free(runs);
    if (json && cli_print_json(json_pack("{s:o}", "summary", rows)) != 0) return -1;
    return 0;
}

// `runs --models`: one line (or JSON object) per model.
static int print_models(pl_store *s, bool json) {
    pl_model_info *m;
    int n;
    if (pl_store_list_models(s, &m, &n) != 0) return -1;
    if (json) {
        json_t *a = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(a, json_pack("{s:I, s:o, s:o, s:s, s:i, s:i, s:I}", "id", (json_int_t)m[i].id, "name",
                                               cli_json_text(m[i].name, strlen(m[i].name)), "path",
                                               cli_json_text(m[i].path, strlen(m[i].path)), "sha256", m[i].sha256, "d_model",
                                               m[i].d_model, "n_layers", m[i].n_layers, "n_runs", (json_int_t)m[i].n_runs));
        free(m);
        return cli_print_json(a) == 0 ? 0 : -1;
    }
    printf("%4s  %-24s %-12s %7s %6s %6s  %s\n", "id", "name", "sha256", "d_model", "layers", "runs", "path");
    for (int i = 0; i < n; i++)
        printf("%4lld  %-24s %-12.12s %7d %6d %6lld  %s\n", (long long)m[i].id, m[i].name, m[i].sha256, m[i].d_model,
               m[i].n_layers, (long long)m[i].n_runs, m[i].path);
    if (n == 0) printf("(no models: nothing traced into this store yet)\n");
    free(m);
    return 0;
}

static json_t *strings_json(char **names, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *run_json(const pl_run_info *r) {
    return json_pack("{s:I, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:I, s:I}", "id", (json_int_t)r->id, "status", r->status,
                     "task", r->task, "difficulty", r->difficulty, "n_prompt", r->n_prompt, "n_tokens", r->n_tokens,
                     "correct", r->correct < 0 ? json_null() : json_boolean(r->correct), "answer",
                     cli_json_text(r->answer, strlen(r->answer)), "model_id", (json_int_t)r->model_id, "example_id",
                     (json_int_t)r->example_id);
}

int cmd_runs(int argc, char **argv) {
    const char *path = NULL;
    pl_run_filter f = pl_run_filter_any();
    int64_t correct = -1, limit = 0;
    bool hooks = false, summary = false, models = false, json = false;
    const cli_option opts[] = {
        CLI_MODEL_ID_OPTION(f.model_id),
        {"--status", CLI_STRING, &f.status, "STATUS", .help = "only runs with this status: complete | running | aborted | failed"},
        {"--task", CLI_STRING, &f.task, "TASK", .help = "only runs of this task"},
        {"--correct", CLI_INT, &correct, "0|1", .help = "only wrong (0) or right (1) runs", .min = 0, .max = 1},
        {"--limit", CLI_INT, &limit, "N", .help = "list at most N runs; 0 = all", .def = "0", .min = 0, .max = INT32_MAX},
        {"--hooks", CLI_FLAG, &hooks, .help = "list the recorded hooks and the analyses instead"},
        {"--summary", CLI_FLAG, &summary,
         .help = "final-answer accuracy and valid-CoT rate by task and difficulty (complete runs of one model)"},
        {"--models", CLI_FLAG, &models, .help = "list the models instead: id, name, path, sha256, d_model, layers, runs"},
        {"--json", CLI_FLAG, &json,
         .help = "print JSON: {\"runs\": [...]}, {\"summary\": [...]}, [models] or {\"hooks\", \"analyses\"}"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {"runs", opts, pos,
                           .summary = "List the runs of a store: id, status, task, difficulty, tokens, correct and the "
                                      "extracted answer."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (hooks + summary + models > 1) return cli_usage_error("give at most one of --hooks, --summary and --models");
    f.correct = (int)correct, f.limit = (int)limit;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return cli_fail();
    int status = 1;
    if (models) {
        if (print_models(s, json) == 0) status = 0;
        goto fail;
    }
    // Runs of one model: accuracy and counts of two models never pool.
    if (!hooks && pl_store_resolve_model(s, f.model_id, &f.model_id) != 0) goto fail;
    if (hooks) {
        char **names, **analyses;
        int n, n_analyses;
        if (pl_store_list_hooks(s, &names, &n) != 0) goto fail;
        if (pl_store_list_analyses(s, &analyses, &n_analyses) != 0) {
            pl_strings_free(names, n);
            goto fail;
        }
        if (json) {
            status = cli_print_json(json_pack("{s:o, s:o}", "hooks", strings_json(names, n), "analyses",
                                              strings_json(analyses, n_analyses)));
        } else {
            printf("recorded hooks (%d):\n", n);
            for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
            printf("analyses (%d):\n", n_analyses);
            for (int i = 0; i < n_analyses; i++) printf("  %s\n", analyses[i]);
            status = 0;
        }
        pl_strings_free(names, n);
        pl_strings_free(analyses, n_analyses);
        goto done;
    }
    if (summary) {
        if (print_summary(s, f, json) == 0) status = 0;
        goto fail;
    }
    pl_run_info *runs;
    int n;
    if (pl_store_list_runs(s, &f, &runs, &n) != 0) goto fail;
    int n_correct = 0, n_complete = 0;
    json_t *a = json ? json_array() : NULL;
    if (!json)
        printf("%6s  %-9s %-7s %4s %6s %6s %7s  %s\n", "run", "status", "task", "diff", "prompt", "tokens", "correct", "answer");
    for (int i = 0; i < n; i++) {
        const pl_run_info *r = &runs[i];
        if (json) json_array_append_new(a, run_json(r));
        else
            printf("%6lld  %-9s %-7s %4d %6d %6d %7s  %s\n", (long long)r->id, r->status, r->task, r->difficulty, r->n_prompt,
                   r->n_tokens, r->correct < 0 ? "-" : r->correct ? "yes" : "no", r->answer);
        n_correct += r->correct == 1;
        n_complete += strcmp(r->status, "complete") == 0;
    }
    free(runs);
    if (json) {
        status = cli_print_json(json_pack("{s:o, s:i, s:i, s:i}", "runs", a, "n", n, "n_complete", n_complete, "n_correct", n_correct));
        goto done;
    }
    printf("%d run%s, %d complete, %d correct\n", n, n == 1 ? "" : "s", n_complete, n_correct);
    status = 0;
fail:
    if (status != 0) cli_error("%s", pl_store_errmsg(s));
done:
    pl_store_close(s);
    return status;
}

// ---- show ----------------------------------------------------------------------------------

// Print a token piece with control characters escaped.
static void print_piece(const char *p) {
    putchar('\'');
    for (; *p; p++) {
        if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p == '\'') fputs("\\'", stdout);
        else if ((unsigned char)*p < 0x20) printf("\\x%02x", (unsigned char)*p);
        else putchar(*p);
    }
    putchar('\'');
}

int cmd_show(int argc, char **argv) {
    const char *path = NULL, *run_text = NULL;
    int64_t run_opt = 0;
    bool json = false, run_given = false;
    const cli_option opts[] = {
        {"--run", CLI_INT, &run_opt, "R", .help = "the run id (probelab runs S.db lists them)", .min = 1, .max = (double)INT64_MAX,
         .seen = &run_given},
        {"--json", CLI_FLAG, &json, .help = "print {\"run\": {...}, \"labels\": {...}, \"tokens\": [...]}"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {"RUN", &run_text, "the run id, as --run R", false}, {0}};
    const cli_spec spec = {"show", opts, pos, .usage = "S.db (--run R | RUN) [options]",
                           .summary = "Print a run: its labels, then every token with its segment, logprob and entropy."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    int64_t run_id = run_opt;
    if (run_text) {
        char *end;
        errno = 0;
        long long v = strtoll(run_text, &end, 10);
        if (*run_text == '\0' || *end != '\0' || errno || v < 1) return cli_usage_error("RUN must be a run id (an integer >= 1), got '%s'", run_text);
        if (run_given && v != run_opt) return cli_usage_error("RUN %lld and --run %lld disagree", v, (long long)run_opt);
        run_id = v;
    } else if (!run_given) {
        return cli_usage_error("missing the run: --run R (probelab runs %s lists them)", path);
    }
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return cli_fail();
    pl_run_info r;
    pl_token_row *t = NULL;
    int n, status = 1;
    char **keys, **values;
    int n_labels;
    if (pl_store_get_run(s, run_id, &r) != 0 || pl_store_get_tokens(s, run_id, &t, &n) != 0 ||
        pl_store_list_labels(s, run_id, &keys, &values, &n_labels) != 0) {
        cli_error("%s", pl_store_errmsg(s));
        goto done;
    }
    if (json) {
        json_t *labels = json_object(), *tokens = json_array();
        for (int i = 0; i < n_labels; i++) json_object_set_new(labels, keys[i], cli_json_text(values[i], strlen(values[i])));
        for (int i = 0; i < n; i++)
            json_array_append_new(tokens, json_pack("{s:i, s:s, s:i, s:o, s:o, s:o}", "pos", i, "segment",
                                                    pl_segment_name(t[i].segment), "id", t[i].id, "piece",
                                                    cli_json_text(t[i].display, strlen(t[i].display)), "logprob",
                                                    cli_json_float(t[i].logprob), "entropy", cli_json_float(t[i].entropy)));
        status = cli_print_json(json_pack("{s:o, s:o, s:o}", "run", run_json(&r), "labels", labels, "tokens", tokens));
    } else {
        printf("run %lld  status %s  task %s  difficulty %d  tokens %d (prompt %d)\n", (long long)r.id, r.status, r.task,
               r.difficulty, r.n_tokens, r.n_prompt);
        for (int i = 0; i < n_labels; i++) printf("  %-14s %s\n", keys[i], values[i]);
        printf("%5s  %-7s %6s  %-16s %9s %8s\n", "pos", "segment", "id", "piece", "logprob", "entropy");
        for (int i = 0; i < n; i++) {
            printf("%5d  %-7s %6d  ", i, pl_segment_name(t[i].segment), t[i].id);
            print_piece(t[i].display);
            int w = (int)strlen(t[i].display) + 2;
            printf("%*s", w < 16 ? 16 - w : 0, "");
            if (isnan(t[i].logprob)) printf(" %9s %8s\n", "-", "-");
            else printf(" %9.4f %8.4f\n", t[i].logprob, t[i].entropy);
        }
        status = 0;
    }
    pl_strings_free(keys, n_labels);
    pl_strings_free(values, n_labels);
done:
    free(t);
    pl_store_close(s);
    return status;
}

// ---- export --------------------------------------------------------------------------------

// The files pl_store_export writes for path (docs/store.md): X itself, and for .npy the
// .labels.npy / .runs.npy siblings; always the .json sidecar.
static json_t *export_files(const char *path) {
    json_t *a = json_array();
    size_t len = strlen(path);
    const char *ext = len >= 4 && strcmp(path + len - 4, ".npy") == 0 ? ".npy" : ".safetensors";
    size_t stem = len - strlen(ext) * (len >= strlen(ext) && strcmp(path + len - strlen(ext), ext) == 0);
    json_array_append_new(a, json_string(path));
    char buf[4096];
    if (strcmp(ext, ".npy") == 0) {
        snprintf(buf, sizeof buf, "%.*s.labels.npy", (int)stem, path);
        json_array_append_new(a, json_string(buf));
        snprintf(buf, sizeof buf, "%.*s.runs.npy", (int)stem, path);
        json_array_append_new(a, json_string(buf));
    }
    snprintf(buf, sizeof buf, "%.*s.json", (int)stem, path);
    json_array_append_new(a, json_string(buf));
    return a;
}

int cmd_export(int argc, char **argv) {
    const char *path = NULL, *hook = NULL, *out = NULL, *label = "correct";
    pl_pos_rule rule = PL_POS_LAST_PROMPT;
    pl_run_filter f = pl_run_filter_complete();
    int64_t correct = -1;
    bool json = false;
    char positions_help[300];
    snprintf(positions_help, sizeof positions_help, "rows: %s", cli_positions_list(CLI_POS_ROWS));
    const cli_option opts[] = {
        {"--hooks", CLI_STRING, &hook, "HOOK", .help = "the hook, e.g. blocks.3.hook_resid_post (probelab runs S.db --hooks)",
         .aliases = {"--hook"}, .required = true},
        {"--positions", CLI_CUSTOM, &rule, "RULE", .help = positions_help, .def = "last-prompt", .aliases = {"--at"},
         .parse = cli_parse_positions_rows},
        {"--output", CLI_STRING, &out, "FILE", .help = "X.npy or X.safetensors", .aliases = {"-o"}, .required = true},
        {"--label", CLI_STRING, &label, "KEY", .help = "run label for the labels array", .def = "correct"},
        {"--task", CLI_STRING, &f.task, "TASK", .help = "only runs of this task"},
        {"--correct", CLI_INT, &correct, "0|1", .help = "only wrong (0) or right (1) runs", .min = 0, .max = 1},
        CLI_MODEL_ID_OPTION(f.model_id),
        {"--json", CLI_FLAG, &json, .help = "print what was written: {\"files\", \"n_rows\", \"dim\", \"hook\", \"positions\", \"label\"}"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {
        "export", opts, pos,
        .summary = "Write a design matrix over the complete runs: X [n x d] (float32), X.labels.npy, X.runs.npy\n"
                   "(run id, position) and X.json describing them; or one .safetensors file with X, labels and runs\n"
                   "plus the JSON. Loading them in Python needs only numpy (docs/store.md)."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    f.correct = (int)correct;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return cli_fail();
    int n, d, status = 0;
    if (pl_store_export(s, out, hook, rule, &f, label, &n, &d) != 0) {
        status = cli_error("%s", pl_store_errmsg(s));
    } else if (json) {
        status = cli_print_json(json_pack("{s:o, s:i, s:i, s:s, s:s, s:s}", "files", export_files(out), "n_rows", n, "dim", d,
                                          "hook", hook, "positions", pl_pos_rule_name(rule), "label", label));
    } else {
        fprintf(stderr, "%s: %d rows x %d (%s at %s, label %s)\n", out, n, d, hook, pl_pos_rule_name(rule), label);
    }
    pl_store_close(s);
    return status;
}
