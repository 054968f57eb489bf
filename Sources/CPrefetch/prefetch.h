#ifndef CPREFETCH_H
#define CPREFETCH_H

// Cache hints Swift has no intrinsic for.

// Inlines to one PREFETCHT0 on x86_64 (and PRFM on arm64).
static inline void prefetchForRead(const void *address) { __builtin_prefetch(address, 0, 3); }

typedef float gptneo_stream_float8 __attribute__((ext_vector_type(8)));

// One 64-byte line written around the cache (MOVNTPS on x86_64), for memory written once and not read
// soon: an ordinary store first reads the line's old contents from memory, which for a freshly faulted
// page is a whole extra pass. `destination` must be 64-byte aligned. Order with `streamFence` before
// another thread reads the line.
static inline void streamLine(void *destination, const void *source) {
    gptneo_stream_float8 low, high;
    __builtin_memcpy(&low, source, sizeof low);
    __builtin_memcpy(&high, (const char *)source + sizeof low, sizeof high);
    __builtin_nontemporal_store(low, (gptneo_stream_float8 *)destination);
    __builtin_nontemporal_store(high, (gptneo_stream_float8 *)destination + 1);
}

// Makes the streamed lines visible before any later store (SFENCE on x86_64).
static inline void streamFence(void) {
#if defined(__x86_64__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

#endif
