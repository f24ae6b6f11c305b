//! proptest fuzz of Guacamole's REST bodies: what proxdesk sends reads back the same, and any answer
//! shaped like Guacamole's (random values in the real keys) decodes or fails without a panic.

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn attributes() -> impl Strategy<Value = Attributes> {
    prop::collection::btree_map("[a-z-]{1,10}", prop::option::of(text()), 0..4)
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        text(),
        prop::option::of("[0-9]{1,4}"),
        prop::option::of("ROOT|[0-9]{1,4}"),
        "ssh|rdp|vnc",
        prop::option::of(prop::collection::btree_map("[a-z-]{1,10}", text(), 0..4)),
        attributes(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(name, identifier, parent_identifier, protocol, parameters, attributes, active, last)| {
            Connection {
                name,
                identifier,
                parent_identifier,
                protocol,
                parameters,
                attributes,
                active_connections: active,
                last_active: last,
            }
        })
}

fn user() -> impl Strategy<Value = User> {
    (text(), prop::option::of(text()), any::<bool>(), attributes(), prop::option::of(any::<i64>())).prop_map(
        |(username, password, disabled, attributes, last_active)| User {
            username,
            password,
            disabled,
            attributes,
            last_active,
        },
    )
}

fn permission_map() -> impl Strategy<Value = BTreeMap<String, Vec<String>>> {
    prop::collection::btree_map("[0-9a-z]{1,6}", prop::collection::vec("READ|UPDATE|DELETE|ADMINISTER", 0..3), 0..3)
}

fn permission_set() -> impl Strategy<Value = PermissionSet> {
    (permission_map(), permission_map(), permission_map(), prop::collection::vec("ADMINISTER|CREATE_USER", 0..2))
        .prop_map(|(c, g, u, system)| PermissionSet {
            connection_permissions: c,
            connection_group_permissions: g,
            user_permissions: u,
            system_permissions: system,
            ..PermissionSet::default()
        })
}

fn outcome() -> impl Strategy<Value = PatchOutcome> {
    ("add|replace|remove", prop::option::of("[0-9]{1,4}"), "/[0-9]{0,4}", prop::option::of(text())).prop_map(
        |(op, identifier, path, error)| PatchOutcome {
            op,
            identifier,
            path,
            error: error.map(|m| TranslatableMessage {
                key: "APP.TEXT_UNTRANSLATED".into(),
                variables: Some(json!({ "MESSAGE": m })),
            }),
        },
    )
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

/// Any small JSON value.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KEYS: &[&str] = &[
    "name",
    "identifier",
    "parentIdentifier",
    "protocol",
    "parameters",
    "attributes",
    "activeConnections",
    "lastActive",
    "type",
    "username",
    "password",
    "disabled",
    "authToken",
    "dataSource",
    "availableDataSources",
    "patches",
    "op",
    "path",
    "error",
    "message",
    "translatableMessage",
    "statusCode",
    "expected",
    "connectionPermissions",
    "systemPermissions",
];

fn read<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

proptest! {
    #[test]
    fn fuzz_guacamole_bodies_round_trip(c in connection(), u in user(), p in permission_set(), outcomes in prop::collection::vec(outcome(), 0..3)) {
        round_trip(&c)?;
        round_trip(&u)?;
        round_trip(&p)?;
        round_trip(&PatchResponse { patches: outcomes.clone() })?;
        round_trip(&vec![Patch::add("/", c.clone()), Patch::replace("7", c), Patch::remove("8")])?;
        round_trip(&ApiError { patches: Some(outcomes), ..ApiError::new("BAD_REQUEST", &u.username) })?;
    }

    #[test]
    fn fuzz_guacamole_answers_never_panic(pairs in prop::collection::vec((prop::sample::select(KEYS), any_json()), 0..8)) {
        let v = Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        if let Some(auth) = read::<AuthResult>(&v) {
            let _ = auth.token_is_well_formed();
        }
        let _ = read::<BTreeMap<String, Connection>>(&json!({ "1": v.clone() }));
        let _ = read::<BTreeMap<String, ConnectionGroup>>(&json!({ "1": v.clone() }));
        let _ = read::<BTreeMap<String, User>>(&json!({ "u": v.clone() }));
        let _ = read::<PermissionSet>(&v);
        let _ = read::<PatchResponse>(&v);
        let _ = read::<ApiError>(&v);
    }

    /// The token goes into a header and a URL path: only letters and digits are taken.
    #[test]
    fn fuzz_only_plain_tokens_are_taken(token in prop_oneof!["[0-9A-F]{64}", "\\PC{0,70}", "[0-9A-F]{8}[/?#. \r\n%]{1,3}"]) {
        let auth = AuthResult { auth_token: token.clone(), username: "u".into(), data_source: "postgresql".into(), available_data_sources: vec![] };
        let plain = !token.is_empty() && token.len() <= 256 && token.bytes().all(|b| b.is_ascii_alphanumeric());
        prop_assert_eq!(auth.token_is_well_formed(), plain, "{:?}", token);
    }
}
