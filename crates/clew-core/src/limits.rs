//! Size and character limits on what a command may carry: one place, so
//! the qless string form, the REST API, the CLI, the typed API and both
//! stores accept and refuse the same things (SQLite would store a NUL in a
//! name that PostgreSQL refuses; checked here first, neither sees it).
//!
//! [`crate::logic::validate`] applies them to every command before it
//! reaches a store, through [`check`]. A refusal is an
//! [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) error (HTTP 400, CLI
//! exit 1) naming the command, the argument, the limit and the value's
//! length, e.g. `Put(): Arg "queue" is 300 bytes long, at most 255 allowed`.
//!
//! | what | limit |
//! | --- | --- |
//! | names: queue, jid, klass, worker, group, throttle, batch id, config key, tag | at most [`MAX_NAME_BYTES`] bytes, no control character ([`is_forbidden_in_name`]) |
//! | tags of one job or recurring job | at most [`MAX_TAGS`] |
//! | data (job data, heartbeat/complete/fail data, metadata) | at most [`MAX_DATA_BYTES`] bytes of JSON text |
//! | free text (failure message, log message, config value, batch description) | at most [`MAX_DATA_BYTES`] bytes, no NUL |

use serde_json::{Map, Value};

use crate::batch::BatchParams;
use crate::command::{Command, CompleteParams, DependsChange, PutParams, RecurParams};
use crate::error::{Error, Result};

/// The longest name (queue, jid, klass, worker, group, throttle, batch id,
/// config key, tag), in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 255;

/// The most tags one job (or recurring job) may carry.
pub const MAX_TAGS: usize = 64;

/// The largest data (the JSON text of job data or metadata) and the
/// longest free text (failure or log message), in bytes.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Whether `c` is refused in a name: the Unicode control characters (C0
/// U+0000..U+001F, DEL U+007F, C1 U+0080..U+009F). Everything else is
/// allowed (spaces, punctuation, any other Unicode), so qless jids (UUID
/// hex) and user jids such as `order-123` or `mail:42/retry` are fine.
pub fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
}

/// Checks one name: at most [`MAX_NAME_BYTES`] bytes, no control character.
/// (Whether it may be empty is the caller's rule.)
pub fn name(cmd: &str, arg: &str, v: &str) -> Result<()> {
    if v.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" is {} bytes long, at most {MAX_NAME_BYTES} allowed",
            v.len()
        )));
    }
    // ASCII without C0 controls or DEL (jids, queue and worker names): no
    // character needs decoding.
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if let Some((i, c)) = v.char_indices().find(|(_, c)| is_forbidden_in_name(*c)) {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" must not contain control characters: U+{:04X} at byte {i}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Checks every name of a list (the argument named `arg`).
pub fn names(cmd: &str, arg: &str, vs: &[String]) -> Result<()> {
    vs.iter().try_for_each(|v| name(cmd, arg, v))
}

/// Checks a job's tags: at most [`MAX_TAGS`], each a valid name.
pub fn tags(cmd: &str, vs: &[String]) -> Result<()> {
    capped_names(cmd, "tags", vs)
}

/// Checks a list of names (tags, throttles): at most [`MAX_TAGS`] of them,
/// each a valid name.
fn capped_names(cmd: &str, arg: &str, vs: &[String]) -> Result<()> {
    if vs.len() > MAX_TAGS {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" has {} {arg}, at most {MAX_TAGS} allowed",
            vs.len()
        )));
    }
    names(cmd, arg, vs)
}

/// Checks the size of data (JSON text).
pub fn data(cmd: &str, arg: &str, v: &str) -> Result<()> {
    if v.len() > MAX_DATA_BYTES {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" is {} bytes long, at most {MAX_DATA_BYTES} allowed",
            v.len()
        )));
    }
    Ok(())
}

/// Checks the size of a JSON object (metadata) as JSON text.
pub fn object(cmd: &str, arg: &str, v: &Map<String, Value>) -> Result<()> {
    if v.is_empty() {
        return Ok(());
    }
    // Counted as it is written, without building the text (a put's
    // metadata is checked on every put).
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let len = match serde_json::to_writer(&mut count, v) {
        Ok(()) => count.0,
        Err(_) => 0,
    };
    if len > MAX_DATA_BYTES {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" is {len} bytes long as JSON, at most {MAX_DATA_BYTES} allowed"
        )));
    }
    Ok(())
}

/// Checks free text: at most [`MAX_DATA_BYTES`] bytes, no NUL (newlines,
/// tabs and other characters are kept as given).
pub fn text(cmd: &str, arg: &str, v: &str) -> Result<()> {
    data(cmd, arg, v)?;
    if let Some(i) = v.find('\0') {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{arg}\" must not contain NUL (U+0000): at byte {i}"
        )));
    }
    Ok(())
}

fn opt_name(cmd: &str, arg: &str, v: Option<&String>) -> Result<()> {
    v.map_or(Ok(()), |v| name(cmd, arg, v))
}

/// The limits of a put (also each job of a batch).
pub fn put(cmd: &str, p: &PutParams) -> Result<()> {
    name(cmd, "worker", &p.worker)?;
    name(cmd, "queue", &p.queue)?;
    name(cmd, "jid", &p.jid)?;
    name(cmd, "klass", &p.klass)?;
    opt_name(cmd, "batch", p.batch.as_ref())?;
    data(cmd, "data", &p.data)?;
    if let Some(t) = &p.tags {
        tags(cmd, t)?;
    }
    if let Some(d) = &p.depends {
        names(cmd, "depends", d)?;
    }
    if let Some(t) = &p.throttles {
        capped_names(cmd, "throttles", t)?;
    }
    if let Some(u) = &p.unique {
        if u.key.contains('\0') {
            return Err(Error::invalid(format!(
                "{cmd}(): Arg \"unique\" must not contain NUL (U+0000)"
            )));
        }
    }
    if let Some(m) = &p.metadata {
        object(cmd, "metadata", m)?;
    }
    Ok(())
}

fn complete(p: &CompleteParams) -> Result<()> {
    const C: &str = "Complete";
    name(C, "jid", &p.jid)?;
    name(C, "worker", &p.worker)?;
    name(C, "queue", &p.queue)?;
    opt_name(C, "next", p.next.as_ref())?;
    names(C, "depends", &p.depends)?;
    data(C, "data", &p.data)?;
    if let Some(m) = &p.metadata {
        object(C, "metadata", m)?;
    }
    Ok(())
}

fn recur(p: &RecurParams) -> Result<()> {
    const C: &str = "Recur";
    name(C, "queue", &p.queue)?;
    name(C, "jid", &p.jid)?;
    name(C, "klass", &p.klass)?;
    data(C, "data", &p.data)?;
    tags(C, &p.tags)?;
    if let Some(t) = &p.timezone {
        name(C, "timezone", t)?;
    }
    if let Some(c) = &p.cron {
        name(C, "cron", c)?;
    }
    Ok(())
}

fn batch_create(p: &BatchParams) -> Result<()> {
    const C: &str = "Batch.create";
    name(C, "id", &p.id)?;
    text(C, "description", &p.spec.description)?;
    object(C, "metadata", &p.spec.metadata)?;
    // Each job is checked as a put by `batches::validate_create`.
    if let Some(cb) = &p.spec.callback {
        name(C, "callback.queue", &cb.queue)?;
        name(C, "callback.klass", &cb.klass)?;
        name(C, "callback.jid", &cb.jid)?;
        object(C, "callback.data", &cb.data)?;
        tags(C, &cb.tags)?;
    }
    Ok(())
}

/// Checks the limits of every name, tag list, data and text `command`
/// carries. A batch's inner commands are checked when each runs.
pub fn check(command: &Command) -> Result<()> {
    match command {
        Command::Batch { .. } | Command::BatchList { .. } | Command::JobsComplete { .. } => {}
        Command::BatchCreate(p) => batch_create(p)?,
        Command::BatchGet { id } | Command::BatchJobs { id, .. } | Command::BatchCancel { id } => {
            name("Batch", "id", id)?
        }
        Command::Cancel { jids } => names("Cancel", "jid", jids)?,
        Command::Complete(p) => complete(p)?,
        Command::ConfigGet { key } => opt_name("Config.get", "key", key.as_ref())?,
        Command::ConfigSet { key, value } => {
            name("Config.set", "key", key)?;
            text("Config.set", "value", value)?;
        }
        Command::ConfigUnset { key } => name("Config.unset", "key", key)?,
        Command::Depends { jid, change } => {
            name("Depends", "jid", jid)?;
            match change {
                DependsChange::On(j) | DependsChange::Off(j) => names("Depends", "jid", j)?,
                DependsChange::OffAll => {}
            }
        }
        Command::Fail {
            jid,
            worker,
            group,
            message,
            data: d,
            metadata,
        } => {
            const C: &str = "Fail";
            name(C, "jid", jid)?;
            name(C, "worker", worker)?;
            name(C, "group", group)?;
            text(C, "message", message)?;
            if let Some(d) = d {
                data(C, "data", d)?;
            }
            if let Some(m) = metadata {
                object(C, "metadata", m)?;
            }
        }
        Command::Failed { group, .. } => opt_name("Failed", "group", group.as_ref())?,
        Command::Get { jid } => name("Get", "jid", jid)?,
        Command::Heartbeat {
            jid,
            worker,
            data: d,
        } => {
            name("Heartbeat", "jid", jid)?;
            name("Heartbeat", "worker", worker)?;
            if let Some(d) = d {
                data("Heartbeat", "data", d)?;
            }
        }
        Command::Jobs { queue, .. } => name("Jobs", "queue", queue)?,
        Command::Length { queue } => name("Length", "queue", queue)?,
        Command::Log {
            jid,
            message,
            data: d,
        } => {
            name("Log", "jid", jid)?;
            text("Log", "message", message)?;
            if let Some(d) = d {
                object("Log", "data", d)?;
            }
        }
        Command::MultiGet { jids } => names("MultiGet", "jid", jids)?,
        Command::Pause { queues } => names("Pause", "queue", queues)?,
        Command::Peek { queue, .. } => name("Peek", "queue", queue)?,
        Command::Pop { queue, worker, .. } => {
            name("Pop", "queue", queue)?;
            name("Pop", "worker", worker)?;
        }
        Command::Priority { jid, .. } => name("Priority", "jid", jid)?,
        Command::Put(p) => put(if p.must_exist { "Requeue" } else { "Put" }, p)?,
        Command::Queues { queue } => opt_name("Queues", "queue", queue.as_ref())?,
        Command::QueueForget { queues } => names("Queue.forget", "queue", queues)?,
        Command::Recur(p) => recur(p)?,
        Command::RecurGet { jid } => name("Recur.get", "jid", jid)?,
        Command::RecurTag { jid, tags: t } => {
            name("Recur.tag", "jid", jid)?;
            tags("Recur.tag", t)?;
        }
        Command::RecurUntag { jid, tags: t } => {
            name("Recur.untag", "jid", jid)?;
            names("Recur.untag", "tags", t)?;
        }
        Command::RecurUpdate { jid, update } => {
            const C: &str = "Recur.update";
            name(C, "jid", jid)?;
            opt_name(C, "klass", update.klass.as_ref())?;
            opt_name(C, "queue", update.queue.as_ref())?;
            opt_name(C, "cron", update.cron.as_ref())?;
            opt_name(C, "timezone", update.timezone.as_ref())?;
            if let Some(d) = &update.data {
                data(C, "data", d)?;
            }
        }
        Command::Release { jid, worker } => {
            name("Release", "jid", jid)?;
            name("Release", "worker", worker)?;
        }
        Command::Retry {
            jid,
            queue,
            worker,
            group,
            message,
            ..
        } => {
            name("Retry", "jid", jid)?;
            name("Retry", "queue", queue)?;
            name("Retry", "worker", worker)?;
            opt_name("Retry", "group", group.as_ref())?;
            if let Some(m) = message {
                text("Retry", "message", m)?;
            }
        }
        Command::Stats { queue, .. } => name("Stats", "queue", queue)?,
        Command::TagAdd { jid, tags: t } => {
            name("Tag", "jid", jid)?;
            tags("Tag", t)?;
        }
        Command::TagGet { tag, .. } => name("Tag", "tag", tag)?,
        Command::TagRemove { jid, tags: t } => {
            name("Tag", "jid", jid)?;
            names("Tag", "tags", t)?;
        }
        Command::TagTop { .. } | Command::Tracked | Command::ThrottleList => {}
        Command::Timeout { jids } => names("Timeout", "jid", jids)?,
        Command::Track { jid } => name("Track", "jid", jid)?,
        Command::Untrack { jid } => name("Untrack", "jid", jid)?,
        Command::Unfail { queue, group, .. } => {
            name("Unfail", "queue", queue)?;
            name("Unfail", "group", group)?;
        }
        Command::Unpause { queues } => names("Unpause", "queue", queues)?,
        Command::UniqueGet { key } => {
            if key.contains('\0') {
                return Err(Error::invalid(
                    "Unique.get(): Arg \"unique\" must not contain NUL (U+0000)",
                ));
            }
        }
        Command::Unrecur { jid } => name("Unrecur", "jid", jid)?,
        Command::ThrottleSet { name: n, .. } => name("Throttle.set", "name", n)?,
        Command::ThrottleGet { name: n } => name("Throttle.get", "name", n)?,
        Command::ThrottleDelete { name: n } => name("Throttle.delete", "name", n)?,
        Command::WorkerDeregister { workers } => names("Workers.deregister", "worker", workers)?,
        Command::Workers { worker, .. } => opt_name("Workers", "worker", worker.as_ref())?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_255_bytes_and_no_control_characters() {
        assert!(name("Put", "queue", &"q".repeat(255)).is_ok());
        let e = name("Put", "queue", &"q".repeat(256)).unwrap_err();
        assert_eq!(
            e.message(),
            "Put(): Arg \"queue\" is 256 bytes long, at most 255 allowed"
        );
        // Multi-byte characters count in bytes.
        assert!(name("Put", "jid", &"é".repeat(128)).is_err());
        for ok in [
            "order-123",
            "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
            "mail:42/retry",
            "a b",
            "ünïcödé",
        ] {
            assert!(name("Put", "jid", ok).is_ok(), "{ok}");
        }
        for (bad, cp) in [
            ("a\0b", "U+0000"),
            ("a\nb", "U+000A"),
            ("\tx", "U+0009"),
            ("x\u{7f}", "U+007F"),
            ("x\u{85}", "U+0085"),
        ] {
            let e = name("Put", "jid", bad).unwrap_err();
            assert!(e.message().contains(cp), "{bad:?}: {}", e.message());
            assert!(e.message().contains("\"jid\""), "{}", e.message());
        }
    }

    #[test]
    fn tags_data_and_text() {
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let e = tags("Put", &many).unwrap_err();
        assert_eq!(
            e.message(),
            "Put(): Arg \"tags\" has 65 tags, at most 64 allowed"
        );
        assert!(tags("Put", &many[..MAX_TAGS]).is_ok());
        assert!(tags("Put", &["x".repeat(256)]).is_err());
        assert!(data("Put", "data", &"x".repeat(MAX_DATA_BYTES)).is_ok());
        let e = data("Put", "data", &"x".repeat(MAX_DATA_BYTES + 1)).unwrap_err();
        assert!(e.message().contains("1048577 bytes"), "{}", e.message());
        assert!(text("Fail", "message", "line 1\nline 2\t\u{1b}[31m").is_ok());
        assert!(text("Fail", "message", "a\0").is_err());
    }

    #[test]
    fn every_name_of_a_command_is_checked() {
        let long = "x".repeat(300);
        let mut p = PutParams::new("q", "K");
        p.jid = "j".into();
        assert!(check(&Command::Put(p.clone())).is_ok());
        for field in ["worker", "queue", "jid", "klass", "batch"] {
            let mut bad = p.clone();
            match field {
                "worker" => bad.worker = long.clone(),
                "queue" => bad.queue = long.clone(),
                "jid" => bad.jid = long.clone(),
                "klass" => bad.klass = long.clone(),
                _ => bad.batch = Some(long.clone()),
            }
            let e = check(&Command::Put(bad)).unwrap_err();
            assert!(
                e.message().contains(&format!("\"{field}\" is 300 bytes")),
                "{field}: {}",
                e.message()
            );
        }
        let e = check(&Command::Cancel {
            jids: vec!["ok".into(), "a\0".into()],
        })
        .unwrap_err();
        assert!(e.message().starts_with("Cancel(): Arg \"jid\""));
        assert!(check(&Command::Get { jid: long.clone() }).is_err());
        assert!(check(&Command::ThrottleSet {
            name: long,
            max: 1,
            rate: None
        })
        .is_err());
    }
}
