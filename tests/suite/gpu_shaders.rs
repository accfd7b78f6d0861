//! The shaders, checked without a GPU: naga parses and validates each kernel in its f32 and f64 forms
//! with exactly the capabilities the device is asked for, and the bindings and workgroup sizes match
//! the Rust kernel table. A walk over `shaders/` keeps shader, table entry and mirror in step.

use roughsig::gpu::kernels::{
    BindingKind, Kernel, Precision, ENTRY_POINT, KERNELS, SCALAR_F32, SCALAR_F64,
};
use std::path::Path;
use wgpu::naga;

fn parse(kernel: &Kernel, precision: Precision) -> naga::Module {
    let src = kernel.wgsl(precision);
    naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| {
        panic!(
            "{} ({precision:?}) does not parse:\n{}",
            kernel.name,
            e.emit_to_string(&src)
        )
    })
}

fn validate(
    module: &naga::Module,
    caps: naga::valid::Capabilities,
) -> Result<naga::valid::ModuleInfo, String> {
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(module)
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn table_kernels_validate_in_both_precisions() {
    for kernel in KERNELS {
        for precision in [Precision::F32, Precision::F64] {
            let module = parse(kernel, precision);
            if let Err(e) = validate(&module, precision.capabilities()) {
                panic!("{} ({precision:?}) fails validation: {e}", kernel.name);
            }
        }
        // The f64 form really uses f64: without the capability it must fail.
        let f64_module = parse(kernel, Precision::F64);
        assert!(
            validate(&f64_module, Precision::F32.capabilities()).is_err(),
            "{}: the f64 form validates without FLOAT64, so the substitution did nothing",
            kernel.name
        );
    }
}

#[test]
fn scalar_alias_appears_exactly_once() {
    for kernel in KERNELS {
        let f32_form = kernel.wgsl(Precision::F32);
        let code = || f32_form.lines().map(|l| l.split("//").next().unwrap_or(""));
        assert_eq!(
            code().filter(|l| l.trim() == SCALAR_F32).count(),
            1,
            "{}: the f32 alias line",
            kernel.name
        );
        assert!(
            code().all(|l| !l.contains("f64") && !l.contains(SCALAR_F64)),
            "{}: f64 in the code of the f32 form",
            kernel.name
        );
        let f64_form = kernel.wgsl(Precision::F64);
        assert_eq!(f64_form.matches(SCALAR_F64).count(), 1, "{}", kernel.name);
        assert_eq!(
            f64_form.replace(SCALAR_F64, SCALAR_F32),
            kernel.wgsl(Precision::F32),
            "{}: the f64 form differs by more than the alias line",
            kernel.name
        );
    }
}

#[test]
fn bindings_and_workgroup_sizes_match_the_kernel_table() {
    for kernel in KERNELS {
        let module = parse(kernel, Precision::F32);
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == ENTRY_POINT)
            .unwrap_or_else(|| panic!("{}: no entry point {ENTRY_POINT}", kernel.name));
        assert_eq!(entry.stage, naga::ShaderStage::Compute, "{}", kernel.name);
        assert_eq!(
            entry.workgroup_size, kernel.workgroup_size,
            "{}: workgroup size",
            kernel.name
        );
        assert_eq!(module.entry_points.len(), 1, "{}", kernel.name);
        let mut found: Vec<(u32, String, BindingKind)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let b = g.binding.as_ref()?;
                assert_eq!(b.group, 0, "{}: only group 0 is bound", kernel.name);
                let kind = match g.space {
                    naga::AddressSpace::Uniform => BindingKind::Uniform,
                    naga::AddressSpace::Storage { access } => {
                        if access.contains(naga::StorageAccess::STORE) {
                            BindingKind::StorageReadWrite
                        } else {
                            BindingKind::StorageRead
                        }
                    }
                    other => panic!("{}: binding in {other:?}", kernel.name),
                };
                Some((b.binding, g.name.clone().unwrap_or_default(), kind))
            })
            .collect();
        found.sort_by_key(|f| f.0);
        let want: Vec<(u32, String, BindingKind)> = kernel
            .bindings
            .iter()
            .map(|b| (b.binding, b.name.to_string(), b.kind))
            .collect();
        assert_eq!(found, want, "{}: bindings", kernel.name);
    }
}

/// The uniform block's size in WGSL matches the Rust struct the table names.
#[test]
fn params_struct_matches_rust() {
    for kernel in KERNELS {
        let module = parse(kernel, Precision::F32);
        let (_, params) = module
            .global_variables
            .iter()
            .find(|(_, g)| g.name.as_deref() == Some("params"))
            .expect("params");
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        assert_eq!(
            layouter[params.ty].size as usize, kernel.params_size,
            "{}",
            kernel.name
        );
    }
}

/// The signature kernels are generated per (dimension, degree, dtype, flags, workgroup size): every
/// kernel of a spread of keys parses and validates with exactly the capabilities of its precision,
/// and its bindings match the table the driver binds by.
#[test]
fn sig_kernels_validate_for_every_generated_variant() {
    use roughsig::gpu::sig::wgsl::{source, SigKey, SIG_KERNELS};
    let mut keys = Vec::new();
    for (d, degree, dim, lead_lag, time_aug) in [
        (1, 1, 1, false, false),
        (2, 1, 2, false, false),
        (2, 3, 1, true, false),
        (3, 8, 3, false, false),
        (4, 4, 2, true, false),
        (5, 3, 2, true, true),
        (16, 3, 16, false, false),
        (300, 2, 299, false, true),
    ] {
        for precision in [Precision::F32, Precision::F64] {
            for wg in [32, 64, 256] {
                keys.push(SigKey {
                    d,
                    degree,
                    dim,
                    lead_lag,
                    time_aug,
                    precision,
                    wg,
                    shared_state: wg == 64,
                });
            }
        }
    }
    for key in &keys {
        for kernel in SIG_KERNELS {
            let src = source(kernel, key).expect("sizes fit u32");
            let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| {
                panic!(
                    "{} {key:?} does not parse:\n{}",
                    kernel.name,
                    e.emit_to_string(&src)
                )
            });
            if let Err(e) = validate(&module, key.precision.capabilities()) {
                panic!("{} {key:?} fails validation: {e}", kernel.name);
            }
            if key.precision == Precision::F64 {
                assert!(
                    validate(&module, Precision::F32.capabilities()).is_err(),
                    "{} {key:?}: the f64 form validates without FLOAT64",
                    kernel.name
                );
            }
            let entry = &module.entry_points[0];
            assert_eq!(entry.name, ENTRY_POINT);
            assert_eq!(
                entry.workgroup_size,
                [kernel.workgroup_size(key), 1, 1],
                "{}",
                kernel.name
            );
            let mut found: Vec<(u32, String)> = module
                .global_variables
                .iter()
                .filter_map(|(_, g)| Some((g.binding.as_ref()?.binding, g.name.clone()?)))
                .collect();
            found.sort();
            let want: Vec<(u32, String)> = kernel
                .bindings
                .iter()
                .map(|b| (b.binding, b.name.to_string()))
                .collect();
            assert_eq!(found, want, "{}: bindings", kernel.name);
            // The uniform block is the driver's `SigParams`.
            let (_, params) = module
                .global_variables
                .iter()
                .find(|(_, g)| g.name.as_deref() == Some("params"))
                .expect("params");
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).unwrap();
            assert_eq!(
                layouter[params.ty].size as usize,
                std::mem::size_of::<roughsig::gpu::sig::plan::SigParams>(),
                "{}",
                kernel.name
            );
        }
    }
}

/// The two signature-kernel shaders share their uniform block (`SigKernelParams`).
#[test]
fn sig_kernel_shaders_share_their_params() {
    let forward = roughsig::gpu::kernels::SIG_KERNEL_FORWARD.wgsl(Precision::F32);
    let backward = roughsig::gpu::kernels::SIG_KERNEL_BACKWARD.wgsl(Precision::F32);
    let params = |src: &str| {
        assert_eq!(src.matches("struct Params {").count(), 1);
        let start = src.find("struct Params {").unwrap();
        src[start..start + src[start..].find("\n}\n").unwrap()]
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(params(&forward), params(&backward), "struct Params differs");
}

#[test]
fn every_shader_has_a_table_entry_and_a_mirror() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("shaders")).unwrap() {
        let path = entry.unwrap().path();
        // shaders/sig/ holds the generated signature kernels (checked above).
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let kernel = KERNELS
            .iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("shaders/{name}.wgsl has no kernel-table entry"));
        assert_eq!(
            kernel.source,
            std::fs::read_to_string(&path).unwrap(),
            "{name}: the table embeds another file"
        );
        assert!(
            root.join(format!("src/gpu/mirror/{name}.rs")).exists(),
            "shaders/{name}.wgsl has no mirror src/gpu/mirror/{name}.rs"
        );
        names.push(name);
    }
    for kernel in KERNELS {
        assert!(
            names.iter().any(|n| n == kernel.name),
            "kernel {} has no shaders/{}.wgsl",
            kernel.name,
            kernel.name
        );
    }
}

/// Lines of `src` (comments stripped) that use `while` or `loop`.
fn unbounded_loops(src: &str) -> Vec<String> {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|code| {
            code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "while" || word == "loop")
        })
        .map(str::to_string)
        .collect()
}

/// The pipelines are compiled without wgpu's loop guards, which is sound only while every loop is a
/// counted `for`: no kernel, table or generated, may use `while` or `loop`.
#[test]
fn kernels_use_counted_loops_only() {
    use roughsig::gpu::sig::wgsl::{source, SigKey, SIG_KERNELS};
    assert_eq!(
        unbounded_loops("x = 1; // while\nwhile i < n {\nloop {"),
        ["while i < n {", "loop {"],
        "the scan itself"
    );
    for kernel in KERNELS {
        let src = kernel.wgsl(Precision::F64);
        assert_eq!(
            unbounded_loops(&src),
            Vec::<String>::new(),
            "{}",
            kernel.name
        );
    }
    let key = SigKey {
        d: 5,
        degree: 3,
        dim: 2,
        lead_lag: true,
        time_aug: true,
        precision: Precision::F64,
        wg: 64,
        shared_state: true,
    };
    for kernel in SIG_KERNELS {
        let src = source(kernel, &key).expect("sizes fit u32");
        assert_eq!(
            unbounded_loops(&src),
            Vec::<String>::new(),
            "{}",
            kernel.name
        );
    }
}
