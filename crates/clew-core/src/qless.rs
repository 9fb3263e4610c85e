pub fn parse(command: &str, args: &[String]) -> crate::Result<crate::Command> {
    let _ = (command, args);
    Err(crate::Error::invalid("x"))
}
