//! Harnesses shared by the integration tests: the app in-process on a fresh database
//! ([`app::Api`]) and the real binary as a child process ([`server::Server`]).
// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

pub mod app;
pub mod server;
