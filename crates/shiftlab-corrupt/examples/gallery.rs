//! Writes the corruption gallery of one image: `gallery IN.png OUT.png [PRESET] [SEED] [TILE]`
//! (what `shiftlab gallery` does; usable before the CLI is wired). TILE shrinks the tiles
//! after corruption (docs/gallery.png uses 112).

use shiftlab_corrupt::{gallery_thumbnails, FrostAssets, Preset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: gallery IN.png OUT.png [PRESET] [SEED]".into());
    };
    let preset = args
        .next()
        .map(|p| Preset::from_name(&p))
        .transpose()?
        .unwrap_or_default();
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let tile: Option<u32> = args.next().map(|s| s.parse()).transpose()?;
    let img = image::open(&input)?.to_rgb8();
    let assets = FrostAssets::default_location()?;
    gallery_thumbnails(&img, preset, seed, &assets, tile)?.save(&output)?;
    Ok(())
}
