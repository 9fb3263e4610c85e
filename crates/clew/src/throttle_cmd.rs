//! `clew throttle set|get|list|delete`: throttles, concurrency limits
//! across queues (see `clew_core::throttle`).

use clap::Subcommand;
use clew::table::Table;
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

/// One throttle as a table row.
fn row(t: &Value) -> [String; 4] {
    let n = |k: &str| t[k].as_i64().unwrap_or(0).to_string();
    [
        t["name"].as_str().unwrap_or("").to_owned(),
        n("max"),
        n("running"),
        n("pending"),
    ]
}

/// A table of throttles.
fn table(list: &[Value]) -> String {
    let mut t = Table::new(["THROTTLE", "MAX", "RUNNING", "PENDING"]);
    for th in list {
        t.row(row(th));
    }
    t.render()
}

impl Ctx {
    /// Runs a `throttle` action.
    pub(crate) async fn throttle(&self, action: ThrottleCmd) -> anyhow::Result<()> {
        let v = match action {
            ThrottleCmd::Set { name, max } => self.exec(Command::ThrottleSet { name, max }).await?,
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
