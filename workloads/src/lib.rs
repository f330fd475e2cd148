//! Workloads: what clients do (operation generators) and what is correct (sequential models the
//! checker searches with). `register` is one key; `kv` is many independent keys.
