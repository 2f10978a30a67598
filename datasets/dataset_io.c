// Reading and writing datasets: probelab JSONL, multiple-choice JSONL, GSM8K JSONL and LoCoMo JSON.
// JSONL is validated line by line ("FILE:LINE: what is wrong"); LoCoMo is loaded tolerantly, with
// a warning for everything skipped, because the real files contain quirks.
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks_internal.h"
#include "runtime/base/error.h"

int pl_format_parse(const char *name, pl_format *out) {
    static const char *names[] = {"auto", "probelab", "mc", "gsm8k", "locomo"};
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0) return *out = (pl_format)i, 0;
    return pl_fail("unknown dataset format '%s' (auto, probelab, mc, gsm8k, locomo)", name ? name : "(null)");
}

// ---- writing -------------------------------------------------------------------------------

int pl_dataset_write_jsonl(const pl_dataset *d, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return pl_fail("%s: cannot open for writing: %s", path, strerror(errno));
    for (int i = 0; i < d->n; i++) {
        const pl_example *e = &d->items[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(e->id ? e->id : ""));
        json_object_set_new(o, "task", json_string(e->task ? e->task : ""));
        json_object_set_new(o, "prompt", json_string(e->prompt ? e->prompt : ""));
        json_object_set_new(o, "cot", json_string(e->cot ? e->cot : ""));
        json_object_set_new(o, "answer", json_string(e->answer ? e->answer : ""));
        if (e->n_options > 0) {
            json_t *opts = json_array();
            for (int k = 0; k < e->n_options; k++) json_array_append_new(opts, json_string(e->options[k]));
            json_object_set_new(o, "options", opts);
        }
        json_object_set_new(o, "difficulty", json_integer(e->difficulty));
        json_t *meta = e->meta_json ? json_loads(e->meta_json, 0, NULL) : NULL;
        if (!json_is_object(meta)) json_decref(meta), meta = json_object();
        json_object_set_new(o, "meta", meta);
        if (e->answer_prefix) json_object_set_new(o, "answer_prefix", json_string(e->answer_prefix));
        if (e->n_stop > 0) {
            json_t *stop = json_array();
            for (int k = 0; k < e->n_stop; k++) json_array_append_new(stop, json_string(e->stop[k]));
            json_object_set_new(o, "stop", stop);
        }
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!line) {
            fclose(f);
            return pl_fail("%s: example %d cannot be encoded (invalid UTF-8?)", path, i);
        }
        fputs(line, f);
        fputc('\n', f);
        free(line);
    }
    if (fclose(f) != 0) return pl_fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

// ---- JSONL records -------------------------------------------------------------------------

// Error message for the current line (a record parser fills it and returns -1).
typedef struct {
    const char *path;
    int line;
    char msg[512];
} line_ctx;

static int line_fail(line_ctx *c, const char *what, const char *detail) {
    snprintf(c->msg, sizeof c->msg, "%s:%d: %s%s", c->path, c->line, what, detail ? detail : "");
    return -1;
}

// A JSON value as answer text: strings as they are, numbers printed ("42", "2.5"), else NULL.
static char *answer_text(json_t *v) {
    char buf[64];
    if (json_is_string(v)) return pl_strdup0(json_string_value(v));
    if (json_is_integer(v)) return snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), pl_strdup0(buf);
    if (json_is_real(v)) return snprintf(buf, sizeof buf, "%g", json_real_value(v)), pl_strdup0(buf);
    return NULL;
}

static int parse_probelab(pl_example *e, json_t *o, line_ctx *c) {
    json_t *prompt = json_object_get(o, "prompt"), *cot = json_object_get(o, "cot"), *id = json_object_get(o, "id"),
           *task = json_object_get(o, "task"), *diff = json_object_get(o, "difficulty"),
           *opts = json_object_get(o, "options"), *meta = json_object_get(o, "meta");
    if (!json_is_string(prompt)) return line_fail(c, "'prompt' must be a string", NULL);
    if (cot && !json_is_string(cot)) return line_fail(c, "'cot' must be a string", NULL);
    if (id && !json_is_string(id)) return line_fail(c, "'id' must be a string", NULL);
    if (task && !json_is_string(task)) return line_fail(c, "'task' must be a string", NULL);
    if (diff && !json_is_integer(diff)) return line_fail(c, "'difficulty' must be an integer", NULL);
    if (meta && !json_is_object(meta)) return line_fail(c, "'meta' must be an object", NULL);
    if (opts && !json_is_array(opts)) return line_fail(c, "'options' must be a list of strings", NULL);
    for (size_t k = 0; opts && k < json_array_size(opts); k++)
        if (!json_is_string(json_array_get(opts, k))) return line_fail(c, "'options' must be a list of strings", NULL);
    json_t *prefix = json_object_get(o, "answer_prefix"), *stop = json_object_get(o, "stop");
    if (prefix && (!json_is_string(prefix) || !json_string_length(prefix)))
        return line_fail(c, "'answer_prefix' must be a non-empty string", NULL);
    size_t n_stop = json_is_array(stop) ? json_array_size(stop) : stop ? 1 : 0;
    if (stop && (n_stop == 0 || n_stop > PL_MAX_STOP))
        return line_fail(c, "'stop' must be a non-empty string or a list of 1 to 8 of them", NULL);
    for (size_t k = 0; k < n_stop; k++) {
        json_t *v = json_is_array(stop) ? json_array_get(stop, k) : stop;
        if (!json_is_string(v) || !json_string_length(v))
            return line_fail(c, "'stop' must be a non-empty string or a list of 1 to 8 of them", NULL);
    }
    char *answer = answer_text(json_object_get(o, "answer"));
    if (!answer) return line_fail(c, "'answer' missing or not a string/number", NULL);
    e->answer = answer;
    if (prefix) e->answer_prefix = pl_strdup0(json_string_value(prefix));
    if (n_stop) {
        e->stop = calloc(n_stop, sizeof *e->stop);
        if (!e->stop) return line_fail(c, "out of memory", NULL);
        e->n_stop = (int)n_stop;
        for (size_t k = 0; k < n_stop; k++)
            e->stop[k] = pl_strdup0(json_string_value(json_is_array(stop) ? json_array_get(stop, k) : stop));
    }
    e->prompt = pl_strdup0(json_string_value(prompt));
    e->cot = pl_strdup0(cot ? json_string_value(cot) : "");
    e->task = pl_strdup0(task ? json_string_value(task) : "custom");
    if (id) e->id = pl_strdup0(json_string_value(id));
    e->difficulty = diff ? (int)json_integer_value(diff) : 0;
    if (opts && json_array_size(opts) > 0) {
        e->n_options = (int)json_array_size(opts);
        e->options = calloc((size_t)e->n_options, sizeof *e->options);
        for (int k = 0; k < e->n_options; k++) e->options[k] = pl_strdup0(json_string_value(json_array_get(opts, k)));
    }
    // Fields beyond the format's own join meta (meta's value wins on a clash), so that they become
    // run labels at trace time like meta's keys.
    static const char *const known[] = {"id", "task", "prompt", "cot", "answer", "options", "difficulty", "meta",
                                        "answer_prefix", "stop"};
    json_t *all = meta ? json_deep_copy(meta) : json_object();
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value) {
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) is_known |= strcmp(key, known[k]) == 0;
        if (!is_known && !json_object_get(all, key)) json_object_set(all, key, value);
    }
    e->meta_json = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(all);
    return e->meta_json ? 0 : line_fail(c, "out of memory", NULL);
}

// {question, options|choices, answer}: choices may be a list of strings or ARC's {text:[...], label:[...]};
// the answer a letter, a 0-based index, or the text of one option.
static int parse_mc(pl_example *e, json_t *o, line_ctx *c) {
    json_t *q = json_object_get(o, "question"), *opts = json_object_get(o, "options");
    if (!opts) opts = json_object_get(o, "choices");
    if (json_is_object(opts)) opts = json_object_get(opts, "text");
    if (!json_is_string(q)) return line_fail(c, "'question' must be a string", NULL);
    size_t n = json_array_size(opts);
    if (!json_is_array(opts) || n < 2 || n > 26) return line_fail(c, "'options'/'choices' must list 2-26 strings", NULL);
    for (size_t k = 0; k < n; k++)
        if (!json_is_string(json_array_get(opts, k))) return line_fail(c, "'options'/'choices' must list 2-26 strings", NULL);
    json_t *a = json_object_get(o, "answer");
    if (!a) a = json_object_get(o, "answerKey");
    long index = -1;
    if (json_is_integer(a)) index = (long)json_integer_value(a);
    else if (json_is_string(a)) {
        const char *s = json_string_value(a);
        if (isupper((unsigned char)s[0]) && s[1] == '\0') index = s[0] - 'A';
        else if (islower((unsigned char)s[0]) && s[1] == '\0') index = s[0] - 'a';
        else
            for (size_t k = 0; k < n; k++)
                if (strcmp(s, json_string_value(json_array_get(opts, k))) == 0) index = (long)k;
    } else return line_fail(c, "'answer' missing: need a letter or a 0-based index", NULL);
    if (index < 0 || index >= (long)n) {
        char detail[96];
        snprintf(detail, sizeof detail, " (%zu options)", n);
        return line_fail(c, "'answer' is not one of the options: need a letter or a 0-based index", detail);
    }
    pl_sb prompt = {0};
    pl_sb_printf(&prompt, "Q:%s\n", json_string_value(q));
    for (size_t k = 0; k < n; k++) pl_sb_printf(&prompt, "%c) %s\n", (char)('A' + k), json_string_value(json_array_get(opts, k)));
    e->prompt = pl_sb_take(&prompt);
    e->cot = pl_strdup0("");
    char letter[2] = {(char)('A' + index), '\0'};
    e->answer = pl_strdup0(letter);
    e->task = pl_strdup0("mcq");
    e->n_options = (int)n;
    e->options = calloc(n, sizeof *e->options);
    for (size_t k = 0; k < n; k++) letter[0] = (char)('A' + k), e->options[k] = pl_strdup0(letter);
    json_t *meta = json_object();
    json_object_set(meta, "choices", opts);
    e->meta_json = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    return 0;
}

// {question, answer: "rationale lines\n#### 42"}: cot = the rationale's lines as steps (calculator
// annotations <<...>> removed), answer = the text after "####" without thousands separators.
static int parse_gsm8k(pl_example *e, json_t *o, line_ctx *c) {
    json_t *q = json_object_get(o, "question"), *a = json_object_get(o, "answer");
    if (!json_is_string(q)) return line_fail(c, "'question' must be a string", NULL);
    if (!json_is_string(a)) return line_fail(c, "'answer' must be a string ending in '#### <answer>'", NULL);
    const char *text = json_string_value(a), *mark = strstr(text, "####");
    if (!mark) return line_fail(c, "GSM8K answer has no '#### <final answer>'", NULL);
    pl_sb final = {0}, cot = {0};
    for (const char *p = mark + 4; *p; p++)
        if (*p != ',' && !isspace((unsigned char)*p)) pl_sb_putc(&final, *p);
    if (final.len == 0) {
        free(pl_sb_take(&final));
        return line_fail(c, "GSM8K answer is empty after '####'", NULL);
    }
    pl_sb_putc(&cot, PL_COT_STEP_SEP);
    bool in_annotation = false, line_has_text = false;
    for (const char *p = text; p < mark; p++) {
        if (p[0] == '<' && p[1] == '<') in_annotation = true;
        if (!in_annotation && *p != '\n' && *p != PL_COT_STEP_SEP) pl_sb_putc(&cot, *p), line_has_text = true;
        if (in_annotation && p[0] == '>' && p > text && p[-1] == '>') in_annotation = false;
        if (*p == '\n' && line_has_text) pl_sb_putc(&cot, PL_COT_STEP_SEP), line_has_text = false;
    }
    if (line_has_text) pl_sb_putc(&cot, PL_COT_STEP_SEP);
    e->cot = pl_sb_take(&cot);
    if (strcmp(e->cot, "|") == 0) e->cot[0] = '\0';
    pl_sb prompt = {0};
    pl_sb_printf(&prompt, "Q:%s\n", json_string_value(q));
    e->prompt = pl_sb_take(&prompt);
    e->answer = pl_sb_take(&final);
    e->task = pl_strdup0("gsm8k");
    e->meta_json = pl_strdup0("{}");
    return 0;
}

static int parse_record(pl_example *e, json_t *o, pl_format format, line_ctx *c) {
    if (format == PL_FORMAT_AUTO) {
        json_t *answer = json_object_get(o, "answer");
        if (json_object_get(o, "prompt")) format = PL_FORMAT_PROBELAB;
        else if (json_object_get(o, "question") && (json_object_get(o, "options") || json_object_get(o, "choices")))
            format = PL_FORMAT_MC;
        else if (json_object_get(o, "question") && json_is_string(answer) && strstr(json_string_value(answer), "####"))
            format = PL_FORMAT_GSM8K;
        else
            return line_fail(c, "unknown record: need 'prompt' (probelab), 'question' + 'options'/'choices' "
                                "(multiple choice) or 'question' + 'answer' with '#### ' (GSM8K)", NULL);
    }
    switch (format) {
    case PL_FORMAT_PROBELAB: return parse_probelab(e, o, c);
    case PL_FORMAT_MC: return parse_mc(e, o, c);
    case PL_FORMAT_GSM8K: return parse_gsm8k(e, o, c);
    default: return line_fail(c, "internal: unexpected format", NULL);
    }
}

static int load_jsonl(pl_dataset *out, const char *path, const char *text, size_t len, pl_format format,
                      bool skip_bad, int *n_skipped) {
    line_ctx c = {.path = path};
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        c.line++;
        const char *q = p;
        while (q < line_end && isspace((unsigned char)*q)) q++;
        if (q < line_end) {  // blank lines are allowed
            json_error_t err;
            json_t *o = json_loadb(p, (size_t)(line_end - p), 0, &err);
            int rc = 0;
            if (!o) {
                char detail[200];
                snprintf(detail, sizeof detail, "%s (column %d)", err.text, err.column);
                rc = line_fail(&c, "invalid JSON: ", detail);
            } else if (!json_is_object(o)) rc = line_fail(&c, "expected a JSON object", NULL);
            else {
                pl_example *e = pl_dataset_push(out);
                if (!e) {
                    json_decref(o);
                    return pl_fail("%s: out of memory", path);
                }
                rc = parse_record(e, o, format, &c);
                if (rc != 0) {
                    pl_example_free_fields(e);
                    out->n--;
                } else if (!e->id) {
                    char id[64];
                    snprintf(id, sizeof id, "%s-L%d", e->task, c.line);
                    e->id = pl_strdup0(id);
                }
            }
            json_decref(o);
            if (rc != 0) {
                if (!skip_bad) return pl_fail("%s", c.msg);
                fprintf(stderr, "probelab: warning: %s (line skipped)\n", c.msg);
                (*n_skipped)++;
            }
        }
        p = line_end + 1;
    }
    return 0;
}

// ---- LoCoMo --------------------------------------------------------------------------------

#define LOCOMO_WARN(source, ...) \
    (fprintf(stderr, "probelab: warning: %s: ", source), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))

// "D12:3" -> true
static bool valid_dia_id(const char *s, size_t n) {
    size_t i = 0;
    if (n < 4 || s[i++] != 'D') return false;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++, digits++;
    if (!digits || i >= n || s[i++] != ':') return false;
    digits = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++, digits++;
    return digits > 0 && i == n;
}

// Collect the dia_id -> text map of one conversation, warning about quirks.
static json_t *locomo_turns(json_t *conv, const char *where) {
    json_t *texts = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(conv, key, value) {
        int s, consumed = 0;
        if (sscanf(key, "session_%d_date_time%n", &s, &consumed) == 1 && key[consumed] == '\0') {
            char session_key[40];
            snprintf(session_key, sizeof session_key, "session_%d", s);
            if (!json_object_get(conv, session_key))
                LOCOMO_WARN(where, "%s has no %s (date ignored)", key, session_key);
            continue;
        }
        if (sscanf(key, "session_%d%n", &s, &consumed) != 1 || key[consumed] != '\0') continue;
        if (!json_is_array(value)) {
            LOCOMO_WARN(where, "%s is not a list of turns (skipped)", key);
            continue;
        }
        size_t t;
        json_t *turn;
        json_array_foreach(value, t, turn) {
            json_t *id = json_object_get(turn, "dia_id"), *text = json_object_get(turn, "text");
            if (!json_is_string(id) || !json_is_string(text)) {
                LOCOMO_WARN(where, "%s turn %zu (1-based) has no dia_id/text (skipped)", key, t + 1);
                continue;
            }
            json_object_set(texts, json_string_value(id), text);
        }
    }
    return texts;
}

// Evidence entries are usually ["D1:3", ...], but real files hold "D8:6; D9:17" and typos like "D:11:26".
static void locomo_evidence(json_t *ev_out, json_t *text_out, json_t *evidence, json_t *texts, const char *where,
                            size_t q) {
    json_t *list = json_is_array(evidence) ? json_incref(evidence) : json_array();
    if (json_is_string(evidence)) json_array_append(list, evidence);
    else if (evidence && !json_is_array(evidence)) LOCOMO_WARN(where, "qa[%zu]: evidence is not a list (ignored)", q);
    size_t k;
    json_t *item;
    json_array_foreach(list, k, item) {
        if (!json_is_string(item)) {
            LOCOMO_WARN(where, "qa[%zu]: evidence entry %zu is not a string (dropped)", q, k);
            continue;
        }
        const char *s = json_string_value(item);
        while (*s) {
            while (*s && (isspace((unsigned char)*s) || *s == ';' || *s == ',')) s++;
            size_t n = strcspn(s, " \t\n;,");
            if (n == 0) break;
            if (!valid_dia_id(s, n)) LOCOMO_WARN(where, "qa[%zu]: malformed evidence id '%.*s' (dropped)", q, (int)n, s);
            else {
                char id[32];
                snprintf(id, sizeof id, "%.*s", (int)(n < 31 ? n : 31), s);
                json_t *text = json_object_get(texts, id);
                if (!text) LOCOMO_WARN(where, "qa[%zu]: evidence %s is not in the conversation", q, id);
                json_array_append_new(ev_out, json_string(id));
                json_array_append_new(text_out, text ? json_incref(text) : json_string(""));
            }
            s += n;
        }
    }
    json_decref(list);
}

static void locomo_sample(pl_dataset *out, json_t *sample, size_t index, const char *source, int *n_skipped) {
    char where[512], sample_id[128];
    json_t *sid = json_object_get(sample, "sample_id");
    if (json_is_string(sid)) snprintf(sample_id, sizeof sample_id, "%s", json_string_value(sid));
    else snprintf(sample_id, sizeof sample_id, "sample%zu", index);
    snprintf(where, sizeof where, "%s: sample %s", source, sample_id);
    json_t *conv = json_object_get(sample, "conversation"), *qa = json_object_get(sample, "qa");
    if (!json_is_object(conv) || !json_is_array(qa)) {
        LOCOMO_WARN(where, "needs a 'conversation' object and a 'qa' list (sample skipped)");
        (*n_skipped)++;
        return;
    }
    json_t *diff = json_object_get(sample, "difficulty");
    json_t *texts = locomo_turns(conv, where);
    size_t q;
    json_t *item;
    json_array_foreach(qa, q, item) {
        json_t *question = json_object_get(item, "question"), *category = json_object_get(item, "category");
        if (!json_is_string(question)) {
            LOCOMO_WARN(where, "qa[%zu] has no question (skipped)", q);
            (*n_skipped)++;
            continue;
        }
        int cat = json_is_integer(category) ? (int)json_integer_value(category) : 0;
        if (cat < 1 || cat > 5) LOCOMO_WARN(where, "qa[%zu]: category missing or not 1-5 (recorded as 0)", q), cat = 0;
        json_t *adversarial = json_object_get(item, "adversarial_answer");
        char *answer = answer_text(json_object_get(item, "answer"));
        if (!answer && cat == 5 && adversarial) answer = pl_strdup0("Not mentioned in the conversation");
        if (!answer) {
            LOCOMO_WARN(where, "qa[%zu] has no usable answer (skipped)", q);
            (*n_skipped)++;
            continue;
        }
        json_t *meta = json_object(), *ev = json_array(), *ev_text = json_array();
        locomo_evidence(ev, ev_text, json_object_get(item, "evidence"), texts, where, q);
        json_object_set_new(meta, "sample_id", json_string(sample_id));
        json_object_set_new(meta, "category", json_integer(cat));
        json_object_set_new(meta, "evidence", ev);
        json_object_set_new(meta, "evidence_text", ev_text);
        char *adv = answer_text(adversarial);
        if (adv) json_object_set_new(meta, "adversarial_answer", json_string(adv));
        free(adv);
        pl_example *e = pl_dataset_push(out);
        if (!e) abort();
        char id[192];
        snprintf(id, sizeof id, "%s-q%03zu", sample_id, q);
        e->id = pl_strdup0(id);
        e->task = pl_strdup0("memqa");
        e->prompt = pl_strdup0(json_string_value(question));
        e->cot = pl_strdup0("");
        e->answer = answer;
        e->difficulty = json_is_integer(diff) ? (int)json_integer_value(diff) : 0;
        e->meta_json = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(meta);
    }
    json_decref(texts);
}

void pl_locomo_to_examples(pl_dataset *out, json_t *root, const char *source, int *n_skipped) {
    if (json_is_object(root)) {
        locomo_sample(out, root, 0, source, n_skipped);
        return;
    }
    if (!json_is_array(root)) {
        LOCOMO_WARN(source, "not a LoCoMo sample or list of samples (nothing loaded)");
        (*n_skipped)++;
        return;
    }
    size_t i;
    json_t *sample;
    json_array_foreach(root, i, sample) locomo_sample(out, sample, i, source, n_skipped);
}

// ---- entry points --------------------------------------------------------------------------

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return pl_fail("%s: cannot open: %s", path, strerror(errno)), NULL;
    pl_sb s = {0};
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[got] = '\0';
        if (memchr(buf, '\0', got)) {
            fclose(f);
            free(pl_sb_take(&s));
            return pl_fail("%s: binary file (contains NUL bytes), not a dataset", path), NULL;
        }
        pl_sb_puts(&s, buf);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(pl_sb_take(&s));
        return pl_fail("%s: read error", path), NULL;
    }
    *len = s.len;
    return pl_sb_take(&s);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int pl_dataset_load_as(pl_dataset *out, const char *path, pl_format format, bool skip_bad, int *n_skipped) {
    memset(out, 0, sizeof *out);
    int skipped = 0;
    if (n_skipped) *n_skipped = 0;
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) return -1;
    const char *first = text;
    while (isspace((unsigned char)*first)) first++;
    int rc = 0;
    json_t *whole = NULL;
    if (format == PL_FORMAT_AUTO) {
        // A whole-file JSON value that is a list, or a sample with a conversation, is LoCoMo.
        if (ends_with(path, ".json") || *first == '[' || *first == '{') {
            whole = json_loadb(text, len, 0, NULL);
            if (json_is_array(whole) || (json_is_object(whole) && json_object_get(whole, "conversation")))
                format = PL_FORMAT_LOCOMO;
            else if (ends_with(path, ".json") && !whole) {
                json_error_t err;
                json_decref(json_loadb(text, len, 0, &err));  // again, for the message
                rc = pl_fail("%s:%d: invalid JSON: %s", path, err.line, err.text);
            }
        }
    }
    if (rc == 0 && format == PL_FORMAT_LOCOMO) {
        if (!whole) {
            json_error_t err;
            whole = json_loadb(text, len, 0, &err);
            if (!whole) rc = pl_fail("%s:%d: invalid JSON: %s", path, err.line, err.text);
        }
        if (whole) pl_locomo_to_examples(out, whole, path, &skipped);
    } else if (rc == 0) {
        rc = load_jsonl(out, path, text, len, format, skip_bad, &skipped);
    }
    json_decref(whole);
    free(text);
    if (rc != 0) {
        pl_dataset_free(out);
        return -1;
    }
    if (skipped) fprintf(stderr, "probelab: warning: %s: %d record(s) skipped\n", path, skipped);
    if (n_skipped) *n_skipped = skipped;
    return 0;
}

int pl_dataset_load(pl_dataset *out, const char *path, bool skip_bad, int *n_skipped) {
    return pl_dataset_load_as(out, path, PL_FORMAT_AUTO, skip_bad, n_skipped);
}
