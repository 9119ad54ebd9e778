// Rondo's calls into MPI, as plain C functions: Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, …)
// are macros over globals that Swift cannot import. Every function returns MPI's error code
// (MPI_SUCCESS = 0) unless it says otherwise; all use MPI_COMM_WORLD.
#ifndef RONDO_MPI_H
#define RONDO_MPI_H
#include <stddef.h>
#include <stdint.h>

/// MPI_Init_thread with MPI_THREAD_FUNNELED (only the thread that initialised calls MPI).
int rondo_mpi_init(void);
/// Whether MPI_Init has run and MPI_Finalize has not.
int rondo_mpi_is_initialized(void);
int rondo_mpi_finalize(void);
int rondo_mpi_rank(void);
int rondo_mpi_size(void);
int rondo_mpi_barrier(void);
/// Ends every rank of the job with `code` (MPI_Abort).
void rondo_mpi_abort(int code);
/// MPI_Alltoallv over floats: send_counts/send_offsets/recv_counts/recv_offsets have `size` entries.
int rondo_mpi_alltoallv_float(const float *send, const int *send_counts, const int *send_offsets,
                              float *recv, const int *recv_counts, const int *recv_offsets);
/// MPI_Allgatherv over floats.
int rondo_mpi_allgatherv_float(const float *send, int count, float *recv, const int *recv_counts,
                               const int *recv_offsets);
/// MPI_Allgather of one int64 per rank into `recv` (`size` entries).
int rondo_mpi_allgather_int64(int64_t value, int64_t *recv);
/// MPI_Allgatherv over bytes.
int rondo_mpi_allgatherv_bytes(const uint8_t *send, int count, uint8_t *recv, const int *recv_counts,
                               const int *recv_offsets);
/// MPI_Bcast of `count` bytes from `root`.
int rondo_mpi_bcast_bytes(uint8_t *buffer, int count, int root);
/// The text of an MPI error code, into `out` (at least 256 bytes).
void rondo_mpi_error_string(int code, char *out, int capacity);
#endif
