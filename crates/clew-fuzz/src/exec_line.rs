//! An `--exec` handler's output: `clew_worker::exec::read_lines` (splitting
//! stdout into lines, cut at `max_line` bytes) and `parse_line` (the
//! `clew:log`, `clew:progress`, `clew:data`, `clew:next`, `clew:meta`
//! directives).
//!
//! Input: the first byte picks `max_line` (1 to 256, or 1 MiB), the rest is
//! the output. Properties: no line holds a `\n` or is longer than
//! `max_line` bytes of output (when the output is UTF-8); output whose
//! lines all fit comes back whole; a `Data` directive's text is JSON, a
//! `Next` queue one non-empty word, a `Log` message non-empty, and a line
//! that does not start with `clew:` is `Other`.

use clew_worker::exec::{parse_line, read_lines, Directive};

/// The target.
pub fn run(data: &[u8]) {
    let Some((&first, output)) = data.split_first() else {
        return;
    };
    let max_line = if first == 0 {
        1024 * 1024
    } else {
        usize::from(first)
    };
    let mut lines: Vec<String> = Vec::new();
    crate::world::block_on(read_lines(output, max_line, |l| {
        lines.push(l);
        std::future::ready(())
    }));
    let utf8 = std::str::from_utf8(output).is_ok();
    for line in &lines {
        assert!(!line.contains('\n'), "line {line:?} holds a newline");
        if utf8 {
            assert!(
                line.len() <= max_line,
                "line of {} bytes > {max_line}",
                line.len()
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(output) {
        let whole: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        if !text.is_empty() && whole.iter().all(|l| l.len() < max_line) {
            assert_eq!(lines, whole, "output {text:?} split wrongly");
        }
    }
    for line in &lines {
        check_directive(line);
    }
}

fn check_directive(line: &str) {
    let d = parse_line(line);
    let bare = line.trim_end_matches('\r');
    match &d {
        Directive::Data(text) => {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{line:?}: data {text:?} is not JSON"
            )
        }
        Directive::Next(q) => assert!(
            !q.is_empty() && !q.contains(char::is_whitespace),
            "{line:?}: next queue {q:?}"
        ),
        Directive::Log(m, _) => assert!(!m.is_empty(), "{line:?}: empty log message"),
        Directive::Invalid(why) => {
            assert!(
                bare.starts_with("clew:") && !why.is_empty(),
                "{line:?}: {d:?}"
            )
        }
        Directive::Progress(_) | Directive::Meta(_) => {
            assert!(bare.starts_with("clew:"), "{line:?}: {d:?}")
        }
        Directive::Other => {}
    }
    if !bare.starts_with("clew:") {
        assert_eq!(d, Directive::Other, "{line:?}");
    }
}
