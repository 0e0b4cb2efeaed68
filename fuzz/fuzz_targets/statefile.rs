//! The state-file reader on any bytes: no panic; whatever it accepts is
//! rendered and read back to the same state, and a rendered state with any
//! one byte changed is refused (the trailer's checksum).
#![no_main]

use badguys::store::statefile::{parse, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = parse(data) {
        let text = render(&st);
        let back = parse(&text).expect("a rendered state parses");
        assert_eq!(render(&back), text);
        if let Some(&x) = data.first() {
            let mut damaged = text;
            let i = data.len() % damaged.len();
            damaged[i] ^= x.max(1);
            assert!(parse(&damaged).is_err(), "byte {i} ^ {x:#04x} went unnoticed");
        }
    }
});
