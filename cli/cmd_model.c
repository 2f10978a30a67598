// Model commands: info, tokenize, generate, run.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#include "runtime/base/npy.h"
#include "runtime/hooks.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

static int fail_usage(const char *usage) {
    pl_print_error();
    fprintf(stderr, "%s", usage);
    return 2;
}

static const char *rope_name(pl_rope_style r) {
    return r == PL_ROPE_ADJACENT ? "adjacent pairs" : r == PL_ROPE_NEOX ? "half-split (NeoX)" : "none";
}

// ---------------------------------------------------------------- info
static const char info_usage[] =
    "usage: probelab info MODEL [--hooks] [--json]\n"
    "  MODEL    a .gguf file or a Hugging Face folder (config.json + *.safetensors)\n"
    "  --hooks  also list every hook point name\n"
    "  --json   machine-readable output\n";

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool hooks = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", info_usage), 0;
        else if (strcmp(argv[i], "--hooks") == 0) hooks = true;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return pl_fail("info: unknown option '%s'", argv[i]), fail_usage(info_usage);
        else path = argv[i];
    }
    if (!path) return pl_fail("info: missing MODEL"), fail_usage(info_usage);
    pl_model *m;
    if (pl_model_load(path, &m) != 0) return pl_print_error(), 1;
    const pl_config *c = &m->config;
    if (json) {
        printf("{\"path\": \"%s\", \"format\": \"%s\", \"arch\": \"%s\", \"d_model\": %d, \"n_layers\": %d, \"n_heads\": %d, "
               "\"n_kv_heads\": %d, \"head_dim\": %d, \"d_ff\": %d, \"vocab_size\": %d, \"context_length\": %d, "
               "\"norm_eps\": %g, \"rope_theta\": %g, \"rope\": \"%s\", \"tied_embeddings\": %s, \"n_params\": %lld, "
               "\"n_tensors\": %d}\n",
               m->path, m->format, c->arch_name, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
               c->d_ff, c->vocab_size, c->context_length, c->norm_eps, c->rope_theta, rope_name(c->rope_style),
               c->tied_embeddings ? "true" : "false", (long long)pl_model_n_params(m), m->n_tensors);
        pl_model_free(m);
        return 0;
    }
    printf("model        %s (%s)\n", m->path, m->format);
    printf("architecture %s\n", c->arch_name);
    printf("parameters   %lld\n", (long long)pl_model_n_params(m));
    printf("d_model %d, layers %d, heads %d, kv heads %d, head_dim %d, ffn %d, vocab %d, context %d\n", c->d_model,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff, c->vocab_size, c->context_length);
    printf("norm eps %g, rope %s theta %g, qkv bias %s, qk norm %s, tied embeddings %s\n", c->norm_eps,
           rope_name(c->rope_style), c->rope_theta, c->qkv_bias ? "yes" : "no", c->qk_norm ? "yes" : "no",
           c->tied_embeddings ? "yes" : "no");
    if (m->tokenizer)
        printf("tokenizer    %s, %d tokens, bos %d, eos %d\n",
               pl_tokenizer_get_kind(m->tokenizer) == PL_TOK_SPM ? "sentencepiece BPE" : "byte-level BPE",
               pl_tokenizer_vocab_size(m->tokenizer), pl_tokenizer_bos(m->tokenizer), pl_tokenizer_eos(m->tokenizer));
    else printf("tokenizer    none\n");
    printf("\n%-40s %-5s %-22s %12s\n", "tensor", "type", "shape", "bytes");
    for (int i = 0; i < m->n_tensors; i++) {
        const pl_tensor_info *t = &m->tensors[i];
        char shape[64] = "[";
        for (int d = 0; d < t->n_dims; d++) {
            char buf[24];
            snprintf(buf, sizeof buf, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            strncat(shape, buf, sizeof shape - strlen(shape) - 2);
        }
        strcat(shape, "]");
        printf("%-40s %-5s %-22s %12llu\n", t->name, t->dtype, shape, (unsigned long long)t->n_bytes);
    }
    if (hooks) {
        pl_hooks *h = pl_hooks_new(c);
        const char **names;
        int n = pl_hooks_list(h, &names);
        printf("\nhook points (%d):\n", n);
        for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
        pl_hooks_free(h);
    }
    pl_model_free(m);
    return 0;
}

// ---------------------------------------------------------------- tokenize
static const char tokenize_usage[] =
    "usage: probelab tokenize MODEL TEXT [--json] [--no-bos]\n"
    "  prints the token ids and pieces of TEXT; --json prints {\"ids\": [...], \"pieces\": [...]}\n";

static void json_string(FILE *out, const char *s, size_t len) {
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", out);
        else if (ch == '\t') fputs("\\t", out);
        else if (ch == '\r') fputs("\\r", out);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
}

int cmd_tokenize(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    bool json = false, bos = true;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", tokenize_usage), 0;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--no-bos") == 0) bos = false;
        else if (argv[i][0] == '-' && argv[i][1] == '-') return pl_fail("tokenize: unknown option '%s'", argv[i]), fail_usage(tokenize_usage);
        else if (n_pos < 2) pos[n_pos++] = argv[i];
        else return pl_fail("tokenize: too many arguments (quote the text)"), fail_usage(tokenize_usage);
    }
    if (n_pos < 2) return pl_fail("tokenize: need MODEL and TEXT"), fail_usage(tokenize_usage);
    pl_tokenizer *tok = NULL;
    pl_model *m = NULL;
    size_t plen = strlen(pos[0]);
    if (plen >= 14 && strcmp(pos[0] + plen - 14, "tokenizer.json") == 0) {  // a bare HF tokenizer file
        tok = pl_tokenizer_load_hf_json(pos[0]);
        if (!tok) return pl_print_error(), 1;
    } else {
        if (pl_model_load(pos[0], &m) != 0) return pl_print_error(), 1;
        if (!m->tokenizer) {
            pl_fail("%s: has no %stokenizer%s%s", pos[0], m->tokenizer_error[0] ? "usable " : "",
                    m->tokenizer_error[0] ? ": " : "", m->tokenizer_error);
            pl_model_free(m);
            return pl_print_error(), 1;
        }
        tok = m->tokenizer;
    }
    int32_t *ids;
    int n = pl_tokenizer_encode(tok, pos[1], bos, &ids);
    int rc = 0;
    if (n < 0) {
        pl_print_error();
        rc = 1;
    } else if (json) {
        printf("{\"ids\": [");
        for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"pieces\": [");
        for (int i = 0; i < n; i++) {
            const char *t = pl_tokenizer_token_text(tok, ids[i]);
            if (i) printf(", ");
            json_string(stdout, t, strlen(t));
        }
        printf("]}\n");
    } else {
        for (int i = 0; i < n; i++) printf("%6d  %s\n", ids[i], pl_tokenizer_token_text(tok, ids[i]));
    }
    free(ids);
    if (m) pl_model_free(m);
    else pl_tokenizer_free(tok);
    return rc;
}

// ---------------------------------------------------------------- generate
static const char generate_usage[] =
    "usage: probelab generate MODEL (--prompt TEXT | --token-ids 1,2,3) [options]\n"
    "  --max-new N     tokens to generate (default 64)\n"
    "  --temp T        temperature; 0 = greedy (default 0)\n"
    "  --top-k K       keep the K most likely tokens (default off)\n"
    "  --top-p P       nucleus sampling mass (default 1 = off)\n"
    "  --seed S        RNG seed (default 42)\n"
    "  --stop STR      stop when the text ends with STR (repeatable)\n"
    "  --ids           also print the generated ids\n"
    "  --json          print {\"ids\", \"text\", \"logprobs\", \"stop\"}\n";

typedef struct {
    const pl_tokenizer *tok;
    bool stream;
} stream_ctx;

static bool print_token(int32_t id, int index, void *user) {
    (void)index;
    stream_ctx *c = user;
    if (c->stream && c->tok) {
        size_t len;
        const char *p = pl_tokenizer_piece_bytes(c->tok, id, &len);
        fwrite(p, 1, len, stdout);
        fflush(stdout);
    }
    return true;
}

int cmd_generate(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *token_ids = NULL, *v;
    const char *stops[16];
    pl_sample_params sp = pl_sample_defaults();
    bool print_ids = false, json = false;
    long lv;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", generate_usage), 0;
        else if (cli_opt(argc, argv, &i, "--prompt", &v)) { if (!(prompt = v)) return pl_fail("--prompt needs a value"), fail_usage(generate_usage); }
        else if (cli_opt(argc, argv, &i, "--token-ids", &v)) { if (!(token_ids = v)) return pl_fail("--token-ids needs a value"), fail_usage(generate_usage); }
        else if (cli_opt(argc, argv, &i, "--max-new", &v)) { if (cli_parse_int("--max-new", v, &lv) || lv < 0) return fail_usage(generate_usage); sp.max_new = (int)lv; }
        else if (cli_opt(argc, argv, &i, "--temp", &v)) { if (cli_parse_float("--temp", v, &sp.temperature)) return fail_usage(generate_usage); }
        else if (cli_opt(argc, argv, &i, "--top-k", &v)) { if (cli_parse_int("--top-k", v, &lv) || lv < 0) return fail_usage(generate_usage); sp.top_k = (int)lv; }
        else if (cli_opt(argc, argv, &i, "--top-p", &v)) { if (cli_parse_float("--top-p", v, &sp.top_p)) return fail_usage(generate_usage); }
        else if (cli_opt(argc, argv, &i, "--seed", &v)) { if (cli_parse_int("--seed", v, &lv)) return fail_usage(generate_usage); sp.seed = (uint64_t)lv; }
        else if (cli_opt(argc, argv, &i, "--stop", &v)) {
            if (!v || sp.n_stop_strings == 16) return pl_fail("--stop needs a value (at most 16)"), fail_usage(generate_usage);
            stops[sp.n_stop_strings++] = v;
        }
        else if (strcmp(argv[i], "--ids") == 0) print_ids = true;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return pl_fail("generate: unknown option '%s'", argv[i]), fail_usage(generate_usage);
        else path = argv[i];
    }
    sp.stop_strings = stops;
    if (!path) return pl_fail("generate: missing MODEL"), fail_usage(generate_usage);
    pl_model *m;
    if (pl_model_load(path, &m) != 0) return pl_print_error(), 1;
    int32_t *ids = NULL;
    pl_session *s = NULL;
    pl_generation g = {0};
    int rc = 1;
    int n = cli_prompt_ids(m, prompt, token_ids, &ids);
    if (n < 0 || pl_session_new(m, 0, &s) != 0) goto done;
    stream_ctx sc = {m->tokenizer, !json};
    if (!json && m->tokenizer && prompt) fputs(prompt, stdout);
    if (pl_generate(s, ids, n, &sp, print_token, &sc, &g) != 0) goto done;
    static const char *stop_names[] = {"length", "eos", "stop-string", "context"};
    if (json) {
        char *text = m->tokenizer ? pl_tokenizer_decode(m->tokenizer, g.ids, g.n) : strdup("");
        printf("{\"ids\": [");
        for (int i = 0; i < g.n; i++) printf("%s%d", i ? ", " : "", g.ids[i]);
        printf("], \"text\": ");
        json_string(stdout, text, strlen(text));
        printf(", \"logprobs\": [");
        for (int i = 0; i < g.n; i++) printf("%s%.6g", i ? ", " : "", g.logprobs[i]);
        printf("], \"stop\": \"%s\"}\n", stop_names[g.stop]);
        free(text);
    } else {
        printf("\n");
        if (print_ids || !m->tokenizer) {
            printf("ids:");
            for (int i = 0; i < g.n; i++) printf("%s%d", i ? "," : " ", g.ids[i]);
            printf("\n");
        }
    }
    rc = 0;
done:
    if (rc) pl_print_error();
    pl_generation_free(&g);
    pl_session_free(s);
    free(ids);
    pl_model_free(m);
    return rc;
}

// ---------------------------------------------------------------- run
static const char run_usage[] =
    "usage: probelab run MODEL (--token-ids 1,2,3 | --prompt TEXT) --hooks PATTERN --dump DIR\n"
    "  one forward pass over the prompt; writes DIR/<hook>.npy (float32) for every hook point\n"
    "  matching PATTERN (globs, comma-separated, e.g. 'blocks.*.hook_resid_post,logits' or '*').\n"
    "  Shapes: [T, d] residual-like, [T, H, dh] q/k/v/z, [H, T, T] attention scores and pattern,\n"
    "  [T, V] logits.\n";

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];  // full-run shape
    float *data;
} dump_buffer;

typedef struct {
    dump_buffer *bufs;
    int n, cap;
    int T;  // total positions of the run
} dump_ctx;

// Collects each hook's rows into one full-run array (the forward pass may call in chunks).
static void dump_hook(const pl_hook_event *ev, void *user) {
    dump_ctx *c = user;
    dump_buffer *b = NULL;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->bufs[i].name, ev->name) == 0) b = &c->bufs[i];
    bool attention = ev->kind == PL_HOOK_ATTN_SCORES || ev->kind == PL_HOOK_PATTERN;
    if (!b) {
        if (c->n == c->cap) c->bufs = realloc(c->bufs, (size_t)(c->cap = c->cap ? 2 * c->cap : 64) * sizeof *c->bufs);
        b = &c->bufs[c->n++];
        memset(b, 0, sizeof *b);
        snprintf(b->name, sizeof b->name, "%s", ev->name);
        b->ndim = ev->ndim;
        memcpy(b->shape, ev->shape, sizeof b->shape);
        size_t total;
        if (attention) {
            b->shape[1] = b->shape[2] = c->T;
            total = (size_t)b->shape[0] * c->T * c->T;
        } else {
            b->shape[0] = c->T;
            total = (size_t)c->T * ev->row_size;
        }
        b->data = calloc(total, sizeof(float));
        if (attention && ev->kind == PL_HOOK_ATTN_SCORES)
            for (size_t i = 0; i < total; i++) b->data[i] = -INFINITY;
    }
    if (attention) {
        for (int h = 0; h < ev->shape[0]; h++)
            for (int i = 0; i < ev->n_pos; i++)
                memcpy(b->data + ((size_t)h * c->T + ev->pos0 + i) * c->T,
                       ev->data + ((size_t)h * ev->n_pos + i) * ev->n_ctx, sizeof(float) * ev->n_ctx);
    } else {
        memcpy(b->data + (size_t)ev->pos0 * ev->row_size, ev->data, sizeof(float) * (size_t)ev->n_pos * ev->row_size);
    }
}

// mkdir -p
static int make_dirs(const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return pl_fail("%s: cannot create directory", path);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return pl_fail("%s: cannot create directory", path);
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *token_ids = NULL, *pattern = NULL, *dir = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", run_usage), 0;
        else if (cli_opt(argc, argv, &i, "--prompt", &v)) prompt = v;
        else if (cli_opt(argc, argv, &i, "--token-ids", &v)) token_ids = v;
        else if (cli_opt(argc, argv, &i, "--hooks", &v)) pattern = v;
        else if (cli_opt(argc, argv, &i, "--dump", &v)) dir = v;
        else if (argv[i][0] == '-') return pl_fail("run: unknown option '%s'", argv[i]), fail_usage(run_usage);
        else path = argv[i];
    }
    if (!path || !pattern || !dir) return pl_fail("run: need MODEL, --hooks PATTERN and --dump DIR"), fail_usage(run_usage);
    pl_model *m;
    if (pl_model_load(path, &m) != 0) return pl_print_error(), 1;
    int32_t *ids = NULL;
    pl_session *s = NULL;
    pl_hooks *hooks = pl_hooks_new(&m->config);
    dump_ctx dc = {0};
    int rc = 1;
    int n = cli_prompt_ids(m, prompt, token_ids, &ids);
    if (n < 0) goto done;
    dc.T = n;
    if (pl_hooks_add(hooks, pattern, dump_hook, &dc) < 0) goto done;
    if (make_dirs(dir) != 0) goto done;
    if (pl_session_new(m, n, &s) != 0) goto done;
    pl_session_set_hooks(s, hooks);
    const float *logits;
    if (pl_forward(s, ids, n, &logits) != 0) goto done;
    for (int i = 0; i < dc.n; i++) {
        char file[2048];
        snprintf(file, sizeof file, "%s/%s.npy", dir, dc.bufs[i].name);
        if (pl_npy_write_f32(file, dc.bufs[i].data, dc.bufs[i].ndim, dc.bufs[i].shape) != 0) goto done;
    }
    fprintf(stderr, "wrote %d hook arrays for %d tokens to %s\n", dc.n, n, dir);
    rc = 0;
done:
    if (rc) pl_print_error();
    for (int i = 0; i < dc.n; i++) free(dc.bufs[i].data);
    free(dc.bufs);
    pl_session_free(s);
    pl_hooks_free(hooks);
    free(ids);
    pl_model_free(m);
    return rc;
}
