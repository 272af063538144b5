#![no_main]
// Placeholder: the change that adds this parser fills in the target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
