//! The GPU signature engine's parallelism, checked without a GPU: the plans the driver runs, for the
//! shapes the engine is built for, on the limits of a large GPU.

use roughsig::gpu::kernels::Precision;
use roughsig::gpu::sig::plan::{
    plan, CallShape, DeviceLimits, Pass, Plan, MIN_STEPS, SHARED_STATE_MAX,
};

fn shape(batch: u64, length: u64, dim: u64, degree: u32) -> CallShape {
    CallShape {
        batch,
        length,
        dim,
        degree,
        lead_lag: false,
        time_aug: false,
        scalar_term: false,
    }
}

fn planned(pass: Pass, s: CallShape) -> Plan {
    plan(pass, s, Precision::F32, DeviceLimits::LARGE_GPU, u64::MAX).unwrap()
}

/// The shapes of the published GPU benchmarks and the project's own.
fn shapes() -> Vec<CallShape> {
    let mut v = Vec::new();
    for d in [2, 4, 8, 16] {
        for n in [2, 3] {
            v.push(shape(256, 10_000, d, n));
        }
    }
    v.extend([
        shape(128, 256, 4, 6),
        shape(32, 1024, 8, 5),
        shape(1, 100_000, 4, 6),
        shape(128, 500, 4, 6),
    ]);
    v
}

#[test]
fn sig_forward_and_backward_fill_a_large_gpu_at_every_benchmark_shape() {
    for s in shapes() {
        for pass in [Pass::Forward, Pass::Backward] {
            let p = planned(pass, s);
            assert_eq!(p.group, s.batch, "{s:?} {pass:?}: one submission");
            let steps = p.steps(s.batch);
            let largest = steps.iter().map(|x| x.invocations()).max().unwrap();
            assert!(
                largest >= 65_536,
                "{s:?} {pass:?}: the largest dispatch has {largest} invocations"
            );
            // No invocation walks a whole path: every path is cut into chunks.
            assert!(p.n_chunks >= 2, "{s:?} {pass:?}: {} chunk(s)", p.n_chunks);
            assert!(p.chunk_steps < s.increments(), "{s:?} {pass:?}");
            assert!(
                p.n_chunks * p.chunk_steps >= s.increments(),
                "{s:?}: chunks cover the path"
            );
        }
    }
}

#[test]
fn sig_forward_chunks_are_never_shorter_than_the_minimum() {
    for s in [
        shape(1, 20, 2, 2),
        shape(4096, 64, 3, 4),
        shape(1, 1_000_000, 2, 2),
    ] {
        for pass in [Pass::Forward, Pass::Backward] {
            let p = planned(pass, s);
            assert!(
                p.chunk_steps >= MIN_STEPS.min(s.increments()),
                "{s:?} {pass:?}"
            );
        }
    }
}

#[test]
fn sig_forward_tree_and_backward_scans_have_logarithmic_depth() {
    let s = shape(1, 100_000, 4, 6);
    let p = planned(Pass::Forward, s);
    let joins = p
        .steps(1)
        .iter()
        .filter(|x| x.kernel.name == "sig_combine")
        .count() as u64;
    let depth = 64 - (p.n_chunks - 1).leading_zeros() as u64;
    assert_eq!(joins, depth.max(1), "{} chunks", p.n_chunks);
    let p = planned(Pass::Backward, s);
    let scans = p
        .steps(1)
        .iter()
        .filter(|x| x.kernel.name == "sig_combine")
        .count() as u64;
    let depth = 64 - (p.n_chunks - 1).leading_zeros() as u64;
    assert_eq!(scans, 2 * depth, "{} chunks", p.n_chunks);
}

/// On lavapipe's budget a huge single step is refused with a reason, never cut silently.
#[test]
fn sig_forward_plan_respects_the_loop_budget() {
    let lavapipe = DeviceLimits {
        max_binding: 128 << 20,
        loop_budget: 48_000,
        workgroup_memory: 16 << 10,
    };
    let p = plan(
        Pass::Backward,
        shape(1, 10, 3, 8),
        Precision::F32,
        lavapipe,
        u64::MAX,
    )
    .unwrap();
    assert!(p.chunk_steps >= 1);
    let err = plan(
        Pass::Forward,
        shape(1, 10, 1, 400),
        Precision::F32,
        lavapipe,
        u64::MAX,
    );
    assert!(matches!(err, Err(roughsig::Error::Device(m)) if m.contains("loop iterations")));
}

/// The reverse sweep keeps a unit's state in workgroup memory exactly where it is at most
/// `SHARED_STATE_MAX` and fits beside the increment and the reduction.
#[test]
fn reverse_sweep_state_in_workgroup_memory_where_it_fits() {
    for (s, precision, limits) in [
        (
            shape(256, 10_000, 4, 3),
            Precision::F32,
            DeviceLimits::LARGE_GPU,
        ),
        (
            shape(128, 256, 4, 6),
            Precision::F32,
            DeviceLimits::LARGE_GPU,
        ),
        (
            shape(128, 256, 4, 6),
            Precision::F64,
            DeviceLimits::LARGE_GPU,
        ),
        (shape(8, 64, 3, 8), Precision::F32, DeviceLimits::LARGE_GPU),
        (
            shape(8, 64, 2, 3),
            Precision::F64,
            DeviceLimits {
                workgroup_memory: 16 << 10,
                ..DeviceLimits::LARGE_GPU
            },
        ),
    ] {
        let p = plan(Pass::Backward, s, precision, limits, u64::MAX).unwrap();
        let d = s.aug_dim();
        let state = p.tables.scratch() * precision.size();
        let bytes = state + (d + p.key.wg as u64) * precision.size();
        assert_eq!(
            p.key.shared_state,
            state <= SHARED_STATE_MAX && bytes <= limits.workgroup_memory,
            "{s:?} {precision:?}: {bytes} bytes of state"
        );
        let forward = plan(Pass::Forward, s, precision, limits, u64::MAX).unwrap();
        assert!(
            !forward.key.shared_state,
            "only the reverse sweep has such state"
        );
    }
    // Both kinds occur among these shapes.
    let kinds: Vec<bool> = [(4, 3), (4, 6)]
        .iter()
        .map(|&(d, n)| {
            let s = shape(8, 64, d, n);
            planned(Pass::Backward, s).key.shared_state
        })
        .collect();
    assert_eq!(kinds, [true, false]);
}
