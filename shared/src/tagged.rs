//! Hand-written decoding of the tagged enums the web app reads, through a [`serde_json::Value`].
//!
//! serde's derived decoder for an internally tagged (or untagged) enum buffers every field into its private
//! `Content` tree and compiles each variant's fields once more against it; in the web app that doubled the
//! decoders of runs, log lines and message blocks. These enums keep their derived `Serialize` (so the JSON is
//! the same) and decode by reading the object once, then each field with its own decoder.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// An object's fields, for decoding one variant.
pub(crate) struct Fields(Map<String, Value>);

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Self {
        Fields(map)
    }
}

impl Fields {
    /// Reads an object.
    pub(crate) fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(D::Error::custom("expected a JSON object")),
        }
    }

    /// The string field `key` (the tag), if there is one.
    pub(crate) fn tag(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The field `key`, which must be present.
    pub(crate) fn req<T: DeserializeOwned, E: Error>(&self, key: &'static str) -> Result<T, E> {
        let value = self.0.get(key).ok_or_else(|| E::missing_field(key))?;
        T::deserialize(value).map_err(E::custom)
    }

    /// The field `key`, read from `null` when absent (`None` for an `Option`).
    pub(crate) fn opt<T: DeserializeOwned, E: Error>(&self, key: &str) -> Result<T, E> {
        T::deserialize(self.0.get(key).unwrap_or(&Value::Null)).map_err(E::custom)
    }

    /// The field `key`, or `T::default()` when absent.
    pub(crate) fn or_default<T: DeserializeOwned + Default, E: Error>(&self, key: &str) -> Result<T, E> {
        self.0.get(key).map_or_else(
            || Ok(T::default()),
            |value| T::deserialize(value).map_err(E::custom),
        )
    }

    /// The object without the fields `keys`, as a value.
    pub(crate) fn without(mut self, keys: &[&str]) -> Value {
        for key in keys {
            self.0.remove(*key);
        }
        Value::Object(self.0)
    }

    /// The object back as a value.
    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// The error for an unknown tag.
pub(crate) fn unknown<E: Error>(tag: Option<&str>, expected: &'static [&'static str]) -> E {
    match tag {
        Some(tag) => E::unknown_variant(tag, expected),
        None => E::custom("missing tag"),
    }
}

#[cfg(test)]
mod tests {
    use crate::claude::{ContentBlock, MessageContent};
    use crate::runner::{FileDiff, RunnerEvent};
    use crate::ws::ServerFrame;
    use serde_json::json;

    fn round_trip<T>(value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    #[test]
    fn hand_written_decoders_read_what_serde_writes() {
        let events = [
            RunnerEvent::Cloning { repo: "o/r".into() },
            RunnerEvent::Diff {
                repo: "o/r".into(),
                files: vec![FileDiff {
                    path: "a".into(),
                    added: Some(1),
                    removed: None,
                }],
                patch: "p".into(),
                truncated: false,
            },
            RunnerEvent::LimitHit {
                resets_at: None,
                message: "m".into(),
            },
        ];
        for event in &events {
            assert_eq!(&round_trip(event), event);
        }
        for frame in [
            ServerFrame::Resync,
            ServerFrame::Gap {
                run_id: "r".into(),
                from_seq: 1,
                to_seq: 2,
            },
            ServerFrame::Error {
                code: "c".into(),
                message: "m".into(),
            },
        ] {
            assert_eq!(round_trip(&frame), frame);
        }
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"gap","run_id":"r"}"#).is_err());
    }

    #[test]
    fn blocks_fall_back_to_other() {
        let content: MessageContent = serde_json::from_value(json!([
            {"type": "thinking"},
            {"type": "tool_use", "id": "t"},
            {"type": "tool_result", "tool_use_id": "t", "content": "ok"},
            7
        ]))
        .unwrap();
        let MessageContent::Blocks(blocks) = &content else {
            panic!("{content:?}")
        };
        assert_eq!(
            blocks[0],
            ContentBlock::Thinking {
                thinking: String::new()
            }
        );
        assert!(matches!(&blocks[1], ContentBlock::Other(v) if v["id"] == "t"));
        assert!(matches!(
            &blocks[2],
            ContentBlock::ToolResult { is_error: None, .. }
        ));
        assert_eq!(blocks[3], ContentBlock::Other(json!(7)));
        assert_eq!(round_trip(&content), content);
        assert!(serde_json::from_value::<MessageContent>(json!(1)).is_err());
    }
}
