//! POSIX shell quoting: every value that reaches a remote shell goes through here.

/// Quotes `value` as one shell word: wrapped in single quotes, with each `'` written as `'\''`.
/// Nothing inside single quotes is special to a POSIX shell, so no value can inject a command.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoted_values_come_back_verbatim_from_a_real_shell() {
        for value in ["plain", "", "it's", "$(touch /tmp/x)", "`id`", "a;b|c&d", "new\nline", "'\"'\\", "*?[]~"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}
