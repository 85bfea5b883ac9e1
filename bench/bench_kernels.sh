#!/bin/sh
# The packed-weight kernels (engine/kern*.c): GB/s of weight bytes the n = 1 (decode)
# kernel streams per encoding at 1 and 2 threads, beside this machine's memory read
# bandwidth measured in the same run, and prefill GFLOP/s at n = 512 (FAST and EXACT).
# Needs ~1.6 GiB of memory. Pass encodings to measure only those.
: "${KERN_BENCH:?run through make bench}"
"$KERN_BENCH" "$@"
