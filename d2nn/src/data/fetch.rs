//! The download fallback: fetch a known dataset (MNIST, Fashion-MNIST) once, check it against
//! the published checksums, and keep it in the user cache, where [`super::resolve()`] finds it.
//!
//! Nothing downloads on its own: `photonflow data fetch NAME` calls [`fetch`] when a user asks.
//! The transfer itself is done by a [`Downloader`] — by default the system's `curl` (or `wget`),
//! with a timeout — so photonflow carries no HTTP stack. Every file is downloaded to a
//! temporary name, checked (sha256 of its decompressed content, the same for upstream and for
//! Debian's re-packed files) and only then renamed into place; a failed or wrong download
//! leaves nothing behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::idx::{KNOWN_FILES, KnownFile, sha256_decompressed};
use super::resolve::canonical_name;
use super::{DataError, Result};

/// Seconds one file may take to download.
pub const TIMEOUT_S: u64 = 600;

/// Seconds to wait for a connection: an offline machine or a firewall fails fast.
pub const CONNECT_TIMEOUT_S: u64 = 20;

/// Fetches `url` into the file `dest`, returning a message on failure.
pub type Downloader<'a> = &'a dyn Fn(&str, &Path) -> std::result::Result<(), String>;

/// Downloads with `curl` (or, if there is none, `wget`), following redirects, failing on HTTP
/// errors, with a [`TIMEOUT_S`] limit and a [`CONNECT_TIMEOUT_S`] limit on connecting.
pub fn system_downloader(url: &str, dest: &Path) -> std::result::Result<(), String> {
    let timeout = TIMEOUT_S.to_string();
    let connect = CONNECT_TIMEOUT_S.to_string();
    let wget_connect = format!("--connect-timeout={connect}");
    let attempts: [(&str, Vec<&str>); 2] = [
        (
            "curl",
            vec![
                "-fsSL",
                "--connect-timeout",
                &connect,
                "--max-time",
                &timeout,
                "-o",
                path_str(dest),
                url,
            ],
        ),
        (
            "wget",
            vec![
                "-q",
                &wget_connect,
                "-T",
                &timeout,
                "-O",
                path_str(dest),
                url,
            ],
        ),
    ];
    let mut missing = Vec::new();
    for (tool, args) in attempts {
        match Command::new(tool).args(&args).status() {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => return Err(format!("{tool} failed ({status}) for {url}")),
            Err(_) => missing.push(tool),
        }
    }
    Err(format!(
        "neither {} is installed; install curl, or download {url} yourself",
        missing.join(" nor ")
    ))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or("download.tmp")
}

/// The known files of dataset `name` (empty for datasets photonflow has no checksums for).
pub fn known_files(name: &str) -> Vec<&'static KnownFile> {
    let name = canonical_name(name);
    KNOWN_FILES.iter().filter(|k| k.dataset == name).collect()
}

/// Downloads the four files of dataset `name` into `dir` (created if needed), checking each
/// against its published sha256; files already present and correct are kept. Returns `dir`.
///
/// Errors: a dataset without published checksums (only MNIST and Fashion-MNIST are known), a
/// failed download, a file whose checksum differs (it is deleted).
pub fn fetch(name: &str, dir: &Path, download: Downloader) -> Result<PathBuf> {
    let files = known_files(name);
    if files.is_empty() {
        return Err(DataError::Download {
            path: dir.join(name),
            problem: format!(
                "photonflow knows no published files for '{name}'; it can fetch mnist and \
                 fashion-mnist — put other datasets in a folder yourself and pass --data"
            ),
        });
    }
    fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        action: "create",
        source,
    })?;
    for known in files {
        let path = dir.join(known.file);
        if path.is_file() && sha256_decompressed(&path, "")? == known.raw_sha256 {
            continue;
        }
        let tmp = dir.join(format!(".{}.download-{}", known.file, std::process::id()));
        let url = format!("{}{}", known.url, known.file);
        let checked = download(&url, &tmp)
            .map_err(|problem| DataError::Download {
                path: path.clone(),
                problem,
            })
            .and_then(|()| {
                let actual = sha256_decompressed(&tmp, "")?;
                if actual == known.raw_sha256 {
                    Ok(())
                } else {
                    Err(DataError::Download {
                        path: path.clone(),
                        problem: format!(
                            "the download from {url} is not the published file (sha256 of its \
                             content {actual}, expected {}); it was deleted — try again later",
                            known.raw_sha256
                        ),
                    })
                }
            })
            .and_then(|()| {
                fs::rename(&tmp, &path).map_err(|source| DataError::Io {
                    path: path.clone(),
                    action: "write",
                    source,
                })
            });
        if let Err(e) = checked {
            fs::remove_file(&tmp).ok();
            return Err(e);
        }
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(name: &str) -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os("PHOTONFLOW_DATA_DIR")?).join(name);
        dir.is_dir().then_some(dir)
    }

    #[test]
    fn unknown_datasets_and_wrong_downloads_leave_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let e = fetch("kmnist", tmp.path(), &|_, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("mnist and fashion-mnist"), "{e}");
        // A "mirror" serving the wrong bytes: refused, deleted, nothing renamed into place.
        let garbage = |_: &str, dest: &Path| fs::write(dest, b"<html>").map_err(|e| e.to_string());
        let e = fetch("mnist", tmp.path(), &garbage)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz") && e.contains("not the published file"),
            "{e}"
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let offline = |_: &str, _: &Path| Err("network unreachable".to_string());
        let e = fetch("mnist", tmp.path(), &offline)
            .unwrap_err()
            .to_string();
        assert!(e.contains("network unreachable"), "{e}");
    }

    #[test]
    fn fetches_from_a_mirror_checks_and_keeps_good_files() {
        let Some(mirror) = shared("mnist") else {
            eprintln!("PHOTONFLOW_DATA_DIR is not set: skipping the fetch test");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let calls = std::cell::Cell::new(0);
        let copy = |url: &str, dest: &Path| {
            calls.set(calls.get() + 1);
            assert!(url.starts_with("https://"), "{url}");
            let name = url.rsplit('/').next().unwrap();
            fs::copy(mirror.join(name), dest)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let dir = fetch("mnist", &tmp.path().join("mnist"), &copy).unwrap();
        assert_eq!(calls.get(), 4);
        let splits = super::super::load("mnist", Some(&dir), &Default::default()).unwrap();
        assert_eq!((splits.train.len(), splits.test.len()), (60000, 10000));
        // Present and correct: nothing is downloaded again.
        fetch("mnist", &dir, &copy).unwrap();
        assert_eq!(calls.get(), 4);
    }
}
