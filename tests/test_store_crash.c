// Reliability of the store against a real `probelab trace` process: SIGKILL mid-run, Ctrl-C
// (SIGINT), and a full disk (RLIMIT_FSIZE). After each, the store must open, pass
// PRAGMA integrity_check, and every run marked complete must be fully readable (tokens and every
// tensor row); an interrupted run is never 'complete'. A reader polls the store while it is written.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/tasks.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/store/store.h"
#include "runtime/store/recorder.h"
#include "tests/support/test_support.h"

static char dir[256], dataset_path[512];
static const char *model_path;

static int setup(void **state) {
    test_require_shared("models/stories260K.gguf");
    model_path = strdup(test_shared_path("models/stories260K.gguf"));
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(dataset_path, sizeof dataset_path, "%s/arith.jsonl", dir);
    pl_dataset d;
    if (pl_task_generate(&d, "arith", 400, 3, 1, 8) != 0 || pl_dataset_write_jsonl(&d, dataset_path) != 0) return -1;
    pl_dataset_free(&d);
    return 0;
}

// Start `probelab trace` on store (stderr to errfile); fsize_kb > 0 limits file sizes (disk full).
static pid_t start_trace(const char *store, const char *errfile, long fsize_kb, const char *extra) {
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen(errfile, "w", stderr) == NULL) _exit(99);
        if (fsize_kb > 0) {
            signal(SIGXFSZ, SIG_IGN);  // then write() fails with EFBIG, like ENOSPC on a full disk
            struct rlimit rl = {(rlim_t)fsize_kb * 1024, (rlim_t)fsize_kb * 1024};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execl(test_probelab_bin(), "probelab", "trace", model_path, "--dataset", dataset_path, "--store", store, "--record",
              "blocks.*.hook_resid_post,blocks.*.attn.hook_pattern", "--max-new", "120", "--dtype", "f32", "--no-progress",
              extra, (char *)NULL);
        _exit(98);
    }
    return pid;
}

static int count(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

// A reader's view while the writer runs: complete runs only, each fully readable.
static int complete_runs_readable(const char *store) {
    pl_store *s;
    if (pl_store_open(&s, store, PL_STORE_READ) != 0) fail_msg("reader: %s", pl_errmsg());
    pl_run_filter f = pl_run_filter_complete();
    pl_run_info *runs;
    int n;
    if (pl_store_list_runs(s, &f, &runs, &n) != 0) fail_msg("reader: %s", pl_store_errmsg(s));
    for (int i = 0; i < n; i++) {
        pl_token_row *t;
        int nt;
        if (pl_store_get_tokens(s, runs[i].id, &t, &nt) != 0) fail_msg("%s", pl_store_errmsg(s));
        assert_int_equal(nt, runs[i].n_tokens);
        int32_t *pos = malloc(sizeof(int32_t) * nt);
        for (int p = 0; p < nt; p++) pos[p] = p;
        float *row = malloc(sizeof(float) * 64 * (size_t)nt);
        for (int l = 0; l < 5; l++) {
            char hook[64];
            snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", l);
            if (pl_store_read_acts(s, runs[i].id, hook, pos, nt, 64, row) != 0) fail_msg("run %lld: %s", (long long)runs[i].id, pl_store_errmsg(s));
            float *att;
            int q0, nq, nk;
            if (pl_store_read_attention(s, runs[i].id, l, 7, &att, &q0, &nq, &nk) != 0) fail_msg("%s", pl_store_errmsg(s));
            assert_int_equal(nq, nt);
            free(att);
        }
        free(row);
        free(pos);
        free(t);
    }
    free(runs);
    pl_store_close(s);
    return n;
}

// The store after the writer died: opens, integrity ok, nothing of an unfinished run indexed.
static void check_consistent(const char *store, int max_unfinished) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_true(count(db, "SELECT count(*) FROM runs WHERE status!='complete'") <= max_unfinished);
    assert_int_equal(count(db, "SELECT count(*) FROM runs WHERE status='complete' AND finished IS NULL"), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tokens WHERE run_id IN (SELECT id FROM runs WHERE status!='complete')"), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tensors WHERE run_id IN (SELECT id FROM runs WHERE status!='complete')"), 0);
    sqlite3_close(db);
    complete_runs_readable(store);
}

static void sigkill_mid_run_leaves_a_consistent_store(void **state) {
    char store[600], errfile[600];
    snprintf(store, sizeof store, "%s/kill.db", dir);
    snprintf(errfile, sizeof errfile, "%s/kill.err", dir);
    pid_t pid = start_trace(store, errfile, 0, "--limit=400");
    // Read while it writes, until a few runs are complete, then kill -9.
    double t0 = pl_now_sec();
    int seen = 0, polls = 0;
    while (pl_now_sec() - t0 < 20) {
        usleep(20000);
        struct stat sb;
        if (stat(store, &sb) != 0 || sb.st_size == 0) continue;
        pl_store *probe;
        if (pl_store_open(&probe, store, PL_STORE_READ) != 0) continue;  // schema not created yet
        pl_store_close(probe);
        seen = complete_runs_readable(store);
        polls++;
        if (seen >= 3) break;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    printf("killed after %d complete runs (%d reader polls while writing)\n", seen, polls);
    assert_true(seen >= 3);
    // Finished runs still waiting for their group commit stay incomplete, besides the one in flight.
    check_consistent(store, PL_RECORDER_GROUP_MAX + 1);
    // The next writer marks the interrupted run aborted, and rerunning resumes.
    pl_store *s;
    assert_int_equal(pl_store_open(&s, store, PL_STORE_WRITE), 0);
    pl_run_filter f = pl_run_filter_any();
    f.status = "running";
    pl_run_info *runs;
    int n;
    assert_int_equal(pl_store_list_runs(s, &f, &runs, &n), 0);
    assert_int_equal(n, 0);
    free(runs);
    f = pl_run_filter_complete();
    assert_int_equal(pl_store_list_runs(s, &f, &runs, &n), 0);
    int n_complete = n;
    free(runs);
    pl_store_close(s);
    char limit[32];
    snprintf(limit, sizeof limit, "--limit=%d", n_complete + 2);
    pid = start_trace(store, errfile, 0, limit);
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_consistent(store, PL_RECORDER_GROUP_MAX + 1);  // the aborted runs stay, as history
    char *err;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cat %s", errfile);
    test_run(cmd, &err);
    printf("resume: %s", err);
    char want[64];
    snprintf(want, sizeof want, "(%d skipped as already complete)", n_complete);
    assert_non_null(strstr(err, want));
    free(err);
}

static void sigint_stops_cleanly(void **state) {
    char store[600], errfile[600];
    snprintf(store, sizeof store, "%s/int.db", dir);
    snprintf(errfile, sizeof errfile, "%s/int.err", dir);
    pid_t pid = start_trace(store, errfile, 0, "--limit=400");
    double t0 = pl_now_sec();
    while (pl_now_sec() - t0 < 20) {
        usleep(20000);
        pl_store *s;
        if (pl_store_open(&s, store, PL_STORE_READ) != 0) continue;
        pl_run_filter f = pl_run_filter_complete();
        pl_run_info *runs;
        int n = 0;
        pl_store_list_runs(s, &f, &runs, &n);
        free(runs);
        pl_store_close(s);
        if (n >= 2) break;
    }
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    char *err, cmd[700];
    snprintf(cmd, sizeof cmd, "cat %s", errfile);
    test_run(cmd, &err);
    printf("%s", err);
    assert_non_null(strstr(err, "interrupted"));
    free(err);
    check_consistent(store, 1);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    assert_int_equal(count(db, "SELECT count(*) FROM runs WHERE status='running'"), 0);  // dropped as 'aborted'
    sqlite3_close(db);
}

static void disk_full_is_a_clear_error(void **state) {
    char store[600], errfile[600];
    snprintf(store, sizeof store, "%s/full.db", dir);
    snprintf(errfile, sizeof errfile, "%s/full.err", dir);
    pid_t pid = start_trace(store, errfile, 600, "--limit=400");  // 600 KiB per file
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    char *err, cmd[700];
    snprintf(cmd, sizeof cmd, "cat %s", errfile);
    test_run(cmd, &err);
    printf("%s", err);
    assert_true(strstr(err, "disk full") || strstr(err, "File too large"));
    free(err);
    // The run whose bytes failed is 'failed', and so are runs queued behind it or awaiting their
    // group commit.
    check_consistent(store, PL_RECORDER_GROUP_MAX + 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigkill_mid_run_leaves_a_consistent_store),
        cmocka_unit_test(sigint_stops_cleanly),
        cmocka_unit_test(disk_full_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
