//! The `roughsig` command-line tool; see `roughsig --help`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
