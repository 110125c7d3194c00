/* Peak fp32 FMA throughput of one core: 12 independent vector FMA chains (enough to cover the
 * FMA latency on AVX2 and AVX-512 cores), timed over ~1 s. Build and run:
 *   gcc -O2 -march=native tools/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 * The figure is the denominator of "of FMA peak" in docs/performance.md. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define WIDTH 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define REDUCE(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vec;
#define WIDTH 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float REDUCE(__m256 v) { float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; i++) s += t[i]; return s; }
#endif

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    /* Named accumulators: an array would be kept in memory and time store forwarding instead. */
    vec c0 = SET1(0.001f), c1 = SET1(0.002f), c2 = SET1(0.003f), c3 = SET1(0.004f), c4 = SET1(0.005f), c5 = SET1(0.006f);
    vec c6 = SET1(0.007f), c7 = SET1(0.008f), c8 = SET1(0.009f), c9 = SET1(0.010f), c10 = SET1(0.011f), c11 = SET1(0.012f);
    const vec a = SET1(0.999999f), b = SET1(1e-7f);
    long iters = 200000000;
    double t0 = now();
    for (long it = 0; it < iters; it++) {
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
        __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3));
    }
    double dt = now() - t0;
    vec s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));
    double gflops = 2.0 * WIDTH * 12 * iters / dt / 1e9;
    printf("%d-wide FMA peak, one core: %.1f GFLOP/s (checksum %g)\n", WIDTH, gflops, (double)REDUCE(s));
    return 0;
}
