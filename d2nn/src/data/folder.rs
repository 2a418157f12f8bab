//! Datasets from folders of images, one sub-folder per class.
//!
//! Two layouts:
//!
//! * `DIR/train/<class>/*` and `DIR/test/<class>/*` — the split is given. Classes are the
//!   sub-folders of `train/`; `test/` may lack a class but must not add one.
//! * `DIR/<class>/*` — split here, deterministically: within each class, files are sorted by
//!   name and file number `i` (0-based) goes to the test split when
//!   `floor((i + 1)·f) > floor(i·f)` for the test fraction `f` ([`is_test_sample`]). That puts
//!   exactly `floor(n·f)` of a class's `n` files in the test split, evenly spread; with the
//!   default `f = 1/6`, files 5, 11, 17, … (every 6th).
//!
//! Class names are the sub-folder names in sorted (byte) order; label `k` is the `k`-th name.
//! Image files are those ending in `.png`, `.jpg` or `.jpeg` (any case); other files and
//! hidden entries (leading `.`) are ignored. Samples are stored class by class, files sorted
//! by name within a class (shuffle before training).
//!
//! Every image becomes 8-bit grayscale (Rec. 601 luma, alpha over black, see [`super::image`])
//! resampled to the target size with [`GrayImage::resized`]: area averaging when shrinking,
//! bilinear when enlarging.

use std::fs;
use std::path::{Path, PathBuf};

use super::image::{GrayImage, decode_image};
use super::{DataError, Dataset, Result, Splits};

/// How a folder dataset is built.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Target image size `(rows, cols)`; `None` = the size of the first image (first file of
    /// the first class of the training split, in sorted order).
    pub size: Option<(usize, usize)>,
    /// Fraction of each class's files put in the test split when the folder has no
    /// `train/` and `test/` (in `(0, 1)`; default 1/6).
    pub test_fraction: f64,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            size: None,
            test_fraction: 1.0 / 6.0,
        }
    }
}

/// Whether file number `index` (0-based, in sorted order within its class) goes to the test
/// split for test fraction `fraction`: `floor((index + 1)·f) > floor(index·f)`. A tolerance of
/// 1e-9 makes fractions like 1/6 behave as the exact rational.
pub fn is_test_sample(index: usize, fraction: f64) -> bool {
    let at = |i: usize| (i as f64 * fraction + 1e-9).floor();
    at(index + 1) > at(index)
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Sorted non-hidden entries of `dir` that satisfy `keep`.
fn list(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        action: "list",
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if !is_hidden(&path) && keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `dir` looks like a folder dataset: it has `train/` and `test/` sub-folders, or a
/// sub-folder holding at least one image file. Used by resolution to tell it from a directory
/// without data.
pub fn looks_like_folder_dataset(dir: &Path) -> bool {
    if dir.join("train").is_dir() && dir.join("test").is_dir() {
        return true;
    }
    list(dir, Path::is_dir).is_ok_and(|subs| {
        subs.iter()
            .any(|s| list(s, is_image_file).is_ok_and(|f| !f.is_empty()))
    })
}

/// Loads a folder dataset (see the module docs for the layouts, split rule and conversion).
///
/// Errors, each naming the folder or file: unreadable directory, fewer than two class
/// folders, a class folder without images, a test class unknown to the training split, an
/// empty test split, an undecodable image, an invalid option.
pub fn load_folder(dir: &Path, opts: &FolderOptions) -> Result<Splits> {
    if !(opts.test_fraction > 0.0 && opts.test_fraction < 1.0) {
        return Err(DataError::InvalidOption {
            option: "test fraction",
            problem: format!(
                "{} is not between 0 and 1 (exclusive); 1/6 puts every 6th image in the test set",
                opts.test_fraction
            ),
        });
    }
    if let Some((r, c)) = opts.size
        && (r == 0 || c == 0)
    {
        return Err(DataError::InvalidOption {
            option: "image size",
            problem: format!("{r}×{c}: rows and cols must be at least 1"),
        });
    }
    let name = dir.file_name().map_or_else(
        || "images".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    // (class index, file) lists of both splits.
    let (class_names, train_files, test_files) = if train_dir.is_dir() && test_dir.is_dir() {
        let (names, train) = class_files(&train_dir, None)?;
        let (_, test) = class_files(&test_dir, Some(&names))?;
        (names, train, test)
    } else {
        let (names, all) = class_files(dir, None)?;
        let (mut train, mut test) = (Vec::new(), Vec::new());
        let mut seen = vec![0usize; names.len()];
        for (label, file) in all {
            let index_in_class = &mut seen[usize::from(label)];
            if is_test_sample(*index_in_class, opts.test_fraction) {
                test.push((label, file));
            } else {
                train.push((label, file));
            }
            *index_in_class += 1;
        }
        (names, train, test)
    };
    if test_files.is_empty() {
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            problem: format!(
                "the test split is empty: with test fraction {:.3} no class has enough images \
                 (a class of n images gives floor(n·fraction) test images) — add images, raise \
                 the fraction, or provide train/ and test/ folders",
                opts.test_fraction
            ),
        });
    }
    let mut size = opts.size;
    let train = build(&name, &class_names, &train_files, &mut size)?;
    let test = build(&name, &class_names, &test_files, &mut size)?;
    Ok(Splits { train, test })
}

/// (label, file) pairs.
type Labelled = Vec<(u8, PathBuf)>;

/// Class names and (label, file) pairs under `dir` (one sub-folder per class). With `known`,
/// sub-folders must be among those classes (test split) and may be absent or empty.
fn class_files(dir: &Path, known: Option<&[String]>) -> Result<(Vec<String>, Labelled)> {
    let subs = list(dir, Path::is_dir)?;
    let names: Vec<String> = subs
        .iter()
        .map(|s| {
            s.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if known.is_none() && subs.len() < 2 {
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            problem: format!(
                "found {} class folder(s) ({}); a dataset needs at least 2 classes, one \
                 sub-folder of images per class (e.g. {}/cat/1.png, {}/dog/1.png)",
                subs.len(),
                names.join(", "),
                dir.display(),
                dir.display()
            ),
        });
    }
    if known.is_none() && subs.len() > 256 {
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            problem: format!(
                "found {} class folders; at most 256 classes are supported",
                subs.len()
            ),
        });
    }
    let mut files = Vec::new();
    for (i, (sub, name)) in subs.iter().zip(&names).enumerate() {
        let label =
            match known {
                None => i,
                Some(known) => known.iter().position(|k| k == name).ok_or_else(|| {
                    DataError::Folder {
                        path: sub.clone(),
                        problem: format!(
                            "class {name:?} is not among the training classes ({}); name the test \
                         folders like the training ones",
                            known.join(", ")
                        ),
                    }
                })?,
            };
        let images = list(sub, |p| p.is_file() && is_image_file(p))?;
        if images.is_empty() && known.is_none() {
            return Err(DataError::Folder {
                path: sub.clone(),
                problem: "this class folder holds no .png, .jpg or .jpeg image; add images or \
                          remove the folder"
                    .to_string(),
            });
        }
        let label = u8::try_from(label).unwrap_or(u8::MAX);
        files.extend(images.into_iter().map(|f| (label, f)));
    }
    Ok((names, files))
}

/// Decodes, converts and resizes the images of one split. The first image fixes `size` when
/// it is `None`.
fn build(
    name: &str,
    class_names: &[String],
    files: &[(u8, PathBuf)],
    size: &mut Option<(usize, usize)>,
) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::with_capacity(files.len());
    for (label, path) in files {
        let bytes = fs::read(path).map_err(|source| DataError::Io {
            path: path.clone(),
            action: "read",
            source,
        })?;
        let img: GrayImage = decode_image(path, &bytes)?;
        let (rows, cols) = *size.get_or_insert((img.rows, img.cols));
        if images.is_empty() {
            images.reserve(files.len() * rows * cols);
        }
        images.extend(img.resized(rows, cols).to_u8());
        labels.push(*label);
    }
    let (rows, cols) = size.unwrap_or((0, 0));
    Ok(Dataset {
        name: name.to_string(),
        rows,
        cols,
        images,
        labels,
        class_names: class_names.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::image::tests::{jpeg_bytes, png_bytes};
    use super::*;
    use png::{BitDepth, ColorType};

    fn gray_png(w: u32, h: u32, value: u8) -> Vec<u8> {
        png_bytes(
            w,
            h,
            ColorType::Grayscale,
            BitDepth::Eight,
            &vec![value; (w * h) as usize],
            None,
        )
    }

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn split_rule_is_every_sixth_file() {
        let test: Vec<usize> = (0..20).filter(|&i| is_test_sample(i, 1.0 / 6.0)).collect();
        assert_eq!(test, [5, 11, 17]);
        let test: Vec<usize> = (0..10).filter(|&i| is_test_sample(i, 0.25)).collect();
        assert_eq!(test, [3, 7]);
        for n in [0, 1, 5, 6, 7, 59, 60, 6000] {
            let k = (0..n).filter(|&i| is_test_sample(i, 1.0 / 6.0)).count();
            assert_eq!(k, n / 6, "n = {n}");
        }
    }

    #[test]
    fn flat_folder_classes_split_and_conversion() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("shapes");
        // "b" sorts after "a": class 0 = a, class 1 = b. 7 images in a, 6 in b.
        for i in 0..7 {
            write(
                &d.join(format!("a/{i:02}.png")),
                &gray_png(4, 4, 10 * i as u8),
            );
        }
        for i in 0..5 {
            write(&d.join(format!("b/{i:02}.PNG")), &gray_png(8, 8, 200));
        }
        // A progressive JPEG with a left/right pattern, 8×8 → 4×4.
        let px: Vec<u8> = (0..64).map(|i| if i % 8 < 4 { 0 } else { 255 }).collect();
        write(&d.join("b/05.jpg"), &jpeg_bytes(8, 8, &px, true));
        write(&d.join("b/notes.txt"), b"ignored");
        write(&d.join(".hidden/x.png"), &gray_png(4, 4, 0));
        let s = load_folder(&d, &FolderOptions::default()).unwrap();
        assert_eq!(s.train.name, "shapes");
        assert_eq!(s.train.class_names, ["a", "b"]);
        assert_eq!((s.train.rows, s.train.cols), (4, 4), "first image's size");
        assert_eq!(s.test.labels, [0, 1]);
        assert_eq!(s.train.class_counts(), [6, 5]);
        // Test image of class a is file 05 (value 50); of class b, the JPEG (file 05).
        assert!(s.test.image(0).iter().all(|&v| v == 50));
        let jpg = s.test.image(1);
        for r in 0..4 {
            assert!(jpg[r * 4] < 8 && jpg[r * 4 + 1] < 8, "{jpg:?}");
            assert!(jpg[r * 4 + 2] > 247 && jpg[r * 4 + 3] > 247, "{jpg:?}");
        }
        // 8×8 constant 200 shrunk to 4×4 stays 200.
        assert!(s.train.image(6).iter().all(|&v| v == 200));
        // Explicit size: area average of a known pattern.
        let s = load_folder(
            &d,
            &FolderOptions {
                size: Some((2, 2)),
                test_fraction: 0.5,
            },
        )
        .unwrap();
        assert_eq!((s.test.rows, s.test.cols, s.test.len()), (2, 2, 6));
        assert_eq!(s.test.image(5), [0, 255, 0, 255]);
    }

    #[test]
    fn train_test_layout_and_rgb_area_average() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("mine");
        // 2×2 RGB: red, green / blue, white → luma 76.245, 149.685 / 29.07, 255 → mean 127.5.
        let rgb = png_bytes(
            2,
            2,
            ColorType::Rgb,
            BitDepth::Eight,
            &[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255],
            None,
        );
        write(&d.join("train/x/1.png"), &rgb);
        write(&d.join("train/y/1.png"), &gray_png(2, 2, 9));
        write(&d.join("test/y/1.png"), &rgb);
        let s = load_folder(
            &d,
            &FolderOptions {
                size: Some((1, 1)),
                ..FolderOptions::default()
            },
        )
        .unwrap();
        assert_eq!(s.train.class_names, ["x", "y"]);
        assert_eq!(s.train.images, [128, 9]);
        assert_eq!(
            (s.test.labels.clone(), s.test.images.clone()),
            (vec![1], vec![128])
        );
        assert_eq!(s.test.class_counts(), [0, 1]);
        let s = load_folder(&d, &FolderOptions::default()).unwrap();
        assert_eq!(s.train.image(0), [76, 150, 29, 255]);
        // A test class unknown to training.
        write(&d.join("test/z/1.png"), &rgb);
        let e = load_folder(&d, &FolderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test/z") && e.contains("not among the training classes"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_folder_or_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("set");
        let err = |opts: &FolderOptions| load_folder(&d, opts).unwrap_err().to_string();
        let dflt = FolderOptions::default();
        write(&d.join("only/1.png"), &gray_png(2, 2, 1));
        let e = err(&dflt);
        assert!(e.contains("set") && e.contains("at least 2 classes"), "{e}");
        fs::create_dir_all(d.join("empty")).unwrap();
        let e = err(&dflt);
        assert!(e.contains("set/empty") && e.contains("no .png"), "{e}");
        write(&d.join("empty/1.png"), &gray_png(2, 2, 1));
        let e = err(&dflt);
        assert!(e.contains("test split is empty"), "{e}");
        for i in 2..7 {
            write(&d.join(format!("empty/{i}.png")), &gray_png(2, 2, 1));
        }
        write(&d.join("empty/3.png"), b"\x89PNG\r\n\x1a\nbroken");
        let e = err(&dflt);
        assert!(
            e.contains("empty/3.png") && e.contains("cannot decode"),
            "{e}"
        );
        write(&d.join("empty/3.png"), &gray_png(2, 2, 1));
        assert!(load_folder(&d, &dflt).is_ok());
        let e = err(&FolderOptions {
            test_fraction: 1.0,
            ..dflt.clone()
        });
        assert!(e.contains("test fraction"), "{e}");
        let e = err(&FolderOptions {
            size: Some((0, 3)),
            ..dflt
        });
        assert!(e.contains("image size"), "{e}");
        assert!(looks_like_folder_dataset(&d));
        assert!(!looks_like_folder_dataset(tmp.path()));
    }
}
