// Which instruction set the hand-vectorized CPU kernels use: read from cpuid once per process, so
// one portable binary runs the AVX-512 or AVX2 code where the CPU has it and plain C elsewhere.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static const char *const level_names[] = {"portable", "avx2", "avx512f"};

static atomic_int chosen = -1;  // the level in effect, -1 before the first call

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

// PL_SIMD names a level at or below the detected one; anything else leaves the detected level.
static pl_simd_level from_env(pl_simd_level best) {
    const char *want = getenv("PL_SIMD");
    for (int l = 0; want && l <= (int)best; l++)
        if (strcmp(want, level_names[l]) == 0) return (pl_simd_level)l;
    return best;
}

pl_simd_level pl_simd_level_get(void) {
    int l = atomic_load(&chosen);
    if (l < 0) {
        l = (int)from_env(detected());
        atomic_store(&chosen, l);
    }
    return (pl_simd_level)l;
}

pl_simd_level pl_simd_level_set(pl_simd_level want) {
    pl_simd_level best = detected();
    pl_simd_level l = want < PL_SIMD_PORTABLE ? PL_SIMD_PORTABLE : want > best ? best : want;
    atomic_store(&chosen, (int)l);
    return l;
}

const char *pl_simd_level_name(pl_simd_level level) {
    return level >= PL_SIMD_PORTABLE && level <= PL_SIMD_AVX512 ? level_names[level] : "?";
}

#ifdef PL_SIMD_X86
#define PORTABLE_NAME "sse2 (portable)"  // x86-64's baseline vectors, all the compiler may assume
#else
#define PORTABLE_NAME "portable C"
#endif

const char *pl_simd_path(void) {
    static const char *const paths[] = {
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
    return paths[pl_simd_level_get()];
}
