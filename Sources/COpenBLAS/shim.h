#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
#include <cblas.h>
// Declared by OpenBLAS but not in every cblas.h.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
/// The kernels OpenBLAS chose at load (its CPU detection, or OPENBLAS_CORETYPE), e.g. "Haswell".
char *openblas_get_corename(void);
#endif
