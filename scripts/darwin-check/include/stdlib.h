/* Type-checking for macOS on Linux only: see scripts/darwin-check/README. */
#include <stddef.h>
void abort(void);
