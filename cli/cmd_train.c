// `probelab train`: train the small chain-of-thought Llama on built-in tasks and export a GGUF.
// The examples come from the task generators (datasets/); the trainer itself is runtime/train/.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
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

// "LO:HI" (LO <= HI) into int64_t[2].
static int parse_lohi(const char *value, void *out) {
    int64_t *lohi = out;
    long long lo, hi;
    char extra;
    if (sscanf(value, "%lld:%lld%c", &lo, &hi, &extra) != 2 || lo < 0 || hi < lo || hi > 1000)
        return pl_fail("expected LO:HI with 0 <= LO <= HI <= 1000, e.g. 1:6");
    lohi[0] = lo, lohi[1] = hi;
    return 0;
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
    const char *model_path = NULL, *tasks = "arith,max,mc,vars";
    int64_t n = 50, seed = 20240;
    bool json = false;
    const cli_option opts[] = {
        {"--model", CLI_STRING, &model_path, "FILE", .help = "the model to evaluate", .aliases = {"-m"}, .required = true},
        {"--task", CLI_STRING, &tasks, "LIST", .help = "comma-separated tasks", .def = "arith,max,mc,vars"},
        {"--n", CLI_INT, &n, "N", .help = "fresh examples per task and difficulty", .def = "50", .min = 1, .max = 1000000},
        {"--seed", CLI_INT, &seed, "S", .help = "seed of the examples", .def = "20240", .min = 0, .max = (double)INT64_MAX},
        {"--json", CLI_FLAG, &json, .help = "print [{\"task\", \"difficulty\", \"n\", \"correct\", \"steps_checked\", "
                                            "\"steps_valid\", \"sound\"}] (counts) instead of the table"},
        {0}};
    const cli_spec spec = {"train eval", opts, NULL,
                           .summary = "Greedy-decode N fresh examples per task and difficulty (the task's whole range) and "
                                      "print a\nmarkdown table: final-answer accuracy, step validity (pl_check_cot) and "
                                      "sound chains."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_task_mix mix;
    if (pl_task_mix_parse(&mix, tasks, 1, 1000)) return cli_fail(), CLI_EXIT_USAGE;
    pl_model *m = NULL;
    pl_session *s = NULL;
    if (pl_model_open(&m, model_path)) return cli_fail();
    if (!m->tokenizer) return pl_model_free(m), cli_error("%s: the model has no tokenizer", model_path);
    if (pl_session_open(&s, m, 0)) return pl_model_free(m), cli_fail();
    double t0 = pl_now_sec();
    json_t *cells = json ? json_array() : NULL;
    if (!json) {
        printf("| task | difficulty | n | final answer correct | all steps valid | sound chain |\n");
        printf("|---|---|---|---|---|---|\n");
    }
    int rc = 0;
    for (int k = 0; k < mix.n && rc == 0; k++)
        for (int d = mix.lo[k]; d <= mix.hi[k]; d++) {
            pl_trace_tally c;
            if (eval_cell_run(s, m, mix.names[k], d, (int)n, (uint64_t)seed, &c)) {
                rc = 1;
                break;
            }
            if (json) {
                json_array_append_new(cells, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "task", mix.names[k],
                                                       "difficulty", d, "n", c.n, "correct", c.correct, "steps_checked",
                                                       c.steps_checked, "steps_valid", c.steps_valid, "sound", c.sound));
                continue;
            }
            printf("| %s | %d | %d | %.0f%% | %.0f%% | %.0f%% |\n", mix.names[k], d, c.n, 100.0 * c.correct / c.n,
                   c.steps_checked ? 100.0 * c.steps_valid / c.steps_checked : 0.0, 100.0 * c.sound / c.n);
            fflush(stdout);
        }
    if (rc) cli_fail();
    else fprintf(stderr, "evaluated in %.1fs\n", pl_now_sec() - t0);
    if (json) {
        if (rc == 0) rc = cli_print_json(cells);
        else json_decref(cells);
    }
    pl_session_free(s);
    pl_model_free(m);
    return rc;
}

int cmd_train(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "eval") == 0) return train_eval(argc - 1, argv + 1);
    pl_train_options o = pl_train_defaults();
    const char *tasks = "arith,max,mc,vars";
    int64_t lohi[2] = {1, 6};
    // Integer settings, each filled by its option and copied into o below.
    int64_t steps = o.steps, stop_at = o.stop_at, batch = o.batch, warmup = o.warmup, d_model = o.d_model,
            layers = o.n_layers, heads = o.n_heads, kv_heads = o.n_kv_heads, ffn = o.d_ff, ctx = o.context_length,
            threads = o.threads, log_every = o.log_every, ckpt_every = o.checkpoint_every, seed = (int64_t)o.seed;
    double lr = o.lr;
    char d_steps[16], d_batch[16], d_lr[16], d_warmup[16], d_seed[24], d_arch[64], d_ckpt[16], d_log[16];
    snprintf(d_steps, sizeof d_steps, "%d", o.steps), snprintf(d_batch, sizeof d_batch, "%d", o.batch);
    snprintf(d_lr, sizeof d_lr, "%g", o.lr), snprintf(d_warmup, sizeof d_warmup, "%d", o.warmup);
    snprintf(d_seed, sizeof d_seed, "%llu", (unsigned long long)o.seed);
    snprintf(d_arch, sizeof d_arch, "%d %d %d %d %d %d", o.d_model, o.n_layers, o.n_heads, o.n_kv_heads, o.d_ff, o.context_length);
    snprintf(d_ckpt, sizeof d_ckpt, "%d", o.checkpoint_every), snprintf(d_log, sizeof d_log, "%d", o.log_every);
    const cli_option opts[] = {
        {"--task", CLI_STRING, &tasks, "LIST", .help = "comma-separated tasks, sampled uniformly", .def = "arith,max,mc,vars"},
        {"--out", CLI_STRING, &o.out_path, "FILE", .help = "GGUF to write at the end", .aliases = {"-o"}},
        {"--steps", CLI_INT, &steps, "N", .help = "optimisation steps", .def = d_steps, .min = 1, .max = 1e9},
        {"--stop-at", CLI_INT, &stop_at, "N", .help = "stop after step N, keeping the schedule of --steps (staged recipes)",
         .min = 0, .max = 1e9},
        {"--batch", CLI_INT, &batch, "B", .help = "examples per step", .def = d_batch, .min = 1, .max = 65536},
        {"--lr", CLI_FLOAT, &lr, "LR", .help = "peak learning rate", .def = d_lr, .min = 0, .max = 10},
        {"--warmup", CLI_INT, &warmup, "N", .help = "warm-up steps", .def = d_warmup, .min = 0, .max = 1e9},
        {"--seed", CLI_INT, &seed, "S", .help = "seed for initialisation and data", .def = d_seed, .min = 0,
         .max = (double)INT64_MAX},
        {"--difficulty", CLI_CUSTOM, lohi, "LO:HI", .help = "difficulties to train on, clipped to each task's range",
         .def = "1:6", .parse = parse_lohi},
        {"--d-model", CLI_INT, &d_model, "D", .help = "model width (architecture defaults: d-model layers heads kv-heads ffn ctx)",
         .def = d_arch, .min = 1, .max = 65536},
        {"--layers", CLI_INT, &layers, "L", .help = "blocks", .min = 1, .max = 1024},
        {"--heads", CLI_INT, &heads, "H", .help = "attention heads", .min = 1, .max = 1024},
        {"--kv-heads", CLI_INT, &kv_heads, "K", .help = "key/value heads (GQA)", .min = 1, .max = 1024},
        {"--ffn", CLI_INT, &ffn, "F", .help = "MLP width", .min = 1, .max = 1 << 20},
        {"--ctx", CLI_INT, &ctx, "C", .help = "context length", .min = 2, .max = 1 << 20},
        {"--checkpoint", CLI_STRING, &o.checkpoint_path, "FILE", .help = "write a checkpoint every --checkpoint-every steps and at the end"},
        {"--checkpoint-every", CLI_INT, &ckpt_every, "N", .help = "checkpoint interval; 0 = only at the end", .def = d_ckpt,
         .min = 0, .max = 1e9},
        {"--resume", CLI_STRING, &o.resume_path, "FILE", .help = "continue from a checkpoint (bit-identically)"},
        {"--threads", CLI_INT, &threads, "N", .help = "OpenBLAS threads; 0 = OpenBLAS's default", .def = "0", .min = 0, .max = 1024},
        {"--log-every", CLI_INT, &log_every, "N", .help = "print every N steps; 0 = the default", .def = d_log, .min = 0,
         .max = 1e9},
        {0}};
    const cli_spec spec = {
        "train", opts, NULL,
        .usage = "--task arith,max,... --out MODEL.gguf [options]\n"
                 "       probelab train eval --model MODEL.gguf [--task LIST] [--n N]   (accuracy table)",
        .summary = "Train a small Llama-architecture chain-of-thought model on built-in tasks (probelab tasks list).\n"
                   "Loss on the chain of thought and the answer only; AdamW, warm-up + cosine, gradient clipping.\n"
                   "Deterministic for a seed; --resume continues a checkpoint bit-identically."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    o.steps = (int)steps, o.stop_at = (int)stop_at, o.batch = (int)batch, o.warmup = (int)warmup, o.d_model = (int)d_model;
    o.n_layers = (int)layers, o.n_heads = (int)heads, o.n_kv_heads = (int)kv_heads, o.d_ff = (int)ffn;
    o.context_length = (int)ctx, o.threads = (int)threads, o.log_every = (int)log_every, o.checkpoint_every = (int)ckpt_every;
    o.seed = (uint64_t)seed, o.lr = (float)lr;
    long lo = (long)lohi[0], hi = (long)lohi[1];
    if (!o.out_path && !o.checkpoint_path) return cli_usage_error("give --out FILE (and/or --checkpoint FILE)");
    pl_task_mix mix;
    if (pl_task_mix_parse(&mix, tasks, (int)lo, (int)hi)) return cli_fail(), CLI_EXIT_USAGE;
    printf("tasks:");
    for (int k = 0; k < mix.n; k++) printf(" %s (difficulty %d..%d)", mix.names[k], mix.lo[k], mix.hi[k]);
    printf("\n");
    pl_train_source src = {pl_task_mix_next, &mix};
    if (pl_train_run(&o, &src, stdout)) return cli_fail();
    return 0;
}
