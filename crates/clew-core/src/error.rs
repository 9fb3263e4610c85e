//! The one error type that crosses every seam.

use std::fmt;

/// What went wrong, and so which HTTP status or exit code a caller reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed or missing (HTTP 400).
    Invalid,
    /// The job, recurring job or other named thing does not exist (HTTP 404).
    NotFound,
    /// The thing exists but is in the wrong state, or held by another worker (HTTP 409).
    Conflict,
    /// The store failed (HTTP 500; details go to the log, not to the client).
    Store,
}

impl ErrorKind {
    /// A short snake_case code for API bodies, e.g. `invalid_argument`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Store => "store_error",
        }
    }
}

/// An error from the engine or a store.
///
/// The message carries qless-core's wording where qless-core has one (for
/// example `Heartbeat(): Job j1 not currently running: waiting`), so clients
/// written for qless keep matching on it. Messages about arguments name the
/// argument and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Malformed or missing input.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    /// A named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Wrong state or lock held by someone else.
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    /// The store failed.
    pub fn store(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Store, message)
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with clew's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
