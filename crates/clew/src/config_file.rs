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

use clap::parser::ValueSource;
use clap::ArgMatches;
use clew::config_toml::{ConfigFile, SERVER_KEYS, WORK_KEYS};

use crate::work::WorkArgs;
use crate::{Cli, Cmd};

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
