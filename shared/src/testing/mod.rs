//! Conformance suites that every `Store` and `Bus` implementation must pass: the in-memory twins
//! run them as unit tests, the Redis implementations against a real `redis-server` in the
//! integration tests. Behind the `testing` feature (and `cfg(test)`).

pub mod bus_conformance;
pub mod delivery;
pub mod fuzz;
pub mod store_conformance;
