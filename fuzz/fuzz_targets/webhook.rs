//! Fuzzes Svix webhook verification: headers and body as an attacker controls them.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fuzz_target!(|data: &[u8]| {
    // Split the input into id, timestamp, signature header and body at the first three newlines.
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let id = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let timestamp = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let signatures = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let body = parts.next().unwrap_or_default();
    let _ = keygate::server::webhooks::svix::verify(SECRET, id, timestamp, signatures, body, 1_700_000_000);
});
