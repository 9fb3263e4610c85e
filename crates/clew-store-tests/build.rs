//! Generates `store_conformance!`: one `#[test]` per case function.
//!
//! Every `pub fn NAME(t: &Harness)` in `src/cases/AREA.rs` becomes the test
//! `AREA::NAME` in the crate that invokes the macro, so adding a case needs
//! no registration by hand.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let dir = Path::new("src/cases");
    println!("cargo:rerun-if-changed=src/cases");
    let mut areas: Vec<_> = fs::read_dir(dir)
        .expect("src/cases exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "rs") && p.file_stem().is_some_and(|s| s != "mod")
        })
        .collect();
    areas.sort();
    let mut body = String::new();
    for path in &areas {
        println!("cargo:rerun-if-changed={}", path.display());
        let area = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name");
        let src = fs::read_to_string(path).expect("readable case file");
        let mut cases = Vec::new();
        for line in src.lines() {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix("pub fn ") {
                if let Some((name, tail)) = rest.split_once('(') {
                    if tail.starts_with("t: &Harness)") {
                        cases.push(name.trim().to_owned());
                    }
                }
            }
        }
        if cases.is_empty() {
            continue;
        }
        writeln!(body, "        #[allow(non_snake_case)] mod {area} {{").unwrap();
        for case in cases {
            writeln!(
                body,
                "            #[test] fn {case}() {{ $crate::run_case(super::__clew_store_factory, $crate::cases::{area}::{case}); }}"
            )
            .unwrap();
        }
        writeln!(body, "        }}").unwrap();
    }
    let mut out = String::new();
    out.push_str("/// Expands to one `#[test]` per conformance case, each on a fresh store made by `$factory` (a `fn() -> clew_store_tests::TestStore`, or `Option<TestStore>` where `None` skips the case).\n");
    out.push_str("#[macro_export]\nmacro_rules! store_conformance {\n    ($factory:path) => {\n");
    out.push_str("        fn __clew_store_factory() -> Option<$crate::TestStore> { $crate::IntoTestStore::into_test_store($factory()) }\n");
    out.push_str(&body);
    out.push_str("    };\n}\n");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    fs::write(Path::new(&out_dir).join("conformance_macro.rs"), out).expect("write macro");
}
