//! `shiftlab info` reports the libtorch it actually loaded.

mod common;

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
#[cfg(feature = "torch")]
fn wheel_version() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.libtorch/torch/version.py");
    let text = std::fs::read_to_string(path).expect("libtorch installed by make setup");
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = '"))
        .and_then(|l| l.split('\'').next())
        .expect("version.py names a version")
        .to_string()
}

#[cfg(feature = "torch")]
fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no line {name:?} in:\n{stdout}"))
}

#[test]
#[cfg(feature = "torch")]
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

/// `inspect` counts (computed with SQL) against pyarrow's own counts of the same file.
#[test]
fn inspect_counts_match_pyarrow() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = common::fmnist();
    let (ok, stdout, stderr) = shiftlab(&["inspect", data.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let script = r#"
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1], columns=["split", "label"]).to_pandas()
for split, n in t["split"].value_counts().items():
    print(f"split {split} {n}")
for (label, split), n in t.groupby(["label", "split"]).size().items():
    print(f"class {label} {split} {n}")
"#;
    let out = Command::new(root.join(".venv/bin/python"))
        .args(["-c", script, data.to_str().expect("utf-8")])
        .output()
        .expect("python runs (make test sets up .venv)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cells = |line: &str| -> Vec<String> {
        line.split('|')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let table: Vec<Vec<String>> = stdout.lines().map(cells).collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let found = match f[0] {
            "split" => table
                .iter()
                .any(|r| r.len() == 2 && r[0] == f[1] && r[1] == f[2]),
            _ => table
                .iter()
                .any(|r| r.len() == 4 && r[0] == f[1] && r[2] == f[2] && r[3] == f[3]),
        };
        assert!(found, "pyarrow says {line:?}; inspect printed:\n{stdout}");
    }
    assert!(
        stdout.contains("70000 rows") && stdout.contains("Ankle boot"),
        "{stdout}"
    );
}
