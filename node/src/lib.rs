//! paxos-node: a replicated key-value store over Basic Paxos or Multi-Paxos.
//!
//! The protocol is a sans-I/O state machine ([`core::Core`]: messages and ticks in; messages,
//! storage writes and client replies out); a thin tokio shell ([`shell`]) owns sockets, timers
//! and the disk. The node speaks only the node contract (docs/node-contract.md).

pub mod core;
pub mod kv;
pub mod protocol;
pub mod shell;
pub mod storage;
