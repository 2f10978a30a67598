// Small helpers shared by the subcommands: option matching and argument parsing.
#ifndef PL_CLI_UTIL_H
#define PL_CLI_UTIL_H

#include <stdbool.h>
#include <stdint.h>

// True if argv[*i] is `name`; then *value points at the next argument (error if missing).
// Also accepts `--name=value`. Advances *i past the value.
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
// True if argv[i] is -h or --help.
bool cli_is_help(const char *arg);
// Parse "1,2,3" into a malloc'd int array. Returns count, or -1 with pl_errmsg set.
int cli_parse_ids(const char *text, int32_t **ids);
// Parse a float / int option value, or fail naming the option.
int cli_parse_float(const char *opt, const char *value, float *out);
int cli_parse_int(const char *opt, const char *value, long *out);
// Parse the value of --model-id (a model id >= 1, as `probelab runs S.db --models` lists them).
int cli_parse_model_id(const char *value, int64_t *out);


#include "runtime/model/model.h"
// Resolve the prompt of a command: exactly one of --prompt TEXT (tokenized with BOS) or
// --token-ids 1,2,3 (checked against the vocabulary). Returns the count or -1 (pl_errmsg set).
int cli_prompt_ids(const pl_model *m, const char *prompt, const char *token_ids, int32_t **ids);

#endif
