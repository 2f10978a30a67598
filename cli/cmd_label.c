// `probelab label S.db --from FILE.csv|FILE.jsonl`: add or update run labels (docs/store.md).
#include <stdio.h>

#include "cli/cli_opts.h"
#include "cli/commands.h"
#include "runtime/store/store.h"

int cmd_label(int argc, char **argv) {
    const char *path = NULL, *from = NULL;
    bool json = false;
    const cli_option opts[] = {
        {"--from", CLI_STRING, &from, "FILE", .help = "labels as CSV (header: run or example, then label names) or JSONL",
         .required = true},
        {"--json", CLI_FLAG, &json, .help = "print {\"rows\", \"labels\"} as JSON"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {
        "label", opts, pos,
        "Add or update run labels from a file, in one transaction: a bad row fails the whole file\n"
        "(FILE:LINE: what is wrong) and the store is unchanged. Each row names a run by its id (column\n"
        "'run') or every run of an example by the dataset's example id (column 'example'); every other\n"
        "column is a label: numbers become numbers, other text stays text, an empty cell sets nothing.\n"
        "  run,topic,difficulty_human        {\"example\": \"arith-000003\", \"topic\": \"carry\"}\n"
        "  3,carry,2",
        .usage = "S.db --from FILE.csv|FILE.jsonl [--json]"};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE) != 0) return cli_fail();
    int n_rows, n_labels, rc = 0;
    if (pl_store_import_labels(s, from, &n_rows, &n_labels) != 0) rc = cli_fail();
    else if (json) rc = cli_print_json(json_pack("{s:s, s:s, s:i, s:i}", "store", path, "from", from, "rows", n_rows, "labels", n_labels));
    else fprintf(stderr, "%s: %d label%s from %d row%s of %s\n", path, n_labels, n_labels == 1 ? "" : "s", n_rows,
                 n_rows == 1 ? "" : "s", from);
    pl_store_close(s);
    return rc;
}
