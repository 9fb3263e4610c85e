//! qless-core's string calling convention: `parse(command, args)` turns a
//! command name and its string arguments (everything after `now`) into a
//! typed [`Command`], with qless-core's argument order, optional
//! `name value` pairs, and error wording (see `docs/qless-compat.md`).

use serde_json::{Map, Value};

use crate::command::{
    Command, CompleteParams, DependsChange, JobsListing, PutParams, RecurParams, RecurUpdate,
};
use crate::cron::Missed;
use crate::error::{Error, Result};
use crate::time::Timestamp;
use crate::unique::{OnConflict, Unique};

/// The 37 qless-core command names.
pub const COMMANDS: [&str; 37] = [
    "get",
    "multiget",
    "config.get",
    "config.set",
    "config.unset",
    "queues",
    "complete",
    "failed",
    "fail",
    "jobs",
    "retry",
    "depends",
    "heartbeat",
    "workers",
    "track",
    "tag",
    "stats",
    "priority",
    "log",
    "peek",
    "pop",
    "pause",
    "unpause",
    "cancel",
    "timeout",
    "put",
    "requeue",
    "unfail",
    "recur",
    "unrecur",
    "recur.get",
    "recur.update",
    "recur.tag",
    "recur.untag",
    "length",
    "worker.deregister",
    "queue.forget",
];

/// Commands clew adds to qless-core's set (same calling convention).
pub const EXTENSIONS: [&str; 13] = [
    "batch",
    "batch.create",
    "batch.get",
    "batch.list",
    "batch.jobs",
    "batch.cancel",
    "release",
    "workers.detail",
    "unique.get",
    "throttle.set",
    "throttle.get",
    "throttle.delete",
    "throttle.list",
];

/// Default page size of listings (`jobs`, `tag get`, `failed`, ...).
pub const DEFAULT_PAGE: i64 = 25;

/// Reads positional string arguments for one command, producing errors
/// that name the command and the argument.
struct Args<'a> {
    cmd: &'static str,
    args: &'a [String],
    pos: usize,
}

impl<'a> Args<'a> {
    fn new(cmd: &'static str, args: &'a [String]) -> Args<'a> {
        Args { cmd, args, pos: 0 }
    }

    fn next(&mut self) -> Option<&'a str> {
        let v = self.args.get(self.pos).map(String::as_str);
        if v.is_some() {
            self.pos += 1;
        }
        v
    }

    fn missing(&self, name: &str) -> Error {
        Error::invalid(format!("{}(): Arg \"{name}\" missing", self.cmd))
    }

    /// A required, non-empty name (jid, queue, worker, ...).
    fn name(&mut self, name: &str) -> Result<String> {
        match self.next() {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(self.missing(name)),
        }
    }

    /// A required string that may be empty (a message).
    fn text(&mut self, name: &str) -> Result<String> {
        self.next()
            .map(str::to_owned)
            .ok_or_else(|| self.missing(name))
    }

    fn number(&mut self, name: &str) -> Result<f64> {
        let v = self.next().ok_or_else(|| self.missing(name))?;
        number(self.cmd, name, v)
    }

    fn int(&mut self, name: &str) -> Result<i64> {
        let v = self.next().ok_or_else(|| self.missing(name))?;
        int(self.cmd, name, v)
    }

    fn opt_int(&mut self, name: &str, default: i64) -> Result<i64> {
        match self.next() {
            None => Ok(default),
            Some(v) => int(self.cmd, name, v),
        }
    }

    fn json_text(&mut self, name: &str) -> Result<String> {
        let v = self.next().ok_or_else(|| self.missing(name))?;
        json_text(self.cmd, name, v)
    }

    fn rest(&mut self) -> Vec<String> {
        let out = self.args[self.pos.min(self.args.len())..].to_vec();
        self.pos = self.args.len();
        out
    }

    /// Remaining arguments as `name value` pairs, checked against `known`.
    fn pairs(&mut self, known: &[&str]) -> Result<Vec<(String, String)>> {
        let rest = self.rest();
        if rest.len() % 2 == 1 {
            return Err(Error::invalid(format!(
                "{}(): Odd number of optional arguments",
                self.cmd
            )));
        }
        let mut out = Vec::new();
        for pair in rest.chunks(2) {
            if !known.contains(&pair[0].as_str()) {
                return Err(Error::invalid(format!(
                    "{}(): Unknown option \"{}\" (expected one of {})",
                    self.cmd,
                    pair[0],
                    known.join(", ")
                )));
            }
            out.push((pair[0].clone(), pair[1].clone()));
        }
        Ok(out)
    }

    fn done(&self) -> Result<()> {
        if self.pos < self.args.len() {
            return Err(Error::invalid(format!(
                "{}(): Too many arguments: expected {}, got {}",
                self.cmd,
                self.pos,
                self.args.len()
            )));
        }
        Ok(())
    }
}

/// Parses a finite number argument.
pub fn number(cmd: &str, name: &str, v: &str) -> Result<f64> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not a number: {v}"
        ))),
    }
}

/// Parses an integer argument (a number with no fractional part).
pub fn int(cmd: &str, name: &str, v: &str) -> Result<i64> {
    let n = number(cmd, name, v)?;
    if n.fract() != 0.0 || n.abs() > 9.0e15 {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not an integer: {v}"
        )));
    }
    Ok(n as i64)
}

/// Checks that an argument is JSON; returns it verbatim.
pub fn json_text(cmd: &str, name: &str, v: &str) -> Result<String> {
    match serde_json::from_str::<Value>(v) {
        Ok(_) => Ok(v.to_owned()),
        Err(_) => Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not JSON: {v}"
        ))),
    }
}

/// Parses a JSON object argument (metadata).
pub fn json_object(cmd: &str, name: &str, v: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(v) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not a JSON object: {v}"
        ))),
        Err(_) => Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not JSON: {v}"
        ))),
    }
}

/// Parses a JSON array of strings (tags, depends).
pub fn string_list(cmd: &str, name: &str, v: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not a JSON array of strings: {v}"
        ))
    };
    match serde_json::from_str::<Value>(v) {
        Err(_) => Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" not JSON: {v}"
        ))),
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        // cjson encodes an empty list as `{}`; accept it from qless clients.
        Ok(Value::Object(m)) if m.is_empty() => Ok(Vec::new()),
        _ => Err(bad()),
    }
}

fn non_negative(cmd: &str, name: &str, v: f64) -> Result<f64> {
    if v < 0.0 {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" must not be negative: {v}"
        )));
    }
    Ok(v)
}

/// `batch atomic|each [NAME, ARG...] ...` (a clew extension): each further
/// argument is one command as a JSON array of strings.
fn parse_batch(args: &[String]) -> Result<Command> {
    let atomic = match args.first().map(String::as_str) {
        Some("atomic") => true,
        Some("each") => false,
        Some(other) => {
            return Err(Error::invalid(format!(
                "Batch(): Arg \"mode\" must be atomic or each, got {other:?}"
            )))
        }
        None => return Err(Error::invalid("Batch(): Arg \"mode\" missing")),
    };
    let mut commands = Vec::with_capacity(args.len().saturating_sub(1));
    for (i, arg) in args.iter().enumerate().skip(1) {
        let parts: Vec<String> = serde_json::from_str(arg).map_err(|e| {
            Error::invalid(format!(
                "Batch(): command {i} must be a JSON array of strings: {e}"
            ))
        })?;
        let (name, rest) = parts
            .split_first()
            .ok_or_else(|| Error::invalid(format!("Batch(): command {i} is empty")))?;
        commands.push(
            parse(name, rest).map_err(|e| {
                Error::new(e.kind(), format!("Batch(): command {i}: {}", e.message()))
            })?,
        );
    }
    Ok(Command::Batch { commands, atomic })
}

/// `batch.create ID SPEC ["put", WORKER, QUEUE, JID, ...] ...` (a clew
/// extension): `SPEC` is a JSON object `{description, metadata, callback:
/// {queue, klass, jid, data, priority, tags, retries}}` (every key
/// optional); each further argument is one `put` as a JSON array of strings.
fn parse_batch_create(args: &[String]) -> Result<Command> {
    const C: &str = "Batch.create";
    let mut a = Args::new(C, args);
    let id = a.name("id")?;
    let spec_text = a.next().ok_or_else(|| a.missing("spec"))?;
    let spec: crate::batch::BatchSpec = serde_json::from_str(spec_text)
        .map_err(|e| Error::invalid(format!("{C}(): Arg \"spec\" not a batch spec: {e}")))?;
    let mut jobs = Vec::new();
    for (i, arg) in a.rest().iter().enumerate() {
        let parts: Vec<String> = serde_json::from_str(arg).map_err(|e| {
            Error::invalid(format!(
                "{C}(): job {i} must be a JSON array of strings: {e}"
            ))
        })?;
        match parts.split_first() {
            Some((name, rest)) if name == "put" => match parse_put("Put", rest, false)? {
                Command::Put(p) => jobs.push(p),
                _ => unreachable!("parse_put returns a put"),
            },
            _ => {
                return Err(Error::invalid(format!(
                    "{C}(): job {i} must be a put: [\"put\", worker, queue, jid, klass, data, delay, ...]"
                )))
            }
        }
    }
    Ok(Command::BatchCreate(crate::batch::BatchParams {
        id,
        spec,
        jobs,
    }))
}

/// Turns a qless-core command name and its string arguments into a
/// [`Command`].
pub fn parse(command: &str, args: &[String]) -> Result<Command> {
    match command {
        "" => Err(Error::invalid("Must provide a command")),
        "put" => parse_put("Put", args, false),
        "batch" => parse_batch(args),
        "batch.create" => parse_batch_create(args),
        "batch.get" | "batch.cancel" => {
            let c = if command == "batch.get" {
                "Batch.get"
            } else {
                "Batch.cancel"
            };
            let mut a = Args::new(c, args);
            let id = a.name("id")?;
            a.done()?;
            if command == "batch.get" {
                Ok(Command::BatchGet { id })
            } else {
                Ok(Command::BatchCancel { id })
            }
        }
        "batch.list" => {
            let mut a = Args::new("Batch.list", args);
            let offset = a.opt_int("offset", 0)?.max(0);
            let count = a.opt_int("count", DEFAULT_PAGE)?.max(0);
            a.done()?;
            Ok(Command::BatchList { offset, count })
        }
        "batch.jobs" => {
            let mut a = Args::new("Batch.jobs", args);
            let id = a.name("id")?;
            let offset = a.opt_int("offset", 0)?.max(0);
            let count = a.opt_int("count", DEFAULT_PAGE)?.max(0);
            a.done()?;
            Ok(Command::BatchJobs { id, offset, count })
        }
        "requeue" => parse_put("Requeue", args, true),
        "pop" => {
            let mut a = Args::new("Pop", args);
            let queue = a.name("queue")?;
            let worker = a.name("worker")?;
            let count = a.int("count")?;
            a.done()?;
            Ok(Command::Pop {
                queue,
                worker,
                count: count.max(0),
            })
        }
        "peek" => {
            let mut a = Args::new("Peek", args);
            let queue = a.name("queue")?;
            let count = a.int("count")?;
            a.done()?;
            Ok(Command::Peek {
                queue,
                count: count.max(0),
            })
        }
        "heartbeat" => {
            let mut a = Args::new("Heartbeat", args);
            let jid = a.name("jid")?;
            let worker = a.name("worker")?;
            let data = match a.next() {
                Some(d) => Some(json_text("Heartbeat", "data", d)?),
                None => None,
            };
            a.done()?;
            Ok(Command::Heartbeat { jid, worker, data })
        }
        "complete" => {
            let mut a = Args::new("Complete", args);
            let jid = a.name("jid")?;
            let worker = a.name("worker")?;
            let queue = a.name("queue")?;
            let data = a.json_text("data")?;
            let mut p = CompleteParams {
                jid,
                worker,
                queue,
                data,
                next: None,
                delay: 0.0,
                depends: Vec::new(),
                metadata: None,
            };
            let mut has_delay_or_depends = false;
            for (k, v) in a.pairs(&["next", "delay", "depends", "metadata"])? {
                match k.as_str() {
                    "metadata" => p.metadata = Some(json_object("Complete", "metadata", &v)?),
                    "next" => {
                        if v.is_empty() {
                            return Err(Error::invalid("Complete(): Arg \"next\" missing"));
                        }
                        p.next = Some(v)
                    }
                    "delay" => {
                        has_delay_or_depends = true;
                        p.delay =
                            non_negative("Complete", "delay", number("Complete", "delay", &v)?)?;
                    }
                    _ => {
                        has_delay_or_depends = true;
                        p.depends = string_list("Complete", "depends", &v)?;
                    }
                }
            }
            if has_delay_or_depends && p.next.is_none() {
                return Err(Error::invalid(
                    "Complete(): \"delay\" and \"depends\" can only be used with \"next\"",
                ));
            }
            Ok(Command::Complete(p))
        }
        "fail" => {
            let mut a = Args::new("Fail", args);
            let jid = a.name("jid")?;
            let worker = a.name("worker")?;
            let group = a.name("group")?;
            let message = a.text("message")?;
            // An empty data argument keeps the job's data (so metadata can
            // follow without new data).
            let data = match a.next() {
                Some("") | None => None,
                Some(d) => Some(json_text("Fail", "data", d)?),
            };
            let metadata = match a.next() {
                Some(m) => Some(json_object("Fail", "metadata", m)?),
                None => None,
            };
            a.done()?;
            Ok(Command::Fail {
                jid,
                worker,
                group,
                message,
                data,
                metadata,
            })
        }
        "throttle.set" => {
            let mut a = Args::new("Throttle.set", args);
            let name = a.name("name")?;
            let max = a.int("max")?;
            // Optional `rate N PERIOD` (N starts per PERIOD seconds).
            let rate = match a.next() {
                None => None,
                Some("rate") => Some(crate::throttle::ThrottleRate {
                    limit: a.int("rate")?,
                    period: a.int("period")?,
                }),
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "Throttle.set(): Unknown option \"{other}\" (expected rate)"
                    )))
                }
            };
            a.done()?;
            Ok(Command::ThrottleSet { name, max, rate })
        }
        "throttle.get" | "throttle.delete" => {
            let cmd = if command == "throttle.get" {
                "Throttle.get"
            } else {
                "Throttle.delete"
            };
            let mut a = Args::new(cmd, args);
            let name = a.name("name")?;
            a.done()?;
            Ok(if command == "throttle.get" {
                Command::ThrottleGet { name }
            } else {
                Command::ThrottleDelete { name }
            })
        }
        "throttle.list" => {
            Args::new("Throttle.list", args).done()?;
            Ok(Command::ThrottleList)
        }
        "release" => {
            let mut a = Args::new("Release", args);
            let jid = a.name("jid")?;
            let worker = a.name("worker")?;
            a.done()?;
            Ok(Command::Release { jid, worker })
        }
        "retry" => {
            let mut a = Args::new("Retry", args);
            let jid = a.name("jid")?;
            let queue = a.name("queue")?;
            let worker = a.name("worker")?;
            let delay = match a.next() {
                Some(d) => non_negative("Retry", "delay", number("Retry", "delay", d)?)?,
                None => 0.0,
            };
            // An empty group means "none" (so a message can be given
            // without a group).
            let group = a.next().filter(|g| !g.is_empty()).map(str::to_owned);
            let message = a.next().map(str::to_owned);
            a.done()?;
            Ok(Command::Retry {
                jid,
                queue,
                worker,
                delay,
                group,
                message,
            })
        }
        "cancel" => Ok(Command::Cancel {
            jids: nonempty_list("Cancel", "jid", args)?,
        }),
        "depends" => {
            let mut a = Args::new("Depends", args);
            let jid = a.name("jid")?;
            let sub = a.next().unwrap_or("");
            let rest = a.rest();
            let change = match sub {
                "on" => DependsChange::On(rest),
                "off" if rest.len() == 1 && rest[0] == "all" => DependsChange::OffAll,
                "off" => DependsChange::Off(rest),
                _ => {
                    return Err(Error::invalid(
                        "Depends(): Argument \"command\" must be \"on\" or \"off\"",
                    ))
                }
            };
            Ok(Command::Depends { jid, change })
        }
        "priority" => {
            let mut a = Args::new("Priority", args);
            let jid = a.name("jid")?;
            let priority = a.int("priority")?;
            a.done()?;
            Ok(Command::Priority { jid, priority })
        }
        "timeout" => Ok(Command::Timeout {
            jids: nonempty_list("Timeout", "jid", args)?,
        }),
        "log" => {
            let mut a = Args::new("Log", args);
            let jid = a.name("jid")?;
            let message = a.name("message")?;
            let data = match a.next() {
                None => None,
                Some(d) => match serde_json::from_str::<Value>(d) {
                    Ok(Value::Object(m)) => Some(m),
                    Ok(_) => {
                        return Err(Error::invalid(format!(
                            "Log(): Arg \"data\" not a JSON object: {d}"
                        )))
                    }
                    Err(_) => {
                        return Err(Error::invalid(format!("Log(): Arg \"data\" not JSON: {d}")))
                    }
                },
            };
            a.done()?;
            Ok(Command::Log { jid, message, data })
        }
        "get" => {
            let mut a = Args::new("Get", args);
            let jid = a.name("jid")?;
            a.done()?;
            Ok(Command::Get { jid })
        }
        "multiget" => Ok(Command::MultiGet {
            jids: args.to_vec(),
        }),
        "tag" => parse_tag(args),
        "track" => {
            let mut a = Args::new("Track", args);
            match a.next() {
                None => Ok(Command::Tracked),
                Some("track") => {
                    let jid = a.name("jid")?;
                    a.done()?;
                    Ok(Command::Track { jid })
                }
                Some("untrack") => {
                    let jid = a.name("jid")?;
                    a.done()?;
                    Ok(Command::Untrack { jid })
                }
                Some(other) => Err(Error::invalid(format!(
                    "Track(): Unknown action \"{other}\" (expected \"track\" or \"untrack\")"
                ))),
            }
        }
        "failed" => {
            let mut a = Args::new("Failed", args);
            let group = a.next().map(str::to_owned);
            let start = a.opt_int("start", 0)?;
            let limit = a.opt_int("limit", DEFAULT_PAGE)?;
            a.done()?;
            Ok(Command::Failed {
                group,
                start: start.max(0),
                limit: limit.max(0),
            })
        }
        "unfail" => {
            let mut a = Args::new("Unfail", args);
            let queue = a.name("queue")?;
            let group = a.name("group")?;
            let count = a.opt_int("count", DEFAULT_PAGE)?;
            a.done()?;
            Ok(Command::Unfail {
                queue,
                group,
                count: count.max(0),
            })
        }
        "queues" => {
            let mut a = Args::new("Queues", args);
            let queue = a.next().map(str::to_owned);
            a.done()?;
            Ok(Command::Queues { queue })
        }
        "jobs" => {
            let mut a = Args::new("Jobs", args);
            let state = a.name("state")?;
            if state == "complete" {
                let offset = a.opt_int("offset", 0)?;
                let count = a.opt_int("count", DEFAULT_PAGE)?;
                a.done()?;
                return Ok(Command::JobsComplete {
                    offset: offset.max(0),
                    count: count.max(0),
                });
            }
            let listing = JobsListing::parse(&state)
                .ok_or_else(|| Error::invalid(format!("Jobs(): Unknown type \"{state}\"")))?;
            let queue = a.name("queue")?;
            let offset = a.opt_int("offset", 0)?;
            let count = a.opt_int("count", DEFAULT_PAGE)?;
            a.done()?;
            Ok(Command::Jobs {
                listing,
                queue,
                offset: offset.max(0),
                count: count.max(0),
            })
        }
        "length" => {
            let mut a = Args::new("Length", args);
            let queue = a.name("queue")?;
            a.done()?;
            Ok(Command::Length { queue })
        }
        "pause" => Ok(Command::Pause {
            queues: nonempty_list("Pause", "queue", args)?,
        }),
        "unpause" => Ok(Command::Unpause {
            queues: nonempty_list("Unpause", "queue", args)?,
        }),
        "queue.forget" => Ok(Command::QueueForget {
            queues: nonempty_list("Queue.forget", "queue", args)?,
        }),
        "workers" | "workers.detail" => {
            let detail = command == "workers.detail";
            let mut a = Args::new(if detail { "Workers.detail" } else { "Workers" }, args);
            let worker = a.next().map(str::to_owned);
            a.done()?;
            Ok(Command::Workers { worker, detail })
        }
        "worker.deregister" => Ok(Command::WorkerDeregister {
            workers: nonempty_list("Worker.deregister", "worker", args)?,
        }),
        "stats" => {
            let mut a = Args::new("Stats", args);
            let queue = a.name("queue")?;
            let date = a.number("date")?;
            a.done()?;
            let date = Timestamp::from_secs_f64(date).ok_or_else(|| {
                Error::invalid(format!("Stats(): Arg \"date\" out of range: {date}"))
            })?;
            Ok(Command::Stats { queue, date })
        }
        "config.get" => {
            let mut a = Args::new("Config.get", args);
            let key = a.next().map(str::to_owned);
            a.done()?;
            Ok(Command::ConfigGet { key })
        }
        "config.set" => {
            let mut a = Args::new("Config.set", args);
            let key = a.name("option")?;
            let value = a.text("value")?;
            a.done()?;
            Ok(Command::ConfigSet { key, value })
        }
        "config.unset" => {
            let mut a = Args::new("Config.unset", args);
            let key = a.name("option")?;
            a.done()?;
            Ok(Command::ConfigUnset { key })
        }
        "recur" => parse_recur(args),
        "unrecur" => {
            let mut a = Args::new("Unrecur", args);
            let jid = a.name("jid")?;
            a.done()?;
            Ok(Command::Unrecur { jid })
        }
        "recur.get" => {
            let mut a = Args::new("Recur.get", args);
            let jid = a.name("jid")?;
            a.done()?;
            Ok(Command::RecurGet { jid })
        }
        "unique.get" => {
            let mut a = Args::new("Unique.get", args);
            let key = a.text("key")?;
            a.done()?;
            crate::unique::validate_key("Unique.get", &key)?;
            Ok(Command::UniqueGet { key })
        }
        "recur.update" => {
            let mut a = Args::new("Recur.update", args);
            let jid = a.name("jid")?;
            let rest = a.rest();
            if rest.len() % 2 == 1 {
                return Err(Error::invalid(
                    "Recur.update(): Odd number of optional arguments",
                ));
            }
            let mut u = RecurUpdate::default();
            for pair in rest.chunks(2) {
                let (k, v) = (pair[0].as_str(), pair[1].as_str());
                let c = "Recur.update";
                match k {
                    "priority" => u.priority = Some(int(c, k, v)?),
                    "interval" => {
                        let i = number(c, k, v)?;
                        if i <= 0.0 {
                            return Err(Error::invalid(format!(
                                "Recur.update(): Arg \"interval\" must be greater than 0: {v}"
                            )));
                        }
                        u.interval = Some(i)
                    }
                    "retries" => u.retries = Some(non_negative_int(c, k, v)?),
                    "data" => u.data = Some(json_text(c, k, v)?),
                    "klass" if !v.is_empty() => u.klass = Some(v.to_owned()),
                    "queue" if !v.is_empty() => u.queue = Some(v.to_owned()),
                    "klass" | "queue" => {
                        return Err(Error::invalid(format!(
                            "Recur.update(): Arg \"{k}\" missing"
                        )))
                    }
                    "backlog" => u.backlog = Some(non_negative_int(c, k, v)?),
                    "cron" => u.cron = Some(v.to_owned()),
                    "timezone" => u.timezone = Some(v.to_owned()),
                    "missed" => u.missed = Some(Missed::parse(c, v)?),
                    _ => {
                        return Err(Error::invalid(format!(
                            "Recur.update(): Unrecognized option \"{k}\""
                        )))
                    }
                }
            }
            Ok(Command::RecurUpdate { jid, update: u })
        }
        "recur.tag" | "recur.untag" => {
            let cmd = if command == "recur.tag" {
                "Recur.tag"
            } else {
                "Recur.untag"
            };
            let mut a = Args::new(cmd, args);
            let jid = a.name("jid")?;
            let tags = a.rest();
            if command == "recur.tag" {
                Ok(Command::RecurTag { jid, tags })
            } else {
                Ok(Command::RecurUntag { jid, tags })
            }
        }
        other => Err(Error::invalid(format!("Unknown command {other}"))),
    }
}

fn non_negative_int(cmd: &str, name: &str, v: &str) -> Result<i64> {
    let n = int(cmd, name, v)?;
    if n < 0 {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" must not be negative: {v}"
        )));
    }
    Ok(n)
}

fn nonempty_list(cmd: &str, name: &str, args: &[String]) -> Result<Vec<String>> {
    if args.is_empty() {
        return Err(Error::invalid(format!("{cmd}(): Arg \"{name}\" missing")));
    }
    if args.iter().any(String::is_empty) {
        return Err(Error::invalid(format!(
            "{cmd}(): Arg \"{name}\" must not be empty"
        )));
    }
    Ok(args.to_vec())
}

fn parse_put(cmd: &'static str, args: &[String], must_exist: bool) -> Result<Command> {
    let mut a = Args::new(cmd, args);
    let worker = a.name("worker")?;
    let queue = a.name("queue")?;
    let jid = a.name("jid")?;
    let klass = a.name("klass")?;
    let data = a.json_text("data")?;
    let delay = non_negative(cmd, "delay", a.number("delay")?)?;
    let mut p = PutParams {
        worker,
        queue,
        jid,
        klass,
        data,
        delay,
        priority: None,
        tags: None,
        retries: None,
        depends: None,
        must_exist,
        metadata: None,
        unique: None,
        batch: None,
        throttles: None,
    };
    let mut on_conflict = None;
    let known = [
        "priority",
        "tags",
        "retries",
        "depends",
        "metadata",
        "unique",
        "on-conflict",
        "batch",
        "throttles",
    ];
    for (k, v) in a.pairs(&known)? {
        match k.as_str() {
            "batch" if v.is_empty() => {
                return Err(Error::invalid(format!("{cmd}(): Arg \"batch\" missing")))
            }
            "batch" => p.batch = Some(v),
            "metadata" => p.metadata = Some(json_object(cmd, "metadata", &v)?),
            "unique" => p.unique = Some(Unique::new(v)),
            "on-conflict" => on_conflict = Some(OnConflict::parse(cmd, &v)?),
            "throttles" => p.throttles = Some(string_list(cmd, "throttles", &v)?),
            "priority" => p.priority = Some(int(cmd, "priority", &v)?),
            "tags" => p.tags = Some(string_list(cmd, "tags", &v)?),
            "retries" => p.retries = Some(non_negative_int(cmd, "retries", &v)?),
            _ => p.depends = Some(string_list(cmd, "depends", &v)?),
        }
    }
    match (&mut p.unique, on_conflict) {
        (Some(u), Some(policy)) => u.on_conflict = policy,
        (None, Some(_)) => {
            return Err(Error::invalid(format!(
                "{cmd}(): Arg \"on-conflict\" needs \"unique\""
            )))
        }
        _ => {}
    }
    Ok(Command::Put(p))
}

fn parse_tag(args: &[String]) -> Result<Command> {
    let mut a = Args::new("Tag", args);
    match a.next() {
        Some("add") => {
            let jid = a.name("jid")?;
            Ok(Command::TagAdd {
                jid,
                tags: a.rest(),
            })
        }
        Some("remove") => {
            let jid = a.name("jid")?;
            Ok(Command::TagRemove {
                jid,
                tags: a.rest(),
            })
        }
        Some("get") => {
            let tag = a.name("tag")?;
            let offset = a.opt_int("offset", 0)?;
            let count = a.opt_int("count", DEFAULT_PAGE)?;
            a.done()?;
            Ok(Command::TagGet {
                tag,
                offset: offset.max(0),
                count: count.max(0),
            })
        }
        Some("top") => {
            let offset = a.opt_int("offset", 0)?;
            let count = a.opt_int("count", DEFAULT_PAGE)?;
            a.done()?;
            Ok(Command::TagTop {
                offset: offset.max(0),
                count: count.max(0),
            })
        }
        _ => Err(Error::invalid(
            "Tag(): First argument must be \"add\", \"remove\", \"get\" or \"top\"",
        )),
    }
}

fn parse_recur(args: &[String]) -> Result<Command> {
    let c = "Recur";
    let mut a = Args::new(c, args);
    let queue = a.name("queue")?;
    let jid = a.name("jid")?;
    let klass = a.name("klass")?;
    let data = a.json_text("data")?;
    let spec = a.name("spec")?;
    let (interval, cron) = match spec.as_str() {
        "interval" => {
            let interval = a.number("interval")?;
            if interval <= 0.0 {
                return Err(Error::invalid(format!(
                    "Recur(): Arg \"interval\" must be greater than 0: {interval}"
                )));
            }
            (interval, None)
        }
        "cron" => (0.0, Some(a.name("cron")?)),
        _ => {
            return Err(Error::invalid(format!(
                "Recur(): schedule type \"{spec}\" unknown (expected interval or cron)"
            )))
        }
    };
    let offset = a.number("offset")?;
    let mut p = RecurParams {
        queue,
        jid,
        klass,
        data,
        interval,
        offset,
        priority: 0,
        tags: Vec::new(),
        retries: 5,
        backlog: 0,
        cron,
        timezone: None,
        missed: Missed::default(),
    };
    let known: &[&str] = if p.cron.is_some() {
        &[
            "priority", "tags", "retries", "backlog", "timezone", "missed",
        ]
    } else {
        &["priority", "tags", "retries", "backlog"]
    };
    for (k, v) in a.pairs(known)? {
        match k.as_str() {
            "priority" => p.priority = int(c, "priority", &v)?,
            "tags" => p.tags = string_list(c, "tags", &v)?,
            "retries" => p.retries = non_negative_int(c, "retries", &v)?,
            "timezone" => p.timezone = Some(v),
            "missed" => p.missed = Missed::parse(c, &v)?,
            _ => p.backlog = non_negative_int(c, "backlog", &v)?,
        }
    }
    Ok(Command::Recur(p))
}

/// Merges `data` keys into a history entry's details (for `log`).
pub fn merge_log_data(extra: &mut Map<String, Value>, data: &Map<String, Value>) {
    for (k, v) in data {
        if k != "what" && k != "when" {
            extra.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn put_parses_options() {
        let c = parse(
            "put",
            &s(&[
                "w", "q", "j", "K", "{}", "0", "priority", "3", "tags", "[\"a\"]",
            ]),
        )
        .unwrap();
        match c {
            Command::Put(p) => {
                assert_eq!(p.priority, Some(3));
                assert_eq!(p.tags, Some(vec!["a".to_owned()]));
                assert_eq!(p.retries, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_argument() {
        let e = parse(
            "put",
            &s(&["w", "q", "j", "K", "{}", "0", "priority", "abc"]),
        )
        .unwrap_err();
        assert_eq!(e.message(), "Put(): Arg \"priority\" not a number: abc");
        let e = parse("put", &s(&["w", "q", "j", "K", "{bad", "0"])).unwrap_err();
        assert!(e.message().contains("Arg \"data\" not JSON"));
        let e = parse("pop", &s(&["q"])).unwrap_err();
        assert_eq!(e.message(), "Pop(): Arg \"worker\" missing");
        assert!(parse("nope", &[])
            .unwrap_err()
            .message()
            .contains("Unknown command"));
    }

    #[test]
    fn every_command_name_is_known() {
        for c in COMMANDS.iter().chain(EXTENSIONS.iter()) {
            let e = parse(c, &[]);
            if let Err(e) = e {
                assert!(!e.message().contains("Unknown command"), "{c}: {e}");
            }
        }
    }
}
