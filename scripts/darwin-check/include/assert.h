/* Type-checking for macOS on Linux only: see scripts/darwin-check/README. */
#define assert(x) ((void)0)
