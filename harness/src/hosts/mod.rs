//! Nodes on other machines over SSH (Jepsen's model): the hosts file ([`file`]), one multiplexed
//! OpenSSH connection per host with a deadline on every remote command ([`ssh`]), and `harness
//! hosts check` ([`check`]), which verifies every host before a run.

pub mod check;
pub mod file;
pub mod firewall;
pub mod packets;
pub mod remote;
pub mod ssh;

use crate::SetupError;

/// The port every remote node listens on for its peers.
pub const PEER_PORT: u16 = 7400;
/// The port every remote node takes clients on.
pub const CLIENT_PORT: u16 = 7401;

/// `harness hosts ...`.
#[derive(clap::Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    pub command: HostsCommand,
}

#[derive(clap::Subcommand)]
pub enum HostsCommand {
    /// Verify every host of a hosts file: reachable, user and key accepted, the node binary runs,
    /// privileges for the faults, clock offset, free ports. Exit 2 naming each problem.
    Check(check::CheckArgs),
}

pub fn run(args: HostsArgs) -> Result<u8, SetupError> {
    match args.command {
        HostsCommand::Check(a) => check::run(a),
    }
}
