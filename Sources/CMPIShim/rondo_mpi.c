// See include/rondo_mpi.h.
// Compiled only where mpi.h exists: the default build (no MPI trait) never links it.
#if __has_include(<mpi.h>)
#include "rondo_mpi.h"
#include <mpi.h>
#include <string.h>

int rondo_mpi_init(void) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return rc;
}

int rondo_mpi_is_initialized(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

int rondo_mpi_finalize(void) { return MPI_Finalize(); }

int rondo_mpi_rank(void) {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int rondo_mpi_size(void) {
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int rondo_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

void rondo_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int rondo_mpi_alltoallv_float(const float *send, const int *send_counts, const int *send_offsets,
                              float *recv, const int *recv_counts, const int *recv_offsets) {
    return MPI_Alltoallv(send, send_counts, send_offsets, MPI_FLOAT, recv, recv_counts, recv_offsets, MPI_FLOAT,
                         MPI_COMM_WORLD);
}

int rondo_mpi_allgatherv_float(const float *send, int count, float *recv, const int *recv_counts,
                               const int *recv_offsets) {
    return MPI_Allgatherv(send, count, MPI_FLOAT, recv, recv_counts, recv_offsets, MPI_FLOAT, MPI_COMM_WORLD);
}

int rondo_mpi_allgather_int64(int64_t value, int64_t *recv) {
    return MPI_Allgather(&value, 1, MPI_INT64_T, recv, 1, MPI_INT64_T, MPI_COMM_WORLD);
}

int rondo_mpi_allgatherv_bytes(const uint8_t *send, int count, uint8_t *recv, const int *recv_counts,
                               const int *recv_offsets) {
    return MPI_Allgatherv(send, count, MPI_BYTE, recv, recv_counts, recv_offsets, MPI_BYTE, MPI_COMM_WORLD);
}

int rondo_mpi_bcast_bytes(uint8_t *buffer, int count, int root) {
    return MPI_Bcast(buffer, count, MPI_BYTE, root, MPI_COMM_WORLD);
}

void rondo_mpi_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
    if (capacity <= 0) return;
    int n = len < capacity - 1 ? len : capacity - 1;
    memcpy(out, text, (size_t)n);
    out[n] = 0;
}
#endif
