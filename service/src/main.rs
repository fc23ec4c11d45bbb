//! The `fiktiv` binary.

use clap::Parser;

mod panic_hook;

/// mimalloc rather than the system's malloc: the leak scan and the egress guard allocate
/// and free many short strings, across threads (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // First of all: a panic prints a fixed line and its location, never its message.
    panic_hook::install();
    // Then, before any key is loaded: no core dumps.
    if let Err(e) = fiktiv::hardening::forbid_core_dumps() {
        eprintln!("warning: cannot forbid core dumps: {e}");
    }
    let cli = fiktiv::cli::Cli::parse();
    let code = match fiktiv::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, joined.
            let msg = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("error: {msg}");
            2
        }
    };
    std::process::exit(code);
}
