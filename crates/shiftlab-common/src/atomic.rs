//! The one atomic file writer of the workspace.
//!
//! Invariant: a file appears under its final name only whole. It is written under a hidden
//! temporary name beside the final one, unique to the writing process and call
//! (`.NAME.~HOST~PID~SEQ.tmp`), flushed and fsynced, renamed over the final name, and the folder
//! is fsynced so the rename itself survives a crash. Many invocations may write into one folder
//! at once (shards of a run, on one machine or several over NFS): their temporaries never
//! collide, and [`remove_stale_temporaries`] deletes only those whose writer is provably gone.
//! Rename and create-exclusive link are the only coordination used: both are atomic on local
//! file systems and on NFS, unlike `flock`.
//!
//! A writer dropped before [`AtomicFile::commit`] removes its temporary.
//!
//! Test hook: when the environment variable `SHIFTLAB_FAIL_WRITES` is set, creating (and writing)
//! a file whose final path contains its value fails with ENOSPC ("No space left on device"), so
//! tests can put a full disk under any output without a small file system.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::invocation::Invocation;

const TMP_SUFFIX: &str = ".tmp";
const TAG_MARK: &str = ".~";

/// A file being written under a temporary name; [`AtomicFile::commit`] publishes it.
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    tmp_path: PathBuf,
    file: Option<io::BufWriter<File>>,
    fail: bool,
}

impl AtomicFile {
    /// Creates the temporary beside `final_path` (and the folder if needed).
    pub fn create(final_path: &Path) -> io::Result<AtomicFile> {
        if let Some(dir) = final_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        if injected_failure(final_path) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let tmp_path = temporary_name(final_path);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(AtomicFile {
            final_path: final_path.to_path_buf(),
            tmp_path,
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            fail: injected_failure(final_path),
        })
    }

    /// Where the bytes are until commit: for writers that only take a path (libtorch's
    /// safetensors writer). Write there, then [`AtomicFile::commit`].
    pub fn temporary_path(&self) -> &Path {
        &self.tmp_path
    }

    /// The name the file will have once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Flushes, fsyncs and renames over the final name (replacing a file already there), then
    /// fsyncs the folder.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        self.sync()?;
        std::fs::rename(&self.tmp_path, &self.final_path)?;
        sync_parent(&self.final_path)?;
        Ok(self.final_path.clone())
    }

    /// Like [`AtomicFile::commit`], but fails with `AlreadyExists` when the final name exists
    /// (a hard link is create-exclusive): the first of many racing writers wins, whole.
    pub fn commit_exclusive(mut self) -> io::Result<PathBuf> {
        self.sync()?;
        let linked = std::fs::hard_link(&self.tmp_path, &self.final_path);
        let _ = std::fs::remove_file(&self.tmp_path);
        linked?;
        sync_parent(&self.final_path)?;
        Ok(self.final_path.clone())
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(w) = self.file.take() {
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        Ok(())
    }

    fn check_injected(&self) -> io::Result<()> {
        if self.fail {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(())
    }
}

/// Linux's "No space left on device".
const ENOSPC: i32 = 28;

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_injected()?;
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()?;
    Ok(())
}

/// `dir/NAME` -> `dir/.NAME.~HOST~PID~SEQ.tmp`: hidden (readers of `*.parquet` skip it) and unique
/// to this process and call.
pub fn temporary_name(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tag = Invocation::current().tag();
    path.with_file_name(format!(".{name}{TAG_MARK}{tag}~{seq}{TMP_SUFFIX}"))
}

/// The writer of a temporary made by [`temporary_name`], if the name is one.
pub fn temporary_writer(file_name: &str) -> Option<Invocation> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(TMP_SUFFIX)?;
    let (_, tag) = inner.rsplit_once(TAG_MARK)?;
    let (writer, seq) = tag.rsplit_once('~')?;
    seq.parse::<u64>().ok()?;
    Invocation::from_tag(writer)
}

/// Removes the temporaries in `dir` whose writer is provably gone (see [`Invocation::is_gone`]);
/// returns how many. Files of live writers, of other hosts and of other programs stay.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = temporary_writer(&name).is_some_and(|w| w.is_gone());
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// fsync of the folder holding `path`, so a rename into it is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match File::open(dir) {
        Ok(d) => d.sync_all().or_else(|e| {
            // Some file systems (and some NFS servers) refuse fsync on a folder.
            if e.kind() == io::ErrorKind::InvalidInput || e.raw_os_error() == Some(EINVAL) {
                Ok(())
            } else {
                Err(e)
            }
        }),
        Err(e) => Err(e),
    }
}

const EINVAL: i32 = 22;

fn injected_failure(final_path: &Path) -> bool {
    static PATTERN: OnceLock<Option<String>> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            std::env::var("SHIFTLAB_FAIL_WRITES")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .as_deref()
        .is_some_and(|p| final_path.to_string_lossy().contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("shiftlab-common-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_under_the_final_name_until_commit_and_no_temporary_after() {
        let dir = tempdir();
        let path = dir.join("a.bin");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!path.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(names(&dir), vec!["a.bin".to_string()]);
        // A dropped writer leaves nothing behind.
        let mut g = AtomicFile::create(&dir.join("b.bin")).unwrap();
        g.write_all(b"half").unwrap();
        drop(g);
        assert_eq!(names(&dir), vec!["a.bin".to_string()]);
    }

    #[test]
    fn temporaries_are_unique_and_name_their_writer() {
        let a = temporary_name(Path::new("/x/part-00001.parquet"));
        let b = temporary_name(Path::new("/x/part-00001.parquet"));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".part-00001.parquet.~"), "{name}");
        assert_eq!(
            temporary_writer(&name).as_ref(),
            Some(Invocation::current())
        );
        assert_eq!(temporary_writer(".part-00001.parquet.tmp"), None);
        assert_eq!(temporary_writer("part-00001.parquet"), None);
    }

    #[test]
    fn exclusive_commit_lets_the_first_writer_win() {
        let dir = tempdir();
        let path = dir.join("run.json");
        let mut a = AtomicFile::create(&path).unwrap();
        a.write_all(b"first").unwrap();
        let mut b = AtomicFile::create(&path).unwrap();
        b.write_all(b"second").unwrap();
        a.commit_exclusive().unwrap();
        let err = b.commit_exclusive().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(names(&dir), vec!["run.json".to_string()]);
    }

    #[test]
    fn only_temporaries_of_gone_writers_are_removed() {
        let dir = tempdir();
        let me = Invocation::current();
        let live = format!(".p.parquet{TAG_MARK}{}~0{TMP_SUFFIX}", me.tag());
        let dead = format!(".p.parquet{TAG_MARK}{}~4194305~0{TMP_SUFFIX}", me.host);
        let other = format!(
            ".p.parquet{TAG_MARK}elsewhere-{}~4194305~0{TMP_SUFFIX}",
            me.host
        );
        for n in [&live, &dead, &other, &".old.tmp".to_string()] {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&dir), 1);
        let mut want = vec![live, other, ".old.tmp".to_string()];
        want.sort();
        assert_eq!(names(&dir), want);
    }
}
