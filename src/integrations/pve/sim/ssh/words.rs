//! A small POSIX shell lexer: enough to read the commands proxdesk sends (`pct exec … -- sh -c '…'`)
//! and the finishing script's assignments. It undoes single quotes, double quotes and backslashes;
//! nothing is expanded or run.

/// One shell word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Word {
    /// The text with the quoting removed.
    pub text: String,
    /// How many leading bytes of `text` came from unquoted characters (an assignment's `name=` must).
    pub bare_prefix: usize,
    /// Whether an unquoted or double-quoted `$` or backquote appears: a shell would expand the word.
    pub expands: bool,
}

impl Word {
    /// `Some((name, value))` when the word is an assignment `name=value` with an unquoted name.
    pub fn assignment(&self) -> Option<(&str, &str)> {
        let eq = self.text.find('=')?;
        let name = &self.text[..eq];
        let is_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (eq < self.bare_prefix && is_name).then(|| (name, &self.text[eq + 1..]))
    }
}

/// A word, a command separator (`;`, `&`, `|`, newline) or a redirection/grouping operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(Word),
    Separator,
    Operator(char),
}

/// Why a text could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnterminatedQuote;

/// Splits `input` into tokens the way a POSIX shell's tokenizer would, with quote removal applied.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, UnterminatedQuote> {
    let mut tokens = Vec::new();
    let mut word: Option<Word> = None;
    let mut quoted = false;
    let mut chars = input.chars().peekable();
    let finish = |word: &mut Option<Word>, quoted: &mut bool, tokens: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            tokens.push(Token::Word(w));
        }
        *quoted = false;
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => finish(&mut word, &mut quoted, &mut tokens),
            '\n' | ';' | '&' | '|' => {
                finish(&mut word, &mut quoted, &mut tokens);
                tokens.push(Token::Separator);
            }
            '<' | '>' | '(' | ')' => {
                finish(&mut word, &mut quoted, &mut tokens);
                tokens.push(Token::Operator(c));
            }
            '#' if word.is_none() => while chars.next_if(|&c| c != '\n').is_some() {},
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(next) => {
                    word.get_or_insert_default().text.push(next);
                    quoted = true;
                }
                None => word.get_or_insert_default().text.push('\\'),
            },
            '\'' => {
                let w = word.get_or_insert_default();
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => w.text.push(ch),
                        None => return Err(UnterminatedQuote),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_default();
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(ch @ ('$' | '`' | '"' | '\\')) => w.text.push(ch),
                            Some(ch) => {
                                w.text.push('\\');
                                w.text.push(ch);
                            }
                            None => return Err(UnterminatedQuote),
                        },
                        Some(ch) => {
                            w.expands |= ch == '$' || ch == '`';
                            w.text.push(ch);
                        }
                        None => return Err(UnterminatedQuote),
                    }
                }
            }
            _ => {
                let w = word.get_or_insert_default();
                w.expands |= c == '$' || c == '`';
                w.text.push(c);
                if !quoted {
                    w.bare_prefix = w.text.len();
                }
            }
        }
    }
    finish(&mut word, &mut quoted, &mut tokens);
    Ok(tokens)
}

/// Groups tokens into simple commands at separators, dropping empty ones.
pub(crate) fn commands(tokens: Vec<Token>) -> Vec<Vec<Token>> {
    let mut out = vec![Vec::new()];
    for token in tokens {
        match token {
            Token::Separator => out.push(Vec::new()),
            other => out.last_mut().expect("one").push(other),
        }
    }
    out.retain(|c| !c.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::ssh::shell_quote;

    fn texts(input: &str) -> Vec<String> {
        lex(input)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w.text,
                Token::Separator => ";".into(),
                Token::Operator(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn quoted_values_come_back_verbatim() {
        for value in ["plain", "", "it's", "$(touch /x)", "`id`", "a;b|c&d", "new\nline", "'\"'\\", "*?[]~ #x"] {
            let tokens = lex(&format!("printf {}", shell_quote(value))).unwrap();
            assert_eq!(tokens.len(), 2, "{value:?}");
            let Token::Word(w) = &tokens[1] else { panic!("{tokens:?}") };
            assert_eq!(w.text, value);
            assert!(!w.expands);
        }
    }

    #[test]
    fn double_quotes_backslashes_and_comments() {
        assert_eq!(texts(r#"echo "a \"b\" \$c \x" d\ e # gone"#), ["echo", r#"a "b" $c \x"#, "d e"]);
        assert_eq!(texts("a;b\nc 2>&1"), ["a", ";", "b", ";", "c", "2", ">", ";", "1"]);
        assert!(lex("echo 'open").is_err());
        assert!(lex("echo \"open").is_err());
        let Token::Word(w) = &lex("\"$u\"").unwrap()[0] else { panic!() };
        assert!(w.expands);
    }

    #[test]
    fn assignments_need_an_unquoted_name() {
        let word = |s: &str| match lex(s).unwrap().remove(0) {
            Token::Word(w) => w,
            other => panic!("{other:?}"),
        };
        assert_eq!(word("u='a b'").assignment(), Some(("u", "a b")));
        assert_eq!(word("k=").assignment(), Some(("k", "")));
        assert_eq!(word("'u=x'").assignment(), None);
        assert_eq!(word("1u=x").assignment(), None);
        assert_eq!(commands(lex("a=1\n\nb=2; c").unwrap()).len(), 3);
    }
}
