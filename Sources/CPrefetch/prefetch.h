#ifndef CPREFETCH_H
#define CPREFETCH_H

// Swift has no prefetch intrinsic; this inlines to one PREFETCHT0 on x86_64 (and PRFM on arm64).
static inline void prefetchForRead(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
