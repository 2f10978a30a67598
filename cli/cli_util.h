// Small helpers shared by the subcommands: argument values the option parser (cli/cli_opts.h)
// hands over as strings, and the one vocabulary of position rules.
#ifndef PL_CLI_UTIL_H
#define PL_CLI_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "probes/probe_store.h"
#include "runtime/model/model.h"
#include "runtime/store/store.h"

// Parse "1,2,3" into a malloc'd int array. Returns count, or -1 with pl_errmsg set.
int cli_parse_ids(const char *text, int32_t **ids);

// Resolve the prompt of a command: exactly one of --prompt TEXT (tokenized with BOS) or
// --token-ids 1,2,3 (checked against the vocabulary). Returns the count or -1 (pl_errmsg set).
int cli_prompt_ids(const pl_model *m, const char *prompt, const char *token_ids, int32_t **ids);

// ---- position rules: one vocabulary for every command (docs/store.md, "Position rules") ----

// What a command does with a rule: record positions while tracing, select rows of a design
// matrix (export), or pick one position per run (probe train). Each takes the rules it can use
// and refuses the others naming the ones it takes.
typedef enum { CLI_POS_RECORD, CLI_POS_ROWS, CLI_POS_ONE } cli_pos_use;
// The rules a use takes, for --help ("all | prompt | ...").
const char *cli_positions_list(cli_pos_use use);
// CLI_CUSTOM parsers of --positions: into a pl_pos_rule (record, rows) or a pl_probe_at (one).
int cli_parse_positions_record(const char *value, void *rule);
int cli_parse_positions_rows(const char *value, void *rule);
int cli_parse_positions_one(const char *value, void *at);
// probe train's old --at: as --positions, except that `answer` keeps its old meaning (answer-prefix).
int cli_parse_at_legacy(const char *value, void *at);

#endif
