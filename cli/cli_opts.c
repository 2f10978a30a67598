// The table-driven option parser of every subcommand (cli/cli_opts.h).
#include "cli/cli_opts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

#ifndef PL_VERSION
#define PL_VERSION "unknown"
#endif
#ifndef PL_BUILD_TYPE
#define PL_BUILD_TYPE "unknown"
#endif

static const char *current_command = "";

const char *cli_command(void) { return current_command; }

static void vreport(const char *fmt, va_list ap) {
    char msg[1400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    // One line: a library message never carries a newline onto the next line.
    for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
    if (current_command[0]) fprintf(stderr, "probelab: %s: %s\n", current_command, msg);
    else fprintf(stderr, "probelab: %s\n", msg);
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_fail(void) {
    const char *m = pl_errmsg();
    return cli_error("%s", m[0] ? m : "failed (no message)");
}

void cli_print_version(FILE *out) {
    fprintf(out, "probelab %s (%s build), SIMD path %s\n", PL_VERSION, PL_BUILD_TYPE, pl_simd_path());
}

// ---- help ----------------------------------------------------------------------------------

static bool has_range(const cli_option *o) { return o->min != 0 || o->max != 0; }

static void format_number(char *buf, size_t size, double v) {
    if (v >= 9.2e18) snprintf(buf, size, "2^63-1");
    else if (v <= -9.2e18) snprintf(buf, size, "-2^63");
    else snprintf(buf, size, "%.10g", v);
}

static void format_range(char *buf, size_t size, const cli_option *o) {
    char lo[32], hi[32];
    format_number(lo, sizeof lo, o->min);
    format_number(hi, sizeof hi, o->max);
    snprintf(buf, size, "[%s, %s]", lo, hi);
}

static void option_left(char *buf, size_t size, const cli_option *o) {
    int n = snprintf(buf, size, "%s", o->name);
    for (int a = 0; a < 3 && o->aliases[a]; a++)
        if (o->aliases[a][1] != '-') n += snprintf(buf + n, size - (size_t)n, ", %s", o->aliases[a]);  // short alias
    if (o->kind != CLI_FLAG && n < (int)size)
        snprintf(buf + n, size - (size_t)n, " %s", o->metavar ? o->metavar : "VALUE");
}

static void print_row(FILE *out, const char *left, const char *help) {
    if (strlen(left) <= 24) fprintf(out, "  %-24s %s\n", left, help);
    else fprintf(out, "  %s\n  %-24s %s\n", left, "", help);
}

void cli_help(const cli_spec *spec, FILE *out) {
    fprintf(out, "usage: probelab %s ", spec->command);
    if (spec->usage) {
        fprintf(out, "%s\n", spec->usage);
    } else {
        for (const cli_positional *p = spec->positionals; p && p->name; p++)
            fprintf(out, p->required ? "%s " : "[%s] ", p->name);
        for (const cli_option *o = spec->options; o && o->name; o++)
            if (o->required) fprintf(out, "%s %s ", o->name, o->metavar ? o->metavar : "VALUE");
        fprintf(out, "[options]\n");
    }
    if (spec->summary) fprintf(out, "%s%s", spec->summary, spec->summary[strlen(spec->summary) - 1] == '\n' ? "" : "\n");
    if (spec->positionals && spec->positionals[0].name) {
        fprintf(out, "arguments:\n");
        for (const cli_positional *p = spec->positionals; p->name; p++) print_row(out, p->name, p->help ? p->help : "");
    }
    fprintf(out, "options:\n");
    for (const cli_option *o = spec->options; o && o->name; o++) {
        char left[96], help[1024], range[80];
        option_left(left, sizeof left, o);
        int n = snprintf(help, sizeof help, "%s", o->help ? o->help : "");
        if ((o->kind == CLI_INT || o->kind == CLI_FLOAT) && has_range(o)) {
            format_range(range, sizeof range, o);
            n += snprintf(help + n, sizeof help - (size_t)n, " %s", range);
        }
        if (o->kind == CLI_ENUM && o->choices) {
            n += snprintf(help + n, sizeof help - (size_t)n, " (");
            for (int c = 0; o->choices[c] && n < (int)sizeof help; c++)
                n += snprintf(help + n, sizeof help - (size_t)n, "%s%s", c ? "|" : "", o->choices[c]);
            if (n < (int)sizeof help) n += snprintf(help + n, sizeof help - (size_t)n, ")");
        }
        if (o->def && n < (int)sizeof help) n += snprintf(help + n, sizeof help - (size_t)n, " (default %s)", o->def);
        if (o->required && n < (int)sizeof help) n += snprintf(help + n, sizeof help - (size_t)n, " (required)");
        if (o->kind == CLI_STRINGS && n < (int)sizeof help) n += snprintf(help + n, sizeof help - (size_t)n, " (repeatable)");
        for (int a = 0; a < 3 && o->aliases[a] && n < (int)sizeof help; a++)
            if (o->aliases[a][1] == '-') n += snprintf(help + n, sizeof help - (size_t)n, " (also %s)", o->aliases[a]);
        print_row(out, left, help);
    }
    print_row(out, "-h, --help", "print this help");
    print_row(out, "--version", "print the version");
    if (spec->epilog) fprintf(out, "%s%s", spec->epilog, spec->epilog[strlen(spec->epilog) - 1] == '\n' ? "" : "\n");
}

// ---- values --------------------------------------------------------------------------------

static const cli_option *find_option(const cli_spec *spec, const char *name, size_t len) {
    for (const cli_option *o = spec->options; o && o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
        for (int a = 0; a < 3 && o->aliases[a]; a++)
            if (strlen(o->aliases[a]) == len && strncmp(o->aliases[a], name, len) == 0) return o;
    }
    return NULL;
}

// The value of one option into *o->out; on a bad value prints the error and returns -1. `given`
// is the spelling the user typed (an alias names itself in the error).
static int set_value(const cli_option *o, const char *given, const char *value) {
    char range[80] = "";
    if (has_range(o)) format_range(range, sizeof range, o);
    switch (o->kind) {
    case CLI_FLAG: *(bool *)o->out = true; return 0;
    case CLI_STRING:
    case CLI_STRINGS:
        if (!o->allow_empty && value[0] == '\0') return cli_usage_error("%s '': needs a non-empty %s", given, o->metavar ? o->metavar : "value"), -1;
        if (o->kind == CLI_STRING) {
            *(const char **)o->out = value;
        } else {
            cli_strings *s = o->out;
            if (s->n == CLI_MAX_REPEAT) return cli_usage_error("%s: at most %d values", given, CLI_MAX_REPEAT), -1;
            s->v[s->n++] = value;
        }
        return 0;
    case CLI_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        bool number = value[0] && end != value && *end == '\0' && errno == 0 && value[0] != ' ' && value[0] != '\t';
        if (!number || (has_range(o) && ((double)v < o->min || (double)v > o->max))) {
            if (has_range(o)) return cli_usage_error("%s %s: must be an integer in %s", given, value, range), -1;
            return cli_usage_error("%s %s: must be an integer", given, value), -1;
        }
        *(int64_t *)o->out = v;
        return 0;
    }
    case CLI_FLOAT: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        bool number = value[0] && end != value && *end == '\0' && isfinite(v) && value[0] != ' ' && value[0] != '\t';
        if (!number || (has_range(o) && (v < o->min || v > o->max))) {
            if (has_range(o)) return cli_usage_error("%s %s: must be a finite number in %s", given, value, range), -1;
            return cli_usage_error("%s %s: must be a finite number", given, value), -1;
        }
        *(double *)o->out = v;
        return 0;
    }
    case CLI_ENUM:
        for (int c = 0; o->choices && o->choices[c]; c++)
            if (strcmp(value, o->choices[c]) == 0) return *(int *)o->out = c, 0;
        {
            char list[512] = "";
            size_t n = 0;
            for (int c = 0; o->choices && o->choices[c] && n < sizeof list; c++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", c ? ", " : "", o->choices[c]);
            return cli_usage_error("%s '%s': expected one of %s", given, value, list), -1;
        }
    case CLI_CUSTOM:
        if (o->parse(value, o->out) != 0) return cli_usage_error("%s '%s': %s", given, value, pl_errmsg()), -1;
        return 0;
    }
    return -1;
}

static bool is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

int cli_parse(const cli_spec *spec, int argc, char **argv) {
    current_command = spec->command;
    for (const cli_option *o = spec->options; o && o->name; o++)
        if (o->seen) *o->seen = false;
    // Which required options were given: at most 64 options per command.
    bool given[64] = {false};
    const cli_positional *pos = spec->positionals;
    int n_pos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (is_help(arg)) return cli_help(spec, stdout), CLI_EXIT_OK;
            if (strcmp(arg, "--version") == 0) return cli_print_version(stdout), CLI_EXIT_OK;
            const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
            const cli_option *o = find_option(spec, arg, len);
            if (!o)
                return cli_usage_error("unknown option '%.*s' (probelab %s --help lists the options)", (int)len, arg,
                                       spec->command);
            char given_name[128];
            snprintf(given_name, sizeof given_name, "%.*s", (int)len, arg);
            const char *value = NULL;
            if (o->kind == CLI_FLAG) {
                if (eq) return cli_usage_error("%s takes no value", given_name);
            } else if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return cli_usage_error("%s needs a value (%s)", given_name, o->metavar ? o->metavar : "VALUE");
            }
            if (set_value(o, given_name, value) != 0) return CLI_EXIT_USAGE;
            if (o->seen) *o->seen = true;
            int k = (int)(o - spec->options);
            if (k < 64) given[k] = true;
            continue;
        }
        if (!pos || !pos[n_pos].name)
            return cli_usage_error("unexpected argument '%s'%s", arg,
                                   arg[0] == '-' ? "" : " (quote a value that contains spaces)");
        *pos[n_pos++].out = arg;
    }
    for (const cli_option *o = spec->options; o && o->name; o++) {
        int k = (int)(o - spec->options);
        if (o->required && k < 64 && !given[k]) return cli_usage_error("missing %s %s", o->name, o->metavar ? o->metavar : "VALUE");
    }
    for (int p = n_pos; pos && pos[p].name; p++)
        if (pos[p].required) return cli_usage_error("missing %s (probelab %s --help)", pos[p].name, spec->command);
    return -1;
}

int cli_dispatch(const char *command, const char *summary, const cli_subcommand *subs, int argc, char **argv) {
    current_command = command;
    FILE *out = argc >= 2 && is_help(argv[1]) ? stdout : stderr;
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) return cli_print_version(stdout), CLI_EXIT_OK;
    if (argc >= 2 && !is_help(argv[1])) {
        for (const cli_subcommand *s = subs; s->name; s++)
            if (strcmp(argv[1], s->name) == 0) return s->run(argc - 1, argv + 1);
        char list[256] = "";
        size_t n = 0;
        for (const cli_subcommand *s = subs; s->name && n < sizeof list; s++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", s == subs ? "" : ", ", s->name);
        return cli_usage_error("unknown subcommand '%s' (expected %s)", argv[1], list);
    }
    if (out == stderr) return cli_usage_error("missing subcommand (probelab %s --help lists them)", command);
    fprintf(out, "usage: probelab %s SUBCOMMAND [options]   (probelab %s SUBCOMMAND --help for details)\n", command, command);
    if (summary) fprintf(out, "%s\n", summary);
    fprintf(out, "subcommands:\n");
    for (const cli_subcommand *s = subs; s->name; s++) fprintf(out, "  %-10s %s\n", s->name, s->summary);
    return CLI_EXIT_OK;
}

// ---- JSON ----------------------------------------------------------------------------------

int cli_print_json(json_t *value) {
    if (!value) return cli_error("out of memory building the JSON output");
    char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    json_decref(value);
    if (!text) return cli_error("cannot serialise the JSON output");
    puts(text);
    free(text);
    return 0;
}

json_t *cli_json_text(const char *s, size_t len) {
    size_t bad;
    if (pl_utf8_valid(s, len, &bad)) return json_stringn(s, len);
    char *buf = malloc(3 * len + 1);  // each byte becomes at most the 3 bytes of U+FFFD
    if (!buf) return NULL;
    size_t n = 0, i = 0;
    while (i < len) {
        if (pl_utf8_valid(s + i, len - i, &bad)) bad = len - i;
        memcpy(buf + n, s + i, bad);
        n += bad, i += bad;
        if (i < len) {
            memcpy(buf + n, "\xef\xbf\xbd", 3);
            n += 3, i++;
        }
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

json_t *cli_json_real(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *cli_json_float(float v) {
    if (!isfinite(v)) return json_null();
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return json_real(strtod(buf, NULL));
}
