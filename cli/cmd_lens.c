// probelab lens S.db --run R: the logit lens of a stored run (probes/lens/lens.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/lens/lens.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"

static const char lens_usage[] =
    "usage: probelab lens S.db --run R [--model PATH] [--model-id N] [--top-k K] [--target TEXT] [--json]\n"
    "Re-run run R's tokens through the model and read resid_post of every layer through ln_final and the\n"
    "unembedding. Prints, at the token before the answer (else the last prompt token), each layer's top-K tokens\n"
    "and the rank of the gold answer's first token (--target TEXT overrides the gold answer). Stores analysis\n"
    "'lens.R': series gold_rank@last-prompt, gold_prob@last-prompt, gold_rank@answer, gold_prob@answer\n"
    "(x = 0 embeddings, l+1 = blocks.l.hook_resid_post) and matrices top_ids, top_probs, gold_rank, gold_prob.\n"
    "  --model PATH  the traced model moved elsewhere (default: the path the store recorded); its sha256\n"
    "                must match the store's\n"
    "  --model-id N  check that run R is a run of model N (probelab runs S.db --models lists them)\n"
    "  --top-k K     default 5\n";

int cmd_lens(int argc, char **argv) {
    const char *path = NULL, *model = NULL, *target = NULL, *v;
    long run = -1, k = 5;
    int64_t model_id = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", lens_usage), 0;
        else if (cli_opt(argc, argv, &i, "--model", &v)) model = v;
        else if (cli_opt(argc, argv, &i, "--model-id", &v)) {
            if (cli_parse_model_id(v, &model_id)) return pl_print_error(), 2;
        }
        else if (cli_opt(argc, argv, &i, "--target", &v)) target = v;
        else if (cli_opt(argc, argv, &i, "--run", &v)) {
            if (cli_parse_int("--run", v, &run) || run < 1) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--top-k", &v)) {
            if (cli_parse_int("--top-k", v, &k) || k < 1 || k > 100) return pl_fail("--top-k: 1..100"), pl_print_error(), 2;
        } else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return fprintf(stderr, "probelab lens: unknown option '%s'\n%s", argv[i], lens_usage), 2;
        else if (!path) path = argv[i];
        else return fprintf(stderr, "probelab lens: unexpected argument '%s'\n", argv[i]), 2;
    }
    if (!path || run < 1) return fprintf(stderr, "probelab lens: S.db and --run R are required\n%s", lens_usage), 2;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return pl_print_error(), 1;
    int status = 1;
    if (pl_lens_run(s, model, model_id, run, (int)k, target, stdout, json)) goto done;
    status = 0;
done:
    if (status) pl_print_error();
    pl_store_close(s);
    return status;
}
