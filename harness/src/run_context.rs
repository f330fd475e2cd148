//! What a run shares with the tasks that act on its cluster during the main phase (the nemesis):
//! the nodes, the history, the faults shown on the progress line and the members.

use crate::cluster::Cluster;
use crate::history::History;
use crate::progress::ActiveFaults;
use std::sync::Arc;

pub struct RunContext {
    pub cluster: Arc<Cluster>,
    pub history: Arc<History>,
    /// The faults in force now, by description; the progress line shows them.
    pub active_faults: ActiveFaults,
    /// The members now (shared with the clients, which route by it).
    pub members: Arc<crate::membership::Members>,
}
