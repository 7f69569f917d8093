//! One labelled picture of every corruption (and synthetic shift) at every severity.

use std::fmt;
use std::str::FromStr;

use image::RgbImage;
use rayon::prelude::*;

use crate::font::{draw_text, text_width};
use crate::{
    corrupt_jobs, shift, Corruption, CorruptionError, FrostAssets, Job, Preset, Severity,
    SyntheticShift,
};

const PAD: u32 = 4;
const SCALE: u32 = 2;
/// Columns: clean, then severities 1..5.
const COLS: u32 = 6;

/// Which rows a gallery shows: the 19 corruptions, the 9 synthetic shifts, or both (in that
/// order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GalleryRows {
    Corruptions,
    Synthetic,
    #[default]
    All,
}

/// A `--rows` value that is not `corruptions`, `synthetic` or `all`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gallery rows {0:?}; valid: corruptions, synthetic, all")]
pub struct UnknownRows(pub String);

impl GalleryRows {
    pub fn name(self) -> &'static str {
        match self {
            GalleryRows::Corruptions => "corruptions",
            GalleryRows::Synthetic => "synthetic",
            GalleryRows::All => "all",
        }
    }

    /// Whether the corruption rows are drawn (and so a preset and, for frost, assets matter).
    pub fn has_corruptions(self) -> bool {
        self != GalleryRows::Synthetic
    }

    fn has_synthetic(self) -> bool {
        self != GalleryRows::Corruptions
    }
}

impl FromStr for GalleryRows {
    type Err = UnknownRows;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase();
        [
            GalleryRows::Corruptions,
            GalleryRows::Synthetic,
            GalleryRows::All,
        ]
        .into_iter()
        .find(|r| r.name() == n)
        .ok_or_else(|| UnknownRows(s.to_string()))
    }
}

impl fmt::Display for GalleryRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One gallery row: its transform, so the label and the tiles come from one place.
#[derive(Clone, Copy, Debug)]
enum Row {
    Corruption(Corruption),
    Synthetic(SyntheticShift),
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Corruption(c) => c.name(),
            Row::Synthetic(s) => s.name(),
        }
    }

    /// Second, smaller label line: the family of a synthetic shift, e.g. `(geometric)`.
    fn family(self) -> Option<String> {
        match self {
            Row::Corruption(_) => None,
            Row::Synthetic(s) => Some(format!("({})", s.family())),
        }
    }
}

fn rows_of(which: GalleryRows) -> Vec<Row> {
    let mut rows = Vec::new();
    if which.has_corruptions() {
        rows.extend(Corruption::ALL.map(Row::Corruption));
    }
    if which.has_synthetic() {
        rows.extend(SyntheticShift::ALL.map(Row::Synthetic));
    }
    rows
}

/// Pixel geometry of a grid, shared by drawing and the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    label_w: u32,
    header_h: u32,
    tile_w: u32,
    tile_h: u32,
    rows: u32,
}

impl Layout {
    fn new(rows: &[Row], tile_w: u32, tile_h: u32) -> Layout {
        let label_w = rows
            .iter()
            .map(|r| {
                let fam = r.family().map_or(0, |f| text_width(&f, 1));
                text_width(r.name(), SCALE).max(fam)
            })
            .max()
            .unwrap_or(0)
            + 2 * PAD;
        Layout {
            label_w,
            header_h: 7 * SCALE + 2 * PAD,
            tile_w,
            tile_h,
            rows: rows.len() as u32,
        }
    }

    fn size(&self) -> (u32, u32) {
        (
            self.label_w + COLS * (self.tile_w + PAD) + PAD,
            self.header_h + self.rows * (self.tile_h + PAD) + PAD,
        )
    }

    /// Top-left corner of the tile in row `r`, column `c` (0 = clean, 1..=5 = severity).
    fn origin(&self, r: u32, c: u32) -> (u32, u32) {
        (
            self.label_w + c * (self.tile_w + PAD),
            self.header_h + r * (self.tile_h + PAD),
        )
    }
}

/// Rows = the 19 corruptions (name on the left), columns = clean, severity 1..5 (header on
/// top). Tiles are the image's own size; all tiles are computed in parallel with key 0.
pub fn gallery(
    image: &RgbImage,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
) -> Result<RgbImage, CorruptionError> {
    gallery_thumbnails(image, preset, seed, assets, None)
}

/// [`gallery`] with every tile (corrupted at full size) shrunk to at most `tile` pixels on its
/// longer side, for compact overviews. `None` keeps full-size tiles.
pub fn gallery_thumbnails(
    image: &RgbImage,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
    tile: Option<u32>,
) -> Result<RgbImage, CorruptionError> {
    gallery_rows(image, GalleryRows::Corruptions, preset, seed, assets, tile)
}

/// [`gallery_thumbnails`] with a choice of rows: the synthetic shifts come after the
/// corruptions, labelled with their name and, below it, their family. `preset` and `assets`
/// only matter for corruption rows.
pub fn gallery_rows(
    image: &RgbImage,
    which: GalleryRows,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
    tile: Option<u32>,
) -> Result<RgbImage, CorruptionError> {
    let rows = rows_of(which);
    let tiles: Vec<RgbImage> = row_tiles(image, &rows, preset, seed, assets)?
        .iter()
        .map(|t| shrink(t, tile))
        .collect();
    let clean = shrink(image, tile);
    let layout = Layout::new(&rows, clean.width(), clean.height());
    let (gw, gh) = layout.size();
    let mut out = RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    let label = if which.has_corruptions() {
        format!("{} seed {}", preset.name(), seed)
    } else {
        format!("seed {seed}")
    };
    draw_header(&mut out, &layout, &label);
    for (ri, row) in rows.iter().enumerate() {
        draw_label(&mut out, &layout, ri as u32, *row);
        let (x, y) = layout.origin(ri as u32, 0);
        image::imageops::replace(&mut out, &clean, x as i64, y as i64);
        for si in 0..5 {
            let (x, y) = layout.origin(ri as u32, si as u32 + 1);
            image::imageops::replace(&mut out, &tiles[ri * 5 + si], x as i64, y as i64);
        }
    }
    Ok(out)
}

/// Full-size tiles, row-major (row, severity), computed in parallel with key 0.
fn row_tiles(
    image: &RgbImage,
    rows: &[Row],
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
) -> Result<Vec<RgbImage>, CorruptionError> {
    let corruptions: Vec<Job<'_>> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Corruption(c) => Some(*c),
            Row::Synthetic(_) => None,
        })
        .flat_map(|c| {
            Severity::ALL.iter().map(move |&s| Job {
                image,
                corruption: c,
                severity: s,
                key: 0,
            })
        })
        .collect();
    let mut tiles = corrupt_jobs(&corruptions, preset, seed, assets)?;
    let synthetic: Vec<(SyntheticShift, Severity)> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Synthetic(s) => Some(*s),
            Row::Corruption(_) => None,
        })
        .flat_map(|s| Severity::ALL.map(|v| (s, v)))
        .collect();
    let shifted: Vec<RgbImage> = synthetic
        .par_iter()
        .map(|&(s, v)| shift(image, s, v, seed, 0))
        .collect::<Result<_, _>>()?;
    // rows_of puts every corruption row before every synthetic row.
    tiles.extend(shifted);
    Ok(tiles)
}

fn shrink(img: &RgbImage, tile: Option<u32>) -> RgbImage {
    match tile {
        Some(t) if img.width().max(img.height()) > t => {
            let (w, h) = img.dimensions();
            let s = t as f64 / w.max(h) as f64;
            let (nw, nh) = (
                ((w as f64 * s).round() as u32).max(1),
                ((h as f64 * s).round() as u32).max(1),
            );
            image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
        }
        _ => img.clone(),
    }
}

fn draw_header(out: &mut RgbImage, layout: &Layout, label: &str) {
    let heads = ["clean", "s1", "s2", "s3", "s4", "s5"];
    for (ci, head) in heads.iter().enumerate() {
        let (x0, _) = layout.origin(0, ci as u32);
        let tx = x0 + layout.tile_w.saturating_sub(text_width(head, SCALE)) / 2;
        draw_text(out, tx, PAD, head, SCALE, [0, 0, 0]);
    }
    draw_text(out, PAD, PAD, label, 1, [0, 0, 0]);
}

/// The row name, vertically centred; a synthetic shift's family goes on a small second line.
fn draw_label(out: &mut RgbImage, layout: &Layout, ri: u32, row: Row) {
    let (_, y0) = layout.origin(ri, 0);
    let family = row.family();
    let text_h = 7 * SCALE + family.as_ref().map_or(0, |_| 2 + 7);
    let y = y0 + layout.tile_h.saturating_sub(text_h) / 2;
    draw_text(out, PAD, y, row.name(), SCALE, [0, 0, 0]);
    if let Some(f) = family {
        draw_text(out, PAD, y + 7 * SCALE + 2, &f, 1, [80, 80, 80]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_like(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x + y) * 3) as u8,
            ])
        })
    }

    fn tile_at(grid: &RgbImage, layout: &Layout, r: u32, c: u32) -> RgbImage {
        let (x, y) = layout.origin(r, c);
        image::imageops::crop_imm(grid, x, y, layout.tile_w, layout.tile_h).to_image()
    }

    #[test]
    fn synthetic_rows_follow_corruptions_and_tiles_equal_shift() {
        let img = photo_like(40, 34);
        let (seed, assets) = (7, FrostAssets::none());
        let grid = gallery_rows(
            &img,
            GalleryRows::Synthetic,
            Preset::Cifar32,
            seed,
            &assets,
            None,
        )
        .unwrap();
        let layout = Layout::new(&rows_of(GalleryRows::Synthetic), 40, 34);
        assert_eq!(layout.rows, 9);
        assert_eq!(
            grid.dimensions(),
            (
                layout.label_w + 6 * (40 + PAD) + PAD,
                layout.header_h + 9 * (34 + PAD) + PAD
            )
        );
        for (ri, s) in SyntheticShift::ALL.iter().enumerate() {
            assert_eq!(tile_at(&grid, &layout, ri as u32, 0), img, "clean {s}");
            for v in Severity::ALL {
                let want = shift(&img, *s, v, seed, 0).unwrap();
                let got = tile_at(&grid, &layout, ri as u32, v.get() as u32);
                assert!(got == want, "tile {s} s{v} differs from shift()");
            }
        }
    }

    #[test]
    fn all_rows_is_corruptions_then_synthetic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/frost");
        let assets = FrostAssets::load(&dir).unwrap();
        let img = photo_like(32, 32);
        let grid = gallery_rows(&img, GalleryRows::All, Preset::Cifar32, 0, &assets, None).unwrap();
        let layout = Layout::new(&rows_of(GalleryRows::All), 32, 32);
        assert_eq!(layout.rows, 19 + 9);
        assert_eq!(grid.dimensions(), layout.size());
        // Corruption rows are unchanged by the extra rows (the label column is as wide).
        let only = gallery(&img, Preset::Cifar32, 0, &assets).unwrap();
        assert_eq!(
            Layout::new(&rows_of(GalleryRows::Corruptions), 32, 32).label_w,
            layout.label_w
        );
        assert!(
            image::imageops::crop_imm(&grid, 0, 0, only.width(), only.height() - PAD).to_image()
                == image::imageops::crop_imm(&only, 0, 0, only.width(), only.height() - PAD)
                    .to_image()
        );
        let last = SyntheticShift::Occlusion;
        let want = shift(&img, last, Severity::ALL[4], 0, 0).unwrap();
        assert!(tile_at(&grid, &layout, 27, 5) == want);
        assert_eq!(
            "Synthetic".parse::<GalleryRows>().unwrap(),
            GalleryRows::Synthetic
        );
        let e = "both".parse::<GalleryRows>().unwrap_err().to_string();
        assert!(e.contains("corruptions, synthetic, all"), "{e}");
    }
}
