//! `shiftlab corrupt` and `shiftlab gallery`: the corruption engine on single files.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use shiftlab_corrupt::{corrupt_dynamic, gallery, Corruption, FrostAssets, Preset, Severity};

/// Corrupt one image (PNG or JPEG in, PNG out).
#[derive(clap::Args, Debug)]
pub struct CorruptArgs {
    /// Corruption name, e.g. gaussian_noise, motion_blur, jpeg_compression (19 in all).
    #[arg(long)]
    pub corruption: String,
    /// Severity 1..=5.
    #[arg(long)]
    pub severity: i64,
    /// Random seed (the sample key is 0): same seed, same output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Constant table: imagenet224, tiny64 or cifar32.
    #[arg(long, default_value = "imagenet224")]
    pub preset: String,
    /// Folder with frost1.png .. frost5.jpg (default: $SHIFTLAB_FROST_DIR or assets/frost).
    #[arg(long)]
    pub frost_dir: Option<PathBuf>,
    /// Input image (PNG or JPEG; grayscale stays grayscale).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output PNG, written atomically (OUT.tmp, then renamed).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
}

/// Make a labelled grid of every corruption at every severity.
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
    /// Folder with frost1.png .. frost5.jpg (default: $SHIFTLAB_FROST_DIR or assets/frost).
    #[arg(long)]
    pub frost_dir: Option<PathBuf>,
}

fn load_frost(dir: &Option<PathBuf>) -> Result<FrostAssets> {
    Ok(match dir {
        Some(d) => FrostAssets::load(d)?,
        None => FrostAssets::default_location()?,
    })
}

fn read_image(path: &Path) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode {} (PNG or JPEG expected)", path.display()))
}

/// Writes `img` as PNG to `out` via `out.tmp` in the same folder, then renames it into place.
fn write_png_atomic(img: &image::DynamicImage, out: &Path) -> Result<()> {
    let name = out
        .file_name()
        .with_context(|| format!("output path {} has no file name", out.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = out.with_file_name(tmp_name);
    let result = (|| -> Result<()> {
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::new(f);
        img.write_to(&mut w, image::ImageFormat::Png)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn run_corrupt(args: &CorruptArgs) -> Result<()> {
    let corruption: Corruption = args.corruption.parse()?;
    let severity = Severity::new(args.severity)?;
    let preset = Preset::from_name(&args.preset)?;
    let assets = if corruption == Corruption::Frost {
        load_frost(&args.frost_dir)?
    } else {
        FrostAssets::none()
    };
    let img = read_image(&args.input)?;
    let out = corrupt_dynamic(&img, corruption, severity, preset, args.seed, 0, &assets)
        .with_context(|| {
            format!(
                "{corruption} severity {severity} on {}",
                args.input.display()
            )
        })?;
    write_png_atomic(&out, &args.output)
}

pub fn run_gallery(args: &GalleryArgs) -> Result<()> {
    let preset = Preset::from_name(&args.preset)?;
    let assets = load_frost(&args.frost_dir)?;
    let img = read_image(&args.input)?.to_rgb8();
    let grid = gallery(&img, preset, args.seed, &assets)?;
    write_png_atomic(&image::DynamicImage::ImageRgb8(grid), &args.out)
}
