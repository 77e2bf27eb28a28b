//! The `heimdall` binary. Everything lives in the library crates; see ARCHITECTURE.md.

fn main() -> std::process::ExitCode {
    heimdall_cli::main()
}
