//! paxos-node: a replicated key-value store over Basic Paxos or Multi-Paxos.
//!
//! The protocol is a sans-I/O state machine; a thin tokio shell owns sockets, timers and the disk.
