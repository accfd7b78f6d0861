//! The wgpu side: one instance and adapter list per process, one device per adapter (made on first
//! use), compiled pipelines cached per device, and every wgpu failure turned into [`Error::Device`].
//!
//! wgpu reports validation errors through error scopes or an uncaptured-error handler whose default
//! panics. Each operation here runs inside error scopes (popped on the same thread, as wgpu's scopes are
//! thread-local), and the device's uncaptured-error handler only records the message, so that a
//! failure becomes an error of the call that caused it, never a panic.

use super::kernels::{BindingKind, Kernel, Precision, ENTRY_POINT};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The backends roughsig asks wgpu for (overridable with `WGPU_BACKEND`). GL is left out on purpose:
/// without Vulkan it would quietly give llvmpipe through GL, which has no f64.
fn backends() -> wgpu::Backends {
    let native = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    wgpu::Backends::from_env().unwrap_or(native) & native
}

/// One adapter wgpu found, and its device once someone has used it.
pub(crate) struct Entry {
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    context: OnceLock<std::result::Result<Arc<Context>, String>>,
}

impl Entry {
    pub fn has_f64(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F64)
    }

    /// A hardware GPU, the only kind `Device::Auto` picks on its own.
    pub fn is_hardware(&self) -> bool {
        matches!(
            self.info.device_type,
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
        )
    }

    /// Preference among adapters: discrete, integrated, virtual, other, software.
    pub fn rank(&self) -> u8 {
        match self.info.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        }
    }

    /// The device of this adapter, created on first use and shared by every later call.
    pub fn context(&self) -> Result<Arc<Context>> {
        self.context
            .get_or_init(|| Context::new(self).map(Arc::new))
            .clone()
            .map_err(Error::Device)
    }
}

/// Every adapter of the process, enumerated once.
pub(crate) struct Registry {
    /// Kept alive for as long as the adapters are.
    _instance: wgpu::Instance,
    pub entries: Vec<Entry>,
}

pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let backends = backends();
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let entries = adapters
            .into_iter()
            .map(|adapter| Entry {
                info: adapter.get_info(),
                features: adapter.features(),
                limits: adapter.limits(),
                adapter,
                context: OnceLock::new(),
            })
            .collect();
        Registry {
            _instance: instance,
            entries,
        }
    })
}

/// Loop iterations one invocation may run per dispatch, as `gpu::sig`'s loop-cost model counts them.
/// llvmpipe (lavapipe) ends every loop of an invocation once 65535 iterations have run in all (its
/// shader compiler's guard against hangs), so results past it would be silently wrong; the budget
/// keeps a margin below that (the model itself overestimates, measured). Elsewhere the budget only
/// keeps single dispatches short (display watchdogs end long ones).
fn loop_budget(info: &wgpu::AdapterInfo) -> u64 {
    let llvmpipe = info.device_type == wgpu::DeviceType::Cpu
        && (info.name.contains("llvmpipe") || info.driver.contains("llvmpipe"));
    if llvmpipe {
        48_000
    } else {
        1 << 24
    }
}

/// A compiled kernel and the layout its bind groups are made with.
pub(super) struct Pipeline {
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) pipeline: wgpu::ComputePipeline,
}

/// A device and queue on one adapter, with the pipelines compiled so far.
pub(crate) struct Context {
    pub name: String,
    pub f64: bool,
    pub limits: wgpu::Limits,
    /// The most loop iterations one invocation may run in one dispatch (see [`loop_budget`]).
    pub loop_budget: u64,
    /// Whether kernel time can be measured (`TIMESTAMP_QUERY`).
    pub timestamps: bool,
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pipelines: Mutex<HashMap<(&'static str, Precision), Arc<Pipeline>>>,
    /// Pipelines of generated shaders, by their source's key.
    pub(super) generated: Mutex<HashMap<String, Arc<Pipeline>>>,
    /// Buffers of finished calls, by (size, usage), for the next call of the same shape.
    pub(super) pool: Mutex<HashMap<(u64, u32), Vec<wgpu::Buffer>>>,
    /// Errors no scope caught (recorded by the handler instead of panicking) and device loss.
    uncaptured: Arc<Mutex<Option<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

impl Context {
    /// The most bytes one buffer may hold and be bound whole: the smaller of the adapter's binding
    /// and buffer limits.
    pub fn max_buffer_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    fn new(entry: &Entry) -> std::result::Result<Context, String> {
        let f64 = entry.has_f64();
        let timestamps = entry.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        let mut features = wgpu::Features::empty();
        if f64 {
            features |= wgpu::Features::SHADER_F64;
        }
        if timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("roughsig"),
            required_features: features,
            // The adapter's own limits: the defaults cap a storage binding at 128 MiB.
            required_limits: entry.limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(entry.adapter.request_device(&desc))
            .map_err(|e| format!("adapter '{}': cannot open a device: {e}", entry.info.name))?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            *slot = Some(format!("{reason:?}: {message}"));
        });
        Ok(Context {
            name: entry.info.name.clone(),
            f64,
            limits: device.limits(),
            loop_budget: loop_budget(&entry.info),
            timestamps,
            device,
            queue,
            pipelines: Mutex::new(HashMap::new()),
            generated: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            uncaptured,
            lost,
        })
    }

    pub(super) fn device_error(&self, what: &str, message: impl std::fmt::Display) -> Error {
        Error::Device(format!("adapter '{}': {what}: {message}", self.name))
    }

    /// Run `f` inside validation, out-of-memory and internal error scopes; any error they catch (or
    /// the uncaptured-error handler recorded, or a lost device) fails the call.
    pub(super) fn scoped<R>(&self, what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(self.device_error("device lost", reason));
        }
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = f();
        // Scopes pop in reverse order of pushing.
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
            pollster::block_on(internal.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(self.device_error(what, e));
        }
        if let Some(e) = self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(self.device_error(what, e));
        }
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(self.device_error("device lost", reason));
        }
        result
    }

    /// The pipeline of `kernel` in `precision`, compiled on first use.
    pub(super) fn pipeline(
        &self,
        kernel: &'static Kernel,
        precision: Precision,
    ) -> Result<Arc<Pipeline>> {
        let key = (kernel.name, precision);
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        if precision == Precision::F64 && !self.f64 {
            return Err(self.device_error(
                "f64 requested",
                "the adapter has no SHADER_F64 feature; use f32 or the CPU",
            ));
        }
        let pipeline = self.compile(kernel.name, kernel.wgsl(precision), kernel.bindings)?;
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Compile `source` (entry point [`ENTRY_POINT`]) with group 0 laid out as `bindings`.
    pub(super) fn compile(
        &self,
        label: &str,
        source: String,
        bindings: &[super::kernels::BindingSpec],
    ) -> Result<Arc<Pipeline>> {
        self.scoped(&format!("compiling {label}"), || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            // Without loop guards: wgpu's default adds a 64-bit iteration counter to every loop,
            // which stops drivers from unrolling the small fixed loops the kernels keep their
            // state in, and that state then goes to memory instead of registers (about 100× slower
            // on NVIDIA's Vulkan driver). Bounds and division checks stay on.
            //
            // SAFETY: every loop in these shaders is a `for` whose counter moves towards a bound
            // that is fixed before the loop starts (a constant, a uniform or a value computed from
            // them), so each loop terminates; `tests/suite/gpu_shaders.rs` rejects `while` and
            // `loop` in every kernel's source.
            let module = unsafe {
                self.device.create_shader_module_trusted(
                    desc,
                    wgpu::ShaderRuntimeChecks {
                        force_loop_bounding: false,
                        ..wgpu::ShaderRuntimeChecks::checked()
                    },
                )
            };
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .map(|b| wgpu::BindGroupLayoutEntry {
                    binding: b.binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match b.kind {
                            BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                            BindingKind::StorageRead => {
                                wgpu::BufferBindingType::Storage { read_only: true }
                            }
                            BindingKind::StorageReadWrite => {
                                wgpu::BufferBindingType::Storage { read_only: false }
                            }
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(label),
                    entries: &entries,
                });
            let pipeline_layout =
                self.device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(label),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(label),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(ENTRY_POINT),
                    compilation_options: Default::default(),
                    cache: None,
                });
            Ok(Arc::new(Pipeline { layout, pipeline }))
        })
    }

    /// A buffer of at least `bytes` bytes (never empty: wgpu rejects empty bindings), rounded up to
    /// wgpu's copy alignment.
    pub fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let size = bytes.max(16).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    pub fn write(&self, buffer: &wgpu::Buffer, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.queue.write_buffer(buffer, 0, bytes);
        }
    }

    /// Write the first `bytes` bytes of `buffer` through the driver's staging memory: `fill` gets
    /// them to fill in place.
    pub(super) fn write_with(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) {
        let padded = bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let Some(size) = wgpu::BufferSize::new(padded) else {
            return;
        };
        // A write past the buffer's end is a validation error, which the call's scope reports.
        if let Some(mut view) = self.queue.write_buffer_with(buffer, 0, size) {
            fill(view.slice(..bytes as usize));
        }
    }

    /// Write the first `bytes` bytes of `buffer` through `staging` (mappable for writing, at least
    /// as large), which the caller keeps for later calls: `fill` gets them to fill in place. The
    /// copy into `buffer` is submitted at once, ahead of the call's own submission. If `staging`
    /// could not be mapped, nothing is written and `fill` is handed back.
    pub(super) fn write_staged<F: FnOnce(wgpu::WriteOnly<'_, [u8]>)>(
        &self,
        staging: &wgpu::Buffer,
        buffer: &wgpu::Buffer,
        bytes: u64,
        fill: F,
    ) -> Option<F> {
        let padded = bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let slice = staging.slice(..padded);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Write, move |r| {
            let _ = tx.send(r);
        });
        let waited = self.device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: None,
        });
        if waited.is_err() || !matches!(rx.recv(), Ok(Ok(()))) {
            return Some(fill);
        }
        match slice.get_mapped_range_mut() {
            Ok(mut view) => fill(view.slice(..bytes as usize)),
            Err(_) => {
                staging.unmap();
                return Some(fill);
            }
        }
        staging.unmap();
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("roughsig upload"),
            });
        encoder.copy_buffer_to_buffer(staging, 0, buffer, 0, padded);
        self.queue.submit([encoder.finish()]);
        None
    }

    /// Submit `encoder` (which ends by copying what is to be read into `staging`), wait for it, and
    /// hand the first `bytes` bytes of `staging` to `read` while mapped. Returns the seconds spent
    /// waiting for the GPU and reading.
    pub(super) fn finish(
        &self,
        encoder: wgpu::CommandEncoder,
        staging: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]),
    ) -> Result<(f64, f64)> {
        let start = std::time::Instant::now();
        let submission = self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| self.device_error("waiting for the GPU", e))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.device_error("mapping the result", e)),
            Err(_) => return Err(self.device_error("mapping the result", "callback never ran")),
        }
        let waited = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| self.device_error("reading the result", e))?;
            read(&view);
        }
        staging.unmap();
        Ok((waited, start.elapsed().as_secs_f64()))
    }
}
