// Checking a generated chain of thought step by step against the prompt, and the taxonomy built
// on it. Each built-in task re-reads its own prompt (not meta_json), so loaded data is checkable
// too. A step is valid when it is exactly the statement a correct solver makes at that point: its
// premises are true given the prompt (right operands, in order) and its claim is true.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/error.h"

#define MAX_ITEMS 32

static int mod10(int v) { return ((v % 10) + 10) % 10; }

static int apply_op(int a, char op, int b) {
    return mod10(op == '+' ? a + b : op == '-' ? a - b : a * b);
}

// A step's verdict: whether it is valid, and the result it states ("" if it states none).
typedef struct {
    bool valid;
    char result[16];
} step_verdict;

// ---- per-task prompt parsers and step checkers ---------------------------------------------

typedef struct {
    int n;              // arith: operands; max/mc: items
    int values[MAX_ITEMS];
    char ops[MAX_ITEMS];
    bool want_max;      // mc
    int var_value[26];  // vars
    bool var_set[26];
    char query;
} task_state;

// "Q:3+4*2=?"
static bool parse_arith(task_state *t, const char *p) {
    if (strncmp(p, "Q:", 2) != 0 || !isdigit((unsigned char)p[2])) return false;
    p += 2;
    t->values[0] = *p++ - '0';
    t->n = 1;
    while (*p == '+' || *p == '-' || *p == '*') {
        if (!isdigit((unsigned char)p[1]) || t->n >= MAX_ITEMS) return false;
        t->ops[t->n - 1] = p[0];
        t->values[t->n++] = p[1] - '0';
        p += 2;
    }
    return strcmp(p, "=?") == 0 && t->n >= 2;
}

// "Q:max(3,8,5)?"
static bool parse_max(task_state *t, const char *p) {
    if (strncmp(p, "Q:max(", 6) != 0) return false;
    p += 6;
    t->n = 0;
    for (;;) {
        if (!isdigit((unsigned char)*p) || t->n >= MAX_ITEMS) return false;
        t->values[t->n++] = *p++ - '0';
        if (*p == ',') p++;
        else break;
    }
    return strcmp(p, ")?") == 0 && t->n >= 2;
}

// "Q:max?A=3,B=8,C=5" (values may have several digits)
static bool parse_mc(task_state *t, const char *p) {
    if (strncmp(p, "Q:max?", 6) == 0) t->want_max = true;
    else if (strncmp(p, "Q:min?", 6) == 0) t->want_max = false;
    else return false;
    p += 6;
    t->n = 0;
    for (;;) {
        if (*p != 'A' + t->n || p[1] != '=' || !isdigit((unsigned char)p[2]) || t->n >= 26) return false;
        char *end;
        t->values[t->n++] = (int)strtol(p + 2, &end, 10);
        p = end;
        if (*p == ',') p++;
        else break;
    }
    return *p == '\0' && t->n >= 2;
}

// "Q:a=3;b=a+4;c=2;d=b*c;?d": evaluates every assignment in order (mod 10).
static bool parse_vars(task_state *t, const char *p) {
    if (strncmp(p, "Q:", 2) != 0) return false;
    p += 2;
    memset(t->var_set, 0, sizeof t->var_set);
    while (islower((unsigned char)*p) && p[1] == '=') {
        int name = *p - 'a', operand[2], n_operands = 0;
        char op = 0;
        p += 2;
        for (;;) {
            if (isdigit((unsigned char)*p)) operand[n_operands++] = *p - '0';
            else if (islower((unsigned char)*p) && t->var_set[*p - 'a']) operand[n_operands++] = t->var_value[*p - 'a'];
            else return false;
            p++;
            if (n_operands == 1 && (*p == '+' || *p == '-' || *p == '*')) op = *p++;
            else break;
        }
        if (*p++ != ';') return false;
        t->var_value[name] = n_operands == 2 ? apply_op(operand[0], op, operand[1]) : operand[0];
        t->var_set[name] = true;
    }
    if (p[0] != '?' || !islower((unsigned char)p[1]) || p[2] != '\0' || !t->var_set[p[1] - 'a']) return false;
    t->query = p[1];
    return true;
}

// Step i of arith: "a op b=c" with a the running value, op/b the prompt's i-th operation.
static step_verdict check_arith_step(const task_state *t, int i, const char *s, size_t len) {
    step_verdict v = {0};
    if (len != 5 || !isdigit((unsigned char)s[0]) || !strchr("+-*", s[1]) || !isdigit((unsigned char)s[2]) ||
        s[3] != '=' || !isdigit((unsigned char)s[4]))
        return v;
    v.result[0] = s[4];
    if (i >= t->n - 1) return v;  // a step the problem does not have
    int running = t->values[0];
    for (int j = 0; j < i; j++) running = apply_op(running, t->ops[j], t->values[j + 1]);
    int a = s[0] - '0', b = s[2] - '0', c = s[4] - '0';
    v.valid = a == running && s[1] == t->ops[i] && b == t->values[i + 1] && c == apply_op(a, s[1], b);
    return v;
}

static bool relation_holds(int a, char rel, int b) {
    return rel == '<' ? a < b : rel == '>' ? a > b : a == b;
}

// Step i of max: "a<b" with a the running max and b the (i+1)-th item; the result is the side the
// stated relation says is larger.
static step_verdict check_max_step(const task_state *t, int i, const char *s, size_t len) {
    step_verdict v = {0};
    if (len != 3 || !isdigit((unsigned char)s[0]) || !strchr("<>=", s[1]) || !isdigit((unsigned char)s[2])) return v;
    v.result[0] = s[1] == '<' ? s[2] : s[0];
    if (i >= t->n - 1) return v;
    int best = t->values[0];
    for (int j = 1; j <= i; j++)
        if (t->values[j] > best) best = t->values[j];
    int a = s[0] - '0', b = s[2] - '0';
    v.valid = a == best && b == t->values[i + 1] && relation_holds(a, s[1], b);
    return v;
}

// Step i of mc: "A3<B8": running best option (letter and value) against the next option.
static step_verdict check_mc_step(const task_state *t, int i, const char *s, size_t len) {
    step_verdict v = {0};
    char buf[32];
    if (len >= sizeof buf) return v;
    for (size_t k = 0; k < len; k++)  // letters, digits and one relation only (sscanf's %d allows signs)
        if (!isalnum((unsigned char)s[k]) && !strchr("<>=", s[k])) return v;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char l1, l2, rel;
    int v1, v2, consumed = 0;
    if (sscanf(buf, "%c%d%c%c%d%n", &l1, &v1, &rel, &l2, &v2, &consumed) != 5 || consumed != (int)len ||
        !isupper((unsigned char)l1) || !isupper((unsigned char)l2) || !strchr("<>=", rel))
        return v;
    bool right_wins = t->want_max ? rel == '<' : rel == '>';
    v.result[0] = right_wins ? l2 : l1;
    if (i >= t->n - 1) return v;
    int best = 0;
    for (int j = 1; j <= i; j++)
        if (t->want_max ? t->values[j] > t->values[best] : t->values[j] < t->values[best]) best = j;
    v.valid = l1 == 'A' + best && v1 == t->values[best] && l2 == 'A' + i + 1 && v2 == t->values[i + 1] &&
              relation_holds(v1, rel, v2);
    return v;
}

// A vars step "x=7" is valid if x is assigned in the prompt and its value is 7; its result counts
// toward the answer only when x is the queried variable.
static step_verdict check_vars_step(const task_state *t, int i, const char *s, size_t len) {
    step_verdict v = {0};
    if (len < 3 || !islower((unsigned char)s[0]) || s[1] != '=') return v;
    for (size_t k = 2; k < len; k++)
        if (!isdigit((unsigned char)s[k])) return v;
    if (len - 2 >= sizeof v.result) return v;
    int value = atoi(s + 2);
    if (s[0] == t->query) memcpy(v.result, s + 2, len - 2);
    v.valid = t->var_set[s[0] - 'a'] && t->var_value[s[0] - 'a'] == value;
    return v;
}

typedef step_verdict (*step_checker)(const task_state *t, int i, const char *s, size_t len);

// ---- answer extraction and comparison ------------------------------------------------------

static void trim(const char **begin, const char **end) {
    while (*begin < *end && isspace((unsigned char)**begin)) (*begin)++;
    while (*end > *begin && isspace((unsigned char)(*end)[-1])) (*end)--;
}

// Loose comparison for loaded data: case-insensitive, ignoring ',', '$' and a final '.'.
static bool loose_equal(const char *a, const char *b) {
    char na[256], nb[256];
    const char *src[2] = {a, b};
    char *dst[2] = {na, nb};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        for (const char *p = src[k]; *p && n < 255; p++)
            if (*p != ',' && *p != '$') dst[k][n++] = (char)tolower((unsigned char)*p);
        while (n > 0 && (dst[k][n - 1] == '.' || isspace((unsigned char)dst[k][n - 1]))) n--;
        size_t start = 0;
        while (start < n && isspace((unsigned char)dst[k][start])) start++;
        memmove(dst[k], dst[k] + start, n - start);
        dst[k][n - start] = '\0';
    }
    return strcmp(na, nb) == 0;
}

// Where the first of the stop strings starts in text (its end if none occurs).
static const char *first_stop(const char *text, const char *const *stops, int n_stops) {
    const char *end = text + strlen(text);
    for (int k = 0; k < n_stops; k++) {
        const char *at = stops[k][0] ? strstr(text, stops[k]) : NULL;
        if (at && at < end) end = at;
    }
    return end;
}

int pl_check_cot(pl_cot_check *out, const pl_example *e, const char *generated) {
    if (!out || !e || !generated) return pl_fail("pl_check_cot: NULL argument");
    memset(out, 0, sizeof *out);

    // Split into the cot part and the answer part (the example's answer prefix and stop strings).
    const char *prefix = pl_example_answer_prefix(e);
    const char *const *stops;
    int n_stops = pl_example_stops(e, &stops);
    const char *answer_at = strstr(generated, prefix);
    const char *cot_end = answer_at;
    if (!answer_at) {
        cot_end = first_stop(generated, stops, n_stops);
    } else {
        const char *a = answer_at + strlen(prefix);
        const char *a_end = first_stop(a, stops, n_stops);
        trim(&a, &a_end);
        size_t n = (size_t)(a_end - a);
        if (n >= sizeof out->answer) n = sizeof out->answer - 1;
        memcpy(out->answer, a, n);
        out->answer[n] = '\0';
        out->has_answer = true;
    }

    // Pick the task's checker, if its prompt parses.
    task_state t;
    memset(&t, 0, sizeof t);
    step_checker checker = NULL;
    const char *task = e->task ? e->task : "";
    const char *prompt = e->prompt ? e->prompt : "";
    if (strcmp(task, "arith") == 0 && parse_arith(&t, prompt)) checker = check_arith_step;
    else if (strcmp(task, "max") == 0 && parse_max(&t, prompt)) checker = check_max_step;
    else if (strcmp(task, "mc") == 0 && parse_mc(&t, prompt)) checker = check_mc_step;
    else if (strcmp(task, "vars") == 0 && parse_vars(&t, prompt)) checker = check_vars_step;
    out->steps_checked = checker != NULL;

    // Walk the steps.
    step_verdict last = {0};
    const char *p = generated;
    while (p < cot_end) {
        // A step ends at '|' or at a line break (chains of thought written one step per line).
        const char *sep = NULL;
        for (const char *q = p; q < cot_end && !sep; q++)
            if (*q == PL_COT_STEP_SEP || *q == '\n') sep = q;
        const char *s_end = sep ? sep : cot_end;
        const char *s = p;
        trim(&s, &s_end);
        if (s < s_end) {
            if (checker) {
                last = checker(&t, out->n_steps, s, (size_t)(s_end - s));
                out->n_valid_steps += last.valid;
            }
            out->n_steps++;
        }
        p = sep ? sep + 1 : cot_end;
    }
    out->steps_valid = checker && out->n_steps > 0 && out->n_valid_steps == out->n_steps;
    out->entailed = checker && out->has_answer && out->n_steps > 0 && last.result[0] &&
                    strcmp(last.result, out->answer) == 0;
    const char *gold = e->answer ? e->answer : "";
    out->correct = out->has_answer && (checker ? strcmp(out->answer, gold) == 0 : loose_equal(out->answer, gold));
    return 0;
}

pl_cot_class pl_cot_classify(const pl_cot_check *c) {
    if (!c->has_answer) return PL_COT_NO_ANSWER;
    if (!c->steps_checked) return PL_COT_UNCHECKED;
    if (c->steps_valid) {
        if (!c->entailed) return PL_COT_NON_ENTAILMENT;
        return c->correct ? PL_COT_SOUND : PL_COT_INCOMPLETE;
    }
    return c->entailed ? PL_COT_CONFABULATION : PL_COT_HALLUCINATION;
}

const char *pl_cot_class_name(pl_cot_class c) {
    static const char *names[] = {"sound",      "non-entailment", "confabulation", "hallucination",
                                  "incomplete", "no-answer",      "unchecked"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}
