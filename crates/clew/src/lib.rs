//! clew: a background-job system with qless semantics.
//!
//! This crate is the `clew` binary and the Rust client library:
//! * [`client`]: [`Client`], one API over a local store (`sqlite:PATH`) or a
//!   remote `clew server` (`http://HOST:PORT`), and [`client::qless_args`],
//!   which writes any typed command in qless-core's string form.
//! * [`table`]: the small aligned-column printer the command line uses.

#![deny(missing_docs)]

pub mod client;
pub mod table;

pub use client::{Client, EventView, JobView};
