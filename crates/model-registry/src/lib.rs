//! The `model-registry` server: CLI -> config -> datastore (embedmd) -> HTTP; and the commands that
//! move a whole registry between databases (transfer).

pub mod app;
pub mod artifacts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod transfer;

pub use app::App;
pub use config::ServerConfig;
