// Shared by the build scripts of every package that links libtorch (included with `include!`).
// Why: tch links libtorch dynamically but sets no rpath, and the PyPI wheel has no version file
// torch-sys checks, so each linking package checks the version and embeds the library folder.

/// Expected libtorch (PyPI torch wheel) version for tch 0.24.
const EXPECTED_TORCH: &str = "2.11.0";

/// Checks `$LIBTORCH/version.py`, embeds its folder as rpath, exports the version string.
fn configure_libtorch() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; run `make setup` (scripts/setup-libtorch.sh)");
        return;
    };
    let root = std::path::PathBuf::from(root);
    let version_py = root.join("version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    let text = std::fs::read_to_string(&version_py).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run `make setup` to install libtorch from the torch=={EXPECTED_TORCH} wheel",
            version_py.display()
        )
    });
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("__version__ = '"))
        .and_then(|l| l.split('\'').next())
        .unwrap_or("unknown")
        .to_string();
    let base = version.split('+').next().unwrap_or_default();
    if base != EXPECTED_TORCH {
        panic!(
            "libtorch at {} is version {version}, tch 0.24 needs {EXPECTED_TORCH}; rerun `make setup`",
            root.display()
        );
    }
    let lib = std::fs::canonicalize(root.join("lib")).unwrap_or_else(|_| root.join("lib"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=SHIFTLAB_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=SHIFTLAB_LIBTORCH_LIB={}", lib.display());
}
