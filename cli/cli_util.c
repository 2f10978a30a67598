#include "cli/cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

int cli_parse_ids(const char *text, int32_t **ids) {
    size_t cap = 16, n = 0;
    int32_t *out = malloc(cap * sizeof *out);
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(out);
            return pl_fail("--token-ids: '%s' is not a comma-separated list of non-negative integers", text);
        }
        if (n == cap) out = realloc(out, (cap *= 2) * sizeof *out);
        out[n++] = (int32_t)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) {
            free(out);
            return pl_fail("--token-ids: unexpected '%c' in '%s'", *p, text);
        }
    }
    *ids = out;
    return (int)n;
}

int cli_prompt_ids(const pl_model *m, const char *prompt, const char *token_ids, int32_t **ids) {
    *ids = NULL;
    if ((prompt != NULL) == (token_ids != NULL)) return pl_fail("give exactly one of --prompt TEXT or --token-ids 1,2,3");
    int n;
    if (token_ids) {
        n = cli_parse_ids(token_ids, ids);
        if (n < 0) return -1;
        for (int i = 0; i < n; i++)
            if ((*ids)[i] >= m->config.vocab_size) {
                int bad = (*ids)[i];
                free(*ids);
                *ids = NULL;
                return pl_fail("--token-ids: token id %d is out of range (%s has %d tokens)", bad, m->path,
                               m->config.vocab_size);
            }
    } else {
        if (!m->tokenizer)
            return pl_fail("%s: has no %stokenizer%s%s; pass --token-ids instead of --prompt", m->path,
                           m->tokenizer_error[0] ? "usable " : "", m->tokenizer_error[0] ? ": " : "", m->tokenizer_error);
        n = pl_tokenizer_encode(m->tokenizer, prompt, true, ids);
        if (n < 0) return -1;
    }
    if (n == 0) {
        free(*ids);
        *ids = NULL;
        return pl_fail("the prompt is empty (no tokens)");
    }
    return n;
}

// ---- position rules ------------------------------------------------------------------------

// Every rule once, with what it means; `uses` is a bit set of cli_pos_use.
typedef struct {
    const char *name;
    int uses;
    int rule;     // pl_pos_rule, or -1
    int at_kind;  // pl_at_kind, or -1
} pos_entry;

#define USE(u) (1 << (u))
static const pos_entry pos_rules[] = {
    {"all", USE(CLI_POS_RECORD) | USE(CLI_POS_ROWS), PL_POS_ALL, -1},
    {"prompt", USE(CLI_POS_RECORD) | USE(CLI_POS_ROWS), PL_POS_PROMPT, -1},
    {"cot", USE(CLI_POS_ROWS), PL_POS_COT, -1},
    {"answer", USE(CLI_POS_ROWS), PL_POS_ANSWER, -1},
    {"generated", USE(CLI_POS_RECORD) | USE(CLI_POS_ROWS), PL_POS_GENERATED, -1},
    {"last-prompt", USE(CLI_POS_RECORD) | USE(CLI_POS_ROWS) | USE(CLI_POS_ONE), PL_POS_LAST_PROMPT, PL_AT_LAST_PROMPT},
    {"cot-start", USE(CLI_POS_ONE), -1, PL_AT_COT_START},
    {"last-cot", USE(CLI_POS_ROWS) | USE(CLI_POS_ONE), PL_POS_LAST_COT, PL_AT_LAST_COT},
    {"answer-prefix", USE(CLI_POS_ONE), -1, PL_AT_ANSWER},
    {"token:N", USE(CLI_POS_ONE), -1, PL_AT_TOKEN},
    {"mean-prompt", USE(CLI_POS_ROWS), PL_POS_MEAN_PROMPT, -1},
    {"mean-cot", USE(CLI_POS_ROWS), PL_POS_MEAN_COT, -1},
    {"mean-all", USE(CLI_POS_ROWS), PL_POS_MEAN_ALL, -1},
};
#define N_POS_RULES (sizeof pos_rules / sizeof pos_rules[0])

const char *cli_positions_list(cli_pos_use use) {
    static char lists[3][256];
    char *buf = lists[use];
    if (!buf[0]) {
        size_t n = 0;
        for (size_t i = 0; i < N_POS_RULES; i++)
            if (pos_rules[i].uses & USE(use))
                n += (size_t)snprintf(buf + n, sizeof lists[0] - n, "%s%s", n ? " | " : "", pos_rules[i].name);
    }
    return buf;
}

static int positions_fail(const char *value, cli_pos_use use) {
    if (strcmp(value, "cot") == 0 && use == CLI_POS_RECORD)
        return pl_fail("trace records positions as they are generated, before the answer is known: use generated "
                       "(every generated token, what trace's cot meant) and select cot when exporting");
    if (strcmp(value, "answer") == 0 && use == CLI_POS_ONE)
        return pl_fail("answer is every answer token; one position per run: answer-prefix (the token ending \"%s\") or %s",
                       PL_ANSWER_PREFIX, cli_positions_list(use));
    return pl_fail("expected %s", cli_positions_list(use));
}

static const pos_entry *find_rule(const char *value, cli_pos_use use) {
    for (size_t i = 0; i < N_POS_RULES; i++)
        if ((pos_rules[i].uses & USE(use)) && strcmp(value, pos_rules[i].name) == 0) return &pos_rules[i];
    return NULL;
}

static int parse_rule(const char *value, void *rule, cli_pos_use use) {
    const pos_entry *e = find_rule(value, use);
    if (!e) return positions_fail(value, use);
    *(pl_pos_rule *)rule = (pl_pos_rule)e->rule;
    return 0;
}

int cli_parse_positions_record(const char *value, void *rule) { return parse_rule(value, rule, CLI_POS_RECORD); }
int cli_parse_positions_rows(const char *value, void *rule) { return parse_rule(value, rule, CLI_POS_ROWS); }

int cli_parse_positions_one(const char *value, void *at) {
    pl_probe_at *out = at;
    if (strncmp(value, "token:", 6) == 0) return pl_probe_at_parse(out, value);
    const pos_entry *e = find_rule(value, CLI_POS_ONE);
    if (!e) return positions_fail(value, CLI_POS_ONE);
    *out = (pl_probe_at){(pl_at_kind)e->at_kind, 0};
    return 0;
}

int cli_parse_at_legacy(const char *value, void *at) {
    return cli_parse_positions_one(strcmp(value, "answer") == 0 ? "answer-prefix" : value, at);
}
