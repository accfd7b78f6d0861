#!/usr/bin/env bash
# GPU against CPU on the benchmark shapes (docs/PERFORMANCE.md), one markdown table on stdout.
#
#   scripts/gpu_bench.sh            the full table: batch 256 × length 10 000 at d ∈ {2,4,8,16}, N ∈ {2,3},
#                                   and (128,256,4,6), (128,500,4,6), (32,1024,8,5), (1,100000,4,6);
#                                   f32, plus f64 where the adapter has it (pass --f64); a few minutes
#                                   on a large GPU; then sig_kernel and its backprop at (32,128,8) and
#                                   (128,512,8) with dyadic orders 0 and 2, a 512 × 512 Gram matrix of
#                                   length-128 paths, log_sig and log_sig_backprop (Lyndon words) at
#                                   (128,256,4,6) and (32,1024,8,4), sig_combine and its gradient on
#                                   4096 pairs (4, 6) and 1024 pairs (8, 4), and on the same rows
#                                   log_sig_to_sig and log_sig_combine (Lyndon brackets) with theirs,
#                                   sig_coef with its gradient for ten words at (128,256,8),
#                                   sig_corrected with its gradient (level 2) at (128,256,4,6); and
#                                   the polynomial kernel solver (order 8) at (32,128,8)
#   scripts/gpu_bench.sh --quick    small shapes, for a check on lavapipe (software Vulkan)
#   scripts/gpu_bench.sh --only kernels[,sig,log_sig,combine,sig_coef,corrected]
#                                   those sections alone (kernels: sig_kernel, its backprop, the Gram
#                                   matrix and the polynomial solver), for a short session on a device
#
# ROUGHSIG_ADAPTER=<substring> picks the adapter. A prebuilt binary at
# target/release/examples/gpu_bench is used as is (machines without a package registry), else it is
# built first.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/examples/gpu_bench
if [ ! -x "$bin" ] || [ -n "${GPU_BENCH_REBUILD:-}" ]; then
    cargo build --release --example gpu_bench >&2
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 0700 "$XDG_RUNTIME_DIR"
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) CPU threads"
exec "$bin" "$@"
