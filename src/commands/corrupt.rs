//! `shiftlab corrupt` and `shiftlab gallery`: corruptions and synthetic shifts on single files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::DynamicImage;
use shiftlab_corrupt::{gallery_rows, FrostAssets, GalleryRows, Preset, Severity, Transform};

/// Corrupt or shift one image (PNG or JPEG in, PNG out).
#[derive(clap::Args, Debug)]
pub struct CorruptArgs {
    /// Corruption name (gaussian_noise, motion_blur, ...: 19 in all) or synthetic shift name
    /// (rotation, zoom_out, translation, hue_rotation, color_temperature, gamma, desaturation,
    /// resolution, occlusion). `--shift` is an alias.
    #[arg(long, visible_alias = "shift")]
    pub corruption: String,
    /// Severity 1..=5.
    #[arg(long)]
    pub severity: i64,
    /// Random seed (the sample key is 0): same seed, same output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Constant table of the corruptions: imagenet224, tiny64 or cifar32 (synthetic shifts
    /// have one table).
    #[arg(long, default_value = "imagenet224")]
    pub preset: String,
    /// Folder with frost1.png .. frost5.jpg (default: $SHIFTLAB_FROST_DIR, else the photos
    /// built into shiftlab).
    #[arg(long)]
    pub frost_dir: Option<PathBuf>,
    /// Input image (PNG or JPEG; grayscale stays grayscale).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output PNG, written atomically (a hidden temporary beside it, then renamed).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
}

/// Make a labelled grid of every corruption and synthetic shift at every severity.
#[derive(clap::Args, Debug)]
pub struct GalleryArgs {
    /// Input image (PNG or JPEG).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output PNG.
    #[arg(long, default_value = "grid.png")]
    pub out: PathBuf,
    /// Constant table: imagenet224, tiny64 or cifar32.
    #[arg(long, default_value = "imagenet224")]
    pub preset: String,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows: corruptions (19), synthetic (9 shifts, family under the name) or all (both).
    #[arg(long, default_value = "all")]
    pub rows: String,
    /// Shrink every tile (after corrupting at full size) to at most PX on its longer side.
    #[arg(long, value_name = "PX")]
    pub tile: Option<u32>,
    /// Folder with frost1.png .. frost5.jpg (default: $SHIFTLAB_FROST_DIR, else the photos
    /// built into shiftlab).
    #[arg(long)]
    pub frost_dir: Option<PathBuf>,
}

pub(crate) fn load_frost(dir: &Option<PathBuf>) -> Result<FrostAssets> {
    Ok(FrostAssets::locate(dir.as_deref())?)
}

fn read_image(path: &Path) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode {} (PNG or JPEG expected)", path.display()))
}

/// Writes `img` as PNG to `out` atomically (the workspace's one atomic writer).
fn write_png_atomic(img: &image::DynamicImage, out: &Path) -> Result<()> {
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", out.display()))?;
    shiftlab_common::write_atomic(out, png.get_ref())
        .with_context(|| format!("cannot write {}", out.display()))
}

pub fn run_corrupt(args: &CorruptArgs) -> Result<()> {
    let transform: Transform = args.corruption.parse()?;
    let severity = Severity::new(args.severity)?;
    let preset = Preset::from_name(&args.preset)?;
    let assets = if transform.needs_frost() {
        load_frost(&args.frost_dir)?
    } else {
        FrostAssets::none()
    };
    let img = read_image(&args.input)?;
    let out = transform
        .apply(&img, severity, preset, args.seed, 0, &assets)
        .with_context(|| {
            format!(
                "{transform} severity {severity} on {}",
                args.input.display()
            )
        })?;
    write_png_atomic(&out, &args.output)
}

pub fn run_gallery(args: &GalleryArgs) -> Result<()> {
    let rows: GalleryRows = args.rows.parse()?;
    let preset = Preset::from_name(&args.preset)?;
    let assets = if rows.has_corruptions() {
        load_frost(&args.frost_dir)?
    } else {
        FrostAssets::none()
    };
    let img = read_image(&args.input)?.to_rgb8();
    let grid = gallery_rows(&img, rows, preset, args.seed, &assets, args.tile)?;
    write_png_atomic(&DynamicImage::ImageRgb8(grid), &args.out)
}
