// Storage types to float32. Bit-exact conversions; GGML block layouts per the GGUF spec.
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

float pl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24);  // zero or subnormal
        return sign ? -f : f;
    }
    uint32_t bits;
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
    else bits = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

float pl_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pl_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);  // quiet NaN
    bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
    return (uint16_t)(bits >> 16);
}

uint16_t pl_f32_to_f16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint32_t sign = (bits >> 16) & 0x8000;
    uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00);    // NaN
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // overflow to inf
    if (abs < 0x38800000u) {                                     // subnormal or zero in f16
        float a;
        memcpy(&a, &abs, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));  // a / 2^-24, round-to-even
    }
    uint32_t exp = (abs >> 23) - 112, mant = abs & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;  // round to nearest even (may carry into exp)
    return (uint16_t)(sign | h);
}

void pl_dequant_q8_0(float *out, const void *blocks, size_t n_weights) {
    const uint8_t *b = blocks;
    for (size_t blk = 0; blk < n_weights / 32; blk++, b += 34) {
        uint16_t dh;
        memcpy(&dh, b, 2);
        float d = pl_f16_to_f32(dh);
        const int8_t *q = (const int8_t *)(b + 2);
        for (int i = 0; i < 32; i++) out[blk * 32 + i] = d * q[i];
    }
}

void pl_dequant_q4_0(float *out, const void *blocks, size_t n_weights) {
    const uint8_t *b = blocks;
    for (size_t blk = 0; blk < n_weights / 32; blk++, b += 18) {
        uint16_t dh;
        memcpy(&dh, b, 2);
        float d = pl_f16_to_f32(dh);
        const uint8_t *q = b + 2;
        for (int i = 0; i < 16; i++) {
            out[blk * 32 + i] = d * (float)((q[i] & 0x0f) - 8);
            out[blk * 32 + i + 16] = d * (float)((q[i] >> 4) - 8);
        }
    }
}
