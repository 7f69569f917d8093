//! `shiftlab shift-dataset`: a pre-shifted copy of one split of a dataset table.
//!
//! Every image of the split is shifted (synthetic shift or ImageNet-C corruption) at every
//! listed severity and written as a new dataset table of the same schema, so shifted data can be
//! evaluated as a data set of its own (as ImageNet-C or CIFAR-10-C are). Keys come from the
//! pipeline's `sample_key` (FNV-1a of the id) and images are decoded and resized by the
//! pipeline's own `decode`, so a row here equals what a pipeline run computes for that sample.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use image::GenericImageView;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shiftlab_corrupt::{FrostAssets, Preset, Severity, Transform, MIN_SIDE};
use shiftlab_data::decode::{decode, sample_key, Geometry};
use shiftlab_data::imaging::{encode_png, StoredImage};
use shiftlab_data::reader::{read_info, DatasetInfo, DatasetReader, ImageBatch};
use shiftlab_data::writer::{string_metadata, DatasetWriter, Row};

use super::corrupt::load_frost;

/// Rows read (and shifted in parallel) at a time.
const BATCH: usize = 256;

/// Write shifted copies of one split of a dataset table (same schema; `corruption` = the
/// shift name, `severity` = the severity).
#[derive(clap::Args, Debug)]
pub struct ShiftDatasetArgs {
    /// A dataset table written by `shiftlab ingest`.
    #[arg(long)]
    pub input: PathBuf,
    /// The new dataset table (written atomically: temp file, then rename).
    #[arg(long)]
    pub output: PathBuf,
    /// Synthetic shift or corruption names, comma-separated (e.g. rotation,gamma,fog).
    #[arg(long, value_delimiter = ',', required = true)]
    pub shift: Vec<String>,
    /// Severities 1..=5, comma-separated (e.g. 1,3,5).
    #[arg(long, value_delimiter = ',', required = true)]
    pub severity: Vec<i64>,
    /// The split to shift.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Only the first N images of the split (file order).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Random seed; each image's stream also depends on its id.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Resize the shorter side to PX (bilinear) before shifting, as a pipeline's `resize`.
    #[arg(long, value_name = "PX")]
    pub resize: Option<u32>,
    /// Constant table for corruptions: imagenet224, tiny64 or cifar32 (required with any
    /// corruption; synthetic shifts have one table).
    #[arg(long)]
    pub preset: Option<String>,
    /// Folder with frost1.png .. frost5.jpg (default: $SHIFTLAB_FROST_DIR, else the photos
    /// built into shiftlab).
    #[arg(long)]
    pub frost_dir: Option<PathBuf>,
}

/// The validated arguments: what to apply, and how.
struct Plan {
    transforms: Vec<Transform>,
    severities: Vec<Severity>,
    preset: Preset,
    assets: FrostAssets,
    geometry: Geometry,
    seed: u64,
}

pub fn run_shift_dataset(args: &ShiftDatasetArgs) -> Result<()> {
    let start = Instant::now();
    let plan = plan(args)?;
    let info = read_info(&args.input)?;
    let images = images_in_split(&info, args)?;
    let total = images * (plan.transforms.len() * plan.severities.len()) as u64;
    let mut writer = DatasetWriter::create(&args.output, &info.class_names, &info.source_format)?;
    let bar = progress_bar(total);
    for &t in &plan.transforms {
        for &s in &plan.severities {
            shift_split(args, &plan, t, s, &mut writer, &bar)?;
        }
    }
    bar.finish_and_clear();
    writer.finish(string_metadata(&provenance(args, &plan)))?;
    println!(
        "wrote {total} rows ({images} images of split {} x {} shifts x {} severities) to {} in {:.1} s",
        args.split,
        plan.transforms.len(),
        plan.severities.len(),
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Parses and checks the names, severities and preset before anything is read.
fn plan(args: &ShiftDatasetArgs) -> Result<Plan> {
    let transforms = args
        .shift
        .iter()
        .map(|n| n.parse::<Transform>())
        .collect::<Result<Vec<_>, _>>()?;
    let severities = args
        .severity
        .iter()
        .map(|&s| Severity::new(s))
        .collect::<Result<Vec<_>, _>>()?;
    no_repeats(&transforms, "shift")?;
    no_repeats(&severities, "severity")?;
    let corruption = transforms
        .iter()
        .find(|t| matches!(t, Transform::Corruption(_)));
    let preset = match (&args.preset, corruption) {
        (Some(p), _) => Preset::from_name(p)?,
        (None, None) => Preset::default(),
        (None, Some(c)) => bail!(
            "corruption {c} needs --preset (imagenet224, tiny64 or cifar32): its constants \
             depend on the image size it was made for"
        ),
    };
    let assets = if transforms.iter().any(|t| t.needs_frost()) {
        load_frost(&args.frost_dir)?
    } else {
        FrostAssets::none()
    };
    let geometry = Geometry {
        resize: args.resize,
        crop: None,
    };
    Ok(Plan {
        transforms,
        severities,
        preset,
        assets,
        geometry,
        seed: args.seed,
    })
}

/// Repeated names would write duplicate (id, corruption, severity) rows.
fn no_repeats<T: PartialEq + std::fmt::Display>(items: &[T], what: &str) -> Result<()> {
    for (i, x) in items.iter().enumerate() {
        if items[..i].contains(x) {
            bail!("--{what} lists {x} twice");
        }
    }
    Ok(())
}

/// Images that will be shifted: the split's size (from the file metadata), capped by --limit.
fn images_in_split(info: &DatasetInfo, args: &ShiftDatasetArgs) -> Result<u64> {
    let Some(&n) = info.splits.get(&args.split) else {
        let have: Vec<&str> = info.splits.keys().map(String::as_str).collect();
        bail!(
            "split {:?} is not in {} (splits: {})",
            args.split,
            args.input.display(),
            have.join(", ")
        );
    };
    if n == 0 {
        bail!(
            "split {:?} of {} has no rows",
            args.split,
            args.input.display()
        );
    }
    if args.limit == Some(0) {
        bail!("--limit 0 selects no images");
    }
    let selected = args.limit.map_or(n, |l| l.min(n));
    Ok(selected)
}

/// One pass over the split for one (shift, severity): reads, shifts in parallel, writes in order.
fn shift_split(
    args: &ShiftDatasetArgs,
    plan: &Plan,
    t: Transform,
    s: Severity,
    writer: &mut DatasetWriter,
    bar: &ProgressBar,
) -> Result<()> {
    let mut left = args.limit.unwrap_or(u64::MAX);
    for batch in DatasetReader::open(&args.input, BATCH, Some(&args.split))? {
        if left == 0 {
            break;
        }
        let batch = batch?;
        let n = batch.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        left -= n as u64;
        for row in par_map(n, |i| shift_row(&batch, i, plan, t, s)) {
            writer.push(row?)?;
        }
        bar.inc(n as u64);
    }
    Ok(())
}

/// Row `i` of `batch` shifted; errors name the row id and the cause.
fn shift_row(batch: &ImageBatch, i: usize, plan: &Plan, t: Transform, s: Severity) -> Result<Row> {
    let id = &batch.ids[i];
    if let Some(c) = &batch.corruptions[i] {
        bail!("row {id} is already corrupted ({c}); shift-dataset expects clean rows");
    }
    let img = decode(&batch.images[i], plan.geometry).map_err(|e| anyhow!("row {id}: {e}"))?;
    let (w, h) = img.dimensions();
    if w.min(h) < MIN_SIDE {
        bail!(
            "row {id}: image is {w}x{h}, below the {MIN_SIDE} px minimum of the shifts; \
             add --resize {MIN_SIDE} (shorter side, bilinear)"
        );
    }
    let out = t
        .apply(
            &img,
            s,
            plan.preset,
            plan.seed,
            sample_key(id),
            &plan.assets,
        )
        .with_context(|| format!("row {id}: {t} severity {s}"))?;
    let channels: u8 = if out.color().has_color() { 3 } else { 1 };
    let (w, h) = out.dimensions();
    let bytes = encode_png(w, h, channels, out.as_bytes()).map_err(|e| anyhow!("row {id}: {e}"))?;
    Ok(Row {
        id: id.clone(),
        split: batch.splits[i].clone(),
        label: batch.labels[i],
        image: StoredImage {
            bytes,
            width: w,
            height: h,
            channels,
        },
        path: None,
        corruption: Some(t.to_string()),
        severity: Some(i32::from(s.get())),
    })
}

/// `f(0..n)` on all cores, results in order (std threads: the binary does not link rayon).
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    let chunk = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|lo| scope.spawn(move || (lo..(lo + chunk).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// `shiftlab` metadata entries saying where the table came from and how it was made.
fn provenance(args: &ShiftDatasetArgs, plan: &Plan) -> Vec<(&'static str, String)> {
    let join = |v: Vec<String>| v.join(",");
    vec![
        ("input", args.input.display().to_string()),
        ("shifted_split", args.split.clone()),
        (
            "shifts",
            join(plan.transforms.iter().map(|t| t.to_string()).collect()),
        ),
        (
            "severities",
            join(plan.severities.iter().map(|s| s.to_string()).collect()),
        ),
        ("seed", plan.seed.to_string()),
        (
            "resize",
            args.resize.map_or("none".into(), |r| r.to_string()),
        ),
        ("preset", plan.preset.name().to_string()),
    ]
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = "{spinner} shift-dataset [{bar:30}] {pos}/{len} images, {elapsed} (eta {eta})";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
