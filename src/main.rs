//! The `keygate` binary: a thin command line over the library.

use std::process::ExitCode;

// The library never sets an allocator; the service does, for its proxy path's buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(keygate::server::main())
}
