//! A minimal `.npy` reader: header parsing plus streaming access to C-ordered data, so a
//! 150 MB CIFAR-10-C array is read one image at a time.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// numpy `descr`, e.g. `|u1` or `<i8`.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Number of elements (saturating: a corrupt header may declare absurd shapes).
    pub fn len(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the header of `path`.
pub fn read_header(path: &Path) -> Result<NpyHeader, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre).map_err(|e| DataError::io(path, e))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(DataError::layout(path, "not a .npy file (bad magic)"));
    }
    let (len, start) = if pre[6] == 1 {
        (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10)
    } else {
        let mut more = [0u8; 2];
        f.read_exact(&mut more)
            .map_err(|e| DataError::io(path, e))?;
        (
            u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize,
            12,
        )
    };
    let mut text = vec![0u8; len];
    f.read_exact(&mut text)
        .map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8_lossy(&text);
    let bad = |what: &str| DataError::layout(path, format!(".npy header: {what} in {text:?}"));
    let descr = quoted_after(&text, "'descr'").ok_or_else(|| bad("no descr"))?;
    let fortran_order = after(&text, "'fortran_order'")
        .ok_or_else(|| bad("no fortran_order"))?
        .starts_with("True");
    let shape_text = after(&text, "'shape'").ok_or_else(|| bad("no shape"))?;
    let inner = shape_text
        .trim_start()
        .strip_prefix('(')
        .and_then(|s| s.split(')').next());
    let shape = inner
        .ok_or_else(|| bad("bad shape"))?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad("bad shape"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data_offset = (start + len) as u64;
    let actual = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let header = NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset,
    };
    let need = (header.len() as u64).saturating_mul(item_size(&header.descr).unwrap_or(1) as u64);
    if actual < data_offset + need {
        return Err(DataError::layout(
            path,
            format!(
                "truncated: {} data bytes, shape needs {need}",
                actual - data_offset
            ),
        ));
    }
    Ok(header)
}

/// Text after `key:`.
fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let i = text.find(key)? + key.len();
    Some(text[i..].trim_start().strip_prefix(':')?.trim_start())
}

fn quoted_after(text: &str, key: &str) -> Option<String> {
    let rest = after(text, key)?;
    let q = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    Some(rest[1..].split(q).next()?.to_string())
}

/// Bytes per element of simple integer/float descrs (`|u1`, `<i8`, `<f4`, ...).
pub fn item_size(descr: &str) -> Option<usize> {
    let d = descr.trim_start_matches(['<', '>', '|', '=']);
    d.get(1..)?.parse().ok()
}

/// Byte width and signedness of a little-endian integer descr (`|u1`, `<i8`, `i4`, ...);
/// `None` for big-endian, other widths and other kinds. The one rule for `.npy` arrays and
/// pickled numpy label arrays.
pub(crate) fn le_int_layout(descr: &str) -> Option<(usize, bool)> {
    if descr.starts_with('>') {
        return None;
    }
    let size = item_size(descr).filter(|s| [1, 2, 4, 8].contains(s))?;
    match descr.trim_start_matches(['<', '|', '=']).chars().next()? {
        'i' => Some((size, true)),
        'u' => Some((size, false)),
        _ => None,
    }
}

/// Reads a 1-D integer array (any of u1..u8, i1..i8, little-endian) as i64.
pub fn read_ints(path: &Path) -> Result<Vec<i64>, DataError> {
    let h = read_header(path)?;
    let layout = le_int_layout(&h.descr).filter(|_| h.shape.len() == 1);
    let Some((size, signed)) = layout else {
        return Err(DataError::layout(
            path,
            format!(
                "expected a 1-D integer array, found {} {:?}",
                h.descr, h.shape
            ),
        ));
    };
    let mut f = open_at(path, h.data_offset)?;
    let mut raw = vec![0u8; h.len() * size];
    f.read_exact(&mut raw).map_err(|e| DataError::io(path, e))?;
    Ok(raw.chunks_exact(size).map(|c| int_le(c, signed)).collect())
}

/// A little-endian integer of 1-8 bytes, sign-extended when `signed`.
pub(crate) fn int_le(c: &[u8], signed: bool) -> i64 {
    let neg = signed && c.last().is_some_and(|&x| x & 0x80 != 0);
    let mut buf = if neg { [0xff; 8] } else { [0; 8] };
    buf[..c.len()].copy_from_slice(c);
    i64::from_le_bytes(buf)
}

/// Buffered reader positioned at `offset`.
pub fn open_at(path: &Path, offset: u64) -> Result<BufReader<File>, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| DataError::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 20, f))
}

/// Iterates fixed-size records (e.g. one 32x32x3 image) of a C-ordered array.
pub struct Records {
    path: PathBuf,
    reader: BufReader<File>,
    record: usize,
    left: usize,
}

impl Records {
    /// Opens `count` records of `record` bytes each, starting at the data offset.
    pub fn open(
        path: &Path,
        header: &NpyHeader,
        record: usize,
        count: usize,
    ) -> Result<Self, DataError> {
        let reader = open_at(path, header.data_offset)?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            record,
            left: count,
        })
    }
}

impl Iterator for Records {
    type Item = Result<Vec<u8>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut buf = vec![0u8; self.record];
        Some(
            self.reader
                .read_exact(&mut buf)
                .map(|_| buf)
                .map_err(|e| DataError::io(&self.path, e)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::npy_file;

    #[test]
    fn headers_give_dtype_shape_and_emptiness_and_refuse_short_data() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.npy");
        npy_file(&p, "|u1", &[2, 3], &[0; 6]);
        let h = read_header(&p).expect("reads");
        assert_eq!((h.descr.as_str(), h.shape.as_slice()), ("|u1", &[2, 3][..]));
        assert!(!h.fortran_order && !h.is_empty() && h.len() == 6);
        // The data starts where the padded header ends: the file's last 6 bytes.
        assert_eq!(
            h.data_offset,
            std::fs::metadata(&p).expect("stat").len() - 6
        );
        npy_file(&p, "<i8", &[0], &[]);
        assert!(read_header(&p).expect("reads").is_empty());
        // Longer than the shape needs is fine; shorter is truncated.
        npy_file(&p, "<i8", &[2], &[0; 20]);
        assert!(read_header(&p).is_ok());
        npy_file(&p, "<i8", &[2], &[0; 15]);
        let err = read_header(&p).unwrap_err().to_string();
        assert!(
            err.contains("truncated: 15 data bytes, shape needs 16"),
            "{err}"
        );
    }

    #[test]
    fn integer_arrays_are_read_with_their_sign_and_only_flat_little_endian() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.npy");
        npy_file(&p, "<i2", &[2], &[0xff, 0xff, 5, 0]);
        assert_eq!(read_ints(&p).expect("reads"), [-1, 5]);
        npy_file(&p, "<u2", &[1], &[0xff, 0xff]);
        assert_eq!(read_ints(&p).expect("reads"), [65535]);
        for (descr, shape) in [
            ("<i2", &[1, 2][..]),
            (">i2", &[2]),
            ("<f4", &[1]),
            ("<i3", &[2]),
        ] {
            npy_file(&p, descr, shape, &[0; 8]);
            let err = read_ints(&p).unwrap_err().to_string();
            assert!(
                err.contains("expected a 1-D integer array"),
                "{descr}: {err}"
            );
        }
    }

    #[test]
    fn header_values_are_read_in_either_quote() {
        let text = "{'descr': '<f4', \"kind\" : \"x'y\", }";
        assert_eq!(quoted_after(text, "'descr'").as_deref(), Some("<f4"));
        assert_eq!(quoted_after(text, "\"kind\"").as_deref(), Some("x'y"));
        assert_eq!(quoted_after("{'shape': (1,)}", "'shape'"), None);
    }
}
