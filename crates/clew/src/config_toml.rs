//! The `--config PATH` file of `clew server` and `clew work`: TOML with the
//! flags' names (`cursor_dir` for `--cursor-dir`), read into typed values.
//! Which key goes to which option, and the rule that the command line
//! wins, are the binary's (`config_file.rs`); this part is a library so
//! that the fuzz targets (crate `clew-fuzz`) call the same parser.

use std::path::{Path, PathBuf};

use clew_core::Error;
use toml::{Table, Value};

/// The keys `clew server` takes from a file.
pub const SERVER_KEYS: &[&str] = &[
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
pub const WORK_KEYS: &[&str] = &[
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
pub struct ConfigFile {
    path: PathBuf,
    table: Table,
}

impl ConfigFile {
    /// Reads and parses `path`, refusing keys not in `known`.
    pub fn load(path: &Path, command: &str, known: &[&str]) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("--config: cannot read {}: {e}", path.display()))
        })?;
        ConfigFile::parse(&text, path, command, known)
    }

    /// Parses the file's `text` (read from `path`, named in errors),
    /// refusing keys not in `known`. Errors are
    /// [`clew_core::ErrorKind::Invalid`] naming the file (and the line or
    /// the key).
    pub fn parse(
        text: &str,
        path: &Path,
        command: &str,
        known: &[&str],
    ) -> anyhow::Result<ConfigFile> {
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

    /// The keys the file sets.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }

    fn wrong(&self, key: &str, expected: &str, v: &Value) -> anyhow::Error {
        Error::invalid(format!(
            "--config {}: key {key:?}: expected {expected}, got {} {}",
            self.path.display(),
            v.type_str(),
            json_of(v)
        ))
        .into()
    }

    /// `key`'s value: A string. `None` when absent; a value of another type
    /// is refused naming the key.
    pub fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// `key`'s value: A path (a string). `None` when absent; a value of another type
    /// is refused naming the key.
    pub fn path(&self, key: &str) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.string(key)?.map(PathBuf::from))
    }

    /// `key`'s value: A list of strings. `None` when absent; a value of another type
    /// is refused naming the key.
    pub fn strings(&self, key: &str) -> anyhow::Result<Option<Vec<String>>> {
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

    /// `key`'s value: `true` or `false`. `None` when absent; a value of another type
    /// is refused naming the key.
    pub fn bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    /// `key`'s value: an integer that fits `T` (`expected` says which in
    /// the error). `None` when absent.
    pub fn int<T: TryFrom<i64>>(&self, key: &str, expected: &str) -> anyhow::Result<Option<T>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(v @ Value::Integer(i)) => T::try_from(*i)
                .map(Some)
                .map_err(|_| self.wrong(key, expected, v)),
            Some(v) => Err(self.wrong(key, expected, v)),
        }
    }

    /// `key`'s value: A number of seconds (an integer or a float). `None` when absent; a value of another type
    /// is refused naming the key.
    pub fn float(&self, key: &str) -> anyhow::Result<Option<f64>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Float(f)) => Ok(Some(*f)),
            Some(Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(v) => Err(self.wrong(key, "a number of seconds", v)),
        }
    }

    /// A number of seconds or a duration text (`30d`), as the flag's text.
    pub fn duration(&self, key: &str) -> anyhow::Result<Option<String>> {
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
    pub fn pairs(&self, key: &str, json: bool) -> anyhow::Result<Option<Vec<String>>> {
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
                (item, true) => Ok(format!("{k}={}", json_of(item))),
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
}

/// A TOML value as JSON text; a date or time becomes its TOML text as a
/// JSON string (serde would give toml's private map
/// `{"$__toml_private_datetime": ...}`).
fn json_of(v: &Value) -> String {
    fn convert(v: &Value) -> serde_json::Value {
        match v {
            Value::String(s) => s.clone().into(),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| f.to_string().into()),
            Value::Boolean(b) => (*b).into(),
            Value::Datetime(d) => d.to_string().into(),
            Value::Array(a) => a.iter().map(convert).collect(),
            Value::Table(t) => t.iter().map(|(k, v)| (k.clone(), convert(v))).collect(),
        }
    }
    convert(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the config fuzz target: a date in the file showed (in the
    /// error, and as metadata) as toml's private serde map.
    #[test]
    fn dates_read_as_their_text() {
        let path = Path::new("clew.toml");
        let text =
            "history_max_age = 1979-05-27T07:32:00Z\nmetadata = { at = 1979-05-27, n = nan }\n";
        let f = ConfigFile::parse(text, path, "server", SERVER_KEYS).expect("parses");
        let e = f.string("history_max_age").expect_err("not a string");
        assert_eq!(
            e.to_string(),
            "--config clew.toml: key \"history_max_age\": expected a string, got datetime \"1979-05-27T07:32:00Z\""
        );
        assert_eq!(
            f.pairs("metadata", true).expect("pairs"),
            Some(vec!["at=\"1979-05-27\"".to_owned(), "n=\"NaN\"".to_owned()])
        );
    }
}
