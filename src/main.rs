use std::process::ExitCode;

fn main() -> ExitCode {
    stripe_sync::cli::main()
}
