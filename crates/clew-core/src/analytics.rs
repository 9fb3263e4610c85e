//! Search and statistics over the lifecycle history (no Splunk needed).
//!
//! * [`Filter`] selects lifecycle events by time range, queue, class, event
//!   type, job id and metadata `key=value` pairs; [`matches()`] applies it.
//! * [`stats`] groups matching events ([`GroupBy`]: class, queue or one
//!   metadata key) and summarises `time_in_queue` (carried by `dequeued`
//!   events) and `time_to_perform` (carried by `perform_finished` and
//!   `failed`) as count, p50, p95, p99, max and mean ([`Summary`]), plus an
//!   SLA figure: the share of dequeues whose `time_in_queue` was at most N
//!   seconds ([`Sla`]).
//! * [`scan`] reads the whole lifecycle log of a store, in pages, keeping
//!   the events a filter matches; [`scan_newest_first`] reads it backwards
//!   from the newest event and stops when told to (a recent window, the
//!   last event of some kind), without reading the older part.
//! * [`series`] buckets events by time (and group) for charts.
//!
//! # Percentiles
//! Percentiles are exact, by the **nearest-rank** method: for `n` values
//! sorted ascending, the p-th percentile is the value of rank
//! `ceil(p / 100 * n)` (1-based, at least 1). It is always one of the
//! observed values; for example the p50 of `[1, 2, 3, 4]` is `2`, and its
//! p95 is `4`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Result;
use crate::event::Event;
use crate::lifecycle::{LifecycleEvent, LifecycleKind};
use crate::store::Store;
use crate::time::Timestamp;

/// Which lifecycle events to keep. Every set criterion must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events strictly before this time.
    pub until: Option<Timestamp>,
    /// Only events of this queue.
    pub queue: Option<String>,
    /// Only events of this job class.
    pub klass: Option<String>,
    /// Only events of this type.
    pub kind: Option<LifecycleKind>,
    /// Only events of this job.
    pub jid: Option<String>,
    /// Only events whose metadata has each `key` equal to `value` (see
    /// [`meta_text`] for how a JSON value compares with the text).
    pub metadata: Vec<(String, String)>,
}

impl Filter {
    /// Parses a `key=value` or `key:value` metadata criterion (split at
    /// the first `=`, else the first `:`); the key must not be empty.
    pub fn parse_meta(text: &str) -> Option<(String, String)> {
        let (k, v) = text.split_once('=').or_else(|| text.split_once(':'))?;
        if k.is_empty() {
            return None;
        }
        Some((k.to_owned(), v.to_owned()))
    }

    /// Applies one query parameter of the HTTP API's filter vocabulary:
    /// `since`, `until` (seconds), `queue`, `klass` (or `class`), `type`,
    /// `jid`, `meta` (`key:value`, repeatable). Returns `Ok(false)` when
    /// `key` is not one of them, and an error message naming the parameter
    /// when its value is bad.
    pub fn set_param(&mut self, key: &str, value: &str) -> std::result::Result<bool, String> {
        let nonempty = |name: &str| {
            if value.is_empty() {
                Err(format!("{name}: expected a non-empty value"))
            } else {
                Ok(value.to_owned())
            }
        };
        let time = |name: &str| {
            value
                .parse::<f64>()
                .ok()
                .and_then(Timestamp::from_secs_f64)
                .ok_or_else(|| format!("{name}: expected a number of seconds, got {value:?}"))
        };
        match key {
            "since" => self.since = Some(time("since")?),
            "until" => self.until = Some(time("until")?),
            "queue" => self.queue = Some(nonempty("queue")?),
            "klass" | "class" => self.klass = Some(nonempty("klass")?),
            "jid" => self.jid = Some(nonempty("jid")?),
            "type" => {
                self.kind = Some(LifecycleKind::parse(value).ok_or_else(|| {
                    format!(
                        "type: expected enqueued, dequeued, perform_started, \
                         perform_finished or failed, got {value:?}"
                    )
                })?)
            }
            "meta" => self.metadata.push(Filter::parse_meta(value).ok_or_else(|| {
                format!("meta: expected key:value (or key=value), got {value:?}")
            })?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A metadata value as text for comparison and grouping: a JSON string is
/// its content, anything else its JSON text (`true`, `3`, `null`, ...).
pub fn meta_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `ev` passes every criterion of `f`.
pub fn matches(f: &Filter, ev: &LifecycleEvent) -> bool {
    if f.since.is_some_and(|t| ev.at < t) || f.until.is_some_and(|t| ev.at >= t) {
        return false;
    }
    if f.queue.as_deref().is_some_and(|q| q != ev.queue)
        || f.klass.as_deref().is_some_and(|k| k != ev.klass)
        || f.jid.as_deref().is_some_and(|j| j != ev.jid)
        || f.kind.is_some_and(|k| k != ev.kind)
    {
        return false;
    }
    f.metadata
        .iter()
        .all(|(k, v)| ev.metadata.get(k).is_some_and(|m| meta_text(m) == *v))
}

/// How many log entries [`scan`] reads at a time.
pub const SCAN_PAGE: i64 = 10_000;

/// Reads the store's whole event log after sequence `after`, in pages of
/// [`SCAN_PAGE`], and returns the lifecycle events `f` matches, oldest
/// first. This reads every event; it is linear in the size of the log.
pub async fn scan(store: &dyn Store, f: &Filter, after: i64) -> Result<Vec<LifecycleEvent>> {
    let mut cursor = after;
    let mut out = Vec::new();
    loop {
        let page = store.events_after(cursor, SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        out.extend(
            page.iter()
                // A type filter skips other kinds before parsing them.
                .filter(|e| f.kind.is_none() || e.lifecycle_kind() == f.kind)
                .filter_map(|e| e.lifecycle())
                .filter(|ev| matches(f, ev)),
        );
        if (page.len() as i64) < SCAN_PAGE {
            break;
        }
    }
    Ok(out)
}

/// The highest sequence number in the store's event log, or None when the
/// log is empty. Found with `events_after(x, 1)` probes, galloping up from
/// the oldest event and then bisecting: O(log n) small reads.
pub async fn latest_seq(store: &dyn Store) -> Result<Option<i64>> {
    let next_after = |x: i64| async move {
        Ok::<_, crate::error::Error>(store.events_after(x, 1).await?.first().map(|e| e.seq))
    };
    let Some(mut lo) = next_after(0).await? else {
        return Ok(None);
    };
    // Invariant: an event has seq `lo`; none has a seq above `hi`; so the
    // latest is in `[lo, hi]`.
    let mut step: i64 = 1;
    let mut hi = loop {
        let probe = lo.saturating_add(step);
        match next_after(probe).await? {
            Some(seq) => lo = seq,
            None => break probe,
        }
        step = step.saturating_mul(2);
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match next_after(mid).await? {
            Some(seq) => lo = seq,
            None => hi = mid,
        }
    }
    Ok(Some(lo))
}

/// Reads the store's event log newest first, in windows of `page`
/// sequence numbers, handing each event to `visit` until it returns
/// [`ControlFlow::Break`] or the log's oldest event has been visited.
/// Events committed after the read began are not visited. Stopping early
/// reads only the newer part of the log, so a caller that wants "the last
/// hour" or "the latest event of some kind" does not read it all.
pub async fn scan_newest_first(
    store: &dyn Store,
    page: i64,
    mut visit: impl FnMut(&Event) -> ControlFlow<()>,
) -> Result<()> {
    let page = page.max(1);
    let Some(oldest) = store.events_after(0, 1).await?.first().map(|e| e.seq) else {
        return Ok(());
    };
    let Some(mut end) = latest_seq(store).await? else {
        return Ok(());
    };
    while end >= oldest {
        let start = end.saturating_sub(page).max(oldest - 1);
        // (start, end] holds at most `page` sequence numbers, so one read
        // returns all its events (and perhaps later ones, skipped here).
        let events = store.events_after(start, page).await?;
        for e in events.iter().rev().filter(|e| e.seq <= end) {
            if visit(e).is_break() {
                return Ok(());
            }
        }
        end = start;
    }
    Ok(())
}

/// A lifecycle event as natural JSON: `seq`, `event_type`, `timestamp`
/// (seconds), `jid`, `queue`, `klass`, `args`, `metadata`, `origin`,
/// `time_in_queue`, `time_to_perform` and `error` (null when absent).
pub fn event_json(ev: &LifecycleEvent) -> Value {
    json!({
        "seq": ev.seq,
        "event_type": ev.kind.as_str(),
        "timestamp": ev.at.as_secs_f64(),
        "jid": ev.jid,
        "queue": ev.queue,
        "klass": ev.klass,
        "args": ev.args,
        "metadata": ev.metadata,
        "origin": {"hostname": ev.origin.hostname, "process": ev.origin.process},
        "time_in_queue": ev.time_in_queue,
        "time_to_perform": ev.time_to_perform,
        "error": ev.error.as_ref().map(|e| json!({
            "class": e.class, "message": e.message, "backtrace": e.backtrace,
        })),
    })
}

/// One page of a search: `events` (matching, oldest first, as [`scan`]
/// returns them) restricted to sequence numbers below `before` (if set),
/// reversed when `newest_first`, cut to `limit`. Returns the page and the
/// cursor of the next page (the last event's seq, to pass as `after` or
/// `before`), or None when this is the last page.
pub fn page(
    mut events: Vec<LifecycleEvent>,
    before: Option<i64>,
    newest_first: bool,
    limit: usize,
) -> (Vec<LifecycleEvent>, Option<i64>) {
    if let Some(b) = before {
        events.retain(|e| e.seq < b);
    }
    if newest_first {
        events.reverse();
    }
    let more = events.len() > limit;
    events.truncate(limit);
    let next = if more {
        events.last().map(|e| e.seq)
    } else {
        None
    };
    (events, next)
}

/// How much history to keep: events older than `max_age` seconds, and all
/// but the newest `max_events` log entries, are dropped (unset = no limit).
/// Both count the whole event log (qless events and lifecycle events share
/// it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retention {
    /// Keep events at most this many seconds old.
    pub max_age: Option<f64>,
    /// Keep at most this many events.
    pub max_events: Option<u64>,
}

/// The sequence number below which [`Retention`] drops events at `now`, or
/// None when nothing is to go. The log is read in sequence order; the age
/// limit drops the prefix before the first event at or after
/// `now - max_age`.
pub async fn retention_cutoff(
    store: &dyn Store,
    now: Timestamp,
    r: &Retention,
) -> Result<Option<i64>> {
    if r.max_age.is_none() && r.max_events.is_none() {
        return Ok(None);
    }
    let oldest_kept = r.max_age.map(|a| now.add_secs(-a));
    let mut seqs: Vec<i64> = Vec::new();
    let mut age_cut: Option<i64> = None;
    let mut age_done = oldest_kept.is_none();
    let mut cursor = 0;
    loop {
        let page = store.events_after(cursor, SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for e in &page {
            if !age_done && oldest_kept.is_some_and(|t| e.at >= t) {
                age_cut = Some(e.seq);
                age_done = true;
            }
            seqs.push(e.seq);
        }
        if (page.len() as i64) < SCAN_PAGE {
            break;
        }
    }
    let Some(&latest) = seqs.last() else {
        return Ok(None);
    };
    // Every event is older than the age limit: all go.
    let age_cut = if age_done { age_cut } else { Some(latest + 1) };
    let size_cut = r.max_events.and_then(|m| {
        let len = seqs.len() as u64;
        (len > m).then(|| {
            let first_kept = (len - m) as usize;
            seqs.get(first_kept).copied().unwrap_or(latest + 1)
        })
    });
    let cut = age_cut.into_iter().chain(size_cut).max();
    Ok(cut.filter(|c| seqs.first().is_some_and(|f| f < c)))
}

/// Applies a [`Retention`] at `now`: deletes the events it drops with
/// [`Store::events_prune`]; returns how many went.
pub async fn prune(store: &dyn Store, now: Timestamp, r: &Retention) -> Result<u64> {
    match retention_cutoff(store, now, r).await? {
        Some(cut) => store.events_prune(cut).await,
        None => Ok(0),
    }
}

/// How [`stats`] groups events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// One group for everything (its name is null).
    All,
    /// By job class.
    Class,
    /// By queue.
    Queue,
    /// By the value of one metadata key ([`meta_text`]); events without
    /// the key form the group named null.
    Meta(String),
}

impl GroupBy {
    /// Parses `class`, `queue` or `meta:<key>` (also `metadata:<key>`).
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "class" | "klass" => Some(GroupBy::Class),
            "queue" => Some(GroupBy::Queue),
            _ => {
                let key = text
                    .strip_prefix("meta:")
                    .or_else(|| text.strip_prefix("metadata:"))?;
                (!key.is_empty()).then(|| GroupBy::Meta(key.to_owned()))
            }
        }
    }

    /// The name [`GroupBy::parse`] reads (`class`, `queue`, `meta:<key>`),
    /// or None for [`GroupBy::All`].
    pub fn name(&self) -> Option<String> {
        match self {
            GroupBy::All => None,
            GroupBy::Class => Some("class".to_owned()),
            GroupBy::Queue => Some("queue".to_owned()),
            GroupBy::Meta(k) => Some(format!("meta:{k}")),
        }
    }

    fn key(&self, ev: &LifecycleEvent) -> Option<String> {
        match self {
            GroupBy::All => None,
            GroupBy::Class => Some(ev.klass.clone()),
            GroupBy::Queue => Some(ev.queue.clone()),
            GroupBy::Meta(k) => ev.metadata.get(k).map(meta_text),
        }
    }
}

/// Count, nearest-rank percentiles, max and mean of a set of durations
/// (seconds). All but `count` are null when there are no values.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many values.
    pub count: u64,
    /// 50th percentile (nearest rank).
    pub p50: Option<f64>,
    /// 95th percentile (nearest rank).
    pub p95: Option<f64>,
    /// 99th percentile (nearest rank).
    pub p99: Option<f64>,
    /// The largest value.
    pub max: Option<f64>,
    /// The arithmetic mean.
    pub mean: Option<f64>,
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of values sorted
/// ascending: the value of rank `ceil(p / 100 * n)` (at least 1); None if
/// empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

impl Summary {
    /// Summarises `values` (any order).
    pub fn of(mut values: Vec<f64>) -> Summary {
        values.sort_by(f64::total_cmp);
        let count = values.len() as u64;
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        Summary {
            count,
            p50: percentile(&values, 50.0),
            p95: percentile(&values, 95.0),
            p99: percentile(&values, 99.0),
            max: values.last().copied(),
            mean,
        }
    }
}

/// The SLA figure: of the dequeues counted (`total`), how many waited at
/// most the threshold in their queue (`within`), and the share (null when
/// `total` is 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sla {
    /// The threshold, seconds.
    pub seconds: f64,
    /// Dequeues whose `time_in_queue` was <= `seconds`.
    pub within: u64,
    /// Dequeues counted.
    pub total: u64,
    /// `within / total`.
    pub share: Option<f64>,
}

/// The figures of one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupStats {
    /// The group's name (class, queue or metadata value); null for
    /// [`GroupBy::All`] and for events without the metadata key.
    pub group: Option<String>,
    /// Matching events in the group (of every type).
    pub count: u64,
    /// `time_in_queue` of its `dequeued` events.
    pub time_in_queue: Summary,
    /// `time_to_perform` of its `perform_finished` and `failed` events.
    pub time_to_perform: Summary,
    /// The SLA figure, when a threshold was asked for.
    pub sla: Option<Sla>,
}

/// Groups events and summarises each group; groups come sorted by name
/// (null first). A job dequeued twice (a retry) counts twice.
pub fn stats<'a>(
    events: impl IntoIterator<Item = &'a LifecycleEvent>,
    by: &GroupBy,
    sla_seconds: Option<f64>,
) -> Vec<GroupStats> {
    #[derive(Default)]
    struct Acc {
        count: u64,
        tiq: Vec<f64>,
        ttp: Vec<f64>,
    }
    let mut groups: BTreeMap<Option<String>, Acc> = BTreeMap::new();
    for ev in events {
        let acc = groups.entry(by.key(ev)).or_default();
        acc.count += 1;
        if let Some(t) = ev.time_in_queue {
            acc.tiq.push(t);
        }
        if let Some(t) = ev.time_to_perform {
            acc.ttp.push(t);
        }
    }
    groups
        .into_iter()
        .map(|(group, acc)| {
            let sla = sla_seconds.map(|seconds| {
                let total = acc.tiq.len() as u64;
                let within = acc.tiq.iter().filter(|t| **t <= seconds).count() as u64;
                Sla {
                    seconds,
                    within,
                    total,
                    share: (total > 0).then(|| within as f64 / total as f64),
                }
            });
            GroupStats {
                group,
                count: acc.count,
                time_in_queue: Summary::of(acc.tiq),
                time_to_perform: Summary::of(acc.ttp),
                sla,
            }
        })
        .collect()
}

/// One time bucket of a [`Series`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Point {
    /// The bucket's start, whole seconds since the epoch (a multiple of
    /// the interval).
    pub t: i64,
    /// Matching events in the bucket (of every type).
    pub count: u64,
    /// `time_in_queue` of the bucket's `dequeued` events.
    pub time_in_queue: Summary,
    /// `time_to_perform` of the bucket's `perform_finished` and `failed`
    /// events.
    pub time_to_perform: Summary,
}

/// The points of one group, one per bucket of the range (empty buckets
/// included, with count 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// The group's name, as in [`GroupStats::group`].
    pub group: Option<String>,
    /// One point per bucket, oldest first.
    pub points: Vec<Point>,
}

/// The start (micros) of the `interval`-second bucket holding `t`.
fn bucket_start(t: Timestamp, interval: i64) -> i64 {
    let width = interval.saturating_mul(1_000_000);
    t.as_micros().div_euclid(width) * width
}

/// How many `interval`-second buckets (aligned on multiples of the
/// interval since the epoch) cover `[from, to)`; 0 when the range is
/// empty or the interval not positive.
pub fn bucket_count(from: Timestamp, to: Timestamp, interval: i64) -> i64 {
    if interval <= 0 || to <= from {
        return 0;
    }
    let first = bucket_start(from, interval);
    let last = bucket_start(Timestamp(to.as_micros() - 1), interval);
    (last - first) / interval.saturating_mul(1_000_000) + 1
}

/// Buckets the events in `[from, to)` by time (`interval` seconds, aligned
/// on multiples of the interval since the epoch) and groups them by `by`;
/// each bucket of each group is summarised as [`stats`] does. Every group
/// has a point for every bucket of the range; with [`GroupBy::All`] there
/// is always one series, even without events. Groups come sorted by name
/// (null first).
pub fn series<'a>(
    events: impl IntoIterator<Item = &'a LifecycleEvent>,
    by: &GroupBy,
    interval: i64,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Series> {
    let n = bucket_count(from, to, interval) as usize;
    if n == 0 {
        return Vec::new();
    }
    let first = bucket_start(from, interval);
    let width = interval * 1_000_000;
    let mut buckets: Vec<Vec<&LifecycleEvent>> = vec![Vec::new(); n];
    for ev in events {
        if ev.at >= from && ev.at < to {
            let i = ((bucket_start(ev.at, interval) - first) / width) as usize;
            buckets[i].push(ev);
        }
    }
    let empty_points = || -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                t: (first + i as i64 * width) / 1_000_000,
                ..Point::default()
            })
            .collect()
    };
    let mut out: BTreeMap<Option<String>, Vec<Point>> = BTreeMap::new();
    if *by == GroupBy::All {
        out.insert(None, empty_points());
    }
    for (i, bucket) in buckets.iter().enumerate() {
        for g in stats(bucket.iter().copied(), by, None) {
            let points = out.entry(g.group).or_insert_with(empty_points);
            points[i].count = g.count;
            points[i].time_in_queue = g.time_in_queue;
            points[i].time_to_perform = g.time_to_perform;
        }
    }
    out.into_iter()
        .map(|(group, points)| Series { group, points })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Origin;
    use serde_json::Map;

    #[test]
    fn lifecycle_kind_is_read_without_parsing_and_agrees_with_parsing() {
        for kind in [
            LifecycleKind::Enqueued,
            LifecycleKind::Dequeued,
            LifecycleKind::PerformStarted,
            LifecycleKind::PerformFinished,
            LifecycleKind::Failed,
        ] {
            let mut e = ev(kind, 5, "K", Some(1.0), None);
            e.args = json!({"big": "x".repeat(10_000), "kind": "failed"});
            let logged = crate::Event {
                seq: 9,
                at: e.at,
                channel: crate::logic::LIFECYCLE_CHANNEL.into(),
                message: serde_json::to_string(&e).unwrap(),
            };
            assert_eq!(logged.lifecycle_kind(), Some(kind));
            assert_eq!(logged.lifecycle().map(|l| l.kind), Some(kind));
        }
        let other = crate::Event {
            seq: 1,
            at: Timestamp::ZERO,
            channel: "ql:log".into(),
            message: r#"{"kind":"failed"}"#.into(),
        };
        assert_eq!(other.lifecycle_kind(), None);
    }

    fn ev(
        kind: LifecycleKind,
        at: i64,
        klass: &str,
        tiq: Option<f64>,
        ttp: Option<f64>,
    ) -> LifecycleEvent {
        let mut metadata = Map::new();
        metadata.insert("strategy".into(), Value::String(format!("s-{klass}")));
        metadata.insert("pages".into(), json!(3));
        LifecycleEvent {
            seq: at,
            kind,
            at: Timestamp::from_secs(at),
            jid: format!("j{at}"),
            queue: "q".into(),
            klass: klass.into(),
            args: json!([]),
            metadata,
            origin: Origin::default(),
            time_in_queue: tiq,
            time_to_perform: ttp,
            error: None,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 95.0), Some(10.0));
        assert_eq!(percentile(&v, 99.0), Some(10.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        // 100 values 1..=100: p95 is the 95th, p99 the 99th.
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        // 20 values: p95 rank ceil(19) = 19, p99 rank ceil(19.8) = 20.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&v, 99.0), Some(20.0));
    }

    #[test]
    fn summary_of_unsorted_values() {
        let s = Summary::of(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.p50, Some(2.0));
        assert_eq!(s.p95, Some(4.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.mean, Some(2.5));
        assert_eq!(Summary::of(vec![]), Summary::default());
    }

    #[test]
    fn filter_criteria() {
        let e = ev(LifecycleKind::Dequeued, 100, "A", Some(1.0), None);
        assert!(matches(&Filter::default(), &e));
        let f = |g: fn(&mut Filter)| {
            let mut f = Filter::default();
            g(&mut f);
            matches(&f, &e)
        };
        assert!(f(|f| f.since = Some(Timestamp::from_secs(100))));
        assert!(!f(|f| f.since = Some(Timestamp::from_secs(101))));
        assert!(!f(|f| f.until = Some(Timestamp::from_secs(100))));
        assert!(f(|f| f.until = Some(Timestamp::from_secs(101))));
        assert!(!f(|f| f.queue = Some("other".into())));
        assert!(f(|f| f.klass = Some("A".into())));
        assert!(!f(|f| f.kind = Some(LifecycleKind::Enqueued)));
        assert!(f(|f| f.jid = Some("j100".into())));
        assert!(f(|f| f.metadata = vec![("strategy".into(), "s-A".into())]));
        assert!(f(|f| f.metadata = vec![("pages".into(), "3".into())]));
        assert!(!f(|f| f.metadata = vec![("pages".into(), "4".into())]));
        assert!(!f(|f| f.metadata = vec![("missing".into(), "x".into())]));
        assert_eq!(
            Filter::parse_meta("a=b:c"),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(Filter::parse_meta("a:b"), Some(("a".into(), "b".into())));
        assert_eq!(Filter::parse_meta("=b"), None);
        assert_eq!(Filter::parse_meta("ab"), None);
    }

    #[test]
    fn grouped_stats_and_sla() {
        let events = vec![
            ev(LifecycleKind::Enqueued, 1, "A", None, None),
            ev(LifecycleKind::Dequeued, 2, "A", Some(1.0), None),
            ev(LifecycleKind::Dequeued, 3, "A", Some(5.0), None),
            ev(LifecycleKind::Dequeued, 4, "A", Some(2.0), None),
            ev(LifecycleKind::PerformFinished, 5, "A", None, Some(0.5)),
            ev(LifecycleKind::Dequeued, 6, "B", Some(10.0), None),
            ev(LifecycleKind::Failed, 7, "B", None, Some(3.0)),
        ];
        let g = stats(&events, &GroupBy::Class, Some(2.0));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].group.as_deref(), Some("A"));
        assert_eq!(g[0].count, 5);
        assert_eq!(g[0].time_in_queue.count, 3);
        assert_eq!(g[0].time_in_queue.p50, Some(2.0));
        assert_eq!(g[0].time_in_queue.max, Some(5.0));
        assert_eq!(g[0].time_in_queue.mean, Some(8.0 / 3.0));
        assert_eq!(g[0].time_to_perform.p99, Some(0.5));
        let sla = g[0].sla.clone().expect("sla asked");
        assert_eq!((sla.within, sla.total), (2, 3));
        assert_eq!(sla.share, Some(2.0 / 3.0));
        assert_eq!(g[1].group.as_deref(), Some("B"));
        assert_eq!(g[1].sla.as_ref().map(|s| s.share), Some(Some(0.0)));
        let all = stats(&events, &GroupBy::All, None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].group, None);
        assert_eq!(all[0].count, 7);
        assert_eq!(all[0].time_in_queue.p95, Some(10.0));
        assert!(all[0].sla.is_none());
        let m = stats(&events, &GroupBy::Meta("strategy".into()), None);
        assert_eq!(
            m.iter().map(|g| g.group.clone()).collect::<Vec<_>>(),
            vec![Some("s-A".into()), Some("s-B".into())]
        );
        assert_eq!(GroupBy::parse("meta:x"), Some(GroupBy::Meta("x".into())));
        assert_eq!(GroupBy::parse("meta:"), None);
        assert_eq!(GroupBy::parse("nope"), None);
        assert_eq!(GroupBy::Meta("x".into()).name().as_deref(), Some("meta:x"));
        assert_eq!(GroupBy::All.name(), None);
        let (p, next) = page(events.clone(), Some(7), true, 2);
        assert_eq!(p.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![6, 5]);
        assert_eq!(next, Some(5));
        let (p, next) = page(events, None, false, 7);
        assert_eq!(p.len(), 7);
        assert_eq!(next, None);
    }

    #[test]
    fn series_buckets_groups_and_fills_gaps() {
        // Buckets of 10 s over [100, 130): 100, 110, 120.
        let events = vec![
            ev(LifecycleKind::Dequeued, 101, "A", Some(4.0), None),
            ev(LifecycleKind::Dequeued, 105, "A", Some(1.0), None),
            ev(LifecycleKind::Dequeued, 109, "B", Some(9.0), None),
            ev(LifecycleKind::PerformFinished, 125, "A", None, Some(2.0)),
            ev(LifecycleKind::Dequeued, 130, "A", Some(7.0), None), // outside
        ];
        let (from, to) = (Timestamp::from_secs(100), Timestamp::from_secs(130));
        assert_eq!(bucket_count(from, to, 10), 3);
        assert_eq!(bucket_count(Timestamp::from_secs(95), to, 10), 4);
        assert_eq!(bucket_count(to, from, 10), 0);
        let all = series(&events, &GroupBy::All, 10, from, to);
        assert_eq!(all.len(), 1);
        let p = &all[0].points;
        assert_eq!(
            p.iter().map(|p| p.t).collect::<Vec<_>>(),
            vec![100, 110, 120]
        );
        assert_eq!(p.iter().map(|p| p.count).collect::<Vec<_>>(), vec![3, 0, 1]);
        assert_eq!(p[0].time_in_queue, Summary::of(vec![4.0, 1.0, 9.0]));
        assert_eq!(p[1].time_in_queue, Summary::default());
        assert_eq!(p[2].time_to_perform.p50, Some(2.0));
        let by = series(&events, &GroupBy::Class, 10, from, to);
        assert_eq!(by.len(), 2);
        assert_eq!(by[1].group.as_deref(), Some("B"));
        assert_eq!(
            by[1].points.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 0, 0]
        );
        assert_eq!(by[0].points[0].time_in_queue.p95, Some(4.0));
        assert!(series(&[], &GroupBy::Class, 10, from, to).is_empty());
        assert_eq!(series(&[], &GroupBy::All, 10, from, to)[0].points.len(), 3);
    }

    #[test]
    fn filter_params() {
        let mut f = Filter::default();
        assert_eq!(f.set_param("since", "100.5"), Ok(true));
        assert_eq!(f.set_param("class", "A"), Ok(true));
        assert_eq!(f.set_param("type", "failed"), Ok(true));
        assert_eq!(f.set_param("meta", "k:v"), Ok(true));
        assert_eq!(f.set_param("interval", "60"), Ok(false));
        assert_eq!(f.since, Some(Timestamp::from_secs_f64(100.5).unwrap()));
        assert_eq!(f.klass.as_deref(), Some("A"));
        assert_eq!(f.kind, Some(LifecycleKind::Failed));
        assert_eq!(f.metadata, vec![("k".into(), "v".into())]);
        for (k, v) in [
            ("until", "soon"),
            ("queue", ""),
            ("type", "x"),
            ("meta", "kv"),
        ] {
            let e = f.set_param(k, v).expect_err(k);
            assert!(e.starts_with(&format!("{k}: ")), "{e}");
        }
    }

    /// A store holding only an event log (with gaps in its numbers).
    #[derive(Debug)]
    struct LogOnly(Vec<Event>);

    #[async_trait::async_trait]
    impl Store for LogOnly {
        async fn execute_from(
            &self,
            _: Timestamp,
            _: Origin,
            _: crate::Command,
            _: std::sync::Arc<dyn crate::EventSink>,
        ) -> Result<crate::Reply> {
            Err(crate::Error::invalid("log only"))
        }
        async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
            Ok(self
                .0
                .iter()
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect())
        }
        async fn flush(&self) -> Result<()> {
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }

    /// Runs a future that never waits (the [`LogOnly`] store's).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the log-only store never waits"),
        }
    }

    fn log(seqs: &[i64]) -> LogOnly {
        LogOnly(
            seqs.iter()
                .map(|&seq| Event {
                    seq,
                    at: Timestamp::from_secs(seq),
                    channel: "ql:log".into(),
                    message: String::new(),
                })
                .collect(),
        )
    }

    #[test]
    fn newest_first_reads_every_event_backwards_and_stops_early() {
        assert_eq!(ready(latest_seq(&log(&[]))).unwrap(), None);
        assert_eq!(ready(latest_seq(&log(&[7]))).unwrap(), Some(7));
        for n in 1..=70 {
            let dense: Vec<i64> = (1..=n).collect();
            assert_eq!(ready(latest_seq(&log(&dense))).unwrap(), Some(n), "1..={n}");
            let sparse: Vec<i64> = (1..=n).map(|s| s * 3 + 10).collect();
            assert_eq!(
                ready(latest_seq(&log(&sparse))).unwrap(),
                Some(n * 3 + 10),
                "sparse {n}"
            );
        }
        // Gaps (pruned, flushed or rolled-back numbers) anywhere.
        let seqs: Vec<i64> = (5..300)
            .filter(|s| s % 7 != 0 && !(100..180).contains(s))
            .collect();
        let store = log(&seqs);
        assert_eq!(ready(latest_seq(&store)).unwrap(), Some(299));
        for page in [1, 3, 10, 1000] {
            let mut seen = Vec::new();
            ready(scan_newest_first(&store, page, |e| {
                seen.push(e.seq);
                ControlFlow::Continue(())
            }))
            .unwrap();
            let mut want = seqs.clone();
            want.reverse();
            assert_eq!(seen, want, "page {page}");
        }
        let mut seen = Vec::new();
        ready(scan_newest_first(&store, 10, |e| {
            seen.push(e.seq);
            if e.seq <= 290 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }))
        .unwrap();
        assert_eq!(seen, vec![299, 298, 297, 296, 295, 293, 292, 291, 290]);
        ready(scan_newest_first(&log(&[]), 10, |_| panic!("no events"))).unwrap();
    }
}
