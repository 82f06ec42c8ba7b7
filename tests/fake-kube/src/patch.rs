//! Patch bodies: JSON merge patch (RFC 7396; strategic-merge and apply patches are treated the same) and a
//! subset of JSON patch (RFC 6902: `add`, `replace`, `remove`, `test`).

use serde_json::Value;

use crate::status::ApiError;

/// Applies merge patch `patch` to `target` in place.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies JSON patch `ops` (an array) to `target`.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let Some(ops) = ops.as_array() else {
        return Err(ApiError::bad_request("json patch must be an array"));
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let (parent_path, last) = match path.rfind('/') {
            Some(at) => (&path[..at], unescape(&path[at + 1..])),
            None => return Err(ApiError::bad_request(format!("invalid json patch path {path:?}"))),
        };
        match kind {
            "test" => {
                if target.pointer(path) != Some(&value) {
                    return Err(ApiError::code(422, format!("json patch test failed at {path}")));
                }
            }
            "add" | "replace" | "remove" => {
                let Some(parent) = target.pointer_mut(parent_path) else {
                    return Err(ApiError::code(422, format!("json patch: no parent for {path}")));
                };
                apply_one(parent, kind, &last, value)
                    .ok_or_else(|| ApiError::code(422, format!("json patch {kind} failed at {path}")))?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unsupported json patch op {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// One `add`/`replace`/`remove` on the parent container; `None` if the target is missing or invalid.
fn apply_one(parent: &mut Value, kind: &str, key: &str, value: Value) -> Option<()> {
    match parent {
        Value::Object(map) => {
            match kind {
                "remove" => {
                    map.remove(key)?;
                }
                "replace" => *map.get_mut(key)? = value,
                _ => {
                    map.insert(key.to_owned(), value);
                }
            }
            Some(())
        }
        Value::Array(items) => {
            let index = if key == "-" {
                items.len()
            } else {
                key.parse().ok()?
            };
            match kind {
                "remove" => {
                    (index < items.len()).then(|| items.remove(index))?;
                }
                "replace" => *items.get_mut(index)? = value,
                _ => {
                    (index <= items.len()).then(|| items.insert(index, value))?;
                }
            }
            Some(())
        }
        _ => None,
    }
}

/// JSON pointer token unescaping.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}
