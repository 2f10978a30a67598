// A small real store for the corruption tests and the store fuzzer: the bundled model
// (share/models/probelab-cot.gguf) traced over a few arith examples, recording hook_embed, every
// hook_resid_post and every attention pattern (f32 and f16 chunks), plus a probe with outputs and an
// analysis with a matrix, so that every read path has something to read.
// Header-only so that each test_*.c stays one ctest executable.
#ifndef PL_STORE_FIXTURE_H
#define PL_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/store/store.h"
#include "runtime/trace/trace.h"

// Trace n_examples (>= 2) examples with the model at model_path into a new store at store_path (its
// dataset written next to it) in f32, then the first example again in f16: n_examples + 1 runs.
// Returns 0, or -1 with pl_errmsg().
static int store_fixture_build(const char *model_path, const char *store_path, int n_examples) {
    char dataset_path[1100];
    snprintf(dataset_path, sizeof dataset_path, "%s.jsonl", store_path);
    pl_dataset d = {0};
    pl_model *m = NULL;
    pl_store *s = NULL;
    int rc = -1;
    if (pl_task_generate(&d, "arith", n_examples, 5, 1, 2) || pl_dataset_write_jsonl(&d, dataset_path)) goto done;
    if (pl_model_open(&m, model_path) || pl_store_open(&s, store_path, PL_STORE_WRITE)) goto done;
    pl_trace_opts o = pl_trace_defaults();
    o.record = "hook_embed,blocks.*.hook_resid_post,blocks.*.attn.hook_pattern";
    o.positions = PL_POS_ALL;
    o.dtype = PL_DTYPE_F32;
    o.sampling.max_new = 12;
    o.progress = false;
    o.check = pl_trace_check_cot;
    o.dataset_path = dataset_path;
    pl_trace_stats st;
    if (pl_trace_dataset(&st, s, m, &d, &o)) goto done;
    o.dtype = PL_DTYPE_F16;  // one run in f16: both conversions are read
    o.limit = 1;
    if (pl_trace_dataset(&st, s, m, &d, &o)) goto done;
    float w[129], value[4] = {0.25f, 0.5f, 0.75f, 1.0f};
    int32_t pos[4] = {-1, 0, 1, 2};
    for (int i = 0; i < 129; i++) w[i] = (float)i / 129;
    int64_t probe_id;
    pl_analysis_row rows[3] = {{"layer 0", 0, 0.5, 0.4, 0.6}, {"layer 0", 1, 0.7, 0.6, 0.8}, {"baseline", 0, 0.5, NAN, NAN}};
    float matrix[6] = {1, 2, 3, 4, 5, 6};
    if (pl_store_put_probe(s, "fixture", "logreg", "blocks.1.hook_resid_post", "all", "{}", w, 129, &probe_id) ||
        pl_store_put_probe_outputs(s, probe_id, 1, pos, value, 4) ||
        pl_store_put_analysis(s, "fixture_analysis", "table", "{}", rows, 3) ||
        pl_store_put_analysis_matrix(s, "fixture_analysis", "confusion", matrix, 2, 3))
        goto done;
    rc = 0;
done:
    pl_store_close(s);
    pl_model_free(m);
    pl_dataset_free(&d);
    return rc;
}

#endif
