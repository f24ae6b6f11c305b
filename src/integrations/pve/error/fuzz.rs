//! proptest fuzz of how PVE's error answers (status, reason phrase, body) become a [`PveError`].

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Bodies PVE and pveproxy send (`{"data":null,"message":…}`, `{"errors":{…}}`, empty), and any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        "\\PC{0,40}",
        "(CT|VM) [0-9]{1,4} (is )?(not|already) running",
        "(CT|VM) is locked \\(\\PC{0,8}\\)?\\PC{0,8}",
        "Permission check failed \\(\\PC{0,12}\\)?",
        "\\PC{0,10}(does not exist|got timeout|already exists)\\PC{0,5}",
    ];
    prop_oneof![
        (text.clone(), any::<bool>()).prop_map(|(m, nl)| {
            json!({"data": null, "message": format!("{m}{}", if nl { "\n" } else { "" })}).to_string().into_bytes()
        }),
        prop::collection::btree_map(
            "[a-z0-9]{0,6}",
            prop_oneof![text.prop_map(Value::from), any::<i64>().prop_map(Value::from), Just(Value::Null)],
            0..4
        )
        .prop_map(|m| json!({"errors": m}).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        Just(Vec::new()),
    ]
}

proptest! {
    /// Any answer gives an error (never a panic); the lock named is the text inside the parentheses,
    /// and a retry is offered only for pveproxy's 595–599 or a busy PVE.
    #[test]
    fn fuzz_error_answers_never_panic(status in 400u16..=599, reason in "\\PC{0,30}", body in body()) {
        let e = PveError::from_response(status, &reason, &body);
        let _ = e.to_string();
        if let PveError::Locked { lock, message } = &e {
            let named = format!("is locked ({lock}");
            prop_assert!(!lock.contains(')') && message.contains(&named), "{:?}", e);
        }
        if e.is_transient() {
            prop_assert!((595..=599).contains(&status) || matches!(e, PveError::Busy(_)), "{:?}", e);
        }
    }

    /// `Permission check failed (<path>, <privilege>)` as PVE formats it gives both parts back.
    #[test]
    fn fuzz_permission_text_round_trips(path in "/[a-z0-9/_.-]{0,20}", privilege in "[A-Z][A-Za-z]{1,8}\\.[A-Za-z]{1,10}") {
        let body = json!({"data": null, "message": format!("Permission check failed ({path}, {privilege})\n")}).to_string();
        match PveError::from_response(403, "Forbidden", body.as_bytes()) {
            PveError::PermissionDenied { path: Some(p), privilege: Some(v), .. } => {
                prop_assert_eq!(p, path);
                prop_assert_eq!(v, privilege);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// A 400's per-parameter messages are all kept, under their names, whatever JSON they came as.
    #[test]
    fn fuzz_parameter_errors_keep_every_field(fields in prop::collection::btree_map("[a-z][a-z0-9]{0,6}", prop_oneof![
        "[a-z ]{1,20}".prop_map(Value::from), any::<i64>().prop_map(Value::from), any::<bool>().prop_map(Value::from)], 1..5)) {
        prop_assume!(!fields.contains_key("upid"));
        let body = json!({"data": null, "errors": fields}).to_string();
        match PveError::from_response(400, "Parameter verification failed.", body.as_bytes()) {
            PveError::Parameters(got) => {
                prop_assert_eq!(got.len(), fields.len());
                for (k, v) in &fields {
                    let want = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    prop_assert_eq!(&got[k], &want);
                }
            }
            PveError::AlreadyExists(_) => prop_assert!(fields.values().any(|v| v.as_str().is_some_and(|s| s.contains("already exists")))),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
