//! Parity helper: reads jobs (one per line, tab-separated:
//! `input.png  corruption  severity  seed  output.png  [preset]`) and writes each result as PNG.
//! Used by tests/parity/corruption_parity.py. Runs jobs in parallel (results do not depend on it).

use std::collections::HashMap;
use std::io::Read;

use rayon::prelude::*;
use shiftlab_corrupt::{corrupt, Corruption, FrostAssets, Preset, Severity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: corrupt_dump JOBS.tsv (or - for stdin)")?;
    let mut text = String::new();
    if path == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&path)?;
    }
    let assets = FrostAssets::default_location().unwrap_or_else(|e| {
        eprintln!("warning: {e}");
        FrostAssets::none()
    });
    let mut jobs = Vec::new();
    let mut inputs: HashMap<String, image::RgbImage> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            return Err(format!("line {}: expected 5 or 6 tab-separated fields", n + 1).into());
        }
        let c: Corruption = f[1].parse()?;
        let s: Severity = f[2].parse()?;
        let seed: u64 = f[3].parse()?;
        let preset = if f.len() > 5 {
            Preset::from_name(f[5])?
        } else {
            Preset::Imagenet224
        };
        if !inputs.contains_key(f[0]) {
            inputs.insert(f[0].to_string(), image::open(f[0])?.to_rgb8());
        }
        jobs.push((f[0].to_string(), c, s, seed, f[4].to_string(), preset));
    }
    jobs.par_iter()
        .try_for_each(|(inp, c, s, seed, out, preset)| -> Result<(), String> {
            let img = &inputs[inp];
            let r = corrupt(img, *c, *s, *preset, *seed, 0, &assets).map_err(|e| e.to_string())?;
            r.save(out).map_err(|e| format!("{out}: {e}"))
        })?;
    Ok(())
}
