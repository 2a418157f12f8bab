//! IDX files, the format of MNIST, Fashion-MNIST, EMNIST and KMNIST.
//!
//! An IDX file is a big-endian header followed by the raw elements: images have the magic
//! number `0x00000803` (two zero bytes, element type `0x08` = unsigned byte, 3 dimensions),
//! then the image count, rows and cols as `u32`; labels have `0x00000801` and the count.
//! Files may be gzip-compressed (recognised by their content, not their name) or raw.
//!
//! A dataset directory holds four files. Accepted names, for `<split>` = `train` or `t10k`
//! (also `test`): `<split>-images-idx3-ubyte` and `<split>-labels-idx1-ubyte`, the dotted
//! variant `<split>-images.idx3-ubyte`, each optionally with `.gz` (the uncompressed file is
//! preferred when both exist, as in torchvision's `raw/` folders: it loads faster). EMNIST
//! files carry the prefix `emnist-<variant>-` (`emnist-letters-train-images-idx3-ubyte.gz`,
//! `emnist-letters-test-labels-idx1-ubyte.gz`); their images are stored transposed and are
//! transposed back on load, and their class names come from `emnist-<variant>-mapping.txt`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::{DataError, Dataset, Result, Splits};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Class names of MNIST.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// Class names of Fashion-MNIST, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A published file of a known dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// Dataset name (`mnist`, `fashion-mnist`).
    pub dataset: &'static str,
    /// Standard file name, compressed (`train-images-idx3-ubyte.gz`).
    pub file: &'static str,
    /// Where the official file can be downloaded.
    pub url: &'static str,
    /// sha256 of the official `.gz` file.
    pub gz_sha256: &'static str,
    /// sha256 of the decompressed file (header + data). The same for every re-compression —
    /// Debian's Fashion-MNIST `.gz` files, for one, differ from upstream only in the gzip
    /// header — so [`verify`] checks this one.
    pub raw_sha256: &'static str,
}

const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
const FASHION_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// The files of MNIST and Fashion-MNIST with their checksums (computed on the original
/// distribution; Fashion-MNIST's decompressed sha256 also matches Debian's
/// `dataset-fashion-mnist` package).
pub const KNOWN_FILES: [KnownFile; 8] = [
    KnownFile {
        dataset: "mnist",
        file: "train-images-idx3-ubyte.gz",
        url: MNIST_URL,
        gz_sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        raw_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    KnownFile {
        dataset: "mnist",
        file: "train-labels-idx1-ubyte.gz",
        url: MNIST_URL,
        gz_sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        raw_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    KnownFile {
        dataset: "mnist",
        file: "t10k-images-idx3-ubyte.gz",
        url: MNIST_URL,
        gz_sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        raw_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    KnownFile {
        dataset: "mnist",
        file: "t10k-labels-idx1-ubyte.gz",
        url: MNIST_URL,
        gz_sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        raw_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    KnownFile {
        dataset: "fashion-mnist",
        file: "train-images-idx3-ubyte.gz",
        url: FASHION_URL,
        gz_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        raw_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    KnownFile {
        dataset: "fashion-mnist",
        file: "train-labels-idx1-ubyte.gz",
        url: FASHION_URL,
        gz_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        raw_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    KnownFile {
        dataset: "fashion-mnist",
        file: "t10k-images-idx3-ubyte.gz",
        url: FASHION_URL,
        gz_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        raw_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    KnownFile {
        dataset: "fashion-mnist",
        file: "t10k-labels-idx1-ubyte.gz",
        url: FASHION_URL,
        gz_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        raw_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// The role of one of a dataset's four files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Training images.
    TrainImages,
    /// Training labels.
    TrainLabels,
    /// Test images.
    TestImages,
    /// Test labels.
    TestLabels,
}

impl Role {
    /// All four roles, in the order train images, train labels, test images, test labels.
    pub const ALL: [Role; 4] = [
        Role::TrainImages,
        Role::TrainLabels,
        Role::TestImages,
        Role::TestLabels,
    ];

    /// The standard (MNIST) compressed file name of this role.
    pub fn standard_name(self) -> &'static str {
        match self {
            Role::TrainImages => "train-images-idx3-ubyte.gz",
            Role::TrainLabels => "train-labels-idx1-ubyte.gz",
            Role::TestImages => "t10k-images-idx3-ubyte.gz",
            Role::TestLabels => "t10k-labels-idx1-ubyte.gz",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Role::TrainImages => "the training images",
            Role::TrainLabels => "the training labels",
            Role::TestImages => "the test images",
            Role::TestLabels => "the test labels",
        }
    }

    /// File names tried for this role, in order of preference, for file-name prefix `prefix`
    /// (`""`, or `emnist-<variant>-`).
    pub fn candidate_names(self, prefix: &str) -> Vec<String> {
        let (splits, kind): (&[&str], &str) = match self {
            Role::TrainImages => (&["train"], "images"),
            Role::TrainLabels => (&["train"], "labels"),
            Role::TestImages => (&["t10k", "test"], "images"),
            Role::TestLabels => (&["t10k", "test"], "labels"),
        };
        let idx = if kind == "images" { "idx3" } else { "idx1" };
        let mut names = Vec::new();
        for ext in ["", ".gz"] {
            for split in splits {
                for sep in ['-', '.'] {
                    names.push(format!("{prefix}{split}-{kind}{sep}{idx}-ubyte{ext}"));
                }
            }
        }
        names
    }
}

/// The known file of dataset `dataset` for `role`, if any.
pub fn known_file(dataset: &str, role: Role) -> Option<&'static KnownFile> {
    KNOWN_FILES
        .iter()
        .find(|k| k.dataset == dataset && k.file == role.standard_name())
}

/// The paths of a dataset's four IDX files (and EMNIST's class mapping), as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFiles {
    /// Canonical dataset name (decides the class names, see [`class_names_for`]).
    pub name: String,
    /// The directory holding the files.
    pub dir: PathBuf,
    /// Training images.
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
    /// `emnist-<variant>-mapping.txt`, if the dataset is EMNIST and the file exists.
    pub mapping: Option<PathBuf>,
    /// Whether the images are stored transposed (EMNIST) and must be transposed on load.
    pub transposed: bool,
}

impl IdxFiles {
    /// The path of the file for `role`.
    pub fn path(&self, role: Role) -> &Path {
        match role {
            Role::TrainImages => &self.train_images,
            Role::TrainLabels => &self.train_labels,
            Role::TestImages => &self.test_images,
            Role::TestLabels => &self.test_labels,
        }
    }

    /// Looks in `dir` for the four files of dataset `name` (canonical name, see
    /// [`super::resolve::canonical_name`]). `Ok(None)` if `dir` holds none of them (or is not a
    /// directory); [`DataError::MissingFile`] if it holds some but not all.
    pub fn find(dir: &Path, name: &str) -> Result<Option<IdxFiles>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        let prefix = emnist_prefix(name);
        let mut found: [Option<PathBuf>; 4] = Default::default();
        for (slot, role) in found.iter_mut().zip(Role::ALL) {
            *slot = role
                .candidate_names(&prefix)
                .into_iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file());
        }
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(i) = found.iter().position(Option::is_none) {
            let role = Role::ALL[i];
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                name: name.to_string(),
                missing: role.describe(),
                looked_for: role.candidate_names(&prefix).join(", "),
            });
        }
        let [
            Some(train_images),
            Some(train_labels),
            Some(test_images),
            Some(test_labels),
        ] = found
        else {
            unreachable!("all four were checked to be present")
        };
        let mapping = if prefix.is_empty() {
            None
        } else {
            Some(dir.join(format!("{prefix}mapping.txt"))).filter(|p| p.is_file())
        };
        Ok(Some(IdxFiles {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            train_images,
            train_labels,
            test_images,
            test_labels,
            mapping,
            transposed: !prefix.is_empty(),
        }))
    }

    /// Reads, checks and assembles the two splits.
    ///
    /// Checks, each failing with an error that names the file: headers (magic, element type,
    /// dimensions), payload length against the header (truncated or trailing bytes), gzip
    /// integrity, image count = label count in each split, train and test image sizes equal,
    /// every label a valid class index. The four files are read on two threads (train, test).
    /// Checksums are not computed here (that costs a pass over the data); call [`verify`].
    pub fn load(&self) -> Result<Splits> {
        let (train, test) = std::thread::scope(|s| {
            let train = s.spawn(|| self.read_split(&self.train_images, &self.train_labels));
            let test = self.read_split(&self.test_images, &self.test_labels);
            let train = train
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (train, test)
        });
        let ((train_img, train_lab), (test_img, test_lab)) = (train?, test?);
        if (train_img.rows, train_img.cols) != (test_img.rows, test_img.cols) {
            return Err(DataError::SizeMismatch {
                train: self.train_images.clone(),
                train_size: (train_img.rows, train_img.cols),
                test: self.test_images.clone(),
                test_size: (test_img.rows, test_img.cols),
            });
        }
        let max_label = train_lab
            .iter()
            .chain(&test_lab)
            .copied()
            .max()
            .unwrap_or(0);
        let (class_names, remap) = class_names_for(self, max_label)?;
        let train_lab =
            self.check_labels(train_lab, &self.train_labels, &class_names, remap.as_ref())?;
        let test_lab =
            self.check_labels(test_lab, &self.test_labels, &class_names, remap.as_ref())?;
        let make = |img: IdxImages, labels: Vec<u8>| {
            let img = if self.transposed {
                img.transposed()
            } else {
                img
            };
            Dataset {
                name: self.name.clone(),
                rows: img.rows,
                cols: img.cols,
                images: img.pixels,
                labels,
                class_names: class_names.clone(),
            }
        };
        Ok(Splits {
            train: make(train_img, train_lab),
            test: make(test_img, test_lab),
        })
    }

    fn read_split(&self, images: &Path, labels: &Path) -> Result<(IdxImages, Vec<u8>)> {
        let img = read_images_hinted(images, &self.hint(images))?;
        let lab = read_labels_hinted(labels, &self.hint(labels))?;
        if img.count != lab.len() {
            return Err(DataError::CountMismatch {
                images_path: images.to_path_buf(),
                images: img.count,
                labels_path: labels.to_path_buf(),
                labels: lab.len(),
            });
        }
        Ok((img, lab))
    }

    fn check_labels(
        &self,
        mut labels: Vec<u8>,
        path: &Path,
        class_names: &[String],
        remap: Option<&LabelMap>,
    ) -> Result<Vec<u8>> {
        for (index, l) in labels.iter_mut().enumerate() {
            let mapped = match remap {
                Some(table) => table.get(usize::from(*l)).copied().flatten(),
                None => Some(*l).filter(|&l| usize::from(l) < class_names.len()),
            };
            match mapped {
                Some(m) => *l = m,
                None => {
                    return Err(DataError::LabelOutOfRange {
                        path: path.to_path_buf(),
                        index,
                        label: *l,
                        dataset: self.name.clone(),
                        classes: class_names.len(),
                        hint: if remap.is_some() {
                            "check that the mapping file belongs to the same EMNIST variant"
                                .to_string()
                        } else {
                            self.hint(path)
                        },
                    });
                }
            }
        }
        Ok(labels)
    }

    /// "Download it again" advice for one of this dataset's files, with the official URL and
    /// sha256 when the file is known.
    fn hint(&self, path: &Path) -> String {
        let role = Role::ALL.into_iter().find(|&r| self.path(r) == path);
        download_hint(&self.name, role)
    }
}

fn download_hint(dataset: &str, role: Option<Role>) -> String {
    match role.and_then(|r| known_file(dataset, r)) {
        Some(k) => format!(
            "download it again from {}{} (sha256 of the .gz: {}; of the decompressed file: {})",
            k.url, k.file, k.gz_sha256, k.raw_sha256
        ),
        None => "download or copy the file again".to_string(),
    }
}

/// `emnist-<variant>-` for a name `emnist-<variant>`, else empty.
fn emnist_prefix(name: &str) -> String {
    match name.strip_prefix("emnist-") {
        Some(variant) if !variant.is_empty() => format!("emnist-{variant}-"),
        _ => String::new(),
    }
}

/// Table from the label stored in a file to the class index (`None`: not a class).
pub type LabelMap = Vec<Option<u8>>;

/// Class names of a dataset, and for EMNIST with a mapping file the table from file label to
/// class index.
///
/// * `mnist`, `kmnist`-style unknown names: `"0"`, `"1"`, … up to the largest label present
///   (at least 10 for `mnist`); `fashion-mnist`: [`FASHION_MNIST_CLASSES`].
/// * EMNIST with `emnist-<variant>-mapping.txt` (lines `<label> <ASCII code> [<code>…]`): the
///   classes are the mapping's labels in increasing order, named by their characters (joined
///   with `/` when a line has several codes, as `letters` has `A/a`), and labels are renumbered
///   `0..n` in that order — EMNIST `letters` labels 1..=26 become 0..=25. Without the mapping
///   file, labels are kept and named by number.
pub fn class_names_for(files: &IdxFiles, max_label: u8) -> Result<(Vec<String>, Option<LabelMap>)> {
    let numbers = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
    match files.name.as_str() {
        "mnist" => Ok((MNIST_CLASSES.map(String::from).to_vec(), None)),
        "fashion-mnist" => Ok((FASHION_MNIST_CLASSES.map(String::from).to_vec(), None)),
        _ => match &files.mapping {
            Some(path) => {
                let (names, table) = read_mapping(path)?;
                Ok((names, Some(table)))
            }
            None => Ok((numbers(usize::from(max_label) + 1), None)),
        },
    }
}

/// Reads an EMNIST mapping file: returns the class names (sorted by label) and the table
/// file label → class index.
fn read_mapping(path: &Path) -> Result<(Vec<String>, Vec<Option<u8>>)> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    let mut entries: Vec<(u8, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |problem: String| DataError::Mapping {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let mut fields = line.split_whitespace();
        let Some(label) = fields.next() else {
            continue;
        };
        let label: u8 = label
            .parse()
            .map_err(|_| bad(format!("label {label:?} is not a number 0..=255")))?;
        let mut chars = Vec::new();
        for code in fields {
            let c = code
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .filter(|c| !c.is_control())
                .ok_or_else(|| bad(format!("{code:?} is not a printable character code")))?;
            chars.push(c.to_string());
        }
        if chars.is_empty() {
            return Err(bad(format!("label {label} has no character code")));
        }
        if entries.iter().any(|(l, _)| *l == label) {
            return Err(bad(format!("label {label} appears twice")));
        }
        entries.push((label, chars.join("/")));
    }
    if entries.is_empty() {
        return Err(DataError::Mapping {
            path: path.to_path_buf(),
            line: 1,
            problem: "the file is empty".to_string(),
        });
    }
    entries.sort();
    let mut table = vec![None; 256];
    for (class, (label, _)) in entries.iter().enumerate() {
        table[usize::from(*label)] = u8::try_from(class).ok();
    }
    Ok((entries.into_iter().map(|(_, n)| n).collect(), table))
}

/// Images read from an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows (height) of each image.
    pub rows: usize,
    /// Columns (width) of each image.
    pub cols: usize,
    /// `count·rows·cols` bytes, image after image, each row-major as stored in the file.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Every image transposed (`rows` and `cols` swapped), as EMNIST needs.
    pub fn transposed(self) -> IdxImages {
        let (rows, cols) = (self.rows, self.cols);
        let n = rows * cols;
        let mut out = vec![0u8; self.pixels.len()];
        for (src, dst) in self.pixels.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            for r in 0..rows {
                for c in 0..cols {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
        IdxImages {
            count: self.count,
            rows: cols,
            cols: rows,
            pixels: out,
        }
    }
}

/// Reads an IDX image file (`.gz` or raw). See the module docs for the checks.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    read_images_hinted(path, &download_hint("", None))
}

/// Reads an IDX label file (`.gz` or raw).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    read_labels_hinted(path, &download_hint("", None))
}

fn read_images_hinted(path: &Path, hint: &str) -> Result<IdxImages> {
    let (header, pixels) = read_idx(path, "images", IMAGES_MAGIC, 3, hint)?;
    let [count, rows, cols] = [header[0], header[1], header[2]];
    let (count, rows, cols) = (count as usize, rows as usize, cols as usize);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

fn read_labels_hinted(path: &Path, hint: &str) -> Result<Vec<u8>> {
    let (_, labels) = read_idx(path, "labels", LABELS_MAGIC, 1, hint)?;
    Ok(labels)
}

/// Reads a whole IDX file: checks the magic and returns the `ndim` dimensions and the data,
/// whose length is checked to be their product exactly.
fn read_idx(
    path: &Path,
    kind: &'static str,
    magic: u32,
    ndim: usize,
    hint: &str,
) -> Result<(Vec<u32>, Vec<u8>)> {
    let file = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    let header_len = 4 + 4 * ndim;
    let gz_err = |source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
        hint: hint.to_string(),
    };
    let (header, data) = if file.starts_with(&[0x1f, 0x8b]) {
        let mut dec = MultiGzDecoder::new(&file[..]);
        let mut header = Vec::with_capacity(header_len);
        (&mut dec)
            .take(header_len as u64)
            .read_to_end(&mut header)
            .map_err(gz_err)?;
        // The gzip trailer holds the decompressed size mod 2^32: a good capacity hint. Deflate
        // expands at most ~1032×, which bounds it for a corrupt trailer.
        let isize_hint = file
            .get(file.len().saturating_sub(4)..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize);
        let cap = isize_hint
            .saturating_sub(header_len)
            .min(file.len().saturating_mul(1032));
        let mut data = Vec::with_capacity(cap);
        dec.read_to_end(&mut data).map_err(gz_err)?;
        (header, data)
    } else {
        let mut file = file;
        let split = header_len.min(file.len());
        let data = file.split_off(split);
        (file, data)
    };
    if header.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("an IDX {kind} file starts with a {header_len}-byte header"),
            expected: header_len as u64,
            found: header.len() as u64,
            hint: hint.to_string(),
        });
    }
    let found_magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found_magic != magic {
        let problem = describe_bad_magic(found_magic, &header[..4], kind, magic);
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            kind,
            problem,
            hint: format!("check that this is the right file, else {hint}"),
        });
    }
    if header.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("an IDX {kind} file starts with a {header_len}-byte header"),
            expected: header_len as u64,
            found: header.len() as u64,
            hint: hint.to_string(),
        });
    }
    let dims: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if ndim == 3 && (dims[1] == 0 || dims[2] == 0) {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            kind,
            problem: format!(
                "the header declares images of {}×{} pixels",
                dims[1], dims[2]
            ),
            hint: hint.to_string(),
        });
    }
    let expected = dims.iter().map(|&d| u64::from(d)).product::<u64>();
    let what = if ndim == 3 {
        format!("header says {} images of {}×{}", dims[0], dims[1], dims[2])
    } else {
        format!("header says {} labels", dims[0])
    };
    let found = data.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what,
            expected,
            found,
            hint: hint.to_string(),
        });
    }
    if found > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            what,
            expected,
            extra: found - expected,
            hint: hint.to_string(),
        });
    }
    Ok((dims, data))
}

fn describe_bad_magic(found: u32, bytes: &[u8], kind: &str, expected: u32) -> String {
    let [z0, z1, dtype, ndim] = found.to_be_bytes();
    if z0 == 0 && z1 == 0 && dtype == 0x08 {
        let other = if ndim == 1 { "labels" } else { "images" };
        if (ndim == 1 || ndim == 3) && other != kind {
            return format!(
                "it holds {other}, not {kind} (magic 0x{found:08x}, expected 0x{expected:08x}) — \
                 the image and label files are swapped or misnamed"
            );
        }
        return format!(
            "its header declares {ndim} dimensions (magic 0x{found:08x}); {kind} files have \
             magic 0x{expected:08x}"
        );
    }
    if z0 == 0 && z1 == 0 {
        let ty = match dtype {
            0x09 => "signed byte",
            0x0b => "16-bit integer",
            0x0c => "32-bit integer",
            0x0d => "32-bit float",
            0x0e => "64-bit float",
            _ => "unknown",
        };
        return format!(
            "its elements are of type 0x{dtype:02x} ({ty}); photonflow reads unsigned-byte IDX \
             files (magic 0x{expected:08x})"
        );
    }
    let printable: String = bytes
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect();
    format!(
        "it starts with bytes {:02x} {:02x} {:02x} {:02x} ({printable:?}) instead of the IDX \
         magic number 0x{expected:08x} (an HTML error page or another format?)",
        bytes[0], bytes[1], bytes[2], bytes[3]
    )
}

/// The checksum verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// The decompressed content has the published sha256.
    Ok,
    /// The decompressed content differs from the published file.
    Mismatch {
        /// Published sha256 of the decompressed file.
        expected: &'static str,
        /// sha256 found.
        actual: String,
    },
    /// No published checksum for this dataset/file.
    Unknown,
}

/// The result of checking one file with [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file.
    pub path: PathBuf,
    /// The verdict.
    pub checksum: Checksum,
}

impl std::fmt::Display for FileCheck {
    /// One line for the user, e.g. `…/train-images-idx3-ubyte.gz: sha256 OK`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.checksum {
            Checksum::Ok => write!(f, "{}: sha256 OK", self.path.display()),
            Checksum::Mismatch { expected, actual } => write!(
                f,
                "{}: sha256 of the decompressed data is {actual}, the published file's is \
                 {expected} — the file differs from the official one (damaged or a different \
                 dataset); download it again if training results look wrong",
                self.path.display()
            ),
            Checksum::Unknown => write!(
                f,
                "{}: no published checksum to compare with",
                self.path.display()
            ),
        }
    }
}

/// Computes the sha256 of each file's decompressed content and compares it with the published
/// one ([`KNOWN_FILES`]; decompressed, so that re-compressed copies such as Debian's still
/// match). A mismatch is reported, not an error: callers print it as a warning. Errors only for
/// files that cannot be read or decompressed. Costs one pass over the data (~0.2 s for MNIST).
pub fn verify(files: &IdxFiles) -> Result<Vec<FileCheck>> {
    Role::ALL
        .into_iter()
        .map(|role| {
            let path = files.path(role);
            let checksum = match known_file(&files.name, role) {
                None => Checksum::Unknown,
                Some(known) => {
                    let actual = sha256_decompressed(path, &files.hint(path))?;
                    if actual == known.raw_sha256 {
                        Checksum::Ok
                    } else {
                        Checksum::Mismatch {
                            expected: known.raw_sha256,
                            actual,
                        }
                    }
                }
            };
            Ok(FileCheck {
                path: path.to_path_buf(),
                checksum,
            })
        })
        .collect()
}

pub(crate) fn sha256_decompressed(path: &Path, hint: &str) -> Result<String> {
    let file = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    let mut hasher = Sha256::new();
    if file.starts_with(&[0x1f, 0x8b]) {
        let mut dec = MultiGzDecoder::new(&file[..]);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = dec.read(&mut buf).map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
                hint: hint.to_string(),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    } else {
        hasher.update(&file);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    /// The bytes of an IDX image file.
    pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [count, rows, cols] {
            b.extend(d.to_be_bytes());
        }
        b.extend(pixels);
        b
    }

    /// The bytes of an IDX label file.
    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut b = LABELS_MAGIC.to_be_bytes().to_vec();
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Writes a 4-file dataset: `n_train`/`n_test` images of `rows×cols`, pixel value
    /// `(i + r·cols + c) mod 256` for image i, label `i mod classes`.
    pub(crate) fn write_dataset(
        dir: &Path,
        prefix: &str,
        n: (u32, u32),
        size: (u32, u32),
        classes: u8,
        gzip: bool,
    ) {
        fs::create_dir_all(dir).unwrap();
        let test = if prefix.is_empty() { "t10k" } else { "test" };
        for (split, count) in [("train", n.0), (test, n.1)] {
            let px: Vec<u8> = (0..count * size.0 * size.1)
                .map(|k| {
                    let (i, rc) = (k / (size.0 * size.1), k % (size.0 * size.1));
                    ((i + rc) % 256) as u8
                })
                .collect();
            let labels: Vec<u8> = (0..count).map(|i| (i % u32::from(classes)) as u8).collect();
            let ext = if gzip { ".gz" } else { "" };
            let enc = |b: Vec<u8>| if gzip { gz(&b) } else { b };
            fs::write(
                dir.join(format!("{prefix}{split}-images-idx3-ubyte{ext}")),
                enc(idx_images(count, size.0, size.1, &px)),
            )
            .unwrap();
            fs::write(
                dir.join(format!("{prefix}{split}-labels-idx1-ubyte{ext}")),
                enc(idx_labels(&labels)),
            )
            .unwrap();
        }
    }

    fn load_dir(dir: &Path, name: &str) -> Result<Splits> {
        IdxFiles::find(dir, name)?.expect("files present").load()
    }

    #[test]
    fn reads_back_raw_and_gz_exactly() {
        for gzip in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            write_dataset(tmp.path(), "", (7, 3), (4, 5), 10, gzip);
            let s = load_dir(tmp.path(), "mnist").unwrap();
            assert_eq!((s.train.len(), s.test.len()), (7, 3));
            assert_eq!((s.train.rows, s.train.cols), (4, 5));
            assert_eq!(s.train.image(2)[..3], [2, 3, 4]);
            assert_eq!(s.train.image(6)[19], 25);
            assert_eq!(s.test.labels, [0, 1, 2]);
            assert_eq!(s.train.class_names[3], "3");
            assert_eq!(s.train.class_counts(), [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
            let t = s.train.clone().take(2);
            assert_eq!((t.len(), t.images.len()), (2, 40));
            assert_eq!(t.image(1), s.train.image(1));
        }
    }

    #[test]
    fn accepts_dotted_names_and_prefers_raw() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(
            d.join("train-images.idx3-ubyte"),
            idx_images(1, 1, 2, &[1, 2]),
        )
        .unwrap();
        fs::write(d.join("train-labels.idx1-ubyte"), idx_labels(&[9])).unwrap();
        fs::write(
            d.join("t10k-images.idx3-ubyte"),
            idx_images(1, 1, 2, &[3, 4]),
        )
        .unwrap();
        fs::write(d.join("t10k-labels.idx1-ubyte"), idx_labels(&[8])).unwrap();
        // A broken .gz next to the raw file is ignored: raw wins.
        fs::write(d.join("t10k-labels-idx1-ubyte.gz"), b"\x1f\x8bjunk").unwrap();
        let s = load_dir(d, "fashion-mnist").unwrap();
        assert_eq!(s.train.label(0), 9);
        assert_eq!(s.test.image(0), [3, 4]);
        assert_eq!(s.train.class_names[9], "Ankle boot");
    }

    #[test]
    fn emnist_is_transposed_and_named_by_mapping() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // One 2×3 image stored transposed (3×2 in the file).
        let stored = [1, 2, 3, 4, 5, 6]; // file rows: [1,2],[3,4],[5,6]
        fs::write(
            d.join("emnist-letters-train-images-idx3-ubyte.gz"),
            gz(&idx_images(1, 3, 2, &stored)),
        )
        .unwrap();
        fs::write(
            d.join("emnist-letters-train-labels-idx1-ubyte.gz"),
            gz(&idx_labels(&[2])),
        )
        .unwrap();
        fs::write(
            d.join("emnist-letters-test-images-idx3-ubyte.gz"),
            gz(&idx_images(1, 3, 2, &stored)),
        )
        .unwrap();
        fs::write(
            d.join("emnist-letters-test-labels-idx1-ubyte.gz"),
            gz(&idx_labels(&[1])),
        )
        .unwrap();
        fs::write(d.join("emnist-letters-mapping.txt"), "1 65 97\n2 66 98\n").unwrap();
        let s = load_dir(d, "emnist-letters").unwrap();
        assert_eq!((s.train.rows, s.train.cols), (2, 3));
        assert_eq!(s.train.image(0), [1, 3, 5, 2, 4, 6]);
        assert_eq!(s.train.class_names, ["A/a", "B/b"]);
        assert_eq!((s.train.label(0), s.test.label(0)), (1, 0));

        // A label missing from the mapping is an error naming the label file.
        fs::write(d.join("emnist-letters-mapping.txt"), "1 65 97\n").unwrap();
        let e = load_dir(d, "emnist-letters").unwrap_err().to_string();
        assert!(
            e.contains("emnist-letters-train-labels-idx1-ubyte.gz") && e.contains("label 2"),
            "{e}"
        );
        fs::write(d.join("emnist-letters-mapping.txt"), "1 sixty-five\n").unwrap();
        let e = load_dir(d, "emnist-letters").unwrap_err().to_string();
        assert!(e.contains("emnist-letters-mapping.txt line 1"), "{e}");

        // Without mapping: numbers, labels kept.
        fs::remove_file(d.join("emnist-letters-mapping.txt")).unwrap();
        let s = load_dir(d, "emnist-letters").unwrap();
        assert_eq!(s.train.class_names, ["0", "1", "2"]);
        assert_eq!(s.train.label(0), 2);
    }

    /// Writes a valid gz dataset, lets `spoil` break one file, and returns the load error.
    fn error_after(spoil: impl FnOnce(&Path)) -> String {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), "", (6, 2), (3, 3), 10, false);
        spoil(tmp.path());
        load_dir(tmp.path(), "mnist").unwrap_err().to_string()
    }

    #[test]
    fn every_error_names_the_file() {
        type Case = (
            &'static str,
            Box<dyn FnOnce(&Path)>,
            &'static str,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "bad magic",
                Box::new(|d| {
                    fs::write(d.join("train-images-idx3-ubyte"), b"<!DOCTYPE html>....").unwrap()
                }),
                "train-images-idx3-ubyte",
                &["not a valid IDX images file", "HTML"],
            ),
            (
                "swapped",
                Box::new(|d| {
                    fs::write(d.join("train-images-idx3-ubyte"), idx_labels(&[0; 6])).unwrap()
                }),
                "train-images-idx3-ubyte",
                &["holds labels, not images", "swapped"],
            ),
            (
                "float dtype",
                Box::new(|d| {
                    let mut b = idx_images(6, 3, 3, &[0; 54]);
                    b[2] = 0x0d;
                    fs::write(d.join("train-images-idx3-ubyte"), b).unwrap()
                }),
                "train-images-idx3-ubyte",
                &["32-bit float"],
            ),
            (
                "truncated",
                Box::new(|d| {
                    let p = d.join("train-images-idx3-ubyte");
                    let b = fs::read(&p).unwrap();
                    fs::write(&p, &b[..b.len() - 5]).unwrap()
                }),
                "train-images-idx3-ubyte",
                &["is truncated", "6 images of 3×3 (54 bytes)", "holds 49"],
            ),
            (
                "truncated header",
                Box::new(|d| {
                    fs::write(d.join("t10k-labels-idx1-ubyte"), &idx_labels(&[])[..6]).unwrap()
                }),
                "t10k-labels-idx1-ubyte",
                &["is truncated", "8-byte header"],
            ),
            (
                "trailing",
                Box::new(|d| {
                    let mut b = idx_labels(&[0, 1]);
                    b.extend([0, 0, 0]);
                    fs::write(d.join("t10k-labels-idx1-ubyte"), b).unwrap()
                }),
                "t10k-labels-idx1-ubyte",
                &["3 unexpected byte(s)", "2 labels"],
            ),
            (
                "count mismatch",
                Box::new(|d| {
                    fs::write(d.join("t10k-labels-idx1-ubyte"), idx_labels(&[1])).unwrap()
                }),
                "t10k-labels-idx1-ubyte",
                &[
                    "holds 2 images but",
                    "holds 1 labels",
                    "t10k-images-idx3-ubyte",
                ],
            ),
            (
                "label out of range",
                Box::new(|d| {
                    fs::write(
                        d.join("train-labels-idx1-ubyte"),
                        idx_labels(&[0, 1, 2, 3, 10, 5]),
                    )
                    .unwrap()
                }),
                "train-labels-idx1-ubyte",
                &[
                    "label 10 at index 4",
                    "only 10 classes",
                    "ossci-datasets",
                    "65a50cbb",
                ],
            ),
            (
                "size mismatch",
                Box::new(|d| {
                    fs::write(
                        d.join("t10k-images-idx3-ubyte"),
                        idx_images(2, 4, 3, &[0; 24]),
                    )
                    .unwrap()
                }),
                "t10k-images-idx3-ubyte",
                &["3×3", "4×3", "train-images-idx3-ubyte"],
            ),
            (
                "gz corrupt",
                Box::new(|d| {
                    let p = d.join("train-images-idx3-ubyte");
                    let mut g = gz(&fs::read(&p).unwrap());
                    fs::remove_file(&p).unwrap();
                    let n = g.len();
                    g[n / 2] ^= 0xff;
                    g[n - 6] ^= 0xff; // the CRC too, in case the flipped byte was harmless
                    fs::write(d.join("train-images-idx3-ubyte.gz"), g).unwrap()
                }),
                "train-images-idx3-ubyte.gz",
                &["not valid gzip data", "sha256"],
            ),
            (
                "gz cut short",
                Box::new(|d| {
                    let p = d.join("train-labels-idx1-ubyte");
                    let g = gz(&fs::read(&p).unwrap());
                    fs::remove_file(&p).unwrap();
                    fs::write(d.join("train-labels-idx1-ubyte.gz"), &g[..g.len() - 10]).unwrap()
                }),
                "train-labels-idx1-ubyte.gz",
                &["not valid gzip data"],
            ),
            (
                "missing file",
                Box::new(|d| fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap()),
                "t10k-labels-idx1-ubyte.gz",
                &["not the test labels", "all four"],
            ),
        ];
        for (what, spoil, file, needles) in cases {
            let e = error_after(spoil);
            assert!(
                e.contains(file),
                "{what}: message does not name {file}: {e}"
            );
            for n in needles {
                assert!(e.contains(n), "{what}: {n:?} missing from: {e}");
            }
        }
    }

    #[test]
    fn verify_reports_match_mismatch_and_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), "", (2, 1), (2, 2), 10, true);
        let files = IdxFiles::find(tmp.path(), "mnist").unwrap().unwrap();
        let checks = verify(&files).unwrap();
        assert_eq!(checks.len(), 4);
        assert!(
            checks
                .iter()
                .all(|c| matches!(c.checksum, Checksum::Mismatch { .. }))
        );
        assert!(checks[0].to_string().contains("ba891046"), "{}", checks[0]);
        let mut other = files.clone();
        other.name = "kmnist".into();
        assert!(
            verify(&other)
                .unwrap()
                .iter()
                .all(|c| c.checksum == Checksum::Unknown)
        );
        // The empty file's sha256 is well known: the hashing itself is right.
        let empty = tmp.path().join("empty");
        fs::write(&empty, b"").unwrap();
        assert_eq!(
            sha256_decompressed(&empty, "").unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        fs::write(&empty, gz(b"")).unwrap();
        assert_eq!(
            sha256_decompressed(&empty, "").unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
