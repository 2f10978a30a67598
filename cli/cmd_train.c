// `probelab train`: train the small chain-of-thought Llama on built-in tasks and export a GGUF.
// The examples come from the task generators (datasets/); the trainer itself is runtime/train/.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "datasets/tasks.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/trace/trace.h"
#include "runtime/train/train.h"

static void usage(FILE *out) {
    pl_train_options d = pl_train_defaults();
    fprintf(out,
            "usage: probelab train --task arith,max,... --out MODEL.gguf [options]\n"
            "       probelab train eval --model MODEL.gguf [--task LIST] [--n N]   (accuracy table)\n"
            "Train a small Llama-architecture chain-of-thought model on built-in tasks (probelab tasks list).\n"
            "Loss on the chain of thought and the answer only; AdamW, warm-up + cosine, gradient clipping.\n"
            "Deterministic for a seed; --resume continues a checkpoint bit-identically.\n"
            "  --task LIST            comma-separated tasks, sampled uniformly (default arith,max,mc,vars)\n"
            "  --out FILE             GGUF to write at the end\n"
            "  --steps N              optimisation steps (default %d)\n"
            "  --stop-at N            stop after step N, keeping the schedule of --steps (for staged recipes)\n"
            "  --batch B              examples per step (default %d)\n"
            "  --lr LR                peak learning rate (default %g)\n"
            "  --warmup N             warm-up steps (default %d)\n"
            "  --seed S               seed for initialisation and data (default %llu)\n"
            "  --difficulty LO:HI     difficulties to train on, clipped to each task's range (default 1:6)\n"
            "  --d-model D --layers L --heads H --kv-heads K --ffn F --ctx C   (default %d %d %d %d %d %d)\n"
            "  --checkpoint FILE      write a checkpoint every --checkpoint-every steps (default %d) and at the end\n"
            "  --resume FILE          continue from a checkpoint\n"
            "  --threads N            OpenBLAS threads\n"
            "  --log-every N          print every N steps (default %d)\n",
            d.steps, d.batch, d.lr, d.warmup, (unsigned long long)d.seed, d.d_model, d.n_layers, d.n_heads,
            d.n_kv_heads, d.d_ff, d.context_length, d.checkpoint_every, d.log_every);
}

// ---- probelab train eval: greedy accuracy per task and difficulty ----

// Greedy-decode n examples of one task and difficulty and check them (trace's generate step).
static int eval_cell_run(pl_session *s, const pl_model *m, const char *task, int difficulty, int n, uint64_t seed,
                         pl_trace_tally *cell) {
    pl_dataset ds;
    if (pl_task_generate(&ds, task, n, seed, difficulty, difficulty)) return -1;
    pl_trace_step_opts o = {.sampling = pl_sample_defaults()};  // stops at the task's stop string
    o.sampling.temperature = 0;
    o.sampling.max_new = 0;  // up to the context
    int rc = pl_trace_eval(cell, s, m->tokenizer, &ds, &o);
    if (rc == 0 && cell->n_unfit) rc = pl_fail("%s difficulty %d: %d prompts longer than the context", task, difficulty, cell->n_unfit);
    pl_dataset_free(&ds);
    return rc;
}

static int train_eval(int argc, char **argv) {
    const char *model_path = NULL, *tasks = "arith,max,mc,vars", *value;
    long n = 50, seed = 20240;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: probelab train eval --model FILE [--task LIST] [--n N] [--seed S]\n"
                   "Greedy-decode N fresh examples per task and difficulty (the task's whole range) and print a\n"
                   "markdown table: final-answer accuracy, step validity (pl_check_cot) and sound chains.\n");
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--model", &value) || cli_opt(argc, argv, &i, "-m", &value)) {
            if (!value) return pl_fail("--model needs a file"), pl_print_error(), 2;
            model_path = value;
        } else if (cli_opt(argc, argv, &i, "--task", &value)) {
            if (!value) return pl_fail("--task needs a value"), pl_print_error(), 2;
            tasks = value;
        } else if (cli_opt(argc, argv, &i, "--n", &value)) {
            if (cli_parse_int("--n", value, &n) != 0 || n < 1) return pl_fail("--n must be >= 1"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &value)) {
            if (cli_parse_int("--seed", value, &seed) != 0) return pl_print_error(), 2;
        } else {
            fprintf(stderr, "probelab train eval: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path) return fprintf(stderr, "probelab train eval: --model FILE is required\n"), 2;
    pl_task_mix mix;
    if (pl_task_mix_parse(&mix, tasks, 1, 1000)) return pl_print_error(), 2;
    pl_model *m = NULL;
    pl_session *s = NULL;
    if (pl_model_load(model_path, &m)) return pl_print_error(), 1;
    if (!m->tokenizer) return pl_fail("%s: the model has no tokenizer", model_path), pl_print_error(), pl_model_free(m), 1;
    if (pl_session_new(m, 0, &s)) return pl_print_error(), pl_model_free(m), 1;
    double t0 = pl_now_sec();
    printf("| task | difficulty | n | final answer correct | all steps valid | sound chain |\n");
    printf("|---|---|---|---|---|---|\n");
    int rc = 0;
    for (int k = 0; k < mix.n && rc == 0; k++)
        for (int d = mix.lo[k]; d <= mix.hi[k]; d++) {
            pl_trace_tally c;
            if (eval_cell_run(s, m, mix.names[k], d, (int)n, (uint64_t)seed, &c)) {
                rc = 1;
                break;
            }
            printf("| %s | %d | %d | %.0f%% | %.0f%% | %.0f%% |\n", mix.names[k], d, c.n, 100.0 * c.correct / c.n,
                   c.steps_checked ? 100.0 * c.steps_valid / c.steps_checked : 0.0, 100.0 * c.sound / c.n);
            fflush(stdout);
        }
    if (rc) pl_print_error();
    else fprintf(stderr, "evaluated in %.1fs\n", pl_now_sec() - t0);
    pl_session_free(s);
    pl_model_free(m);
    return rc;
}

int cmd_train(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "eval") == 0) return train_eval(argc - 1, argv + 1);
    pl_train_options o = pl_train_defaults();
    const char *tasks = "arith,max,mc,vars", *value;
    long lo = 1, hi = 6;
    for (int i = 1; i < argc; i++) {
        long v;
        float fv;
        if (cli_is_help(argv[i])) return usage(stdout), 0;
#define INT_OPT(name, field)                                                   \
    if (cli_opt(argc, argv, &i, name, &value)) {                              \
        if (cli_parse_int(name, value, &v) != 0) return pl_print_error(), 2;  \
        o.field = (int)v;                                                     \
        continue;                                                             \
    }
        INT_OPT("--steps", steps)
        INT_OPT("--stop-at", stop_at)
        INT_OPT("--batch", batch)
        INT_OPT("--warmup", warmup)
        INT_OPT("--d-model", d_model)
        INT_OPT("--layers", n_layers)
        INT_OPT("--heads", n_heads)
        INT_OPT("--kv-heads", n_kv_heads)
        INT_OPT("--ffn", d_ff)
        INT_OPT("--ctx", context_length)
        INT_OPT("--threads", threads)
        INT_OPT("--log-every", log_every)
        INT_OPT("--checkpoint-every", checkpoint_every)
#undef INT_OPT
        if (cli_opt(argc, argv, &i, "--seed", &value)) {
            if (cli_parse_int("--seed", value, &v) != 0) return pl_print_error(), 2;
            o.seed = (uint64_t)v;
        } else if (cli_opt(argc, argv, &i, "--lr", &value)) {
            if (cli_parse_float("--lr", value, &fv) != 0) return pl_print_error(), 2;
            o.lr = fv;
        } else if (cli_opt(argc, argv, &i, "--task", &value)) {
            if (!value) return pl_fail("--task needs a value"), pl_print_error(), 2;
            tasks = value;
        } else if (cli_opt(argc, argv, &i, "--difficulty", &value)) {
            char extra;
            if (!value || sscanf(value, "%ld:%ld%c", &lo, &hi, &extra) != 2 || lo > hi)
                return pl_fail("--difficulty: expected LO:HI, e.g. 1:6"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--out", &value) || cli_opt(argc, argv, &i, "-o", &value)) {
            if (!value) return pl_fail("--out needs a file name"), pl_print_error(), 2;
            o.out_path = value;
        } else if (cli_opt(argc, argv, &i, "--checkpoint", &value)) {
            if (!value) return pl_fail("--checkpoint needs a file name"), pl_print_error(), 2;
            o.checkpoint_path = value;
        } else if (cli_opt(argc, argv, &i, "--resume", &value)) {
            if (!value) return pl_fail("--resume needs a file name"), pl_print_error(), 2;
            o.resume_path = value;
        } else {
            fprintf(stderr, "probelab train: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.out_path && !o.checkpoint_path) {
        fprintf(stderr, "probelab train: give --out FILE (and/or --checkpoint FILE)\n");
        return 2;
    }
    pl_task_mix mix;
    if (pl_task_mix_parse(&mix, tasks, (int)lo, (int)hi)) return pl_print_error(), 2;
    printf("tasks:");
    for (int k = 0; k < mix.n; k++) printf(" %s (difficulty %d..%d)", mix.names[k], mix.lo[k], mix.hi[k]);
    printf("\n");
    pl_train_source src = {pl_task_mix_next, &mix};
    if (pl_train_run(&o, &src, stdout)) return pl_print_error(), 1;
    return 0;
}
