//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!`
//! embeds the `schemas/` folders at compile time, and on a stable compiler
//! cargo does not see a new file there on its own.

fn main() {
    println!("cargo:rerun-if-changed=schemas");
}
