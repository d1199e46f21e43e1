//! `softphone-bridge`: arguments → config → run → exit code. Everything else is in the library.

fn main() -> std::process::ExitCode {
    softphone_bridge::cli::main()
}
