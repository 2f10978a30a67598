// The built-in reasoning tasks: seeded generators for arith, max, mc and vars (memqa lives in
// memqa.c), the task table, and the small helpers of tasks_internal.h.
#include "datasets/tasks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks_internal.h"
#include "runtime/base/error.h"

// ---- helpers -------------------------------------------------------------------------------

pl_rng pl_rng_for(const char *task, uint64_t seed, int index) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a of the task name, so tasks do not share streams
    for (const char *p = task; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    pl_rng r = pl_rng_state(seed ^ h);
    r.state = pl_rng_next(&r) ^ ((uint64_t)index * 0xd1b54a32d192ed03ULL);
    pl_rng_next(&r);
    return r;
}

static void sb_reserve(pl_sb *s, size_t extra) {
    if (s->len + extra + 1 <= s->cap) return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + extra + 1) cap *= 2;
    char *grown = realloc(s->buf, cap);
    if (!grown) abort();  // out of memory on a few hundred bytes: nothing sensible to do
    s->buf = grown;
    s->cap = cap;
}

void pl_sb_putc(pl_sb *s, char c) {
    sb_reserve(s, 1);
    s->buf[s->len++] = c;
    s->buf[s->len] = '\0';
}

void pl_sb_puts(pl_sb *s, const char *text) {
    size_t n = strlen(text);
    sb_reserve(s, n);
    memcpy(s->buf + s->len, text, n + 1);
    s->len += n;
}

void pl_sb_printf(pl_sb *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    sb_reserve(s, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

char *pl_sb_take(pl_sb *s) {
    char *out = s->buf ? s->buf : pl_strdup0("");
    s->buf = NULL;
    s->len = s->cap = 0;
    return out;
}

char *pl_strdup0(const char *s) {
    char *out = strdup(s ? s : "");
    if (!out) abort();
    return out;
}

pl_example *pl_dataset_push(pl_dataset *d) {
    if ((d->n & (d->n - 1)) == 0) {  // grow at powers of two
        size_t cap = d->n ? (size_t)d->n * 2 : 16;
        pl_example *grown = realloc(d->items, cap * sizeof *grown);
        if (!grown) return NULL;
        d->items = grown;
    }
    pl_example *e = &d->items[d->n++];
    memset(e, 0, sizeof *e);
    return e;
}

void pl_example_free_fields(pl_example *e) {
    if (!e) return;
    free(e->id);
    free(e->task);
    free(e->prompt);
    free(e->cot);
    free(e->answer);
    for (int i = 0; i < e->n_options; i++) free(e->options[i]);
    free(e->options);
    free(e->meta_json);
    free(e->answer_prefix);
    for (int i = 0; i < e->n_stop; i++) free(e->stop[i]);
    free(e->stop);
    memset(e, 0, sizeof *e);
}

void pl_dataset_free(pl_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) pl_example_free_fields(&d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

char *pl_example_full_text(const pl_example *e) {
    const char *const *stops;
    pl_example_stops(e, &stops);
    pl_sb s = {0};
    pl_sb_puts(&s, e->prompt ? e->prompt : "");
    pl_sb_puts(&s, e->cot ? e->cot : "");
    pl_sb_puts(&s, pl_example_answer_prefix(e));
    pl_sb_puts(&s, e->answer ? e->answer : "");
    pl_sb_puts(&s, stops[0]);
    return pl_sb_take(&s);
}

const char *pl_example_answer_prefix(const pl_example *e) {
    if (e->answer_prefix && e->answer_prefix[0]) return e->answer_prefix;
    const pl_task_info *t = pl_task_find(e->task);
    return t && t->answer_prefix ? t->answer_prefix : PL_ANSWER_PREFIX;
}

int pl_example_stops(const pl_example *e, const char *const **stops) {
    static const char *const default_stop[] = {"\n"};
    if (e->n_stop > 0) {
        *stops = (const char *const *)e->stop;
        return e->n_stop;
    }
    const pl_task_info *t = pl_task_find(e->task);
    *stops = t && t->stop ? &t->stop : default_stop;
    return 1;
}

// ---- generators ----------------------------------------------------------------------------
// Each fills prompt, cot, answer (and options, meta) of e from r at difficulty d.

static int apply_op(int a, char op, int b) {  // mod-10 arithmetic, result in 0..9
    int v = op == '+' ? a + b : op == '-' ? a - b : a * b;
    return ((v % 10) + 10) % 10;
}

// Left-to-right chain of d operations: "Q:3+4*2=?" -> "|3+4=7|7*2=4|" -> "4".
static void gen_arith(pl_example *e, pl_rng *r, int d) {
    static const char ops[] = "+-*";
    pl_sb prompt = {0}, cot = {0};
    int value = pl_rng_below(r, 10);
    pl_sb_printf(&prompt, "Q:%d", value);
    pl_sb_putc(&cot, PL_COT_STEP_SEP);
    for (int i = 0; i < d; i++) {
        char op = ops[pl_rng_below(r, 3)];
        int operand = pl_rng_below(r, 10);
        int next = apply_op(value, op, operand);
        pl_sb_printf(&prompt, "%c%d", op, operand);
        pl_sb_printf(&cot, "%d%c%d=%d%c", value, op, operand, next, PL_COT_STEP_SEP);
        value = next;
    }
    pl_sb_puts(&prompt, "=?");
    e->prompt = pl_sb_take(&prompt);
    e->cot = pl_sb_take(&cot);
    char buf[8];
    snprintf(buf, sizeof buf, "%d", value);
    e->answer = pl_strdup0(buf);
    pl_sb meta = {0};
    pl_sb_printf(&meta, "{\"n_steps\":%d}", d);
    e->meta_json = pl_sb_take(&meta);
}

// Running maximum of d+1 digits: "Q:max(3,8,5)?" -> "|3<8|8>5|" -> "8".
static void gen_max(pl_example *e, pl_rng *r, int d) {
    pl_sb prompt = {0}, cot = {0};
    int values[16];
    for (int i = 0; i <= d; i++) values[i] = pl_rng_below(r, 10);
    pl_sb_puts(&prompt, "Q:max(");
    for (int i = 0; i <= d; i++) pl_sb_printf(&prompt, i ? ",%d" : "%d", values[i]);
    pl_sb_puts(&prompt, ")?");
    int best = values[0];
    pl_sb_putc(&cot, PL_COT_STEP_SEP);
    for (int i = 1; i <= d; i++) {
        char rel = best < values[i] ? '<' : best > values[i] ? '>' : '=';
        pl_sb_printf(&cot, "%d%c%d%c", best, rel, values[i], PL_COT_STEP_SEP);
        if (values[i] > best) best = values[i];
    }
    e->prompt = pl_sb_take(&prompt);
    e->cot = pl_sb_take(&cot);
    char buf[8];
    snprintf(buf, sizeof buf, "%d", best);
    e->answer = pl_strdup0(buf);
    pl_sb meta = {0};
    pl_sb_printf(&meta, "{\"n_items\":%d}", d + 1);
    e->meta_json = pl_sb_take(&meta);
}

// Multiple choice: which option is largest / smallest. "Q:max?A=3,B=8,C=5" -> "|A3<B8|B8>C5|" -> "B".
// Difficulty 1..6: 2, 3, 4 options with one-digit values, then 2, 3, 4 with two-digit values.
static void gen_mc(pl_example *e, pl_rng *r, int d) {
    int n_opt = 2 + (d - 1) % 3;
    int limit = d >= 4 ? 100 : 10, low = d >= 4 ? 10 : 0;
    bool want_max = pl_rng_below(r, 2) == 0;
    int values[4];
    for (int i = 0; i < n_opt; i++) {  // distinct values so the answer is unique
        bool dup;
        do {
            values[i] = low + pl_rng_below(r, limit - low);
            dup = false;
            for (int j = 0; j < i; j++) dup |= values[j] == values[i];
        } while (dup);
    }
    pl_sb prompt = {0}, cot = {0};
    pl_sb_printf(&prompt, "Q:%s?", want_max ? "max" : "min");
    for (int i = 0; i < n_opt; i++) pl_sb_printf(&prompt, i ? ",%c=%d" : "%c=%d", 'A' + i, values[i]);
    int best = 0;
    pl_sb_putc(&cot, PL_COT_STEP_SEP);
    for (int i = 1; i < n_opt; i++) {
        char rel = values[best] < values[i] ? '<' : '>';
        pl_sb_printf(&cot, "%c%d%c%c%d%c", 'A' + best, values[best], rel, 'A' + i, values[i], PL_COT_STEP_SEP);
        if (want_max ? values[i] > values[best] : values[i] < values[best]) best = i;
    }
    e->prompt = pl_sb_take(&prompt);
    e->cot = pl_sb_take(&cot);
    char letter[2] = {(char)('A' + best), '\0'};
    e->answer = pl_strdup0(letter);
    e->n_options = n_opt;
    e->options = calloc((size_t)n_opt, sizeof *e->options);
    if (!e->options) abort();
    for (int i = 0; i < n_opt; i++) {
        letter[0] = (char)('A' + i);
        e->options[i] = pl_strdup0(letter);
    }
    pl_sb meta = {0};
    pl_sb_printf(&meta, "{\"kind\":\"%s\",\"values\":[", want_max ? "max" : "min");
    for (int i = 0; i < n_opt; i++) pl_sb_printf(&meta, i ? ",%d" : "%d", values[i]);
    pl_sb_puts(&meta, "]}");
    e->meta_json = pl_sb_take(&meta);
}

// Variable binding: a chain of d derived variables hidden among (d+1)/2 distractor assignments.
// "Q:a=3;b=a+4;c=2;d=b*c;?d" -> "|b=7|d=4|" -> "4" (only derived variables on the query's path
// get a step, in prompt order).
static void gen_vars(pl_example *e, pl_rng *r, int d) {
    static const char ops[] = "+-*";
    char names[26];
    for (int i = 0; i < 26; i++) names[i] = (char)('a' + i);
    for (int i = 25; i > 0; i--) {  // Fisher-Yates: variable names in random order
        int j = pl_rng_below(r, i + 1);
        char t = names[i];
        names[i] = names[j];
        names[j] = t;
    }
    int n_distract = (d + 1) / 2, n_slots = d + 1 + n_distract;
    bool is_distractor[32] = {0};
    for (int placed = 0; placed < n_distract;) {
        int pos = pl_rng_below(r, n_slots);
        if (!is_distractor[pos]) is_distractor[pos] = true, placed++;
    }
    int value[26] = {0};       // by name index
    char defined[32];          // names in definition order
    char chain[16];            // the chain's names in order
    int n_defined = 0, n_chain = 0, next_name = 0;
    pl_sb prompt = {0}, cot = {0};
    pl_sb_puts(&prompt, "Q:");
    pl_sb_putc(&cot, PL_COT_STEP_SEP);
    for (int slot = 0; slot < n_slots; slot++) {
        char name = names[next_name++];
        int v;
        if (is_distractor[slot] || n_chain == 0) {
            bool derived = is_distractor[slot] && n_defined > 0 && pl_rng_below(r, 2);
            if (derived) {
                char src = defined[pl_rng_below(r, n_defined)];
                char op = ops[pl_rng_below(r, 3)];
                int k = pl_rng_below(r, 10);
                v = apply_op(value[src - 'a'], op, k);
                pl_sb_printf(&prompt, "%c=%c%c%d;", name, src, op, k);
            } else {
                v = pl_rng_below(r, 10);
                pl_sb_printf(&prompt, "%c=%d;", name, v);
            }
            if (!is_distractor[slot]) chain[n_chain++] = name;  // the chain's literal start
        } else {
            char prev = chain[n_chain - 1];
            char op = ops[pl_rng_below(r, 3)];
            if (n_chain >= 2 && pl_rng_below(r, 3) == 0) {  // second operand an earlier chain var
                char other = chain[pl_rng_below(r, n_chain - 1)];
                v = apply_op(value[prev - 'a'], op, value[other - 'a']);
                pl_sb_printf(&prompt, "%c=%c%c%c;", name, prev, op, other);
            } else {
                int k = pl_rng_below(r, 10);
                v = apply_op(value[prev - 'a'], op, k);
                pl_sb_printf(&prompt, "%c=%c%c%d;", name, prev, op, k);
            }
            chain[n_chain++] = name;
            pl_sb_printf(&cot, "%c=%d%c", name, v, PL_COT_STEP_SEP);
        }
        value[name - 'a'] = v;
        defined[n_defined++] = name;
    }
    char query = chain[n_chain - 1];
    pl_sb_printf(&prompt, "?%c", query);
    e->prompt = pl_sb_take(&prompt);
    e->cot = pl_sb_take(&cot);
    char buf[8];
    snprintf(buf, sizeof buf, "%d", value[query - 'a']);
    e->answer = pl_strdup0(buf);
    pl_sb meta = {0};
    pl_sb_printf(&meta, "{\"query\":\"%c\",\"hops\":%d,\"distractors\":%d}", query, d, n_distract);
    e->meta_json = pl_sb_take(&meta);
}

// ---- the task table ------------------------------------------------------------------------

typedef void (*generator_fn)(pl_example *e, pl_rng *r, int difficulty);

static const pl_task_info task_table[] = {
    {"arith", "mod-10 arithmetic chain, evaluated left to right: Q:3+4*2=?|3+4=7|7*2=4|A:4",
     "number of operations", 1, 8, PL_ANSWER_PREFIX, "\n"},
    {"max", "largest digit of a list by running pairwise comparisons: Q:max(3,8,5)?|3<8|8>5|A:8",
     "list length - 1 (number of comparisons)", 1, 8, PL_ANSWER_PREFIX, "\n"},
    {"mc", "multiple choice A-D, largest/smallest option: Q:max?A=3,B=8,C=5|A3<B8|B8>C5|A:B",
     "1-3: 2-4 options with one-digit values; 4-6: 2-4 options with two-digit values", 1, 6, PL_ANSWER_PREFIX, "\n"},
    {"vars", "multi-hop variable binding mod 10 with distractors: Q:a=3;b=a+4;c=2;d=b*c;?d|b=7|d=4|A:4",
     "hops (derived variables on the query's path); distractors = (difficulty+1)/2", 1, 5, PL_ANSWER_PREFIX, "\n"},
    {"memqa", "multi-session dialogue memory QA in LoCoMo's layout (question -> answer, with evidence)",
     "sessions = difficulty+1, filler turns per session = difficulty, multi-hop questions need up to min(3,difficulty) facts",
     1, 5, PL_ANSWER_PREFIX, "\n"},
};
static const generator_fn task_generators[] = {gen_arith, gen_max, gen_mc, gen_vars, NULL};

const pl_task_info *pl_task_list(int *n_tasks) {
    if (n_tasks) *n_tasks = (int)(sizeof task_table / sizeof task_table[0]);
    return task_table;
}

const pl_task_info *pl_task_find(const char *name) {
    for (size_t i = 0; i < sizeof task_table / sizeof task_table[0]; i++)
        if (name && strcmp(task_table[i].name, name) == 0) return &task_table[i];
    return NULL;
}

int pl_task_generate(pl_dataset *out, const char *name, int n, uint64_t seed, int diff_lo, int diff_hi) {
    memset(out, 0, sizeof *out);
    const pl_task_info *info = pl_task_find(name);
    if (!info) return pl_fail("unknown task '%s' (probelab tasks list shows the tasks)", name ? name : "(null)");
    if (n < 0) return pl_fail("%s: the number of examples must be >= 0 (got %d)", name, n);
    if (diff_lo > diff_hi || diff_lo < info->difficulty_min || diff_hi > info->difficulty_max)
        return pl_fail("%s: difficulty %d:%d outside %d:%d", name, diff_lo, diff_hi, info->difficulty_min,
                       info->difficulty_max);
    if (strcmp(name, "memqa") == 0) {
        json_t *samples = pl_memqa_build(n, seed, diff_lo, diff_hi);
        if (!samples) return pl_fail("memqa: out of memory");
        int n_skipped = 0;
        pl_locomo_to_examples(out, samples, "memqa", &n_skipped);
        json_decref(samples);
        return 0;
    }
    generator_fn gen = task_generators[info - task_table];
    for (int i = 0; i < n; i++) {
        int d = diff_lo + i % (diff_hi - diff_lo + 1);
        pl_rng r = pl_rng_for(name, seed, i);
        pl_example *e = pl_dataset_push(out);
        if (!e) {
            pl_dataset_free(out);
            return pl_fail("%s: out of memory", name);
        }
        char id[64];
        snprintf(id, sizeof id, "%s-%06d", name, i);
        e->id = pl_strdup0(id);
        e->task = pl_strdup0(name);
        e->difficulty = d;
        gen(e, &r, d);
    }
    return 0;
}
