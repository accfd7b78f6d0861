//! The GPU the consistency tests run on (shared by `gpu_consistency.rs` and `gpu_sig_kernel.rs`).

use roughsig::{Device, SigOptions};

/// Paths (or pairs) per dispatch in these tests: small, so that modest batches cross chunk boundaries.
pub const CHUNK: usize = 70;

/// The GPU for these tests and whether it computes in f64, or `None` (after saying so) without one.
pub fn gpu() -> Option<(Device, bool)> {
    let list = roughsig::gpu::adapters();
    if list.adapters.is_empty() {
        if std::env::var("ROUGHSIG_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!("ROUGHSIG_REQUIRE_GPU=1 but no GPU adapter was found");
        }
        // Straight to stderr, past the test harness's capture, so the skip shows in a plain run.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipping the GPU tests: no GPU adapter (ROUGHSIG_REQUIRE_GPU=1 fails instead)"
            );
        });
        return None;
    }
    roughsig::gpu::set_max_chunk_paths(CHUNK);
    let device = Device::Gpu(None);
    // Ask the library which adapter that is, through an f64 call that fails only for want of f64.
    let f64 = roughsig::sig(
        ndarray::Array2::<f64>::zeros((2, 1)).view(),
        1,
        &SigOptions::default().device(device.clone()),
    )
    .is_ok();
    if !f64 {
        eprintln!("the GPU adapter has no f64: f64 checks are skipped");
    }
    Some((device, f64))
}
