include!("../../build-support/libtorch.rs");

fn main() {
    configure_libtorch();
}
