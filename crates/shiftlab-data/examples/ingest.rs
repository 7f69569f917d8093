//! `cargo run -p shiftlab-data --example ingest -- FORMAT INPUT OUTPUT [SPLIT]`: the ingest
//! library without the full `shiftlab` binary (which links libtorch), for quick trials.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [format, input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: ingest FORMAT INPUT OUTPUT [SPLIT]".into());
    };
    let opts = shiftlab_data::IngestOptions {
        format: format.parse()?,
        input: PathBuf::from(input),
        output: PathBuf::from(output),
        split: rest.first().cloned(),
        strict: false,
        progress: true,
    };
    println!("{}", shiftlab_data::ingest(&opts)?);
    Ok(())
}
