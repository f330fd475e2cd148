//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct CheckArgs {}

pub fn run_check(_args: CheckArgs) -> u8 {
    eprintln!("harness: 'check_cmd' is not implemented yet");
    2
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {}

pub fn run_analyze(_args: AnalyzeArgs) -> u8 {
    eprintln!("harness: 'check_cmd' is not implemented yet");
    2
}
