//! The panic hook of the `fiktiv` binary. The default hook prints a panic's message,
//! which may have been formatted from a value that holds personal data (an input, a
//! row). This one prints a fixed line and the source location only.
//!
//! The file is compiled into the binary (`mod panic_hook` in `main.rs`) and, unchanged,
//! into `service/tests/hardening_canary.rs`, which panics with canaries under it in a
//! child process and checks what reached stderr.

/// The fixed line printed for every panic.
pub const PANIC_LINE: &str = "fiktiv: internal error: a panic was caught; its message is \
                              withheld because it may hold personal data";

/// Replaces the default panic hook. A panic in a request handler ends that request's
/// task (tokio catches it); the hook runs first, wherever the panic happens.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown location".to_owned());
        eprintln!("{PANIC_LINE} (at {at})");
    }));
}
