//! `--config PATH`: the options of `clew server` and `clew work` in a TOML
//! file, with the flags' names (`cursor_dir` for `--cursor-dir`).
//!
//! ```toml
//! publish = ["stdout", "file:/var/log/clew/clues.log"]
//! marshal = "logfmt"
//! cursor_dir = "/var/lib/clew/cursors"
//! metadata = { team = "billing", tier = 2 }
//! metadata_header = { "X-Customer-Id" = "customer_id" }
//! history_max_age = "30d"
//! ```
//!
//! What the command line (or an environment variable) sets wins over the
//! file; a list flag given on the command line (`--publish`) replaces the
//! file's list rather than adding to it. An unknown key or a value of the
//! wrong type is refused, naming the key and the file.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use clew_core::Error;
use toml::{Table, Value};

use crate::work::WorkArgs;
use crate::{Cli, Cmd};

/// The keys `clew server` takes from a file.
const SERVER_KEYS: &[&str] = &[
    "db",
    "listen",
    "test_mode",
    "body_limit",
    "publish",
    "marshal",
    "cursor_dir",
    "metadata",
    "metadata_header",
    "history_max_age",
    "history_max_events",
    "history_check",
];

/// The keys `clew work` takes from a file.
const WORK_KEYS: &[&str] = &[
    "db",
    "url",
    "queue",
    "shell",
    "noop",
    "concurrency",
    "reserver",
    "timeout",
    "retry_exit_code",
    "max_output_line",
    "stderr_tail",
    "backoff_base",
    "backoff_max",
    "name",
    "processes",
    "grace",
    "poll_interval",
    "log_file",
    "publish",
    "marshal",
    "cursor_dir",
];

/// A parsed config file whose keys have all been checked to be known.
struct ConfigFile {
    path: PathBuf,
    table: Table,
}

impl ConfigFile {
    /// Reads and parses `path`, refusing keys not in `known`.
    fn load(path: &Path, command: &str, known: &[&str]) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("--config: cannot read {}: {e}", path.display()))
        })?;
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            let msg = e.message().to_owned();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" at line {line}")
                })
                .unwrap_or_default();
            Error::invalid(format!(
                "--config {}: not valid TOML{at}: {msg}",
                path.display()
            ))
        })?;
        if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::invalid(format!(
                "--config {}: unknown key {key:?} for clew {command} (expected one of {})",
                path.display(),
                known.join(", ")
            ))
            .into());
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            table,
        })
    }

    fn wrong(&self, key: &str, expected: &str, v: &Value) -> anyhow::Error {
        Error::invalid(format!(
            "--config {}: key {key:?}: expected {expected}, got {} {}",
            self.path.display(),
            v.type_str(),
            serde_json::to_string(v).unwrap_or_default()
        ))
        .into()
    }

    fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn path(&self, key: &str) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.string(key)?.map(PathBuf::from))
    }

    fn strings(&self, key: &str) -> anyhow::Result<Option<Vec<String>>> {
        let Some(v) = self.table.get(key) else {
            return Ok(None);
        };
        let expected = "a list of strings";
        let Value::Array(items) = v else {
            return Err(self.wrong(key, expected, v));
        };
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.wrong(key, expected, v)),
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    fn bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    fn int<T: TryFrom<i64>>(&self, key: &str, expected: &str) -> anyhow::Result<Option<T>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(v @ Value::Integer(i)) => T::try_from(*i)
                .map(Some)
                .map_err(|_| self.wrong(key, expected, v)),
            Some(v) => Err(self.wrong(key, expected, v)),
        }
    }

    fn float(&self, key: &str) -> anyhow::Result<Option<f64>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Float(f)) => Ok(Some(*f)),
            Some(Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(v) => Err(self.wrong(key, "a number of seconds", v)),
        }
    }

    /// A number of seconds or a duration text (`30d`), as the flag's text.
    fn duration(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(Value::Float(f)) => Ok(Some(f.to_string())),
            Some(v) => Err(self.wrong(key, "a duration (seconds, or text like \"30d\")", v)),
        }
    }

    /// A table as `KEY=VALUE` flag values; `json` renders each value as
    /// JSON (strings quoted), else values must be strings and stay raw.
    fn pairs(&self, key: &str, json: bool) -> anyhow::Result<Option<Vec<String>>> {
        let Some(v) = self.table.get(key) else {
            return Ok(None);
        };
        let expected = if json {
            "a table of KEY = VALUE"
        } else {
            "a table of HEADER = \"KEY\""
        };
        let Value::Table(t) = v else {
            return Err(self.wrong(key, expected, v));
        };
        t.iter()
            .map(|(k, item)| match (item, json) {
                (Value::String(s), false) => Ok(format!("{k}={s}")),
                (_, false) => Err(self.wrong(key, expected, v)),
                (item, true) => serde_json::to_string(item)
                    .map(|j| format!("{k}={j}"))
                    .map_err(|_| self.wrong(key, expected, v)),
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
}

/// Which options were set on the command line or by an environment
/// variable (those win over the file).
struct Given<'a> {
    top: &'a ArgMatches,
    sub: &'a ArgMatches,
}

impl Given<'_> {
    fn has(&self, id: &str) -> bool {
        let explicit = |m: &ArgMatches| {
            m.try_contains_id(id).unwrap_or(false)
                && matches!(
                    m.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        };
        explicit(self.sub) || explicit(self.top)
    }
}

/// Sets `slot` from the file unless the option `id` was given.
fn fill<T>(given: &Given<'_>, id: &str, slot: &mut T, from_file: Option<T>) {
    if let Some(v) = from_file {
        if !given.has(id) {
            *slot = v;
        }
    }
}

/// Applies `--config` of `clew server` / `clew work` to `cli`: every key of
/// the file whose option was not given on the command line.
pub fn apply(mut cli: Cli, matches: &ArgMatches) -> anyhow::Result<Cli> {
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(cli);
    };
    let given = Given { top: matches, sub };
    let (db, url) = match &mut cli.command {
        Cmd::Server {
            config: Some(path),
            listen,
            test_mode,
            body_limit,
            publish,
            marshal,
            cursor_dir,
            metadata,
            metadata_header,
            history_max_age,
            history_max_events,
            history_check,
        } => {
            let f = ConfigFile::load(path, name, SERVER_KEYS)?;
            fill(&given, "listen", listen, f.string("listen")?);
            fill(&given, "test_mode", test_mode, f.bool("test_mode")?);
            let limit = f.int("body_limit", "a number of bytes")?;
            fill(&given, "body_limit", body_limit, limit);
            fill(&given, "publish", publish, f.strings("publish")?);
            fill(&given, "marshal", marshal, f.string("marshal")?);
            fill(
                &given,
                "cursor_dir",
                cursor_dir,
                f.path("cursor_dir")?.map(Some),
            );
            fill(&given, "metadata", metadata, f.pairs("metadata", true)?);
            let headers = f.pairs("metadata_header", false)?;
            fill(&given, "metadata_header", metadata_header, headers);
            let age = f.duration("history_max_age")?.map(Some);
            fill(&given, "history_max_age", history_max_age, age);
            let events = f.int("history_max_events", "a number of events >= 0")?;
            fill(
                &given,
                "history_max_events",
                history_max_events,
                events.map(Some),
            );
            fill(
                &given,
                "history_check",
                history_check,
                f.float("history_check")?,
            );
            (f.string("db")?, None)
        }
        Cmd::Work(args) if args.config.is_some() => {
            let path = args.config.clone().unwrap_or_default();
            let f = ConfigFile::load(&path, name, WORK_KEYS)?;
            apply_work(&f, &given, args)?;
            (f.string("db")?, f.string("url")?)
        }
        _ => return Ok(cli),
    };
    fill(&given, "db", &mut cli.db, db);
    fill(&given, "url", &mut cli.url, url.map(Some));
    Ok(cli)
}

fn apply_work(f: &ConfigFile, given: &Given<'_>, a: &mut WorkArgs) -> anyhow::Result<()> {
    fill(given, "queue", &mut a.queue, f.strings("queue")?);
    fill(given, "shell", &mut a.shell, f.bool("shell")?);
    fill(given, "noop", &mut a.noop, f.bool("noop")?);
    let n = f.int("concurrency", "a number of jobs >= 1")?;
    fill(given, "concurrency", &mut a.concurrency, n);
    fill(given, "reserver", &mut a.reserver, f.string("reserver")?);
    fill(
        given,
        "timeout",
        &mut a.timeout,
        f.float("timeout")?.map(Some),
    );
    let code = f.int("retry_exit_code", "an exit status")?;
    fill(given, "retry_exit_code", &mut a.retry_exit_code, code);
    let n = f.int("max_output_line", "a number of bytes")?;
    fill(given, "max_output_line", &mut a.max_output_line, n);
    let n = f.int("stderr_tail", "a number of bytes")?;
    fill(given, "stderr_tail", &mut a.stderr_tail, n);
    let base = f.float("backoff_base")?.map(Some);
    fill(given, "backoff_base", &mut a.backoff_base, base);
    let max = f.float("backoff_max")?.map(Some);
    fill(given, "backoff_max", &mut a.backoff_max, max);
    fill(given, "name", &mut a.name, f.string("name")?.map(Some));
    let n = f.int("processes", "a number of processes >= 1")?;
    fill(given, "processes", &mut a.processes, n.map(Some));
    fill(given, "grace", &mut a.grace, f.float("grace")?);
    let poll = f.float("poll_interval")?;
    fill(given, "poll_interval", &mut a.poll_interval, poll);
    fill(
        given,
        "log_file",
        &mut a.log_file,
        f.path("log_file")?.map(Some),
    );
    fill(given, "publish", &mut a.publish, f.strings("publish")?);
    fill(given, "marshal", &mut a.marshal, f.string("marshal")?);
    let dir = f.path("cursor_dir")?.map(Some);
    fill(given, "cursor_dir", &mut a.cursor_dir, dir);
    Ok(())
}
