// `probelab tasks list|generate|check`: the built-in reasoning tasks and dataset files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "datasets/tasks.h"
#include "runtime/base/error.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: probelab tasks list\n"
            "       probelab tasks generate --task NAME --n N --seed S [--difficulty D | --difficulty-range LO:HI] -o FILE\n"
            "       probelab tasks check FILE [--skip-bad] [--format auto|probelab|mc|gsm8k|locomo]\n"
            "Run `probelab tasks SUBCOMMAND --help` for details. Formats: docs/datasets.md.\n");
}

static int tasks_list(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: probelab tasks list\nPrint the built-in tasks, an example of each, and what the difficulty means.\n");
        return 0;
    }
    int n;
    const pl_task_info *tasks = pl_task_list(&n);
    for (int i = 0; i < n; i++)
        printf("%-6s %s\n       difficulty %d..%d: %s\n", tasks[i].name, tasks[i].description, tasks[i].difficulty_min,
               tasks[i].difficulty_max, tasks[i].difficulty_help);
    return 0;
}

static void generate_help(void) {
    printf("usage: probelab tasks generate --task NAME --n N --seed S [--difficulty D | --difficulty-range LO:HI] -o FILE\n"
           "Write N examples of a built-in task (probelab tasks list) as JSONL. The output is byte-identical for\n"
           "the same task, N, seed and difficulty. Without a difficulty, the task's whole range is used; with a\n"
           "range, example i gets difficulty LO + i %% (HI-LO+1).\n"
           "For memqa, a FILE ending in .json gets LoCoMo's JSON layout (conversations with sessions and a qa\n"
           "list, N questions in all); any other name gets JSONL examples.\n"
           "  --task NAME               arith, max, mc, vars, memqa\n"
           "  --n N                     number of examples (default 100)\n"
           "  --seed S                  random seed (default 0)\n"
           "  --difficulty D            one difficulty\n"
           "  --difficulty-range LO:HI  difficulties LO..HI, cycled\n"
           "  -o, --output FILE         output file (required)\n");
}

static int tasks_generate(int argc, char **argv) {
    const char *task = NULL, *output = NULL, *value;
    long n = 100, seed = 0, lo = -1, hi = -1;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return generate_help(), 0;
        if (cli_opt(argc, argv, &i, "--task", &value)) {
            if (!value) return pl_fail("--task needs a value"), pl_print_error(), 2;
            task = value;
        } else if (cli_opt(argc, argv, &i, "--n", &value)) {
            if (cli_parse_int("--n", value, &n) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &value)) {
            if (cli_parse_int("--seed", value, &seed) != 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--difficulty-range", &value)) {
            char extra;
            if (!value || sscanf(value, "%ld:%ld%c", &lo, &hi, &extra) != 2)
                return pl_fail("--difficulty-range: expected LO:HI, e.g. 1:4"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--difficulty", &value)) {
            if (cli_parse_int("--difficulty", value, &lo) != 0) return pl_print_error(), 2;
            hi = lo;
        } else if (cli_opt(argc, argv, &i, "-o", &value) || cli_opt(argc, argv, &i, "--output", &value)) {
            if (!value) return pl_fail("-o needs a file name"), pl_print_error(), 2;
            output = value;
        } else {
            fprintf(stderr, "probelab tasks generate: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!task || !output) {
        fprintf(stderr, "probelab tasks generate: --task and -o are required\n");
        return 2;
    }
    const pl_task_info *info = pl_task_find(task);
    if (!info) return pl_fail("unknown task '%s' (probelab tasks list shows the tasks)", task), pl_print_error(), 2;
    if (lo < 0) lo = info->difficulty_min, hi = info->difficulty_max;
    if (n < 0 || n > 100000000) return pl_fail("--n: %ld is out of range", n), pl_print_error(), 2;
    size_t len = strlen(output);
    if (strcmp(task, "memqa") == 0 && len >= 5 && strcmp(output + len - 5, ".json") == 0) {
        if (pl_memqa_write_locomo(output, (int)n, (uint64_t)seed, (int)lo, (int)hi) != 0) return pl_print_error(), 1;
        printf("wrote %ld memqa questions (LoCoMo layout) to %s\n", n, output);
        return 0;
    }
    pl_dataset d;
    if (pl_task_generate(&d, task, (int)n, (uint64_t)seed, (int)lo, (int)hi) != 0) return pl_print_error(), 1;
    int rc = pl_dataset_write_jsonl(&d, output);
    if (rc == 0) printf("wrote %d %s examples (difficulty %ld..%ld, seed %ld) to %s\n", d.n, task, lo, hi, seed, output);
    else pl_print_error();
    pl_dataset_free(&d);
    return rc == 0 ? 0 : 1;
}

static void check_help(void) {
    printf("usage: probelab tasks check FILE [--skip-bad] [--format auto|probelab|mc|gsm8k|locomo]\n"
           "Load a dataset file, print the number of examples per task and difficulty, and check every reference\n"
           "chain of thought of the built-in tasks with the step checker (ref_sound must equal ref_checked).\n"
           "A malformed line stops the load with FILE:LINE unless --skip-bad is given; skipped lines are counted.\n"
           "Exit status: 0 all good, 1 load failed or a reference CoT is not sound.\n");
}

typedef struct {
    const char *task;
    int difficulty, n, checked, sound;
} count_row;

static int tasks_check(int argc, char **argv) {
    const char *path = NULL, *value;
    bool skip_bad = false;
    pl_format format = PL_FORMAT_AUTO;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return check_help(), 0;
        if (strcmp(argv[i], "--skip-bad") == 0) skip_bad = true;
        else if (cli_opt(argc, argv, &i, "--format", &value)) {
            if (pl_format_parse(value, &format) != 0) return pl_print_error(), 2;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "probelab tasks check: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else path = argv[i];
    }
    if (!path) return check_help(), 2;
    pl_dataset d;
    int n_skipped = 0;
    if (pl_dataset_load_as(&d, path, format, skip_bad, &n_skipped) != 0) return pl_print_error(), 1;

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
                fprintf(stderr, "probelab: %s: example %s: reference CoT is %s\n", path, e->id,
                        pl_cot_class_name(pl_cot_classify(&c)));
        }
    }
    printf("%-10s %10s %8s %12s %10s\n", "task", "difficulty", "n", "ref_checked", "ref_sound");
    for (int r = 0; r < n_rows; r++)
        printf("%-10s %10d %8d %12d %10d\n", rows[r].task, rows[r].difficulty, rows[r].n, rows[r].checked, rows[r].sound);
    printf("%s: %d examples, %d skipped, %d reference CoTs not sound\n", path, d.n, n_skipped, bad_refs);
    free(rows);
    pl_dataset_free(&d);
    return bad_refs ? 1 : 0;
}

int cmd_tasks(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "list") == 0) return tasks_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "generate") == 0) return tasks_generate(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0) return tasks_check(argc - 1, argv + 1);
    fprintf(stderr, "probelab tasks: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
