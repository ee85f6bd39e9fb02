//! The `mes` command: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: rows are allocated on sqlx's SQLite
/// worker thread and freed on tokio's, and glibc serialises those cross-thread
/// frees on arena locks (a third of a large FETCH went into futex calls); it
/// also returns freed memory to the system, which glibc kept (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    mes::cli::main()
}
