//! `shiftlab corrupt --corruption frost` from any folder: the frost photos are built into the
//! binary, so a copy of it elsewhere, run from an unrelated folder, writes the pixels the photos
//! on disk (the repository's `assets/frost`, read from the repository root) give;
//! `SHIFTLAB_FROST_DIR` still overrides the built-in photos.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{root, text};

/// Runs `BIN corrupt ARGS` in `cwd` without `SHIFTLAB_FROST_DIR` unless `frost_env` gives it.
fn corrupt(bin: &Path, cwd: &Path, frost_env: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).arg("corrupt").args(args);
    match frost_env {
        Some(dir) => cmd.env("SHIFTLAB_FROST_DIR", dir),
        None => cmd.env_remove("SHIFTLAB_FROST_DIR"),
    };
    cmd.output().expect("the shiftlab binary runs")
}

fn pixels(path: &Path) -> Vec<u8> {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
        .into_raw()
}

#[test]
fn frost_from_another_folder_matches_the_photos_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.png");
    let img = image::RgbImage::from_fn(72, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 4, 99]));
    img.save(&input).unwrap();
    // A copy of the binary in a folder of its own, run from another folder with no assets.
    let bin = tmp.path().join("bin/shiftlab");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_shiftlab"), &bin).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let original = Path::new(env!("CARGO_BIN_EXE_shiftlab"));
    let s = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
    // Severities 1 and 5 pick different photos.
    for (severity, seed) in [("1", "0"), ("5", "7")] {
        let want = tmp.path().join(format!("disk{severity}.png"));
        let got = tmp.path().join(format!("anywhere{severity}.png"));
        let common = [
            "--corruption",
            "frost",
            "--severity",
            severity,
            "--seed",
            seed,
        ];
        let on_disk = [&common[..], &["--frost-dir", "assets/frost"]].concat();
        let out = corrupt(
            original,
            root(),
            None,
            &[&on_disk[..], &[&s(&input), &s(&want)]].concat(),
        );
        assert!(
            out.status.success(),
            "from the repository root:\n{}",
            text(&out)
        );
        let out = corrupt(
            &bin,
            &elsewhere,
            None,
            &[&common[..], &[&s(&input), &s(&got)]].concat(),
        );
        assert!(
            out.status.success(),
            "copied binary elsewhere:\n{}",
            text(&out)
        );
        assert_eq!(pixels(&got), pixels(&want), "severity {severity}");
        assert_ne!(pixels(&got), img.as_raw().clone(), "frost changed nothing");
    }
    // The variable still overrides the built-in photos.
    let nofrost = tmp.path().join("nofrost");
    let out = corrupt(
        &bin,
        &elsewhere,
        Some(&nofrost),
        &[
            "--corruption",
            "frost",
            "--severity",
            "2",
            &s(&input),
            &s(&tmp.path().join("x.png")),
        ],
    );
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(&format!("{}/frost1.png", nofrost.display())),
        "{msg}"
    );
}
