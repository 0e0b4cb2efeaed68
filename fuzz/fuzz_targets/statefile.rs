//! The state-file reader on any bytes: no panic; whatever it accepts is
//! rendered and read back to the same state.
#![no_main]

use badguys::store::statefile::{parse, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = parse(data) {
        let text = render(&st);
        let back = parse(&text).expect("a rendered state parses");
        assert_eq!(render(&back), text);
    }
});
