// The trace store's commands: `probelab trace`, `runs`, `show`, `export`. Format: docs/store.md.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/store/store.h"
#include "runtime/trace/trace.h"

#define NEED_VALUE(opt)                                         \
    do {                                                        \
        if (!value) return pl_fail("%s needs a value", opt), pl_print_error(), 2; \
    } while (0)

// ---- trace ---------------------------------------------------------------------------------

static volatile sig_atomic_t stop_requested = 0;

static void on_sigint(int sig) {
    stop_requested = 1;
    signal(sig, SIG_DFL);  // a second Ctrl-C kills at once (the store stays consistent either way)
}

static void trace_help(FILE *out) {
    fprintf(out,
            "usage: probelab trace MODEL --dataset FILE.jsonl --store S.db [options]\n"
            "For each example: build the prompt, generate the chain of thought and answer (greedy, stop at \"\\n\"),\n"
            "label token segments (prompt / cot / answer), check the answer, and record tokens (with logprobs and\n"
            "entropies), labels and the requested hooks into the store. Rerunning the same command resumes: examples\n"
            "already complete with the same model and settings are skipped. Ctrl-C stops cleanly (exit 130).\n"
            "  --dataset FILE       examples (JSONL / LoCoMo JSON; see docs/datasets.md)\n"
            "  --store S.db         the store (created if absent; tensors go to S.db-tensors/)\n"
            "  --record GLOBS       hooks to record, e.g. 'blocks.*.hook_resid_post,blocks.*.attn.hook_pattern'\n"
            "                       (default: none: tokens and labels only)\n"
            "  --positions RULE     all | prompt | cot (all generated tokens) | last-prompt (default all)\n"
            "  --dtype T            f16 | bf16 | f32 storage (default f16)\n"
            "  --max-new N          tokens to generate at most (default 64)\n"
            "  --limit N            trace only the first N examples\n"
            "  --temperature T      0 = greedy (default); --seed S for sampling\n"
            "  --skip-bad           skip dataset lines that do not parse and prompts longer than the context\n"
            "                       (warned, counted in the summary) instead of failing\n"
            "  --no-progress        no progress bar\n");
}

int cmd_trace(int argc, char **argv) {
    const char *model_path = NULL, *dataset = NULL, *store_path = NULL, *value;
    pl_trace_opts o = pl_trace_defaults();
    bool skip_bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return trace_help(stdout), 0;
        if (cli_opt(argc, argv, &i, "--dataset", &value)) {
            NEED_VALUE("--dataset");
            dataset = value;
        } else if (cli_opt(argc, argv, &i, "--store", &value)) {
            NEED_VALUE("--store");
            store_path = value;
        } else if (cli_opt(argc, argv, &i, "--record", &value)) {
            NEED_VALUE("--record");
            o.record = value;
        } else if (cli_opt(argc, argv, &i, "--positions", &value)) {
            if (pl_pos_rule_parse(value, &o.positions) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--dtype", &value)) {
            if (pl_dtype_parse(value, &o.dtype) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--max-new", &value)) {
            long v;
            if (cli_parse_int("--max-new", value, &v) != 0) return pl_print_error(), 2;
            if (v < 1 || v > 1 << 20) return pl_fail("--max-new %ld: must be >= 1", v), pl_print_error(), 2;
            o.sampling.max_new = (int)v;
        } else if (cli_opt(argc, argv, &i, "--limit", &value)) {
            long v;
            if (cli_parse_int("--limit", value, &v) != 0) return pl_print_error(), 2;
            if (v < 0) return pl_fail("--limit %ld: must be >= 0", v), pl_print_error(), 2;
            o.limit = (int)v;
        } else if (cli_opt(argc, argv, &i, "--temperature", &value)) {
            if (cli_parse_float("--temperature", value, &o.sampling.temperature) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &value)) {
            long v;
            if (cli_parse_int("--seed", value, &v) != 0) return pl_print_error(), 2;
            o.sampling.seed = (uint64_t)v;
        } else if (strcmp(argv[i], "--skip-bad") == 0) {
            skip_bad = true;
        } else if (strcmp(argv[i], "--no-progress") == 0) {
            o.progress = false;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "probelab trace: unknown option '%s'\n", argv[i]);
            return trace_help(stderr), 2;
        } else if (!model_path) {
            model_path = argv[i];
        } else {
            fprintf(stderr, "probelab trace: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path || !dataset || !store_path) {
        fprintf(stderr, "probelab trace: MODEL, --dataset and --store are required\n");
        return trace_help(stderr), 2;
    }
    pl_dataset d = {0};
    int n_skipped = 0;
    if (pl_dataset_load(&d, dataset, skip_bad, &n_skipped) != 0) return pl_print_error(), 1;
    if (d.n == 0) {
        pl_dataset_free(&d);
        return pl_fail("%s: no examples", dataset), pl_print_error(), 1;
    }
    pl_model *m = NULL;
    pl_store *s = NULL;
    int status = 1;
    if (pl_model_load(model_path, &m) != 0 || pl_store_open(&s, store_path, PL_STORE_WRITE) != 0) {
        pl_print_error();
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
        pl_print_error();
        goto done;
    }
    char unfit[64] = "";
    if (st.n_unfit) snprintf(unfit, sizeof unfit, ", %d too long for the context", st.n_unfit);
    fprintf(stderr, "%s: traced %d run%s (%d skipped as already complete%s), %d correct, %.1f MB of tensors, %.1f s\n",
            store_path, st.n_traced, st.n_traced == 1 ? "" : "s", st.n_skipped, unfit, st.n_correct, st.tensor_bytes / 1e6,
            st.seconds);
    if (st.interrupted) {
        fprintf(stderr, "probelab: interrupted; the run in progress was dropped. Rerun the same command to resume.\n");
        status = 130;
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

static void runs_help(FILE *out) {
    fprintf(out,
            "usage: probelab runs S.db [--model-id N] [--status STATUS] [--task TASK] [--correct 0|1] [--limit N]\n"
            "                          [--hooks|--summary|--models [--json]]\n"
            "List the runs of a store: id, status, task, difficulty, tokens, correct and the extracted answer.\n"
            "  --model-id N  runs of model N (needed when the store holds several models)\n"
            "  --models      list the models instead: id, name, path, sha256, d_model, layers, runs (--json: JSON)\n"
            "  --hooks       list the recorded hooks and the analyses instead\n"
            "  --summary     final-answer accuracy and valid-CoT rate by task and difficulty (complete runs of one model)\n");
}

static int by_task_difficulty(const void *a, const void *b) {
    const pl_run_info *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    if (c) return c;
    if (x->difficulty != y->difficulty) return x->difficulty - y->difficulty;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Accuracy (label 'correct') and the share of runs whose every CoT step is valid (label
// 'steps_valid') by task and difficulty.
static int print_summary(pl_store *s, pl_run_filter f) {
    f.status = "complete";
    pl_run_info *runs;
    int n;
    if (pl_store_list_runs(s, &f, &runs, &n) != 0) return -1;
    qsort(runs, (size_t)n, sizeof *runs, by_task_difficulty);
    printf("%-8s %4s %6s %9s %10s\n", "task", "diff", "runs", "accuracy", "valid CoT");
    int i = 0;
    while (i < n) {
        int j = i, n_correct = 0, n_valid = 0, n_labelled = 0;
        for (; j < n && strcmp(runs[j].task, runs[i].task) == 0 && runs[j].difficulty == runs[i].difficulty; j++) {
            char buf[32];
            n_correct += runs[j].correct == 1;
            int got = pl_store_get_label(s, runs[j].id, "steps_valid", buf, sizeof buf);
            if (got < 0) {
                free(runs);
                return -1;
            }
            if (got == 1) n_labelled++, n_valid += strcmp(buf, "1") == 0;
        }
        char valid[16] = "-";
        if (n_labelled) snprintf(valid, sizeof valid, "%.0f%%", 100.0 * n_valid / n_labelled);
        printf("%-8s %4d %6d %8.0f%% %10s\n", runs[i].task, runs[i].difficulty, j - i, 100.0 * n_correct / (j - i), valid);
        i = j;
    }
    free(runs);
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
            json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:I}", "id", (json_int_t)m[i].id, "name",
                                               m[i].name, "path", m[i].path, "sha256", m[i].sha256, "d_model", m[i].d_model,
                                               "n_layers", m[i].n_layers, "n_runs", (json_int_t)m[i].n_runs));
        int rc = json_dumpf(a, stdout, JSON_INDENT(2));
        json_decref(a);
        putchar('\n');
        free(m);
        return rc == 0 ? 0 : pl_fail("runs --models: cannot write JSON");
    }
    printf("%4s  %-24s %-12s %7s %6s %6s  %s\n", "id", "name", "sha256", "d_model", "layers", "runs", "path");
    for (int i = 0; i < n; i++)
        printf("%4lld  %-24s %-12.12s %7d %6d %6lld  %s\n", (long long)m[i].id, m[i].name, m[i].sha256, m[i].d_model,
               m[i].n_layers, (long long)m[i].n_runs, m[i].path);
    if (n == 0) printf("(no models: nothing traced into this store yet)\n");
    free(m);
    return 0;
}

int cmd_runs(int argc, char **argv) {
    const char *path = NULL, *value;
    pl_run_filter f = pl_run_filter_any();
    bool hooks = false, summary = false, models = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return runs_help(stdout), 0;
        if (cli_opt(argc, argv, &i, "--model-id", &value)) {
            if (cli_parse_model_id(value, &f.model_id) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--status", &value)) {
            NEED_VALUE("--status");
            f.status = value;
        } else if (cli_opt(argc, argv, &i, "--task", &value)) {
            NEED_VALUE("--task");
            f.task = value;
        } else if (cli_opt(argc, argv, &i, "--correct", &value)) {
            long v;
            if (cli_parse_int("--correct", value, &v) != 0) return pl_print_error(), 2;
            f.correct = v != 0;
        } else if (cli_opt(argc, argv, &i, "--limit", &value)) {
            long v;
            if (cli_parse_int("--limit", value, &v) != 0) return pl_print_error(), 2;
            f.limit = (int)v;
        } else if (strcmp(argv[i], "--hooks") == 0) {
            hooks = true;
        } else if (strcmp(argv[i], "--summary") == 0) {
            summary = true;
        } else if (strcmp(argv[i], "--models") == 0) {
            models = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "probelab runs: unexpected argument '%s'\n", argv[i]);
            return runs_help(stderr), 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) return runs_help(stderr), 2;
    if (json && !models) return fprintf(stderr, "probelab runs: --json goes with --models\n"), 2;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return pl_print_error(), 1;
    int status = 1;
    if (models) {
        if (print_models(s, json) == 0) status = 0;
        goto fail;
    }
    // Runs of one model: accuracy and counts of two models never pool.
    if (!hooks && pl_store_resolve_model(s, f.model_id, &f.model_id) != 0) goto fail;
    if (hooks) {
        char **names;
        int n;
        if (pl_store_list_hooks(s, &names, &n) != 0) goto fail;
        printf("recorded hooks (%d):\n", n);
        for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
        pl_strings_free(names, n);
        if (pl_store_list_analyses(s, &names, &n) != 0) goto fail;
        printf("analyses (%d):\n", n);
        for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
        pl_strings_free(names, n);
        status = 0;
        goto fail;
    }
    if (summary) {
        if (print_summary(s, f) == 0) status = 0;
        goto fail;
    }
    pl_run_info *runs;
    int n;
    if (pl_store_list_runs(s, &f, &runs, &n) != 0) goto fail;
    printf("%6s  %-9s %-7s %4s %6s %6s %7s  %s\n", "run", "status", "task", "diff", "prompt", "tokens", "correct", "answer");
    int n_correct = 0, n_complete = 0;
    for (int i = 0; i < n; i++) {
        const pl_run_info *r = &runs[i];
        printf("%6lld  %-9s %-7s %4d %6d %6d %7s  %s\n", (long long)r->id, r->status, r->task, r->difficulty, r->n_prompt,
               r->n_tokens, r->correct < 0 ? "-" : r->correct ? "yes" : "no", r->answer);
        n_correct += r->correct == 1;
        n_complete += strcmp(r->status, "complete") == 0;
    }
    printf("%d run%s, %d complete, %d correct\n", n, n == 1 ? "" : "s", n_complete, n_correct);
    free(runs);
    status = 0;
fail:
    if (status != 0) fprintf(stderr, "probelab: %s\n", pl_store_errmsg(s));
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
    if (argc < 3 || cli_is_help(argv[1])) {
        printf("usage: probelab show S.db RUN\nPrint a run: its labels, then every token with its segment, logprob and"
               " entropy.\n");
        return argc < 3 ? 2 : 0;
    }
    char *end;
    errno = 0;
    long long run_id = strtoll(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0' || errno) {
        fprintf(stderr, "probelab show: RUN must be a run id (a number), got '%s'\n", argv[2]);
        return 2;
    }
    pl_store *s;
    if (pl_store_open(&s, argv[1], PL_STORE_READ) != 0) return pl_print_error(), 1;
    pl_run_info r;
    pl_token_row *t = NULL;
    int n, status = 1;
    char **keys, **values;
    int n_labels;
    if (pl_store_get_run(s, run_id, &r) != 0 || pl_store_get_tokens(s, run_id, &t, &n) != 0 ||
        pl_store_list_labels(s, run_id, &keys, &values, &n_labels) != 0) {
        fprintf(stderr, "probelab: %s\n", pl_store_errmsg(s));
        goto done;
    }
    printf("run %lld  status %s  task %s  difficulty %d  tokens %d (prompt %d)\n", (long long)r.id, r.status, r.task,
           r.difficulty, r.n_tokens, r.n_prompt);
    for (int i = 0; i < n_labels; i++) printf("  %-14s %s\n", keys[i], values[i]);
    pl_strings_free(keys, n_labels);
    pl_strings_free(values, n_labels);
    printf("%5s  %-7s %6s  %-16s %9s %8s\n", "pos", "segment", "id", "piece", "logprob", "entropy");
    for (int i = 0; i < n; i++) {
        printf("%5d  %-7s %6d  ", i, pl_segment_name(t[i].segment), t[i].id);
        print_piece(t[i].piece);
        int w = (int)strlen(t[i].piece) + 2;
        printf("%*s", w < 16 ? 16 - w : 0, "");
        if (isnan(t[i].logprob)) printf(" %9s %8s\n", "-", "-");
        else printf(" %9.4f %8.4f\n", t[i].logprob, t[i].entropy);
    }
    status = 0;
done:
    free(t);
    pl_store_close(s);
    return status;
}

// ---- export --------------------------------------------------------------------------------

static void export_help(FILE *out) {
    fprintf(out,
            "usage: probelab export S.db --hook HOOK --positions RULE -o X.npy|X.safetensors [--label KEY]\n"
            "                      [--task TASK] [--correct 0|1]\n"
            "Write a design matrix over the complete runs: X [n × d] (float32), X.labels.npy, X.runs.npy\n"
            "(run id, position) and X.json describing them; or one .safetensors file with X, labels and runs\n"
            "plus the JSON. Loading them in Python needs only numpy (docs/store.md).\n"
            "  --hook HOOK        e.g. blocks.3.hook_resid_post (probelab runs S.db --hooks lists them)\n"
            "  --positions RULE   all | prompt | cot | answer | generated | last-prompt | last-cot |\n"
            "                     mean-prompt | mean-cot | mean-all (default last-prompt)\n"
            "  --label KEY        run label for labels.npy (default correct)\n"
            "  --model-id N       runs of model N (needed when the store holds several; runs S.db --models)\n");
}

int cmd_export(int argc, char **argv) {
    const char *path = NULL, *hook = NULL, *out = NULL, *label = "correct", *value;
    pl_pos_rule rule = PL_POS_LAST_PROMPT;
    pl_run_filter f = pl_run_filter_complete();
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return export_help(stdout), 0;
        if (cli_opt(argc, argv, &i, "--hook", &value)) {
            NEED_VALUE("--hook");
            hook = value;
        } else if (cli_opt(argc, argv, &i, "--positions", &value)) {
            if (pl_pos_rule_parse(value, &rule) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "-o", &value) || cli_opt(argc, argv, &i, "--output", &value)) {
            NEED_VALUE("-o");
            out = value;
        } else if (cli_opt(argc, argv, &i, "--label", &value)) {
            NEED_VALUE("--label");
            label = value;
        } else if (cli_opt(argc, argv, &i, "--task", &value)) {
            NEED_VALUE("--task");
            f.task = value;
        } else if (cli_opt(argc, argv, &i, "--model-id", &value)) {
            if (cli_parse_model_id(value, &f.model_id) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--correct", &value)) {
            long v;
            if (cli_parse_int("--correct", value, &v) != 0) return pl_print_error(), 2;
            f.correct = v != 0;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "probelab export: unexpected argument '%s'\n", argv[i]);
            return export_help(stderr), 2;
        } else {
            path = argv[i];
        }
    }
    if (!path || !hook || !out) return export_help(stderr), 2;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return pl_print_error(), 1;
    int n, d, status = 0;
    if (pl_store_export(s, out, hook, rule, &f, label, &n, &d) != 0) {
        fprintf(stderr, "probelab: %s\n", pl_store_errmsg(s));
        status = 1;
    } else {
        fprintf(stderr, "%s: %d rows x %d (%s at %s, label %s)\n", out, n, d, hook, pl_pos_rule_name(rule), label);
    }
    pl_store_close(s);
    return status;
}
