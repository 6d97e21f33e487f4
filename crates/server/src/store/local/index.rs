//! The embedded SQLite index: one row per stored file.
//!
//! The files on disk are the truth; the index is a fast view of them that the hub rebuilds from
//! the disk where they disagree (see `reconcile`). So it runs in WAL mode with `synchronous=NORMAL`:
//! a lost index transaction after power loss is repaired at the next start, while the file it
//! describes was already fsynced before anyone was told it was stored.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// One stored file, as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Remote path under `files/`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// Who stored it.
    pub sender: String,
    /// When, µs since the Unix epoch.
    pub stored_us: i64,
    /// The file's modification time in ns, to notice files changed behind the hub's back.
    pub mtime_ns: i64,
}

pub(crate) struct Index {
    conn: Connection,
}

impl Index {
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Index> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS files (
                path TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                hash BLOB NOT NULL,
                sender TEXT NOT NULL,
                stored_us INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL
            ) WITHOUT ROWID;",
        )?;
        Ok(Index { conn })
    }

    pub(crate) fn get(&self, path: &str) -> rusqlite::Result<Option<FileRecord>> {
        self.conn
            .prepare_cached(
                "SELECT path, size, hash, sender, stored_us, mtime_ns FROM files WHERE path = ?1",
            )?
            .query_row([path], row_to_record)
            .optional()
    }

    /// Up to `limit` records whose path starts with `prefix`, in path order, after `after`.
    /// Returns the records and whether more follow.
    pub(crate) fn list(
        &self,
        prefix: &str,
        after: &str,
        sender: &str,
        limit: usize,
    ) -> rusqlite::Result<(Vec<FileRecord>, bool)> {
        // Paths sort bytewise (BINARY collation), so everything under `prefix` is one contiguous
        // run starting at `prefix`: seek there and stop at the first path outside it.
        let start = if after > prefix { after } else { prefix };
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, size, hash, sender, stored_us, mtime_ns FROM files
             WHERE path >= ?1 AND path != ?2 AND (?4 = '' OR sender = ?4) ORDER BY path LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![start, after, (limit + 1) as i64, sender],
            row_to_record,
        )?;
        let mut out = Vec::new();
        for r in rows {
            let r = r?;
            if !r.path.starts_with(prefix) {
                return Ok((out, false));
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(r);
        }
        Ok((out, false))
    }

    pub(crate) fn upsert_many(&mut self, records: &[FileRecord]) -> rusqlite::Result<()> {
        self.apply(records, &[])
    }

    pub(crate) fn delete_many(&mut self, paths: &[String]) -> rusqlite::Result<()> {
        self.apply(&[], paths)
    }

    /// Upserts and deletions in one transaction.
    pub(crate) fn apply(
        &mut self,
        upserts: &[FileRecord],
        deletes: &[String],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT OR REPLACE INTO files (path, size, hash, sender, stored_us, mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in upserts {
                up.execute(params![
                    r.path,
                    r.size as i64,
                    &r.hash[..],
                    r.sender,
                    r.stored_us,
                    r.mtime_ns
                ])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM files WHERE path = ?1")?;
            for p in deletes {
                del.execute([p])?;
            }
        }
        tx.commit()
    }

    pub(crate) fn all(&self) -> rusqlite::Result<Vec<FileRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, size, hash, sender, stored_us, mtime_ns FROM files ORDER BY path",
        )?;
        let rows = stmt.query_map([], row_to_record)?;
        rows.collect()
    }

    pub(crate) fn totals(&self) -> rusqlite::Result<(u64, u64)> {
        self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRecord> {
    let hash: Vec<u8> = r.get(2)?;
    let mut h = [0u8; 32];
    if hash.len() == 32 {
        h.copy_from_slice(&hash);
    }
    Ok(FileRecord {
        path: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        hash: h,
        sender: r.get(3)?,
        stored_us: r.get(4)?,
        mtime_ns: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str) -> FileRecord {
        FileRecord {
            path: path.into(),
            size: 1,
            hash: [1; 32],
            sender: "t".into(),
            stored_us: 0,
            mtime_ns: 0,
        }
    }

    #[test]
    fn list_pages_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let paths = ["a/1", "a/2", "a/3", "ab", "b/1"];
        ix.upsert_many(&paths.map(rec)).unwrap();
        let (page, more) = ix.list("a/", "", "", 2).unwrap();
        assert_eq!(
            page.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["a/1", "a/2"]
        );
        assert!(more);
        let (page, more) = ix.list("a/", "a/2", "", 2).unwrap();
        assert_eq!(
            page.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["a/3"]
        );
        assert!(!more);
        let (page, _) = ix.list("", "", "", 10).unwrap();
        assert_eq!(page.len(), 5);
        assert_eq!(ix.totals().unwrap(), (5, 5));
        assert!(ix.list("", "", "someone-else", 10).unwrap().0.is_empty());
    }
}
