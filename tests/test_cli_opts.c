// The option parser every subcommand shares (cli/cli_opts.h): each kind of option, ranges (finite,
// in range, no wrap-around), aliases, `--opt=value`, `--` ending the options, positionals, unknown
// options, missing values and required options, --help / --version, and the error line's prefix.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_opts.h"
#include "kernels/kernels.h"
#include "tests/support/test_support.h"
#include "runtime/base/error.h"

// The variables of the test command, reset before each parse.
static bool flag;
static const char *str, *pos_a, *pos_b;
static int64_t num;
static double real;
static cli_strings many;
static int choice;
static bool num_seen;

static int parse_range(const char *value, void *out) {
    int64_t *lohi = out;
    long long lo, hi;
    char extra;
    if (sscanf(value, "%lld:%lld%c", &lo, &hi, &extra) != 2 || lo > hi) return pl_fail("expected LO:HI with LO <= HI");
    lohi[0] = lo, lohi[1] = hi;
    return 0;
}

static const char *const colours[] = {"light", "dark", NULL};
static int64_t custom_pair[2];

static const cli_option opts[] = {
    {"--flag", CLI_FLAG, &flag, .help = "a flag"},
    {"--str", CLI_STRING, &str, "S", .help = "a string", .aliases = {"--old-str", "-s"}},
    {"--num", CLI_INT, &num, "N", .help = "an int", .min = -3, .max = 4000000000.0, .seen = &num_seen},
    {"--real", CLI_FLOAT, &real, "X", .help = "a float", .min = 0, .max = 1},
    {"--many", CLI_STRINGS, &many, "M", .help = "repeatable"},
    {"--theme", CLI_ENUM, &choice, "T", .help = "an enum", .choices = colours},
    {"--range", CLI_CUSTOM, custom_pair, "LO:HI", .help = "custom", .parse = parse_range},
    {0}};
static const cli_positional pos[] = {{"A", &pos_a, "first", true}, {"B", &pos_b, "second", false}, {0}};
static const cli_spec spec = {"testcmd", opts, pos, .summary = "A test command."};

// Parse a NULL-terminated list of arguments after the command name; stderr goes to err (if given).
static int parse(char *err, size_t err_size, ...) {
    flag = false, str = pos_a = pos_b = NULL, num = 7, real = 0.5, choice = 0;
    memset(&many, 0, sizeof many);
    custom_pair[0] = custom_pair[1] = -1;
    char *argv[32];
    int argc = 0;
    argv[argc++] = "testcmd";
    va_list ap;
    va_start(ap, err_size);
    for (char *a; (a = va_arg(ap, char *));) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int rc = cli_parse(&spec, argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = err ? fread(err, 1, err_size - 1, tmp) : 0;
    if (err) err[n] = '\0';
    fclose(tmp);
    return rc;
}

static void assert_one_error_line(const char *err, const char *needle) {
    assert_true(strncmp(err, "probelab: testcmd: ", 19) == 0);
    assert_non_null(strstr(err, needle));
    const char *nl = strchr(err, '\n');
    assert_non_null(nl);
    assert_true(nl[1] == '\0');  // exactly one line
}

static void test_kinds(void **state) {
    (void)state;
    char err[512];
    assert_int_equal(parse(err, sizeof err, "a", "--flag", "--str", "x", "--num", "-3", "--real", "1", "--many", "p",
                           "--many", "q", "--theme", "dark", "--range", "2:5", "b", NULL),
                     -1);
    assert_true(flag);
    assert_string_equal(str, "x");
    assert_int_equal(num, -3);
    assert_true(num_seen);
    assert_true(real == 1.0);
    assert_int_equal(many.n, 2);
    assert_string_equal(many.v[0], "p");
    assert_string_equal(many.v[1], "q");
    assert_int_equal(choice, 1);
    assert_int_equal(custom_pair[0], 2);
    assert_int_equal(custom_pair[1], 5);
    assert_string_equal(pos_a, "a");
    assert_string_equal(pos_b, "b");
    assert_string_equal(err, "");
    // Defaults stay when an option is absent; the optional positional may be left out.
    assert_int_equal(parse(err, sizeof err, "a", NULL), -1);
    assert_int_equal(num, 7);
    assert_false(num_seen);
    assert_null(pos_b);
    // Values beyond INT32 are kept whole (no wrap-around).
    assert_int_equal(parse(err, sizeof err, "a", "--num", "4000000000", NULL), -1);
    assert_true(num == 4000000000LL);
}

static void test_equals_and_aliases(void **state) {
    (void)state;
    char err[512];
    assert_int_equal(parse(err, sizeof err, "--str=a=b", "--num=12", "--real=0.25", "pa", NULL), -1);
    assert_string_equal(str, "a=b");
    assert_int_equal(num, 12);
    assert_true(real == 0.25);
    assert_int_equal(parse(err, sizeof err, "--old-str", "y", "pa", NULL), -1);
    assert_string_equal(str, "y");
    assert_int_equal(parse(err, sizeof err, "-s", "z", "pa", NULL), -1);
    assert_string_equal(str, "z");
    // A value may start with '-' (it is the option's value, not an option).
    assert_int_equal(parse(err, sizeof err, "--str", "-x", "pa", NULL), -1);
    assert_string_equal(str, "-x");
    // An alias names itself in an error.
    assert_int_equal(parse(err, sizeof err, "--old-str", "", "pa", NULL), 2);
    assert_one_error_line(err, "--old-str ''");
}

static void test_double_dash(void **state) {
    (void)state;
    char err[512];
    assert_int_equal(parse(err, sizeof err, "--flag", "--", "-text", "--num", NULL), -1);
    assert_true(flag);
    assert_string_equal(pos_a, "-text");
    assert_string_equal(pos_b, "--num");
    assert_int_equal(num, 7);
    // Without "--", "-text" is an unknown option.
    assert_int_equal(parse(err, sizeof err, "-text", NULL), 2);
    assert_one_error_line(err, "unknown option '-text'");
}

static void test_ranges(void **state) {
    (void)state;
    char err[512];
    static const char *const bad_ints[] = {"-4", "4000000001", "1.5", "", "12x", "99999999999999999999", " 3", "0x10"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        assert_int_equal(parse(err, sizeof err, "a", "--num", bad_ints[i], NULL), 2);
        assert_one_error_line(err, "--num");
        assert_non_null(strstr(err, "[-3, 4000000000]"));
        assert_int_equal(num, 7);  // untouched
    }
    static const char *const bad_reals[] = {"nan", "inf", "-inf", "-1", "1.0001", "", "0.5x", "1e999"};
    for (size_t i = 0; i < sizeof bad_reals / sizeof bad_reals[0]; i++) {
        assert_int_equal(parse(err, sizeof err, "a", "--real", bad_reals[i], NULL), 2);
        assert_one_error_line(err, "must be a finite number in [0, 1]");
    }
    assert_int_equal(parse(err, sizeof err, "a", "--real", "0", NULL), -1);
    assert_true(real == 0.0);
}

static void test_errors(void **state) {
    (void)state;
    char err[512];
    assert_int_equal(parse(err, sizeof err, "a", "--bogus", NULL), 2);
    assert_one_error_line(err, "unknown option '--bogus'");
    assert_int_equal(parse(err, sizeof err, "a", "--bogus=3", NULL), 2);
    assert_one_error_line(err, "unknown option '--bogus'");
    assert_int_equal(parse(err, sizeof err, "a", "--num", NULL), 2);
    assert_one_error_line(err, "--num needs a value");
    assert_int_equal(parse(err, sizeof err, "a", "--flag=1", NULL), 2);
    assert_one_error_line(err, "--flag takes no value");
    assert_int_equal(parse(err, sizeof err, "a", "--str", "", NULL), 2);
    assert_one_error_line(err, "--str ''");
    assert_int_equal(parse(err, sizeof err, "a", "--theme", "blue", NULL), 2);
    assert_one_error_line(err, "expected one of light, dark");
    assert_int_equal(parse(err, sizeof err, "a", "--range", "5:2", NULL), 2);
    assert_one_error_line(err, "--range '5:2': expected LO:HI");
    assert_int_equal(parse(err, sizeof err, NULL), 2);
    assert_one_error_line(err, "missing A");
    assert_int_equal(parse(err, sizeof err, "a", "b", "c", NULL), 2);
    assert_one_error_line(err, "unexpected argument 'c'");
    // A message after parsing, and a library failure, carry the same prefix.
    char msg[64];
    FILE *tmp = tmpfile();
    int saved = dup(2);
    fflush(stderr);
    dup2(fileno(tmp), 2);
    pl_fail("x.db: no such\nfile");
    int rc = cli_fail();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(msg, 1, sizeof msg - 1, tmp);
    msg[n] = '\0';
    fclose(tmp);
    assert_int_equal(rc, 1);
    assert_string_equal(msg, "probelab: testcmd: x.db: no such file\n");
}

static int required_parse(int argc, char **argv) {
    static const char *v;
    static const cli_option req[] = {{"--need", CLI_STRING, &v, "V", .help = "required", .required = true}, {0}};
    static const cli_spec rs = {"req", req, NULL, .summary = "x"};
    return cli_parse(&rs, argc, argv);
}

static void test_required_help_version(void **state) {
    (void)state;
    char *a1[] = {"req", NULL};
    fflush(stderr);
    FILE *devnull = fopen("/dev/null", "w");
    int saved = dup(2), saved_out = dup(1);
    dup2(fileno(devnull), 2);
    dup2(fileno(devnull), 1);
    int r1 = required_parse(1, a1);
    char *a2[] = {"req", "--need", "x", NULL};
    int r2 = required_parse(3, a2);
    char *a3[] = {"req", "--help", NULL};
    int r3 = required_parse(2, a3);
    char *a4[] = {"req", "--version", NULL};
    int r4 = required_parse(2, a4);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 2);
    dup2(saved_out, 1);
    close(saved), close(saved_out);
    fclose(devnull);
    assert_int_equal(r1, 2);
    assert_int_equal(r2, -1);
    assert_int_equal(r3, 0);
    assert_int_equal(r4, 0);
    // The generated help lists every option with its range, choices and aliases.
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cli_help(&spec, mem);
    fclose(mem);
    assert_non_null(strstr(buf, "usage: probelab testcmd A [B] [options]"));
    assert_non_null(strstr(buf, "--num N"));
    assert_non_null(strstr(buf, "[-3, 4000000000]"));
    assert_non_null(strstr(buf, "(light|dark)"));
    assert_non_null(strstr(buf, "--str, -s S"));
    assert_non_null(strstr(buf, "(also --old-str)"));
    assert_non_null(strstr(buf, "--version"));
    free(buf);
}

// --version names the build type and the SIMD path the kernels take (issue 17).
static void test_version_names_simd_path(void **state) {
    char buf[256] = {0};
    FILE *f = tmpfile();
    assert_non_null(f);
    cli_print_version(f);
    rewind(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    printf("--version: %s", buf);
    assert_non_null(strstr(buf, "build)"));
    assert_non_null(strstr(buf, pl_simd_path()));
    // PL_SIMD lowers the path; a value that names no level the CPU has is ignored, visibly.
    const char *envs[] = {"PL_SIMD=portable", "PL_SIMD=avx512", "PL_SIMD="};
    const char *want[] = {"portable", "(PL_SIMD=avx512 ignored: this CPU offers portable", NULL};
    for (int i = 0; i < 3; i++) {
        char cmd[1200], *out = NULL;
        snprintf(cmd, sizeof cmd, "env %s %s --version", envs[i], test_probelab_bin());
        assert_int_equal(test_run(cmd, &out), 0);
        assert_non_null(out);
        printf("%s: %s", envs[i], out);
        if (want[i]) assert_non_null(strstr(out, want[i]));
        if (i != 1) assert_null(strstr(out, "ignored"));  // empty = unset
        free(out);
    }
}

static void test_json_text(void **state) {
    (void)state;
    // Valid UTF-8 passes through; each invalid byte becomes U+FFFD; JSON escaping is jansson's.
    json_t *j = cli_json_text("a\"\xc3\xa9\xe2\x82", 6);
    char *s = json_dumps(j, JSON_ENCODE_ANY);
    assert_string_equal(s, "\"a\\\"\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\"");
    free(s);
    json_decref(j);
    j = cli_json_float(1e-5f);
    s = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    assert_string_equal(s, "1e-5");
    free(s);
    json_decref(j);
    j = cli_json_real(NAN);
    assert_true(json_is_null(j));
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),          cmocka_unit_test(test_equals_and_aliases),
        cmocka_unit_test(test_double_dash),    cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_required_help_version),
        cmocka_unit_test(test_json_text),      cmocka_unit_test(test_version_names_simd_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
