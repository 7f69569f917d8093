include!("../../build-support/libtorch.rs");

fn main() {
    // Only the `torch` feature links libtorch; the metric math must build without it.
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
        configure_libtorch();
    }
}
