//! The `roughsig` command line: the library's operations on `.npy` files, the device list and
//! calibration, and a demo on real data; see `roughsig --help`.

mod args;
mod commands;
mod demo;
mod npy;
mod progress;
mod timing;

use clap::Parser;
use std::process::ExitCode;

/// Parse the command line, run it, and turn every failure into one `error: …` line and exit status 1.
fn main() -> ExitCode {
    quiet_headless_vulkan();
    force_cpu_plan();
    // The library logs its device notes; show them on stderr as the command's own lines (RUST_LOG,
    // when set, chooses instead).
    let mut logger = env_logger::Builder::new();
    if std::env::var_os("RUST_LOG").is_some() {
        logger.parse_default_env();
    } else {
        logger.filter_module("roughsig", log::LevelFilter::Info);
    }
    logger
        .format(|out, record| {
            use std::io::Write;
            writeln!(out, "roughsig: {}", record.args())
        })
        .init();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    return ExitCode::SUCCESS;
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    return ExitCode::from(2);
                }
                _ => {}
            }
            // clap's message, up to its usage section, as one line.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let first = message.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            return fail(&format!("{first} (see roughsig --help)"));
        }
    };
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// Mesa's Vulkan device-select layer looks for a Wayland display while adapters are listed and, on a
/// machine without one, writes "XDG_RUNTIME_DIR is invalid or not set" on stderr, twice. Without a
/// display there is nothing for it to select by, so on such a machine the layer is turned off
/// (unless the user set its switch). Done first, while this is the only thread.
fn quiet_headless_vulkan() {
    let var = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let headless = !var("WAYLAND_DISPLAY") && !var("DISPLAY");
    if headless && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// For side-by-side timings of the CPU kernels' variants: `ROUGHSIG_ISA=baseline|avx2` caps the
/// instruction set, `ROUGHSIG_LEAD_LAG=dense|compact` fixes the lead-lag step.
fn force_cpu_plan() {
    use roughsig::cpu_plan::{force, Force, Isa, LeadLagStep};
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    force(Force {
        isa: match var("ROUGHSIG_ISA").as_str() {
            "baseline" => Some(Isa::Baseline),
            "avx2" => Some(Isa::Avx2Fma),
            _ => None,
        },
        lead_lag: match var("ROUGHSIG_LEAD_LAG").as_str() {
            "dense" => Some(LeadLagStep::Dense),
            "compact" => Some(LeadLagStep::Compact),
            _ => None,
        },
        ..Force::default()
    });
}

fn fail(message: &str) -> ExitCode {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
