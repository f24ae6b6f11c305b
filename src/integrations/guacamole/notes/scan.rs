//! The lexical layer of the notes syntax: pairs `key:value` grouped into entries ending with `;`
//! (notes-syntax.md, "Syntax as accepted today" 1–2, and the quote-aware differences).

use super::{NoteDiagnostic, Severity};

/// One `key:value` pair with its place in the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key as written.
    pub key: String,
    /// The value without its quotes.
    pub value: String,
    /// Byte offset of the key's first character.
    pub start: usize,
    /// Byte offset just after the value (after its closing quote).
    pub end: usize,
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column (in characters) of the key.
    pub column: usize,
}

/// The pairs of one entry and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Pairs left to right.
    pub pairs: Vec<Pair>,
    /// Byte offset of the terminating `;`.
    pub end: usize,
}

/// Everything the scanner found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Entries terminated by `;`.
    pub entries: Vec<RawEntry>,
    /// Pairs after the last `;` (not an entry).
    pub trailing: Vec<Pair>,
    /// Unterminated quotes.
    pub errors: Vec<NoteDiagnostic>,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// 1-based line and character column of byte offset `at`.
pub fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

/// Splits `text` into entries of pairs. Never fails: an unterminated quote drops the entry it is in,
/// with an error, and scanning resumes on the next line so the following entries survive.
pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    let mut pairs: Vec<Pair> = Vec::new();
    // Set when the entry being read has a malformed value: it is dropped at its `;`.
    let mut poisoned = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b';' {
            let pairs = std::mem::take(&mut pairs);
            if !std::mem::take(&mut poisoned) {
                out.entries.push(RawEntry { pairs, end: i });
            }
            i += 1;
            continue;
        }
        if !(is_key_byte(b) && (i == 0 || !is_key_byte(bytes[i - 1]))) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && is_key_byte(bytes[j]) {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b':' {
            i = j;
            continue;
        }
        let mut k = j + 1;
        while k < bytes.len() && (bytes[k] == b' ' || bytes[k] == b'\t') {
            k += 1;
        }
        let (value, end) = match bytes.get(k) {
            Some(&q) if q == b'"' || q == b'\'' => {
                let close = bytes[k + 1..]
                    .iter()
                    .position(|&c| c == q || c == b'\n')
                    .map(|p| k + 1 + p)
                    .filter(|&p| bytes[p] == q);
                let Some(close) = close else {
                    let (line, column) = position(text, k);
                    out.errors.push(NoteDiagnostic {
                        line,
                        column,
                        severity: Severity::Error,
                        message: format!(
                            "unterminated {} quote in the value of {}; entry skipped",
                            if q == b'"' { "double" } else { "single" },
                            &text[i..j]
                        ),
                    });
                    pairs.clear();
                    i = bytes[k..].iter().position(|&c| c == b'\n').map_or(bytes.len(), |p| k + p + 1);
                    continue;
                };
                if bytes[close - 1] == b'\\' {
                    // `pass:"a\"b"`: the syntax has no escapes, so the value would end at this quote and
                    // the password be cut short without a word. The whole entry is refused instead.
                    let (line, column) = position(text, close - 1);
                    out.errors.push(NoteDiagnostic {
                        line,
                        column,
                        severity: Severity::Error,
                        message: format!(
                            "backslash before the closing quote in the value of {}: notes have no escapes \
                             (a {} fits only in a value quoted with the other quote); entry skipped",
                            &text[i..j],
                            if q == b'"' { "double quote" } else { "single quote" }
                        ),
                    });
                    pairs.clear();
                    poisoned = true;
                    i = escaped_value_end(bytes, close, q);
                    continue;
                }
                (text[k + 1..close].to_owned(), close + 1)
            }
            _ => {
                let stop = bytes[k..]
                    .iter()
                    .position(|&c| c.is_ascii_whitespace() || matches!(c, b';' | b'"' | b'\''))
                    .map_or(bytes.len(), |p| k + p);
                (text[k..stop].to_owned(), stop)
            }
        };
        let (line, column) = position(text, i);
        pairs.push(Pair { key: text[i..j].to_owned(), value, start: i, end, line, column });
        i = end;
    }
    out.trailing = pairs;
    out
}

/// Where a value written with backslash escapes was meant to end: after the next quote `q` on the same
/// line that no backslash precedes (or at the end of the line), so scanning resumes after it.
fn escaped_value_end(bytes: &[u8], escaped_quote: usize, q: u8) -> usize {
    let mut at = escaped_quote + 1;
    while at < bytes.len() && bytes[at] != b'\n' {
        if bytes[at] == q && bytes[at - 1] != b'\\' {
            return at + 1;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &Scan) -> Vec<Vec<(String, String)>> {
        s.entries.iter().map(|e| e.pairs.iter().map(|p| (p.key.clone(), p.value.clone())).collect()).collect()
    }

    #[test]
    fn quotes_bare_values_and_semicolons_inside_quotes() {
        let s = scan(r#"user: "a;b"  pass:'x"y' proto:ssh,rdp; url:http://h:1/x;"#);
        assert_eq!(
            kv(&s),
            vec![
                vec![("user".into(), "a;b".into()), ("pass".into(), "x\"y".into()), ("proto".into(), "ssh,rdp".into())],
                vec![("url".into(), "http://h:1/x".into())],
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_drops_only_its_line() {
        let s = scan("user:\"a pass:x;\nuser:b pass:c protos:ssh;");
        assert_eq!(s.errors.len(), 1);
        assert_eq!((s.errors[0].line, s.errors[0].column), (1, 6));
        assert_eq!(kv(&s).len(), 1);
        assert_eq!(kv(&s)[0][0], ("user".into(), "b".into()));
    }

    #[test]
    fn a_space_before_the_colon_is_not_a_pair_and_positions_count_characters() {
        let s = scan("é user :x ü:y k:v;");
        assert_eq!(kv(&s), vec![vec![("k".into(), "v".into())]]);
        assert_eq!((s.entries[0].pairs[0].line, s.entries[0].pairs[0].column), (1, 15));
    }

    #[test]
    fn a_backslash_before_a_closing_quote_is_an_escape_attempt_and_drops_its_entry() {
        let s = scan("user:a pass:\"a\\\"b\" protos:ssh;\nuser:b pass:'x\\'y' protos:ssh;\nuser:c pass:d protos:ssh;");
        assert_eq!(
            kv(&s),
            vec![vec![("user".into(), "c".into()), ("pass".into(), "d".into()), ("protos".into(), "ssh".into())]]
        );
        let at: Vec<(usize, usize)> = s.errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, [(1, 15), (2, 15)], "each at its backslash");
        assert!(s.errors[0].message.contains("no escapes") && s.errors[0].message.contains("pass"), "{:?}", s.errors);
    }
}
