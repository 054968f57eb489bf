#ifndef CSPINPAUSE_H
#define CSPINPAUSE_H

// Swift has no spin-wait hint; this inlines to one PAUSE on x86_64 (YIELD on arm64), which tells the
// core a thread is polling a flag: it saves power and gives the sibling hyperthread the pipeline.
static inline void spinPause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
