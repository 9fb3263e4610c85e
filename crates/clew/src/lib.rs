//! clew: a background-job system with qless semantics.
//!
//! This crate is the `clew` binary and the Rust library facade:
//! * [`client`]: [`Client`] (from `clew-client`), one API over a local store
//!   (`sqlite:PATH`) or a remote `clew server` (`http://HOST:PORT`).
//! * [`config_toml`]: the `--config` file of `clew server` and `clew work`.
//! * [`table`]: the small aligned-column printer the command line uses.

#![deny(missing_docs)]

pub use clew_client::client;
pub mod config_toml;
pub mod table;

pub use clew_client::{Client, EventView, JobView};
