//! The Server-Sent Events stream `GET /v1/events`.
//!
//! The store's durable event log is the source of truth: a stream is a
//! cursor over it. The handler reads a page of events after the cursor,
//! sends the ones that match the filters, moves the cursor past every event
//! it read (matching or not), and when the log has nothing newer waits until
//! the server commits more events (or a short poll interval passes, which
//! also picks up events written by another process sharing the store).
//! Because the cursor is the event's sequence number and every SSE event
//! carries it as its `id`, a client that reconnects with `Last-Event-ID`
//! gets exactly the events it missed: no gap, no duplicate.
//!
//! # Request
//! `GET /v1/events?after=SEQ&queue=Q&jid=J&worker=W&type=T`, all optional:
//! * the start: the `Last-Event-ID` header if present (resume), else `after`,
//!   else the log's current end (only events committed from now on);
//! * `queue`: events whose payload's `queue` (or `to`, for `advanced`) is Q;
//! * `jid`: events about job J (the payload's `jid`, or the bare jid that
//!   the tracking channels such as `ql:track` carry);
//! * `worker`: events whose payload's `worker` is W, or on channel `ql:w:W`;
//! * `type`: events whose type is T: the payload's `event` field (`put`,
//!   `popped`, `completed`, `failed`, `canceled`, `lock_lost`,
//!   `config_set`...), the channel's suffix for the tracking channels
//!   (`ql:track` → `track`), or the channel's full name (`ql:log`);
//! * `lifecycle=true`: clew's lifecycle events as well (channel
//!   `clew:lifecycle`, type `enqueued`, `dequeued`, `perform_started`,
//!   `perform_finished` or `failed`; the message is the event as JSON). A
//!   pop sends no qless event unless the job is tracked, so a view that
//!   must follow pops (the dashboard) asks for these.
//!
//! Several filters must all match; an empty value is no filter.
//!
//! # Response
//! `text/event-stream`. It opens with a comment naming the start cursor.
//! Each event is
//! ```text
//! id: <seq>
//! event: <channel>
//! data: {"seq": <seq>, "channel": "<channel>", "type": "<type>", "message": "<payload string>", "at": <float seconds>}
//! ```
//! Idle streams get a keep-alive comment every 15 seconds. If the store
//! fails, the stream sends an `error` event with the usual
//! `{"error": {"code", "message"}}` body and ends; a client may reconnect
//! with `Last-Event-ID`. The stream ends cleanly when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use clew_core::{Event, Store};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::AppState;

/// Most events read from the log at once.
pub const PAGE: i64 = 1_000;

/// How long an idle stream waits for a wake-up before reading the log
/// anyway (to see events committed by another process on the same store).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The event-stream routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/events", get(events))
}

/// Query of `GET /v1/events` (see the module doc).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Start after this sequence number (ignored when `Last-Event-ID` is
    /// sent).
    #[serde(default)]
    pub after: Option<i64>,
    /// Only events about this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Only events about this job.
    #[serde(default)]
    pub jid: Option<String>,
    /// Only events about this worker.
    #[serde(default)]
    pub worker: Option<String>,
    /// Only events of this type (or on this channel).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Also send clew's lifecycle events (`event: clew:lifecycle`, type
    /// `enqueued`, `dequeued`, ...); default false.
    #[serde(default)]
    pub lifecycle: Option<bool>,
}

/// Which events a stream sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Queue the event is about.
    pub queue: Option<String>,
    /// Job the event is about.
    pub jid: Option<String>,
    /// Worker the event is about.
    pub worker: Option<String>,
    /// The event's type or channel.
    pub kind: Option<String>,
    /// Whether clew's lifecycle events (channel `clew:lifecycle`: enqueued,
    /// dequeued, perform_started, perform_finished, failed) are sent too.
    pub lifecycle: bool,
}

/// What a filter looks at in one event.
#[derive(Debug)]
struct Facts {
    kind: String,
    jid: Option<String>,
    queues: Vec<String>,
    worker: Option<String>,
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Facts {
    fn of(ev: &Event) -> Facts {
        let channel_worker = ev.channel.strip_prefix("ql:w:").map(str::to_owned);
        match serde_json::from_str::<Value>(&ev.message) {
            Ok(payload) if payload.is_object() => Facts {
                kind: str_field(&payload, "event")
                    .or_else(|| {
                        (ev.channel == clew_core::logic::LIFECYCLE_CHANNEL)
                            .then(|| str_field(&payload, "kind"))
                            .flatten()
                    })
                    .unwrap_or_else(|| ev.channel.clone()),
                jid: str_field(&payload, "jid"),
                queues: ["queue", "to"]
                    .iter()
                    .filter_map(|k| str_field(&payload, k))
                    .collect(),
                worker: channel_worker.or_else(|| str_field(&payload, "worker")),
            },
            // A bare jid (ql:track, ql:put, ql:popped, ...).
            _ => Facts {
                kind: ev
                    .channel
                    .strip_prefix("ql:")
                    .unwrap_or(&ev.channel)
                    .to_owned(),
                jid: Some(ev.message.clone()),
                queues: Vec::new(),
                worker: channel_worker,
            },
        }
    }
}

/// The event's type as the stream reports it (see the module doc).
pub fn event_type(ev: &Event) -> String {
    Facts::of(ev).kind
}

impl Filter {
    /// Whether `ev` passes every filter that is set. The stream carries
    /// qless's events (`ql:...` channels), and clew's lifecycle events when
    /// [`Filter::lifecycle`] is set.
    pub fn matches(&self, ev: &Event) -> bool {
        let lifecycle = ev.channel == clew_core::logic::LIFECYCLE_CHANNEL;
        if !(ev.is_qless() || (self.lifecycle && lifecycle)) {
            return false;
        }
        if self.queue.is_none()
            && self.jid.is_none()
            && self.worker.is_none()
            && self.kind.is_none()
        {
            return true;
        }
        let facts = Facts::of(ev);
        self.kind
            .as_ref()
            .is_none_or(|k| *k == facts.kind || *k == ev.channel)
            && self
                .jid
                .as_ref()
                .is_none_or(|j| facts.jid.as_ref() == Some(j))
            && self.queue.as_ref().is_none_or(|q| facts.queues.contains(q))
            && self
                .worker
                .as_ref()
                .is_none_or(|w| facts.worker.as_ref() == Some(w))
    }
}

/// The SSE form of one event.
pub fn to_sse(ev: &Event) -> SseEvent {
    let data = json!({
        "seq": ev.seq,
        "channel": ev.channel,
        "type": event_type(ev),
        "message": ev.message,
        "at": ev.at.as_secs_f64(),
    });
    // A channel carries a worker name chosen by callers; the SSE framing
    // cannot carry line breaks (axum would panic on them).
    let name: String = ev
        .channel
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect();
    SseEvent::default()
        .id(ev.seq.to_string())
        .event(name)
        .data(data.to_string())
}

/// The sequence number of the newest event in the log, found with
/// O(log n) indexed reads; `hint` is a number known not to exceed the end
/// by more than events that were since deleted (0 is always fine). When no
/// event is newer than `hint`, the answer is `hint`.
pub async fn log_end(store: &dyn Store, hint: i64) -> clew_core::Result<i64> {
    let first_after = |x: i64| async move {
        store
            .events_after(x, 1)
            .await
            .map(|v| v.first().map(|e| e.seq))
    };
    let Some(mut lo) = first_after(hint.max(0)).await? else {
        return Ok(hint.max(0));
    };
    // Gallop: `lo` exists; find a `hi` with nothing after it.
    let mut step: i64 = 1;
    let mut hi = loop {
        let probe = lo.saturating_add(step);
        match first_after(probe).await? {
            Some(seq) => {
                lo = seq;
                step = step.saturating_mul(2);
            }
            None => break probe,
        }
    };
    // lo <= end <= hi.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match first_after(mid).await? {
            Some(seq) => lo = seq,
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// One stream's position and what it waits on.
struct Cursor {
    state: AppState,
    after: i64,
    filter: Filter,
    ready: VecDeque<Event>,
    wake: watch::Receiver<i64>,
    stop: watch::Receiver<bool>,
    failed: bool,
}

impl Cursor {
    /// The next SSE item, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(to_sse(&ev));
            }
            let down = *self.stop.borrow();
            if self.failed || down {
                return None;
            }
            // Mark the current wake-up as seen before reading, so that a
            // commit landing after the read still wakes the wait below.
            self.wake.borrow_and_update();
            let page = match self
                .state
                .engine()
                .store()
                .events_after(self.after, PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    self.failed = true;
                    let body = ApiError::from(e);
                    let data = json!({"error": {"code": "internal", "message": body.message()}});
                    return Some(SseEvent::default().event("error").data(data.to_string()));
                }
            };
            if let Some(last) = page.last() {
                self.after = last.seq;
                let filter = &self.filter;
                self.ready
                    .extend(page.into_iter().filter(|e| filter.matches(e)));
                continue;
            }
            let wake = &mut self.wake;
            let stop = &mut self.stop;
            // The watch's read guard is not `Send`; drop it inside.
            let stopped = async move {
                let _ = stop.wait_for(|down| *down).await;
            };
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() {
                        // No more wake-ups (cannot happen while the state
                        // lives); fall back to polling.
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                }
                () = stopped => return None,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}

fn parse_last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Last-Event-ID: expected a non-negative integer event number, got {text:?}"
            ))
        })
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid(format!(
            "query: {} (expected after=<integer>, queue, jid, worker, type)",
            e.body_text()
        ))
    })?;
    if let Some(after) = q.after.filter(|a| *a < 0) {
        return Err(ApiError::invalid(format!(
            "after: expected a non-negative integer event number, got {after}"
        )));
    }
    let wake = state.event_wakeups();
    let start = match (parse_last_event_id(&headers)?, q.after) {
        (Some(id), _) => id,
        (None, Some(after)) => after,
        (None, None) => {
            let hint = *wake.borrow();
            log_end(state.engine().store().as_ref(), hint).await?
        }
    };
    let stop = state.shutting_down();
    let cursor = Cursor {
        after: start,
        filter: Filter {
            queue: q.queue.filter(|v| !v.is_empty()),
            jid: q.jid.filter(|v| !v.is_empty()),
            worker: q.worker.filter(|v| !v.is_empty()),
            kind: q.kind.filter(|v| !v.is_empty()),
            lifecycle: q.lifecycle.unwrap_or(false),
        },
        ready: VecDeque::new(),
        wake,
        stop,
        failed: false,
        state,
    };
    // The opening comment makes the response's headers go out at once, so a
    // client knows its cursor is set before it triggers events.
    let opening = SseEvent::default().comment(format!("clew events after {start}"));
    let rest = stream::unfold(cursor, |mut c| async move {
        let item = c.next().await?;
        Some((Ok(item), c))
    });
    let stream = futures_util::StreamExt::chain(stream::once(async { Ok(opening) }), rest);
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(KEEP_ALIVE_INTERVAL)
            .text("keep-alive"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_core::Timestamp;

    fn ev(channel: &str, message: &str) -> Event {
        Event {
            seq: 7,
            at: Timestamp::ZERO,
            channel: channel.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn filters_match_payload_fields_and_channels() {
        let put = ev("ql:log", r#"{"jid":"j1","event":"put","queue":"q1"}"#);
        let adv = ev(
            "ql:log",
            r#"{"jid":"j1","event":"advanced","queue":"q1","to":"q2"}"#,
        );
        let lost = ev(
            "ql:w:w1",
            r#"{"jid":"j2","event":"lock_lost","worker":"w1"}"#,
        );
        let track = ev("ql:track", "j3");
        let by = |f: Filter, e: &Event| f.matches(e);
        assert!(by(Filter::default(), &put));
        let q = |s: &str| Filter {
            queue: Some(s.into()),
            ..Filter::default()
        };
        assert!(by(q("q1"), &put));
        assert!(!by(q("q2"), &put));
        assert!(by(q("q2"), &adv));
        assert!(!by(q("q1"), &track));
        let j = |s: &str| Filter {
            jid: Some(s.into()),
            ..Filter::default()
        };
        assert!(by(j("j1"), &put));
        assert!(by(j("j3"), &track));
        assert!(!by(j("j1"), &track));
        let w = |s: &str| Filter {
            worker: Some(s.into()),
            ..Filter::default()
        };
        assert!(by(w("w1"), &lost));
        assert!(!by(w("w2"), &lost));
        assert!(!by(w("w1"), &put));
        let t = |s: &str| Filter {
            kind: Some(s.into()),
            ..Filter::default()
        };
        assert!(by(t("put"), &put));
        assert!(by(t("ql:log"), &put));
        assert!(!by(t("put"), &adv));
        assert!(by(t("track"), &track));
        assert!(by(t("ql:track"), &track));
        assert!(by(t("lock_lost"), &lost));
        let both = Filter {
            jid: Some("j1".into()),
            kind: Some("advanced".into()),
            ..Filter::default()
        };
        assert!(by(both.clone(), &adv));
        assert!(!by(both, &put));
    }

    /// A log with gaps (as a flush or a rolled-back command leaves).
    #[derive(Debug)]
    struct Log(Vec<i64>);

    type Fut<'a, T> =
        std::pin::Pin<Box<dyn std::future::Future<Output = clew_core::Result<T>> + Send + 'a>>;

    impl Store for Log {
        fn execute_from<'a, 'b>(
            &'a self,
            _now: Timestamp,
            _origin: clew_core::Origin,
            _command: clew_core::Command,
            _sink: std::sync::Arc<dyn clew_core::EventSink>,
        ) -> Fut<'b, clew_core::Reply>
        where
            'a: 'b,
            Self: 'b,
        {
            Box::pin(async { Err(clew_core::Error::store("read-only")) })
        }

        fn events_after<'a, 'b>(&'a self, after: i64, limit: i64) -> Fut<'b, Vec<Event>>
        where
            'a: 'b,
            Self: 'b,
        {
            let page = self
                .0
                .iter()
                .filter(|s| **s > after)
                .take(limit as usize)
                .map(|s| Event {
                    seq: *s,
                    ..ev("ql:log", "{}")
                })
                .collect();
            Box::pin(async move { Ok(page) })
        }

        fn flush<'a, 'b>(&'a self) -> Fut<'b, ()>
        where
            'a: 'b,
            Self: 'b,
        {
            Box::pin(async { Ok(()) })
        }

        fn close<'a, 'b>(&'a self) -> Fut<'b, ()>
        where
            'a: 'b,
            Self: 'b,
        {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn log_end_finds_the_newest_event_across_gaps() {
        let log = Log(vec![3, 4, 9, 10, 11, 50, 51, 52, 1000, 1001, 77_777]);
        for hint in [0, 1, 5, 11, 52, 999, 1001, 77_776] {
            assert_eq!(log_end(&log, hint).await.ok(), Some(77_777), "hint {hint}");
        }
        // Nothing after the hint: the hint (new events come after it).
        assert_eq!(log_end(&log, 77_777).await.ok(), Some(77_777));
        assert_eq!(log_end(&log, 90_000).await.ok(), Some(90_000));
        assert_eq!(log_end(&Log(vec![]), 0).await.ok(), Some(0));
        assert_eq!(log_end(&Log(vec![1]), 0).await.ok(), Some(1));
        let dense = Log((1..=5000).collect());
        assert_eq!(log_end(&dense, 0).await.ok(), Some(5000));
    }

    #[test]
    fn event_names_never_carry_line_breaks() {
        // axum panics on a line break in an event name; this must not.
        let e = ev("ql:w:bad\nworker\r", r#"{"jid":"j","event":"lock_lost"}"#);
        let _ = to_sse(&e);
        assert_eq!(event_type(&e), "lock_lost");
    }
}
