//! Batch rules (see [`crate::batch`]): creation, the one save hook that
//! keeps every batch's counters exact, and the callback put when a batch
//! finishes.

use serde_json::{json, Map, Value};

use super::{validate, Cx, ALL};
use crate::batch::{BatchOutcome, BatchParams, BatchRecord, BatchView};
use crate::command::{Command, PutParams, Reply};
use crate::error::{Error, Result};
use crate::job::{JobRecord, JobState};

/// Checks a `batch.create` before anything is written.
pub(super) fn validate_create(p: &BatchParams) -> Result<()> {
    const C: &str = "Batch.create";
    if p.id.is_empty() {
        return Err(Error::invalid(format!("{C}(): Arg \"id\" missing")));
    }
    if p.jobs.is_empty() {
        return Err(Error::invalid(format!(
            "{C}(): Arg \"jobs\" missing: a batch needs at least one job"
        )));
    }
    for (i, job) in p.jobs.iter().enumerate() {
        if job.batch.as_ref().is_some_and(|b| *b != p.id) {
            return Err(Error::invalid(format!(
                "{C}(): job {i} names another batch: {}",
                job.batch.as_deref().unwrap_or_default()
            )));
        }
        validate(&Command::Put(job.clone()))
            .map_err(|e| Error::new(e.kind(), format!("{C}(): job {i}: {}", e.message())))?;
    }
    if let Some(cb) = &p.spec.callback {
        for (arg, v) in [("queue", &cb.queue), ("klass", &cb.klass), ("jid", &cb.jid)] {
            if v.is_empty() {
                return Err(Error::invalid(format!(
                    "{C}(): Arg \"callback.{arg}\" missing"
                )));
            }
        }
        if cb.retries.is_some_and(|r| r < 0) {
            return Err(Error::invalid(format!(
                "{C}(): Arg \"callback.retries\" must not be negative"
            )));
        }
        if p.jobs.iter().any(|j| j.jid == cb.jid) {
            return Err(Error::invalid(format!(
                "{C}(): the callback's jid {} is one of the batch's jobs",
                cb.jid
            )));
        }
    }
    Ok(())
}

impl Cx<'_> {
    /// Before a job row is saved ([`Cx::save`]): when a batch's job changes
    /// outcome (pending, complete, failed) its batch's counters move with
    /// it.
    pub(super) fn batch_track(&mut self, rec: &mut JobRecord) -> Result<()> {
        if rec.batch.is_some() {
            let now = BatchOutcome::of(rec.state);
            if now != rec.batch_outcome {
                self.batch_move(rec, Some(now))?;
            }
        }
        Ok(())
    }

    /// Moves a batch job from the outcome its batch counted to `to` (`None`:
    /// canceled, the job is being deleted); finishes the batch when nothing
    /// is pending any more for the first time.
    pub(super) fn batch_move(
        &mut self,
        rec: &mut JobRecord,
        to: Option<BatchOutcome>,
    ) -> Result<()> {
        let Some(id) = rec.batch.clone() else {
            return Ok(());
        };
        // Batches are never deleted; a job whose batch is missing keeps
        // moving (its transition must not be refused for it).
        let Some(mut b) = self.tx.batch_get(&id)? else {
            return Ok(());
        };
        b.count(rec.batch_outcome, -1);
        match to {
            Some(o) => {
                b.count(o, 1);
                rec.batch_outcome = o;
            }
            None => b.canceled += 1,
        }
        if b.pending == 0 && b.finished.is_none() {
            self.batch_finish(&mut b)?;
        }
        self.tx.batch_save(&b)
    }

    /// Joins a job being put to batch `id` (counted pending: a put always
    /// leaves a job unfinished). A job stays in its batch: another batch is
    /// refused; a finished batch takes no new job.
    pub(super) fn batch_join(&mut self, rec: &mut JobRecord, id: &str) -> Result<()> {
        match &rec.batch {
            Some(b) if b == id => return Ok(()),
            Some(b) => {
                return Err(Error::conflict(format!(
                    "Put(): Job {} belongs to batch {b}",
                    rec.jid
                )))
            }
            None => {}
        }
        let mut b = self
            .tx
            .batch_get(id)?
            .ok_or_else(|| Error::not_found(format!("Put(): Batch {id} does not exist")))?;
        if b.finished.is_some() {
            return Err(Error::conflict(format!(
                "Put(): Batch {id} has finished: it takes no new job"
            )));
        }
        b.total += 1;
        b.pending += 1;
        rec.batch = Some(id.to_owned());
        rec.batch_outcome = BatchOutcome::Pending;
        self.tx.batch_save(&b)
    }

    /// Marks a batch finished and puts its callback job (once: `finished`
    /// is set only here).
    fn batch_finish(&mut self, b: &mut BatchRecord) -> Result<()> {
        b.finished = Some(self.now);
        if let Some(cb) = b.spec.callback.clone() {
            let mut data: Map<String, Value> = cb.data.clone();
            data.insert(
                "batch".into(),
                json!({
                    "id": b.id,
                    "total": b.total,
                    "complete": b.complete,
                    "failed": b.failed,
                    "canceled": b.canceled,
                }),
            );
            let params = PutParams {
                worker: "clew".into(),
                queue: cb.queue.clone(),
                jid: cb.jid.clone(),
                klass: cb.klass.clone(),
                data: Value::Object(data).to_string(),
                priority: cb.priority,
                tags: (!cb.tags.is_empty()).then(|| cb.tags.clone()),
                retries: cb.retries,
                ..PutParams::default()
            };
            super::apply(
                &mut *self.tx,
                self.now,
                self.origin,
                &Command::Put(params),
                self.events,
            )?;
            b.callback_jid = Some(cb.jid);
        }
        self.emit(
            "ql:log",
            json!({
                "event": "batch_finished",
                "batch": b.id,
                "total": b.total,
                "complete": b.complete,
                "failed": b.failed,
                "canceled": b.canceled,
                "callback": b.callback_jid,
            }),
        );
        Ok(())
    }

    /// `batch.create`: the record and its first jobs, in this transaction.
    pub(super) fn batch_create(&mut self, p: &BatchParams) -> Result<Reply> {
        if self.tx.batch_get(&p.id)?.is_some() {
            return Err(Error::conflict(format!(
                "Batch.create(): Batch {} exists",
                p.id
            )));
        }
        let record = BatchRecord {
            id: p.id.clone(),
            created: self.now,
            spec: p.spec.clone(),
            total: 0,
            pending: 0,
            complete: 0,
            failed: 0,
            canceled: 0,
            finished: None,
            callback_jid: None,
        };
        self.tx.batch_save(&record)?;
        self.emit(
            "ql:log",
            json!({"event": "batch_created", "batch": p.id, "jobs": p.jobs.len()}),
        );
        let mut jids = Vec::with_capacity(p.jobs.len());
        for job in &p.jobs {
            let mut job = job.clone();
            job.batch = Some(p.id.clone());
            self.put(&job)?;
            jids.push(job.jid);
        }
        let batch = self
            .batch_view(&p.id)?
            .ok_or_else(|| Error::store(format!("batch {} vanished while it was created", p.id)))?;
        Ok(Reply::BatchCreated {
            batch: Box::new(batch),
            jids,
        })
    }

    fn batch_view(&mut self, id: &str) -> Result<Option<BatchView>> {
        match self.tx.batch_get(id)? {
            Some(b) => Ok(Some(self.view_of(b)?)),
            None => Ok(None),
        }
    }

    fn view_of(&mut self, batch: BatchRecord) -> Result<BatchView> {
        let callback_state = match &batch.callback_jid {
            Some(jid) => self.tx.job_get(jid)?.map(|j| j.state),
            None => None,
        };
        Ok(BatchView {
            batch,
            callback_state,
        })
    }

    /// `batch.get`.
    pub(super) fn batch_get(&mut self, id: &str) -> Result<Reply> {
        Ok(Reply::BatchInfo(self.batch_view(id)?.map(Box::new)))
    }

    /// `batch.list`.
    pub(super) fn batch_list(&mut self, offset: i64, count: i64) -> Result<Reply> {
        let (total, records) = self.tx.batch_list(offset.max(0), count.max(0))?;
        let mut batches = Vec::with_capacity(records.len());
        for b in records {
            batches.push(self.view_of(b)?);
        }
        Ok(Reply::BatchList { total, batches })
    }

    /// `batch.cancel`: cancels every job of the batch that is not complete
    /// (refused, as `cancel` is, if a job outside depends on one); returns
    /// their jids.
    pub(super) fn batch_cancel(&mut self, id: &str) -> Result<Reply> {
        if self.tx.batch_get(id)?.is_none() {
            return Err(Error::not_found(format!(
                "Batch.cancel(): Batch {id} does not exist"
            )));
        }
        let (_, all) = self.tx.batch_jobs(id, 0, ALL)?;
        let mut jids = Vec::new();
        for jid in all {
            if let Some(rec) = self.tx.job_get(&jid)? {
                if rec.state != JobState::Complete {
                    jids.push(jid);
                }
            }
        }
        self.cancel(&jids)
    }
}
