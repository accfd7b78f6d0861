//! The command line's tests, one module per area, built as one test binary. Each runs the `roughsig`
//! binary on `.npy` files and checks its output against the library.

mod cli;
mod cli_logsig;
mod cli_sig_kernel;

/// Whether these tests have a GPU (failing instead where `ROUGHSIG_REQUIRE_GPU=1` asks for one).
fn gpu() -> bool {
    let found = !roughsig::gpu::adapters().adapters.is_empty();
    if !found && std::env::var("ROUGHSIG_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("ROUGHSIG_REQUIRE_GPU=1 but no GPU adapter was found");
    }
    found
}
