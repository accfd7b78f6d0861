//! Paths uploaded once, signatures kept on the GPU, log-signatures, gradients and Chen's products
//! computed from them there: `cargo run --release --example device_resident` (any adapter, lavapipe included).
use roughsig::gpu::{last_gpu_report, GpuPaths};
use roughsig::{Device, LogSigMethod, SigOptions};

fn main() -> roughsig::Result<()> {
    let (batch, length, dim, degree) = (32, 200, 3, 4);
    let paths = ndarray::Array3::<f32>::from_shape_fn((batch, length, dim), |(b, i, j)| {
        ((b * 31 + i * 7 + j * 13) as f32 * 0.37).sin() * 0.1
    });
    let opts = SigOptions::default()
        .device(Device::Gpu(None))
        .time_aug(true);
    let on_gpu = GpuPaths::new(paths.view(), &opts)?;
    println!("upload: {:?}", last_gpu_report());
    let sigs = on_gpu.sig(degree)?;
    println!("sig (left on the GPU): {:?}", last_gpu_report());
    let logs = sigs.log_sig(LogSigMethod::Words)?;
    println!("log_sig from the resident signatures: {:?}", logs.shape());
    let host = sigs.to_host()?;
    let derivs = host.mapv(|x| 2.0 * x);
    let grads = on_gpu.sig_backprop(&sigs, derivs.view())?;
    println!("sig_backprop of |S|²: {:?}", last_gpu_report());
    // The same on the CPU, for comparison.
    let cpu = opts.clone().device(Device::Cpu);
    let want = roughsig::sig(paths.view(), degree, &cpu)?;
    let diff = (&host - &want)
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    let want_grads =
        roughsig::sig_backprop(paths.view(), want.view(), derivs.view(), degree, &cpu)?;
    let gdiff = (&grads - &want_grads)
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    println!("largest difference from the CPU: signatures {diff:.2e}, gradients {gdiff:.2e}");
    // Chen's product of each path with itself traversed twice, without leaving the GPU.
    let twice = sigs.combine(&sigs)?;
    println!("combine on the GPU: {:?}", last_gpu_report());
    let want_twice = roughsig::sig_combine(want.view(), want.view(), dim, degree, &cpu)?;
    let cdiff = (&twice.to_host()? - &want_twice)
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    println!("difference of the product from the CPU's: {cdiff:.2e}");
    Ok(())
}
