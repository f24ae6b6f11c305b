//! The translation layer: every visible string is looked up here by key.
//!
//! Catalogs are `key = text` lines in `i18n/<lang>.txt`, compiled in. `{name}` placeholders are filled
//! from the parameters. A key missing in a language falls back to English, then to the key itself.

use std::collections::HashMap;
use std::sync::OnceLock;

pub mod format;

pub const LANGUAGES: [&str; 3] = ["en", "fr", "it"];

const SOURCES: [(&str, &str); 3] =
    [("en", include_str!("i18n/en.txt")), ("fr", include_str!("i18n/fr.txt")), ("it", include_str!("i18n/it.txt"))];

fn catalogs() -> &'static HashMap<&'static str, HashMap<&'static str, &'static str>> {
    static CATALOGS: OnceLock<HashMap<&'static str, HashMap<&'static str, &'static str>>> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, text)| {
                let entries = text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                    .filter_map(|l| l.split_once(" = "))
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .collect();
                (*lang, entries)
            })
            .collect()
    })
}

/// The text of `key` in `lang`.
pub fn t(lang: &str, key: &str) -> String {
    lookup(lang, key).to_owned()
}

fn lookup<'a>(lang: &str, key: &'a str) -> &'a str {
    let c = catalogs();
    c.get(lang).and_then(|m| m.get(key)).or_else(|| c["en"].get(key)).copied().unwrap_or(key)
}

/// The text of `key` in `lang` with `{placeholders}` filled.
pub fn message<S: AsRef<str>>(lang: &str, key: &str, params: &[(&str, S)]) -> String {
    let mut text = lookup(lang, key).to_owned();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value.as_ref());
    }
    text
}

/// Picks the language: the user's choice, else the best match of `Accept-Language`, else English.
pub fn negotiate(user_choice: Option<&str>, accept_language: Option<&str>) -> &'static str {
    if let Some(l) = user_choice.and_then(|c| LANGUAGES.iter().find(|l| **l == c)) {
        return l;
    }
    let mut best: Option<(&'static str, f32)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut it = part.trim().split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        // A weight outside 0–1 (or not a number) makes the entry invalid; `q=0` means "not this one".
        let q = match it.map(str::trim).find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))) {
            None => 1.0,
            Some(q) => match q.trim().parse::<f32>() {
                Ok(q) if q > 0.0 && q <= 1.0 => q,
                _ => continue,
            },
        };
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(lang) = LANGUAGES.iter().find(|l| **l == primary)
            && best.is_none_or(|(_, bq)| q > bq)
        {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l).unwrap_or("en")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_english_key() {
        let c = catalogs();
        for lang in LANGUAGES {
            let missing: Vec<_> = c["en"].keys().filter(|k| !c[lang].contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(message("en", "error.template_max", &[("max", "4")]), "at most 4 for this template");
    }

    #[test]
    fn language_negotiation() {
        assert_eq!(negotiate(None, Some("fr-CH, fr;q=0.9, en;q=0.8")), "fr");
        assert_eq!(negotiate(None, Some("de, it;q=0.5, en;q=0.4")), "it");
        assert_eq!(negotiate(Some("it"), Some("fr")), "it");
        assert_eq!(negotiate(None, Some("de")), "en");
        assert_eq!(negotiate(None, None), "en");
    }

    #[test]
    fn a_language_refused_with_q_0_is_not_chosen() {
        assert_eq!(negotiate(None, Some("fr;q=0, it;q=0.1")), "it");
        assert_eq!(negotiate(None, Some("fr;q=0")), "en");
        assert_eq!(negotiate(None, Some("fr;q=2, it;q=0.5")), "it");
        assert_eq!(negotiate(None, Some("fr;q=NaN, it;q=0.5")), "it");
    }

    use proptest::prelude::*;

    proptest! {
        /// Any header gives one of our languages; a language the header weighs 0 (or gives an invalid
        /// weight) is never picked from it, one weighted highest is.
        #[test]
        fn fuzz_accept_language_negotiation(
            header in "\\PC{0,40}",
            entries in prop::collection::vec((prop::sample::select(vec!["fr", "it", "de", "en-GB", "FR-ch"]), prop_oneof![
                Just(String::new()), "0(\\.0{1,3})?", "0\\.[0-9]{1,3}", "1(\\.0{1,3})?", "[2-9]|-1|NaN|inf|x"]), 0..5),
        ) {
            prop_assert!(LANGUAGES.contains(&negotiate(None, Some(&header))));
            let parts: Vec<String> = entries.iter().map(|(tag, q)| if q.is_empty() { tag.to_string() } else { format!("{tag};q={q}") }).collect();
            let header = parts.join(", ");
            let picked = negotiate(None, Some(&header));
            let weight = |q: &str| if q.is_empty() { Some(1.0) } else { q.parse::<f32>().ok().filter(|q| *q > 0.0 && *q <= 1.0) };
            let acceptable: Vec<(String, f32)> = entries.iter()
                .filter_map(|(tag, q)| Some((tag.split('-').next().unwrap().to_ascii_lowercase(), weight(q)?)))
                .filter(|(l, _)| LANGUAGES.contains(&l.as_str()))
                .collect();
            match acceptable.iter().map(|(_, q)| *q).fold(None, |m: Option<f32>, q| Some(m.map_or(q, |m| m.max(q)))) {
                None => prop_assert_eq!(picked, "en", "{}", header),
                Some(top) => prop_assert!(acceptable.iter().any(|(l, q)| l == picked && *q == top), "{} -> {}", header, picked),
            }
        }
    }
}
