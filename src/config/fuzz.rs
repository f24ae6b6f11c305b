//! proptest fuzz of the settings file and the environment: values written as TOML read back as the
//! same text, anything else is refused whole with a typed error.

use proptest::prelude::*;

use super::*;

fn value() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        "\\PC{0,16}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
    ]
}

fn as_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => unreachable!("{other:?}"),
    }
}

/// The value as written in a file: JSON's string escapes are TOML's too (no control characters here).
fn as_toml(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => serde_json::to_string(s).unwrap(),
        other => as_text(other),
    }
}

proptest! {
    /// Strings, whole numbers and booleans written by a TOML writer read back as their text.
    #[test]
    fn fuzz_settings_file_round_trips(table in prop::collection::btree_map("[a-z_]{1,12}", value(), 0..6)) {
        let text: String = table.iter().map(|(k, v)| format!("{k} = {}\n", as_toml(v))).collect();
        let mut raw = RawSettings(BTreeMap::new());
        raw.merge_toml(&text).unwrap();
        for (k, v) in &table {
            prop_assert_eq!(raw.0.get(k), Some(&as_text(v)));
        }
    }

    /// Any text is taken or refused, never a panic; a float, date or table anywhere refuses the whole
    /// file instead of keeping the keys before it.
    #[test]
    fn fuzz_settings_file_refuses_other_values(
        text in "\\PC{0,60}|([a-z_]{1,6} = (\"[a-z]{0,4}\"|[0-9.e+-]{1,5}|true|\\[\\]|\\{\\}|1979-05-27)\n){0,4}",
        bad in "[a-z_]{1,6} = (1\\.5|-0\\.0|1e3|nan|inf|\\[1\\]|\\{ a = 1 \\}|1979-05-27T07:32:00Z)",
    ) {
        let _ = RawSettings(BTreeMap::new()).merge_toml(&text);
        let mut raw = RawSettings(BTreeMap::new());
        prop_assert!(raw.merge_toml(&format!("aaa = \"kept?\"\n{bad}\n")).is_err(), "{}", bad);
        prop_assert!(raw.0.is_empty(), "{:?}", raw.0);
    }

    /// Only `PROXDESK_*` variables are settings, lower-cased; the two that steer loading are not.
    #[test]
    fn fuzz_environment_names_map_to_keys(vars in prop::collection::vec(("(PROXDESK_)?[A-Za-z_]{0,10}", "\\PC{0,8}"), 0..6)) {
        let mut raw = RawSettings(BTreeMap::new());
        raw.merge_env(vars.clone());
        for key in raw.0.keys() {
            prop_assert!(key.chars().all(|c| !c.is_ascii_uppercase()) && key != "config" && key != "require_external");
        }
        prop_assert!(raw.0.len() <= vars.iter().filter(|(n, _)| n.starts_with("PROXDESK_")).count());
    }
}
