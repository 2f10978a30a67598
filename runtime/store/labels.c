// User labels: the label vocabulary of a store, checking a label name before using it, and
// importing labels from a CSV or JSONL file (`probelab label S.db --from FILE`).
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime/base/error.h"
#include "runtime/store/store_internal.h"

int pl_store_label_keys(pl_store *s, char ***keys, int *n) {
    *keys = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT key FROM labels ORDER BY key", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "label names");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            char **grown = realloc(*keys, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            *keys = grown;
        }
        char *k = strdup((const char *)sqlite3_column_text(st, 0));
        if (!k) break;
        (*keys)[(*n)++] = k;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return 0;
    pl_strings_free(*keys, *n);
    *keys = NULL;
    *n = 0;
    return rc == SQLITE_ROW ? store_fail(s, "%s: out of memory", s->path) : store_sql_fail(s, s->db, "label names");
}

int pl_store_require_label(pl_store *s, const char *key) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM labels WHERE key=?1 LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, s->db, "label");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_sql_fail(s, s->db, "label");
    char **keys;
    int n;
    char list[600] = "none";
    if (pl_store_label_keys(s, &keys, &n) != 0) return -1;
    size_t len = 0;
    for (int i = 0; i < n && len + 64 < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", keys[i]);
    if (len + 64 >= sizeof list) snprintf(list + len, sizeof list - len, ", ...");
    pl_strings_free(keys, n);
    return store_fail(s, "%s: no run has a label '%s' (labels: %s)", s->path, key, list);
}

// ---- import ----------------------------------------------------------------------------------

// One parsed value of a label file: text, a number, or absent (an empty CSV cell, JSON null).
typedef struct {
    enum { V_NONE, V_TEXT, V_NUM } kind;
    const char *text;
    double num;
} label_value;

typedef struct {
    pl_store *s;
    const char *path;
    int line;
    sqlite3_stmt *run_exists, *example_runs, *put;
    int n_rows, n_labels;
} importer;

static int import_fail(importer *im, const char *fmt, const char *a, const char *b) {
    char what[512];
    snprintf(what, sizeof what, fmt, a, b);
    return store_fail(im->s, "%s:%d: %s", im->path, im->line, what);
}

// A label name: 1..31 bytes of letters, digits, '_', '.', '-' (what pl_label and the CLI hold).
static int check_name(importer *im, const char *key) {
    size_t n = strlen(key);
    if (n == 0) return import_fail(im, "an empty label name%s%s", "", "");
    if (n > 31) return import_fail(im, "label name '%s' is longer than 31 bytes%s", key, "");
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return import_fail(im, "label name '%s': use letters, digits, '_', '.' or '-'%s", key, "");
    return 0;
}

// The runs a row addresses: its run id, or every run of an example id.
static int row_runs(importer *im, bool by_run, const char *id, int64_t **runs, int *n) {
    *runs = NULL;
    *n = 0;
    sqlite3_stmt *st = by_run ? im->run_exists : im->example_runs;
    sqlite3_reset(st);
    if (by_run) {
        char *end;
        errno = 0;
        long long v = strtoll(id, &end, 10);
        if (!*id || *end || errno || v < 1) return import_fail(im, "run '%s' is not a run id%s", id, "");
        sqlite3_bind_int64(st, 1, v);
    } else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    }
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            int64_t *grown = realloc(*runs, sizeof(int64_t) * (size_t)cap);
            if (!grown) {
                free(*runs);
                *runs = NULL;
                return store_fail(im->s, "%s: out of memory", im->s->path);
            }
            *runs = grown;
        }
        (*runs)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) return free(*runs), *runs = NULL, store_sql_fail(im->s, im->s->db, "label import");
    if (*n == 0)
        return import_fail(im, by_run ? "run %s does not exist in the store%s" : "example '%s' has no run in the store%s",
                           id, "");
    return 0;
}

static int put_value(importer *im, const int64_t *runs, int n_runs, const char *key, const label_value *v) {
    if (v->kind == V_NONE) return 0;
    for (int r = 0; r < n_runs; r++) {
        sqlite3_stmt *st = im->put;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, runs[r]);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
        if (v->kind == V_TEXT) sqlite3_bind_blob(st, 3, v->text, (int)strlen(v->text), SQLITE_TRANSIENT);  // display form
        else if (v->num == floor(v->num) && fabs(v->num) < 9e15) sqlite3_bind_int64(st, 3, (sqlite3_int64)v->num);
        else sqlite3_bind_double(st, 3, v->num);
        if (sqlite3_step(st) != SQLITE_DONE) return store_sql_fail(im->s, im->s->db, "put label");
    }
    im->n_labels += n_runs;
    return 0;
}

// A CSV cell: a number if the whole cell is one (finite), else text; empty = absent.
static label_value csv_value(const char *cell) {
    label_value v = {.kind = V_NONE};
    if (!*cell) return v;
    char *end;
    errno = 0;
    double d = strtod(cell, &end);
    if (!*end && !errno && isfinite(d) && !isspace((unsigned char)cell[0])) return (label_value){.kind = V_NUM, .num = d};
    return (label_value){.kind = V_TEXT, .text = cell};
}

// Split one CSV record (RFC 4180: "..." quotes a field, "" inside is a quote) starting at *p; the
// fields are written NUL-terminated into buf. A quoted field may span lines (im->line counts them).
// Returns the number of fields, 0 at the end of the input, -1 on a malformed record.
static int csv_record(importer *im, const char **p, char *buf, char **fields, int max_fields) {
    const char *c = *p;
    if (!*c) return 0;
    int n = 0;
    char *out = buf;
    for (;;) {
        if (n == max_fields) return import_fail(im, "more than %s columns%s", "256", "");
        fields[n++] = out;
        if (*c == '"') {
            c++;
            int opened = im->line;
            for (;;) {
                if (!*c) return im->line = opened, import_fail(im, "a quoted field is not closed%s%s", "", "");
                if (*c == '"' && c[1] == '"') *out++ = '"', c += 2;
                else if (*c == '"') {
                    c++;
                    break;
                } else {
                    if (*c == '\n') im->line++;
                    *out++ = *c++;
                }
            }
            if (*c && *c != ',' && *c != '\n' && *c != '\r')
                return import_fail(im, "text after a closing quote%s%s", "", "");
        } else {
            while (*c && *c != ',' && *c != '\n' && *c != '\r') {
                if (*c == '"') return import_fail(im, "a quote inside an unquoted field%s%s", "", "");
                *out++ = *c++;
            }
        }
        *out++ = '\0';
        if (*c == ',') {
            c++;
            continue;
        }
        if (*c == '\r') c++;
        if (*c == '\n') c++;
        break;
    }
    *p = c;
    return n;
}

enum { MAX_COLUMNS = 256 };

static int import_csv(importer *im, const char *text) {
    size_t len = strlen(text);
    char *buf = malloc(len + 1), *header_buf = malloc(len + 1);
    char *fields[MAX_COLUMNS], *header[MAX_COLUMNS];
    int rc = -1;
    if (!buf || !header_buf) {
        store_fail(im->s, "%s: out of memory", im->path);
        goto done;
    }
    const char *p = text;
    if (strncmp(p, "\xef\xbb\xbf", 3) == 0) p += 3;  // a UTF-8 byte-order mark (spreadsheet exports)
    im->line = 1;
    int n_cols = csv_record(im, &p, header_buf, header, MAX_COLUMNS);
    if (n_cols < 0) goto done;
    if (n_cols == 0) {
        import_fail(im, "empty file: expected a header row (run or example, then label names)%s%s", "", "");
        goto done;
    }
    int id_col = -1;
    bool by_run = false;
    for (int k = 0; k < n_cols; k++) {
        if (strcmp(header[k], "run") == 0 || strcmp(header[k], "example") == 0) {
            if (id_col >= 0) {
                import_fail(im, "give one of the columns 'run' and 'example', not both%s%s", "", "");
                goto done;
            }
            id_col = k;
            by_run = header[k][0] == 'r';
        } else if (check_name(im, header[k]) != 0) {
            goto done;
        }
        for (int j = 0; j < k; j++)
            if (strcmp(header[j], header[k]) == 0) {
                import_fail(im, "column '%s' appears twice%s", header[k], "");
                goto done;
            }
    }
    if (id_col < 0) {
        import_fail(im, "no column 'run' (run ids) or 'example' (example ids) in the header%s%s", "", "");
        goto done;
    }
    if (n_cols < 2) {
        import_fail(im, "no label column besides '%s'%s", header[id_col], "");
        goto done;
    }
    for (;;) {
        im->line++;
        int line0 = im->line;
        int n = csv_record(im, &p, buf, fields, MAX_COLUMNS);
        if (n < 0) goto done;
        if (n == 0) break;
        if (n == 1 && fields[0][0] == '\0') continue;  // a blank line
        int line_now = im->line;
        im->line = line0;
        if (n != n_cols) {
            char got[16], want[16];
            snprintf(got, sizeof got, "%d", n);
            snprintf(want, sizeof want, "%d", n_cols);
            import_fail(im, "%s fields, the header has %s", got, want);
            goto done;
        }
        int64_t *runs;
        int n_runs;
        if (row_runs(im, by_run, fields[id_col], &runs, &n_runs) != 0) goto done;
        for (int k = 0; k < n_cols; k++) {
            if (k == id_col) continue;
            label_value v = csv_value(fields[k]);
            if (put_value(im, runs, n_runs, header[k], &v) != 0) {
                free(runs);
                goto done;
            }
        }
        free(runs);
        im->n_rows++;
        im->line = line_now;
    }
    rc = 0;
done:
    free(buf);
    free(header_buf);
    return rc;
}

static int import_jsonl(importer *im, const char *text) {
    const char *p = text;
    im->line = 0;
    while (*p) {
        im->line++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *next = eol ? eol + 1 : p + len;
        size_t k = 0;
        while (k < len && isspace((unsigned char)p[k])) k++;
        if (k == len) {
            p = next;
            continue;
        }
        json_error_t err;
        json_t *o = json_loadb(p, len, 0, &err);
        p = next;
        if (!json_is_object(o)) {
            json_decref(o);
            return import_fail(im, o ? "expected a JSON object%s%s" : "not JSON: %s%s", o ? "" : err.text, "");
        }
        json_t *run = json_object_get(o, "run"), *example = json_object_get(o, "example");
        char id[128];
        int rc = 0;
        if ((run != NULL) == (example != NULL)) {
            rc = import_fail(im, "give one of 'run' (a run id) and 'example' (an example id)%s%s", "", "");
        } else if (run && !json_is_integer(run)) {
            rc = import_fail(im, "'run' must be an integer run id%s%s", "", "");
        } else if (example && !json_is_string(example)) {
            rc = import_fail(im, "'example' must be a string (the dataset's id)%s%s", "", "");
        } else {
            if (run) snprintf(id, sizeof id, "%lld", (long long)json_integer_value(run));
            else snprintf(id, sizeof id, "%s", json_string_value(example));
        }
        int64_t *runs = NULL;
        int n_runs = 0;
        if (rc == 0) rc = row_runs(im, run != NULL, id, &runs, &n_runs);
        const char *key;
        json_t *value;
        int n_keys = 0;
        json_object_foreach(o, key, value) {
            if (rc != 0) break;
            if (strcmp(key, "run") == 0 || strcmp(key, "example") == 0) continue;
            n_keys++;
            if ((rc = check_name(im, key)) != 0) break;
            label_value v = {.kind = V_NONE};
            if (json_is_string(value)) v = (label_value){.kind = V_TEXT, .text = json_string_value(value)};
            else if (json_is_number(value)) v = (label_value){.kind = V_NUM, .num = json_number_value(value)};
            else if (json_is_boolean(value)) v = (label_value){.kind = V_NUM, .num = json_is_true(value)};
            else if (!json_is_null(value))
                rc = import_fail(im, "label '%s': a value must be a string, a number, true/false or null%s", key, "");
            if (rc == 0) rc = put_value(im, runs, n_runs, key, &v);
        }
        if (rc == 0 && n_keys == 0) rc = import_fail(im, "no label in the record%s%s", "", "");
        free(runs);
        json_decref(o);
        if (rc != 0) return -1;
        im->n_rows++;
    }
    return 0;
}

// The whole file as a NUL-terminated string (labels files are small: a row per run).
static char *read_text(pl_store *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return store_fail(s, "%s: cannot open: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n < cap - 1) break;
        char *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) return store_fail(s, "%s: out of memory", path), NULL;
    if (bad) return free(buf), store_fail(s, "%s: read error", path), NULL;
    buf[n] = '\0';
    if (strlen(buf) != n) return free(buf), store_fail(s, "%s: a NUL byte in a text file", path), NULL;
    return buf;
}

int pl_store_import_labels(pl_store *s, const char *path, int *n_rows, int *n_labels) {
    *n_rows = *n_labels = 0;
    if (s->mode != PL_STORE_WRITE) return store_fail(s, "%s: opened read-only; labels need a writer", s->path);
    size_t plen = strlen(path);
    bool csv = plen > 4 && strcmp(path + plen - 4, ".csv") == 0;
    bool jsonl = plen > 6 && strcmp(path + plen - 6, ".jsonl") == 0;
    if (!csv && !jsonl) return store_fail(s, "%s: a labels file ends in .csv or .jsonl", path);
    char *text = read_text(s, path);
    if (!text) return -1;
    importer im = {.s = s, .path = path};
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM runs WHERE id=?1", -1, &im.run_exists, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT r.id FROM runs r JOIN examples e ON e.id=r.example_id WHERE e.ext_id=?1 ORDER BY r.id",
                           -1, &im.example_runs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO labels(run_id, key, value) VALUES(?1, ?2, " STORE_LABEL_VALUE_SQL(3) ")", -1, &im.put,
                           NULL) != SQLITE_OK) {
        store_sql_fail(s, s->db, "label import");
        goto done;
    }
    // All or nothing: one transaction, rolled back at the first bad row.
    if (pl_store_begin(s) != 0) goto done;
    rc = csv ? import_csv(&im, text) : import_jsonl(&im, text);
    if (rc == 0 && im.n_rows == 0) rc = store_fail(s, "%s: no labels in the file", path);
    if (rc == 0) rc = pl_store_commit(s);
    else pl_store_rollback(s);
done:
    sqlite3_finalize(im.run_exists);
    sqlite3_finalize(im.example_runs);
    sqlite3_finalize(im.put);
    free(text);
    if (rc == 0) *n_rows = im.n_rows, *n_labels = im.n_labels;
    return rc;
}
