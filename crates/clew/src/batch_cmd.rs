//! `clew batch`: batches as objects (see `clew_core::batch`): create one
//! from jobs given as JSON lines, show its progress, list batches, list a
//! batch's jobs, cancel one.

use std::io::BufRead;

use clap::Subcommand;
use clew::table::{format_time, key_values, Table};
use clew_core::batch::{BatchParams, BatchSpec, CallbackSpec};
use clew_core::command::PutParams;
use clew_core::{Command, Error};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{print_json, print_str, strings, text_of, Ctx};

/// `clew batch ...`.
#[derive(Debug, Subcommand)]
pub enum BatchCmd {
    /// Create a batch from jobs given as JSON lines (a file, or stdin with
    /// `-`), all put in one transaction; prints the batch id. Each line is
    /// an object `{"queue", "klass", "jid", "data", "delay", "priority",
    /// "tags", "retries", "depends"}` (only `klass` is required; `queue`
    /// defaults to --queue). The callback job (--callback-queue and
    /// --callback-klass) is put once every job has finished.
    Create {
        /// The file of JSON lines, or `-` for stdin.
        #[arg(long, default_value = "-")]
        file: String,
        /// The queue of jobs that name none.
        #[arg(long)]
        queue: Option<String>,
        /// The batch id (default: a new one).
        #[arg(long)]
        id: Option<String>,
        /// Free text for people.
        #[arg(long, default_value = "")]
        description: String,
        /// The batch's metadata (a JSON object).
        #[arg(long)]
        metadata: Option<String>,
        /// The callback's queue.
        #[arg(long, requires = "callback_klass")]
        callback_queue: Option<String>,
        /// The callback's class.
        #[arg(long, requires = "callback_queue")]
        callback_klass: Option<String>,
        /// The callback's jid (default: a new one).
        #[arg(long, requires = "callback_queue")]
        callback_jid: Option<String>,
        /// The callback's payload, a JSON object (its key `batch` is set to
        /// the batch's counts when it is put).
        #[arg(long, requires = "callback_queue")]
        callback_data: Option<String>,
        /// The callback's priority.
        #[arg(long, requires = "callback_queue", allow_hyphen_values = true)]
        callback_priority: Option<i64>,
    },
    /// Show a batch's progress.
    Status {
        /// The batch.
        id: String,
    },
    /// List batches, newest first.
    List {
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
    /// List the jids of a batch's jobs (those not yet expired).
    Jobs {
        /// The batch.
        id: String,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        count: i64,
    },
    /// Cancel every job of a batch that is not complete.
    Cancel {
        /// The batch.
        id: String,
    },
}

/// One JSON line of `clew batch create`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobLine {
    #[serde(default)]
    queue: Option<String>,
    klass: String,
    #[serde(default)]
    jid: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    delay: Option<f64>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    retries: Option<i64>,
    #[serde(default)]
    depends: Option<Vec<String>>,
}

/// Reads the jobs of `clew batch create` (blank lines skipped); errors name
/// the line.
fn read_jobs(file: &str, queue: Option<&str>) -> anyhow::Result<Vec<PutParams>> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f =
            std::fs::File::open(file).map_err(|e| Error::invalid(format!("--file {file}: {e}")))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut jobs = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::invalid(format!("reading {file}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let job: JobLine = serde_json::from_str(&line)
            .map_err(|e| Error::invalid(format!("{file}: line {n}: {e}")))?;
        let queue = job.queue.or(queue.map(str::to_owned)).ok_or_else(|| {
            Error::invalid(format!("{file}: line {n}: no \"queue\" (and no --queue)"))
        })?;
        let mut p = PutParams::new(queue, job.klass);
        p.jid = job.jid.unwrap_or_default();
        if let Some(d) = job.data {
            p.data = d.to_string();
        }
        p.delay = job.delay.unwrap_or(0.0);
        p.priority = job.priority;
        p.tags = job.tags;
        p.retries = job.retries;
        p.depends = job.depends;
        jobs.push(p);
    }
    if jobs.is_empty() {
        return Err(Error::invalid(format!("{file}: no jobs (one JSON object per line)")).into());
    }
    Ok(jobs)
}

fn object(flag: &str, text: Option<String>) -> anyhow::Result<Map<String, Value>> {
    match text {
        None => Ok(Map::new()),
        Some(t) => Ok(clew::client::json_object(flag, &t)?),
    }
}

/// `[#####.....] 5/10` for a batch document.
pub fn progress_bar(b: &Value) -> String {
    let n = |k: &str| b.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (total, pending) = (n("total"), n("pending"));
    let done = total - pending;
    let width = 20;
    let filled = if total > 0 {
        (done * width / total) as usize
    } else {
        0
    };
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled)
    )
}

impl Ctx {
    /// Runs `clew batch ...`.
    pub async fn batch(&self, action: BatchCmd) -> anyhow::Result<()> {
        match action {
            BatchCmd::Create {
                file,
                queue,
                id,
                description,
                metadata,
                callback_queue,
                callback_klass,
                callback_jid,
                callback_data,
                callback_priority,
            } => {
                let jobs = read_jobs(&file, queue.as_deref())?;
                let metadata = object("--metadata", metadata)?;
                let callback = match (callback_queue, callback_klass) {
                    (Some(queue), Some(klass)) => Some(CallbackSpec {
                        queue,
                        klass,
                        jid: callback_jid.unwrap_or_default(),
                        data: object("--callback-data", callback_data)?,
                        priority: callback_priority,
                        ..CallbackSpec::default()
                    }),
                    _ => None,
                };
                let v = self
                    .exec(Command::BatchCreate(BatchParams {
                        // A remote client sends the id: make it here.
                        id: id.unwrap_or_else(clew_core::engine::new_jid),
                        spec: BatchSpec {
                            description,
                            metadata,
                            callback,
                        },
                        jobs: jobs
                            .into_iter()
                            .map(|mut p| {
                                if p.jid.is_empty() {
                                    p.jid = clew_core::engine::new_jid();
                                }
                                p
                            })
                            .collect(),
                    }))
                    .await?;
                if self.json {
                    return print_json(&v);
                }
                print_str(&format!("{}\n", text_of(&v["batch"]["id"])))
            }
            BatchCmd::Status { id } => {
                let v = self.exec(Command::BatchGet { id: id.clone() }).await?;
                if v.is_null() {
                    return Err(Error::not_found(format!("batch {id} does not exist")).into());
                }
                if self.json {
                    return print_json(&v);
                }
                let f = |k: &str| v.get(k).map(text_of).unwrap_or_default();
                let time = |k: &str| match v.get(k).and_then(Value::as_f64) {
                    Some(t) => format_time(t),
                    None => "-".to_owned(),
                };
                let callback = match v.get("callback_jid").and_then(Value::as_str) {
                    Some(jid) => format!("{jid} ({})", f("callback_state")),
                    None if v["callback"].is_null() => "none".to_owned(),
                    None => "not yet put".to_owned(),
                };
                let pairs = vec![
                    ("id", f("id")),
                    ("description", f("description")),
                    ("created", time("created")),
                    ("progress", progress_bar(&v)),
                    ("pending", f("pending")),
                    ("complete", f("complete")),
                    ("failed", f("failed")),
                    ("canceled", f("canceled")),
                    ("finished", time("finished")),
                    ("callback", callback),
                ];
                print_str(&key_values(&pairs))
            }
            BatchCmd::List { offset, count } => {
                let v = self.exec(Command::BatchList { offset, count }).await?;
                if self.json {
                    return print_json(&v);
                }
                let mut t = Table::new([
                    "ID", "CREATED", "PROGRESS", "PENDING", "COMPLETE", "FAILED", "CANCELED",
                    "CALLBACK",
                ]);
                let empty = Vec::new();
                for b in v["batches"].as_array().unwrap_or(&empty) {
                    let f = |k: &str| b.get(k).map(text_of).unwrap_or_default();
                    t.row([
                        f("id"),
                        format_time(b["created"].as_f64().unwrap_or(0.0)),
                        progress_bar(b),
                        f("pending"),
                        f("complete"),
                        f("failed"),
                        f("canceled"),
                        f("callback_jid"),
                    ]);
                }
                let mut out = t.render();
                out.push_str(&format!("{} batch(es)\n", text_of(&v["total"])));
                print_str(&out)
            }
            BatchCmd::Jobs { id, offset, count } => {
                let exists = self.exec(Command::BatchGet { id: id.clone() }).await?;
                if exists.is_null() {
                    return Err(Error::not_found(format!("batch {id} does not exist")).into());
                }
                let v = self.exec(Command::BatchJobs { id, offset, count }).await?;
                if self.json {
                    return print_json(&v);
                }
                let mut out: String = strings(&v["jobs"])
                    .into_iter()
                    .map(|j| format!("{j}\n"))
                    .collect();
                out.push_str(&format!("{} job(s)\n", text_of(&v["total"])));
                print_str(&out)
            }
            BatchCmd::Cancel { id } => {
                let v = self.exec(Command::BatchCancel { id }).await?;
                if self.json {
                    return print_json(&v);
                }
                print_str(&format!("canceled {} job(s)\n", strings(&v).len()))
            }
        }
    }
}
