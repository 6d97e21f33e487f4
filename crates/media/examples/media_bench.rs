//! Measures the media hot paths on one core, in release:
//! `cargo run --release -p framewire-media --example media_bench [-- FRAMES_DIR]`.
//!
//! Prints synthetic encode rates (640×480, 1280×720, 1920×1080), the 1080p thumbnail time and its
//! parts, probe time and MJPEG splitting throughput, using the 1080p camera frames of
//! `shared/data/frames-1080p` beside the repository (or FRAMES_DIR). Each figure is the best of
//! several batches, so other load on the machine inflates it less.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use framewire_media::mjpeg::Splitter;
use framewire_media::source::{FrameSource, Synthetic};
use framewire_media::{jpeg, thumbnail};

/// Mean time per call of `f` over the fastest of ten ~0.3 s batches.
fn time_per_call(mut f: impl FnMut()) -> Duration {
    f(); // warm up
    (0..10)
        .map(|_| {
            let start = Instant::now();
            let mut calls = 0u32;
            while start.elapsed() < Duration::from_millis(300) {
                f();
                calls += 1;
            }
            start.elapsed() / calls
        })
        .min()
        .expect("ten batches")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/frames-1080p")
        });
    let names = jpeg_files(&dir).unwrap_or_else(|why| {
        eprintln!(
            "media_bench: no frames to measure: {why}.\n\
             It reads the 1920x1080 camera JPEGs of shared/data/frames-1080p, beside the repository \
             checkout (the project's shared data), or of the folder given as its argument:\n  \
             cargo run --release -p framewire-media --example media_bench -- FRAMES_DIR\n\
             Without them, a stand-in set (synthetic, so figures differ from camera frames) is made by\n  \
             cargo run -p framewire-testkit --example write_frames -- --sample FRAMES_DIR"
        );
        std::process::exit(2);
    });

    for (w, h) in [(640, 480), (1280, 720), (1920, 1080)] {
        let mut source = Synthetic::new(w, h, 80).expect("synthetic");
        let mut bytes = 0usize;
        let t = time_per_call(|| bytes = source.next_frame().expect("frame").jpeg.len());
        println!(
            "synthetic {w}x{h} q80: {:.0} fps ({:.2} ms/frame, {} KB/frame)",
            1.0 / t.as_secs_f64(),
            ms(t),
            bytes / 1024
        );
    }

    let frames: Vec<Vec<u8>> = names
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let first = &frames[0];

    for max_side in [320, 160] {
        let mut len = 0;
        let t = time_per_call(|| len = thumbnail(first, max_side).expect("thumbnail").len());
        println!(
            "thumbnail 1920x1080 JPEG -> {max_side} px: {:.2} ms ({len} bytes)",
            ms(t)
        );
    }
    let decoded = jpeg::decode_rgb(first).expect("decode");
    let small = decoded.downscale_to_fit(320);
    let decode = time_per_call(|| {
        black_box(jpeg::decode_rgb(first).expect("decode"));
    });
    let downscale = time_per_call(|| {
        black_box(decoded.downscale_to_fit(320));
    });
    let encode = time_per_call(|| {
        black_box(small.encode_jpeg(80).expect("encode"));
    });
    println!(
        "  parts: decode {:.2} ms, box downscale {:.2} ms, encode 320x180 {:.2} ms",
        ms(decode),
        ms(downscale),
        ms(encode)
    );
    let t = time_per_call(|| {
        black_box(jpeg::probe(black_box(first)).expect("probe"));
    });
    println!("probe 1920x1080 JPEG: {} ns", t.as_nanos());

    let stream: Vec<u8> = frames.concat();
    let t = time_per_call(|| {
        let mut splitter = Splitter::new();
        let mut n = 0;
        for chunk in stream.chunks(64 * 1024) {
            splitter.push(chunk);
            while let Some(frame) = splitter.next_frame() {
                frame.expect("frame");
                n += 1;
            }
        }
        assert_eq!(n, frames.len());
    });
    println!(
        "MJPEG split, 64 KiB reads: {:.0} MB/s ({:.0} 1080p frames/s)",
        stream.len() as f64 / t.as_secs_f64() / 1e6,
        frames.len() as f64 / t.as_secs_f64()
    );
}

/// The `.jpg` files of `dir` in name order, or why there are none.
fn jpeg_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no .jpg files in {}", dir.display()));
    }
    Ok(names)
}
