//! The device layer: adapter listing, explicit GPU requests that cannot be met, and what stays on the
//! CPU. Runs with or without a GPU adapter.

use ndarray::Array3;
use roughsig::{Device, Error, SigOptions};

#[test]
fn adapters_lists_and_auto_never_picks_a_software_adapter() {
    let list = roughsig::gpu::adapters();
    let text = list.to_string();
    assert!(text.contains(&list.auto_reason), "{text}");
    for a in &list.adapters {
        assert!(text.contains(&a.name), "{text}");
    }
    if let Some(i) = list.auto {
        let named = std::env::var(roughsig::gpu::ADAPTER_ENV).is_ok_and(|s| !s.is_empty());
        assert!(
            named
                || matches!(
                    list.adapters[i].device_type.as_str(),
                    "DiscreteGpu" | "IntegratedGpu"
                ),
            "Auto picked {:?}",
            list.adapters[i]
        );
    }
    eprintln!("{text}");
}

#[test]
fn gpu_named_like_nothing_is_a_device_error() {
    let path = Array3::<f32>::zeros((2, 4, 3));
    let opts = SigOptions::default().device(Device::Gpu(Some("no adapter is called this".into())));
    match roughsig::sig(path.view(), 2, &opts) {
        Err(Error::Device(msg)) => assert!(
            msg.contains("no adapter named like") || msg.contains("no GPU adapter"),
            "{msg}"
        ),
        other => panic!("expected a device error, got {other:?}"),
    }
}

#[test]
fn explicit_gpu_without_adapter_is_an_error_else_it_runs() {
    let path = Array3::<f32>::zeros((2, 4, 3));
    let opts = SigOptions::default().device(Device::Gpu(None));
    let result = roughsig::sig(path.view(), 2, &opts);
    if roughsig::gpu::adapters().adapters.is_empty() {
        assert!(matches!(result, Err(Error::Device(_))), "{result:?}");
    } else {
        assert!(result.is_ok(), "{result:?}");
    }
}

#[test]
fn auto_runs_small_workloads_on_the_cpu() {
    // Far below the threshold: the result is the CPU's, bit for bit.
    let path = ndarray::Array3::from_shape_fn((3, 5, 2), |(b, i, j)| (b + i * j) as f64 * 0.1);
    let auto = roughsig::sig(path.view(), 3, &SigOptions::default()).unwrap();
    let cpu = roughsig::sig(path.view(), 3, &SigOptions::default().device(Device::Cpu)).unwrap();
    assert_eq!(auto, cpu);
}
