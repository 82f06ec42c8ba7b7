//! JSON decoding through one path: text → [`serde_json::Value`] → the type. Claude's events are read from a
//! `Value` anyway, so every shared type's decoder is compiled once (for `&Value`) instead of once per reader.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads `text` as JSON into `T`.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    T::deserialize(&value)
}
