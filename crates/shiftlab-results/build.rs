// The crate itself does not call libtorch, but in a workspace build its test binaries link it
// through feature unification (shiftlab-probe's `torch` feature), so they need the rpath too.
include!("../../build-support/libtorch.rs");

fn main() {
    configure_libtorch();
}
