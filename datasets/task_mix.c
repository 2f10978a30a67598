// The training source over the built-in tasks (pl_task_mix): the one place that turns a task list
// into the example stream the trainer (`probelab train`, the tests' fixtures) draws from.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/base/rng.h"

int pl_task_mix_parse(pl_task_mix *mix, const char *list, int lo, int hi) {
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", list ? list : "") >= (int)sizeof buf) return pl_fail("task list too long: %s", list);
    mix->n = 0;
    for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        const pl_task_info *info = pl_task_find(name);
        if (!info) return pl_fail("unknown task '%s' (probelab tasks list shows the tasks)", name);
        if (mix->n == PL_TASK_MIX_MAX) return pl_fail("at most %d tasks in a training mix", PL_TASK_MIX_MAX);
        int tlo = lo > info->difficulty_min ? lo : info->difficulty_min;
        int thi = hi < info->difficulty_max ? hi : info->difficulty_max;
        if (tlo > thi)
            return pl_fail("difficulty %d:%d does not overlap %s's range %d:%d", lo, hi, name, info->difficulty_min,
                           info->difficulty_max);
        mix->names[mix->n] = info->name;  // the table's string: outlives buf
        mix->lo[mix->n] = tlo;
        mix->hi[mix->n] = thi;
        mix->n++;
    }
    return mix->n ? 0 : pl_fail("no task given");
}

int pl_task_mix_next(void *user, uint64_t seed, uint64_t index, pl_train_text *out) {
    const pl_task_mix *mix = user;
    uint64_t h = pl_mix64(seed + PL_RNG_GOLDEN * (index + 1));
    int k = (int)(h % (uint64_t)mix->n);
    int span = mix->hi[k] - mix->lo[k] + 1;
    int difficulty = mix->lo[k] + (int)((h >> 20) % (uint64_t)span);
    pl_dataset ds;
    if (pl_task_generate(&ds, mix->names[k], 1, pl_mix64(h), difficulty, difficulty)) return -1;
    out->text = pl_example_full_text(&ds.items[0]);
    out->prompt_len = strlen(ds.items[0].prompt);
    pl_dataset_free(&ds);
    return out->text ? 0 : pl_fail("train: out of memory");
}
