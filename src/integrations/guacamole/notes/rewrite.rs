//! The optional migration of plain passwords in notes to encrypted ones (notes-syntax.md, "Encrypted
//! passwords"): the effective plain pair becomes `encrypted_password:"…"`, other password pairs of that
//! entry are removed, and every other byte of the note stays as it was.

use super::fernet::FernetKey;
use super::scan::scan;
use crate::secrets::Secret;

/// One replaced byte range of the original note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Start byte offset in the original.
    pub start: usize,
    /// End byte offset (exclusive) in the original.
    pub end: usize,
    /// What replaces it (empty: removed).
    pub replacement: String,
}

/// A rewritten note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The new note text.
    pub notes: String,
    /// Entries whose password was encrypted.
    pub entries: usize,
    /// The byte ranges changed, in order.
    pub edits: Vec<Edit>,
}

/// Encrypts every plain password of `notes` with `key`; `None` when there is nothing to change.
pub fn encrypt_plain_passwords(notes: &str, key: &FernetKey) -> Option<Rewrite> {
    let scanned = scan(notes);
    let mut edits = Vec::new();
    let mut entries = 0;
    for entry in &scanned.entries {
        let plain = |k: &str| entry.pairs.iter().rev().find(|p| p.key == k && !p.value.is_empty());
        // The same precedence as parsing: the last `password`, else the last `pass`.
        let Some(effective) = plain("password").or_else(|| plain("pass")) else {
            continue;
        };
        entries += 1;
        let encrypted = key.encrypt_note_password(&Secret::new(effective.value.clone()));
        for p in &entry.pairs {
            let is_password = matches!(p.key.as_str(), "password" | "pass" | "encrypted_password");
            if std::ptr::eq(p, effective) {
                edits.push(Edit {
                    start: p.start,
                    end: p.end,
                    replacement: format!("encrypted_password:\"{encrypted}\""),
                });
            } else if is_password && (p.key == "encrypted_password" || !p.value.is_empty()) {
                edits.push(Edit { start: p.start, end: p.end, replacement: String::new() });
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(notes.len() + 128 * entries);
    let mut at = 0;
    for e in &edits {
        out.push_str(&notes[at..e.start]);
        out.push_str(&e.replacement);
        at = e.end;
    }
    out.push_str(&notes[at..]);
    Some(Rewrite { notes: out, entries, edits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::guacamole::notes::{NotePassword, parse};

    fn key() -> FernetKey {
        FernetKey::from_passphrase(&Secret::new("k".into()))
    }

    #[test]
    fn two_entries_on_one_line_both_keep_their_passwords() {
        let notes = "Owner: Bob\nuser:a pass:'p!1' protos:rdp; user:\"b\" password:\"p;2\" pass:x protos:ssh;\ntail";
        let r = encrypt_plain_passwords(notes, &key()).unwrap();
        assert_eq!(r.entries, 2);
        assert!(r.notes.starts_with("Owner: Bob\nuser:a encrypted_password:\"Z0FBQUFB"));
        assert!(r.notes.ends_with(" protos:ssh;\ntail"));
        // `!` and `;` are outside base64's alphabet, so no ciphertext can contain these by chance.
        assert!(!r.notes.contains("p!1") && !r.notes.contains("p;2") && !r.notes.contains("pass:x"));
        let parsed = parse(&r.notes);
        let pws: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| match &e.password {
                NotePassword::Encrypted(v) => key().decrypt_note_password(v).unwrap().expose().clone(),
                NotePassword::Plain(_) => panic!("plaintext left behind"),
            })
            .collect();
        assert_eq!(pws, ["p!1", "p;2"]);
    }

    #[test]
    fn notes_without_plain_passwords_are_left_alone() {
        assert_eq!(encrypt_plain_passwords("user:a encrypted_password:\"x\" protos:ssh;", &key()), None);
        assert_eq!(encrypt_plain_passwords("user:a pass:\"\" protos:ssh;", &key()), None);
        assert_eq!(encrypt_plain_passwords("user:a pass:b protos:ssh", &key()), None);
    }
}
