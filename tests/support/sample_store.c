// A synthetic trace store for testing figures and the viewer without a model: it goes through the
// same writer path as `probelab trace` (the recorder fed by hook events), so what the viewer reads
// is laid out exactly like a real trace.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/base/error.h"
#include "runtime/hooks.h"
#include "runtime/store/recorder.h"
#include "runtime/store/store.h"
#include "tests/support/sample_store.h"

enum { SAMPLE_LAYERS = 2, SAMPLE_HEADS = 4 };

static uint64_t rng_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

typedef struct {
    pl_token_row *rows;
    int n, cap, n_prompt;
    char text[4096];  // the generated part
} sample_tokens;

static int push_token(sample_tokens *t, const char *piece, pl_segment seg) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        pl_token_row *grown = realloc(t->rows, sizeof *grown * (size_t)cap);
        if (!grown) return pl_fail("out of memory building sample tokens");
        t->rows = grown;
        t->cap = cap;
    }
    pl_token_row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    r->id = 3 + t->n % 250;
    snprintf(r->piece, sizeof r->piece, "%s", piece);
    r->segment = seg;
    // Deterministic, smooth-ish values: confident prompt copies, less sure reasoning steps.
    double u = 0.5 + 0.5 * sin(0.7 * t->n + (seg == PL_SEG_COT ? 1.3 : 0.2));
    r->logprob = t->n == 0 ? NAN : (float)(-(0.05 + (seg == PL_SEG_PROMPT ? 0.6 : 2.4) * u));
    r->entropy = t->n == 0 ? NAN : (float)(0.1 + (seg == PL_SEG_PROMPT ? 0.8 : 2.0) * u);
    if (seg != PL_SEG_PROMPT && strlen(t->text) + strlen(piece) + 1 < sizeof t->text) strcat(t->text, piece);
    t->n++;
    return 0;
}

// An arithmetic or logic example as tokens: prompt, chain of thought, answer. long_tokens > 0
// repeats reasoning steps until the run has that many tokens.
static int make_example(sample_tokens *t, uint64_t *rng, int logic, int long_tokens, char *prompt, size_t prompt_size,
                        char *answer, size_t answer_size, int *correct) {
    char buf[64];
    int a = 2 + (int)(rng_next(rng) % 40), b = 2 + (int)(rng_next(rng) % 9), c = 2 + (int)(rng_next(rng) % 9);
    int result = a + b * c;
    *correct = rng_next(rng) % 4 != 0;
    if (logic) {
        snprintf(prompt, prompt_size, "If all blips are zorks and Tom is a blip, is Tom a zork? (case %d)", a);
        const char *words[] = {"If", " all", " blips", " are", " zorks", " and", " Tom", " is", " a", " blip", ",",
                               " is", " Tom", " a", " zork", "?", "\n"};
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (push_token(t, words[i], PL_SEG_PROMPT)) return -1;
        t->n_prompt = t->n;
        const char *cot[] = {" Tom", " is", " a", " blip", ".", " All", " blips", " are", " zorks", ".", "\n"};
        for (size_t i = 0; i < sizeof cot / sizeof cot[0]; i++)
            if (push_token(t, cot[i], PL_SEG_COT)) return -1;
        snprintf(answer, answer_size, "%s", *correct ? "yes" : "no");
    } else {
        snprintf(prompt, prompt_size, "Q: %d + %d * %d = ?", a, b, c);
        const char *p0[] = {"Q", ":"};
        for (int i = 0; i < 2; i++)
            if (push_token(t, p0[i], PL_SEG_PROMPT)) return -1;
        snprintf(buf, sizeof buf, " %d", a);
        if (push_token(t, buf, PL_SEG_PROMPT) || push_token(t, " +", PL_SEG_PROMPT)) return -1;
        snprintf(buf, sizeof buf, " %d", b);
        if (push_token(t, buf, PL_SEG_PROMPT) || push_token(t, " *", PL_SEG_PROMPT)) return -1;
        snprintf(buf, sizeof buf, " %d", c);
        if (push_token(t, buf, PL_SEG_PROMPT) || push_token(t, " =", PL_SEG_PROMPT) || push_token(t, " ?", PL_SEG_PROMPT) ||
            push_token(t, "\n", PL_SEG_PROMPT))
            return -1;
        t->n_prompt = t->n;
        snprintf(buf, sizeof buf, " %d", b);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, " *", PL_SEG_COT)) return -1;
        snprintf(buf, sizeof buf, " %d", c);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, " =", PL_SEG_COT)) return -1;
        snprintf(buf, sizeof buf, " %d", b * c);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, ",", PL_SEG_COT)) return -1;
        snprintf(buf, sizeof buf, " %d", a);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, " +", PL_SEG_COT)) return -1;
        snprintf(buf, sizeof buf, " %d", b * c);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, " =", PL_SEG_COT)) return -1;
        snprintf(buf, sizeof buf, " %d", result);
        if (push_token(t, buf, PL_SEG_COT) || push_token(t, "\n", PL_SEG_COT)) return -1;
        snprintf(answer, answer_size, "%d", *correct ? result : result + 1);
    }
    // Long runs: keep "checking" until the length is reached (leaving room for the answer).
    for (int step = 0; t->n < long_tokens - 3; step++) {
        snprintf(buf, sizeof buf, step % 12 == 11 ? "\n" : " step%d", step);
        if (push_token(t, buf, PL_SEG_COT)) return -1;
    }
    if (push_token(t, "A", PL_SEG_ANSWER) || push_token(t, ":", PL_SEG_ANSWER)) return -1;
    char piece[80];
    snprintf(piece, sizeof piece, " %.40s", answer);
    return push_token(t, piece, PL_SEG_ANSWER);
}

// Fire attention-pattern hook events for every layer: w(q, k) ∝ exp(-|q - k - h| / (1 + l)) over k <= q.
// Long runs go one query row per event (as decoding does) to keep the buffers small.
static void fire_attention(pl_hooks *hooks, int n_tokens, float *scratch) {
    for (int l = 0; l < SAMPLE_LAYERS; l++) {
        for (int q = 0; q < n_tokens; q++) {
            for (int h = 0; h < SAMPLE_HEADS; h++) {
                float *row = scratch + (size_t)h * (size_t)(q + 1);
                double sum = 0;
                for (int k = 0; k <= q; k++) sum += row[k] = (float)exp(-fabs((double)(q - k - h)) / (1.0 + l));
                for (int k = 0; k <= q; k++) row[k] = (float)(row[k] / sum);
            }
            pl_hook_event ev = {.kind = PL_HOOK_PATTERN, .layer = l, .pos0 = q, .n_pos = 1, .n_ctx = q + 1, .ndim = 3,
                                .shape = {SAMPLE_HEADS, 1, q + 1}, .row_size = 0, .data = scratch};
            pl_hooks_fire(hooks, &ev);
        }
    }
}

static int put_sample_analyses(pl_store *s) {
    enum { MAX_ROWS = 64 };
    pl_analysis_row rows[MAX_ROWS];
    int n = 0;
    // Probe accuracy by layer with 95% CIs, two hooks.
    for (int sidx = 0; sidx < 2; sidx++)
        for (int l = 0; l < 8; l++) {
            double acc = 0.5 + (sidx ? 0.3 : 0.42) / (1 + exp(-(l - 3.0))), w = 0.06 - 0.004 * l;
            rows[n++] = (pl_analysis_row){sidx ? "attn_out" : "resid_post", l, acc, acc - w, acc + w};
        }
    if (pl_store_put_analysis(s, "probe.accuracy_by_layer", "by_layer", "{\"metric\":\"accuracy\"}", rows, n)) return -1;
    n = 0;
    for (int l = 0; l < 8; l++) {
        double auroc = 0.5 + 0.45 / (1 + exp(-(l - 2.5)));
        rows[n++] = (pl_analysis_row){"last-prompt", l, auroc, auroc - 0.05, fmin(1, auroc + 0.05)};
    }
    if (pl_store_put_analysis(s, "precot.auroc_by_layer", "by_layer",
                              "{\"metric\":\"auroc\",\"x_label\":\"layer\",\"y_label\":\"AUROC\",\"hline\":0.5}", rows, n))
        return -1;
    // Small multiples: one panel per task, the hook_embed baseline dashed in its probe's colour.
    n = 0;
    for (int task = 0; task < 2; task++)
        for (int l = 0; l < 8; l++) {
            double auroc = task ? 0.55 + 0.2 * l / 7.0 : 0.5 + 0.4 / (1 + exp(-(l - 3.0)));
            rows[n++] = (pl_analysis_row){task ? "logic/answer" : "arith/answer", l, auroc, auroc - 0.04, auroc + 0.04};
        }
    for (int task = 0; task < 2; task++)
        for (int l = 0; l < 8; l++)
            rows[n++] = (pl_analysis_row){task ? "logic/answer/embed" : "arith/answer/embed", l, task ? 0.5 : 0.52, 0.45, 0.6};
    if (pl_store_put_analysis(s, "probe.auroc_by_task", "by_layer",
                              "{\"title\":\"Probe AUROC by task\",\"facet\":\"prefix\",\"baselines\":[\"embed\"],"
                              "\"baseline_labels\":{\"embed\":\"hook_embed probe\"},\"hline\":0.5,\"y_max\":1,"
                              "\"x_label\":\"layer\",\"y_label\":\"AUROC\"}",
                              rows, n))
        return -1;
    n = 0;
    const char *layers[] = {"layer 2", "layer 4"};
    for (int sidx = 0; sidx < 2; sidx++)
        for (int i = 0; i < 9; i++) {
            double alpha = -8 + 2 * i, rate = 1 / (1 + exp(-(fabs(alpha) - (sidx ? 3 : 5)))) * (sidx ? 0.9 : 0.6);
            rows[n++] = (pl_analysis_row){layers[sidx], alpha, rate, NAN, NAN};
        }
    if (pl_store_put_analysis(s, "steering.flip_rate", "flip_rate", "{}", rows, n)) return -1;
    n = 0;
    const char *cats[] = {"faithful", "post-hoc", "shortcut", "theater"};
    const double counts[] = {412, 133, 61, 27};
    for (int i = 0; i < 4; i++) rows[n++] = (pl_analysis_row){cats[i], i, counts[i], NAN, NAN};
    if (pl_store_put_analysis(s, "theater.taxonomy", "counts", "{}", rows, n)) return -1;
    // Grouped bars: counts per class (bar series) at each steering strength (groups).
    n = 0;
    const char *classes[] = {"sound", "confabulation"};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) rows[n++] = (pl_analysis_row){classes[c], -2 + 2 * i, c ? 2 + 3 * abs(i - 1) : 9 - 3 * abs(i - 1), NAN, NAN};
    if (pl_store_put_analysis(s, "steering.taxonomy", "counts",
                              "{\"x_label\":\"steering strength\",\"y_label\":\"chains of thought\",\"series_order\":[\"sound\"]}",
                              rows, n))
        return -1;
    n = 0;
    for (int i = 0; i <= 20; i++) {
        double fpr = i / 20.0;
        rows[n++] = (pl_analysis_row){"layer 4", fpr, pow(fpr, 0.25), NAN, NAN};
    }
    if (pl_store_put_analysis(s, "probe.roc", "roc", "{}", rows, n)) return -1;
    n = 0;
    for (int i = 0; i < 10; i++) {
        double p = (i + 0.5) / 10;
        rows[n++] = (pl_analysis_row){"layer 4", p, fmin(1, fmax(0, p + 0.08 * sin(3 * p))), 10 + 7 * i, NAN};
    }
    if (pl_store_put_analysis(s, "probe.calibration", "reliability", "{}", rows, n)) return -1;
    // Logit lens: probability of the final answer token by layer (rows) and position (columns);
    // rows of the analysis name the columns (series = token text, x = column).
    const char *cols[] = {" 12", " +", " 7", " *", " 3", " =", " 21", " 33"};
    n = 0;
    for (int j = 0; j < 8; j++) rows[n++] = (pl_analysis_row){cols[j], j, NAN, NAN, NAN};
    if (pl_store_put_analysis(s, "logit_lens.answer_prob", "logit_lens", "{}", rows, n)) return -1;
    float lens[8 * 8];
    for (int l = 0; l < 8; l++)
        for (int j = 0; j < 8; j++) lens[l * 8 + j] = (float)(1 / (1 + exp(-(l + j - 9.0))));
    return pl_store_put_analysis_matrix(s, "logit_lens.answer_prob", "prob", lens, 8, 8);
}

int test_sample_store_write(const char *path, int n_runs, int long_tokens) {
    struct stat sb;
    if (stat(path, &sb) == 0) return pl_fail("%s: already exists; the sample store is written to a new file", path);
    if (n_runs < 0 || n_runs > 1000000 || long_tokens < 0 || long_tokens > 16384)
        return pl_fail("%s: sample store sizes out of range (runs %d, long run %d tokens)", path, n_runs, long_tokens);
    pl_store *s = NULL;
    pl_hooks *hooks = NULL;
    pl_recorder *rec = NULL;
    sample_tokens t = {0};
    float *scratch = NULL, *probe = NULL;
    int32_t *pos = NULL;
    int rc = -1;
    if (pl_store_open(&s, path, PL_STORE_WRITE) != 0) goto done;
    int64_t model_id, dataset_id, probe_id;
    char sha[65];
    memset(sha, '0', 64), sha[64] = '\0';
    if (pl_store_put_model(s, "sample", "sample.gguf", sha, "{\"n_layers\":2,\"n_heads\":4}", &model_id)) goto done;
    memset(sha, '1', 64);
    if (pl_store_put_dataset(s, "sample", "sample.jsonl", sha, n_runs + (long_tokens > 0), &dataset_id)) goto done;
    pl_config cfg = {.arch = PL_ARCH_LLAMA, .d_model = 16, .n_layers = SAMPLE_LAYERS, .n_heads = SAMPLE_HEADS,
                     .n_kv_heads = SAMPLE_HEADS, .head_dim = 4, .d_ff = 32, .vocab_size = 256, .context_length = 16384};
    hooks = pl_hooks_new(&cfg);
    pl_record_opts opts = {.record = "blocks.*.attn.hook_pattern", .positions = PL_POS_ALL, .dtype = PL_DTYPE_F32};
    if (!hooks || pl_recorder_new(&rec, s, hooks, &opts) != 0) goto done;
    int total = n_runs + (long_tokens > 0);
    size_t max_tokens = (size_t)(long_tokens > 64 ? long_tokens : 64);
    scratch = malloc(sizeof *scratch * SAMPLE_HEADS * max_tokens);
    if (!scratch) {
        pl_fail("%s: out of memory", path);
        goto done;
    }
    uint64_t rng = 1;
    for (int r = 0; r < total; r++) {
        int is_long = r == n_runs, logic = r % 3 == 2;
        char prompt[200], answer[64];
        int correct;
        t.n = 0;
        t.text[0] = '\0';
        if (make_example(&t, &rng, logic, is_long ? long_tokens : 0, prompt, sizeof prompt, answer, sizeof answer,
                         &correct) != 0)
            goto done;
        pl_store_example ex = {.task = logic ? "logic" : "arith", .prompt = prompt, .answer = answer, .difficulty = 1};
        int64_t example_id;
        if (pl_store_put_example(s, dataset_id, r, &ex, &example_id)) goto done;
        if (pl_recorder_begin_run(rec, model_id, example_id, "{\"sample\":true}", t.n_prompt)) goto done;
        fire_attention(hooks, t.n, scratch);
        pl_label labels[2] = {{.key = "correct", .num = correct}, {.key = "answer", .is_text = true}};
        snprintf(labels[1].text, sizeof labels[1].text, "%s", answer);
        if (pl_recorder_end_run(rec, t.rows, t.n, labels, 2, t.text)) goto done;
    }
    if (pl_recorder_close(rec) != 0) {
        rec = NULL;
        goto done;
    }
    rec = NULL;
    // A classifier probe's per-token outputs, probabilities: above 0.5 on the reasoning of correct
    // runs, below otherwise.
    float w[17] = {0};
    if (pl_store_put_probe(s, "cot_correct", "logreg", "blocks.1.hook_resid_post", "all", "{}", w, 17, &probe_id)) goto done;
    pl_run_info *runs = NULL;
    int n_listed = 0;
    if (pl_store_list_runs(s, NULL, &runs, &n_listed)) goto done;
    probe = malloc(sizeof *probe * max_tokens);
    pos = malloc(sizeof *pos * max_tokens);
    if (!probe || !pos || pl_store_begin(s)) {
        free(runs);
        goto done;
    }
    for (int i = 0; i < n_listed; i++) {
        int n_tok = runs[i].n_tokens < (int)max_tokens ? runs[i].n_tokens : (int)max_tokens;
        double sign = runs[i].correct == 1 ? 1 : -1;
        for (int p = 0; p < n_tok; p++) {
            pos[p] = p;
            double ramp = p < runs[i].n_prompt ? 0.15 : fmin(1, 0.2 + 0.08 * (p - runs[i].n_prompt));
            probe[p] = (float)(0.5 + 0.5 * sign * ramp * (0.75 + 0.25 * sin(0.9 * p + i)));
        }
        if (pl_store_put_probe_outputs(s, probe_id, runs[i].id, pos, probe, n_tok)) {
            free(runs);
            goto done;
        }
    }
    free(runs);
    if (pl_store_commit(s) || put_sample_analyses(s)) goto done;
    rc = 0;
done:
    if (rec) pl_recorder_close(rec);
    if (hooks) pl_hooks_free(hooks);
    pl_store_close(s);
    free(t.rows);
    free(scratch);
    free(probe);
    free(pos);
    return rc;
}
