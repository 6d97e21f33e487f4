//! No code generation: a build script only gives the kit an `OUT_DIR`, a folder inside the
//! target directory where [`frames::sample_frames_dir`] keeps the sample frames between test runs.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
