//! `clew events search` and `clew events stats`: the lifecycle history,
//! searched and summarised. Against `--url` they call
//! `GET /v1/events/search` and `GET /v1/events/stats`; against `--db` they
//! scan the store's event log and use [`clew_core::analytics`] directly.
//! Both print the same JSON with `--json`, and a table otherwise.

use clap::{Args, Subcommand};
use clew::table::{format_time, parse_date, Table};
use clew::Client;
use clew_core::analytics::{self, Filter, GroupBy};
use clew_core::{Error, LifecycleKind, Timestamp};
use serde_json::{json, Value};

/// `clew events search|stats`.
#[derive(Debug, Subcommand)]
pub enum EventsQuery {
    /// Lifecycle events matching filters, oldest first (a page of --limit;
    /// the JSON output's `next` is the cursor of the next page).
    Search {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many events (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only events with a sequence number above this.
        #[arg(long)]
        after: Option<i64>,
        /// Only events with a sequence number below this.
        #[arg(long)]
        before: Option<i64>,
        /// Newest first.
        #[arg(long)]
        newest: bool,
    },
    /// time_in_queue and time_to_perform of matching events as count, p50,
    /// p95, p99 (nearest rank), max and mean, per group, with an SLA share.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        /// Group by `class`, `queue` or `meta:<key>` (one group if unset).
        #[arg(long)]
        by: Option<String>,
        /// SLA threshold: report the share of dequeues that waited at most
        /// this many seconds in their queue.
        #[arg(long)]
        sla: Option<f64>,
    },
    /// History retention: delete events older than --max-age and all but
    /// the newest --max-events (the whole event log counts). Publishers
    /// whose cursor is behind the cut lose the deleted events.
    Prune {
        /// Drop events older than this: seconds, or with s, m, h or d.
        #[arg(long)]
        max_age: Option<String>,
        /// Keep at most this many events (the newest).
        #[arg(long)]
        max_events: Option<u64>,
    },
}

/// A duration: seconds, or a number with `s`, `m`, `h` or `d`.
fn duration_arg(flag: &str, text: &str) -> Result<f64, Error> {
    let (num, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let mult = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => f64::NAN,
    };
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{flag}: expected seconds or a number with s, m, h or d (e.g. 30d), got {text:?}"
            ))
        })
}

/// The filters both subcommands take.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Events at or after this time: seconds since the epoch or YYYY-MM-DD.
    #[arg(long)]
    since: Option<String>,
    /// Events before this time: seconds since the epoch or YYYY-MM-DD.
    #[arg(long)]
    until: Option<String>,
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only this job class.
    #[arg(long)]
    klass: Option<String>,
    /// Only this event type: enqueued, dequeued, perform_started,
    /// perform_finished or failed.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only this job.
    #[arg(long)]
    jid: Option<String>,
    /// Only events whose metadata has KEY equal to VALUE (repeatable; all
    /// must hold).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
}

fn time_arg(flag: &str, text: &str) -> Result<(Timestamp, String), Error> {
    let secs = text
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .or_else(|| parse_date(text).map(|d| d as f64));
    secs.and_then(|s| Timestamp::from_secs_f64(s).map(|t| (t, s.to_string())))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{flag}: expected seconds since the epoch or YYYY-MM-DD, got {text:?}"
            ))
        })
}

impl FilterArgs {
    /// The filter and the same criteria as query-string pairs.
    fn parse(&self) -> Result<(Filter, Vec<(String, String)>), Error> {
        let mut f = Filter::default();
        let mut q = Vec::new();
        if let Some(t) = &self.since {
            let (ts, s) = time_arg("--since", t)?;
            f.since = Some(ts);
            q.push(("since".to_owned(), s));
        }
        if let Some(t) = &self.until {
            let (ts, s) = time_arg("--until", t)?;
            f.until = Some(ts);
            q.push(("until".to_owned(), s));
        }
        for (name, v, slot) in [
            ("queue", &self.queue, &mut f.queue),
            ("klass", &self.klass, &mut f.klass),
            ("jid", &self.jid, &mut f.jid),
        ] {
            if let Some(v) = v {
                if v.is_empty() {
                    return Err(Error::invalid(format!(
                        "--{name}: expected a non-empty value"
                    )));
                }
                *slot = Some(v.clone());
                q.push((name.to_owned(), v.clone()));
            }
        }
        if let Some(k) = &self.kind {
            f.kind = Some(LifecycleKind::parse(k).ok_or_else(|| {
                Error::invalid(format!(
                    "--type: expected enqueued, dequeued, perform_started, \
                     perform_finished or failed, got {k:?}"
                ))
            })?);
            q.push(("type".to_owned(), k.clone()));
        }
        for m in &self.meta {
            let kv = Filter::parse_meta(m)
                .ok_or_else(|| Error::invalid(format!("--meta: expected KEY=VALUE, got {m:?}")))?;
            q.push(("meta".to_owned(), format!("{}:{}", kv.0, kv.1)));
            f.metadata.push(kv);
        }
        Ok((f, q))
    }
}

/// Where a remote query goes: the server URL and the token.
pub struct Remote<'a> {
    /// `http://HOST:PORT`.
    pub url: &'a str,
    /// The API token, if any.
    pub token: Option<&'a str>,
}

async fn get(remote: &Remote<'_>, path: &str, query: &[(String, String)]) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let url = format!("{}{}", remote.url.trim_end_matches('/'), path);
    send(remote, path, http.get(url).query(query)).await
}

async fn send(
    remote: &Remote<'_>,
    path: &str,
    mut req: reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    if let Some(t) = remote.token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::store(format!("{}: {e}", remote.url)))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| Error::store(format!("{path}: unexpected reply: {e}")))?;
    if !status.is_success() {
        let msg = v["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        let kind = clew::client::kind_of_status(status.as_u16());
        return Err(Error::new(kind, msg).into());
    }
    Ok(v)
}

/// Runs a search or stats query and returns its JSON (the server's shape).
pub async fn query(
    client: &Client,
    remote: Option<Remote<'_>>,
    q: &EventsQuery,
) -> anyhow::Result<Value> {
    match q {
        EventsQuery::Search {
            filter,
            limit,
            after,
            before,
            newest,
        } => {
            if *limit == 0 || *limit > 10_000 {
                return Err(Error::invalid(format!(
                    "--limit: expected an integer from 1 to 10000, got {limit}"
                ))
                .into());
            }
            let (f, mut pairs) = filter.parse()?;
            match (remote, client.engine()) {
                (Some(r), _) => {
                    pairs.push(("limit".into(), limit.to_string()));
                    if let Some(a) = after {
                        pairs.push(("after".into(), a.to_string()));
                    }
                    if let Some(b) = before {
                        pairs.push(("before".into(), b.to_string()));
                    }
                    if *newest {
                        pairs.push(("order".into(), "desc".into()));
                    }
                    get(&r, "/v1/events/search", &pairs).await
                }
                (None, Some(engine)) => {
                    let events =
                        analytics::scan(engine.store().as_ref(), &f, after.unwrap_or(0)).await?;
                    let (events, next) = analytics::page(events, *before, *newest, *limit);
                    Ok(json!({
                        "events": events.iter().map(analytics::event_json).collect::<Vec<_>>(),
                        "next": next,
                    }))
                }
                (None, None) => Err(Error::invalid("events: no store and no server").into()),
            }
        }
        EventsQuery::Stats { filter, by, sla } => {
            let (f, mut pairs) = filter.parse()?;
            let group = match by {
                None => GroupBy::All,
                Some(b) => GroupBy::parse(b).ok_or_else(|| {
                    Error::invalid(format!(
                        "--by: expected class, queue or meta:<key>, got {b:?}"
                    ))
                })?,
            };
            if let Some(s) = sla {
                if !(s.is_finite() && *s >= 0.0) {
                    return Err(Error::invalid(format!(
                        "--sla: expected a number of seconds >= 0, got {s}"
                    ))
                    .into());
                }
            }
            match (remote, client.engine()) {
                (Some(r), _) => {
                    if let Some(b) = group.name() {
                        pairs.push(("by".into(), b));
                    }
                    if let Some(s) = sla {
                        pairs.push(("sla".into(), s.to_string()));
                    }
                    get(&r, "/v1/events/stats", &pairs).await
                }
                (None, Some(engine)) => {
                    let events = analytics::scan(engine.store().as_ref(), &f, 0).await?;
                    Ok(json!({
                        "by": group.name(),
                        "sla_seconds": sla,
                        "groups": analytics::stats(&events, &group, *sla),
                    }))
                }
                (None, None) => Err(Error::invalid("events: no store and no server").into()),
            }
        }
        EventsQuery::Prune {
            max_age,
            max_events,
        } => {
            let max_age = match max_age {
                Some(a) => Some(duration_arg("--max-age", a)?),
                None => None,
            };
            if max_age.is_none() && max_events.is_none() {
                return Err(
                    Error::invalid("prune: expected --max-age or --max-events (or both)").into(),
                );
            }
            match (remote, client.engine()) {
                (Some(r), _) => {
                    let http = reqwest::Client::new();
                    let url = format!("{}/v1/events/prune", r.url.trim_end_matches('/'));
                    let body = json!({"max_age": max_age, "max_events": max_events});
                    send(&r, "/v1/events/prune", http.post(url).json(&body)).await
                }
                (None, Some(engine)) => {
                    let retention = analytics::Retention {
                        max_age,
                        max_events: *max_events,
                    };
                    let deleted =
                        analytics::prune(engine.store().as_ref(), engine.now(), &retention).await?;
                    Ok(json!({ "deleted": deleted }))
                }
                (None, None) => Err(Error::invalid("events: no store and no server").into()),
            }
        }
    }
}

/// The human output of a reply to `q`.
pub fn render(q: &EventsQuery, v: &Value) -> String {
    match q {
        EventsQuery::Search { .. } => search_table(v),
        EventsQuery::Stats { .. } => stats_table(v),
        EventsQuery::Prune { .. } => format!("deleted {} event(s)\n", v["deleted"]),
    }
}

/// A duration for a table: up to 3 decimals, `-` when absent.
fn secs(v: &Value) -> String {
    match v.as_f64() {
        None => "-".to_owned(),
        Some(f) => {
            let s = format!("{f:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

/// The table of a search reply.
pub fn search_table(v: &Value) -> String {
    let mut t = Table::new([
        "SEQ", "TIME", "TYPE", "QUEUE", "CLASS", "JID", "IN_QUEUE", "PERFORM",
    ]);
    for e in v["events"].as_array().into_iter().flatten() {
        t.row([
            e["seq"].to_string(),
            format_time(e["timestamp"].as_f64().unwrap_or(0.0)),
            e["event_type"].as_str().unwrap_or("").to_owned(),
            e["queue"].as_str().unwrap_or("").to_owned(),
            e["klass"].as_str().unwrap_or("").to_owned(),
            e["jid"].as_str().unwrap_or("").to_owned(),
            secs(&e["time_in_queue"]),
            secs(&e["time_to_perform"]),
        ]);
    }
    let mut out = t.render();
    if let Some(n) = v["next"].as_i64() {
        out.push_str(&format!(
            "more: next page with --after {n} (or --before {n} with --newest)\n"
        ));
    }
    out
}

/// The table of a stats reply.
pub fn stats_table(v: &Value) -> String {
    let mut t = Table::new([
        "GROUP", "EVENTS", "WAITS", "WAIT_P50", "WAIT_P95", "WAIT_P99", "WAIT_MAX", "RUNS",
        "RUN_P50", "RUN_P95", "RUN_P99", "RUN_MAX", "SLA",
    ]);
    for g in v["groups"].as_array().into_iter().flatten() {
        let w = &g["time_in_queue"];
        let r = &g["time_to_perform"];
        let sla = match g["sla"]["share"].as_f64() {
            Some(s) => format!(
                "{:.1}% ({}/{})",
                s * 100.0,
                g["sla"]["within"],
                g["sla"]["total"]
            ),
            None if g["sla"].is_object() => "-".to_owned(),
            None => String::new(),
        };
        t.row([
            g["group"].as_str().unwrap_or("(none)").to_owned(),
            g["count"].to_string(),
            w["count"].to_string(),
            secs(&w["p50"]),
            secs(&w["p95"]),
            secs(&w["p99"]),
            secs(&w["max"]),
            r["count"].to_string(),
            secs(&r["p50"]),
            secs(&r["p95"]),
            secs(&r["p99"]),
            secs(&r["max"]),
            sla,
        ]);
    }
    t.render()
}

/// Runs history retention `r` every `every` until the task is aborted.
/// Never deletes events at or after `floor()` (the oldest event a
/// publisher has not yet delivered), so retention loses nothing a sink
/// still has to see.
pub fn spawn_retention(
    engine: clew_core::Engine,
    r: analytics::Retention,
    every: std::time::Duration,
    floor: impl Fn() -> Option<i64> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let store = engine.store().clone();
            match analytics::retention_cutoff(store.as_ref(), engine.now(), &r).await {
                Ok(Some(cut)) => {
                    let cut = floor().map_or(cut, |f| cut.min(f));
                    match store.events_prune(cut).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "history retention"),
                        Err(e) => tracing::warn!(error = %e, "history retention"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "history retention"),
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// The retention the server flags ask for, or None.
pub fn server_retention(
    max_age: Option<&str>,
    max_events: Option<u64>,
    check: f64,
) -> Result<Option<(analytics::Retention, std::time::Duration)>, Error> {
    let max_age = match max_age {
        Some(a) => Some(duration_arg("--history-max-age", a)?),
        None => None,
    };
    if max_age.is_none() && max_events.is_none() {
        return Ok(None);
    }
    if !(check.is_finite() && check > 0.0) {
        return Err(Error::invalid(format!(
            "--history-check: expected a number of seconds > 0, got {check}"
        )));
    }
    Ok(Some((
        analytics::Retention {
            max_age,
            max_events,
        },
        std::time::Duration::from_secs_f64(check),
    )))
}
