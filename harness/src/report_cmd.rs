//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct ReportArgs {}

pub fn run_report(_args: ReportArgs) -> u8 {
    eprintln!("harness: 'report_cmd' is not implemented yet");
    2
}

#[derive(clap::Args)]
pub struct CompareArgs {}

pub fn run_compare(_args: CompareArgs) -> u8 {
    eprintln!("harness: 'report_cmd' is not implemented yet");
    2
}
