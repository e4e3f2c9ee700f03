// No build step of our own. This script exists so that `[build-dependencies]` in Cargo.toml takes
// effect: it names memchr with its default features on the host, as the `spark` build's
// prost-build does, so both builds share one compile of polars (see the comment there).
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
