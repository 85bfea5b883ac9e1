#include "kern_internal.h"
const mp_kern_ops *mp_kern_avx2(void) { return 0; }
