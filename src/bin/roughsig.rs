//! The `roughsig` command-line tool; see `roughsig --help`.

fn main() -> std::process::ExitCode {
    roughsig::cli::main()
}
