// The option parser every `probelab` subcommand shares. A command declares its options and
// positional arguments once, in a table; cli_parse() fills the variables they point at, checks
// every value (numbers finite, in range, no wrap-around), and generates `--help` and `--version`.
//
//     static int64_t limit = 0;
//     static const cli_option opts[] = {
//         {"--limit", .kind = CLI_INT, .out = &limit, .min = 0, .max = INT32_MAX, .metavar = "N",
//          .help = "trace only the first N examples", .def = "all"},
//         {0}};
//     static const cli_spec spec = {"trace", opts, pos, .summary = "..."};
//     int rc = cli_parse(&spec, argc, argv);
//     if (rc >= 0) return rc;      // --help / --version printed (0) or a usage error (2)
//
// Conventions it enforces: an error is one line starting "probelab: <command>: " (cli_error),
// exit status 2 for usage errors, 1 for failures, 130 after Ctrl-C; `--` ends the options;
// `--name=value` and `--name value` are the same; unknown options are named in the error.
#ifndef PL_CLI_OPTS_H
#define PL_CLI_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_INTERRUPTED = 130 };

typedef enum {
    CLI_FLAG,     // out: bool*; takes no value
    CLI_STRING,   // out: const char ** (points into argv); an empty value is refused unless .allow_empty
    CLI_INT,      // out: int64_t*; an integer in [min, max]
    CLI_FLOAT,    // out: double*; a finite number in [min, max]
    CLI_STRINGS,  // out: cli_strings*; repeatable, each use adds one value
    CLI_ENUM,     // out: int*; the index of the value in .choices (NULL-terminated)
    CLI_CUSTOM,   // out: passed to .parse(value, out), which returns -1 with pl_fail set on a bad value
} cli_kind;

#define CLI_MAX_REPEAT 32
typedef struct {
    const char *v[CLI_MAX_REPEAT];
    int n;
} cli_strings;

typedef struct {
    const char *name;        // "--temperature" or "-o"
    cli_kind kind;
    void *out;
    const char *metavar;     // "T" (not for flags)
    const char *help;        // one line; the range, the choices and the aliases are appended
    const char *def;         // the default as shown in --help (NULL: none shown)
    const char *aliases[3];  // old or short spellings that mean the same option
    double min, max;         // CLI_INT / CLI_FLOAT (both 0: any value of the type)
    const char *const *choices;             // CLI_ENUM
    int (*parse)(const char *value, void *out);  // CLI_CUSTOM
    bool required;
    bool allow_empty;        // CLI_STRING / CLI_STRINGS
    bool *seen;              // if set: true once the option is given
} cli_option;

typedef struct {
    const char *name;   // "MODEL"
    const char **out;
    const char *help;
    bool required;
} cli_positional;

typedef struct {
    const char *command;            // "generate", "probe train": the error prefix and the usage line
    const cli_option *options;      // terminated by an entry with name == NULL
    const cli_positional *positionals;  // terminated by name == NULL (may be NULL)
    const char *summary;            // paragraph(s) after the usage line
    const char *usage;              // what follows "usage: probelab <command> " (default: generated)
    const char *epilog;             // text after the option list
} cli_spec;

// The sampling options `generate` and `trace` share (one name and one range each); the arguments
// are the int64_t / double / cli_strings variables they fill.
#define CLI_SAMPLING_OPTIONS(max_new, temperature, top_k, top_p, seed, stops)                                      \
    {"--max-new", CLI_INT, &max_new, "N", "tokens to generate at most", "64", .min = 1, .max = 1 << 20},         \
    {"--temperature", CLI_FLOAT, &temperature, "T", "sampling temperature; 0 = greedy", "0", {"--temp"}, .min = 0, \
     .max = 100},                                                                                                \
    {"--top-k", CLI_INT, &top_k, "K", "sample among the K most likely tokens; 0 = off", "0", .min = 0,            \
     .max = INT32_MAX},                                                                                          \
    {"--top-p", CLI_FLOAT, &top_p, "P", "nucleus sampling mass; 1 = off", "1", .min = 0, .max = 1},               \
    {"--seed", CLI_INT, &seed, "S", "random seed of the sampler", "42", .min = 0, .max = (double)INT64_MAX},      \
    {"--stop", CLI_STRINGS, &stops, "STR", .help = "stop when the generated text ends with STR"}

// --model-id N, one name and one range in every command that reads runs (export, runs, probe,
// precot, lens, plot); var is an int64_t (0 = not given: the store's only model).
#define CLI_MODEL_ID_OPTION(var)                                                                               \
    {"--model-id", CLI_INT, &var, "N", "runs of model N (as `probelab runs S.db --models` lists them; needed " \
     "when the store holds several)", .min = 1, .max = (double)INT32_MAX}

// Parse argv[1..argc-1] (argv[0] is the command's name). Returns -1 when the command should go on,
// 0 after printing --help or --version, 2 after a usage error (printed, one line).
int cli_parse(const cli_spec *spec, int argc, char **argv);
// Print the generated help of a command.
void cli_help(const cli_spec *spec, FILE *out);

// A command made of subcommands (`probe train|apply|...`): runs the one named by argv[1] with
// argv shifted by one, or prints the list (--help, --version, errors as cli_parse does).
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_subcommand;
int cli_dispatch(const char *command, const char *summary, const cli_subcommand *subs, int argc, char **argv);

// "probelab <version> (<build type>)": what --version prints.
void cli_print_version(FILE *out);

// The command whose options were parsed last (the prefix of cli_error).
const char *cli_command(void);
// Print "probelab: <command>: <printf message>" to stderr; return 1 (a failure).
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Same, exit status 2 (a usage error found after parsing, e.g. two options that exclude each other).
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Print the library's last message (pl_errmsg) as a cli_error; return 1.
int cli_fail(void);

// Print a JSON value on one line to stdout and release it (steals the reference). Returns 0, or
// 1 with an error printed if the value could not be built (NULL) or serialised.
int cli_print_json(json_t *value);
// A JSON string of arbitrary bytes: valid UTF-8 as is, each invalid byte as U+FFFD.
json_t *cli_json_text(const char *s, size_t len);
// A JSON number, or null when not finite.
json_t *cli_json_real(double v);
// A float as JSON with the float's own 7 significant digits (1e-05, not 9.99999975e-06); null if not finite.
json_t *cli_json_float(float v);

#endif
