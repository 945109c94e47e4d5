//! One Aidbox log line (`ev`, `ts`, `ctx`, `w_m`, `w_url`, `w_qs`, `w_st`, `w_cid`, `w_uid`, `w_b`,
//! and `w_addr`, `tn` for AuditEvents)
//! as a JSON object, reduced to the fields the audit reads.

use std::path::Path;

use crate::timestamp::Zone;
use serde_json::{Map, Value};

use super::LogLine;
use crate::error::{Error, Result};
use crate::timestamp::{self, TimeError};

fn string_field(path: &Path, line: u64, offset: u64, obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key != "w_url" && key != "w_m" => Ok(Some(n.to_string())),
        Some(other) => {
            Err(Error::input(path, line, offset, format!("field {key} should be a string, found {}", kind_of(other))))
        }
    }
}

pub(super) fn line_from_object(
    path: &Path,
    file: usize,
    line: u64,
    offset: u64,
    obj: &Map<String, Value>,
    zone: &Zone,
) -> Result<LogLine> {
    let s = |k: &str| string_field(path, line, offset, obj, k);
    // `null` is absent.
    let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let ts = match (get("ts"), get("@timestamp"), get("timeUnix")) {
        (Some(Value::String(t)), _, _) | (None, Some(Value::String(t)), _) => {
            Some(match timestamp::parse_stamp(t, zone) {
                Ok(stamp) => stamp,
                Err(TimeError::NoZone) => return Err(Error::needs_zone(path, line)),
                Err(e) => return Err(Error::input(path, line, offset, format!("field ts: {e}"))),
            })
        }
        (Some(Value::Number(n)), _, _) | (None, Some(Value::Number(n)), _) | (None, None, Some(Value::Number(n))) => {
            Some(
                n.as_f64()
                    .and_then(timestamp::from_epoch_millis_f64)
                    .ok_or_else(|| Error::input(path, line, offset, "field ts: epoch milliseconds out of range"))?,
            )
        }
        (None, None, _) => None,
        (Some(other), _, _) | (None, Some(other), _) => {
            return Err(Error::input(
                path,
                line,
                offset,
                format!("field ts should be a timestamp, found {}", kind_of(other)),
            ))
        }
    };
    let status = match obj.get("w_st") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            parse_status(v)
                .ok_or_else(|| Error::input(path, line, offset, format!("field w_st is not an HTTP status: {v}")))?,
        ),
    };
    Ok(LogLine {
        ev: s("ev")?,
        ts,
        ctx: s("ctx")?,
        method: s("w_m")?,
        url: s("w_url")?,
        query: s("w_qs")?,
        status,
        client_id: s("w_cid")?,
        user_id: s("w_uid")?,
        // Informational only (they name the parties in AuditEvents): any other JSON is kept as
        // its text rather than stopping the audit.
        address: informational(get("w_addr")),
        box_id: informational(get("tn")),
        body: match get("w_b") {
            None => None,
            Some(Value::String(b)) => Some(b.clone()),
            Some(other) => Some(other.to_string()),
        },
        file,
        line,
    })
}

fn informational(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn parse_status(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as u64)),
        Value::String(s) => parse_status_text(s),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .filter(|n| (100..=599).contains(n))
}

fn parse_status_text(s: &str) -> Option<u64> {
    let s = s.trim().replace(',', "");
    s.parse::<u64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
}

/// What a JSON value is, for messages.
pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
