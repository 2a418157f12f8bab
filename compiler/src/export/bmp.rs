//! 8-bit grayscale BMP files, the format most SLM control programs load.
//!
//! The writer emits a Windows BMP (`BITMAPINFOHEADER`, 40 bytes) with 8 bits per pixel, a
//! 256-entry gray palette (entry `g` is `(g, g, g)`), no compression, rows bottom-up as BMP
//! stores them and padded to 4 bytes. The reader accepts what the writer writes, bottom-up or
//! top-down, and refuses anything else with a message that says what it found.

use std::io::{self, Write};

const FILE_HEADER: usize = 14;
const INFO_HEADER: usize = 40;
const PALETTE: usize = 256 * 4;
const DATA_OFFSET: usize = FILE_HEADER + INFO_HEADER + PALETTE;

fn stride(width: usize) -> usize {
    width.div_ceil(4) * 4
}

/// Writes `gray` (`width × height`, row 0 at the top of the image) as an 8-bit gray BMP.
pub fn write_gray8(w: &mut impl Write, width: usize, height: usize, gray: &[u8]) -> io::Result<()> {
    assert_eq!(gray.len(), width * height, "gray image size");
    let size = DATA_OFFSET + stride(width) * height;
    let too_big = || io::Error::other(format!("a {width}×{height} image is too large for BMP"));
    let w32 = |v: usize| u32::try_from(v).map_err(|_| too_big());
    let i32_ = |v: usize| i32::try_from(v).map_err(|_| too_big());
    let mut head = Vec::with_capacity(DATA_OFFSET);
    head.extend_from_slice(b"BM");
    head.extend_from_slice(&w32(size)?.to_le_bytes());
    head.extend_from_slice(&[0; 4]);
    head.extend_from_slice(&(DATA_OFFSET as u32).to_le_bytes());
    head.extend_from_slice(&(INFO_HEADER as u32).to_le_bytes());
    head.extend_from_slice(&i32_(width)?.to_le_bytes());
    head.extend_from_slice(&i32_(height)?.to_le_bytes()); // positive: bottom-up
    head.extend_from_slice(&1u16.to_le_bytes()); // planes
    head.extend_from_slice(&8u16.to_le_bytes()); // bits per pixel
    head.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    head.extend_from_slice(&w32(stride(width) * height)?.to_le_bytes());
    head.extend_from_slice(&2835i32.to_le_bytes()); // 72 dpi, as most writers put it
    head.extend_from_slice(&2835i32.to_le_bytes());
    head.extend_from_slice(&256u32.to_le_bytes()); // colours used
    head.extend_from_slice(&0u32.to_le_bytes()); // important colours: all
    for g in 0..=255u8 {
        head.extend_from_slice(&[g, g, g, 0]);
    }
    w.write_all(&head)?;
    let pad = [0u8; 3];
    for row in gray.chunks_exact(width.max(1)).rev() {
        w.write_all(row)?;
        w.write_all(&pad[..stride(width) - width])?;
    }
    Ok(())
}

/// Reads an 8-bit gray BMP: `(width, height, gray)` with row 0 at the top of the image.
pub fn read_gray8(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(..2) != Some(b"BM") {
        return Err("not a BMP file (no 'BM' signature)".into());
    }
    let short = || format!("truncated: {} bytes", bytes.len());
    let offset = u32_at(10).ok_or_else(short)? as usize;
    let info = u32_at(14).ok_or_else(short)? as usize;
    if info < INFO_HEADER {
        return Err(format!(
            "info header of {info} bytes; only BITMAPINFOHEADER (40) or later is read"
        ));
    }
    let width = u32_at(18).ok_or_else(short)? as i32;
    let height = u32_at(22).ok_or_else(short)? as i32;
    let bits = u16_at(28).ok_or_else(short)?;
    let compression = u32_at(30).ok_or_else(short)?;
    if bits != 8 || compression != 0 {
        return Err(format!(
            "{bits} bits per pixel with compression {compression}; an uncompressed 8-bit image \
             is expected"
        ));
    }
    if width <= 0 || height == 0 {
        return Err(format!("image of {width}×{height} pixels"));
    }
    let colours = match u32_at(46).ok_or_else(short)? {
        0 => 256,
        c => c as usize,
    };
    let palette = FILE_HEADER + info;
    for g in 0..colours.min(256) {
        let entry = bytes
            .get(palette + 4 * g..palette + 4 * g + 3)
            .ok_or_else(short)?;
        if entry != [g as u8; 3] {
            return Err(format!(
                "palette entry {g} is {entry:?}, not gray ({g}, {g}, {g}); the pixel values \
                 would not be the gray levels"
            ));
        }
    }
    let (w, h) = (width as usize, height.unsigned_abs() as usize);
    let s = stride(w);
    let data = bytes.get(offset..offset + s * h).ok_or_else(short)?;
    let mut gray = Vec::with_capacity(w * h);
    for r in 0..h {
        let stored = if height > 0 { h - 1 - r } else { r };
        gray.extend_from_slice(&data[stored * s..stored * s + w]);
    }
    Ok((w, h, gray))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_row_padding_and_orientation() {
        for (w, h) in [(1, 1), (3, 2), (4, 3), (5, 7)] {
            let gray: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
            let mut bytes = Vec::new();
            write_gray8(&mut bytes, w, h, &gray).unwrap();
            assert_eq!(bytes.len(), DATA_OFFSET + stride(w) * h);
            assert_eq!(read_gray8(&bytes).unwrap(), (w, h, gray.clone()));
            // Bottom-up storage: the file's first pixel row is the image's last.
            assert_eq!(&bytes[DATA_OFFSET..DATA_OFFSET + w], &gray[(h - 1) * w..]);
        }
    }

    #[test]
    fn foreign_files_are_refused_with_what_was_found() {
        let mut bytes = Vec::new();
        write_gray8(&mut bytes, 2, 2, &[0, 1, 2, 3]).unwrap();
        let mut bad = bytes.clone();
        bad[28] = 24;
        assert!(read_gray8(&bad).unwrap_err().contains("24 bits per pixel"));
        let mut bad = bytes.clone();
        bad[FILE_HEADER + INFO_HEADER + 4 * 7] = 99;
        assert!(read_gray8(&bad).unwrap_err().contains("palette entry 7"));
        assert!(read_gray8(&bytes[..60]).unwrap_err().contains("truncated"));
        assert!(read_gray8(b"PNG").unwrap_err().contains("not a BMP"));
    }
}
