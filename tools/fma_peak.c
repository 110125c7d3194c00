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
    vec acc[12];
    for (int i = 0; i < 12; i++) acc[i] = SET1(0.001f * (i + 1));
    const vec a = SET1(0.999999f), b = SET1(1e-7f);
    long iters = 200000000;
    double t0 = now();
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = FMA(acc[i], a, b);
    double dt = now() - t0;
    vec s = acc[0];
    for (int i = 1; i < 12; i++) s = ADD(s, acc[i]);
    double gflops = 2.0 * WIDTH * 12 * iters / dt / 1e9;
    printf("%d-wide FMA peak, one core: %.1f GFLOP/s (checksum %g)\n", WIDTH, gflops, (double)REDUCE(s));
    return 0;
}
