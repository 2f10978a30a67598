// Which instruction set the hand-vectorized CPU kernels use: read from cpuid once per process, so
// one portable binary runs the AVX-512 or AVX2 code where the CPU has it and plain C elsewhere.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static const char *const level_names[] = {"portable", "avx2", "avx512f"};

#ifdef PL_SIMD_X86
#define PORTABLE_NAME "sse2 (portable)"  // x86-64's baseline vectors, all the compiler may assume
#else
#define PORTABLE_NAME "portable C"
#endif
static const char *const paths[] = {  // pl_simd_path() by level
#ifdef PL_NATIVE_BUILD
    "native (-march=native), dispatched kernels " PORTABLE_NAME,
    "native (-march=native), dispatched kernels avx2",
    "native (-march=native), dispatched kernels avx512f",
#else
    PORTABLE_NAME,
    "avx2",
    "avx512f",
#endif
};

static pl_simd_level detected(void) {
#ifdef PL_SIMD_X86
    __builtin_cpu_init();
    // libgcc also checks (xgetbv) that the OS saves the wider registers before reporting these.
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return PL_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return PL_SIMD_AVX2;
#endif
    return PL_SIMD_PORTABLE;
}

// Read once: PL_SIMD names a level at or below the detected one. Any other value is ignored and
// pl_simd_path() says so (a library neither prints nor fails over an environment variable).
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_level;       // the level PL_SIMD and cpuid give
static char env_path[256];  // paths[env_level] + " (PL_SIMD=... ignored: ...)", or empty

static void read_env(void) {
    pl_simd_level best = detected();
    const char *want = getenv("PL_SIMD");
    env_level = (int)best;
    if (!want || !*want) return;
    for (int l = 0; l <= (int)best; l++)
        if (strcmp(want, level_names[l]) == 0) {
            env_level = l;
            return;
        }
    snprintf(env_path, sizeof env_path, "%s (PL_SIMD=%.40s ignored: this CPU offers %s%s%s)", paths[best], want,
             level_names[0], best >= PL_SIMD_AVX2 ? ", avx2" : "", best >= PL_SIMD_AVX512 ? ", avx512f" : "");
}

static atomic_int chosen = -1;  // the level in effect, -1 before the first call
static atomic_int set_by_call;  // pl_simd_level_set replaced the environment's choice

pl_simd_level pl_simd_level_get(void) {
    int l = atomic_load(&chosen);
    if (l < 0) {
        pthread_once(&env_once, read_env);
        l = env_level;
        atomic_store(&chosen, l);
    }
    return (pl_simd_level)l;
}

pl_simd_level pl_simd_level_set(pl_simd_level want) {
    pl_simd_level best = detected();
    pl_simd_level l = want < PL_SIMD_PORTABLE ? PL_SIMD_PORTABLE : want > best ? best : want;
    atomic_store(&set_by_call, 1);
    atomic_store(&chosen, (int)l);
    return l;
}

const char *pl_simd_level_name(pl_simd_level level) {
    return level >= PL_SIMD_PORTABLE && level <= PL_SIMD_AVX512 ? level_names[level] : "?";
}

const char *pl_simd_path(void) {
    pl_simd_level l = pl_simd_level_get();  // runs read_env first
    return env_path[0] && !atomic_load(&set_by_call) ? env_path : paths[l];
}
