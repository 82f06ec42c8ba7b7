//! Clock and formatting helpers. The pure ones (durations, countdowns) take "now" as an argument so they can
//! be tested on the host; only [`now`] and [`local`] touch the browser.

use chrono::{DateTime, Utc};
use wasm_bindgen::JsValue;

/// The browser's current time.
pub fn now() -> DateTime<Utc> {
    let ms = js_sys::Date::now();
    // The float → int cast saturates; a bogus clock gives the epoch rather than a panic.
    DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

/// A compact duration: `42s`, `3m 05s`, `2h 07m`, `3d 4h`. Negative durations count as zero.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if secs >= 3_600 {
        format!("{}h {m:02}m", secs / 3_600)
    } else if secs >= 60 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Seconds from `from` to `to`.
pub fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds()
}

/// "in 3m 05s" until `at`, or "now" once it has passed.
pub fn countdown(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = secs_between(now, at);
    if left <= 0 {
        "now".to_owned()
    } else {
        format!("in {}", duration(left))
    }
}

/// A timestamp in the browser's locale: the time alone when it is today, else a short date and time.
pub fn local(at: DateTime<Utc>) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
    let today = js_sys::Date::new_0();
    let same_day = date.to_date_string() == today.to_date_string();
    let options = js_sys::Object::new();
    let set = |key: &str, value: &str| {
        // Setting a plain property on a fresh object cannot fail.
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    };
    if !same_day {
        set("month", "short");
        set("day", "numeric");
    }
    set("hour", "2-digit");
    set("minute", "2-digit");
    String::from(date.to_locale_string("default", &options))
}

/// US dollars with cents (`$0.25`), without the float formatting machinery.
pub fn usd(amount: f64) -> String {
    let cents = (amount * 100.0).round();
    if !cents.is_finite() {
        return "–".to_owned();
    }
    let cents = cents as i64;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// Seconds since the Unix epoch as a time, when valid.
pub fn from_unix(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(2 * 3_600 + 7 * 60 + 9), "2h 07m");
        assert_eq!(duration(3 * 86_400 + 4 * 3_600), "3d 4h");
    }

    #[test]
    fn dollars() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.255), "$0.26");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(usd(-1.0), "-$1.00");
        assert_eq!(usd(f64::NAN), "–");
    }

    #[test]
    fn countdowns() {
        let now = from_unix(1_000).unwrap_or_default();
        assert_eq!(countdown(from_unix(1_065).unwrap_or_default(), now), "in 1m 05s");
        assert_eq!(countdown(from_unix(900).unwrap_or_default(), now), "now");
    }
}
