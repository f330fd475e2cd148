//! paxos-node: a replicated key-value store over Basic Paxos or Multi-Paxos, speaking only the
//! node contract (docs/node-contract.md).
//!
//! The protocol is a sans-I/O state machine, [`core::Core`]: ticks, peer messages and client
//! operations in; a [`core::Ready`] per batch of inputs out, which says which peer messages and
//! client replies may leave now and which wait until the batch's acceptor records are durable.
//! A thin tokio shell ([`shell`]) owns sockets, timers and the disk ([`storage`]).
//!
//! Modules: [`core`] (the protocol, by role), [`protocol`] (ballots, slots, peer messages),
//! [`kv`] (the state machine: operations, commands, results), [`durable`] (the WAL record and
//! snapshot types on disk), [`storage`] (the data directory), [`shell`] (the process).

pub mod core;
pub mod durable;
pub mod kv;
pub mod protocol;
pub mod shell;
pub mod storage;
