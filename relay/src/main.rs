//! The `ratspost` binary: only wiring; everything lives in the `relay` library.

fn main() -> std::process::ExitCode {
    relay::cli::main()
}
