//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> u8 {
    eprintln!("harness: 'test_cmd' is not implemented yet");
    2
}
