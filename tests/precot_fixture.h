// Test fixture for the probe / pre-CoT / lens tests: a tiny chain-of-thought model trained for a
// few seconds on the built-in "max" task (so it writes "|..|A:d" answers, some wrong), and a store
// with a few dozen traced runs (resid_post of every block and hook_embed at every position, f32).
// Header-only so that each test_*.c stays one ctest executable.
#ifndef PL_PRECOT_FIXTURE_H
#define PL_PRECOT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/store/store.h"
#include "runtime/trace/trace.h"
#include "runtime/train/train.h"

typedef struct {
    char dir[512];
    char model[600], model2[600], dataset[600], store[600];
} precot_fixture;

static int fixture_check(pl_label *labels, int max, const pl_example *e, const char *generated, void *user) {
    (void)user;
    pl_cot_check c;
    if (pl_check_cot(&c, e, generated)) return -1;
    int n = 0;
    if (c.has_answer && n < max) {
        memset(&labels[n], 0, sizeof labels[n]);
        snprintf(labels[n].key, sizeof labels[n].key, "answer");
        labels[n].is_text = true;
        snprintf(labels[n].text, sizeof labels[n].text, "%s", c.answer);
        n++;
    }
    if (n < max) {
        memset(&labels[n], 0, sizeof labels[n]);
        snprintf(labels[n].key, sizeof labels[n].key, "gold");
        labels[n].is_text = true;
        snprintf(labels[n].text, sizeof labels[n].text, "%s", e->answer);
        n++;
    }
    if (n < max) {
        memset(&labels[n], 0, sizeof labels[n]);
        snprintf(labels[n].key, sizeof labels[n].key, "correct");
        labels[n].num = c.correct;
        n++;
    }
    if (n < max) {  // constant over the fixture's runs: the single-class case
        memset(&labels[n], 0, sizeof labels[n]);
        snprintf(labels[n].key, sizeof labels[n].key, "task_name");
        labels[n].is_text = true;
        snprintf(labels[n].text, sizeof labels[n].text, "%s", e->task);
        n++;
    }
    return n;
}

static int fixture_train_model(const char *path, uint64_t seed, int steps) {
    pl_train_options o = pl_train_defaults();
    o.d_model = 32, o.n_layers = 2, o.n_heads = 2, o.n_kv_heads = 1, o.d_ff = 64, o.context_length = 64;
    o.steps = steps, o.batch = 16, o.warmup = 10, o.lr = 1e-2f, o.seed = seed, o.log_every = 0;
    o.checkpoint_every = 0, o.threads = 1, o.out_path = path;
    pl_task_mix mix;
    if (pl_task_mix_parse(&mix, "max", 1, 3)) return -1;
    pl_train_source src = {pl_task_mix_next, &mix};
    FILE *devnull = fopen("/dev/null", "w");
    int rc = pl_train_run(&o, &src, devnull);
    if (devnull) fclose(devnull);
    return rc;
}

// Build everything under a fresh temporary directory. n_examples runs of task max.
static int fixture_build(precot_fixture *f, int n_examples) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir());
    snprintf(f->model, sizeof f->model, "%s/tiny.gguf", f->dir);
    snprintf(f->model2, sizeof f->model2, "%s/tiny2.gguf", f->dir);
    snprintf(f->dataset, sizeof f->dataset, "%s/max.jsonl", f->dir);
    snprintf(f->store, sizeof f->store, "%s/s.db", f->dir);
    if (fixture_train_model(f->model, 1, 250)) return -1;
    if (fixture_train_model(f->model2, 2, 1)) return -1;
    pl_dataset d;
    if (pl_task_generate(&d, "max", n_examples, 11, 1, 3)) return -1;
    if (pl_dataset_write_jsonl(&d, f->dataset)) return -1;
    pl_model *m = NULL;
    pl_store *s = NULL;
    int rc = -1;
    if (pl_model_open(&m, f->model) || pl_store_open(&s, f->store, PL_STORE_WRITE)) goto done;
    pl_trace_opts o = pl_trace_defaults();
    o.record = "blocks.*.hook_resid_post,hook_embed";
    o.positions = PL_POS_ALL;
    o.dtype = PL_DTYPE_F32;
    o.sampling.max_new = 24;
    o.progress = false;
    o.check = fixture_check;
    o.dataset_path = f->dataset;
    pl_trace_stats st;
    if (pl_trace_dataset(&st, s, m, &d, &o)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "fixture: %s\n", pl_errmsg());
    pl_store_close(s);
    pl_model_free(m);
    pl_dataset_free(&d);
    return rc;
}

#endif
