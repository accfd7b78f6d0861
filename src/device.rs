//! Which backend runs an operation.

use crate::options::{threads, Device};
use crate::{Error, Result};

/// The backend chosen for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The CPU with this many threads.
    Cpu { threads: usize },
}

/// Resolve the device of an options struct. `ROUGHSIG_DEVICE=cpu|gpu|auto` replaces `Auto`.
pub(crate) fn select(device: &Device, n_jobs: i32) -> Result<Backend> {
    let device = match device {
        Device::Auto => match std::env::var("ROUGHSIG_DEVICE") {
            Ok(name) if !name.is_empty() => name.parse()?,
            _ => Device::Auto,
        },
        other => other.clone(),
    };
    match device {
        Device::Cpu | Device::Auto => Ok(Backend::Cpu {
            threads: threads(n_jobs)?,
        }),
        Device::Gpu(_) => Err(Error::Device(
            "this build of roughsig has no GPU backend; use --device cpu".into(),
        )),
    }
}
