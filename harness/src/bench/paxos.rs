//! (placeholder until its issue lands)

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> u8 {
    eprintln!("harness: 'bench paxos' is not implemented yet");
    2
}
