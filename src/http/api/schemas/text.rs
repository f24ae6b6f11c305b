//! `Text`, the string fields of request bodies. poem-openapi's `String` also takes a JSON number or
//! boolean (`{"name": false}` became the name `"false"`); the spec says `type: string`, so a `Text`
//! takes a JSON string only and anything else is refused with 400 like every other type mismatch.

use std::borrow::Cow;

use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Option<Text>` → `Option<String>`.
    pub fn opt(t: Option<Text>) -> Option<String> {
        t.map(String::from)
    }

    /// `Vec<Text>` → `Vec<String>`.
    pub fn all(t: Vec<Text>) -> Vec<String> {
        t.into_iter().map(String::from).collect()
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Text(s)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_string_only() {
        assert_eq!(Text::parse_from_json(Some(json!("false"))).unwrap(), Text("false".into()));
        for other in [json!(false), json!(12), json!(null), json!(["a"]), json!({"a": 1})] {
            assert!(Text::parse_from_json(Some(other.clone())).is_err(), "{other} is not a string");
        }
        assert!(Text::parse_from_json(None).is_err(), "a missing required field");
        assert_eq!(Option::<Text>::parse_from_json(Some(json!(null))).unwrap(), None);
    }
}
