// `probelab store check S.db`: every check the store's readers make, over a whole store
// (pl_store_check; docs/reliability.md lists them).
#include <stdio.h>

#include "cli/cli_opts.h"
#include "cli/commands.h"
#include "runtime/store/store.h"

static int store_check(int argc, char **argv) {
    const char *path = NULL;
    const cli_option opts[] = {{0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {"store check", opts, pos,
                           .summary = "Check a whole store: SQLite's integrity_check and foreign_key_check, then every run, token,\n"
                                      "tensor and attention row, tensor file, probe and analysis matrix against the schema's\n"
                                      "invariants and the tensor files' lengths. Prints one line per finding (the first 100) and\n"
                                      "a summary; exit 0 if nothing was found, 1 otherwise."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ) != 0) return cli_fail();
    pl_store_check_report r;
    pl_store_check(s, 100, &r);
    for (int i = 0; i < r.n_listed; i++) printf("%s\n", r.findings[i]);
    if (r.n_findings > r.n_listed) printf("... and %lld more\n", (long long)(r.n_findings - r.n_listed));
    printf("%s: %s: %lld runs, %lld tokens, %lld tensor rows, %lld attention rows, %lld tensor files checked\n", path,
           r.n_findings ? "CORRUPT" : "ok", (long long)r.n_runs, (long long)r.n_tokens, (long long)r.n_tensor_rows,
           (long long)r.n_attention_rows, (long long)r.n_files);
    int status = CLI_EXIT_OK;
    if (r.n_findings)
        status = cli_error("%s: %lld finding%s", path, (long long)r.n_findings, r.n_findings == 1 ? "" : "s");
    pl_store_check_free(&r);
    pl_store_close(s);
    return status;
}

int cmd_store(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"check", store_check, "check every index row against the schema and the tensor files; exit 1 on any finding"},
        {0}};
    return cli_dispatch("store", "Store maintenance.", subs, argc, argv);
}
