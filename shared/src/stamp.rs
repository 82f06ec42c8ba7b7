//! Reading timestamps: RFC 3339 as chrono writes them (`2025-01-02T03:04:05.123Z`), with chrono's strict RFC
//! 3339 parser. chrono's own `Deserialize` goes through its general format parser, which costs the web app
//! several KB; writing is unchanged (chrono's `Serialize`).

use chrono::{DateTime, Utc};
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// Reads an RFC 3339 timestamp.
pub(crate) fn parse<E: Error>(text: &str) -> Result<DateTime<Utc>, E> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(E::custom)
}

/// A timestamp (`deserialize_with`).
pub(crate) fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    parse(&String::deserialize(deserializer)?)
}

/// An optional timestamp (`deserialize_with`, with `default` for an absent field).
pub(crate) fn de_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse(&text))
        .transpose()
}
