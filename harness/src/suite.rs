//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct SuiteArgs {}

pub fn run(_args: SuiteArgs) -> u8 {
    eprintln!("harness: 'suite' is not implemented yet");
    2
}
