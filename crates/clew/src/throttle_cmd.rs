//! `clew throttle set|get|list|delete`: throttles, concurrency limits
//! across queues (see `clew_core::throttle`).

use clap::Subcommand;
use clew::table::Table;
use clew_core::throttle::ThrottleRate;
use clew_core::Command;
use serde_json::Value;

use crate::{print_json, print_str, Ctx};

/// The `throttle` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum ThrottleCmd {
    /// Define a throttle or change its maximum: at most MAX jobs naming it
    /// (`clew put --throttle NAME`) run at once, across queues.
    Set {
        /// The throttle's name.
        name: String,
        /// At most this many at once (0: unlimited).
        #[arg(allow_hyphen_values = true)]
        max: i64,
        /// A rate limit: at most N starts per PERIOD, as `N/PERIOD` with
        /// PERIOD in seconds, optionally suffixed s, m or h (`10/60s`,
        /// `100/1h`).
        #[arg(long, value_name = "N/PERIOD", value_parser = parse_rate)]
        rate: Option<ThrottleRate>,
    },
    /// Show a throttle with its running and waiting counts.
    Get {
        /// The throttle's name.
        name: String,
    },
    /// List every throttle with its counts.
    List,
    /// Forget a throttle (its waiting jobs go back to their queues).
    Delete {
        /// The throttle's name.
        name: String,
    },
}

/// Parses `N/PERIOD` (`10/60`, `10/60s`, `10/5m`, `100/1h`); the logic
/// checks the ranges.
fn parse_rate(s: &str) -> Result<ThrottleRate, String> {
    let bad = || format!("expected N/PERIOD such as 10/60s, got {s:?}");
    let (n, period) = s.split_once('/').ok_or_else(bad)?;
    let limit = n.trim().parse::<i64>().map_err(|_| bad())?;
    let period = period.trim();
    let (digits, unit) = match period.char_indices().last() {
        Some((i, 's')) => (&period[..i], 1),
        Some((i, 'm')) => (&period[..i], 60),
        Some((i, 'h')) => (&period[..i], 3600),
        _ => (period, 1),
    };
    let period = digits
        .parse::<i64>()
        .ok()
        .and_then(|p| p.checked_mul(unit))
        .ok_or_else(bad)?;
    Ok(ThrottleRate { limit, period })
}

/// The rate column: `N/PERIODs` or `-`.
fn rate_cell(t: &Value) -> String {
    match (t["rate"]["limit"].as_i64(), t["rate"]["period"].as_i64()) {
        (Some(n), Some(p)) => format!("{n}/{p}s ({} started)", t["started"].as_i64().unwrap_or(0)),
        _ => "-".to_owned(),
    }
}

/// One throttle as a table row.
fn row(t: &Value) -> [String; 5] {
    let n = |k: &str| t[k].as_i64().unwrap_or(0).to_string();
    [
        t["name"].as_str().unwrap_or("").to_owned(),
        n("max"),
        n("running"),
        n("pending"),
        rate_cell(t),
    ]
}

/// A table of throttles.
fn table(list: &[Value]) -> String {
    let mut t = Table::new(["THROTTLE", "MAX", "RUNNING", "PENDING", "RATE"]);
    for th in list {
        t.row(row(th));
    }
    t.render()
}

impl Ctx {
    /// Runs a `throttle` action.
    pub(crate) async fn throttle(&self, action: ThrottleCmd) -> anyhow::Result<()> {
        let v = match action {
            ThrottleCmd::Set { name, max, rate } => {
                self.exec(Command::ThrottleSet { name, max, rate }).await?
            }
            ThrottleCmd::Get { name } => self.exec(Command::ThrottleGet { name }).await?,
            ThrottleCmd::List => self.exec(Command::ThrottleList).await?,
            ThrottleCmd::Delete { name } => {
                self.exec(Command::ThrottleDelete { name: name.clone() })
                    .await?;
                return self.done_out(&format!("deleted throttle {name}"));
            }
        };
        if self.json {
            return print_json(&v);
        }
        match v {
            Value::Array(list) => print_str(&table(&list)),
            one => print_str(&table(&[one])),
        }
    }
}
