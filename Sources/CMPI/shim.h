// Open MPI's C API (Debian's libopenmpi-dev; pkg-config `ompi`). Only the MPI build uses it.
#include <mpi.h>
