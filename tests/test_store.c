// The trace store without a model: synthetic hook events with known values go through the
// recorder (small chunks, so runs span several chunks) and must read back exactly (f32) or
// within the dtype's rounding (f16/bf16); attention keeps exactly the causal triangle; design
// matrices, analyses, migrations, locking and every bad-input message are checked.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/base/sha256.h"
#include "runtime/hooks.h"
#include "runtime/store/recorder.h"
#include "runtime/store/store.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

enum { L = 3, D = 16, H = 2, N_PROMPT = 5, N_COT = 4, N_ANS = 3, T = N_PROMPT + N_COT + N_ANS, N_RUNS = 4 };
_Static_assert(T * T * H * L * N_RUNS <= 4096, "pattern_value must stay an exact fraction below 1");

// Written values and expected values come from these functions, called once at write time and once
// at check time. Each is an integer over a power of two, so every float step is exact and no
// compiler (FMA contraction at -O3 -march=native, vectorization) can make the two calls differ.
static float resid_value(int run, int layer, int pos, int j) { return (float)run * 10.0f + layer + pos * 0.25f + (j - 8) / 64.0f; }
static float pattern_value(int run, int layer, int h, int q, int k) {
    return (float)(k + T * (q + T * (h + H * (layer + L * run)))) / 4096.0f;  // distinct per (run, layer, h, q, k), < 1
}

static pl_config synthetic_config(void) {
    pl_config c = {0};
    c.arch = PL_ARCH_LLAMA;
    c.rope_style = PL_ROPE_ADJACENT;
    c.n_layers = L;
    c.d_model = D;
    c.n_heads = H;
    c.n_kv_heads = H;
    c.head_dim = D / H;
    return c;
}

// Fire resid_post and pattern for positions [pos0, pos0 + n) of every layer, like the forward pass.
static void fire(pl_hooks *hooks, int run, int pos0, int n) {
    int n_ctx = pos0 + n;
    float *rows = malloc(sizeof(float) * (size_t)n * D);
    float *att = malloc(sizeof(float) * (size_t)H * n * n_ctx);
    for (int l = 0; l < L; l++) {
        for (int p = 0; p < n; p++)
            for (int j = 0; j < D; j++) rows[p * D + j] = resid_value(run, l, pos0 + p, j);
        pl_hook_event ev = {.kind = PL_HOOK_RESID_POST, .layer = l, .pos0 = pos0, .n_pos = n, .n_ctx = n_ctx, .ndim = 2,
                            .row_size = D, .data = rows};
        ev.shape[0] = n;
        ev.shape[1] = D;
        pl_hooks_fire(hooks, &ev);
        for (int h = 0; h < H; h++)
            for (int p = 0; p < n; p++)
                for (int k = 0; k < n_ctx; k++)  // beyond the diagonal: garbage that must not be stored
                    att[((size_t)h * n + p) * n_ctx + k] = k <= pos0 + p ? pattern_value(run, l, h, pos0 + p, k) : 7.0f;
        pl_hook_event ea = {.kind = PL_HOOK_PATTERN, .layer = l, .pos0 = pos0, .n_pos = n, .n_ctx = n_ctx, .ndim = 3,
                            .row_size = n_ctx, .data = att};
        ea.shape[0] = H;
        ea.shape[1] = n;
        ea.shape[2] = n_ctx;
        pl_hooks_fire(hooks, &ea);
    }
    free(rows);
    free(att);
}

// A store with N_RUNS synthetic runs: prefill of N_PROMPT, then one decode event per position.
static void build_store(const char *path, pl_dtype dtype, pl_pos_rule keep) {
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE) != 0) fail_msg("%s", pl_errmsg());
    pl_config cfg = synthetic_config();
    pl_hooks *hooks = pl_hooks_new(&cfg);
    pl_record_opts o = {.record = "blocks.*.hook_resid_post,blocks.*.attn.hook_pattern", .positions = keep, .dtype = dtype,
                        .chunk_bytes = 200, .queue_bytes = 4096};
    pl_recorder *r;
    if (pl_recorder_new(&r, s, hooks, &o) != 0) fail_msg("%s", pl_errmsg());
    for (int run = 0; run < N_RUNS; run++) {
        assert_int_equal(pl_recorder_begin_run(r, 0, 0, "{}", N_PROMPT), 0);
        fire(hooks, run, 0, N_PROMPT);
        for (int p = N_PROMPT; p < T; p++) fire(hooks, run, p, 1);
        pl_token_row tokens[T];
        for (int p = 0; p < T; p++) {
            tokens[p] = (pl_token_row){.id = 100 + p, .logprob = p ? -0.5f * p : NAN, .entropy = p ? 1.0f : NAN};
            tokens[p].segment = p < N_PROMPT ? PL_SEG_PROMPT : p < N_PROMPT + N_COT ? PL_SEG_COT : PL_SEG_ANSWER;
            snprintf(tokens[p].piece, sizeof tokens[p].piece, "t%d", p);
        }
        pl_label labels[2] = {{.key = "correct", .num = run % 2}, {.key = "answer", .is_text = true}};
        snprintf(labels[1].text, sizeof labels[1].text, "ans%d", run % 3);
        assert_int_equal(pl_recorder_end_run(r, tokens, T, labels, 2, "generated"), 0);
    }
    assert_int_equal(pl_recorder_close(r), 0);
    pl_hooks_free(hooks);
    pl_store_close(s);
}

static char store_path[512];

static void check_roundtrip(pl_dtype dtype, float tol) {
    snprintf(store_path, sizeof store_path, "%s/rt.db", test_tmpdir());
    build_store(store_path, dtype, PL_POS_ALL);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_READ), 0);
    pl_run_info *runs;
    int n;
    assert_int_equal(pl_store_list_runs(s, NULL, &runs, &n), 0);
    assert_int_equal(n, N_RUNS);
    double worst = 0, worst_att = 0;
    for (int i = 0; i < n; i++) {
        assert_string_equal(runs[i].status, "complete");
        assert_int_equal(runs[i].n_tokens, T);
        int run = i;
        int32_t pos[T];
        for (int p = 0; p < T; p++) pos[p] = (p * 7) % T;  // shuffled, crossing chunk boundaries
        for (int l = 0; l < L; l++) {
            char hook[64];
            snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", l);
            float got[T * D];
            if (pl_store_read_acts(s, runs[i].id, hook, pos, T, D, got) != 0) fail_msg("%s", pl_store_errmsg(s));
            for (int p = 0; p < T; p++)
                for (int j = 0; j < D; j++) {
                    double e = fabs(got[p * D + j] - resid_value(run, l, pos[p], j));
                    worst = e > worst ? e : worst;
                }
            for (int h = 0; h < H; h++) {
                float *att;
                int q0, nq, nk;
                if (pl_store_read_attention(s, runs[i].id, l, h, &att, &q0, &nq, &nk) != 0) fail_msg("%s", pl_store_errmsg(s));
                assert_int_equal(q0, 0);
                assert_int_equal(nq, T);
                assert_int_equal(nk, T);
                for (int q = 0; q < T; q++)
                    for (int k = 0; k < T; k++) {
                        float want = k <= q ? pattern_value(run, l, h, q, k) : 0.0f;
                        double e = fabs(att[q * nk + k] - want);
                        worst_att = e > worst_att ? e : worst_att;
                    }
                free(att);
            }
        }
    }
    printf("%s: worst |stored - written| resid %.3g, attention %.3g (tolerance %.3g)\n", pl_dtype_name(dtype), worst,
           worst_att, tol);
    assert_true(worst <= tol * 40);  // values up to ~40 in magnitude: relative rounding
    assert_true(worst_att <= tol);
    free(runs);
    pl_store_close(s);
}

static void roundtrip_f32_exact(void **state) { check_roundtrip(PL_DTYPE_F32, 0.0f); }
static void roundtrip_f16(void **state) { check_roundtrip(PL_DTYPE_F16, 1.0f / 1024); }
static void roundtrip_bf16(void **state) { check_roundtrip(PL_DTYPE_BF16, 1.0f / 128); }

static void tokens_labels_and_filters(void **state) {
    snprintf(store_path, sizeof store_path, "%s/tl.db", test_tmpdir());
    build_store(store_path, PL_DTYPE_F32, PL_POS_ALL);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_READ), 0);
    pl_token_row *t;
    int n;
    assert_int_equal(pl_store_get_tokens(s, 2, &t, &n), 0);
    assert_int_equal(n, T);
    assert_true(isnan(t[0].logprob));
    assert_float_equal(t[3].logprob, -1.5f, 1e-6);
    assert_int_equal(t[N_PROMPT].segment, PL_SEG_COT);
    assert_int_equal(t[T - 1].segment, PL_SEG_ANSWER);
    assert_string_equal(t[7].piece, "t7");
    free(t);
    pl_run_filter f = pl_run_filter_any();
    f.correct = 1;
    pl_run_info *runs;
    assert_int_equal(pl_store_list_runs(s, &f, &runs, &n), 0);
    assert_int_equal(n, N_RUNS / 2);
    for (int i = 0; i < n; i++) assert_int_equal(runs[i].correct, 1);
    free(runs);
    char buf[64];
    assert_int_equal(pl_store_get_label(s, 3, "answer", buf, sizeof buf), 1);
    assert_string_equal(buf, "ans2");
    assert_int_equal(pl_store_get_label(s, 3, "nope", buf, sizeof buf), 0);
    pl_store_close(s);
}

static void design_matrix_rules(void **state) {
    snprintf(store_path, sizeof store_path, "%s/dm.db", test_tmpdir());
    build_store(store_path, PL_DTYPE_F32, PL_POS_ALL);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_READ), 0);
    const char *hook = "blocks.1.hook_resid_post";
    float *X;
    int64_t *runs;
    int32_t *pos;
    int n, d;
    // last-prompt: one row per run, the row of position N_PROMPT-1
    assert_int_equal(pl_store_design_matrix(s, hook, PL_POS_LAST_PROMPT, NULL, &X, &runs, &pos, &n, &d), 0);
    assert_int_equal(n, N_RUNS);
    assert_int_equal(d, D);
    for (int i = 0; i < n; i++) {
        assert_int_equal(pos[i], N_PROMPT - 1);
        for (int j = 0; j < D; j++) assert_float_equal(X[i * D + j], resid_value((int)runs[i] - 1, 1, N_PROMPT - 1, j), 0);
    }
    free(X), free(runs), free(pos);
    // mean-cot: the mean of the cot rows, computed here independently
    assert_int_equal(pl_store_design_matrix(s, hook, PL_POS_MEAN_COT, NULL, &X, &runs, &pos, &n, &d), 0);
    assert_int_equal(n, N_RUNS);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++) {
            double mean = 0;
            for (int p = N_PROMPT; p < N_PROMPT + N_COT; p++) mean += resid_value((int)runs[i] - 1, 1, p, j);
            assert_float_equal(X[i * D + j], mean / N_COT, 1e-5);
        }
    free(X), free(runs), free(pos);
    // answer rows, streamed 5 at a time, equal the whole matrix
    assert_int_equal(pl_store_design_matrix(s, hook, PL_POS_ANSWER, NULL, &X, &runs, &pos, &n, &d), 0);
    assert_int_equal(n, N_RUNS * N_ANS);
    pl_design *it;
    assert_int_equal(pl_design_open(&it, s, hook, PL_POS_ANSWER, NULL), 0);
    float buf[5 * D];
    int64_t rb[5];
    int32_t pb[5];
    int total = 0, got;
    while ((got = pl_design_next(it, buf, rb, pb, 5)) > 0) {
        for (int i = 0; i < got; i++) {
            assert_int_equal(rb[i], runs[total + i]);
            assert_int_equal(pb[i], pos[total + i]);
            assert_memory_equal(buf + i * D, X + (size_t)(total + i) * D, sizeof(float) * D);
        }
        total += got;
    }
    assert_int_equal(got, 0);
    assert_int_equal(total, n);
    pl_design_close(it);
    free(X), free(runs), free(pos);
    pl_store_close(s);
}

static void analyses_roundtrip(void **state) {
    snprintf(store_path, sizeof store_path, "%s/an.db", test_tmpdir());
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_WRITE), 0);
    pl_analysis_row rows[] = {{"layer acc", 0, 0.5, 0.4, 0.6}, {"layer acc", 1, 0.7, 0.6, 0.8}, {"baseline", 0, 0.5, NAN, NAN}};
    assert_int_equal(pl_store_put_analysis(s, "probe/acc", "line", "{\"hook\":\"resid\"}", rows, 3), 0);
    float m[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(pl_store_put_analysis_matrix(s, "probe/acc", "confusion", m, 2, 3), 0);
    assert_int_not_equal(pl_store_put_analysis_matrix(s, "missing", "x", m, 2, 3), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "no analysis named 'missing'"));
    pl_store_close(s);
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_READ), 0);
    pl_analysis a;
    assert_int_equal(pl_store_get_analysis(s, "probe/acc", &a), 0);
    assert_string_equal(a.kind, "line");
    assert_string_equal(a.params_json, "{\"hook\":\"resid\"}");
    assert_int_equal(a.n_rows, 3);
    assert_string_equal(a.rows[0].series, "baseline");  // ordered by series, then x
    assert_true(isnan(a.rows[0].lo));
    assert_string_equal(a.rows[2].series, "layer acc");
    assert_float_equal(a.rows[2].y, 0.7, 1e-12);
    assert_float_equal(a.rows[2].hi, 0.8, 1e-12);
    assert_int_equal(a.n_matrices, 1);
    assert_string_equal(a.matrix_names[0], "confusion");
    pl_analysis_free(&a);
    float *got;
    int r, c;
    assert_int_equal(pl_store_get_analysis_matrix(s, "probe/acc", "confusion", &got, &r, &c), 0);
    assert_int_equal(r, 2);
    assert_int_equal(c, 3);
    assert_memory_equal(got, m, sizeof m);
    free(got);
    // a read-only handle cannot write, and says so
    assert_int_not_equal(pl_store_put_analysis(s, "x", "line", NULL, rows, 1), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "read"));
    pl_store_close(s);
    // replacing drops the old rows and matrices
    assert_int_equal(pl_store_open(&s, store_path, PL_STORE_WRITE), 0);
    assert_int_equal(pl_store_put_analysis(s, "probe/acc", "bar", NULL, rows, 1), 0);
    assert_int_equal(pl_store_get_analysis(s, "probe/acc", &a), 0);
    assert_int_equal(a.n_rows, 1);
    assert_int_equal(a.n_matrices, 0);
    pl_analysis_free(&a);
    assert_int_not_equal(pl_store_get_analysis(s, "nope", &a), 0);
    pl_store_close(s);
}

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

// Declared in runtime/store/store_internal.h: the SQL of migration v.
const char *store_migration_sql(int v);

static void migration_from_v1_and_newer_refused(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/old.db", test_tmpdir());
    // A store as version 1 wrote it, with a model row.
    exec_sql(path, store_migration_sql(1));
    exec_sql(path, "PRAGMA application_id=1886151010; PRAGMA user_version=1;"
                   "INSERT INTO models(name, file, sha256, config) VALUES('m', 'm.gguf', 'abc', '{}');");
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);  // readable as is
    assert_int_equal(pl_store_schema_version(s), 1);
    pl_store_close(s);
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), 0);  // migrated
    assert_int_equal(pl_store_schema_version(s), PL_STORE_SCHEMA_VERSION);
    int64_t id;
    assert_int_equal(pl_store_put_model(s, "m", "m.gguf", "abc", "{}", &id), 0);
    assert_int_equal(id, 1);  // the old row survived
    pl_analysis_row row = {"s", 1, 2, NAN, NAN};
    assert_int_equal(pl_store_put_analysis(s, "a", "line", NULL, &row, 1), 0);  // v2 table exists
    pl_store_close(s);
    exec_sql(path, "PRAGMA user_version=99");
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), PL_ERR_FORMAT);
    printf("newer: %s\n", pl_errmsg());
    assert_non_null(strstr(pl_errmsg(), path));
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), PL_ERR_FORMAT);
}

// A schema 2 store held byte-level pieces, generated text and answer labels as TEXT that is not
// valid UTF-8. Read as is, the API gives the raw bytes and a display string; migrated (schema 3)
// the raw bytes move to piece_bytes / text_bytes BLOBs and the TEXT columns hold valid UTF-8.
static void migration_v2_text_to_bytes(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/v2.db", test_tmpdir());
    exec_sql(path, store_migration_sql(1));
    exec_sql(path, store_migration_sql(2));
    exec_sql(path, "PRAGMA application_id=1886151010; PRAGMA user_version=2;"
                   "INSERT INTO models(name, file, sha256, config) VALUES('m', 'm.gguf', 'abc', '{}');"
                   "INSERT INTO runs(model_id, params, status, started, n_prompt, n_tokens, text)"
                   "  VALUES(1, '{}', 'complete', 0, 2, 3, CAST(X'e697a5c3' AS TEXT));"
                   "INSERT INTO tokens(run_id, pos, token_id, piece, segment) VALUES(1, 0, 5, 'A', 'prompt'),"
                   "  (1, 1, 6, CAST(X'e697' AS TEXT), 'prompt'), (1, 2, 7, CAST(X'a5c3a9ff' AS TEXT), 'cot');"
                   "INSERT INTO labels(run_id, key, value) VALUES(1, 'answer', CAST(X'c3' AS TEXT)), (1, 'correct', 1);");
    for (int pass = 0; pass < 2; pass++) {  // 0: read as schema 2; 1: after the migration
        pl_store *s;
        if (pass == 1) {
            assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), 0);
            pl_store_close(s);
        }
        assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
        assert_int_equal(pl_store_schema_version(s), pass ? 3 : 2);
        pl_token_row *t;
        int n;
        assert_int_equal(pl_store_get_tokens(s, 1, &t, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(t[1].piece, "\xe6\x97");
        assert_string_equal(t[1].display, "\\xe6\\x97");
        assert_string_equal(t[2].piece, "\xa5\xc3\xa9\xff");
        assert_string_equal(t[2].display, "\\xa5\xc3\xa9\\xff");  // the whole é stays a character
        assert_string_equal(t[0].display, "A");
        free(t);
        pl_store_close(s);
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT typeof(piece), piece, hex(piece_bytes) FROM tokens WHERE pos=2"
                                        " UNION ALL SELECT typeof(text), text, hex(text_bytes) FROM runs"
                                        " UNION ALL SELECT typeof(value), value, '' FROM labels WHERE key='answer'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    const char *want[3][3] = {{"text", "\\xa5\xc3\xa9\\xff", "A5C3A9FF"},
                              {"text", "\xe6\x97\xa5\\xc3", "E697A5C3"},
                              {"text", "\\xc3", ""}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        for (int c = 0; c < 3; c++) assert_string_equal((const char *)sqlite3_column_text(st, c), want[i][c]);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

// pl_utf8_display: whole characters kept, other bytes as \xNN, never cut inside either.
static void utf8_display_strings(void **state) {
    char out[32];
    assert_int_equal(pl_utf8_display(out, sizeof out, "caf\xc3\xa9", 5), 5);
    assert_string_equal(out, "caf\xc3\xa9");
    pl_utf8_display(out, sizeof out, "\xc3", 1);
    assert_string_equal(out, "\\xc3");
    pl_utf8_display(out, sizeof out, "a\xe6\x97", 3);  // a character cut at the end
    assert_string_equal(out, "a\\xe6\\x97");
    pl_utf8_display(out, sizeof out, "\xc0\xaf\xed\xa0\x80", 5);  // overlong, surrogate
    assert_string_equal(out, "\\xc0\\xaf\\xed\\xa0\\x80");
    pl_utf8_display(out, 6, "ab\xff\xff", 4);  // room for "ab" and one escape only
    assert_string_equal(out, "ab");
    pl_utf8_display(out, 3, "a\xe6\x97\xa5", 4);  // "a" + a 3-byte character does not fit in 2
    assert_string_equal(out, "a");
}

// ---- the browsing API (what the viewer asks), against a brute-force reference ----------------

enum { B_RUNS = 5 };
static const char *const b_prompt[B_RUNS] = {"What is 12 + 5?", "what is 3 * 4?", "All cats are animals.\nIs Tom an animal?",
                                             "Give it 100% sure_thing", NULL};
static const char *const b_task[B_RUNS] = {"arith", "arith", "logic", "logic", NULL};
static const char *const b_gold[B_RUNS] = {"17", "12", "yes", "no", NULL};
static const int b_correct[B_RUNS] = {1, 0, 1, -1, 0};  // -1: no label

// Runs 1..5 over four examples (run 5 has none and records nothing), attention on runs 1..4.
static void build_browse_store(const char *path) {
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE) != 0) fail_msg("%s", pl_errmsg());
    int64_t ds, ex[B_RUNS] = {0};
    assert_int_equal(pl_store_put_dataset(s, "d", "d.jsonl", "00", 4, &ds), 0);
    for (int i = 0; i < B_RUNS; i++)
        if (b_prompt[i]) {
            static const char *const opts[2] = {"yes", "no"};  // run 3's example has options and a difficulty
            pl_store_example e = {.task = b_task[i], .prompt = b_prompt[i], .answer = b_gold[i]};
            if (i == 2) e.ext_id = "logic-7", e.options = opts, e.n_options = 2, e.difficulty = 3, e.meta_json = "{\"k\":1}";
            assert_int_equal(pl_store_put_example(s, ds, i, &e, &ex[i]), 0);
        }
    pl_config cfg = synthetic_config();
    pl_hooks *hooks = pl_hooks_new(&cfg);
    pl_record_opts o = {.record = "blocks.*.hook_resid_post,blocks.*.attn.hook_pattern", .positions = PL_POS_ALL,
                        .dtype = PL_DTYPE_F16};
    pl_recorder *r;
    if (pl_recorder_new(&r, s, hooks, &o) != 0) fail_msg("%s", pl_errmsg());
    for (int i = 0; i < B_RUNS; i++) {
        assert_int_equal(pl_recorder_begin_run(r, 0, ex[i], "{}", N_PROMPT), 0);
        if (b_prompt[i]) fire(hooks, i, 0, N_PROMPT);
        pl_token_row tokens[N_PROMPT] = {{0}};
        pl_label label = {.key = "correct", .num = b_correct[i]};
        char text[32];
        snprintf(text, sizeof text, "gen-%d", i + 1);
        assert_int_equal(pl_recorder_end_run(r, tokens, N_PROMPT, &label, b_correct[i] >= 0, text), 0);
    }
    assert_int_equal(pl_recorder_close(r), 0);
    pl_hooks_free(hooks);
    pl_store_close(s);
}

// The reference: which runs a filter selects, by plain string matching in C.
static bool ascii_contains(const char *hay, const char *needle) {
    if (!hay) return false;
    for (size_t n = strlen(needle); *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return true;
    return false;
}
static bool b_matches(int i, const char *task, int correct, const char *text) {
    char id[16], gen[32];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(gen, sizeof gen, "gen-%d", i + 1);
    if (task && (!b_task[i] || strcmp(task, b_task[i]) != 0)) return false;
    if (correct >= 0 && b_correct[i] != correct) return false;
    return !text || ascii_contains(b_prompt[i], text) || ascii_contains(gen, text) || ascii_contains(b_gold[i], text) ||
           strcmp(id, text) == 0;
}

static void browsing_api(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/browse.db", test_tmpdir());
    build_browse_store(path);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);

    // filters: ids and counts equal the brute-force reference; LIKE wildcards in the text are literal
    struct { const char *task; int correct; const char *text; } cases[] = {
        {NULL, -1, NULL}, {NULL, -1, "WHAT IS"}, {NULL, -1, "%"}, {NULL, -1, "_"}, {NULL, -1, "3"},
        {"logic", 1, NULL}, {"arith", -1, "gen-2"}, {NULL, 0, NULL}, {NULL, -1, "animal?"}, {NULL, -1, "zzz"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pl_run_filter f = pl_run_filter_any();
        f.task = cases[c].task, f.correct = cases[c].correct, f.text = cases[c].text;
        int64_t want[B_RUNS], n_want = 0, want_good = 0, want_bad = 0;
        for (int i = 0; i < B_RUNS; i++)
            if (b_matches(i, cases[c].task, cases[c].correct, cases[c].text)) {
                want[n_want++] = i + 1;
                want_good += b_correct[i] == 1, want_bad += b_correct[i] == 0;
            }
        int64_t *ids, n, good, bad, n_count, good_count, bad_count;
        assert_int_equal(pl_store_run_ids(s, &f, &ids, &n, &good, &bad), 0);
        assert_int_equal(pl_store_count_runs(s, &f, &n_count, &good_count, &bad_count), 0);
        printf("filter task=%s correct=%d text=%s: %lld runs (%lld correct, %lld incorrect)\n", cases[c].task,
               cases[c].correct, cases[c].text, (long long)n, (long long)good, (long long)bad);
        assert_int_equal(n, n_want);
        for (int64_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
        assert_int_equal(good, want_good);
        assert_int_equal(bad, want_bad);
        assert_int_equal(n_count, n_want);
        assert_int_equal(good_count, want_good);
        assert_int_equal(bad_count, want_bad);
        free(ids);
    }
    // paging by offset: pages of 2 cover every run once, in id order; counting ignores the page
    pl_run_filter page = pl_run_filter_any();
    page.limit = 2;
    int seen = 0;
    for (page.offset = 0; page.offset < B_RUNS + 2; page.offset += 2) {
        pl_run_info *runs;
        int n;
        assert_int_equal(pl_store_list_runs(s, &page, &runs, &n), 0);
        assert_int_equal(n, page.offset >= B_RUNS ? 0 : page.offset + 2 <= B_RUNS ? 2 : B_RUNS - page.offset);
        for (int i = 0; i < n; i++) assert_int_equal(runs[i].id, page.offset + i + 1);
        seen += n;
        free(runs);
    }
    assert_int_equal(seen, B_RUNS);
    int64_t *ids, n_ids, n_all;
    assert_int_equal(pl_store_run_ids(s, &page, &ids, &n_ids, NULL, NULL), 0);  // offset 6: nothing left
    assert_int_equal(n_ids, 0);
    assert_null(ids);
    assert_int_equal(pl_store_count_runs(s, &page, &n_all, NULL, NULL), 0);
    assert_int_equal(n_all, B_RUNS);

    // runs by id: details, preview folded to one line, a missing id marked -1
    int64_t want_ids[3] = {3, 99, 1};
    pl_run_info info[3];
    assert_int_equal(pl_store_get_runs(s, want_ids, 3, info), 0);
    assert_int_equal(info[0].id, 3);
    assert_string_equal(info[0].task, "logic");
    assert_string_equal(info[0].preview, "All cats are animals. Is Tom an animal?");
    assert_int_equal(info[0].correct, 1);
    assert_int_equal(info[0].n_tokens, N_PROMPT);
    assert_int_equal(info[1].id, -1);
    assert_int_equal(info[2].id, 1);
    assert_string_equal(info[2].preview, "What is 12 + 5?");

    // tasks with counts, max run id
    char **tasks;
    int64_t *counts, max_id;
    int n_tasks;
    assert_int_equal(pl_store_list_tasks(s, &tasks, &counts, &n_tasks), 0);
    assert_int_equal(n_tasks, 3);
    assert_string_equal(tasks[0], "");
    assert_string_equal(tasks[1], "arith");
    assert_string_equal(tasks[2], "logic");
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 2);
    pl_strings_free(tasks, n_tasks);
    free(counts);
    assert_int_equal(pl_store_max_run_id(s, &max_id), 0);
    assert_int_equal(max_id, B_RUNS);

    // attention shape: layers x heads as recorded; none for run 5; a missing run is an error
    int nl, nh;
    assert_int_equal(pl_store_attention_shape(s, 2, &nl, &nh), 0);
    assert_int_equal(nl, L);
    assert_int_equal(nh, H);
    assert_int_equal(pl_store_attention_shape(s, 5, &nl, &nh), 0);
    assert_int_equal(nl, 0);
    assert_int_equal(nh, 0);
    assert_int_not_equal(pl_store_attention_shape(s, 99, &nl, &nh), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "run 99 does not exist"));

    // data version: unchanged without commits, changed after another connection commits
    int64_t v0, v1, v2;
    assert_int_equal(pl_store_data_version(s, &v0), 0);
    assert_int_equal(pl_store_data_version(s, &v1), 0);
    assert_int_equal(v0, v1);
    pl_store *w;
    assert_int_equal(pl_store_open(&w, path, PL_STORE_WRITE), 0);
    float weights[3] = {0.5f, -1, 2};
    int64_t p_old, p_new, found;
    assert_int_equal(pl_store_put_probe(w, "p1", "linear", "blocks.1.hook_resid_post", "all", "{}", weights, 3, &p_old), 0);
    assert_int_equal(pl_store_put_probe(w, "p1", "linear", "blocks.2.hook_resid_post", "all", "{}", weights, 2, &p_new), 0);
    int32_t pos_old[1] = {0}, pos_new[4] = {2, -1, 1, 0};
    float val_old[1] = {0.5f}, val_new[4] = {-1.25f, 0.9f, NAN, 0.25f};
    assert_int_equal(pl_store_put_probe_outputs(w, p_old, 1, pos_old, val_old, 1), 0);
    assert_int_equal(pl_store_put_probe_outputs(w, p_new, 1, pos_new, val_new, 4), 0);
    pl_analysis_row row = {"s", 0, 1, NAN, NAN};
    assert_int_equal(pl_store_put_analysis(w, "b-analysis", "bar", NULL, &row, 1), 0);
    assert_int_equal(pl_store_put_analysis(w, "a-analysis", "line", NULL, &row, 1), 0);
    pl_store_close(w);
    assert_int_equal(pl_store_data_version(s, &v2), 0);
    assert_int_not_equal(v2, v1);

    // probes: listed oldest first, the newest of a name found, outputs in position order
    pl_probe_info *probes;
    int n_probes;
    assert_int_equal(pl_store_list_probes(s, &probes, &n_probes), 0);
    assert_int_equal(n_probes, 2);
    assert_int_equal(probes[0].id, p_old);
    assert_string_equal(probes[1].name, "p1");
    assert_string_equal(probes[1].hook, "blocks.2.hook_resid_post");
    assert_string_equal(probes[1].kind, "linear");
    assert_int_equal(probes[0].n_weights, 3);
    assert_int_equal(probes[1].n_weights, 2);
    free(probes);
    assert_int_equal(pl_store_find_probe(s, "p1", &found), 1);
    assert_int_equal(found, p_new);
    assert_int_equal(pl_store_find_probe(s, "nope", &found), 0);
    // one probe row in full, as it was put; an id that is not there is 0, not an error
    pl_stored_probe sp;
    assert_int_equal(pl_store_get_probe(s, p_old, &sp), 1);
    assert_int_equal(sp.id, p_old);
    assert_string_equal(sp.name, "p1");
    assert_string_equal(sp.kind, "linear");
    assert_string_equal(sp.hook, "blocks.1.hook_resid_post");
    assert_string_equal(sp.positions, "all");
    assert_string_equal(sp.params_json, "{}");
    assert_int_equal(sp.n_weights, 3);
    assert_memory_equal(sp.weights, weights, sizeof weights);
    assert_true(sp.created > 0);
    pl_stored_probe_free(&sp);
    assert_int_equal(pl_store_get_probe(s, 999, &sp), 0);
    assert_null(sp.name);
    // a run's example: every field as put; options only where the example has them; none for run 5
    pl_stored_example se;
    assert_int_equal(pl_store_get_run_example(s, 3, &se), 0);
    assert_string_equal(se.ext_id, "logic-7");
    assert_string_equal(se.task, b_task[2]);
    assert_string_equal(se.prompt, b_prompt[2]);
    assert_string_equal(se.answer, b_gold[2]);
    assert_string_equal(se.meta_json, "{\"k\":1}");
    assert_int_equal(se.difficulty, 3);
    assert_int_equal(se.n_options, 2);
    assert_string_equal(se.options[0], "yes");
    assert_string_equal(se.options[1], "no");
    pl_stored_example_free(&se);
    assert_int_equal(pl_store_get_run_example(s, 1, &se), 0);
    assert_string_equal(se.prompt, b_prompt[0]);
    assert_int_equal(se.n_options, 0);
    assert_null(se.options);
    pl_stored_example_free(&se);
    assert_int_equal(pl_store_get_run_example(s, 5, &se), -1);
    assert_non_null(strstr(pl_store_errmsg(s), "run 5 has no example"));
    int32_t *pos;
    float *val;
    int n_out;
    assert_int_equal(pl_store_get_probe_outputs(s, p_new, 1, &pos, &val, &n_out), 0);
    assert_int_equal(n_out, 4);
    int32_t want_pos[4] = {-1, 0, 1, 2};
    float want_val[4] = {0.9f, 0.25f, NAN, -1.25f};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pos[i], want_pos[i]);
        if (isnan(want_val[i])) assert_true(isnan(val[i]));
        else assert_float_equal(val[i], want_val[i], 1e-7);
    }
    free(pos);
    free(val);
    assert_int_equal(pl_store_get_probe_outputs(s, p_new, 2, &pos, &val, &n_out), 0);  // no outputs on run 2
    assert_int_equal(n_out, 0);

    // analyses with their kinds, by name
    char **names, **kinds;
    int n_an;
    assert_int_equal(pl_store_list_analysis_kinds(s, &names, &kinds, &n_an), 0);
    assert_int_equal(n_an, 2);
    assert_string_equal(names[0], "a-analysis");
    assert_string_equal(kinds[0], "line");
    assert_string_equal(names[1], "b-analysis");
    assert_string_equal(kinds[1], "bar");
    pl_strings_free(names, n_an);
    pl_strings_free(kinds, n_an);
    // what they read is validated: weights that are not whole floats and options that are not a
    // list of strings are corrupt, naming the row
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE probes SET weights = x'0102030405' WHERE id = %lld;", (long long)p_old);
    exec_sql(path, sql);
    assert_int_equal(pl_store_get_probe(s, p_old, &sp), -1);
    assert_int_equal(pl_errcode(), PL_ERR_CORRUPT);
    assert_non_null(strstr(pl_store_errmsg(s), "probes row"));
    assert_non_null(strstr(pl_store_errmsg(s), "5 bytes"));
    exec_sql(path, "UPDATE examples SET options = '[\"a\", 2]' WHERE id = (SELECT example_id FROM runs WHERE id = 3);");
    assert_int_equal(pl_store_get_run_example(s, 3, &se), -1);
    assert_int_equal(pl_errcode(), PL_ERR_CORRUPT);
    assert_non_null(strstr(pl_store_errmsg(s), "option 1 is not a string"));
    exec_sql(path, "UPDATE examples SET options = '{\"a\":1}' WHERE id = (SELECT example_id FROM runs WHERE id = 3);");
    assert_int_equal(pl_store_get_run_example(s, 3, &se), -1);
    assert_non_null(strstr(pl_store_errmsg(s), "options are not a JSON list"));
    pl_store_close(s);

    // a schema-1 store (no probe or analysis tables) answers empty, not with an SQL error
    snprintf(path, sizeof path, "%s/browse_v1.db", test_tmpdir());
    exec_sql(path, store_migration_sql(1));
    exec_sql(path, "PRAGMA application_id=1886151010; PRAGMA user_version=1;");
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
    assert_int_equal(pl_store_list_probes(s, &probes, &n_probes), 0);
    assert_int_equal(n_probes, 0);
    assert_int_equal(pl_store_find_probe(s, "p1", &found), 0);
    assert_int_equal(pl_store_get_probe(s, 1, &sp), 0);
    assert_int_equal(pl_store_list_analysis_kinds(s, &names, &kinds, &n_an), 0);
    assert_int_equal(n_an, 0);
    assert_int_equal(pl_store_list_analyses(s, &names, &n_an), 0);
    assert_int_equal(n_an, 0);
    assert_int_equal(pl_store_max_run_id(s, &max_id), 0);
    assert_int_equal(max_id, 0);
    pl_store_close(s);
}

// Runs bigger than the recorder's writeback window (8 MiB: its pages are written back early and
// dropped from the page cache) must read back exactly, in any order, from a fresh reader.
static void large_runs_through_the_writeback_window(void **state) {
    enum { BL = 4, BT = 512, BD = 1024, BRUNS = 6 };  // 8 MiB of f32 per run, 48 MiB in all
    char path[512];
    snprintf(path, sizeof path, "%s/large.db", test_tmpdir());
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), 0);
    pl_config cfg = synthetic_config();
    cfg.n_layers = BL;
    pl_hooks *hooks = pl_hooks_new(&cfg);
    pl_record_opts o = {.record = "blocks.*.hook_resid_post", .positions = PL_POS_ALL, .dtype = PL_DTYPE_F32};
    pl_recorder *r;
    if (pl_recorder_new(&r, s, hooks, &o) != 0) fail_msg("%s", pl_errmsg());
    float *rows = malloc(sizeof(float) * BT * BD);
    for (int run = 0; run < BRUNS; run++) {
        assert_int_equal(pl_recorder_begin_run(r, 0, 0, "{}", BT), 0);
        for (int l = 0; l < BL; l++) {
            for (int p = 0; p < BT; p++)
                for (int j = 0; j < BD; j++) rows[p * BD + j] = (float)(((run * BL + l) * BT + p) * BD + j);  // exact in f32
            pl_hook_event ev = {.kind = PL_HOOK_RESID_POST, .layer = l, .pos0 = 0, .n_pos = BT, .n_ctx = BT, .ndim = 2,
                                .row_size = BD, .data = rows};
            ev.shape[0] = BT;
            ev.shape[1] = BD;
            pl_hooks_fire(hooks, &ev);
        }
        pl_token_row tokens[1] = {{0}};
        assert_int_equal(pl_recorder_end_run(r, tokens, 1, NULL, 0, ""), 0);
    }
    assert_int_equal(pl_recorder_close(r), 0);
    pl_hooks_free(hooks);
    pl_store_close(s);
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
    uint64_t seed = 12345;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int run = (int)((seed >> 33) % BRUNS), l = (int)((seed >> 20) % BL);
        int32_t p = (int32_t)((seed >> 40) % BT);
        char hook[64];
        snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", l);
        if (pl_store_read_acts(s, run + 1, hook, &p, 1, BD, rows) != 0) fail_msg("%s", pl_store_errmsg(s));
        for (int j = 0; j < BD; j++) bad += rows[j] != (float)(((run * BL + l) * BT + p) * BD + j);
    }
    printf("48 MiB recorded; 300 random rows read back, %d values differ\n", bad);
    assert_int_equal(bad, 0);
    free(rows);
    pl_store_close(s);
}

static void bad_inputs_have_clear_messages(void **state) {
    const char *dir = test_tmpdir();
    char path[512];
    pl_store *s;
    // a text file
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("hello, this is not a database at all\n", f);
    fclose(f);
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), PL_ERR_FORMAT);
    assert_null(s);
    assert_non_null(strstr(pl_errmsg(), path));
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), PL_ERR_FORMAT);
    assert_int_equal(pl_errcode(), PL_ERR_FORMAT);
    // somebody else's SQLite database
    snprintf(path, sizeof path, "%s/other.db", dir);
    exec_sql(path, "CREATE TABLE t(x)");
    assert_int_equal(pl_store_open(&s, path, PL_STORE_WRITE), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_errmsg(), path));
    // a missing store, for reading
    snprintf(path, sizeof path, "%s/missing.db", dir);
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_errmsg(), path));
    // a directory
    assert_int_equal(pl_store_open(&s, dir, PL_STORE_READ), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_errmsg(), dir));

    // hook not recorded, run that does not exist, position not recorded
    snprintf(path, sizeof path, "%s/prompt.db", dir);
    build_store(path, PL_DTYPE_F16, PL_POS_PROMPT);
    assert_int_equal(pl_store_open(&s, path, PL_STORE_READ), 0);
    float row[D];
    int32_t p0 = 0, p_gen = N_PROMPT + 1;
    assert_int_not_equal(pl_store_read_acts(s, 1, "blocks.1.hook_mlp_out", &p0, 1, D, row), 0);
    printf("%s\n", pl_store_errmsg(s));
    assert_non_null(strstr(pl_store_errmsg(s), "hook 'blocks.1.hook_mlp_out' was not recorded (recorded: "));
    assert_non_null(strstr(pl_store_errmsg(s), "blocks.0.hook_resid_post"));
    assert_int_not_equal(pl_store_read_acts(s, 999, "blocks.1.hook_resid_post", &p0, 1, D, row), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "run 999 does not exist"));
    assert_int_not_equal(pl_store_read_acts(s, 1, "blocks.1.hook_resid_post", &p_gen, 1, D, row), 0);
    printf("%s\n", pl_store_errmsg(s));
    assert_non_null(strstr(pl_store_errmsg(s), "position 6 of hook 'blocks.1.hook_resid_post' was not recorded (recorded positions 0..4)"));
    pl_run_info info;
    assert_int_not_equal(pl_store_get_run(s, -3, &info), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "run -3 does not exist"));
    pl_token_row *t;
    int n;
    assert_int_not_equal(pl_store_get_tokens(s, 42, &t, &n), 0);
    float *att;
    int q0, nq, nk;
    assert_int_not_equal(pl_store_read_attention(s, 1, 0, 5, &att, &q0, &nq, &nk), 0);
    assert_non_null(strstr(pl_store_errmsg(s), "head 5 out of range"));
    // a rule with no recorded rows is an error, not an empty matrix
    float *X;
    int64_t *runs;
    int32_t *pos;
    int d;
    assert_int_not_equal(pl_store_design_matrix(s, "blocks.0.hook_resid_post", PL_POS_COT, NULL, &X, &runs, &pos, &n, &d), 0);
    printf("%s\n", pl_store_errmsg(s));
    assert_non_null(strstr(pl_store_errmsg(s), "no rows of 'blocks.0.hook_resid_post' at positions 'cot'"));
    pl_store_close(s);
}

static void one_writer_many_readers(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/lock.db", test_tmpdir());
    pl_store *w, *w2, *r;
    assert_int_equal(pl_store_open(&w, path, PL_STORE_WRITE), 0);
    assert_int_not_equal(pl_store_open(&w2, path, PL_STORE_WRITE), 0);
    printf("%s\n", pl_errmsg());
    char want[64];
    snprintf(want, sizeof want, "locked by another writer (pid %d)", (int)getpid());
    assert_non_null(strstr(pl_errmsg(), want));
    assert_int_equal(pl_store_open(&r, path, PL_STORE_READ), 0);  // readers are fine
    pl_recorder *rec;
    pl_config cfg = synthetic_config();
    pl_hooks *hooks = pl_hooks_new(&cfg);
    pl_record_opts o = {.record = "blocks.*.hook_resid_post"};
    assert_int_not_equal(pl_recorder_new(&rec, r, hooks, &o), 0);  // a reader cannot record
    assert_non_null(strstr(pl_errmsg(), "read-only"));
    pl_hooks_free(hooks);
    hooks = pl_hooks_new(&cfg);
    o.record = "blocks.*.hook_nothing";
    assert_int_not_equal(pl_recorder_new(&rec, w, hooks, &o), 0);
    assert_non_null(strstr(pl_errmsg(), "matches no hook point"));
    pl_hooks_free(hooks);
    pl_store_close(r);
    pl_store_close(w);
    assert_int_equal(pl_store_open(&w2, path, PL_STORE_WRITE), 0);  // the lock went with the first writer
    pl_store_close(w2);
}

static void sha256_known_vectors(void **state) {
    char path[512], hex[65];
    snprintf(path, sizeof path, "%s/abc", test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("abc", f);
    fclose(f);
    assert_int_equal(pl_sha256_file(hex, path), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    f = fopen(path, "w");  // 1,000,000 x 'a' (FIPS 180-2 appendix B.3): crosses buffer and padding edges
    for (int i = 0; i < 1000000; i++) fputc('a', f);
    fclose(f);
    assert_int_equal(pl_sha256_file(hex, path), 0);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Internal conversions (runtime/store/store_internal.h), vectorized with F16C/AVX2 where the CPU
// has them (run-time dispatch, any build): must agree bit for bit with the scalar reference in kernels/.
void store_from_f32(void *out, const float *in, pl_dtype t, size_t n);
void store_to_f32(float *out, const void *in, pl_dtype t, size_t n);

static void conversions_match_scalar_reference(void **state) {
    enum { N = 100003 };  // odd: exercises the scalar tail too
    float *x = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    uint64_t seed = 12345;
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, -1e9f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 1e-10f,
                          1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, INFINITY, -INFINITY, 3.3895314e38f};
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(seed >> 32);
        // random sign and mantissa, exponent spread over f16's range and beyond
        bits = (bits & 0x807fffffu) | ((uint32_t)(90 + (seed >> 20) % 70) << 23);
        memcpy(&x[i], &bits, 4);
        if (i < (int)(sizeof edge / sizeof edge[0])) x[i] = edge[i];
    }
    int bad16 = 0, bad_bf16 = 0, bad_back = 0;
    store_from_f32(h, x, PL_DTYPE_F16, N);
    for (int i = 0; i < N; i++) bad16 += h[i] != pl_f32_to_f16(x[i]);
    store_to_f32(back, h, PL_DTYPE_F16, N);
    for (int i = 0; i < N; i++) bad_back += memcmp(&back[i], &(float){pl_f16_to_f32(h[i])}, 4) != 0;
    store_from_f32(h, x, PL_DTYPE_BF16, N);
    for (int i = 0; i < N; i++) bad_bf16 += h[i] != pl_f32_to_bf16(x[i]);
    printf("mismatches vs scalar: f16 %d, bf16 %d, f16->f32 %d of %d\n", bad16, bad_bf16, bad_back, N);
    assert_int_equal(bad16, 0);
    assert_int_equal(bad_bf16, 0);
    assert_int_equal(bad_back, 0);
    free(x), free(back), free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_f32_exact),
        cmocka_unit_test(roundtrip_f16),
        cmocka_unit_test(roundtrip_bf16),
        cmocka_unit_test(tokens_labels_and_filters),
        cmocka_unit_test(design_matrix_rules),
        cmocka_unit_test(analyses_roundtrip),
        cmocka_unit_test(migration_from_v1_and_newer_refused),
        cmocka_unit_test(migration_v2_text_to_bytes),
        cmocka_unit_test(utf8_display_strings),
        cmocka_unit_test(browsing_api),
        cmocka_unit_test(large_runs_through_the_writeback_window),
        cmocka_unit_test(bad_inputs_have_clear_messages),
        cmocka_unit_test(one_writer_many_readers),
        cmocka_unit_test(sha256_known_vectors),
        cmocka_unit_test(conversions_match_scalar_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
