// `probelab tasks list|generate|check`: the built-in reasoning tasks and dataset files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "datasets/tasks.h"
#include "runtime/base/error.h"

static int tasks_list(int argc, char **argv) {
    bool json = false;
    const cli_option opts[] = {{"--json", CLI_FLAG, &json, .help = "print [{\"name\", \"description\", \"difficulty_min\", ...}]"},
                               {0}};
    const cli_spec spec = {"tasks list", opts, NULL,
                           .summary = "Print the built-in tasks, an example of each, and what the difficulty means."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    int n;
    const pl_task_info *tasks = pl_task_list(&n);
    if (json) {
        json_t *a = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", tasks[i].name, "description",
                                               tasks[i].description, "difficulty_min", tasks[i].difficulty_min,
                                               "difficulty_max", tasks[i].difficulty_max, "difficulty_help",
                                               tasks[i].difficulty_help));
        return cli_print_json(a);
    }
    for (int i = 0; i < n; i++)
        printf("%-6s %s\n       difficulty %d..%d: %s\n", tasks[i].name, tasks[i].description, tasks[i].difficulty_min,
               tasks[i].difficulty_max, tasks[i].difficulty_help);
    return 0;
}

// "LO:HI" (LO <= HI) into int64_t[2]; also a single "D" (= D:D) for --difficulty.
static int parse_difficulty(const char *value, void *out) {
    int64_t *lohi = out;
    long long lo, hi;
    char extra;
    int k = sscanf(value, "%lld:%lld%c", &lo, &hi, &extra);
    if (k == 1 && !strchr(value, ':')) {
        char *end;
        lo = hi = strtoll(value, &end, 10);
        if (*end) k = 0;
    }
    if ((k != 1 && k != 2) || (k == 1 && strchr(value, ':')) || lo < 0 || hi < lo || hi > 1000)
        return pl_fail("expected D or LO:HI with 0 <= LO <= HI <= 1000, e.g. 1:4");
    lohi[0] = lo, lohi[1] = hi;
    return 0;
}

static int tasks_generate(int argc, char **argv) {
    const char *task = NULL, *output = NULL;
    int64_t n = 100, seed = 0, range[2] = {-1, -1};
    bool json = false;
    const cli_option opts[] = {
        {"--task", CLI_STRING, &task, "NAME", .help = "arith, max, mc, vars or memqa (probelab tasks list)", .required = true},
        {"--n", CLI_INT, &n, "N", .help = "number of examples", .def = "100", .min = 0, .max = 100000000},
        {"--seed", CLI_INT, &seed, "S", .help = "random seed", .def = "0", .min = 0, .max = (double)INT64_MAX},
        {"--difficulty", CLI_CUSTOM, range, "D|LO:HI", .help = "one difficulty, or LO..HI cycled",
         .def = "the task's whole range", .aliases = {"--difficulty-range"}, .parse = parse_difficulty},
        {"--output", CLI_STRING, &output, "FILE", .help = "output file", .aliases = {"-o"}, .required = true},
        {"--json", CLI_FLAG, &json, .help = "print {\"path\", \"task\", \"n\", \"difficulty\": [lo, hi], \"seed\"}"},
        {0}};
    const cli_spec spec = {
        "tasks generate", opts, NULL,
        .summary = "Write N examples of a built-in task as JSONL. The output is byte-identical for the same task, N, seed\n"
                   "and difficulty. With a range, example i gets difficulty LO + i % (HI-LO+1). For memqa, a FILE ending in\n"
                   ".json gets LoCoMo's JSON layout (conversations with sessions and a qa list, N questions in all)."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    long lo = (long)range[0], hi = (long)range[1];
    const pl_task_info *info = pl_task_find(task);
    if (!info) return cli_usage_error("--task: unknown task '%s' (probelab tasks list shows the tasks)", task);
    if (lo < 0) lo = info->difficulty_min, hi = info->difficulty_max;
    size_t len = strlen(output);
    if (strcmp(task, "memqa") == 0 && len >= 5 && strcmp(output + len - 5, ".json") == 0) {
        if (pl_memqa_write_locomo(output, (int)n, (uint64_t)seed, (int)lo, (int)hi) != 0) return cli_fail();
        if (json) return cli_print_json(json_pack("{s:s, s:s, s:I, s:[i,i], s:I, s:s}", "path", output, "task", task, "n",
                                                  (json_int_t)n, "difficulty", (int)lo, (int)hi, "seed", (json_int_t)seed,
                                                  "layout", "locomo"));
        printf("wrote %lld memqa questions (LoCoMo layout) to %s\n", (long long)n, output);
        return 0;
    }
    pl_dataset d;
    if (pl_task_generate(&d, task, (int)n, (uint64_t)seed, (int)lo, (int)hi) != 0) return cli_fail();
    int rc = pl_dataset_write_jsonl(&d, output);
    if (rc != 0) rc = cli_fail();
    else if (json)
        rc = cli_print_json(json_pack("{s:s, s:s, s:i, s:[i,i], s:I, s:s}", "path", output, "task", task, "n", d.n,
                                      "difficulty", (int)lo, (int)hi, "seed", (json_int_t)seed, "layout", "jsonl"));
    else printf("wrote %d %s examples (difficulty %ld..%ld, seed %lld) to %s\n", d.n, task, lo, hi, (long long)seed, output);
    pl_dataset_free(&d);
    return rc;
}

typedef struct {
    const char *task;
    int difficulty, n, checked, sound;
} count_row;

static int parse_format(const char *value, void *out) { return pl_format_parse(value, out); }

static int tasks_check(int argc, char **argv) {
    const char *path = NULL;
    bool skip_bad = false, json = false;
    pl_format format = PL_FORMAT_AUTO;
    const cli_option opts[] = {
        {"--skip-bad", CLI_FLAG, &skip_bad, .help = "skip (and count) lines that do not parse instead of failing"},
        {"--format", CLI_CUSTOM, &format, "FORMAT", .help = "auto | probelab | mc | gsm8k | locomo", .def = "auto",
         .parse = parse_format},
        {"--json", CLI_FLAG, &json, .help = "print {\"path\", \"n\", \"n_skipped\", \"bad_refs\", \"rows\": [...]}"},
        {0}};
    const cli_positional pos[] = {{"FILE", &path, "the dataset file", true}, {0}};
    const cli_spec spec = {
        "tasks check", opts, pos,
        .summary = "Load a dataset file, print the number of examples per task and difficulty, and check every reference\n"
                   "chain of thought of the built-in tasks with the step checker (ref_sound must equal ref_checked).\n"
                   "A malformed line stops the load with FILE:LINE unless --skip-bad is given; skipped lines are counted.\n"
                   "Exit status: 0 all good, 1 load failed or a reference CoT is not sound."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_dataset d;
    int n_skipped = 0;
    if (pl_dataset_load_as(&d, path, format, skip_bad, &n_skipped) != 0) return cli_fail();

    count_row *rows = calloc((size_t)d.n + 1, sizeof *rows);
    int n_rows = 0, bad_refs = 0;
    for (int i = 0; i < d.n; i++) {
        const pl_example *e = &d.items[i];
        int r = 0;
        while (r < n_rows && !(rows[r].difficulty == e->difficulty && strcmp(rows[r].task, e->task) == 0)) r++;
        if (r == n_rows) rows[n_rows++] = (count_row){.task = e->task, .difficulty = e->difficulty};
        rows[r].n++;
        char *full = pl_example_full_text(e);  // what a correct model continues the prompt with
        pl_cot_check c;
        pl_check_cot(&c, e, full + strlen(e->prompt));
        free(full);
        if (c.steps_checked) {
            rows[r].checked++;
            if (pl_cot_classify(&c) == PL_COT_SOUND) rows[r].sound++;
            else if (bad_refs++ < 5)
                cli_error("%s: example %s: reference CoT is %s", path, e->id, pl_cot_class_name(pl_cot_classify(&c)));
        }
    }
    if (json) {
        json_t *a = json_array();
        for (int r = 0; r < n_rows; r++)
            json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:i, s:i}", "task", rows[r].task, "difficulty",
                                               rows[r].difficulty, "n", rows[r].n, "ref_checked", rows[r].checked,
                                               "ref_sound", rows[r].sound));
        if (cli_print_json(json_pack("{s:s, s:i, s:i, s:i, s:o}", "path", path, "n", d.n, "n_skipped", n_skipped, "bad_refs",
                                     bad_refs, "rows", a)) != 0)
            bad_refs = bad_refs ? bad_refs : 1;
    } else {
        printf("%-10s %10s %8s %12s %10s\n", "task", "difficulty", "n", "ref_checked", "ref_sound");
        for (int r = 0; r < n_rows; r++)
            printf("%-10s %10d %8d %12d %10d\n", rows[r].task, rows[r].difficulty, rows[r].n, rows[r].checked, rows[r].sound);
        printf("%s: %d examples, %d skipped, %d reference CoTs not sound\n", path, d.n, n_skipped, bad_refs);
    }
    free(rows);
    pl_dataset_free(&d);
    return bad_refs ? 1 : 0;
}

int cmd_tasks(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"list", tasks_list, "the built-in tasks and what their difficulty means"},
        {"generate", tasks_generate, "write N examples of a built-in task as JSONL (or LoCoMo JSON)"},
        {"check", tasks_check, "load a dataset file, count it, check every reference chain of thought"},
        {0}};
    return cli_dispatch("tasks", "Built-in reasoning tasks and dataset files (docs/datasets.md).", subs, argc, argv);
}
