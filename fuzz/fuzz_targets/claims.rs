//! Fuzzes the claims layer that only signed tokens reach: typed claims and the
//! Clerk v1/v2 organization decoding (including `fpm` bitmasks of any width), and the
//! plans, features and factor ages of `has()`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(data) {
        let _ = keygate::fuzzing::claims(map);
    }
});
