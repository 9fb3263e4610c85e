//! Uniqueness keys (singleton jobs): a job may carry a key, and at most one
//! *live* job of a store holds a given key.
//!
//! A job is live while it is neither `failed` nor `complete` (depends,
//! scheduled, waiting, stalled, running, and any state added later). A put
//! carrying a [`Unique`] whose key a live job other than the put's own jid
//! holds does what its [`OnConflict`] says:
//!
//! * [`OnConflict::Existing`] (the default): nothing changes; the reply is
//!   the holder's jid;
//! * [`OnConflict::Replace`]: the holder's data (and metadata, if the put
//!   gives some) are replaced, the rest of it (queue, placement, priority,
//!   tags, delay) is kept, a `replaced` history entry is written; the reply
//!   is the holder's jid. A *running* holder is refused (conflict): its
//!   handler has already read the data, so a silent replacement would be
//!   lost;
//! * [`OnConflict::Refuse`]: the put is refused (conflict), naming the key
//!   and the holder.
//!
//! A re-put of a job without a [`Unique`] keeps the job's key (like tags).
//! A job that becomes live again without asking for its key (re-put without
//! `unique`, or `unfail`) while another live job holds it still runs, but
//! drops the key, with a `unique-dropped` history entry naming the holder:
//! a job is never lost because of its key.
//!
//! The rule is enforced in [`crate::logic`] over [`crate::Tx::unique_holder`];
//! the stores also keep a unique partial index over live keys, so a bug
//! (or a path that bypassed the logic) fails loudly instead of creating a
//! second holder.

use crate::error::{Error, Result};
use crate::job::JobState;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// What a put does when another live job holds its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnConflict {
    /// Change nothing; reply with the holder's jid.
    #[default]
    Existing,
    /// Replace the holder's data (and metadata if given); reply with its jid.
    /// Refused when the holder is running.
    Replace,
    /// Refuse the put (a conflict naming the key and the holder).
    Refuse,
}

impl OnConflict {
    /// Every policy.
    pub const ALL: [OnConflict; 3] = [
        OnConflict::Existing,
        OnConflict::Replace,
        OnConflict::Refuse,
    ];

    /// `existing`, `replace` or `refuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Existing => "existing",
            OnConflict::Replace => "replace",
            OnConflict::Refuse => "refuse",
        }
    }

    /// Parses a policy name; the error names the argument and the choices.
    pub fn parse(cmd: &str, s: &str) -> Result<OnConflict> {
        OnConflict::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{cmd}(): Arg \"on-conflict\" must be existing, replace or refuse: {s:?}"
                ))
            })
    }
}

impl std::fmt::Display for OnConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A put's uniqueness key and what to do when a live job holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unique {
    /// The key (non-empty, at most [`MAX_KEY_LEN`] bytes), e.g. `search:user-42`.
    pub key: String,
    /// What to do when another live job holds the key.
    pub on_conflict: OnConflict,
}

impl Unique {
    /// A key with the default policy ([`OnConflict::Existing`]).
    pub fn new(key: impl Into<String>) -> Unique {
        Unique {
            key: key.into(),
            on_conflict: OnConflict::Existing,
        }
    }

    /// The same key with another policy.
    pub fn on_conflict(mut self, on_conflict: OnConflict) -> Unique {
        self.on_conflict = on_conflict;
        self
    }
}

/// Checks a key: non-empty, at most [`MAX_KEY_LEN`] bytes.
pub fn validate_key(cmd: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"unique\" must not be empty"
        )));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"unique\" is {} bytes long, at most {MAX_KEY_LEN} allowed",
            key.len()
        )));
    }
    Ok(())
}

/// Whether a job in `state` holds its key: it is neither failed nor complete.
pub fn holds_key(state: JobState) -> bool {
    !matches!(state, JobState::Failed | JobState::Complete)
}

/// The refusal of the put of `jid` whose key `holder` holds (the put's jid
/// comes first: a batch refusal is reported with the first jid it names).
pub(crate) fn refused(cmd: &str, jid: &str, key: &str, holder: &str) -> Error {
    Error::conflict(format!(
        "{cmd}(): unique key {key:?} of job {jid} is held by job {holder}"
    ))
}

/// The refusal of a replace whose holder is running.
pub(crate) fn running(cmd: &str, jid: &str, key: &str, holder: &str) -> Error {
    Error::conflict(format!(
        "{cmd}(): unique key {key:?} of job {jid} is held by job {holder}, which is running: \
         its data cannot be replaced"
    ))
}
