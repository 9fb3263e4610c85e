//! clew-client: [`Client`], one API over a local store (`sqlite:PATH`) or a
//! remote `clew server` (`http://HOST:PORT`), and [`client::qless_args`],
//! which writes any typed command in qless-core's string form. The `clew`
//! crate re-exports it as `clew::Client`; workers (`clew-worker`) use it to
//! reach their jobs.

#![deny(missing_docs)]

pub mod client;

pub use client::{Client, EventView, JobView};
