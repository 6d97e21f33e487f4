/* Compiled, never run: `make size` reads this symbol's size, which is sizeof(fw_ctx) on the
 * target the object was compiled for. */
#include "../framewire.h"

char fw_ctx_bytes[sizeof(fw_ctx)];
