//! Finding a dataset on disk — offline: nothing is ever downloaded.
//!
//! For dataset `<name>` (after [`canonical_name`]), the directories tried, in order:
//!
//! 1. with `--data DIR`: `DIR` itself, then `DIR/<name>`, then torchvision's
//!    `DIR/<TorchName>/raw` (`MNIST`, `FashionMNIST`, `KMNIST`, `EMNIST`); for EMNIST also
//!    `DIR/emnist` and `DIR/emnist/gzip` (the official archive's layout). **An explicit
//!    `--data` is the only place searched**: a typo must not silently load data from elsewhere.
//!    If none of these holds IDX files but `DIR/<name>` or `DIR` is a folder of class
//!    sub-folders, that is loaded as a folder dataset (see [`super::folder`]).
//! 2. `$PHOTONFLOW_DATA_DIR/<name>`, `$PHOTONFLOW_DATA_DIR` itself, torchvision layout.
//! 3. The user cache: `$XDG_CACHE_HOME/photonflow/datasets/<name>`, or
//!    `$HOME/.cache/photonflow/datasets/<name>` when `XDG_CACHE_HOME` is unset.
//! 4. Debian's `/usr/share/datasets/<name>` (`apt install dataset-fashion-mnist` installs
//!    `/usr/share/datasets/fashion-mnist/`).
//!
//! A directory counts when it holds the four IDX files (see [`super::idx`] for the accepted
//! names); one holding only some of them is an error right away. When nothing is found the
//! error lists every directory searched and how to get the data.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::folder::{FolderOptions, load_folder, looks_like_folder_dataset};
use super::idx::{IdxFiles, KNOWN_FILES};
use super::{DataError, Result, Splits};

/// Where a dataset was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// Four IDX files.
    Idx(IdxFiles),
    /// A folder of class sub-folders of images.
    Folder(PathBuf),
}

impl DataSource {
    /// The directory holding the data.
    pub fn dir(&self) -> &Path {
        match self {
            DataSource::Idx(files) => &files.dir,
            DataSource::Folder(dir) => dir,
        }
    }

    /// Loads the data (`folder_opts` applies to folder datasets only).
    pub fn load(&self, folder_opts: &FolderOptions) -> Result<Splits> {
        match self {
            DataSource::Idx(files) => files.load(),
            DataSource::Folder(dir) => load_folder(dir, folder_opts),
        }
    }
}

/// The places searched for datasets. Build it with [`SearchPaths::from_env`] in programs and
/// explicitly in tests, so that tests do not depend on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPaths {
    /// `--data DIR`, if given (then nothing else is searched).
    pub data: Option<PathBuf>,
    /// `$PHOTONFLOW_DATA_DIR`.
    pub env_dir: Option<PathBuf>,
    /// The datasets directory of the user cache (`…/photonflow/datasets`).
    pub cache_dir: Option<PathBuf>,
    /// System-wide dataset directories (`/usr/share/datasets`).
    pub system_dirs: Vec<PathBuf>,
}

/// Debian's dataset directory.
pub const SYSTEM_DATASETS_DIR: &str = "/usr/share/datasets";

impl SearchPaths {
    /// The search places of this process: `data` (`--data`), and the environment variables
    /// `PHOTONFLOW_DATA_DIR`, `XDG_CACHE_HOME`, `HOME` (an empty variable counts as unset).
    pub fn from_env(data: Option<&Path>) -> Self {
        Self::from_vars(data, |key| std::env::var_os(key))
    }

    /// As [`SearchPaths::from_env`], with the variables looked up by `var`.
    pub fn from_vars(data: Option<&Path>, var: impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |key: &str| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|c| c.join("photonflow").join("datasets"));
        SearchPaths {
            data: data.map(Path::to_path_buf),
            env_dir: var("PHOTONFLOW_DATA_DIR"),
            cache_dir,
            system_dirs: vec![PathBuf::from(SYSTEM_DATASETS_DIR)],
        }
    }

    /// The directories searched for `name`, in order (see the module docs).
    pub fn candidates(&self, name: &str) -> Vec<PathBuf> {
        let name = canonical_name(name);
        if let Some(data) = &self.data {
            let mut dirs = vec![data.clone(), data.join(&name)];
            dirs.extend(extra_layouts(data, &name));
            return dirs;
        }
        let mut dirs = Vec::new();
        if let Some(env) = &self.env_dir {
            dirs.push(env.join(&name));
            dirs.push(env.clone());
            dirs.extend(extra_layouts(env, &name));
        }
        if let Some(cache) = &self.cache_dir {
            dirs.push(cache.join(&name));
        }
        for sys in &self.system_dirs {
            dirs.push(sys.join(&name));
        }
        dirs
    }

    /// Finds dataset `name`: the first candidate directory holding its IDX files, else (with
    /// `--data` only) a folder dataset, else [`DataError::NotFound`].
    pub fn locate(&self, name: &str) -> Result<DataSource> {
        let canonical = canonical_name(name);
        let candidates = self.candidates(&canonical);
        for dir in &candidates {
            if let Some(files) = IdxFiles::find(dir, &canonical)? {
                return Ok(DataSource::Idx(files));
            }
        }
        if let Some(data) = &self.data {
            for dir in [data.join(&canonical), data.clone()] {
                if looks_like_folder_dataset(&dir) {
                    return Ok(DataSource::Folder(dir));
                }
            }
        }
        Err(DataError::NotFound {
            help: how_to_get(&canonical, self.data.as_deref()),
            name: canonical,
            searched: candidates,
        })
    }

    /// The directory of dataset `name` (see [`SearchPaths::locate`]).
    pub fn resolve(&self, name: &str) -> Result<PathBuf> {
        self.locate(name).map(|s| s.dir().to_path_buf())
    }

    /// Finds and loads dataset `name`.
    pub fn load(&self, name: &str, folder_opts: &FolderOptions) -> Result<Splits> {
        self.locate(name)?.load(folder_opts)
    }
}

/// Finds dataset `name` with the search places of this process (see [`SearchPaths`]).
pub fn locate(name: &str, data: Option<&Path>) -> Result<DataSource> {
    SearchPaths::from_env(data).locate(name)
}

/// The directory of dataset `name`, with the search places of this process.
pub fn resolve(name: &str, data: Option<&Path>) -> Result<PathBuf> {
    SearchPaths::from_env(data).resolve(name)
}

/// The directory name of a dataset: lower case, `_` → `-`, and `fashionmnist` →
/// `fashion-mnist`, so that `--dataset Fashion_MNIST` works.
pub fn canonical_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    match n.as_str() {
        "fashionmnist" => "fashion-mnist".to_string(),
        _ => n,
    }
}

/// torchvision's folder name for a dataset.
fn torchvision_name(name: &str) -> Option<&'static str> {
    match name {
        "mnist" => Some("MNIST"),
        "fashion-mnist" => Some("FashionMNIST"),
        "kmnist" => Some("KMNIST"),
        n if n.starts_with("emnist-") => Some("EMNIST"),
        _ => None,
    }
}

/// Layouts of other tools under a root: torchvision's `<root>/<TorchName>/raw`, and EMNIST's
/// shared folder `<root>/emnist[/gzip]`.
fn extra_layouts(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(t) = torchvision_name(name) {
        dirs.push(root.join(t).join("raw"));
    }
    if name.starts_with("emnist-") {
        dirs.push(root.join("emnist"));
        dirs.push(root.join("emnist").join("gzip"));
    }
    dirs
}

/// What the not-found error tells the user to do.
fn how_to_get(name: &str, data: Option<&Path>) -> String {
    let target = match data {
        Some(d) => d.join(name).display().to_string(),
        None => format!("DIR/{name}"),
    };
    let mut help = String::from("To get it (photonflow downloads nothing unless asked):\n");
    let known: Vec<_> = KNOWN_FILES.iter().filter(|k| k.dataset == name).collect();
    if !known.is_empty() {
        help.push_str(&format!(
            "  photonflow data fetch {name}   (downloads and checks the files into the user \
             cache, where training finds them)\n"
        ));
        help.push_str("  or download the four official files (check them with sha256sum):\n");
        for k in &known {
            help.push_str(&format!(
                "    {}{}  sha256 {}\n",
                k.url, k.file, k.gz_sha256
            ));
        }
    }
    if name == "fashion-mnist" {
        help.push_str(
            "  or, on Debian/Ubuntu: sudo apt install dataset-fashion-mnist (installs \
             /usr/share/datasets/fashion-mnist/, found automatically)\n",
        );
    }
    if name.starts_with("emnist-") {
        help.push_str(
            "  EMNIST: unpack gzip.zip from https://www.nist.gov/itl/products-and-services/\
             emnist-dataset; the files are emnist-<variant>-{train,test}-{images-idx3,\
             labels-idx1}-ubyte.gz plus emnist-<variant>-mapping.txt\n",
        );
    }
    help.push_str(&format!(
        "  then put the four IDX files (.gz or uncompressed) in {target}/ and pass --data {} \
         (or set PHOTONFLOW_DATA_DIR);\n  for your own images, pass --data with a folder that \
         holds one sub-folder of PNG/JPEG images per class (optionally inside train/ and test/)",
        data.map_or_else(|| "DIR".to_string(), |d| d.display().to_string())
    ));
    help
}

#[cfg(test)]
mod tests {
    use super::super::idx::tests::write_dataset;
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn paths(data: Option<&Path>, vars: &[(&str, &Path)]) -> SearchPaths {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
            .collect();
        SearchPaths::from_vars(data, |k| vars.get(k).cloned())
    }

    #[test]
    fn from_vars_builds_the_cache_dir_and_ignores_empty_vars() {
        let p = paths(None, &[("HOME", Path::new("/home/u"))]);
        assert_eq!(
            p.cache_dir.as_deref(),
            Some(Path::new("/home/u/.cache/photonflow/datasets"))
        );
        assert_eq!(p.env_dir, None);
        assert_eq!(p.system_dirs, [PathBuf::from("/usr/share/datasets")]);
        let p = paths(
            None,
            &[
                ("HOME", Path::new("/home/u")),
                ("XDG_CACHE_HOME", Path::new("/c")),
                ("PHOTONFLOW_DATA_DIR", Path::new("")),
            ],
        );
        assert_eq!(
            p.cache_dir.as_deref(),
            Some(Path::new("/c/photonflow/datasets"))
        );
        assert_eq!(p.env_dir, None, "an empty variable counts as unset");
    }

    #[test]
    fn priority_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (env, cache, sys) = (
            tmp.path().join("env"),
            tmp.path().join("cache"),
            tmp.path().join("sys"),
        );
        let p = SearchPaths {
            data: None,
            env_dir: Some(env.clone()),
            cache_dir: Some(cache.clone()),
            system_dirs: vec![sys.clone()],
        };
        // Only the system dir has it.
        write_dataset(&sys.join("mnist"), "", (2, 1), (2, 2), 10, true);
        assert_eq!(p.resolve("mnist").unwrap(), sys.join("mnist"));
        // The cache beats the system dir.
        write_dataset(&cache.join("mnist"), "", (2, 1), (2, 2), 10, false);
        assert_eq!(p.resolve("MNIST").unwrap(), cache.join("mnist"));
        // $PHOTONFLOW_DATA_DIR itself beats the cache, and <env>/<name> beats <env>.
        write_dataset(&env, "", (2, 1), (2, 2), 10, false);
        assert_eq!(p.resolve("mnist").unwrap(), env);
        write_dataset(&env.join("mnist"), "", (2, 1), (2, 2), 10, false);
        assert_eq!(p.resolve("mnist").unwrap(), env.join("mnist"));
        // --data beats everything; DIR itself before DIR/<name>.
        let data = tmp.path().join("data");
        write_dataset(&data.join("mnist"), "", (3, 1), (2, 2), 10, false);
        let with_data = SearchPaths {
            data: Some(data.clone()),
            ..p.clone()
        };
        assert_eq!(with_data.resolve("mnist").unwrap(), data.join("mnist"));
        write_dataset(&data, "", (4, 1), (2, 2), 10, false);
        assert_eq!(with_data.resolve("mnist").unwrap(), data);
        assert_eq!(
            with_data
                .load("mnist", &FolderOptions::default())
                .unwrap()
                .train
                .len(),
            4
        );
        // An explicit --data without the dataset is an error, not a fallback.
        let empty = tmp.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let only = SearchPaths {
            data: Some(empty.clone()),
            ..p
        };
        let e = only.resolve("mnist").unwrap_err().to_string();
        assert!(e.contains(&empty.display().to_string()), "{e}");
        assert!(!e.contains(&env.display().to_string()), "{e}");
    }

    #[test]
    fn torchvision_and_emnist_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write_dataset(&root.join("FashionMNIST/raw"), "", (2, 1), (2, 2), 10, true);
        let p = SearchPaths {
            env_dir: Some(root.to_path_buf()),
            ..SearchPaths::default()
        };
        assert_eq!(
            p.resolve("fashion_mnist").unwrap(),
            root.join("FashionMNIST/raw")
        );
        let d = SearchPaths {
            data: Some(root.to_path_buf()),
            ..SearchPaths::default()
        };
        assert_eq!(
            d.resolve("fashion-mnist").unwrap(),
            root.join("FashionMNIST/raw")
        );
        write_dataset(
            &root.join("emnist/gzip"),
            "emnist-digits-",
            (2, 1),
            (2, 2),
            10,
            true,
        );
        let s = d.load("emnist-digits", &FolderOptions::default()).unwrap();
        assert_eq!((s.train.name.as_str(), s.train.len()), ("emnist-digits", 2));
        // Another variant in the same folder is not mistaken for it.
        assert!(matches!(
            d.locate("emnist-letters"),
            Err(DataError::NotFound { .. })
        ));
    }

    #[test]
    fn not_found_lists_every_place_and_how_to_get_the_data() {
        let tmp = tempfile::tempdir().unwrap();
        let p = SearchPaths {
            data: None,
            env_dir: Some(tmp.path().join("env")),
            cache_dir: Some(tmp.path().join("cache")),
            system_dirs: vec![tmp.path().join("sys")],
        };
        let e = p.resolve("fashion-mnist").unwrap_err();
        let DataError::NotFound { searched, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(
            searched,
            &[
                tmp.path().join("env/fashion-mnist"),
                tmp.path().join("env"),
                tmp.path().join("env/FashionMNIST/raw"),
                tmp.path().join("cache/fashion-mnist"),
                tmp.path().join("sys/fashion-mnist"),
            ]
        );
        let msg = e.to_string();
        for dir in searched {
            assert!(msg.contains(&dir.display().to_string()), "{msg}");
        }
        for needle in [
            "dataset-fashion-mnist",
            "t10k-labels-idx1-ubyte.gz  sha256 67da17c7",
            "fashion-mnist.s3-website",
            "DIR/fashion-mnist/ and pass --data DIR",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing: {msg}");
        }
        let e = p.resolve("mnist").unwrap_err().to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz  sha256 440fcabf"),
            "{e}"
        );
        assert!(!e.contains("apt install"), "{e}");
    }

    #[test]
    fn a_partial_directory_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), "", (2, 1), (2, 2), 10, true);
        fs::remove_file(tmp.path().join("train-labels-idx1-ubyte.gz")).unwrap();
        let p = SearchPaths {
            data: Some(tmp.path().to_path_buf()),
            ..SearchPaths::default()
        };
        let e = p.resolve("mnist").unwrap_err().to_string();
        assert!(e.contains("not the training labels"), "{e}");
    }
}
