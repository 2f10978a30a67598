// The GTK4 viewer (`probelab view S.db`): a runs list with filters and counts, a run's tokens
// coloured by a chosen score, attention heatmaps and thumbnails, and the store's analyses. It
// opens the store read-only and polls it every 2 s, so runs that `probelab trace` adds appear
// while it runs. Pages live in a registry (viewer_pages.c) so modules add theirs without
// touching the window code. Only built when GTK4 is found (PL_HAVE_GTK).
#ifndef PL_VIEWER_H
#define PL_VIEWER_H

#include <stdint.h>

typedef struct {
    const char *store_path;  // the store to open (problems show as a message in the window)
    const char *screenshot;  // non-NULL: render the window to this PNG once it is shown, then quit
    int width, height;       // initial window size (0 = 1280 x 800)
    int64_t run;             // run to select at start (0 = the first)
    const char *page;        // page to show at start ("tokens", "attention", "analyses"; NULL = tokens)
    const char *analysis;    // analysis to show on the analyses page (NULL = the first)
    int theme;               // -1 follow GTK, 0 light, 1 dark
} pl_viewer_opts;

// Run the viewer until its window closes; returns the process exit status (0, or 1 if GTK could not
// start or the screenshot could not be written). Uses argv only for GTK's own options.
int pl_viewer_run(const pl_viewer_opts *o);

#endif
