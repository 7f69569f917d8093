//! `cargo run -p shiftlab-data --example ingest -- FORMAT INPUT OUTPUT [SPLIT]`: the ingest
//! library without the full `shiftlab` binary (which links libtorch), for quick trials. INPUT
//! may be `NAME=PATH`, and several separated by commas.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [format, input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: ingest FORMAT INPUT OUTPUT [SPLIT]".into());
    };
    let mut opts = shiftlab_data::IngestOptions::new(format.parse()?, "", output);
    opts.inputs = input.split(',').map(str::parse).collect::<Result<_, _>>()?;
    opts.split = rest.first().cloned();
    opts.progress = true;
    println!("{}", shiftlab_data::ingest(&opts)?);
    Ok(())
}
