//! Tool arguments that name themselves in errors.
//!
//! rmcp reports a failed `Parameters<T>` as serde's bare message ("unknown variant `x`, expected
//! one of ..."), which does not say which argument was wrong. [`Args`] deserializes through
//! `serde_path_to_error` so the message starts with the argument's name, and keeps `T`'s schema.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// `T`, deserialized with the failing argument's name in the error.
#[derive(Debug)]
pub struct Args<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A missing `arguments` object means "no arguments".
        let value = match Option::<serde_json::Value>::deserialize(deserializer)? {
            None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Some(v) => v,
        };
        serde_path_to_error::deserialize(value)
            .map(Args)
            .map_err(|e| {
                let path = crate::redact::clip(&e.path().to_string());
                let inner = crate::redact::clip(&e.into_inner().to_string());
                if path == "." || path.is_empty() {
                    serde::de::Error::custom(format!("arguments: {inner}"))
                } else {
                    serde::de::Error::custom(format!("argument `{path}`: {inner}"))
                }
            })
    }
}

impl<T: JsonSchema> JsonSchema for Args<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}
