#include "cli/cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

bool cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    if (arg[n] != '\0') return false;
    if (*i + 1 >= argc) {
        *value = NULL;  // caller reports "missing value"
        return true;
    }
    *value = argv[++*i];
    return true;
}

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

int cli_parse_float(const char *opt, const char *value, float *out) {
    char *end;
    if (!value) return pl_fail("%s needs a value", opt);
    *out = strtof(value, &end);
    if (end == value || *end) return pl_fail("%s: '%s' is not a number", opt, value);
    return 0;
}

int cli_parse_int(const char *opt, const char *value, long *out) {
    char *end;
    if (!value) return pl_fail("%s needs a value", opt);
    errno = 0;
    *out = strtol(value, &end, 10);
    if (end == value || *end || errno) return pl_fail("%s: '%s' is not an integer", opt, value);
    return 0;
}

int cli_parse_model_id(const char *value, int64_t *out) {
    long v = 0;  // set by cli_parse_int on success; -O3 cannot see that
    if (cli_parse_int("--model-id", value, &v) != 0) return -1;
    if (v < 1) return pl_fail("--model-id %ld: model ids start at 1 (probelab runs S.db --models lists them)", v);
    *out = v;
    return 0;
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
