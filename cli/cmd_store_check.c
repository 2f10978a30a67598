// `probelab store check S.db`: every check the store's readers make, over a whole store
// (pl_store_check; docs/reliability.md lists them).
#include <stdio.h>

#include "cli/cli_opts.h"
#include "cli/commands.h"
#include "runtime/store/store.h"

static int store_check(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    const cli_option opts[] = {
        {"--json", CLI_FLAG, &json,
         .help = "print {\"store\", \"ok\", \"n_findings\", \"findings\": [...], \"n_runs\", \"n_tokens\", ...}"},
        {0}};
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
    if (json) {
        json_t *f = json_array();
        for (int i = 0; i < r.n_listed; i++) json_array_append_new(f, json_string(r.findings[i]));
        int rc = cli_print_json(json_pack("{s:s, s:b, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "store", path, "ok",
                                          r.n_findings == 0, "n_findings", (json_int_t)r.n_findings, "findings", f, "n_runs",
                                          (json_int_t)r.n_runs, "n_tokens", (json_int_t)r.n_tokens, "n_tensor_rows",
                                          (json_int_t)r.n_tensor_rows, "n_attention_rows", (json_int_t)r.n_attention_rows,
                                          "n_files", (json_int_t)r.n_files));
        int status = rc ? rc : r.n_findings ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        pl_store_check_free(&r);
        pl_store_close(s);
        return status;
    }
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
