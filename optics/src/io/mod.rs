//! File input and output: NumPy `.npy` arrays and crash-safe (atomic) file writes.
//!
//! Files photonflow writes should go through [`write_atomic`] (or, for libraries that insist on
//! opening the file themselves, through [`temp_path_for`] followed by [`std::fs::rename`]): the
//! bytes are written to a temporary file next to the destination, flushed to disk and only then
//! renamed over the destination. A crash, a full disk or an error half-way through therefore
//! never leaves a truncated result behind that a later run would mistake for a good one — the
//! destination holds either its old content or the complete new content.

pub mod npy;
pub mod tiff;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counter that makes temporary names unique within this process (the pid separates processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many fresh temporary names [`write_atomic`] tries when one is already taken (a stale
/// temporary file left by a crashed process with a recycled pid).
const TEMP_ATTEMPTS: usize = 16;

/// A fresh temporary path in the same directory as `path`, for writing a file that is then
/// renamed onto `path`.
///
/// The name is `.{filename}.tmp-{pid}-{counter}`: hidden (leading dot), recognisably tied to the
/// destination, and unique per process (pid) and per call (a process-wide counter), so
/// concurrent writers — threads or processes — never share a temporary file. Being in the same
/// directory keeps it on the same file system, which is what makes the final
/// [`std::fs::rename`] atomic.
///
/// Use this when a library must open the output file itself (a PNG encoder, say): let it write
/// to the returned path, then `std::fs::rename(&tmp, path)`, and `std::fs::remove_file(&tmp)`
/// if anything failed. Otherwise prefer [`write_atomic`], which does all of that. A `path`
/// without a file name (`/`, `..`) gets the placeholder name `out`.
pub fn temp_path_for(path: &Path) -> PathBuf {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_else(|| "out".as_ref()));
    name.push(format!(".tmp-{}-{counter}", std::process::id()));
    // Keep the extension last: encoders that pick the format from it (PNG) still work.
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

/// Writes a file atomically: either `path` ends up holding everything `write` wrote, or (on
/// any error) it is left exactly as it was — absent if it did not exist, with its old content
/// if it did.
///
/// `write` receives a buffered writer on a new temporary file named by [`temp_path_for`] in the
/// same directory. After it returns `Ok`, the buffer is flushed, the file is fsynced (so the
/// data are on disk before the rename makes them visible) and renamed onto `path`, replacing any
/// existing file (whose permissions are not carried over). On Unix the directory is then fsynced
/// too, on a best-effort basis, so that the rename itself survives a power cut. If `write` or
/// any later step fails, the temporary file is removed and the first error is returned.
///
/// Errors: `path` has no file name (`InvalidInput`); the directory does not exist or is not
/// writable; the disk is full; any error returned by `write`.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} has no file name; give the path of a file to write",
                path.display()
            ),
        ));
    }
    let (tmp, file) = create_temp(path)?;
    let result = fill_and_sync(file, write).and_then(|()| fs::rename(&tmp, path));
    if let Err(err) = result {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    sync_parent_dir(path);
    Ok(())
}

/// Creates a new temporary file for `path`, never opening an existing one.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let mut attempt = 1;
    loop {
        let tmp = temp_path_for(path);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Runs `write` on a buffered `file`, then flushes and fsyncs it.
fn fill_and_sync(
    file: File,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut writer = BufWriter::new(file);
    write(&mut writer)?;
    writer.flush()?;
    let file = writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

/// Fsyncs the directory holding `path` so that a completed rename is durable. Best effort:
/// some file systems and platforms cannot open or sync directories, and the data are already
/// safely in place either way.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh, empty directory under the system temp directory, removed on drop.
    pub(crate) struct ScratchDir(pub(crate) PathBuf);

    impl ScratchDir {
        pub(crate) fn new(label: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "photonflow-io-test-{label}-{}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create scratch directory");
            Self(dir)
        }

        /// Names of all entries in the directory, sorted.
        pub(crate) fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .expect("list scratch directory")
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn temp_path_is_hidden_unique_and_in_the_same_directory() {
        let a = temp_path_for(Path::new("/data/run/field.npy"));
        let b = temp_path_for(Path::new("/data/run/field.npy"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/data/run")));
        let name = a.file_name().unwrap().to_str().unwrap();
        let prefix = format!(".field.npy.tmp-{}-", std::process::id());
        assert!(name.starts_with(&prefix), "{name}");
        let counter = name[prefix.len()..].strip_suffix(".npy").unwrap();
        assert!(counter.parse::<u64>().is_ok(), "{name}");
        let relative = temp_path_for(Path::new("x.png"));
        assert!(
            relative.to_str().unwrap().ends_with(".png"),
            "the extension stays last"
        );
        assert_eq!(relative.parent(), Some(Path::new("")));
        assert!(relative.to_str().unwrap().starts_with(".x.png.tmp-"));
    }

    #[test]
    fn write_atomic_writes_and_replaces() {
        let dir = ScratchDir::new("atomic-ok");
        let path = dir.0.join("out.txt");
        write_atomic(&path, |w| w.write_all(b"first")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, |w| {
            w.write_all(b"second, ")?;
            w.write_all(b"longer")
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(dir.entries(), ["out.txt"]);
    }

    #[test]
    fn write_atomic_error_leaves_nothing() {
        let dir = ScratchDir::new("atomic-err");
        let path = dir.0.join("out.txt");
        let err = write_atomic(&path, |w| {
            w.write_all(&[7; 100_000])?; // more than the buffer: the temp file has content
            Err(io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "simulated failure");
        assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
    }

    #[test]
    fn write_atomic_error_keeps_the_old_file() {
        let dir = ScratchDir::new("atomic-keep");
        let path = dir.0.join("out.txt");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, |w| {
            w.write_all(b"new")?;
            Err(io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(dir.entries(), ["out.txt"]);
    }

    #[test]
    fn write_atomic_reports_missing_directory_and_file_name() {
        let dir = ScratchDir::new("atomic-missing");
        let err = write_atomic(&dir.0.join("no/such/dir/out.txt"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = write_atomic(Path::new("/"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("has no file name"), "{err}");
        assert!(dir.entries().is_empty());
    }
}
