//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> u8 {
    eprintln!("harness: 'bench' is not implemented yet");
    2
}

