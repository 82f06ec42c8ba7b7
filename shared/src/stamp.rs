//! Reading timestamps: RFC 3339 as chrono writes them (`2025-01-02T03:04:05.123Z`), with a small strict RFC
//! 3339 reader. chrono's own `Deserialize` goes through its general format parser, and even its
//! `parse_from_rfc3339` costs the web app a few KB; writing is unchanged (chrono's `Serialize`).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// Reads an RFC 3339 timestamp.
pub(crate) fn parse<E: Error>(text: &str) -> Result<DateTime<Utc>, E> {
    rfc3339(text).ok_or_else(|| E::custom("not an RFC 3339 timestamp"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`, `z` and a space for `T` as RFC 3339 allows; no leap
/// second), as UTC.
pub fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        let digits = bytes.get(from..to)?;
        digits.iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    let mut rest = 19;
    let mut nanos = 0;
    if bytes[rest] == b'.' {
        let digits = bytes[rest + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let mut scale = 100_000_000;
        for &digit in &bytes[rest + 1..rest + 1 + digits] {
            nanos += u32::from(digit - b'0') * scale;
            scale /= 10;
        }
        rest += 1 + digits;
    }
    let offset = match &bytes[rest..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(rest + 1, rest + 3)?, number(rest + 4, rest + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nanos)?;
    DateTime::from_timestamp(date.and_time(time).and_utc().timestamp() - offset, nanos)
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::rfc3339;

    #[test]
    fn reads_what_chrono_reads() {
        for text in [
            "2025-01-02T03:04:05Z",
            "2025-01-02T03:04:05.123Z",
            "2025-01-02T03:04:05.123456789Z",
            "2025-01-02T03:04:05.1234567891Z",
            "2025-01-02t03:04:05z",
            "2025-01-02 03:04:05+02:30",
            "2024-02-29T23:59:59.5-08:00",
            "1970-01-01T00:00:00Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .ok();
            assert_eq!(rfc3339(text), chrono, "{text}");
            assert!(chrono.is_some(), "{text}");
        }
        let written =
            Utc.with_ymd_and_hms(2026, 12, 7, 4, 14, 8).unwrap() + chrono::TimeDelta::milliseconds(504);
        assert_eq!(rfc3339(&written.to_rfc3339()), Some(written));
        assert_eq!(
            rfc3339(&serde_json::to_string(&written).unwrap().replace('"', "")),
            Some(written)
        );
    }

    #[test]
    fn refuses_what_is_not_rfc_3339() {
        for text in [
            "",
            "2025-01-02",
            "2025-01-02T03:04:05",
            "2025-01-02T03:04:05.Z",
            "2025-02-30T03:04:05Z",
            "2025-01-02T24:04:05Z",
            "2025-01-02T03:04:05+2:00",
            "2025-01-02T03:04:05+24:00",
            "2025-01-02T03:04:05Zjunk",
            "２025-01-02T03:04:05Z",
            "+2025-01-02T03:04:05Z",
        ] {
            assert_eq!(rfc3339(text), None, "{text}");
        }
    }
}
