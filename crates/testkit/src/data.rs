//! Seeded test data: deterministic bytes, files and folder trees.
//!
//! The same seed gives the same bytes on every machine and every run, so a failure can be
//! replayed; different seeds give different bytes. The bytes do not compress, so nothing on the
//! way (a file system, a proxy) can shrink them.

use std::path::{Path, PathBuf};

/// A small seeded pseudo-random generator (SplitMix64): fast, any seed is fine (0 included).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        // One mixing step, so that seeds 1, 2, 3... do not start from neighbouring states.
        let mut rng = Rng(seed);
        rng.0 = rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times out of 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }
}

/// `len` deterministic bytes for `seed` (the start of `Rng::new(seed)`'s stream).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Writes `content` at `root/rel`, creating folders, and returns `content`.
///
/// # Panics
/// If the file cannot be written (a test cannot go on without it).
pub fn write_file(root: &Path, rel: impl AsRef<Path>, content: Vec<u8>) -> Vec<u8> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    std::fs::write(&path, &content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    content
}

/// Writes a tree of files of the given sizes under `root`: file `i` of `files` (a path relative to
/// `root` and a length) holds `bytes(seed + i, len)`. Returns each path with its content, in the
/// order given.
pub fn write_tree<P: AsRef<Path>>(
    root: &Path,
    seed: u64,
    files: impl IntoIterator<Item = (P, usize)>,
) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .into_iter()
        .enumerate()
        .map(|(i, (rel, len))| {
            let rel = rel.as_ref().to_path_buf();
            let content = write_file(root, &rel, bytes(seed.wrapping_add(i as u64), len));
            (rel, content)
        })
        .collect()
}

/// Every file below `root` with its content, as paths relative to `root`, sorted.
///
/// # Panics
/// If a folder or file cannot be read.
pub fn read_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = list_tree(root)
        .into_iter()
        .filter(|p| !p.is_dir())
        .map(|p| {
            let content = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p.strip_prefix(root).unwrap_or(&p).to_path_buf(), content)
        })
        .collect();
    out.sort();
    out
}

/// Every path below `root`, folders and files, sorted (to check what appeared where).
///
/// # Panics
/// If a folder cannot be read.
pub fn list_tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(bytes(7, 1000), bytes(7, 1000));
        assert_ne!(bytes(7, 1000), bytes(8, 1000));
        assert_ne!(bytes(0, 64), vec![0; 64]);
        // A prefix of a longer run, whatever the length's remainder mod 8.
        for len in [0, 1, 7, 8, 9, 100] {
            assert_eq!(bytes(3, len)[..], bytes(3, 200)[..len]);
        }
    }

    #[test]
    fn bytes_look_random() {
        let b = bytes(42, 1 << 16);
        let mut counts = [0u32; 256];
        for &x in &b {
            counts[usize::from(x)] += 1;
        }
        // 256 per value on average; every value shows up, none dominates.
        assert!(
            counts.iter().all(|&c| (128..512).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn ranges_hold() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert!(rng.below(10) < 10);
            assert!((5..=9).contains(&rng.range(5, 9)));
        }
        assert_eq!(rng.below(0), 0);
        assert!(!rng.chance(0));
        assert!(rng.chance(100));
    }

    #[test]
    fn trees_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_tree(
            dir.path(),
            5,
            [("a/b.bin", 10), ("c.bin", 0), ("a/d.bin", 3)],
        );
        assert_eq!(written[0].1, bytes(5, 10));
        assert_eq!(written[2].1, bytes(7, 3));
        let mut want = written.clone();
        want.sort();
        assert_eq!(read_tree(dir.path()), want);
        let names: Vec<_> = list_tree(dir.path())
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            ["a", "a/b.bin", "a/d.bin", "c.bin"].map(PathBuf::from)
        );
    }
}
