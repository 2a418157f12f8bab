//! Multi-page grayscale TIFF stacks — microscope images, z-stacks, measured PSFs — read as `f32`
//! voxels with their voxel size in metres, and written as float32 stacks that Fiji opens with
//! their calibration.
//!
//! A [`Stack`] is `[nz, ny, nx]`, row-major with x fastest: page `z` of the file is plane `z`.
//!
//! **Reading** ([`read_stack`]) takes every page (image file directory) of a one-channel TIFF:
//! unsigned, signed and floating-point samples of 8, 16, 32 or 64 bits, uncompressed or
//! compressed (LZW, Deflate, PackBits), in strips or tiles, classic TIFF or BigTIFF. Before any
//! pixel is decoded, every page header is checked — one channel, one size for all pages, at most
//! [`MAX_PAGE_SAMPLES`] samples — and the whole stack must fit in the memory left
//! ([`crate::memory`]), so a small file whose header claims a huge image is refused without
//! allocating it. Every problem is reported as [`OpticsError::File`] (naming the file, what is
//! wrong and how to fix it) or, for a stack too large for the machine, [`OpticsError::Memory`].
//! No input makes it panic.
//!
//! The voxel size ([`Spacing`]) comes from, in this order:
//! 1. an ImageJ description (the ImageDescription tag starting with `ImageJ=`, as Fiji and
//!    tifffile write it): its `unit=` (`micron`, `um`, `µm`, `nm`, `mm`, `cm`, `m`, `inch`;
//!    `pixel` means uncalibrated) scales `1 / XResolution` and `1 / YResolution` (pixels per
//!    unit) into x and y, and its `spacing=` into z;
//! 2. otherwise the TIFF tags XResolution and YResolution in pixels per inch or per centimetre
//!    (ResolutionUnit 2, the TIFF default, or 3). A resolution of exactly 1 is the placeholder
//!    many writers put there and gives no spacing, nor does ResolutionUnit 1 (none). Other
//!    descriptions (tifffile's JSON `{"shape": [...]}`) carry no spacing.
//!
//! **Writing** ([`write_stack`]) produces a float32 grayscale multi-page TIFF as ImageJ writes
//! one: an ImageJ description on the first page (`images`, `slices`, `unit=micron` and the z
//! `spacing` in microns), XResolution and YResolution in pixels per micron on every page, and
//! all pixel data in one contiguous block in page order (ImageJ reads the pages of such a file
//! at fixed strides). Stacks over 4 GiB become BigTIFF files, which Fiji opens through
//! Bio-Formats. The file is written atomically (see [`super::write_atomic`]).
//!
//! ```
//! use photonflow_optics::io::tiff::{Spacing, Stack, read_stack, write_stack};
//!
//! # fn main() -> photonflow_optics::Result<()> {
//! let dir = std::env::temp_dir().join(format!("photonflow-tiff-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("psf.tif");
//!
//! // Two planes of 3 × 4 voxels, 0.1 µm pixels, 0.3 µm between planes.
//! let mut stack = Stack::new((0..24).map(|i| i as f32).collect(), [2, 3, 4])?;
//! stack.spacing = Spacing { x: Some(0.1e-6), y: Some(0.1e-6), z: Some(0.3e-6) };
//! write_stack(&path, &stack)?;
//!
//! let back = read_stack(&path)?;
//! assert_eq!(back.shape, [2, 3, 4]);
//! assert_eq!(back.plane(1), stack.plane(1));
//! assert!((back.spacing.z.unwrap() - 0.3e-6).abs() < 1e-18);
//! std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

use tiff::decoder::ifd::Value;
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::encoder::{Rational, TiffEncoder, TiffKind};
use tiff::tags::{CompressionMethod, PhotometricInterpretation, ResolutionUnit, SampleFormat, Tag};
use tiff::{ColorType, TiffError, TiffFormatError, TiffResult};

use crate::error::{OpticsError, Result, invalid, positive};
use crate::field::non_finite;
use crate::memory;

/// Most samples (width × height × samples per pixel) a page may have: 2^26, about 67
/// megapixels, e.g. 8192 × 8192. A header claiming more is refused before anything is
/// allocated, and [`write_stack`] refuses planes that large, so every file it writes can be read.
pub const MAX_PAGE_SAMPLES: usize = 1 << 26;

/// What to do with a stack too large for the machine's memory.
const TOO_LARGE_FIX: &str = "crop the stack or split it into smaller files first (in Fiji: \
                             Image › Stacks › Tools › Make Substack…)";

/// One micrometre, in metres: the unit of the ImageJ calibration [`write_stack`] writes.
const MICRON: f64 = 1e-6;

/// Bytes a written page takes besides its pixels, generously: its directory, its resolution
/// values and, on the first page, the description. Decides when a file needs BigTIFF.
const PAGE_OVERHEAD_BYTES: usize = 1024;

/// Voxel size of a [`Stack`], in metres; `None` where the file does not say.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spacing {
    /// Pixel pitch along x (between columns), metres.
    pub x: Option<f64>,
    /// Pixel pitch along y (between rows), metres.
    pub y: Option<f64>,
    /// Distance between planes (pages), metres.
    pub z: Option<f64>,
}

/// A stack of 2-D planes: a z-stack, a 3-D PSF or (with one plane) an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The voxels, plane after plane, row after row, x fastest: voxel `(z, y, x)` is at flat
    /// index `(z·ny + y)·nx + x`.
    pub data: Vec<f32>,
    /// `[nz, ny, nx]`: planes (pages), rows, columns. A 2-D image has `nz = 1`.
    pub shape: [usize; 3],
    /// Voxel size, metres.
    pub spacing: Spacing,
}

impl Stack {
    /// A stack of `data` in the layout of [`Stack::data`], with unknown spacing.
    ///
    /// Errors ([`OpticsError::Shape`]): an axis of `shape` is 0, or `data` does not hold
    /// exactly `nz·ny·nx` values.
    pub fn new(data: Vec<f32>, shape: [usize; 3]) -> Result<Self> {
        check_shape(data.len(), shape)?;
        Ok(Self {
            data,
            shape,
            spacing: Spacing::default(),
        })
    }

    /// Number of voxels, `nz·ny·nx`.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the stack holds no voxels (never true of a stack made by [`Stack::new`] or
    /// [`read_stack`]).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Plane `z`, `ny·nx` values, row after row.
    ///
    /// # Panics
    ///
    /// If `z ≥ nz`, or if `data` is shorter than `shape` says.
    pub fn plane(&self, z: usize) -> &[f32] {
        let n = self.shape[1] * self.shape[2];
        &self.data[z * n..(z + 1) * n]
    }
}

/// Reads every page of the grayscale TIFF at `path` into a [`Stack`], samples converted to
/// `f32` (rounded to the nearest `f32` where they have more digits: 32- and 64-bit integers
/// above 2^24, `f64`), with its voxel size where the file states it (see the
/// [module documentation](self) for where it is taken from).
///
/// Errors: [`OpticsError::File`] when the file cannot be opened, is empty, is not a TIFF, is
/// truncated or damaged, has a page with several samples per pixel (RGB, multi-channel), a
/// palette, samples of other than 8, 16, 32 or 64 bits, a compression the decoder lacks, a
/// header claiming more than [`MAX_PAGE_SAMPLES`] samples, pages of different sizes, several
/// channels or time points interleaved in an ImageJ hyperstack, or NaN or infinite values;
/// [`OpticsError::Memory`] when the stack would not fit in the memory left.
pub fn read_stack(path: &Path) -> Result<Stack> {
    let file = File::open(path).map_err(|e| {
        file_error(
            path,
            format!("cannot open the file: {e}; check the path and the permissions"),
        )
    })?;
    match file.metadata() {
        Ok(m) if m.is_dir() => {
            return Err(file_error(
                path,
                "this is a folder; give the path of a .tif file",
            ));
        }
        Ok(m) if m.len() == 0 => {
            return Err(file_error(
                path,
                "the file is empty (0 bytes): whatever wrote or copied it did not finish; \
                 write or copy it again",
            ));
        }
        _ => {}
    }
    read_from(BufReader::new(file), path)
}

/// [`read_stack`] from any seekable reader; `path` only names the input in errors.
fn read_from<R: Read + Seek>(reader: R, path: &Path) -> Result<Stack> {
    let fail = |problem: String| file_error(path, problem);
    let at_page = |page: usize| move |e: TiffError| fail(format!("page {page}: {}", problem(&e)));

    let mut decoder = Decoder::new(reader)
        .map_err(|e| fail(problem(&e)))?
        .with_limits(limits());
    let description = decoder
        .get_tag_ascii_string(Tag::ImageDescription)
        .unwrap_or_default();
    let imagej = description.starts_with("ImageJ=").then_some(&*description);
    let spacing = read_spacing(&mut decoder, imagej);
    if let Some(imagej) = imagej {
        refuse_interleaved(imagej).map_err(fail)?;
    }

    // Check every page header before decoding anything.
    let [ny, nx] = page_shape(&mut decoder, 1).map_err(fail)?;
    let mut pages = 1;
    while decoder.more_images() {
        pages += 1;
        decoder.next_image().map_err(at_page(pages))?;
        let [h, w] = page_shape(&mut decoder, pages).map_err(fail)?;
        if [h, w] != [ny, nx] {
            return Err(fail(format!(
                "page {pages} is {w}×{h} pixels but page 1 is {nx}×{ny}; a stack needs pages of \
                 one size: crop or pad the pages to one size, or save them as separate files"
            )));
        }
    }
    let images = imagej.and_then(|d| imagej_field(d, "images")?.parse::<usize>().ok());
    if let Some(images) = images.filter(|&n| n > pages) {
        return Err(fail(format!(
            "the ImageJ description says images={images} but the file has {pages} page(s): \
             ImageJ saves stacks over 4 GiB like this, with a directory for the first page only; \
             save the stack as BigTIFF instead (e.g. tifffile.imwrite(path, data, bigtiff=True)) \
             or in parts under 4 GiB"
        )));
    }

    let page = ny * nx;
    let what = || format!("reading the {pages}×{ny}×{nx} stack {}", path.display());
    let needed = memory::bytes(&[pages, page, 4]);
    memory::check_fits(
        needed.saturating_add(memory::bytes(&[page, 8])),
        what,
        TOO_LARGE_FIX,
    )?;
    // Where the memory left is unknown, an allocation that fails is an error, not an abort.
    let mut data = Vec::new();
    data.try_reserve_exact(pages * page).map_err(|_| {
        fail(format!(
            "{} needs {} of memory, which cannot be allocated; {TOO_LARGE_FIX}",
            what(),
            memory::format_bytes(needed)
        ))
    })?;

    decoder.seek_to_image(0).map_err(at_page(1))?;
    let mut buffer = DecodingResult::U8(Vec::new());
    for z in 0..pages {
        if z > 0 {
            decoder.next_image().map_err(at_page(z + 1))?;
        }
        decoder
            .read_image_to_buffer(&mut buffer)
            .map_err(at_page(z + 1))?;
        append_f32(&buffer, &mut data);
        if data.len() != (z + 1) * page {
            return Err(fail(format!(
                "page {}: decoding gave {} samples instead of {nx}×{ny}; the file is damaged or \
                 laid out in a way photonflow does not read: save it again, e.g. in Fiji with \
                 File › Save As › Tiff…",
                z + 1,
                data.len() - z * page,
            )));
        }
    }
    if let Some((count, first)) = non_finite(&data) {
        return Err(fail(format!(
            "{count} voxel(s) are NaN or infinite (or too large for float32), the first at flat \
             index {first} (page {}, row {}, column {}); replace them with finite values first, \
             e.g. in Fiji with Process › Math › Remove NaNs…",
            first / page + 1,
            first % page / nx,
            first % nx,
        )));
    }
    Ok(Stack {
        data,
        shape: [pages, ny, nx],
        spacing,
    })
}

/// Writes `stack` to `path` as a float32 grayscale multi-page TIFF with an ImageJ description
/// and calibration (x and y as pixels per micron, z as the `spacing` in microns), so that Fiji
/// opens it as a stack with its voxel size. Spacings that are `None` are left out (with any of
/// them known, the description says `unit=micron`, and Fiji shows 1 µm for an unknown x or y).
/// The file is written to a temporary name and renamed into place; on any error `path` is left
/// as it was.
///
/// Errors: [`OpticsError::Shape`] when `data` does not hold `nz·ny·nx` values, an axis is 0 or a
/// plane has more than [`MAX_PAGE_SAMPLES`] voxels; [`OpticsError::NonFinite`] for NaN or
/// infinite voxels; [`OpticsError::InvalidParameter`] for a spacing that is not a positive
/// length (or, for x and y, not between about 1 fm and 4 km, the range a TIFF resolution in
/// pixels per micron holds); [`OpticsError::File`] when the file cannot be written.
pub fn write_stack(path: &Path, stack: &Stack) -> Result<()> {
    let [nz, ny, nx] = stack.shape;
    check_shape(stack.data.len(), stack.shape)?;
    if ny * nx > MAX_PAGE_SAMPLES {
        return Err(OpticsError::Shape(format!(
            "planes of {nx}×{ny} voxels are more than the {MAX_PAGE_SAMPLES} (2^26, e.g. \
             8192×8192) photonflow reads per TIFF page; crop or bin the stack first"
        )));
    }
    if let Some((count, first)) = non_finite(&stack.data) {
        return Err(OpticsError::NonFinite { count, first });
    }
    let Spacing { x, y, z } = stack.spacing;
    let per_micron = |name: &'static str, pitch: Option<f64>| {
        pitch
            .map(|p| {
                rational(MICRON / positive(name, p)?).ok_or_else(|| {
                    invalid(
                        name,
                        format!(
                            "{p} m cannot be stored as a TIFF resolution in pixels per micron; \
                             give a pitch between 1e-15 m and 4e3 m"
                        ),
                    )
                })
            })
            .transpose()
    };
    let resolution = [per_micron("x spacing", x)?, per_micron("y spacing", y)?];
    let z = z.map(|z| positive("z spacing", z)).transpose()?;

    let mut description = format!("ImageJ=1.11a\nimages={nz}\nslices={nz}\n");
    if x.is_some() || y.is_some() || z.is_some() {
        description.push_str("unit=micron\n");
    }
    if let Some(z) = z {
        description.push_str(&format!("spacing={}\n", decimal(z / MICRON)));
    }
    description.push_str("loop=false\n");

    let file_bytes =
        memory::bytes(&[stack.len(), 4]).saturating_add(memory::bytes(&[nz, PAGE_OVERHEAD_BYTES]));
    super::write_atomic(path, |w| {
        if file_bytes > u64::from(u32::MAX) {
            TiffEncoder::new_big(w).and_then(|t| encode(t, stack, &description, &resolution))
        } else {
            TiffEncoder::new(w).and_then(|t| encode(t, stack, &description, &resolution))
        }
        .map_err(|e| match e {
            TiffError::IoError(e) => e,
            e => io::Error::other(e),
        })
    })
    .map_err(|e| {
        file_error(
            path,
            format!(
                "cannot write the TIFF file: {e}; check that the folder exists and is writable \
                 and that the disk has room"
            ),
        )
    })
}

/// Encodes `stack` as ImageJ lays a stack out: the pixels of all pages in one block, in page
/// order, then one directory per page pointing into it, the first with `description`.
fn encode<W: Write + Seek, K: TiffKind>(
    mut tiff: TiffEncoder<W, K>,
    stack: &Stack,
    description: &str,
    resolution: &[Option<Rational>; 2],
) -> TiffResult<()> {
    let [nz, ny, nx] = stack.shape;
    let page_bytes = memory::bytes(&[ny, nx, 4]);
    let mut data_offset = 0;
    for z in 0..nz {
        let mut dir = tiff.image_directory()?;
        if z == 0 {
            data_offset = dir.write_data(stack.data.as_slice())?;
            dir.write_tag(Tag::ImageDescription, description)?;
        }
        dir.write_tag(Tag::ImageWidth, u32::try_from(nx)?)?;
        dir.write_tag(Tag::ImageLength, u32::try_from(ny)?)?;
        dir.write_tag(Tag::BitsPerSample, 32u16)?;
        dir.write_tag(Tag::Compression, CompressionMethod::None)?;
        dir.write_tag(
            Tag::PhotometricInterpretation,
            PhotometricInterpretation::BlackIsZero,
        )?;
        dir.write_tag(
            Tag::StripOffsets,
            K::convert_offset(data_offset + z as u64 * page_bytes)?,
        )?;
        dir.write_tag(Tag::SamplesPerPixel, 1u16)?;
        dir.write_tag(Tag::RowsPerStrip, u32::try_from(ny)?)?;
        dir.write_tag(Tag::StripByteCounts, K::convert_offset(page_bytes)?)?;
        dir.write_tag(Tag::SampleFormat, SampleFormat::IEEEFP.to_u16())?;
        for (tag, r) in [Tag::XResolution, Tag::YResolution]
            .into_iter()
            .zip(resolution)
        {
            if let Some(r) = r {
                dir.write_tag(tag, r)?;
            }
        }
        if resolution.iter().any(Option::is_some) {
            // ImageJ's choice: the unit is in the description, the TIFF tag says "none".
            dir.write_tag(Tag::ResolutionUnit, ResolutionUnit::None)?;
        }
        dir.finish()?;
    }
    Ok(())
}

/// An [`OpticsError::File`] about `path`.
fn file_error(path: &Path, problem: impl Into<String>) -> OpticsError {
    OpticsError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// What a decoder error means, with the fix.
fn problem(e: &TiffError) -> String {
    match e {
        TiffError::FormatError(
            TiffFormatError::TiffSignatureNotFound | TiffFormatError::TiffSignatureInvalid,
        ) => "this is not a TIFF file: it does not start with a TIFF signature (\"II*\" or \
              \"MM*\"); give a .tif file, or convert the image to TIFF first, e.g. in Fiji with \
              File › Save As › Tiff…"
            .into(),
        TiffError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends early: it is truncated (an interrupted download, copy or save); copy \
             or save it again"
                .into()
        }
        TiffError::IoError(e) => format!("cannot read the file: {e}"),
        TiffError::UnsupportedError(e) => format!(
            "the file uses a TIFF feature photonflow cannot decode ({e}); save it again as an \
             uncompressed grayscale TIFF, e.g. in Fiji with File › Save As › Tiff…"
        ),
        e => format!(
            "the file is not a valid TIFF ({e}); it is probably damaged: copy or save it again"
        ),
    }
}

/// Decoder limits: a page of up to [`MAX_PAGE_SAMPLES`] 64-bit samples decodes in one piece,
/// even when stored as a single strip.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_PAGE_SAMPLES * 8;
    limits.intermediate_buffer_size = MAX_PAGE_SAMPLES * 8;
    limits
}

/// `[ny, nx]` of the decoder's current page (number `page`, from 1), after checking that it is
/// one channel of 8 to 64 bits and at most [`MAX_PAGE_SAMPLES`] samples; else the problem.
fn page_shape<R: Read + Seek>(
    decoder: &mut Decoder<R>,
    page: usize,
) -> std::result::Result<[usize; 2], String> {
    let (width, height) = decoder
        .dimensions()
        .map_err(|e| format!("page {page}: {}", problem(&e)))?;
    let samples = decoder
        .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
        .ok()
        .flatten()
        .unwrap_or(1);
    let [w, h, s] = [width as usize, height as usize, usize::from(samples)];
    let total = memory::bytes(&[w, h, s]);
    if total > MAX_PAGE_SAMPLES as u64 {
        return Err(format!(
            "page {page} claims {w}×{h} pixels of {s} sample(s), {total} samples, more than the \
             {MAX_PAGE_SAMPLES} (2^26, e.g. 8192×8192) photonflow reads per page; the header is \
             probably corrupt — or, if the image really is that large, crop or bin it first"
        ));
    }
    if s != 1 {
        return Err(format!(
            "page {page} has {s} samples per pixel; photonflow reads one-channel (grayscale) \
             stacks: split the channels first, e.g. in Fiji with Image › Color › Split Channels"
        ));
    }
    match decoder.colortype() {
        Ok(ColorType::Gray(8 | 16 | 32 | 64)) => Ok([h, w]),
        Ok(ColorType::Gray(bits)) => Err(format!(
            "page {page} has {bits}-bit samples; photonflow reads 8-, 16-, 32- and 64-bit \
             samples: convert the stack first, e.g. in Fiji with Image › Type › 16-bit"
        )),
        colour => Err(format!(
            "page {page} is not a grayscale image ({}); convert it to grayscale first, e.g. in \
             Fiji with Image › Type › 16-bit",
            colour.map_or_else(|e| e.to_string(), |c| format!("{c:?}"))
        )),
    }
}

/// Refuses an ImageJ hyperstack whose pages interleave channels or time points: read as a
/// z-stack they would mix.
fn refuse_interleaved(imagej: &str) -> std::result::Result<(), String> {
    for (key, what, fix) in [
        (
            "channels",
            "channels",
            "split the channels first, e.g. in Fiji with Image › Color › Split Channels",
        ),
        (
            "frames",
            "time points",
            "keep one time point first, e.g. in Fiji with Image › Duplicate… and one frame",
        ),
    ] {
        let n = imagej_field(imagej, key).and_then(|v| v.parse::<usize>().ok());
        if let Some(n) = n.filter(|&n| n > 1) {
            return Err(format!(
                "the pages interleave {n} {what} (ImageJ description {key}={n}); photonflow reads \
                 one channel of one z-stack: {fix}"
            ));
        }
    }
    Ok(())
}

/// The voxel size stated by the decoder's current (first) page, whose ImageJ description is
/// `imagej`. Unreadable metadata counts as absent: it never makes the pixels unreadable.
fn read_spacing<R: Read + Seek>(decoder: &mut Decoder<R>, imagej: Option<&str>) -> Spacing {
    let mut resolution = |tag| decoder.find_tag(tag).ok().flatten().and_then(per_unit);
    let resolution = [resolution(Tag::XResolution), resolution(Tag::YResolution)];
    let unit = decoder
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten();
    spacing(imagej, resolution, unit)
}

/// The voxel size from an ImageJ description (if any), the X and Y resolutions (pixels per
/// unit) and the TIFF ResolutionUnit; see the module documentation for the rules.
fn spacing(imagej: Option<&str>, resolution: [Option<f64>; 2], tiff_unit: Option<u16>) -> Spacing {
    let imagej_unit = imagej.and_then(|d| imagej_field(d, "unit"));
    let unit_m = match imagej_unit {
        Some(unit) => length_unit(unit),
        None => match tiff_unit.unwrap_or(2) {
            2 => length_unit("inch"),
            3 => length_unit("cm"),
            _ => None,
        },
    };
    let pitch = |per_unit: Option<f64>| {
        // A resolution of exactly 1 is a placeholder unless ImageJ stated the unit.
        let per_unit = per_unit.filter(|&r| imagej_unit.is_some() || r != 1.0)?;
        Some(unit_m? / per_unit)
    };
    let z = imagej.and_then(|d| imagej_field(d, "spacing")?.parse::<f64>().ok());
    Spacing {
        x: pitch(resolution[0]),
        y: pitch(resolution[1]),
        z: z.filter(|&z| z.is_finite() && z > 0.0)
            .zip(imagej_unit.and(unit_m))
            .map(|(z, unit_m)| z * unit_m),
    }
}

/// A resolution tag's value (pixels per unit), if it is a positive finite number.
fn per_unit(value: Value) -> Option<f64> {
    match value {
        Value::Rational(n, d) => Some(f64::from(n) / f64::from(d)),
        Value::Float(v) => Some(f64::from(v)),
        Value::Double(v) => Some(v),
        _ => None,
    }
    .filter(|&r| r.is_finite() && r > 0.0)
}

/// The value of `key` in an ImageJ description (lines `key=value`).
fn imagej_field<'a>(description: &'a str, key: &str) -> Option<&'a str> {
    description
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// Metres per ImageJ length unit; `None` for `pixel` (uncalibrated) and unknown units.
fn length_unit(unit: &str) -> Option<f64> {
    match unit {
        "micron" | "microns" | "um" | "µm" | "μm" | "\\u00B5m" | "micrometer" | "micrometre" => {
            Some(MICRON)
        }
        "nm" | "nanometer" | "nanometre" => Some(1e-9),
        "mm" | "millimeter" | "millimetre" => Some(1e-3),
        "cm" | "centimeter" | "centimetre" => Some(1e-2),
        "m" | "meter" | "metre" => Some(1.0),
        "inch" | "in" => Some(0.0254),
        _ => None,
    }
}

/// Appends the samples of a decoded page to `data` as `f32`.
fn append_f32(page: &DecodingResult, data: &mut Vec<f32>) {
    macro_rules! widen {
        ($($variant:ident),*) => {
            match page {
                $(DecodingResult::$variant(v) => data.extend(v.iter().map(|&s| s as f32)),)*
                DecodingResult::F16(v) => data.extend(v.iter().map(|s| s.to_f32())),
            }
        };
    }
    widen!(U8, U16, U32, U64, I8, I16, I32, I64, F32, F64);
}

/// Checks that `shape` has no empty axis and holds exactly `len` values.
fn check_shape(len: usize, shape: [usize; 3]) -> Result<()> {
    let needed = memory::bytes(&shape);
    if shape.contains(&0) {
        Err(OpticsError::Shape(format!(
            "stack shape [nz, ny, nx] = {shape:?} has an empty axis; every axis needs at least \
             one voxel"
        )))
    } else if needed != len as u64 {
        Err(OpticsError::Shape(format!(
            "stack shape [nz, ny, nx] = {shape:?} needs {needed} values but the data hold {len}; \
             give a shape whose product is the data length"
        )))
    } else {
        Ok(())
    }
}

/// The fraction closest to `value` whose numerator and denominator fit in `u32` (by continued
/// fractions, stopping at the first that equals `value` in `f64`); `None` if `value` is outside
/// `[1/u32::MAX, u32::MAX]`.
fn rational(value: f64) -> Option<Rational> {
    let max = f64::from(u32::MAX);
    // The last two convergents, n/d the latest.
    let (mut n0, mut d0, mut n, mut d) = (0.0, 1.0, 1.0, 0.0);
    let mut x = value;
    for _ in 0..64 {
        let a = x.floor();
        let (n1, d1) = (a * n + n0, a * d + d0);
        if n1 > max || d1 > max {
            break;
        }
        (n0, d0, n, d) = (n, d, n1, d1);
        if n / d == value || x == a {
            break;
        }
        x = 1.0 / (x - a);
    }
    (n >= 1.0 && d >= 1.0).then_some(Rational {
        n: n as u32,
        d: d as u32,
    })
}

/// `value` in decimal with at most 15 significant digits: drops the last-digit noise of a unit
/// conversion (`0.10400000000000001` → `0.104`).
fn decimal(value: f64) -> String {
    format!("{value:.14e}")
        .parse::<f64>()
        .unwrap_or(value)
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tiff::encoder::colortype::{self, ColorType as EncodedColor};
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, TiffValue};

    use super::*;
    use crate::error::err_text;
    use crate::io::tests::ScratchDir;

    /// Reads a TIFF held in memory.
    fn read_bytes(bytes: &[u8]) -> Result<Stack> {
        read_from(Cursor::new(bytes), Path::new("mem.tif"))
    }

    /// A TIFF written by the tiff crate's own encoder: one `width`×`height` page of `C` per
    /// entry of `pages`.
    fn encoded<C: EncodedColor>(
        width: u32,
        height: u32,
        pages: &[&[C::Inner]],
        compression: Compression,
    ) -> Vec<u8>
    where
        [C::Inner]: TiffValue,
    {
        let mut out = Vec::new();
        let mut tiff = TiffEncoder::new(Cursor::new(&mut out))
            .unwrap()
            .with_compression(compression);
        for page in pages {
            tiff.write_image::<C>(width, height, page).unwrap();
        }
        out
    }

    /// A 16-bit TIFF of `pages` pages of 4×3 pixels, the first with `description`.
    fn described(pages: usize, description: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut tiff = TiffEncoder::new(Cursor::new(&mut out)).unwrap();
        for z in 0..pages {
            let mut image = tiff.new_image::<colortype::Gray16>(4, 3).unwrap();
            if z == 0 {
                image
                    .encoder()
                    .write_tag(Tag::ImageDescription, description)
                    .unwrap();
            }
            image.write_data(&[z as u16; 12]).unwrap();
        }
        out
    }

    /// A classic TIFF of `pages` directories, each claiming a `width`×`height` 16-bit page
    /// whose pixels are the same 16 bytes: a header that lies about the size.
    fn lying(width: u32, height: u32, pages: usize) -> Vec<u8> {
        // (tag, type: 3 SHORT or 4 LONG, value); pixel data at offset 8, 16 bytes.
        let entries = [
            (256u16, 4u16, width),
            (257, 4, height),
            (258, 3, 16),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 8),
            (277, 3, 1),
            (279, 4, 16),
        ];
        let ifd_len = 2 + 12 * entries.len() + 4;
        let mut f = b"II*\0".to_vec();
        f.extend(24u32.to_le_bytes());
        f.extend([0; 16]);
        for p in 0..pages {
            let next = if p + 1 < pages { f.len() + ifd_len } else { 0 };
            f.extend((entries.len() as u16).to_le_bytes());
            for (tag, ty, value) in entries {
                f.extend(tag.to_le_bytes());
                f.extend(ty.to_le_bytes());
                f.extend(1u32.to_le_bytes());
                if ty == 3 {
                    f.extend((value as u16).to_le_bytes());
                    f.extend([0, 0]);
                } else {
                    f.extend(value.to_le_bytes());
                }
            }
            f.extend(u32::try_from(next).unwrap().to_le_bytes());
        }
        f
    }

    fn is_file_error(r: &Result<Stack>) -> bool {
        matches!(r, Err(OpticsError::File { .. }))
    }

    /// A 3 × 5 × 7 stack with awkward values: negative, tiny, subnormal, huge.
    fn sample_stack() -> Stack {
        let data = (0..105)
            .map(|i| match i {
                0 => f32::MIN_POSITIVE / 8.0,
                1 => f32::MAX,
                2 => -0.0,
                _ => (i as f32 * 0.37 - 11.0).powi(3) * 1e-3,
            })
            .collect();
        let mut stack = Stack::new(data, [3, 5, 7]).unwrap();
        stack.spacing = Spacing {
            x: Some(0.1e-6),
            y: Some(0.1e-6),
            z: Some(0.25e-6),
        };
        stack
    }

    fn assert_close(found: Option<f64>, expected: f64) {
        let found = found.unwrap_or_else(|| panic!("no spacing, expected {expected}"));
        assert!(
            ((found - expected) / expected).abs() < 1e-12,
            "{found} vs {expected}"
        );
    }

    #[test]
    fn round_trip_is_bit_exact_with_spacing() {
        let dir = ScratchDir::new("tiff-round-trip");
        let path = dir.0.join("stack.tif");
        let stack = sample_stack();
        write_stack(&path, &stack).unwrap();
        assert_eq!(dir.entries(), ["stack.tif"], "no temporary file is left");
        let back = read_stack(&path).unwrap();
        assert_eq!(back.shape, [3, 5, 7]);
        let bits = |s: &Stack| s.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&stack));
        assert_close(back.spacing.x, 0.1e-6);
        assert_close(back.spacing.y, 0.1e-6);
        assert_close(back.spacing.z, 0.25e-6);
        assert_eq!(back.plane(2), &stack.data[70..]);

        // Unknown spacings stay unknown; odd pitches survive through exact fractions.
        let mut stack = Stack::new(vec![1.5; 6], [1, 2, 3]).unwrap();
        write_stack(&path, &stack).unwrap();
        assert_eq!(read_stack(&path).unwrap(), stack);
        stack.spacing = Spacing {
            x: Some(0.0426136e-6),
            y: Some(1e-6),
            z: None,
        };
        write_stack(&path, &stack).unwrap();
        let back = read_stack(&path).unwrap().spacing;
        assert_close(back.x, 0.0426136e-6);
        assert_close(back.y, 1e-6);
        assert_eq!(back.z, None);
    }

    #[test]
    fn written_files_are_laid_out_as_imagej_writes_them() {
        let dir = ScratchDir::new("tiff-imagej");
        let path = dir.0.join("stack.tif");
        write_stack(&path, &sample_stack()).unwrap();
        let mut decoder = Decoder::new(BufReader::new(File::open(&path).unwrap())).unwrap();
        assert_eq!(
            decoder.get_tag_ascii_string(Tag::ImageDescription).unwrap(),
            "ImageJ=1.11a\nimages=3\nslices=3\nunit=micron\nspacing=0.25\nloop=false\n"
        );
        // ImageJ reads page z at first offset + z · page bytes: the data must be contiguous.
        for z in 0..3u64 {
            if z > 0 {
                decoder.next_image().unwrap();
            }
            let offsets = decoder.get_tag_u64_vec(Tag::StripOffsets).unwrap();
            assert_eq!(offsets, [8 + z * 5 * 7 * 4]);
            assert_eq!(decoder.get_tag_u32(Tag::SampleFormat).unwrap(), 3);
            assert_eq!(decoder.get_tag_u32(Tag::ResolutionUnit).unwrap(), 1);
            assert_eq!(
                decoder.get_tag(Tag::XResolution).unwrap(),
                Value::Rational(10, 1)
            );
        }
        assert!(!decoder.more_images());
    }

    #[test]
    fn bigtiff_files_encode_and_read_back() {
        let stack = sample_stack();
        let mut out = Cursor::new(Vec::new());
        let resolution = [Some(Rational { n: 10, d: 1 }), None];
        encode(
            TiffEncoder::new_big(&mut out).unwrap(),
            &stack,
            "ImageJ=1.11a\nimages=3\nslices=3\nunit=micron\nspacing=0.25\nloop=false\n",
            &resolution,
        )
        .unwrap();
        let bytes = out.into_inner();
        assert_eq!(&bytes[..4], b"II+\0", "a BigTIFF header");
        let back = read_bytes(&bytes).unwrap();
        assert_eq!(back.data, stack.data);
        assert_close(back.spacing.x, 0.1e-6);
        assert_eq!(back.spacing.y, None);
        assert_close(back.spacing.z, 0.25e-6);
    }

    #[test]
    fn every_sample_type_reads_back_exactly() {
        let none = Compression::Uncompressed;
        let expect = |bytes: Vec<u8>, shape: [usize; 3], data: Vec<f32>| {
            let stack = read_bytes(&bytes).unwrap();
            assert_eq!((stack.shape, stack.data), (shape, data));
            assert_eq!(
                stack.spacing,
                Spacing::default(),
                "1/1 without unit: no spacing"
            );
        };
        expect(
            encoded::<colortype::Gray8>(3, 2, &[&[0, 1, 2, 127, 200, 255]], none),
            [1, 2, 3],
            vec![0.0, 1.0, 2.0, 127.0, 200.0, 255.0],
        );
        expect(
            encoded::<colortype::GrayI8>(2, 1, &[&[-128, 127]], none),
            [1, 1, 2],
            vec![-128.0, 127.0],
        );
        let u16_pages: [&[u16]; 3] = [&[0, 1, 2, 3], &[65535, 4, 5, 6], &[7, 8, 9, 1000]];
        expect(
            encoded::<colortype::Gray16>(2, 2, &u16_pages, none),
            [3, 2, 2],
            u16_pages.concat().iter().map(|&v| f32::from(v)).collect(),
        );
        expect(
            encoded::<colortype::GrayI16>(2, 1, &[&[-32768, 32767]], none),
            [1, 1, 2],
            vec![-32768.0, 32767.0],
        );
        expect(
            encoded::<colortype::Gray32>(2, 1, &[&[16_777_216, 7]], none),
            [1, 1, 2],
            vec![16_777_216.0, 7.0],
        );
        expect(
            encoded::<colortype::GrayI32>(2, 1, &[&[-5, 1 << 20]], none),
            [1, 1, 2],
            vec![-5.0, 1_048_576.0],
        );
        expect(
            encoded::<colortype::Gray64>(1, 1, &[&[1 << 40]], none),
            [1, 1, 1],
            vec![1_099_511_627_776.0],
        );
        expect(
            encoded::<colortype::Gray32Float>(2, 2, &[&[0.5, -1.25, 3e-39, 1e30]], none),
            [1, 2, 2],
            vec![0.5, -1.25, 3e-39, 1e30],
        );
        expect(
            encoded::<colortype::Gray64Float>(2, 1, &[&[0.1, -2.5]], none),
            [1, 1, 2],
            vec![0.1, -2.5],
        );
    }

    #[test]
    fn compressed_pages_read_back_exactly() {
        let pages: Vec<Vec<u16>> = (0..4)
            .map(|z| {
                (0..64 * 48)
                    .map(|i| ((i * 7 + z * 1000) % 4096) as u16)
                    .collect()
            })
            .collect();
        let pages: Vec<&[u16]> = pages.iter().map(Vec::as_slice).collect();
        let expected: Vec<f32> = pages.concat().iter().map(|&v| f32::from(v)).collect();
        let floats: Vec<f32> = (0..64 * 48).map(|i| (i as f32).sqrt() - 20.0).collect();
        for (name, compression) in [
            ("LZW", Compression::Lzw),
            ("Deflate", Compression::Deflate(DeflateLevel::Balanced)),
            ("PackBits", Compression::Packbits),
        ] {
            let stack =
                read_bytes(&encoded::<colortype::Gray16>(64, 48, &pages, compression)).unwrap();
            assert_eq!(stack.shape, [4, 48, 64]);
            assert_eq!(stack.data, expected, "{name}");
            let stack = read_bytes(&encoded::<colortype::Gray32Float>(
                64,
                48,
                &[&floats],
                compression,
            ))
            .unwrap();
            assert_eq!(stack.data, floats, "{name}");
        }
    }

    #[test]
    fn colour_and_multi_channel_pages_are_refused() {
        let rgb = encoded::<colortype::RGB8>(2, 2, &[&[0; 12]], Compression::Uncompressed);
        let e = err_text(read_bytes(&rgb));
        assert!(e.contains("page 1 has 3 samples per pixel"), "{e}");
        assert!(e.contains("Split Channels"), "{e}");

        let hyperstack = described(4, "ImageJ=1.53t\nimages=4\nchannels=2\nslices=2\n");
        let e = err_text(read_bytes(&hyperstack));
        assert!(e.contains("interleave 2 channels"), "{e}");
        let e = err_text(read_bytes(&described(
            4,
            "ImageJ=1.53t\nimages=4\nslices=2\nframes=2\n",
        )));
        assert!(e.contains("interleave 2 time points"), "{e}");
        // An ImageJ stack over 4 GiB has directories for its first page only.
        let e = err_text(read_bytes(&described(
            1,
            "ImageJ=1.53t\nimages=40\nslices=40\n",
        )));
        assert!(e.contains("images=40 but the file has 1 page"), "{e}");
        // One channel, one time point: read.
        let ok = read_bytes(&described(
            2,
            "ImageJ=1.53t\nimages=2\nchannels=1\nslices=2\n",
        ));
        assert_eq!(ok.unwrap().shape, [2, 3, 4]);
    }

    #[test]
    fn pages_of_different_sizes_are_refused_naming_the_page() {
        let mut out = Vec::new();
        let mut tiff = TiffEncoder::new(Cursor::new(&mut out)).unwrap();
        tiff.write_image::<colortype::Gray16>(7, 5, &[0; 35])
            .unwrap();
        tiff.write_image::<colortype::Gray16>(7, 5, &[1; 35])
            .unwrap();
        tiff.write_image::<colortype::Gray16>(6, 4, &[2; 24])
            .unwrap();
        let e = err_text(read_bytes(&out));
        assert!(e.contains("page 3 is 6×4 pixels but page 1 is 7×5"), "{e}");
    }

    #[test]
    fn broken_files_are_file_errors() {
        let dir = ScratchDir::new("tiff-broken");
        let path = dir.0.join("stack.tif");
        write_stack(&path, &sample_stack()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.0.join("cut.tif");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let r = read_stack(&cut);
        assert!(is_file_error(&r), "{r:?}");
        assert!(err_text(r).contains("truncated"));

        let not_tiff = dir.0.join("image.tif");
        std::fs::write(&not_tiff, b"\x89PNG\r\n\x1a\n0000000000000000").unwrap();
        let r = read_stack(&not_tiff);
        assert!(is_file_error(&r), "{r:?}");
        assert!(err_text(r).contains("not a TIFF file"));

        let empty = dir.0.join("empty.tif");
        std::fs::write(&empty, b"").unwrap();
        assert!(err_text(read_stack(&empty)).contains("empty"));
        assert!(is_file_error(&read_stack(&dir.0.join("missing.tif"))));
        assert!(err_text(read_stack(&dir.0)).contains("folder"));
    }

    #[test]
    fn no_prefix_or_corruption_of_a_file_panics() {
        let stack = sample_stack();
        let mut out = Cursor::new(Vec::new());
        encode(
            TiffEncoder::new(&mut out).unwrap(),
            &stack,
            "ImageJ=1.11a\n",
            &[None, None],
        )
        .unwrap();
        let pages: Vec<u16> = (0..200).collect();
        let files = [
            out.into_inner(),
            encoded::<colortype::Gray16>(10, 10, &[&pages[..100], &pages[100..]], Compression::Lzw),
        ];
        for file in &files {
            for len in 0..file.len() {
                assert!(
                    is_file_error(&read_bytes(&file[..len])),
                    "prefix of {len} bytes"
                );
            }
            // Overwrite bytes at pseudo-random places with pseudo-random values.
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            for _ in 0..2000 {
                let mut bad = file.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bad.len() as u64) as usize;
                    bad[at] = next() as u8;
                }
                let _ = read_bytes(&bad);
            }
        }
    }

    #[test]
    fn a_header_claiming_a_huge_page_is_refused_before_decoding() {
        let file = lying(100_000, 100_000, 1);
        assert!(file.len() < 200, "{} bytes", file.len());
        let r = read_bytes(&file);
        assert!(is_file_error(&r), "{r:?}");
        let e = err_text(r);
        assert!(e.contains("claims 100000×100000 pixels"), "{e}");
        assert!(e.contains("2^26"), "{e}");
        // The same header with a size it can hold is read (from the few bytes there are).
        assert_eq!(read_bytes(&lying(4, 2, 1)).unwrap().shape, [1, 2, 4]);
    }

    #[test]
    fn a_stack_larger_than_memory_is_refused_before_decoding() {
        // 16384 pages of 8192 × 8192 claimed in 1.7 MB: 4 TiB of f32.
        let r = read_bytes(&lying(8192, 8192, 16384));
        if memory::available_bytes().is_some() {
            assert!(matches!(r, Err(OpticsError::Memory { .. })), "{r:?}");
            let e = err_text(r);
            assert!(e.contains("16384×8192×8192 stack"), "{e}");
        }
    }

    #[test]
    fn non_finite_values_are_refused() {
        let mut page = [1.0f32; 12];
        page[5] = f32::NAN;
        page[7] = f32::INFINITY;
        let file = encoded::<colortype::Gray32Float>(4, 3, &[&[0.0; 12], &page], Compression::Lzw);
        let e = err_text(read_bytes(&file));
        assert!(
            e.contains("2 voxel(s) are NaN or infinite")
                && e.contains("flat index 17 (page 2, row 1, column 1)"),
            "{e}"
        );

        let dir = ScratchDir::new("tiff-non-finite");
        let path = dir.0.join("bad.tif");
        let mut stack = sample_stack();
        stack.data[9] = f32::NEG_INFINITY;
        let r = write_stack(&path, &stack);
        assert!(
            matches!(r, Err(OpticsError::NonFinite { count: 1, first: 9 })),
            "{r:?}"
        );
        assert!(dir.entries().is_empty(), "nothing is written");
    }

    #[test]
    fn bad_shapes_and_spacings_are_refused() {
        assert!(matches!(
            Stack::new(vec![0.0; 10], [2, 2, 3]),
            Err(OpticsError::Shape(_))
        ));
        assert!(matches!(
            Stack::new(vec![], [0, 2, 3]),
            Err(OpticsError::Shape(_))
        ));
        let dir = ScratchDir::new("tiff-bad-shape");
        let path = dir.0.join("bad.tif");
        let mut stack = sample_stack();
        stack.shape = [3, 7, 7];
        let e = err_text(write_stack(&path, &stack));
        assert!(e.contains("needs 147 values but the data hold 105"), "{e}");
        let mut stack = sample_stack();
        stack.spacing.z = Some(-1e-6);
        assert!(err_text(write_stack(&path, &stack)).contains("invalid z spacing"));
        stack.spacing.z = None;
        stack.spacing.x = Some(f64::NAN);
        assert!(err_text(write_stack(&path, &stack)).contains("invalid x spacing"));
        stack.spacing.x = Some(1e6);
        assert!(err_text(write_stack(&path, &stack)).contains("cannot be stored"));
        assert!(dir.entries().is_empty());
        let e = err_text(write_stack(&dir.0.join("no/such/dir.tif"), &sample_stack()));
        assert!(e.contains("cannot write the TIFF file"), "{e}");
    }

    #[test]
    fn spacing_follows_imagej_then_tiff_resolution() {
        let imagej = |unit: &str| format!("ImageJ=1.52e\nimages=9\nunit={unit}\nspacing=0.5\n");
        let res = [Some(4.0), Some(2.0)];
        for (unit, metres) in [
            ("micron", 1e-6),
            ("um", 1e-6),
            ("µm", 1e-6),
            ("\\u00B5m", 1e-6),
            ("nm", 1e-9),
            ("mm", 1e-3),
            ("cm", 1e-2),
        ] {
            let s = spacing(Some(&imagej(unit)), res, Some(1));
            assert_close(s.x, metres / 4.0);
            assert_close(s.y, metres / 2.0);
            assert_close(s.z, metres * 0.5);
        }
        // Uncalibrated ImageJ files; ImageJ's unit wins over the TIFF one.
        assert_eq!(
            spacing(Some(&imagej("pixel")), res, Some(3)),
            Spacing::default()
        );
        // An ImageJ description without a unit leaves x and y to the TIFF tags, z unknown.
        let s = spacing(Some("ImageJ=1.52e\nspacing=2\n"), res, Some(3));
        assert_eq!((s.x, s.z), (Some(0.01 / 4.0), None));
        // TIFF resolution: inch (also when ResolutionUnit is absent) and centimetre.
        assert_close(spacing(None, res, Some(2)).x, 0.0254 / 4.0);
        assert_close(spacing(None, res, None).y, 0.0254 / 2.0);
        assert_close(spacing(None, res, Some(3)).x, 0.01 / 4.0);
        // Unit none, and the placeholder resolution 1 (unless ImageJ states the unit).
        assert_eq!(spacing(None, res, Some(1)), Spacing::default());
        assert_eq!(spacing(None, [Some(1.0); 2], Some(2)), Spacing::default());
        assert_eq!(spacing(None, [Some(1.0); 2], None), Spacing::default());
        assert_close(spacing(Some(&imagej("um")), [Some(1.0); 2], None).x, 1e-6);
        assert_eq!(spacing(None, [None; 2], Some(3)), Spacing::default());
        // A negative or unparsable ImageJ spacing is no spacing.
        let s = spacing(Some("ImageJ=1\nunit=um\nspacing=-0.2\n"), res, None);
        assert_eq!(s.z, None);
        assert_eq!(per_unit(Value::Rational(3, 0)), None);
        assert_eq!(per_unit(Value::Rational(3, 2)), Some(1.5));
    }

    #[test]
    fn resolutions_are_written_as_exact_fractions() {
        let r = |v: f64| rational(v).map(|r| (r.n, r.d));
        assert_eq!(r(10.0), Some((10, 1)));
        assert_eq!(r(0.25), Some((1, 4)));
        assert_eq!(r(1e-6 / 6.5e-8), Some((200, 13)));
        assert_eq!(r(23.466652), Some((5_866_663, 250_000)));
        let awkward = 1.0 / 0.123_456_789;
        let (n, d) = r(awkward).unwrap();
        assert!((f64::from(n) / f64::from(d) / awkward - 1.0).abs() < 1e-15);
        assert_eq!(r(1e-12), None);
        assert_eq!(r(1e12), None);
        assert_eq!(decimal(0.104e-6 / MICRON), "0.104");
        assert_eq!(decimal(0.25), "0.25");
    }

    #[test]
    fn reads_the_sample_microscopy_files() {
        let Some(root) = std::env::var_os("PHOTONFLOW_DATA_DIR") else {
            println!(
                "skipped: set PHOTONFLOW_DATA_DIR to the folder holding microscopy/ to read the \
                 sample files"
            );
            return;
        };
        let dir = Path::new(&root).join("microscopy");
        let read = |name: &str| {
            let stack = read_stack(&dir.join(name)).unwrap();
            let (lo, hi) = stack
                .data
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            println!("{name}: {:?}, {lo}..{hi}, {:?}", stack.shape, stack.spacing);
            (stack, lo, hi)
        };
        // uint16, resolution 2^30/2^30 with ResolutionUnit none: no spacing.
        let (psf, lo, hi) = read("pycudadecon_lls_measured_psf.tif");
        assert_eq!((psf.shape, lo, hi), ([61, 128, 128], 59.0, 7792.0));
        assert_eq!(psf.spacing, Spacing::default());
        // float32 written by tifffile, JSON description: no spacing.
        let (bead, lo, hi) = read("flowdec_bead25pct_data.tif");
        assert_eq!((bead.shape, lo, hi), ([64, 64, 64], 203.625, 3682.375));
        assert_eq!(bead.spacing, Spacing::default());
        // float32 written by ImageJ: unit=micron, 23466652/1000000 pixels per micron.
        let (airyscan, ..) = read("sdeconv_celegans_airyscan.tif");
        assert_eq!(airyscan.shape, [1, 316, 316]);
        assert_close(airyscan.spacing.x, 1e-6 / 23.466652);
        assert_close(airyscan.spacing.y, 1e-6 / 23.466652);
        assert_eq!(airyscan.spacing.z, None);
    }
}
