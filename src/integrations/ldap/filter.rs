//! Search filters with a placeholder for what the person typed (or their DN), escaped per RFC 4515 so
//! that no input can change the filter's meaning (LDAP injection).

use std::borrow::Cow;

use super::error::LdapError;

/// `value` as a literal inside a filter: `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`,
/// `\00` (RFC 4515 §3); everything else, UTF-8 included, stays as it is.
pub fn escape_filter_value(value: &str) -> Cow<'_, str> {
    ldap3::ldap_escape(value)
}

/// A configured filter such as `(&(objectClass=inetOrgPerson)(uid={username}))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTemplate {
    template: String,
    placeholder: &'static str,
}

impl FilterTemplate {
    /// Checks that `template` (the setting `key`) holds `placeholder` and is a valid filter once filled.
    pub fn parse(key: &'static str, template: &str, placeholder: &'static str) -> Result<Self, LdapError> {
        let invalid = |message: String| LdapError::Config { key, message };
        let template = template.trim();
        if !template.contains(placeholder) {
            return Err(invalid(format!("must contain {placeholder}")));
        }
        let this = Self { template: template.to_owned(), placeholder };
        if ldap3::parse_filter(this.fill("x")).is_err() {
            return Err(invalid(format!("{template:?} is not a valid LDAP filter (RFC 4515)")));
        }
        Ok(this)
    }

    /// The filter with every placeholder replaced by `value`, escaped.
    pub fn fill(&self, value: &str) -> String {
        self.template.replace(self.placeholder, &escape_filter_value(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_metacharacters_are_escaped_as_rfc_4515_says() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("alice)(uid=*"), "alice\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("zoë"), "zoë");
    }

    #[test]
    fn a_filled_template_stays_one_equality_match_whatever_was_typed() {
        let t = FilterTemplate::parse("K", "(&(objectClass=person)(uid={username}))", "{username}").unwrap();
        let filled = t.fill("*)(|(objectClass=*");
        assert_eq!(filled, "(&(objectClass=person)(uid=\\2a\\29\\28|\\28objectClass=\\2a))");
        assert!(ldap3::parse_filter(&filled).is_ok());
    }

    #[test]
    fn templates_without_their_placeholder_or_malformed_are_refused() {
        assert!(FilterTemplate::parse("K", "(uid=alice)", "{username}").is_err());
        assert!(FilterTemplate::parse("K", "(uid={username}", "{username}").is_err());
        assert!(FilterTemplate::parse("K", "(member={dn})", "{dn}").is_ok());
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever is typed (or whatever DN the directory returns), the filled filter is a valid filter
        /// of the same shape as with a plain value: one equality match, no injected clause.
        #[test]
        fn fuzz_filled_filters_stay_one_match(value in "\\PC{0,20}|[*()\\\\\0|&!=]{1,6}") {
            let t = FilterTemplate::parse("K", "(&(objectClass=person)(uid={username}))", "{username}").unwrap();
            let filled = t.fill(&value);
            prop_assert!(ldap3::parse_filter(&filled).is_ok(), "{:?}", filled);
            let inner = &filled["(&(objectClass=person)(uid=".len()..filled.len() - 2];
            prop_assert!(!inner.contains(['(', ')', '*', '\0']), "{:?}", inner);
            // And it reads back, RFC 4515 escapes undone, as exactly what was typed.
            let (mut bytes, mut rest) = (Vec::new(), inner.as_bytes());
            while let Some((&b, tail)) = rest.split_first() {
                if b == b'\\' {
                    let hex = std::str::from_utf8(&tail[..2]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    rest = &tail[2..];
                } else {
                    bytes.push(b);
                    rest = tail;
                }
            }
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), value);
        }
    }
}
