//! Finds the frost photos (`assets/frost`, extracted from the imagecorruptions wheel by
//! scripts/setup-assets.sh) so that `frost.rs` can embed them with `include_bytes!`: frost then
//! works wherever the binary runs. Without the photos the build stops and says how to get them.

use std::path::PathBuf;

/// Must match `FROST_FILES` in src/frost.rs (the photos the reference picks from).
const FROST_FILES: [&str; 5] = [
    "frost1.png",
    "frost2.png",
    "frost3.png",
    "frost4.jpg",
    "frost5.jpg",
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = manifest.join("../../assets/frost");
    println!("cargo:rerun-if-changed={}", dir.display());
    let missing: Vec<&str> = FROST_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        panic!(
            "the frost photos are embedded in shiftlab-corrupt, but {} lacks {}: run \
             `bash scripts/setup-assets.sh` (or `make setup`) in the repository root first; it \
             extracts them from the imagecorruptions 1.1.2 wheel on PyPI",
            dir.display(),
            missing.join(", ")
        );
    }
    for f in FROST_FILES {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    // Absolute, so include_bytes! finds the photos whatever the including file's location.
    let dir = dir.canonicalize().expect("the frost folder exists");
    println!("cargo:rustc-env=SHIFTLAB_FROST_EMBED_DIR={}", dir.display());
}
