//! Fuzzes the JWKS document parser: any body a JWKS server could send.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keygate::fuzzing::jwks(data);
});
