//! clew's lifecycle event output: resque-clues compatible marshalling,
//! publishers and a cursor-tracked delivery loop.
//!
//! - [`marshal`]: turn a [`clew_core::LifecycleEvent`] into one line of text
//!   ([`JsonMarshaller`], resque-clues' exact JSON layout, and
//!   [`LogfmtMarshaller`]); implement [`Marshaller`] for your own format.
//! - [`publish`]: send lines somewhere ([`StdoutPublisher`],
//!   [`FilePublisher`], [`CompositePublisher`], [`TcpPublisher`],
//!   [`UdpPublisher`], [`HttpPublisher`]), chosen with
//!   [`publisher_from_spec`] (`stdout`, `file:PATH`, `tcp:HOST:PORT`,
//!   `udp:HOST:PORT`, `http:URL`).
//! - [`delivery`]: the [`Delivery`] loop reads the durable lifecycle log
//!   after a per-sink cursor, publishes each event in order and saves the
//!   cursor only after the sink took it (at-least-once), in its own task.

mod md5;

pub mod delivery;
pub mod marshal;
pub mod publish;

pub use delivery::{
    CursorStore, Delivery, DeliveryHandle, DeliveryOptions, DeliveryStatus, EventSource,
    FileCursorStore, MemoryCursorStore, MemorySource,
};
pub use marshal::{
    event_hash, iso8601, marshaller_from_name, JsonMarshaller, LogfmtMarshaller, Marshaller,
};
pub use publish::{
    publisher_from_spec, publisher_from_spec_with, reopen_on_sighup, CompositePublisher,
    FilePublisher, HttpOptions, HttpPublisher, PublishError, Publisher, SpecError, StdoutPublisher,
    TcpOptions, TcpPublisher, UdpPublisher,
};
