//! qless compatibility arguments: `clew_core::qless::parse` of a command
//! name and its string arguments (what `POST /v1/qless`, `clew call` and the
//! engine's `qless` take).
//!
//! Input: lines; the first is the command name, the rest its arguments.
//! Properties: a refusal is an `Invalid` error with a message; an accepted
//! command written back in qless form by the client (`qless_args`) parses
//! to the same command; `logic::validate` of it does not panic.

use clew_core::qless;

/// The target.
pub fn run(data: &[u8]) {
    let Some(lines) = crate::lines(data) else {
        return;
    };
    let command = lines[0];
    let args: Vec<String> = lines[1..].iter().map(|s| (*s).to_owned()).collect();
    match qless::parse(command, &args) {
        Err(e) => crate::assert_invalid(&e, &(command, &args)),
        Ok(parsed) => {
            let _ = clew_core::logic::validate(&parsed);
            let (name, again) = clew_client::client::qless_args(&parsed);
            match qless::parse(name, &again) {
                Ok(back) => assert_eq!(
                    back, parsed,
                    "{command} {args:?} parsed, written back as {name} {again:?}, parsed differently"
                ),
                Err(e) => panic!(
                    "{command} {args:?} parsed as {parsed:?}, written back as {name} {again:?}: refused: {e}"
                ),
            }
        }
    }
}
