//! NumPy `.npy` files: read and write complex64, complex128, float32, float64, uint8 and uint16
//! arrays.
//!
//! The format (<https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>) is a
//! magic string `\x93NUMPY`, a version, a little-endian header length, an ASCII (UTF-8 from
//! version 3.0) Python dict literal such as
//! `{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }`, and then the raw element
//! bytes. Arrays are exchanged in C (row-major) order: for a `[ny, nx]` field, sample
//! `(y, x)` sits at flat index `y·nx + x`, exactly as `np.load` presents it in Python.
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, any byte order (big-endian data are
//! byte-swapped) and Fortran order (converted to C order). It checks everything — the magic, the
//! header, the dtype, that the data are exactly as long as the shape says — and reports problems
//! as [`NpyError`]s that name the file and say how to fix it. No input can make it panic, and a
//! header that lies about the shape cannot make it allocate much more than the data actually
//! present (at most 16 MiB ahead of them).
//!
//! Writing produces what `np.save` produces, byte for byte: format 1.0 (2.0 if the header is too
//! long for 1.0), little-endian, C order, header padded with spaces and a newline so that the
//! data start at a multiple of 64 bytes. [`write_npy`] writes atomically (see
//! [`super::write_atomic`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use num_complex::Complex;

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// numpy pads the header so that the first (C order) or last (Fortran order) axis could grow to
/// this many digits in place; reproduced so that our files match `np.save` byte for byte.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// Largest header accepted or written (numpy itself refuses headers over 10 000 bytes unless
/// told otherwise); a longer one means a corrupt file.
const MAX_HEADER_LEN: usize = 1 << 20;
/// Largest element count accepted (2^40: 16 TiB of complex128). More means a corrupt header.
const MAX_ELEMENTS: u64 = 1 << 40;
/// Python containers in the header may nest this deep (numpy needs 2 levels).
const MAX_DEPTH: usize = 16;
/// Data are read and written in chunks of this many bytes (a multiple of every element size).
const CHUNK_BYTES: usize = 1 << 18;
/// Without a known file length, the element buffer starts at most this large and grows as data
/// actually arrive, so a header that lies about the shape cannot trigger a huge allocation.
const INITIAL_RESERVE_BYTES: usize = 1 << 24;
/// What errors of [`write_npy_to`] call the output, which has no file name.
const STREAM_NAME: &str = "the .npy output";

/// The dtypes photonflow reads, as listed in error messages.
const SUPPORTED: &str = "complex64, complex128, float32, float64, uint8 or uint16";

/// Owned array data of one of the supported dtypes, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `complex64` (`<c8`): single-precision complex, real part first.
    C64(Vec<Complex<f32>>),
    /// `complex128` (`<c16`): double-precision complex, real part first.
    C128(Vec<Complex<f64>>),
    /// `float32` (`<f4`).
    F32(Vec<f32>),
    /// `float64` (`<f8`).
    F64(Vec<f64>),
    /// `uint8` (`|u1`): images, level maps.
    U8(Vec<u8>),
    /// `uint16` (`<u2`): level maps with more than 256 levels, 16-bit images.
    U16(Vec<u16>),
}

/// Borrowed array data of one of the supported dtypes, in C (row-major) order, for writing.
///
/// Slices convert with `.into()`: `write_npy(path, &[ny, nx], field.as_slice().into())`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NpyDataRef<'a> {
    /// `complex64` (`<c8`).
    C64(&'a [Complex<f32>]),
    /// `complex128` (`<c16`).
    C128(&'a [Complex<f64>]),
    /// `float32` (`<f4`).
    F32(&'a [f32]),
    /// `float64` (`<f8`).
    F64(&'a [f64]),
    /// `uint8` (`|u1`).
    U8(&'a [u8]),
    /// `uint16` (`<u2`).
    U16(&'a [u16]),
}

/// An array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Length of each axis, slowest first (numpy's `arr.shape`); empty for a 0-d scalar.
    pub shape: Vec<usize>,
    /// The elements in C (row-major) order, whatever order the file stored them in; exactly
    /// `shape.iter().product()` of them.
    pub data: NpyData,
}

/// Everything that can go wrong reading or writing a `.npy` file. Every message names the file
/// and says how to fix the problem.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The operating system refused to open, read or write the file.
    #[error(
        "cannot {action} {file}: {source}; check the path, the permissions and the free disk space"
    )]
    Io {
        /// The file (or stream) concerned.
        file: String,
        /// What failed: `open`, `read` or `write`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the `.npy` magic string.
    #[error(
        "{file} is not a NumPy .npy file: it starts with {found} instead of \"\\x93NUMPY\"; {hint}"
    )]
    NotNpy {
        /// The file concerned.
        file: String,
        /// Its first bytes, escaped.
        found: String,
        /// What the file probably is and what to do instead.
        hint: &'static str,
    },
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error(
        "{file} uses .npy format version {major}.{minor}; photonflow reads versions 1.0, 2.0 and \
         3.0 — save the array again with np.save from numpy 1.17 or later"
    )]
    UnsupportedVersion {
        /// The file concerned.
        file: String,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The file ends before its header does.
    #[error(
        "{file} ends inside its .npy header: the header needs {expected} bytes but the file has \
         only {found}; the file was cut short — save or copy it again"
    )]
    TruncatedHeader {
        /// The file concerned.
        file: String,
        /// Bytes from the start of the file to the end of the header (or of the part that was
        /// being read when the file ended).
        expected: u64,
        /// Bytes actually present.
        found: u64,
    },
    /// The header is not a valid dict literal with `descr`, `fortran_order` and `shape`.
    #[error("{file} has a malformed .npy header: {problem}; save the array again with np.save")]
    BadHeader {
        /// The file concerned.
        file: String,
        /// What is wrong with the header.
        problem: String,
    },
    /// The dtype is not one of complex64, complex128, float32, float64, uint8, uint16.
    #[error(
        "{file} has dtype {dtype}; photonflow reads {SUPPORTED} — convert with \
         arr.astype(np.complex64) (or np.complex128, np.float32, np.float64) and save again"
    )]
    UnsupportedDtype {
        /// The file concerned.
        file: String,
        /// The dtype found, by its numpy name where it has one (`int64`), else its descr.
        dtype: String,
    },
    /// The shape has more than 2^40 elements, or its element count overflows.
    #[error(
        "{file} declares shape {shape}, {detail}; photonflow reads at most 2^40 elements — the \
         header is probably corrupt (or split the array into smaller files)"
    )]
    TooLarge {
        /// The file concerned.
        file: String,
        /// The shape, as a Python tuple.
        shape: String,
        /// Why it is too large.
        detail: String,
    },
    /// The file ends before the data the shape calls for.
    #[error(
        "{file} is truncated: shape {shape} of {dtype} needs {expected} data bytes but only \
         {found} are present; the file was cut short (interrupted write or copy) — write or copy \
         it again"
    )]
    Truncated {
        /// The file concerned.
        file: String,
        /// The shape, as a Python tuple.
        shape: String,
        /// The dtype's numpy name.
        dtype: &'static str,
        /// Data bytes the header calls for.
        expected: u64,
        /// Data bytes present.
        found: u64,
    },
    /// The file goes on after the data the shape calls for.
    #[error(
        "{file} has {extra} unexpected byte(s) after the {expected} data bytes of shape {shape} \
         of {dtype}; the header does not describe the data (corrupt file, or bytes appended) — \
         save the array again with np.save"
    )]
    TrailingData {
        /// The file concerned.
        file: String,
        /// The shape, as a Python tuple.
        shape: String,
        /// The dtype's numpy name.
        dtype: &'static str,
        /// Data bytes the header calls for.
        expected: u64,
        /// Bytes found after them.
        extra: u64,
    },
    /// Writing: the shape does not fit the data (or cannot be written at all).
    #[error("cannot write {file}: {problem}")]
    InvalidShape {
        /// The file (or stream) concerned.
        file: String,
        /// What is wrong, with the fix.
        problem: String,
    },
}

/// The element types this module handles (internal: dtype dispatch only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    C64,
    C128,
    F32,
    F64,
    U8,
    U16,
}

impl Dtype {
    /// numpy's name of the dtype.
    fn name(self) -> &'static str {
        match self {
            Dtype::C64 => "complex64",
            Dtype::C128 => "complex128",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
        }
    }

    /// Bytes per element.
    fn size(self) -> u64 {
        match self {
            Dtype::C64 | Dtype::F64 => 8,
            Dtype::C128 => 16,
            Dtype::F32 => 4,
            Dtype::U8 => 1,
            Dtype::U16 => 2,
        }
    }

    /// The little-endian descr, as `np.save` writes it.
    fn descr(self) -> &'static str {
        match self {
            Dtype::C64 => "<c8",
            Dtype::C128 => "<c16",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
            Dtype::U8 => "|u1",
            Dtype::U16 => "<u2",
        }
    }
}

impl NpyData {
    /// numpy's name of the dtype: `"complex64"`, `"complex128"`, `"float32"`, `"float64"`, `"uint8"` or `"uint16"`.
    pub fn dtype_name(&self) -> &'static str {
        self.as_data_ref().dtype_name()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.as_data_ref().len()
    }

    /// Whether there are no elements (some axis has length 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A borrowed view, for writing.
    pub fn as_data_ref(&self) -> NpyDataRef<'_> {
        match self {
            NpyData::C64(v) => NpyDataRef::C64(v),
            NpyData::C128(v) => NpyDataRef::C128(v),
            NpyData::F32(v) => NpyDataRef::F32(v),
            NpyData::F64(v) => NpyDataRef::F64(v),
            NpyData::U8(v) => NpyDataRef::U8(v),
            NpyData::U16(v) => NpyDataRef::U16(v),
        }
    }
}

impl NpyDataRef<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            NpyDataRef::C64(_) => Dtype::C64,
            NpyDataRef::C128(_) => Dtype::C128,
            NpyDataRef::F32(_) => Dtype::F32,
            NpyDataRef::F64(_) => Dtype::F64,
            NpyDataRef::U8(_) => Dtype::U8,
            NpyDataRef::U16(_) => Dtype::U16,
        }
    }

    /// numpy's name of the dtype: `"complex64"`, `"complex128"`, `"float32"`, `"float64"`, `"uint8"` or `"uint16"`.
    pub fn dtype_name(&self) -> &'static str {
        self.dtype().name()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyDataRef::C64(v) => v.len(),
            NpyDataRef::C128(v) => v.len(),
            NpyDataRef::F32(v) => v.len(),
            NpyDataRef::F64(v) => v.len(),
            NpyDataRef::U8(v) => v.len(),
            NpyDataRef::U16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a NpyData> for NpyDataRef<'a> {
    fn from(data: &'a NpyData) -> Self {
        data.as_data_ref()
    }
}

impl<'a> From<&'a [Complex<f32>]> for NpyDataRef<'a> {
    fn from(values: &'a [Complex<f32>]) -> Self {
        NpyDataRef::C64(values)
    }
}

impl<'a> From<&'a [Complex<f64>]> for NpyDataRef<'a> {
    fn from(values: &'a [Complex<f64>]) -> Self {
        NpyDataRef::C128(values)
    }
}

impl<'a> From<&'a [f32]> for NpyDataRef<'a> {
    fn from(values: &'a [f32]) -> Self {
        NpyDataRef::F32(values)
    }
}

impl<'a> From<&'a [f64]> for NpyDataRef<'a> {
    fn from(values: &'a [f64]) -> Self {
        NpyDataRef::F64(values)
    }
}

impl<'a> From<&'a [u8]> for NpyDataRef<'a> {
    fn from(values: &'a [u8]) -> Self {
        NpyDataRef::U8(values)
    }
}

impl<'a> From<&'a [u16]> for NpyDataRef<'a> {
    fn from(values: &'a [u16]) -> Self {
        NpyDataRef::U16(values)
    }
}

impl NpyArray {
    /// numpy's name of the dtype: `"complex64"`, `"complex128"`, `"float32"`, `"float64"`, `"uint8"` or `"uint16"`.
    pub fn dtype_name(&self) -> &'static str {
        self.data.dtype_name()
    }

    /// Number of elements (the product of the shape; 1 for a 0-d scalar).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no elements (some axis has length 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of axes (`arr.ndim`): 0 for a scalar, 2 for a `[ny, nx]` field.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// A borrowed view of the data, for writing.
    pub fn as_data_ref(&self) -> NpyDataRef<'_> {
        self.data.as_data_ref()
    }

    /// Writes the array to `path` atomically (see [`write_npy`]).
    pub fn write(&self, path: &Path) -> Result<(), NpyError> {
        write_npy(path, &self.shape, self.as_data_ref())
    }
}

// ---------------------------------------------------------------------------------------------
// Element encoding

/// A fixed-size element that can be decoded from and encoded to bytes.
trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Appends the elements of `bytes` (whole elements only; a partial tail is ignored).
    fn decode(bytes: &[u8], big_endian: bool, out: &mut Vec<Self>);
    /// Appends the little-endian bytes of `values`.
    fn encode(values: &[Self], out: &mut Vec<u8>);
}

macro_rules! real_element {
    ($t:ty, $n:literal) => {
        impl Element for $t {
            const SIZE: usize = $n;

            fn decode(bytes: &[u8], big_endian: bool, out: &mut Vec<Self>) {
                let (chunks, _) = bytes.as_chunks::<$n>();
                if big_endian {
                    out.extend(chunks.iter().map(|c| <$t>::from_be_bytes(*c)));
                } else {
                    out.extend(chunks.iter().map(|c| <$t>::from_le_bytes(*c)));
                }
            }

            fn encode(values: &[Self], out: &mut Vec<u8>) {
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    };
}

real_element!(f32, 4);
real_element!(f64, 8);
real_element!(u8, 1);
real_element!(u16, 2);

/// numpy stores a complex number as its real part followed by its imaginary part, each in the
/// array's byte order.
impl<R: Element> Element for Complex<R> {
    const SIZE: usize = 2 * R::SIZE;

    fn decode(bytes: &[u8], big_endian: bool, out: &mut Vec<Self>) {
        let whole = bytes.len() - bytes.len() % Self::SIZE;
        let mut parts = Vec::with_capacity(whole / R::SIZE);
        R::decode(&bytes[..whole], big_endian, &mut parts);
        let (pairs, _) = parts.as_chunks::<2>();
        out.extend(pairs.iter().map(|&[re, im]| Complex::new(re, im)));
    }

    fn encode(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            R::encode(&[v.re, v.im], out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads a `.npy` file.
///
/// Accepts format versions 1.0, 2.0 and 3.0; dtypes complex64, complex128, float32 and float64
/// in either byte order; C or Fortran order (the result is always C order). The data must be
/// exactly as long as the shape says.
///
/// ```no_run
/// # use photonflow_optics::io::npy::{read_npy, NpyData};
/// let arr = read_npy("field.npy".as_ref())?;
/// if let NpyData::C64(samples) = &arr.data {
///     println!("{:?} complex64, first sample {}", arr.shape, samples[0]);
/// }
/// # Ok::<(), photonflow_optics::io::npy::NpyError>(())
/// ```
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| NpyError::Io {
        file: name.clone(),
        action: "open",
        source,
    })?;
    // The length of a regular file lets a truncated or padded file be rejected before any data
    // are read; pipes and devices report 0, so they are read without that shortcut.
    let file_len = file
        .metadata()
        .ok()
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len());
    read_impl(file, &name, file_len)
}

/// Reads a `.npy` array from `reader`, which must hold exactly one array (it is read to its
/// end); `name` stands for the source in error messages. See [`read_npy`].
pub fn read_npy_from(reader: impl Read, name: &str) -> Result<NpyArray, NpyError> {
    read_impl(reader, name, None)
}

/// What the header says about the data.
struct Layout {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    len: usize,
}

impl Layout {
    fn data_bytes(&self) -> u64 {
        self.len as u64 * self.dtype.size()
    }
}

fn read_impl(
    mut reader: impl Read,
    name: &str,
    file_len: Option<u64>,
) -> Result<NpyArray, NpyError> {
    let (layout, header_end) = read_header(&mut reader, name)?;
    let expected = layout.data_bytes();
    let truncated = |found| NpyError::Truncated {
        file: name.to_owned(),
        shape: shape_repr(&layout.shape),
        dtype: layout.dtype.name(),
        expected,
        found,
    };
    let trailing = |extra| NpyError::TrailingData {
        file: name.to_owned(),
        shape: shape_repr(&layout.shape),
        dtype: layout.dtype.name(),
        expected,
        extra,
    };
    let available = file_len.map(|len| len.saturating_sub(header_end));
    match available {
        Some(found) if found < expected => return Err(truncated(found)),
        Some(found) if found > expected => return Err(trailing(found - expected)),
        _ => {}
    }
    let reserve = if available.is_some() {
        layout.len
    } else {
        layout.len.min(INITIAL_RESERVE_BYTES / 16)
    };
    let read = match layout.dtype {
        Dtype::C64 => read_values(&mut reader, &layout, reserve, NpyData::C64),
        Dtype::C128 => read_values(&mut reader, &layout, reserve, NpyData::C128),
        Dtype::F32 => read_values(&mut reader, &layout, reserve, NpyData::F32),
        Dtype::F64 => read_values(&mut reader, &layout, reserve, NpyData::F64),
        Dtype::U8 => read_values(&mut reader, &layout, reserve, NpyData::U8),
        Dtype::U16 => read_values(&mut reader, &layout, reserve, NpyData::U16),
    };
    let io_error = |source| NpyError::Io {
        file: name.to_owned(),
        action: "read",
        source,
    };
    let (data, found) = read.map_err(io_error)?;
    if found < expected {
        return Err(truncated(found));
    }
    let extra = io::copy(&mut reader, &mut io::sink()).map_err(io_error)?;
    if extra > 0 {
        return Err(trailing(extra));
    }
    Ok(NpyArray {
        shape: layout.shape,
        data,
    })
}

/// Reads the magic, version and header; returns the layout and the header's end offset.
fn read_header(reader: &mut impl Read, name: &str) -> Result<(Layout, u64), NpyError> {
    let io_error = |source| NpyError::Io {
        file: name.to_owned(),
        action: "read",
        source,
    };
    let truncated = |expected: usize, found: usize| NpyError::TruncatedHeader {
        file: name.to_owned(),
        expected: expected as u64,
        found: found as u64,
    };

    let mut preamble = [0u8; 8];
    let got = read_full(reader, &mut preamble).map_err(io_error)?;
    let start = &preamble[..got];
    if got < MAGIC.len() {
        if got > 0 && MAGIC.starts_with(start) {
            return Err(truncated(MAGIC.len() + 4, got));
        }
        return Err(not_npy(name, start));
    }
    if !start.starts_with(MAGIC) {
        return Err(not_npy(name, start));
    }
    if got < preamble.len() {
        return Err(truncated(MAGIC.len() + 4, got));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(NpyError::UnsupportedVersion {
                file: name.to_owned(),
                major,
                minor,
            });
        }
    };
    let mut len_bytes = [0u8; 4];
    let got = read_full(reader, &mut len_bytes[..len_size]).map_err(io_error)?;
    let prefix_len = preamble.len() + len_size;
    if got < len_size {
        return Err(truncated(prefix_len, preamble.len() + got));
    }
    let header_len = u32::from_le_bytes(len_bytes) as usize;
    if header_len > MAX_HEADER_LEN {
        return Err(bad_header(
            name,
            format!(
                "it claims to be {header_len} bytes long, more than the {MAX_HEADER_LEN} \
                 photonflow accepts (the file is probably corrupt)"
            ),
        ));
    }
    let mut header = vec![0u8; header_len];
    let got = read_full(reader, &mut header).map_err(io_error)?;
    if got < header_len {
        return Err(truncated(prefix_len + header_len, prefix_len + got));
    }
    let text = if major == 3 {
        String::from_utf8(header).map_err(|err| {
            bad_header(
                name,
                format!(
                    "it is not valid UTF-8 (byte {} of the header text is wrong; format 3.0 \
                     headers are UTF-8)",
                    err.utf8_error().valid_up_to()
                ),
            )
        })?
    } else {
        // Formats 1.0 and 2.0 are Latin-1, whose bytes are exactly the first 256 code points.
        header.iter().map(|&b| char::from(b)).collect()
    };
    let layout = parse_header(&text, name)?;
    Ok((layout, (prefix_len + header_len) as u64))
}

/// Reads `layout.len` elements, puts them in C order and `wrap`s them; also returns the number
/// of data bytes read, less than expected if the input ends early (the caller reports that).
fn read_values<T: Element>(
    reader: &mut impl Read,
    layout: &Layout,
    reserve: usize,
    wrap: fn(Vec<T>) -> NpyData,
) -> io::Result<(NpyData, u64)> {
    let mut values = Vec::with_capacity(reserve);
    let total = layout.len.saturating_mul(T::SIZE);
    let mut buf = vec![0u8; CHUNK_BYTES.min(total)];
    let mut done = 0;
    while done < total {
        let want = CHUNK_BYTES.min(total - done);
        let got = read_full(reader, &mut buf[..want])?;
        T::decode(&buf[..got], layout.big_endian, &mut values);
        done += got;
        if got < want {
            break;
        }
    }
    if layout.fortran_order {
        values = fortran_to_c(&layout.shape, &values);
    }
    Ok((wrap(values), done as u64))
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled = (filled + n).min(buf.len()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Reorders column-major (Fortran) `data` of `shape` into row-major (C) order. Returns `data`
/// unchanged if it is empty, has fewer than 2 axes (the orders coincide), or is not exactly
/// `shape.product()` long (a truncated read, which the caller rejects anyway).
fn fortran_to_c<T: Copy>(shape: &[usize], data: &[T]) -> Vec<T> {
    let n = data.len();
    if shape.len() < 2 || n == 0 || element_count(shape) != Some(n as u64) {
        return data.to_vec();
    }
    // Fortran strides: axis 0 is contiguous.
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1;
    for &dim in shape {
        strides.push(stride);
        stride *= dim;
    }
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0;
    for _ in 0..n {
        out.push(data[offset]);
        // Advance the multi-index in C order: the last axis fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

fn not_npy(name: &str, start: &[u8]) -> NpyError {
    let (found, hint) = if start.is_empty() {
        (
            "nothing (it is empty)".to_owned(),
            "write the array with np.save",
        )
    } else {
        let hint = if start.starts_with(b"PK\x03\x04") {
            "it looks like a .npz archive — load it with np.load(path)[key] and save the array \
             with np.save"
        } else {
            "write arrays with np.save (not np.savez, pickle, ndarray.tofile or np.savetxt)"
        };
        (format!("\"{}\"", start.escape_ascii()), hint)
    };
    NpyError::NotNpy {
        file: name.to_owned(),
        found,
        hint,
    }
}

fn bad_header(name: &str, problem: String) -> NpyError {
    NpyError::BadHeader {
        file: name.to_owned(),
        problem,
    }
}

// ---------------------------------------------------------------------------------------------
// Header parsing

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug)]
enum Lit {
    Str(String),
    Int { negative: bool, value: u64 },
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// Python `repr`-like display, for error messages.
impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, items: &[Lit]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Lit::Str(s) => write!(f, "'{}'", s.escape_debug()),
            Lit::Int { negative, value } => {
                write!(f, "{}{value}", if *negative { "-" } else { "" })
            }
            Lit::Bool(true) => f.write_str("True"),
            Lit::Bool(false) => f.write_str("False"),
            Lit::None => f.write_str("None"),
            Lit::Tuple(v) if v.len() == 1 => write!(f, "({},)", v[0]),
            Lit::Tuple(v) => {
                f.write_str("(")?;
                items(f, v)?;
                f.write_str(")")
            }
            Lit::List(v) => {
                f.write_str("[")?;
                items(f, v)?;
                f.write_str("]")
            }
            Lit::Dict(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `lit` for an error message, shortened to about 60 characters.
fn short(lit: &Lit) -> String {
    shorten(lit.to_string())
}

/// `text` shortened to about 60 characters.
fn shorten(text: String) -> String {
    if text.chars().count() <= 60 {
        text
    } else {
        let mut cut: String = text.chars().take(57).collect();
        cut.push_str("...");
        cut
    }
}

/// Recursive-descent parser for the Python literal subset found in `.npy` headers: strings
/// (with optional `u`/`b` prefix), integers (with Python 2's optional `L`), `True`, `False`,
/// `None`, tuples, lists and dicts, with trailing commas and any whitespace.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
        {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "it nests containers more than {MAX_DEPTH} levels deep"
            ));
        }
        self.skip_whitespace();
        let start = self.pos;
        match self.peek() {
            None => Err("it ends where a value was expected".to_owned()),
            Some('\'' | '"') => self.string(),
            Some('u' | 'U' | 'b' | 'B') if matches!(self.peek_second(), Some('\'' | '"')) => {
                self.bump();
                self.string()
            }
            Some('(') => {
                self.bump();
                let (items, trailing_comma) = self.items(')', depth)?;
                // `(x)` is just `x` in Python; `(x,)` is a 1-tuple.
                match <[Lit; 1]>::try_from(items) {
                    Ok([item]) if !trailing_comma => Ok(item),
                    Ok(item) => Ok(Lit::Tuple(item.into())),
                    Err(items) => Ok(Lit::Tuple(items)),
                }
            }
            Some('[') => {
                self.bump();
                Ok(Lit::List(self.items(']', depth)?.0))
            }
            Some('{') => {
                self.bump();
                self.dict(depth)
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.int(),
            Some(c) if c.is_alphabetic() || c == '_' => {
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.bump();
                }
                match &self.text[start..self.pos] {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    word => Err(format!("it contains the unknown name {word:?}")),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {c:?} at offset {start} of the header text"
            )),
        }
    }

    /// A quoted string; the opening quote is next.
    fn string(&mut self) -> Result<Lit, String> {
        let start = self.pos;
        let quote = self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "the string starting at offset {start} of the header text is never closed"
                    ));
                }
                Some(c) if Some(c) == quote => return Ok(Lit::Str(s)),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some(c) => s.push(c),
                    None => {}
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// A decimal integer with optional sign and Python 2 `L` suffix.
    fn int(&mut self) -> Result<Lit, String> {
        let start = self.pos;
        let negative = match self.peek() {
            Some('-') => {
                self.bump();
                true
            }
            Some('+') => {
                self.bump();
                false
            }
            _ => false,
        };
        let digits_start = self.pos;
        let mut value: u64 = 0;
        while let Some(digit) = self.peek().and_then(|c| c.to_digit(10)) {
            self.bump();
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit)))
                .ok_or_else(|| {
                    format!("the integer at offset {start} of the header text is too large")
                })?;
        }
        if self.pos == digits_start {
            return Err(format!(
                "a sign at offset {start} of the header text is not followed by digits"
            ));
        }
        if matches!(self.peek(), Some('L' | 'l')) {
            self.bump();
        }
        Ok(Lit::Int { negative, value })
    }

    /// Comma-separated values up to `close` (the opening bracket is consumed); also returns
    /// whether the last value was followed by a comma.
    fn items(&mut self, close: char, depth: usize) -> Result<(Vec<Lit>, bool), String> {
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(close) {
                self.bump();
                // Right after the opening bracket (empty) or after a trailing comma.
                return Ok((items, true));
            }
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.bump() {
                Some(',') => {}
                Some(c) if c == close => return Ok((items, false)),
                other => return Err(self.expected(&format!("',' or '{close}'"), other)),
            }
        }
    }

    /// `key: value` pairs up to `}` (the `{` is consumed).
    fn dict(&mut self, depth: usize) -> Result<Lit, String> {
        let mut pairs = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some('}') {
                self.bump();
                return Ok(Lit::Dict(pairs));
            }
            let key = self.value(depth + 1)?;
            self.skip_whitespace();
            match self.bump() {
                Some(':') => {}
                other => return Err(self.expected("':'", other)),
            }
            let value = self.value(depth + 1)?;
            pairs.push((key, value));
            self.skip_whitespace();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(Lit::Dict(pairs)),
                other => return Err(self.expected("',' or '}'", other)),
            }
        }
    }

    fn expected(&self, what: &str, found: Option<char>) -> String {
        match found {
            Some(c) => format!(
                "expected {what} but found {c:?} at offset {} of the header text",
                self.pos - c.len_utf8()
            ),
            None => format!("expected {what} but the header text ends"),
        }
    }
}

/// Interprets the header dict.
fn parse_header(text: &str, name: &str) -> Result<Layout, NpyError> {
    let bad = |problem: String| bad_header(name, problem);
    let mut parser = Parser { text, pos: 0 };
    let dict = parser.value(0).map_err(bad)?;
    parser.skip_whitespace();
    if !parser.at_end() {
        return Err(bad(format!(
            "unexpected text after the dictionary at offset {} of the header text",
            parser.pos
        )));
    }
    let Lit::Dict(pairs) = dict else {
        return Err(bad(format!(
            "it should be a dictionary like {{'descr': '<c8', 'fortran_order': False, 'shape': \
             (2, 3)}} but is {}",
            short(&dict)
        )));
    };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    for (key, value) in pairs {
        let Lit::Str(key) = key else {
            return Err(bad(format!("the key {} is not a string", short(&key))));
        };
        let slot = match key.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran_order,
            "shape" => &mut shape,
            _ => continue, // numpy never writes other keys; tolerate them.
        };
        if slot.replace(value).is_some() {
            return Err(bad(format!("the key '{key}' appears twice")));
        }
    }
    let missing = |key: &str| {
        bad(format!(
            "the key '{key}' is missing (a .npy header needs 'descr', 'fortran_order' and 'shape')"
        ))
    };
    let descr = descr.ok_or_else(|| missing("descr"))?;
    let fortran_order = fortran_order.ok_or_else(|| missing("fortran_order"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;

    let Lit::Bool(fortran_order) = fortran_order else {
        return Err(bad(format!(
            "'fortran_order' should be True or False but is {}",
            short(&fortran_order)
        )));
    };
    let shape = parse_shape(&shape).map_err(bad)?;
    let (dtype, big_endian) = match &descr {
        Lit::Str(s) => parse_descr(s).ok_or_else(|| NpyError::UnsupportedDtype {
            file: name.to_owned(),
            dtype: describe_dtype(s),
        })?,
        Lit::List(_) => {
            return Err(NpyError::UnsupportedDtype {
                file: name.to_owned(),
                dtype: format!("structured {}", short(&descr)),
            });
        }
        other => {
            return Err(bad(format!(
                "'descr' should be a string like '<c8' but is {}",
                short(other)
            )));
        }
    };
    let len = element_count(&shape).ok_or_else(|| NpyError::TooLarge {
        file: name.to_owned(),
        shape: shape_repr(&shape),
        detail: "whose element count overflows 64 bits".to_owned(),
    })?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n as u64 <= MAX_ELEMENTS)
        .ok_or_else(|| NpyError::TooLarge {
            file: name.to_owned(),
            shape: shape_repr(&shape),
            detail: format!("which has {len} elements"),
        })?;
    Ok(Layout {
        dtype,
        big_endian,
        fortran_order,
        shape,
        len,
    })
}

fn parse_shape(shape: &Lit) -> Result<Vec<usize>, String> {
    let invalid = || {
        format!(
            "'shape' should be a tuple of non-negative integers like (3,) or (2, 3) but is {}",
            short(shape)
        )
    };
    let (Lit::Tuple(dims) | Lit::List(dims)) = shape else {
        return Err(invalid());
    };
    dims.iter()
        .map(|dim| match dim {
            Lit::Int {
                negative: false,
                value,
            }
            | Lit::Int {
                negative: true,
                value: value @ 0,
            } => usize::try_from(*value).map_err(|_| format!("the dimension {value} is too large")),
            Lit::Int { .. } => Err(format!("'shape' {} has a negative dimension", short(shape))),
            _ => Err(invalid()),
        })
        .collect()
}

/// Product of `shape`, or `None` on overflow; 0 if any axis is 0, however large the others.
fn element_count(shape: &[usize]) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim as u64))
}

/// The supported dtype and byte order (`true` = big-endian) of `descr`, or `None`.
fn parse_descr(descr: &str) -> Option<(Dtype, bool)> {
    let native_big = cfg!(target_endian = "big");
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        // `=` is native order; `|` ("not applicable") is what numpy assumes native too.
        Some(b'=' | b'|') => (native_big, &descr[1..]),
        _ => (native_big, descr),
    };
    let dtype = match code {
        "c8" => Dtype::C64,
        "c16" => Dtype::C128,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "u1" => Dtype::U8,
        "u2" => Dtype::U16,
        _ => return None,
    };
    Some((dtype, big_endian))
}

/// numpy's name for an unsupported `descr` (`'<i8'` → `int64`), or the descr itself, quoted.
fn describe_dtype(descr: &str) -> String {
    let code = descr.trim_start_matches(['<', '>', '=', '|']);
    let mut chars = code.chars();
    let kind = chars.next();
    let size: Option<u32> = chars.as_str().parse().ok();
    let numeric = match (kind, size) {
        (Some('b'), Some(1)) => Some("bool".to_owned()),
        (Some('i'), Some(n @ (1 | 2 | 4 | 8))) => Some(format!("int{}", 8 * n)),
        (Some('u'), Some(n @ (1 | 2 | 4 | 8))) => Some(format!("uint{}", 8 * n)),
        (Some('f'), Some(n @ (2 | 12 | 16))) => Some(format!("float{}", 8 * n)),
        (Some('c'), Some(n @ (24 | 32))) => Some(format!("complex{}", 8 * n)),
        _ => None,
    };
    if let Some(name) = numeric {
        return name;
    }
    let kind_name = match kind {
        Some('U') => "str ",
        Some('S') => "bytes ",
        Some('O') => "object ",
        Some('M') => "datetime64 ",
        Some('m') => "timedelta64 ",
        Some('V') => "void ",
        _ => "",
    };
    format!("{kind_name}'{}'", descr.escape_debug())
}

/// A shape as Python writes a tuple: `()`, `(5,)`, `(2, 3)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes `data` with `shape` to `path` as a `.npy` file, atomically: the file appears complete
/// or not at all (see [`super::write_atomic`]).
///
/// The file is exactly what `np.save` writes for a C-contiguous little-endian array: format 1.0
/// (2.0 if the header needs more than 64 KiB), data aligned to 64 bytes. `data` must be in C
/// (row-major) order and hold exactly `shape.iter().product()` elements; `shape` `[]` writes a
/// 0-d scalar (one element).
pub fn write_npy(path: &Path, shape: &[usize], data: NpyDataRef<'_>) -> Result<(), NpyError> {
    let name = path.display().to_string();
    let header = header_bytes(&name, shape, data)?;
    super::write_atomic(path, |writer| write_payload(writer, &header, data)).map_err(|source| {
        NpyError::Io {
            file: name,
            action: "write",
            source,
        }
    })
}

/// Writes `data` with `shape` as a `.npy` array to `writer` (see [`write_npy`]), then flushes
/// it. Nothing is written if the shape does not fit the data.
pub fn write_npy_to(
    mut writer: impl Write,
    shape: &[usize],
    data: NpyDataRef<'_>,
) -> Result<(), NpyError> {
    let header = header_bytes(STREAM_NAME, shape, data)?;
    write_payload(&mut writer, &header, data)
        .and_then(|()| writer.flush())
        .map_err(|source| NpyError::Io {
            file: STREAM_NAME.to_owned(),
            action: "write",
            source,
        })
}

/// Checks `shape` against `data` and builds the magic, version, length and padded header
/// exactly as numpy's `np.save` does.
fn header_bytes(name: &str, shape: &[usize], data: NpyDataRef<'_>) -> Result<Vec<u8>, NpyError> {
    let invalid = |problem: String| NpyError::InvalidShape {
        file: name.to_owned(),
        problem,
    };
    let shape_text = shape_repr(shape);
    let count = element_count(shape).ok_or_else(|| {
        invalid(format!(
            "the element count of shape {shape_text} overflows; pass the real shape of the data"
        ))
    })?;
    if count != data.len() as u64 {
        return Err(invalid(format!(
            "shape {shape_text} holds {count} elements but {} {} values were given; pass a shape \
             whose product equals the data length",
            data.len(),
            data.dtype_name()
        )));
    }
    if count > MAX_ELEMENTS {
        return Err(invalid(format!(
            "{count} elements are more than the 2^40 photonflow reads; split the array"
        )));
    }
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        data.dtype().descr()
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    // numpy pads with spaces and a final newline so that the data start is aligned; an already
    // aligned header still gets a full block of padding.
    let padded = |prefix: usize| {
        let unpadded = dict.len() + 1;
        unpadded + ALIGN - (prefix + unpadded) % ALIGN
    };
    let mut out = Vec::with_capacity(padded(12) + 12);
    out.extend_from_slice(MAGIC);
    let header_len = match u16::try_from(padded(10)) {
        Ok(len) => {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&len.to_le_bytes());
            usize::from(len)
        }
        Err(_) => {
            let len = padded(12);
            if len > MAX_HEADER_LEN {
                return Err(invalid(format!(
                    "shape {} has {} axes, so its header would be {len} bytes, more than the \
                     {MAX_HEADER_LEN} photonflow reads; use fewer axes (numpy allows 64)",
                    shorten(shape_text),
                    shape.len()
                )));
            }
            out.extend_from_slice(&[2, 0]);
            // Fits: MAX_HEADER_LEN < u32::MAX.
            out.extend_from_slice(&(len as u32).to_le_bytes());
            len
        }
    };
    let pad = header_len - dict.len() - 1;
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    Ok(out)
}

fn write_payload(writer: &mut impl Write, header: &[u8], data: NpyDataRef<'_>) -> io::Result<()> {
    writer.write_all(header)?;
    match data {
        NpyDataRef::C64(v) => write_values(writer, v),
        NpyDataRef::C128(v) => write_values(writer, v),
        NpyDataRef::F32(v) => write_values(writer, v),
        NpyDataRef::F64(v) => write_values(writer, v),
        NpyDataRef::U8(v) => write_values(writer, v),
        NpyDataRef::U16(v) => write_values(writer, v),
    }
}

fn write_values<T: Element>(writer: &mut impl Write, values: &[T]) -> io::Result<()> {
    let per_chunk = CHUNK_BYTES / T::SIZE;
    let mut buf = Vec::with_capacity(CHUNK_BYTES.min(values.len() * T::SIZE));
    for chunk in values.chunks(per_chunk) {
        buf.clear();
        T::encode(chunk, &mut buf);
        writer.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::ScratchDir;
    use super::*;

    /// `np.save` of complex64 `[[1+2j, 3-4j], [0.5, -1.5+0.25j]]` (160 bytes, numpy 2.4.6).
    const NP_C64_2X2: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }         \
      \x20                                                \x0a\x00\x00\x80?\x00\x00\x00@\x00\x00\
      @@\x00\x00\x80\xc0\x00\x00\x00?\x00\x00\x00\x00\x00\x00\xc0\xbf\x00\x00\x80>";

    /// `np.save` of complex128 `[1+1j, -2.5, 0.125-8j]` (176 bytes, numpy 2.4.6).
    const NP_C128_3: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }          \
      \x20                                                \x0a\x00\x00\x00\x00\x00\x00\xf0?\x00\
      \x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x04\xc0\x00\x00\x00\x00\x00\x00\x00\x00\
      \x00\x00\x00\x00\x00\x00\xc0?\x00\x00\x00\x00\x00\x00 \xc0";

    /// `np.save` of float32 `[[-1, -0.5, 0], [0.5, 1, 1.5]]` (152 bytes, numpy 2.4.6).
    const NP_F32_2X3: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }         \
      \x20                                                \x0a\x00\x00\x80\xbf\x00\x00\x00\xbf\
      \x00\x00\x00\x00\x00\x00\x00?\x00\x00\x80?\x00\x00\xc0?";

    /// `np.save` of the float64 scalar `np.pi`, shape `()` (136 bytes, numpy 2.4.6).
    const NP_F64_SCALAR: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }             \
      \x20                                                \x0a\x18-DT\xfb!\x09@";

    /// `np.save` of an empty float64 array of shape `(0, 3)` (128 bytes, numpy 2.4.6).
    const NP_F64_EMPTY: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }         \
      \x20                                                \x0a";

    /// `np.save` of big-endian `>f8` `[1.5, -2, 1e10]` (152 bytes, numpy 2.4.6).
    const NP_F8_BIG: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }           \
      \x20                                                \x0a?\xf8\x00\x00\x00\x00\x00\x00\xc0\
      \x00\x00\x00\x00\x00\x00\x00B\x02\xa0_ \x00\x00\x00";

    /// `np.save` of big-endian `>c8` `[[1+2j], [-3.5-0.125j]]` (144 bytes, numpy 2.4.6).
    const NP_C8_BIG: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '>c8', 'fortran_order': False, 'shape': (2, 1), }         \
      \x20                                                \x0a?\x80\x00\x00@\x00\x00\x00\xc0`\
      \x00\x00\xbe\x00\x00\x00";

    /// `np.save` of Fortran-ordered float32 `arange(6).reshape(2, 3)` (152 bytes, numpy 2.4.6).
    const NP_F4_FORTRAN: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }          \
      \x20                                                \x0a\x00\x00\x00\x00\x00\x00@@\x00\x00\
      \x80?\x00\x00\x80@\x00\x00\x00@\x00\x00\xa0@";

    /// Fortran-ordered complex64 `(k - 1j*k).reshape(2, 3, 2)`, `k = arange(12)` (224 bytes).
    /// Written by numpy 2.4.6.
    const NP_C8_FORTRAN_3D: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<c8', 'fortran_order': True, 'shape': (2, 3, 2), }       \
      \x20                                                \x0a\x00\x00\x00\x00\x00\x00\x00\x00\
      \x00\x00\xc0@\x00\x00\xc0\xc0\x00\x00\x00@\x00\x00\x00\xc0\x00\x00\x00A\x00\x00\x00\xc1\
      \x00\x00\x80@\x00\x00\x80\xc0\x00\x00 A\x00\x00 \xc1\x00\x00\x80?\x00\x00\x80\xbf\x00\x00\
      \xe0@\x00\x00\xe0\xc0\x00\x00@@\x00\x00@\xc0\x00\x00\x10A\x00\x00\x10\xc1\x00\x00\xa0@\x00\
      \x00\xa0\xc0\x00\x000A\x00\x000\xc1";

    /// format version 2.0 float32 `[1, 2]` (136 bytes, numpy 2.4.6).
    const NP_F4_V2: &[u8] =
    b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }   \
      \x20                                                      \x0a\x00\x00\x80?\x00\x00\x00@";

    /// format version 3.0 float64 `[0.5]` (136 bytes, numpy 2.4.6).
    const NP_F8_V3: &[u8] =
    b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }   \
      \x20                                                      \x0a\x00\x00\x00\x00\x00\x00\xe0\
      ?";

    /// `np.save` of int64 `[1, 2, 3]` (unsupported dtype) (152 bytes, numpy 2.4.6).
    const NP_I8: &[u8] =
    b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }           \
      \x20                                                \x0a\x01\x00\x00\x00\x00\x00\x00\x00\
      \x02\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00";

    /// The numpy fixtures that must be read without error.
    const GOOD_FIXTURES: [&[u8]; 11] = [
        NP_C64_2X2,
        NP_C128_3,
        NP_F32_2X3,
        NP_F64_SCALAR,
        NP_F64_EMPTY,
        NP_F8_BIG,
        NP_C8_BIG,
        NP_F4_FORTRAN,
        NP_C8_FORTRAN_3D,
        NP_F4_V2,
        NP_F8_V3,
    ];

    fn read(bytes: &[u8]) -> Result<NpyArray, NpyError> {
        read_npy_from(bytes, "x.npy")
    }

    fn read_err(bytes: &[u8]) -> String {
        match read(bytes) {
            Ok(arr) => panic!("expected an error, read {arr:?}"),
            Err(err) => err.to_string(),
        }
    }

    fn to_bytes(shape: &[usize], data: NpyDataRef<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write_npy_to(&mut out, shape, data).unwrap();
        out
    }

    /// A version 1.0 file with `header` taken literally (no padding added) followed by `data`.
    fn npy_v1(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f64_bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The test pattern `k/2 − 3` (real part) and `1 − k/4` (imaginary part), exact in f32.
    fn pattern(k: usize) -> (f64, f64) {
        (k as f64 * 0.5 - 3.0, 1.0 - k as f64 * 0.25)
    }

    /// The test pattern as `n` elements of each dtype.
    fn patterns(n: usize) -> [NpyData; 6] {
        let c = |k| Complex::new(pattern(k).0, pattern(k).1);
        [
            NpyData::C64(
                (0..n)
                    .map(|k| Complex::new(c(k).re as f32, c(k).im as f32))
                    .collect(),
            ),
            NpyData::C128((0..n).map(c).collect()),
            NpyData::F32((0..n).map(|k| pattern(k).0 as f32).collect()),
            NpyData::F64((0..n).map(|k| pattern(k).0).collect()),
            NpyData::U8((0..n).map(|k| ((k * 7 + 3) % 256) as u8).collect()),
            NpyData::U16((0..n).map(|k| ((k * 977 + 3) % 65536) as u16).collect()),
        ]
    }

    /// `np.save`'s data offset: magic, version, length field and header.
    fn data_offset(bytes: &[u8]) -> usize {
        match bytes[6] {
            1 => 10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
            _ => 12 + u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        }
    }

    #[test]
    fn round_trips_all_dtypes_and_shapes() {
        let dir = ScratchDir::new("npy-round-trip");
        for shape in [&[][..], &[5], &[2, 3], &[2, 3, 4]] {
            let n = shape.iter().product();
            for data in patterns(n) {
                let bytes = to_bytes(shape, data.as_data_ref());
                assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
                assert_eq!(data_offset(&bytes) % 64, 0);
                let size = data.as_data_ref().dtype().size() as usize;
                assert_eq!(bytes.len(), data_offset(&bytes) + n * size);
                let arr = read(&bytes).unwrap();
                assert_eq!(arr.shape, shape);
                assert_eq!(arr.data, data);
                assert_eq!((arr.len(), arr.ndim()), (n, shape.len()));

                let path = dir
                    .0
                    .join(format!("{}-{}.npy", data.dtype_name(), shape.len()));
                write_npy(&path, shape, (&data).into()).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), bytes);
                let arr = read_npy(&path).unwrap();
                assert_eq!((arr.shape.as_slice(), &arr.data), (shape, &data));
            }
        }
        // Only the 24 finished files: no temporary file is left behind.
        assert_eq!(dir.entries().len(), 24);
        assert!(dir.entries().iter().all(|name| !name.starts_with('.')));
    }

    #[test]
    fn writes_what_numpy_writes_byte_for_byte() {
        let c64 = |re, im| Complex::<f32>::new(re, im);
        let c128 = |re, im| Complex::<f64>::new(re, im);
        let cases: [(&[u8], &[usize], NpyData); 5] = [
            (
                NP_C64_2X2,
                &[2, 2],
                NpyData::C64(vec![
                    c64(1., 2.),
                    c64(3., -4.),
                    c64(0.5, 0.),
                    c64(-1.5, 0.25),
                ]),
            ),
            (
                NP_C128_3,
                &[3],
                NpyData::C128(vec![c128(1., 1.), c128(-2.5, 0.), c128(0.125, -8.)]),
            ),
            (
                NP_F32_2X3,
                &[2, 3],
                NpyData::F32(vec![-1., -0.5, 0., 0.5, 1., 1.5]),
            ),
            (NP_F64_SCALAR, &[], NpyData::F64(vec![std::f64::consts::PI])),
            (NP_F64_EMPTY, &[0, 3], NpyData::F64(vec![])),
        ];
        for (fixture, shape, data) in cases {
            assert_eq!(to_bytes(shape, data.as_data_ref()), fixture, "{shape:?}");
            let arr = read(fixture).unwrap();
            assert_eq!((arr.shape.as_slice(), &arr.data), (shape, &data));
        }
        let empty = read(NP_F64_EMPTY).unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            (empty.dtype_name(), empty.ndim(), empty.len()),
            ("float64", 2, 0)
        );
    }

    #[test]
    fn reads_big_endian() {
        let arr = read(NP_F8_BIG).unwrap();
        assert_eq!(arr.shape, [3]);
        assert_eq!(arr.data, NpyData::F64(vec![1.5, -2.0, 1e10]));
        let arr = read(NP_C8_BIG).unwrap();
        assert_eq!(arr.shape, [2, 1]);
        assert_eq!(
            arr.data,
            NpyData::C64(vec![Complex::new(1., 2.), Complex::new(-3.5, -0.125)])
        );
    }

    #[test]
    fn converts_fortran_order_to_c_order() {
        let arr = read(NP_F4_FORTRAN).unwrap();
        assert_eq!(arr.shape, [2, 3]);
        assert_eq!(arr.data, NpyData::F32(vec![0., 1., 2., 3., 4., 5.]));
        let arr = read(NP_C8_FORTRAN_3D).unwrap();
        assert_eq!(arr.shape, [2, 3, 2]);
        let expected = (0..12).map(|k| Complex::new(k as f32, -k as f32)).collect();
        assert_eq!(arr.data, NpyData::C64(expected));
    }

    #[test]
    fn reads_format_versions_2_and_3() {
        let arr = read(NP_F4_V2).unwrap();
        assert_eq!(
            (arr.shape.as_slice(), &arr.data),
            (&[2][..], &NpyData::F32(vec![1., 2.]))
        );
        let arr = read(NP_F8_V3).unwrap();
        assert_eq!(
            (arr.shape.as_slice(), &arr.data),
            (&[1][..], &NpyData::F64(vec![0.5]))
        );
    }

    #[test]
    fn writes_version_2_when_the_header_is_too_long_for_1() {
        let shape = vec![1; 30_000];
        let bytes = to_bytes(&shape, NpyDataRef::F64(&[2.5]));
        assert_eq!(&bytes[6..8], &[2, 0]);
        assert!(data_offset(&bytes) > 65_535);
        assert_eq!(data_offset(&bytes) % 64, 0);
        assert_eq!(bytes.len(), data_offset(&bytes) + 8);
        let arr = read(&bytes).unwrap();
        assert_eq!((arr.shape, arr.data), (shape, NpyData::F64(vec![2.5])));
    }

    #[test]
    fn parses_header_variants() {
        let data = f64_bytes(&[1.5, -2.0, 0.25, 4.0, 8.0, 16.0]);
        let cases = [
            // Double quotes, keys reordered, no trailing comma, no newline.
            (
                r#"{"shape": (2, 3), "fortran_order": False, "descr": "<f8"}"#,
                &[2, 3][..],
            ),
            (
                "{'descr':'<f8','fortran_order':False,'shape':(2,3,),}",
                &[2, 3],
            ),
            (
                "{ 'descr' : '<f8' ,\n\t'fortran_order' : False , 'shape' : ( 6 , ) , }   \n",
                &[6],
            ),
            // Python 2 longs, an unknown key, a list for the shape, a u-string.
            (
                "{'descr': u'<f8', 'fortran_order': False, 'shape': [1L, 6L], 'x': [{}, None]}",
                &[1, 6],
            ),
            (
                "{'descr': '=f8', 'fortran_order': False, 'shape': (3, 2), }\n",
                &[3, 2],
            ),
            (
                "{'descr': '|f8', 'fortran_order': False, 'shape': (6,), }\n",
                &[6],
            ),
            (
                "{'descr': 'f8', 'fortran_order': False, 'shape': (2, 1, 3), }\n",
                &[2, 1, 3],
            ),
            // An old numpy header, aligned to 16 bytes without growth padding.
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }    \n",
                &[6],
            ),
        ];
        for (header, shape) in cases {
            let arr = read(&npy_v1(header, &data)).unwrap_or_else(|e| panic!("{header}: {e}"));
            assert_eq!(arr.shape, shape, "{header}");
            assert_eq!(
                arr.data,
                NpyData::F64(vec![1.5, -2.0, 0.25, 4.0, 8.0, 16.0]),
                "{header}"
            );
        }
        let scalar = read(&npy_v1(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (), }",
            &data[..8],
        ))
        .unwrap();
        assert_eq!(
            (scalar.shape, scalar.data),
            (vec![], NpyData::F64(vec![1.5]))
        );
    }

    #[test]
    fn error_truncated_data() {
        let cut = &NP_C128_3[..NP_C128_3.len() - 8];
        assert_eq!(
            read_err(cut),
            "x.npy is truncated: shape (3,) of complex128 needs 48 data bytes but only 40 are \
             present; the file was cut short (interrupted write or copy) — write or copy it again"
        );
        let msg = read_err(&NP_C64_2X2[..100]);
        assert!(
            msg.starts_with("x.npy ends inside its .npy header: the header needs 128 bytes"),
            "{msg}"
        );
        assert!(msg.contains("only 100"), "{msg}");
        let msg = read_err(&NP_C64_2X2[..4]);
        assert!(
            msg.contains("header needs 10 bytes but the file has only 4"),
            "{msg}"
        );
    }

    #[test]
    fn error_wrong_magic() {
        assert_eq!(
            read_err(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "x.npy is not a NumPy .npy file: it starts with \"\\x89PNG\\r\\n\\x1a\\n\" instead of \
             \"\\x93NUMPY\"; write arrays with np.save (not np.savez, pickle, ndarray.tofile or \
             np.savetxt)"
        );
        let msg = read_err(b"PK\x03\x04\x14\0\0\0\0\0");
        assert!(msg.contains("looks like a .npz archive"), "{msg}");
        let msg = read_err(b"");
        assert!(msg.contains("starts with nothing (it is empty)"), "{msg}");
        let msg = read_err(b"\x93NUMPZ\x01\x00");
        assert!(msg.contains("is not a NumPy .npy file"), "{msg}");
    }

    #[test]
    fn error_unsupported_dtype() {
        assert_eq!(
            read_err(NP_I8),
            "x.npy has dtype int64; photonflow reads complex64, complex128, float32, float64, \
             uint8 or uint16 — \
             convert with arr.astype(np.complex64) (or np.complex128, np.float32, np.float64) and \
             save again"
        );
        let with_descr = |descr: &str| {
            read_err(&npy_v1(
                &format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,)}}"),
                &[0; 8],
            ))
        };
        assert!(with_descr("'<f2'").contains("has dtype float16;"));
        assert!(with_descr("'|b1'").contains("has dtype bool;"));
        assert!(with_descr("'>u4'").contains("has dtype uint32;"));
        assert!(with_descr("'<U5'").contains("has dtype str '<U5';"));
        assert!(with_descr("'<c8 '").contains("has dtype '<c8 ';"));
        let msg = with_descr("[('re', '<f4'), ('im', '<f4')]");
        assert!(
            msg.contains("has dtype structured [('re', '<f4'), ('im', '<f4')];"),
            "{msg}"
        );
    }

    #[test]
    fn error_bad_header() {
        let header_err = |header: &str| read_err(&npy_v1(header, &[0; 8]));
        let prefix = "x.npy has a malformed .npy header: ";
        let suffix = "; save the array again with np.save";
        let cases = [
            (
                "{'descr': '<f8', 'shape': (1,)}",
                "the key 'fortran_order' is missing",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False}",
                "the key 'shape' is missing",
            ),
            (
                "{'descr': '<f8, 'fortran_order': False, 'shape': (1,)}",
                "expected ',' or '}' but found 'f' at offset 17",
            ),
            (
                "{'descr' '<f8', 'fortran_order': False, 'shape': (1,)}",
                "expected ':' but found '\\''",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)",
                "header text ends",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} x",
                "after the dictionary",
            ),
            ("['<f8', False, (1,)]", "should be a dictionary"),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
                "True or False but is 0",
            ),
            (
                "{'descr': '<f8', 'fortran_order': false, 'shape': (1,)}",
                "unknown name \"false\"",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1)}",
                "(3,) or (2, 3) but is 1",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
                "negative dimension",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1.0,)}",
                "expected ',' or ')'",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (,)}",
                "unexpected character ','",
            ),
            (
                "{'descr': 8, 'fortran_order': False, 'shape': (1,)}",
                "'descr' should be a string",
            ),
            (
                "{1: '<f8', 'fortran_order': False, 'shape': (1,)}",
                "the key 1 is not a string",
            ),
            (
                "{'shape': (1,), 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
                "twice",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                "too large",
            ),
            ("", "ends where a value was expected"),
        ];
        for (header, problem) in cases {
            let msg = header_err(header);
            assert!(
                msg.starts_with(prefix) && msg.ends_with(suffix) && msg.contains(problem),
                "{header}\n  gave {msg}\n  wanted {problem}"
            );
        }
        let deep = format!("{{'descr': {}1{}}}", "(".repeat(30_000), ")".repeat(30_000));
        assert!(header_err(&deep).contains("nests containers more than 16 levels deep"));

        let mut v3 = NP_F8_V3.to_vec();
        v3[14] = 0xff; // inside the key 'descr'
        assert!(read_err(&v3).contains("not valid UTF-8 (byte 2 of the header text is wrong"));
        let mut huge = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{".to_vec();
        huge.extend_from_slice(&[b' '; 100]);
        assert!(read_err(&huge).contains("claims to be 4294967295 bytes long"));
        let mut v4 = NP_F8_V3.to_vec();
        v4[6] = 4;
        assert_eq!(
            read_err(&v4),
            "x.npy uses .npy format version 4.0; photonflow reads versions 1.0, 2.0 and 3.0 — \
             save the array again with np.save from numpy 1.17 or later"
        );
    }

    #[test]
    fn error_absurd_shapes_without_huge_allocation() {
        let with_shape = |shape: &str, data: &[u8]| {
            read_err(&npy_v1(
                &format!("{{'descr': '<c16', 'fortran_order': False, 'shape': {shape}}}"),
                data,
            ))
        };
        let msg = with_shape("(1099511627777,)", &[]);
        assert!(
            msg.contains(
                "declares shape (1099511627777,), which has 1099511627777 elements; \
                 photonflow reads at most 2^40"
            ),
            "{msg}"
        );
        let msg = with_shape("(4294967296, 4294967296, 2)", &[]);
        assert!(
            msg.contains("whose element count overflows 64 bits"),
            "{msg}"
        );
        // 2^40 elements are allowed by the header but absent from the input: a truncation
        // error, found without allocating 16 TiB.
        let msg = with_shape("(1024, 1024, 1024, 1024)", &[0; 100]);
        assert!(
            msg.contains("needs 17592186044416 data bytes but only 100 are present"),
            "{msg}"
        );
        // A zero axis makes the array empty however large the others are.
        let arr = read(&npy_v1(
            "{'descr': '<c8', 'fortran_order': True, 'shape': (18446744073709551615, 0, 7)}",
            &[],
        ))
        .unwrap();
        assert_eq!((arr.len(), arr.shape), (0, vec![usize::MAX, 0, 7]));
        let arr = read(&npy_v1(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (4294967296, 4294967296, 0)}",
            &[],
        ))
        .unwrap();
        assert_eq!((arr.len(), arr.shape), (0, vec![1 << 32, 1 << 32, 0]));
    }

    #[test]
    fn error_trailing_data() {
        let mut padded = NP_F32_2X3.to_vec();
        padded.extend_from_slice(b"junk");
        assert_eq!(
            read_err(&padded),
            "x.npy has 4 unexpected byte(s) after the 24 data bytes of shape (2, 3) of float32; \
             the header does not describe the data (corrupt file, or bytes appended) — save the \
             array again with np.save"
        );
    }

    #[test]
    fn error_shape_length_mismatch() {
        // Reading: the header says 4 elements, the data hold 3 (or 5).
        let four = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}";
        let msg = read_err(&npy_v1(four, &f64_bytes(&[1., 2., 3.])));
        assert!(
            msg.contains("shape (2, 2) of float64 needs 32 data bytes but only 24"),
            "{msg}"
        );
        let msg = read_err(&npy_v1(four, &f64_bytes(&[1., 2., 3., 4., 5.])));
        assert!(
            msg.contains("8 unexpected byte(s) after the 32 data bytes"),
            "{msg}"
        );

        // Writing: nothing is written, to a stream or to a file.
        let mut out = Vec::new();
        let err = write_npy_to(&mut out, &[2, 3], NpyDataRef::F32(&[0.0; 5])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot write the .npy output: shape (2, 3) holds 6 elements but 5 float32 values \
             were given; pass a shape whose product equals the data length"
        );
        assert!(out.is_empty());
        let err = write_npy_to(&mut out, &[usize::MAX, 2], NpyDataRef::F32(&[])).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        let dir = ScratchDir::new("npy-mismatch");
        let path = dir.0.join("field.npy");
        let err = write_npy(&path, &[4], NpyDataRef::C64(&[Complex::new(1., 0.)])).unwrap_err();
        assert!(err.to_string().starts_with(&format!(
            "cannot write {}: shape (4,) holds 4",
            path.display()
        )));
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = ScratchDir::new("npy-files");
        let missing = dir.0.join("missing.npy");
        let msg = read_npy(&missing).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("cannot open {}: ", missing.display())),
            "{msg}"
        );
        assert!(msg.ends_with("check the path, the permissions and the free disk space"));

        let cut = dir.0.join("cut.npy");
        std::fs::write(&cut, &NP_C64_2X2[..150]).unwrap();
        let msg = read_npy(&cut).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "{} is truncated: shape (2, 2) of complex64 needs 32 data bytes but only 22",
                cut.display()
            )),
            "{msg}"
        );

        let long = dir.0.join("long.npy");
        std::fs::write(&long, [NP_C64_2X2, b"\0"].concat()).unwrap();
        let msg = read_npy(&long).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{} has 1 unexpected byte(s)", long.display())),
            "{msg}"
        );

        let nowhere = dir.0.join("no-such-dir").join("out.npy");
        let msg = write_npy(&nowhere, &[1], NpyDataRef::F32(&[1.0]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(&format!("cannot write {}: ", nowhere.display())),
            "{msg}"
        );

        let ok = dir.0.join("ok.npy");
        let arr = read(NP_C8_FORTRAN_3D).unwrap();
        arr.write(&ok).unwrap();
        assert_eq!(read_npy(&ok).unwrap(), arr);
    }

    /// Asserts that a successful read is self-consistent; any error is fine.
    fn check_no_panic(bytes: &[u8]) {
        if let Ok(arr) = read(bytes) {
            assert_eq!(Some(arr.len() as u64), element_count(&arr.shape));
        }
    }

    #[test]
    fn damaged_input_never_panics() {
        for fixture in GOOD_FIXTURES.iter().chain([&NP_I8]) {
            for end in 0..fixture.len() {
                assert!(
                    read(&fixture[..end]).is_err(),
                    "prefix of {end} bytes was accepted"
                );
            }
            for i in 0..fixture.len() {
                let mut bytes = fixture.to_vec();
                for flip in [0x01, 0x02, 0x10, 0x80, 0xff] {
                    bytes[i] = fixture[i] ^ flip;
                    check_no_panic(&bytes);
                }
                for &c in b"(),:'\"{}[]09-L \nTx" {
                    bytes[i] = c;
                    check_no_panic(&bytes);
                }
            }
        }
        // Random insertions, deletions and overwrites (xorshift, fixed seed).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..5_000 {
            let mut bytes = GOOD_FIXTURES[next(GOOD_FIXTURES.len())].to_vec();
            for _ in 0..1 + next(4) {
                let at = next(bytes.len() + 1);
                let byte = next(256) as u8;
                match next(3) {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => drop(bytes.remove(at)),
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.push(byte),
                }
            }
            check_no_panic(&bytes);
        }
    }

    /// Run by `numpy_agrees`: checks our files against `np.save` and writes files for us.
    const NUMPY_SCRIPT: &str = r#"
import io, os, sys
import numpy as np
from numpy.lib import format as fmt

def pattern(dtype, shape):
    k = np.arange(int(np.prod(shape)), dtype=np.float64)
    if np.dtype(dtype).kind == "u":
        i = k.astype(np.int64)
        wrap = 256 if np.dtype(dtype).itemsize == 1 else 65536
        step = 7 if wrap == 256 else 977
        return ((i * step + 3) % wrap).astype(dtype).reshape(shape)
    re, im = k * 0.5 - 3, 1 - k * 0.25
    values = re + 1j * im if np.dtype(dtype).kind == "c" else re
    return values.astype(dtype).reshape(shape)

folder = sys.argv[1]
checked = 0
for name in sorted(os.listdir(folder)):
    if not name.startswith("rs_"):
        continue
    _, dtype, dims = name[:-4].split("_")
    shape = tuple(int(d) for d in dims.split("x") if d)
    path = os.path.join(folder, name)
    arr = np.load(path)
    assert arr.dtype == np.dtype(dtype), (name, arr.dtype)
    assert arr.shape == shape, (name, arr.shape)
    assert np.array_equal(arr, pattern(dtype, shape)), name
    expected = io.BytesIO()
    np.save(expected, pattern(dtype, shape))
    with open(path, "rb") as f:
        assert f.read() == expected.getvalue(), name + " differs from np.save"
    checked += 1
assert checked > 0, "no files to check"

def save(name, arr, version=None):
    with open(os.path.join(folder, name), "wb") as f:
        fmt.write_array(f, arr, version=version)

save("py_fortran.npy", np.asfortranarray(pattern("complex64", (3, 4, 2))))
save("py_big.npy", pattern(">f8", (2, 5)))
save("py_big_fortran.npy", np.asfortranarray(pattern(">c16", (4, 3))))
save("py_v2.npy", pattern("float32", (6,)), version=(2, 0))
save("py_v3.npy", pattern("complex128", (2, 2)), version=(3, 0))
save("py_big_u2.npy", pattern(">u2", (3, 4)))
save("py_u1.npy", pattern("uint8", (5, 2)))
print(f"numpy {np.__version__}: {checked} files match np.save")
"#;

    #[test]
    fn numpy_agrees() {
        let Some(python) = std::env::var_os("PHOTONFLOW_PYTHON") else {
            eprintln!(
                "note: PHOTONFLOW_PYTHON is not set, so numpy_agrees did not run; set it to a \
                 python interpreter that has numpy to check our files with numpy"
            );
            return;
        };
        let dir = ScratchDir::new("npy-numpy");
        let mut shapes: Vec<Vec<usize>> = vec![vec![], vec![5], vec![2, 3], vec![2, 3, 4]];
        // Empty arrays with long dimensions give headers of many lengths, including ones that
        // need a whole block of padding.
        for digits in 0..18 {
            shapes.push(vec![0, 10usize.pow(digits)]);
            shapes.push(vec![10usize.pow(digits) + 7, 0, 3]);
        }
        for shape in &shapes {
            let n = shape.iter().product();
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            for data in patterns(n) {
                let name = format!("rs_{}_{}.npy", data.dtype_name(), dims.join("x"));
                write_npy(&dir.0.join(name), shape, data.as_data_ref()).unwrap();
            }
        }
        let output = std::process::Command::new(&python)
            .args(["-c", NUMPY_SCRIPT])
            .arg(&dir.0)
            .output()
            .expect("run PHOTONFLOW_PYTHON");
        assert!(
            output.status.success(),
            "{python:?} rejected our files:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());

        let expect = |file: &str, shape: &[usize], dtype: usize| {
            let arr = read_npy(&dir.0.join(file)).unwrap();
            assert_eq!(arr.shape, shape, "{file}");
            let expected = patterns(shape.iter().product()).into_iter().nth(dtype);
            assert_eq!(Some(arr.data), expected, "{file}");
        };
        expect("py_fortran.npy", &[3, 4, 2], 0);
        expect("py_big.npy", &[2, 5], 3);
        expect("py_big_fortran.npy", &[4, 3], 1);
        expect("py_v2.npy", &[6], 2);
        expect("py_v3.npy", &[2, 2], 1);
        expect("py_big_u2.npy", &[3, 4], 5);
        expect("py_u1.npy", &[5, 2], 4);
    }
}
