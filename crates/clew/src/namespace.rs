//! `--namespace NAME`: a partition of the store that shares nothing with
//! the others (queues, jobs, config, stats, unique keys, throttles).
//!
//! A namespace is a store of its own beside the default one:
//! * SQLite `sqlite:DIR/FILE.EXT` → `sqlite:DIR/FILE.ns-NAME.EXT` (a file
//!   without an extension gets `.ns-NAME` appended). The default file
//!   never has that form for the same `--db`, so the two cannot collide.
//! * PostgreSQL `...?schema=S` (default `clew`) → schema `S_ns_NAME`,
//!   refused when longer than PostgreSQL's 63-byte identifier limit.
//!
//! The default namespace (`default`, or no `--namespace`) is exactly the
//! `--db` as given. Names match `[a-z0-9][a-z0-9_-]{0,31}`.

use clew_core::Error;

use crate::store_url::StoreUrl;

/// The name of the namespace `--db` itself holds.
pub const DEFAULT: &str = "default";

/// The longest name (bytes).
const MAX_LEN: usize = 32;

/// Checks a namespace name against `[a-z0-9][a-z0-9_-]{0,31}`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > MAX_LEN {
        return Err(Error::invalid(format!(
            "--namespace: expected a name matching [a-z0-9][a-z0-9_-]{{0,31}} \
             (lower-case letters, digits, _ and -, starting with a letter or digit, at most 32), got {name:?}"
        ))
        .into());
    }
    Ok(())
}

/// The `--db` value of namespace `name` of `db` (`None` or `default`:
/// `db` unchanged). Checks the name.
pub fn namespaced_db(db: &str, name: Option<&str>) -> anyhow::Result<String> {
    let Some(name) = name.filter(|n| *n != DEFAULT) else {
        return Ok(db.to_owned());
    };
    check_name(name)?;
    match StoreUrl::parse(db)? {
        StoreUrl::Sqlite(path) => {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let new_file = match file.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => format!("{stem}.ns-{name}.{ext}"),
                _ => format!("{file}.ns-{name}"),
            };
            Ok(format!(
                "sqlite:{}",
                path.with_file_name(new_file).display()
            ))
        }
        StoreUrl::Postgres { .. } => postgres_schema(db, name),
    }
}

/// Rewrites (or adds) `schema=` in a PostgreSQL URL for namespace `name`.
fn postgres_schema(db: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = db.split_once('?').unwrap_or((db, ""));
    let mut schema = "clew".to_owned();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", s)) => schema = s.to_owned(),
            _ => kept.push(pair.to_owned()),
        }
    }
    let schema = format!("{schema}_ns_{name}");
    if schema.len() > 63 {
        return Err(Error::invalid(format!(
            "--namespace {name}: the PostgreSQL schema {schema} would be {} bytes, over the 63-byte limit; use a shorter namespace or schema",
            schema.len()
        ))
        .into());
    }
    kept.insert(0, format!("schema={schema}"));
    Ok(format!("{base}?{}", kept.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "0", "proj-1", "stage_2", &"x".repeat(32)] {
            check_name(good).unwrap();
        }
        for bad in ["", "A", "-a", "_a", "a.b", "a b", "é", &"x".repeat(33)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("[a-z0-9][a-z0-9_-]{0,31}"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_namespace_is_the_db_as_given() {
        for db in ["sqlite:a/clew.db", "postgres://u@h/db?schema=s"] {
            assert_eq!(namespaced_db(db, None).unwrap(), db);
            assert_eq!(namespaced_db(db, Some("default")).unwrap(), db);
        }
    }

    #[test]
    fn sqlite_namespaces_are_sibling_files() {
        let ns = |db| namespaced_db(db, Some("a")).unwrap();
        assert_eq!(ns("sqlite:dir/clew.db"), "sqlite:dir/clew.ns-a.db");
        assert_eq!(ns("clew.db"), "sqlite:clew.ns-a.db");
        assert_eq!(ns("dir/store"), "sqlite:dir/store.ns-a");
        assert_eq!(ns("dir/.hidden"), "sqlite:dir/.hidden.ns-a");
        assert!(namespaced_db("sqlite:x.db", Some("B")).is_err());
    }

    #[test]
    fn postgres_namespaces_are_sibling_schemas() {
        let ns = |db| namespaced_db(db, Some("a")).unwrap();
        assert_eq!(
            ns("postgres://u@h/db?schema=s&pool=2"),
            "postgres://u@h/db?schema=s_ns_a&pool=2"
        );
        assert_eq!(
            ns("postgres://u@h/db"),
            "postgres://u@h/db?schema=clew_ns_a"
        );
        let long = format!("postgres://u@h/db?schema={}", "s".repeat(40));
        let e = namespaced_db(&long, Some(&"n".repeat(20)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("63-byte"), "{e}");
    }
}
