//! Middleware: an around-perform chain.
//!
//! Each [`Middleware`] gets the job and a [`Next`] that runs the rest of the
//! chain and then the handler. The first middleware added is the outermost:
//! it runs first before the handler and last after it. A middleware may
//! change the [`Outcome`], or return one without calling [`Next::run`] (the
//! handler then does not run).
//!
//! ```
//! use async_trait::async_trait;
//! use clew_worker::{Job, JobContext, Middleware, Next, Outcome};
//!
//! /// Logs how long each job took.
//! struct Timing;
//!
//! #[async_trait]
//! impl Middleware for Timing {
//!     async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome {
//!         let start = std::time::Instant::now();
//!         let outcome = next.run(job, ctx).await;
//!         tracing::info!(jid = %job.jid, elapsed = ?start.elapsed(), "performed");
//!         outcome
//!     }
//! }
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use crate::handler::{Handler, Job, JobContext, Outcome};

/// Code that runs around every job (tracing, reconnecting a database,
/// enforcing a limit...).
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// Runs around one job: call `next.run(job, ctx)` to go on to the rest
    /// of the chain and the handler, or return an outcome without it.
    async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome;
}

/// The rest of a middleware chain, ending with the handler.
pub struct Next<'a> {
    chain: &'a [Arc<dyn Middleware>],
    handler: &'a dyn Handler,
}

impl<'a> Next<'a> {
    /// The chain `chain` (outermost first) around `handler`.
    pub fn new(chain: &'a [Arc<dyn Middleware>], handler: &'a dyn Handler) -> Next<'a> {
        Next { chain, handler }
    }

    /// Runs the rest of the chain, then the handler; returns the outcome as
    /// the inner layers left it.
    pub async fn run(self, job: &Job, ctx: &JobContext) -> Outcome {
        match self.chain.split_first() {
            Some((first, rest)) => {
                first
                    .around(
                        job,
                        ctx,
                        Next {
                            chain: rest,
                            handler: self.handler,
                        },
                    )
                    .await
            }
            None => self.handler.perform(job, ctx).await,
        }
    }
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("middleware_left", &self.chain.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use clew_client::Client;
    use tokio_util::sync::CancellationToken;

    type Trace = Arc<Mutex<Vec<String>>>;

    struct Recorder {
        name: &'static str,
        trace: Trace,
    }

    #[async_trait]
    impl Middleware for Recorder {
        async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome {
            self.trace
                .lock()
                .expect("trace")
                .push(format!("{} before", self.name));
            let out = next.run(job, ctx).await;
            self.trace
                .lock()
                .expect("trace")
                .push(format!("{} after", self.name));
            out
        }
    }

    struct ShortCircuit;

    #[async_trait]
    impl Middleware for ShortCircuit {
        async fn around(&self, _job: &Job, _ctx: &JobContext, _next: Next<'_>) -> Outcome {
            Outcome::fail("Guard:refused", "over the limit")
        }
    }

    /// Turns a failure into a retry.
    struct FailToRetry;

    #[async_trait]
    impl Middleware for FailToRetry {
        async fn around(&self, job: &Job, ctx: &JobContext, next: Next<'_>) -> Outcome {
            match next.run(job, ctx).await {
                Outcome::Fail { group, message } => Outcome::Retry {
                    delay: None,
                    group: Some(group),
                    message: Some(message),
                },
                other => other,
            }
        }
    }

    struct Perform {
        trace: Trace,
        outcome: Outcome,
    }

    #[async_trait]
    impl Handler for Perform {
        async fn perform(&self, _job: &Job, _ctx: &JobContext) -> Outcome {
            self.trace.lock().expect("trace").push("handler".into());
            self.outcome.clone()
        }
    }

    /// A context (its client is not used here) and the store's directory.
    fn ctx() -> (JobContext, tempfile::TempDir) {
        let (store, dir) = clew_sqlite::testing::temp_store();
        let ctx = JobContext::new(
            "j".into(),
            "w".into(),
            Client::local(clew_core::Engine::new(store)),
            CancellationToken::new(),
        );
        (ctx, dir)
    }

    fn recorder(name: &'static str, trace: &Trace) -> Arc<dyn Middleware> {
        Arc::new(Recorder {
            name,
            trace: trace.clone(),
        })
    }

    #[tokio::test]
    async fn runs_outer_to_inner_then_back() {
        let trace = Trace::default();
        let chain = vec![recorder("outer", &trace), recorder("inner", &trace)];
        let handler = Perform {
            trace: trace.clone(),
            outcome: Outcome::complete(),
        };
        let out = Next::new(&chain, &handler)
            .run(&Job::default(), &ctx().0)
            .await;
        assert_eq!(out, Outcome::complete());
        assert_eq!(
            *trace.lock().expect("trace"),
            [
                "outer before",
                "inner before",
                "handler",
                "inner after",
                "outer after"
            ]
        );
    }

    #[tokio::test]
    async fn a_middleware_can_short_circuit() {
        let trace = Trace::default();
        let chain = vec![
            recorder("outer", &trace),
            Arc::new(ShortCircuit) as Arc<dyn Middleware>,
            recorder("inner", &trace),
        ];
        let handler = Perform {
            trace: trace.clone(),
            outcome: Outcome::complete(),
        };
        let out = Next::new(&chain, &handler)
            .run(&Job::default(), &ctx().0)
            .await;
        assert_eq!(out, Outcome::fail("Guard:refused", "over the limit"));
        assert_eq!(
            *trace.lock().expect("trace"),
            ["outer before", "outer after"],
            "neither the inner middleware nor the handler ran"
        );
    }

    #[tokio::test]
    async fn a_middleware_can_rewrite_the_outcome() {
        let trace = Trace::default();
        let chain = vec![Arc::new(FailToRetry) as Arc<dyn Middleware>];
        let handler = Perform {
            trace: trace.clone(),
            outcome: Outcome::fail("K:Boom", "boom"),
        };
        let out = Next::new(&chain, &handler)
            .run(&Job::default(), &ctx().0)
            .await;
        assert_eq!(
            out,
            Outcome::Retry {
                delay: None,
                group: Some("K:Boom".into()),
                message: Some("boom".into()),
            }
        );
    }

    #[tokio::test]
    async fn an_empty_chain_runs_the_handler() {
        let trace = Trace::default();
        let handler = Perform {
            trace: trace.clone(),
            outcome: Outcome::Cancel,
        };
        let out = Next::new(&[], &handler)
            .run(&Job::default(), &ctx().0)
            .await;
        assert_eq!(out, Outcome::Cancel);
        assert_eq!(*trace.lock().expect("trace"), ["handler"]);
    }
}
