// A read of a float buffer at memory speed, for measuring the machine's stream rate (Kernels'
// MachineRates): sixteen independent partial sums, so the loop vectorises without reassociating
// any one sum, and the result is used, so the read is not optimised away.

#include "ckernels.h"

float ck_stream_sum(const float *p, ptrdiff_t n) {
    float acc[16] = {0};
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += p[i + j];
    for (; i < n; i++) acc[0] += p[i];
    float total = 0;
    for (int j = 0; j < 16; j++) total += acc[j];
    return total;
}
