//! The daemon under test: the same entry point as relay's `ratspost` binary, built inside this
//! package so that the end-to-end tests find it through `CARGO_BIN_EXE_ratspost-e2e`.

fn main() -> std::process::ExitCode {
    relay::cli::main()
}
