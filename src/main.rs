//! The `keygate` binary: a thin command line over the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(keygate::server::cli::main())
}
