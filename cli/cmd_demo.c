// probelab demo: the whole pipeline on the bundled model and built-in tasks. Each step is an
// ordinary probelab command, printed before it runs, so the demo doubles as a tutorial: copy any
// line to redo that step by hand.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"

#ifndef PL_SHARE_DIR
#define PL_SHARE_DIR "share"
#endif

typedef int (*command_fn)(int, char **);

// Print "$ probelab NAME args..." and run the command in-process. Returns its exit status.
static int step(command_fn fn, const char *name, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)name;
    va_list ap;
    va_start(ap, name);
    for (const char *a; argc < 63 && (a = va_arg(ap, const char *));) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    printf("\n$ probelab");
    for (int i = 0; i < argc; i++) printf(strchr(argv[i], ' ') || strchr(argv[i], '*') ? " '%s'" : " %s", argv[i]);
    printf("\n");
    fflush(stdout);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    if (rc != 0) fprintf(stderr, "probelab: demo: step '%s' failed (exit %d)\n", name, rc);
    return rc;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "demo-out", *model = NULL;
    int64_t n = 400;
    const cli_option opts[] = {
        {"--out", CLI_STRING, &out, "DIR", .help = "output folder", .def = "demo-out"},
        {"--model", CLI_STRING, &model, "MODEL", .help = "model to use", .def = "the bundled share/models/probelab-cot.gguf"},
        {"--n", CLI_INT, &n, "N", .help = "examples per task (the pre-CoT probes need a few hundred)", .def = "400", .min = 10,
         .max = 100000},
        {0}};
    const cli_spec spec = {
        "demo", opts, NULL,
        .summary = "Runs the whole pipeline on the bundled chain-of-thought model and the built-in tasks: generate tasks,\n"
                   "trace the model (CoT, answers, residual stream and attention) into a store, report accuracy, run the\n"
                   "pre-CoT probe analysis with steering, the logit lens, and write figures. Every step is printed as the\n"
                   "probelab command it runs."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    char default_model[1024];
    if (!model) {
        snprintf(default_model, sizeof default_model, "%s/models/probelab-cot.gguf", PL_SHARE_DIR);
        if (!file_exists(default_model)) snprintf(default_model, sizeof default_model, "share/models/probelab-cot.gguf");
        model = default_model;
    }
    if (!file_exists(model)) return cli_error("%s: the demo model is missing", model);
    if (mkdir(out, 0755) != 0 && errno != EEXIST) return cli_error("%s: cannot create the output folder", out);
    char store[1100], fig[1100], nbuf[32];
    snprintf(store, sizeof store, "%s/demo.db", out);
    snprintf(nbuf, sizeof nbuf, "%lld", (long long)n);
    double t0 = pl_now_sec();
    printf("probelab demo: model %s, %lld examples per task, output in %s/\n", model, (long long)n, out);

    // 1. The model.
    if (step(cmd_info, "info", model, NULL)) return 1;

    // 2. Tasks with known answers and checkable steps. Difficulties past the training range
    //    (arith/max 7-8) and the weak vars task give failures to predict.
    static const struct { const char *task, *range; } tasks[] = {
        {"arith", "1:8"}, {"max", "1:8"}, {"mc", "1:6"}, {"vars", "1:5"}};
    char data[4][1100];
    for (int t = 0; t < 4; t++) {
        snprintf(data[t], sizeof data[t], "%s/%s.jsonl", out, tasks[t].task);
        if (step(cmd_tasks, "tasks", "generate", "--task", tasks[t].task, "--n", nbuf, "--seed", "1",
                 "--difficulty", tasks[t].range, "-o", data[t], NULL))
            return 1;
    }

    // 3. Trace: generate CoT + answer for every example, check it, record the residual stream
    //    at every layer and every attention pattern. Rerunning resumes.
    for (int t = 0; t < 4; t++)
        if (step(cmd_trace, "trace", model, "--dataset", data[t], "--store", store, "--hooks",
                 "hook_embed,blocks.*.hook_resid_post,blocks.*.attn.hook_pattern", "--no-progress", NULL))
            return 1;

    // 4. Accuracy and CoT validity by task and difficulty.
    if (step(cmd_runs, "runs", store, "--summary", NULL)) return 1;

    // 5. Pre-CoT analysis: probes on the residual stream at the last prompt token, by layer, for
    //    the model's own answer and the gold answer, beside input-only and shuffled-label controls
    //    over repeated splits (2 here, 5 by default); steering along the probe direction vs
    //    isotropic, covariance-matched and shuffled-label controls; the CoT taxonomy of steered runs.
    if (step(cmd_precot, "precot", store, "--n-steer", "10", "--alphas=-1,-0.5,-0.25,0,0.25,0.5,1", "--folds", "3",
             "--bootstrap", "200", "--splits", "2", NULL))
        return 1;

    // 6. A failure probe: can the residual stream before the CoT tell whether the answer will be
    //    right? Then score every token of a few runs with it, for the viewer's token view.
    if (step(cmd_probe, "probe", "train", store, "--hooks", "blocks.*.hook_resid_post", "--positions", "last-prompt", "--label",
             "correct", "--name", "demo-", "--folds", "3", "--bootstrap", "200", "--splits", "2", NULL))
        return 1;
    const char *probe = "demo-correct@last-prompt/blocks.3.hook_resid_post";
    if (step(cmd_probe, "probe", "apply", store, probe, "--runs", "1,2,3,4,5,6,7,8", NULL)) return 1;

    // 7. Logit lens of one run: where in depth the answer appears.
    if (step(cmd_lens, "lens", store, "--run", "1", NULL)) return 1;

    // 8. Figures, drawn by the same code as the viewer.
    static const char *const analyses[] = {"precot.auroc_by_layer", "precot.accuracy_by_layer",
                                           "precot.selectivity_by_layer", "precot.flip_rate", "precot.taxonomy", "lens.1"};
    for (size_t i = 0; i < sizeof analyses / sizeof analyses[0]; i++) {
        snprintf(fig, sizeof fig, "%s/%s.png", out, analyses[i]);
        if (step(cmd_plot, "plot", store, "--figure", analyses[i], "-o", fig, NULL)) return 1;
    }
    snprintf(fig, sizeof fig, "%s/attention_run1.png", out);
    if (step(cmd_plot, "plot", store, "--figure", "attention", "--run", "1", "--layer", "0", "--head", "0", "-o", fig, NULL))
        return 1;
    snprintf(fig, sizeof fig, "%s/attention_grid_run1.png", out);
    if (step(cmd_plot, "plot", store, "--figure", "attention-grid", "--run", "1", "-o", fig, NULL)) return 1;
    char score[256];
    snprintf(score, sizeof score, "probe:%s", probe);
    snprintf(fig, sizeof fig, "%s/tokens_run1_probe.png", out);
    if (step(cmd_plot, "plot", store, "--figure", "tokens", "--run", "1", "--score", score, "--size", "1280x240", "-o", fig,
             NULL))
        return 1;
    snprintf(fig, sizeof fig, "%s/tokens_run1_entropy.png", out);
    if (step(cmd_plot, "plot", store, "--figure", "tokens", "--run", "1", "--score", "entropy", "--size", "1280x240", "-o",
             fig, NULL))
        return 1;

    printf("\nprobelab demo: done in %.0f s. Store %s (sqlite3-readable, see docs/store.md), figures in %s/.\n"
           "Browse it: probelab view %s\n",
           pl_now_sec() - t0, store, out, store);
    return 0;
}
