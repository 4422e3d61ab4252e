/* OpenMP for the kernels, or a stub of the runtime calls they make when the build has no
   OpenMP (prange then compiles to serial loops). CYNET_OPENMP_ENABLED says which. */
#ifndef CYNET_OPENMP_H
#define CYNET_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
#define CYNET_OPENMP_ENABLED 1
#else
#define CYNET_OPENMP_ENABLED 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

#endif
