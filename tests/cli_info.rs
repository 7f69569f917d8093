//! `shiftlab info` reports the libtorch it actually loaded.

use std::process::Command;

fn shiftlab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .args(args)
        .output()
        .expect("the shiftlab binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The version in the wheel's own version.py, read independently of the binary.
fn wheel_version() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.libtorch/torch/version.py");
    let text = std::fs::read_to_string(path).expect("libtorch installed by make setup");
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = '"))
        .and_then(|l| l.split('\'').next())
        .expect("version.py names a version")
        .to_string()
}

fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no line {name:?} in:\n{stdout}"))
}

#[test]
fn info_reports_loaded_libtorch_2_11_0() {
    let (ok, stdout, stderr) = shiftlab(&["info"]);
    assert!(ok, "shiftlab info failed: {stderr}");
    let loaded = field(&stdout, "libtorch (loaded)");
    let expected = wheel_version();
    assert!(expected.starts_with("2.11.0"), "wheel is {expected}");
    assert!(
        loaded.starts_with(&format!("{expected} from ")),
        "loaded libtorch line {loaded:?} does not name {expected}"
    );
    assert!(loaded.ends_with("/libtorch_cpu.so"), "{loaded}");
    let cuda = field(&stdout, "CUDA usable");
    assert!(cuda.starts_with("yes") || cuda.starts_with("no"), "{cuda}");
    let threads: usize = field(&stdout, "torch intra-op threads")
        .parse()
        .expect("thread count is a number");
    assert!(threads >= 1);
}

#[test]
fn unknown_subcommand_is_a_clear_error() {
    let (ok, _, stderr) = shiftlab(&["no-such-command"]);
    assert!(!ok);
    assert!(stderr.contains("no-such-command"), "{stderr}");
}

#[test]
fn inspect_of_a_missing_file_names_it() {
    let (ok, _, stderr) = shiftlab(&["inspect", "/nonexistent/x.parquet"]);
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/x.parquet") && stderr.contains("cannot open"),
        "{stderr}"
    );
}
