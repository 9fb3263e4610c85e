//! Rebuilds the crate when a dashboard file changes (the files are embedded).
fn main() {
    println!("cargo:rerun-if-changed=ui");
}
