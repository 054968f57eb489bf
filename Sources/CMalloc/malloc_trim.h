// glibc's malloc_trim (declared in <malloc.h>, which Swift's Glibc module does not import).
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
