//! Single images: PNG, JPEG and `.npy` to grayscale, and the resampling used for every image.
//!
//! * PNG: 1/2/4/8/16-bit gray, gray+alpha, RGB, RGBA and palette images (16-bit samples keep
//!   their precision).
//! * JPEG: baseline and progressive, any colour space the decoder converts to RGB (gray,
//!   YCbCr, CMYK).
//! * `.npy`: 2-D C-order arrays of `uint8` (divided by 255), `float32` or `float64` (taken as
//!   they are: they must be finite and in `[0, 1]`).
//!
//! Colour becomes Rec. 601 luma, `Y = 0.299 R + 0.587 G + 0.114 B`, computed on the stored
//! (gamma-encoded) values, as MNIST-style data and JPEG's YCbCr do. Transparency is composited
//! over black (`Y·α`): a transparent background becomes MNIST's black background.
//! The format is recognised by the file's first bytes, not its extension.

use std::fs;
use std::path::Path;

use photonflow_optics::io::npy::{NpyData, read_npy};
use photonflow_optics::io::write_atomic;

use super::{DataError, Result};

/// A grayscale image with values in `[0, 1]` (0 = black), row-major:
/// `pixel(r, c) = pixels[r·cols + c]`, row 0 at the top.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    /// Height in pixels.
    pub rows: usize,
    /// Width in pixels.
    pub cols: usize,
    /// `rows·cols` values in `[0, 1]`.
    pub pixels: Vec<f32>,
}

impl GrayImage {
    /// The image resampled to `rows×cols` (both > 0; an image of the same size is returned
    /// unchanged).
    ///
    /// Each axis is resampled separately (rows first, then columns): an axis that shrinks uses
    /// **area averaging** — each output pixel is the mean of the input it covers, partial input
    /// pixels weighted by the covered fraction, so a 28→14 reduction averages 2×2 blocks
    /// exactly; an axis that grows (or keeps its size) uses **bilinear interpolation** with
    /// pixel centres aligned (`x_src = (x_dst + 0.5)·src/dst − 0.5`, clamped at the edges).
    /// Values stay in the input's range.
    pub fn resized(&self, rows: usize, cols: usize) -> GrayImage {
        if (rows, cols) == (self.rows, self.cols) {
            return self.clone();
        }
        let wx = axis_weights(self.cols, cols);
        let wy = axis_weights(self.rows, rows);
        // Horizontal pass: self.rows × cols.
        let mut tmp = vec![0f32; self.rows * cols];
        for (src, dst) in self
            .pixels
            .chunks_exact(self.cols)
            .zip(tmp.chunks_exact_mut(cols))
        {
            for (d, w) in dst.iter_mut().zip(&wx) {
                *d = w.iter().map(|&(i, k)| src[i] * k).sum();
            }
        }
        // Vertical pass: rows × cols.
        let mut out = vec![0f32; rows * cols];
        for (dst, w) in out.chunks_exact_mut(cols).zip(&wy) {
            for &(i, k) in w {
                for (d, s) in dst.iter_mut().zip(&tmp[i * cols..(i + 1) * cols]) {
                    *d += s * k;
                }
            }
        }
        GrayImage {
            rows,
            cols,
            pixels: out,
        }
    }

    /// The pixels as bytes, `round(255·v)` (0 = black, 255 = white), as [`super::Dataset`]
    /// stores them.
    pub fn to_u8(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect()
    }

    /// Writes the image as an 8-bit grayscale PNG ([`GrayImage::to_u8`]), atomically (a
    /// temporary file renamed into place), so that [`load_image`] reads it back to within
    /// 1/255.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let bytes = self.to_u8();
        write_atomic(path, |w| {
            let mut encoder = png::Encoder::new(w, self.cols as u32, self.rows as u32);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            encoder
                .write_header()
                .and_then(|mut writer| writer.write_image_data(&bytes))
                .map_err(std::io::Error::other)
        })
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            action: "write",
            source,
        })
    }
}

/// For each of the `dst` output positions along one axis, the input indices and weights
/// (summing to 1) that make it: area averaging when shrinking, bilinear otherwise.
fn axis_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|j| {
            if dst < src {
                let (x0, x1) = (j as f64 * scale, (j + 1) as f64 * scale);
                let first = x0.floor() as usize;
                let last = (x1.ceil() as usize).min(src);
                (first..last)
                    .filter_map(|i| {
                        let overlap = x1.min(i as f64 + 1.0) - x0.max(i as f64);
                        (overlap > 1e-12).then_some((i, (overlap / scale) as f32))
                    })
                    .collect()
            } else {
                let x = ((j as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
                let i0 = x.floor() as usize;
                let f = x - i0 as f64;
                let i1 = (i0 + 1).min(src - 1);
                if f == 0.0 || i1 == i0 {
                    vec![(i0, 1.0)]
                } else {
                    vec![(i0, (1.0 - f) as f32), (i1, f as f32)]
                }
            }
        })
        .collect()
}

/// Loads a PNG, JPEG or `.npy` image as grayscale in `[0, 1]` (see the module docs for the
/// formats and the colour conversion). For inference input.
pub fn load_image(path: &Path) -> Result<GrayImage> {
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    if bytes.starts_with(b"\x93NUMPY") {
        load_npy(path)
    } else {
        decode_image(path, &bytes)
    }
}

/// Decodes PNG or JPEG bytes read from `path` (named in errors) to grayscale.
pub(crate) fn decode_image(path: &Path, bytes: &[u8]) -> Result<GrayImage> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(path, bytes)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        decode_jpeg(path, bytes)
    } else {
        let head: String = bytes
            .iter()
            .take(8)
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        Err(DataError::Image {
            path: path.to_path_buf(),
            problem: format!(
                "not a PNG, JPEG or .npy file (it starts with {head:?}); convert it to PNG"
            ),
        })
    }
}

/// The most pixels a PNG or JPEG may have (2²⁶, 8192 × 8192: more than any camera's): decoding
/// allocates by the size its header declares, so a few bytes claiming 100 000 × 100 000 pixels
/// would ask for gigabytes before the data is found missing.
pub const MAX_IMAGE_PIXELS: usize = 1 << 26;

/// Refuses an image whose header declares more than [`MAX_IMAGE_PIXELS`], before decoding.
fn check_image_size(path: &Path, format: &str, cols: usize, rows: usize) -> Result<()> {
    if cols.saturating_mul(rows) > MAX_IMAGE_PIXELS {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            problem: format!(
                "the {format} header declares {cols}×{rows} pixels, more than photonflow \
                 decodes ({} megapixels, e.g. 8192×8192); scale the image down first (a model \
                 resamples every image onto its input area anyway)",
                MAX_IMAGE_PIXELS / 1_000_000
            ),
        });
    }
    Ok(())
}

fn bad_image(path: &Path, format: &str, err: impl std::fmt::Display) -> DataError {
    DataError::Image {
        path: path.to_path_buf(),
        problem: format!(
            "cannot decode this {format} image ({err}); the file is damaged or uses a variant \
             that is not supported — re-save it as an 8-bit PNG"
        ),
    }
}

fn decode_png(path: &Path, bytes: &[u8]) -> Result<GrayImage> {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| bad_image(path, "PNG", e))?;
    let (width, height) = reader.info().size();
    check_image_size(path, "PNG", width as usize, height as usize)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad_image(path, "PNG", e))?;
    let (rows, cols) = (info.height as usize, info.width as usize);
    let channels = info.color_type.samples();
    let samples: Vec<f32> = match info.bit_depth {
        png::BitDepth::Sixteen => buf[..info.buffer_size()]
            .chunks_exact(2)
            .map(|b| f32::from(u16::from_be_bytes([b[0], b[1]])) / 65535.0)
            .collect(),
        png::BitDepth::Eight => buf[..info.buffer_size()]
            .iter()
            .map(|&b| f32::from(b) / 255.0)
            .collect(),
        other => {
            return Err(bad_image(
                path,
                "PNG",
                format!("bit depth {other:?} after expansion"),
            ));
        }
    };
    // Rows may be padded only for sub-byte depths, which EXPAND removed.
    let pixels = to_luma(&samples, channels, rows * cols)
        .ok_or_else(|| bad_image(path, "PNG", "pixel data shorter than the image size"))?;
    Ok(GrayImage { rows, cols, pixels })
}

fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<GrayImage> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|e| bad_image(path, "JPEG", e))?;
    if let Some(info) = decoder.info() {
        check_image_size(
            path,
            "JPEG",
            usize::from(info.width),
            usize::from(info.height),
        )?;
    }
    let rgb = decoder.decode().map_err(|e| bad_image(path, "JPEG", e))?;
    let info = decoder
        .info()
        .ok_or_else(|| bad_image(path, "JPEG", "no image header"))?;
    let (rows, cols) = (usize::from(info.height), usize::from(info.width));
    let samples: Vec<f32> = rgb.iter().map(|&b| f32::from(b) / 255.0).collect();
    let pixels = to_luma(&samples, 3, rows * cols)
        .ok_or_else(|| bad_image(path, "JPEG", "pixel data shorter than the image size"))?;
    Ok(GrayImage { rows, cols, pixels })
}

/// Rec. 601 luma of `n` pixels of `channels` interleaved samples in `[0, 1]`
/// (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; alpha composited over black).
fn to_luma(samples: &[f32], channels: usize, n: usize) -> Option<Vec<f32>> {
    if channels == 0 || samples.len() < n * channels {
        return None;
    }
    let luma = |p: &[f32]| match p.len() {
        1 => p[0],
        2 => p[0] * p[1],
        3 => 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2],
        _ => (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) * p[3],
    };
    Some(
        samples
            .chunks_exact(channels)
            .take(n)
            .map(|p| luma(p).clamp(0.0, 1.0))
            .collect(),
    )
}

fn load_npy(path: &Path) -> Result<GrayImage> {
    let bad = |problem: String| DataError::Image {
        path: path.to_path_buf(),
        problem,
    };
    let arr = read_npy(path)?;
    let values: Vec<f32> = match arr.data {
        NpyData::F32(v) => v,
        NpyData::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        NpyData::U8(v) => v.into_iter().map(|b| f32::from(b) / 255.0).collect(),
        other @ (NpyData::U16(_) | NpyData::C64(_) | NpyData::C128(_)) => {
            return Err(bad(format!(
                "the array is {}; an input image must be uint8 (0…255) or real float in [0, 1] \
                 — save np.abs(field)**2 (intensity) or np.abs(field), scaled to [0, 1], as \
                 float32",
                other.dtype_name()
            )));
        }
    };
    let shape = arr.shape;
    let [rows, cols] = shape[..] else {
        let hint = if shape.len() == 3 {
            " — for a colour or multi-channel image save one channel (arr[..., 0]) or the mean \
             over channels"
        } else {
            ""
        };
        return Err(bad(format!(
            "the array has shape {shape:?}; an input image must be a 2-D array (rows, cols){hint}"
        )));
    };
    if rows == 0 || cols == 0 {
        return Err(bad(format!(
            "the array has shape ({rows}, {cols}); the image is empty"
        )));
    }
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || !(0.0..=1.0).contains(*v))
    {
        return Err(bad(format!(
            "value {v} at (row {}, col {}) is outside [0, 1]; float images must hold \
             intensities in [0, 1] (0 = black) — divide by the maximum (or by 255 for 8-bit \
             data) and replace NaN/inf before saving",
            i / cols,
            i % cols
        )));
    }
    Ok(GrayImage {
        rows,
        cols,
        pixels: values,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use photonflow_optics::io::npy::{NpyDataRef, write_npy};

    /// Encodes a PNG.
    pub(crate) fn png_bytes(
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
        palette: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(color);
            enc.set_depth(depth);
            if let Some(p) = palette {
                enc.set_palette(p.to_vec());
            }
            enc.write_header().unwrap().write_image_data(data).unwrap();
        }
        out
    }

    pub(crate) fn jpeg_bytes(w: u16, h: u16, gray: &[u8], progressive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 100);
        enc.set_progressive(progressive);
        enc.encode(gray, w, h, jpeg_encoder::ColorType::Luma)
            .unwrap();
        out
    }

    /// CRC-32 (ISO-HDLC, as PNG chunks carry it), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn decode(bytes: &[u8]) -> GrayImage {
        decode_image(Path::new("x"), bytes).unwrap()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn png_color_types_become_rec601_luma() {
        use png::{BitDepth as D, ColorType as C};
        let g = decode(&png_bytes(2, 1, C::Grayscale, D::Eight, &[0, 255], None));
        assert_eq!((g.rows, g.cols, g.pixels.clone()), (1, 2, vec![0.0, 1.0]));
        let g = decode(&png_bytes(
            2,
            1,
            C::Rgb,
            D::Eight,
            &[255, 0, 0, 0, 0, 255],
            None,
        ));
        assert!(close(&g.pixels, &[0.299, 0.114], 1e-6), "{:?}", g.pixels);
        let g = decode(&png_bytes(1, 1, C::Rgba, D::Eight, &[0, 255, 0, 128], None));
        assert!(close(&g.pixels, &[0.587 * 128.0 / 255.0], 1e-6));
        let g = decode(&png_bytes(
            1,
            1,
            C::GrayscaleAlpha,
            D::Eight,
            &[200, 0],
            None,
        ));
        assert_eq!(g.pixels, [0.0], "transparent → black");
        let g = decode(&png_bytes(
            2,
            1,
            C::Grayscale,
            D::Sixteen,
            &[0x80, 0x00, 0xff, 0xff],
            None,
        ));
        assert!(close(&g.pixels, &[32768.0 / 65535.0, 1.0], 1e-7));
        let g = decode(&png_bytes(
            3,
            1,
            C::Indexed,
            D::Eight,
            &[1, 0, 1],
            Some(&[0, 0, 0, 0, 255, 0]),
        ));
        assert!(close(&g.pixels, &[0.587, 0.0, 0.587], 1e-6));
        let g = decode(&png_bytes(4, 1, C::Grayscale, D::One, &[0b1010_0000], None));
        assert_eq!(g.pixels, [1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn saved_png_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let img = GrayImage {
            rows: 3,
            cols: 5,
            pixels: (0..15).map(|v| v as f32 / 14.0).collect(),
        };
        let path = dir.path().join("x.png");
        img.save_png(&path).unwrap();
        let back = load_image(&path).unwrap();
        assert_eq!((back.rows, back.cols), (3, 5));
        assert!(close(&back.pixels, &img.pixels, 0.5 / 255.0 + 1e-7));
        let err = img.save_png(&dir.path().join("missing/x.png")).unwrap_err();
        assert!(err.to_string().contains("missing/x.png"), "{err}");
    }

    #[test]
    fn jpeg_baseline_and_progressive() {
        let gray: Vec<u8> = (0..16 * 16)
            .map(|i| if i % 16 < 8 { 30 } else { 220 })
            .collect();
        for progressive in [false, true] {
            let bytes = jpeg_bytes(16, 16, &gray, progressive);
            let g = decode(&bytes);
            assert_eq!((g.rows, g.cols), (16, 16));
            let want: Vec<f32> = gray.iter().map(|&v| f32::from(v) / 255.0).collect();
            assert!(
                close(&g.pixels, &want, 6.0 / 255.0),
                "progressive={progressive}"
            );
        }
    }

    #[test]
    fn resize_area_average_and_bilinear() {
        let img = GrayImage {
            rows: 4,
            cols: 4,
            pixels: (0..16).map(|v| v as f32).collect(),
        };
        let half = img.resized(2, 2);
        assert_eq!(half.pixels, [2.5, 4.5, 10.5, 12.5], "2×2 block means");
        // 3 → 2: output 0 covers input [0, 1.5): (1·a + 0.5·b) / 1.5.
        let row = GrayImage {
            rows: 1,
            cols: 3,
            pixels: vec![0.0, 3.0, 6.0],
        };
        assert!(close(&row.resized(1, 2).pixels, &[1.0, 5.0], 1e-6));
        // 2 → 4 bilinear with aligned centres: 0, 0.25, 0.75, 1.
        let up = GrayImage {
            rows: 1,
            cols: 2,
            pixels: vec![0.0, 1.0],
        }
        .resized(2, 4);
        assert!(close(
            &up.pixels,
            &[0.0, 0.25, 0.75, 1.0, 0.0, 0.25, 0.75, 1.0],
            1e-6
        ));
        // Mixed: shrink rows, grow cols; the mean is preserved by area averaging.
        let m = img.resized(1, 8);
        assert_eq!((m.rows, m.cols), (1, 8));
        assert!((m.pixels[0] - 6.0).abs() < 1e-5, "{:?}", m.pixels);
        assert_eq!(img.resized(4, 4), img);
        assert_eq!(half.to_u8(), [255, 255, 255, 255]);
    }

    #[test]
    fn npy_images_and_their_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.npy");
        write_npy(&p, &[2, 2], NpyDataRef::F32(&[0.0, 0.5, 1.0, 0.25])).unwrap();
        let g = load_image(&p).unwrap();
        assert_eq!(
            (g.rows, g.cols, g.pixels),
            (2, 2, vec![0.0, 0.5, 1.0, 0.25])
        );
        write_npy(&p, &[1, 2], NpyDataRef::F64(&[0.125, 1.0])).unwrap();
        assert_eq!(load_image(&p).unwrap().pixels, [0.125, 1.0]);

        let err = |p: &Path| load_image(p).unwrap_err().to_string();
        write_npy(&p, &[1, 2], NpyDataRef::F32(&[0.5, 1.5])).unwrap();
        let e = err(&p);
        assert!(
            e.contains("a.npy") && e.contains("outside [0, 1]") && e.contains("col 1"),
            "{e}"
        );
        write_npy(&p, &[1, 1], NpyDataRef::F32(&[f32::NAN])).unwrap();
        assert!(err(&p).contains("outside [0, 1]"));
        write_npy(&p, &[1, 2, 1], NpyDataRef::F32(&[0.5, 0.5])).unwrap();
        let e = err(&p);
        assert!(
            e.contains("a.npy") && e.contains("2-D") && e.contains("[1, 2, 1]"),
            "{e}"
        );

        // uint8, written as np.save does.
        let u8_npy = |descr: &str, fortran: &str, shape: &str, data: &[u8]| {
            let mut h =
                format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
            while (10 + h.len() + 1) % 64 != 0 {
                h.push(' ');
            }
            h.push('\n');
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend((h.len() as u16).to_le_bytes());
            b.extend(h.as_bytes());
            b.extend(data);
            b
        };
        fs::write(
            &p,
            u8_npy("|u1", "False", "(2, 3)", &[0, 51, 255, 0, 0, 102]),
        )
        .unwrap();
        let g = load_image(&p).unwrap();
        assert_eq!((g.rows, g.cols), (2, 3));
        assert!(close(&g.pixels, &[0.0, 0.2, 1.0, 0.0, 0.0, 0.4], 1e-6));
        // Fortran order is read as numpy presents it (C order).
        fs::write(
            &p,
            u8_npy("|u1", "True", "(2, 3)", &[0, 10, 20, 30, 40, 50]),
        )
        .unwrap();
        let g = load_image(&p).unwrap();
        let want: Vec<f32> = [0, 20, 40, 10, 30, 50].map(|v| v as f32 / 255.0).to_vec();
        assert!(close(&g.pixels, &want, 1e-7), "{:?}", g.pixels);
        fs::write(&p, u8_npy("|u1", "False", "(2, 3)", &[0; 5])).unwrap();
        assert!(err(&p).contains("truncated"));
        fs::write(&p, u8_npy("|u1", "False", "(2, 3, 1)", &[0; 6])).unwrap();
        assert!(err(&p).contains("2-D"));
        fs::write(&p, u8_npy("<i4", "False", "(1,)", &[0; 4])).unwrap();
        let e = err(&p);
        assert!(e.contains("a.npy") && e.contains("int32"), "{e}");
    }

    #[test]
    fn undecodable_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("b.png");
        let mut png = png_bytes(
            2,
            2,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[1, 2, 3, 4],
            None,
        );
        png.truncate(png.len() - 20);
        fs::write(&p, &png).unwrap();
        let e = load_image(&p).unwrap_err().to_string();
        assert!(
            e.contains("b.png") && e.contains("cannot decode this PNG"),
            "{e}"
        );
        fs::write(&p, b"GIF89a....").unwrap();
        let e = load_image(&p).unwrap_err().to_string();
        assert!(e.contains("b.png") && e.contains("not a PNG, JPEG"), "{e}");
        let j = tmp.path().join("c.jpg");
        let mut jpg = jpeg_bytes(8, 8, &[9; 64], false);
        jpg.truncate(30);
        fs::write(&j, &jpg).unwrap();
        let e = load_image(&j).unwrap_err().to_string();
        assert!(e.contains("c.jpg") && e.contains("JPEG"), "{e}");
        // Headers that declare more pixels than are decoded, with next to no data: refused
        // before anything is allocated for them.
        let mut bomb = png_bytes(
            1,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[0],
            None,
        );
        // IHDR: length, type, width, height (big-endian) from byte 8; its CRC after 13 bytes.
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        fs::write(&p, &bomb).unwrap();
        let e = load_image(&p).unwrap_err().to_string();
        assert!(
            e.contains("b.png") && e.contains("100000×100000 pixels") && e.contains("scale"),
            "{e}"
        );
        let mut bomb = jpeg_bytes(8, 8, &[9; 64], false);
        let sof = bomb.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        // SOF0: marker, length, precision, height, width.
        bomb[sof + 5..sof + 7].copy_from_slice(&16_000u16.to_be_bytes());
        bomb[sof + 7..sof + 9].copy_from_slice(&16_000u16.to_be_bytes());
        fs::write(&j, &bomb).unwrap();
        let e = load_image(&j).unwrap_err().to_string();
        assert!(e.contains("16000×16000 pixels"), "{e}");
        let e = load_image(&tmp.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.png") && e.contains("cannot read"),
            "{e}"
        );
    }
}
