//! Writes test frames into a folder as `f0001.jpg`, `f0002.jpg`...
//!
//! ```text
//! cargo run -p framewire-testkit --example write_frames                  # tests/data/frames-1080p: 8 light frames (committed)
//! cargo run -p framewire-testkit --example write_frames -- --sample DIR  # the 39 grainy 1920x1080 sample frames
//! ```
//!
//! The sample set is a stand-in for the camera frames the benchmarks use when those are not at
//! hand; the light frames are the small ones committed for the Python client's tests and the shell
//! tiers.

use std::path::PathBuf;

use framewire_testkit::frames;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, made) = match args.as_slice() {
        [] => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let dir = root
                .canonicalize()
                .unwrap_or(root)
                .join("tests/data/frames-1080p");
            let light: Vec<Vec<u8>> = (0..8).map(|i| frames::light_frame(1920, 1080, i)).collect();
            (dir.clone(), frames::write_frames(&dir, &light))
        }
        [flag, dir] if flag == "--sample" => {
            let dir = PathBuf::from(dir);
            (
                dir.clone(),
                frames::write_frames(&dir, frames::sample_frames()),
            )
        }
        _ => {
            eprintln!("usage: write_frames [--sample DIR]");
            std::process::exit(2);
        }
    };
    println!("wrote {} frames to {}", made.len(), dir.display());
}
