//! Atomic output files: every file miv writes is written as `NAME.partial` in the same folder, flushed to disk
//! and renamed to `NAME`, so a reader never sees a half-written file under its real name. A partial file that
//! is not committed (an error, a dropped [`AtomicFile`]) is removed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The name a file is written under until it is complete: `NAME.partial` in the same folder.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// A file being written under its partial name; [`commit`](Self::commit) gives it its real name.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    partial: PathBuf,
    file: Option<io::BufWriter<File>>,
}

impl AtomicFile {
    /// Create (or truncate) `NAME.partial` for `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let path = path.as_ref().to_path_buf();
        let partial = partial_path(&path);
        let file = File::create(&partial)?;
        Ok(AtomicFile { path, partial, file: Some(io::BufWriter::new(file)) })
    }

    /// The final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush and sync the data, then rename the partial file to its real name.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("open until commit");
        let result = (|| {
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            commit_partial(&self.partial, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        result.map(|_| self.path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(contents.as_ref())?;
    f.commit().map(|_| ())
}

/// Give a complete partial file written by another library (HDF5) its real name: sync it, then rename.
pub fn commit_partial(partial: &Path, path: &Path) -> io::Result<()> {
    File::open(partial)?.sync_all()?;
    std::fs::rename(partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("miv-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn success_leaves_only_the_final_name() {
        let d = scratch("ok");
        write_atomic(d.join("out.csv"), "a,b\n1,2\n").unwrap();
        assert_eq!(names(&d), ["out.csv"]);
        assert_eq!(std::fs::read_to_string(d.join("out.csv")).unwrap(), "a,b\n1,2\n");
        // Replacing an existing file.
        write_atomic(d.join("out.csv"), "x\n").unwrap();
        assert_eq!(names(&d), ["out.csv"]);
        assert_eq!(std::fs::read_to_string(d.join("out.csv")).unwrap(), "x\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let d = scratch("drop");
        {
            let mut f = AtomicFile::create(d.join("out.csv")).unwrap();
            f.write_all(b"half").unwrap();
            f.flush().unwrap();
            assert_eq!(names(&d), ["out.csv.partial"]);
        }
        assert!(names(&d).is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let d = scratch("err");
        // The rename fails: the final name is a non-empty folder.
        std::fs::create_dir_all(d.join("out").join("x")).unwrap();
        assert!(write_atomic(d.join("out"), "data").is_err());
        assert_eq!(names(&d), ["out"]);
        assert!(d.join("out").is_dir());
        // The partial file cannot be created: no folder.
        assert!(write_atomic(d.join("missing").join("out"), "data").is_err());
        assert_eq!(names(&d), ["out"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
