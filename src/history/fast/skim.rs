//! The quick reader of one history line's top-level object: finds the captured fields' values
//! and checks the rest is well-formed JSON, without serde. It accepts a subset of what serde_json
//! accepts and answers `None` for anything else (escaped or non-ASCII keys, nesting deeper than
//! 64, any syntax error); the caller then reads the line with serde_json, which decides and
//! words the error. So a line it accepts gives exactly the fields serde_json's reading gives,
//! and a line it doubts costs one more read. The fuzz target `history` checks that subset rule.
//!
//! What it checks is what serde_json's `IgnoredAny` checks: structure, commas and colons,
//! string escapes, control characters in strings, numbers and literals; like serde_json, bytes of
//! skipped strings are not checked for UTF-8, while keys and captured values are. The same
//! scanning serves the quick walk over captured values (members, elements, plain strings), with
//! the same rule: `None` hands the value to serde_json.

use std::ops::Range;

use super::fields::{Fields, Interesting, Raw};

/// The fields of the object that is the whole of `line` (whitespace around it allowed), or
/// `None` when the quick reader does not accept the line.
pub(crate) fn fields<'a>(line: &'a [u8], interesting: &Interesting) -> Option<Fields<'a>> {
    let mut f = Fields::default();
    fields_into(line, interesting, &mut f)?;
    Some(f)
}

/// [`fields`] filling `f` (empty on entry) in place: `Fields` is a few hundred bytes, and the
/// line's reader keeps it where it is instead of moving it through `Option` and `Result`. On
/// `None`, `f` holds some of the fields and must be filled again by serde_json.
pub(crate) fn fields_into<'a>(line: &'a [u8], interesting: &Interesting, f: &mut Fields<'a>) -> Option<()> {
    let b = line;
    let end = members(b, ws(b, 0), |key, value| {
        let (key, span) = (&b[key], &b[value]);
        if let Some(slot) = f.slot(key) {
            *slot = Some(raw(span)?);
        } else if interesting.contains_bytes(key) {
            // A plain key is ASCII, so it is a str.
            let k = std::str::from_utf8(key).ok()?;
            f.others.push((k.into(), raw(span)?));
        }
        Some(())
    })?;
    (ws(b, end) == b.len()).then_some(())
}

/// Walks the members of the object whose `{` is at `i`: `f(key, value)` with the ranges of each
/// plain key (without its quotes) and of its value. The index after the closing `}`, or `None`
/// when the text is no such object, a key is not plain or `f` says so.
fn members(b: &[u8], i: usize, mut f: impl FnMut(Range<usize>, Range<usize>) -> Option<()>) -> Option<usize> {
    walk_members(b, i, |key, start| {
        let end = skip_value(b, start)?;
        f(key, start..end)?;
        Some(end)
    })
}

/// The object whose `{` is at `i`, member by member: `value(key, start)` with the range of each
/// plain key and the index where its value starts, answering the index after the value. The
/// index after the closing `}`, or `None` when the text is no such object, a key is not plain or
/// `value` says so.
#[inline]
fn walk_members(b: &[u8], mut i: usize, mut value: impl FnMut(Range<usize>, usize) -> Option<usize>) -> Option<usize> {
    if *b.get(i)? != b'{' {
        return None;
    }
    i = ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return Some(i + 1);
    }
    loop {
        if *b.get(i)? != b'"' {
            return None;
        }
        let after = plain_key(b, i + 1)?;
        let key = i + 1..after - 1;
        i = ws(b, after);
        if *b.get(i)? != b':' {
            return None;
        }
        let end = value(key, ws(b, i + 1))?;
        i = ws(b, end);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// A captured value: serde_json checks a borrowed raw value is UTF-8, and so does this.
fn raw(bytes: &[u8]) -> Option<Raw<'_>> {
    // Most captured values are ASCII: checked many bytes at once (a fold without early exit).
    if bytes.iter().fold(0u8, |seen, &c| seen | c) < 0x80 {
        // SAFETY: every byte is ASCII, so the bytes are UTF-8.
        return Some(Raw(unsafe { std::str::from_utf8_unchecked(bytes) }));
    }
    std::str::from_utf8(bytes).ok().map(Raw)
}

#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// A key without escapes, of printable ASCII, from just after its opening quote: the index after
/// its closing quote.
#[inline]
fn plain_key(b: &[u8], start: usize) -> Option<usize> {
    // The first quote, backslash or control character; a key ends at a quote.
    let end = next_special(b, start)?;
    // Without early exit, so the compiler checks many bytes at once.
    let ascii = b[start..end].iter().fold(0u8, |seen, &c| seen | c) < 0x80;
    (b[end] == b'"' && ascii).then_some(end + 1)
}

/// Skips one JSON value starting at `i` (no leading whitespace); the index after it.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    // The enclosing containers, innermost in the lowest bit: 1 for an object, 0 for an array.
    let mut stack: u64 = 0;
    let mut depth: u32 = 0;
    loop {
        // A value starts at i.
        match *b.get(i)? {
            b'"' => i = skip_string(b, i + 1)?,
            open @ (b'{' | b'[') => {
                if depth == 64 {
                    return None;
                }
                depth += 1;
                stack = (stack << 1) | (open == b'{') as u64;
                i = ws(b, i + 1);
                let close = if open == b'{' { b'}' } else { b']' };
                if *b.get(i)? == close {
                    i += 1;
                    depth -= 1;
                    stack >>= 1;
                } else {
                    if open == b'{' {
                        i = member_key(b, i)?;
                    }
                    continue;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = skip_number(b, i)?,
            _ => return None,
        }
        // After a value: close containers until a comma leads to the next value.
        loop {
            if depth == 0 {
                return Some(i);
            }
            i = ws(b, i);
            let in_object = stack & 1 == 1;
            match *b.get(i)? {
                b',' => {
                    i = ws(b, i + 1);
                    if in_object {
                        i = member_key(b, i)?;
                    }
                    break;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ => return None,
            }
            i += 1;
            depth -= 1;
            stack >>= 1;
        }
    }
}

/// `"key"` then `:` inside a skipped object, from the key's opening quote; the index of the value.
#[inline]
fn member_key(b: &[u8], i: usize) -> Option<usize> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let i = ws(b, skip_string(b, i + 1)?);
    if *b.get(i)? != b':' {
        return None;
    }
    Some(ws(b, i + 1))
}

#[inline]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as serde_json reads it.
fn skip_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while let Some(b'0'..=b'9') = b.get(i) {
            i += 1;
        }
        i
    };
    if b[i] == b'-' {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if let Some(b'0'..=b'9') = b.get(i) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(i + 1),
        _ => return None,
    }
    if let Some(b'.') = b.get(i) {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// Skips the rest of a string from just after its opening quote; the index after its closing
/// quote. Escapes must be JSON's; control characters are refused.
#[inline]
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = next_special(b, i)?;
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    if !b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The index of the next `"`, `\` or control character at or after `i`.
#[inline]
fn next_special(b: &[u8], mut i: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SSE2 is part of x86_64, so these are always available.
        while i + 16 <= b.len() {
            // SAFETY: i + 16 <= b.len(), so the unaligned 16-byte load stays inside `b`.
            let mask = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    while i < b.len() {
        if matches!(b[i], b'"' | b'\\' | 0..=0x1f) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The members of an object, from text already known to be valid JSON (a captured value):
/// `f(key, value)` for each in order. `None` when the text is not an object or a key is not
/// plain (escaped or non-ASCII) — the caller then reads the value with serde_json.
pub(crate) fn for_each_member<'a>(raw: &'a str, mut f: impl FnMut(&'a str, &'a str) -> Option<()>) -> Option<()> {
    // Quotes and the bytes around a value are ASCII, so the ranges fall on char boundaries.
    members(raw.as_bytes(), ws(raw.as_bytes(), 0), |key, value| f(&raw[key], &raw[value])).map(|_| ())
}

/// The elements of an array, from text already known to be valid JSON; `None` when it is not
/// an array.
pub(crate) fn for_each_element<'a>(raw: &'a str, mut f: impl FnMut(&'a str) -> Option<()>) -> Option<()> {
    let b = raw.as_bytes();
    let mut i = ws(b, 0);
    if *b.get(i)? != b'[' {
        return None;
    }
    i = ws(b, i + 1);
    if *b.get(i)? == b']' {
        return Some(());
    }
    loop {
        let end = skip_value(b, i)?;
        f(&raw[i..end])?;
        i = ws(b, end);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            b']' => return Some(()),
            _ => return None,
        }
    }
}

/// `compartment::all_references` in one pass over the raw text of a body known to be valid JSON:
/// every (type, id) that a reference node below the root names (`reference` if a string, else
/// `resourceType` and `id` if both are strings, else `uri` if a string), `contained` left out,
/// what lies inside a naming node dropped. `None` when in doubt — an escaped or non-ASCII key,
/// a repeated key (serde_json keeps the last), an escaped string where a reference is read,
/// nesting beyond 64 — for the caller to read the body with serde_json.
pub(crate) fn references<'a>(raw: &'a str, out: &mut Vec<(&'a str, &'a str)>) -> Option<()> {
    let b = raw.as_bytes();
    let end = references_in_value(raw, ws(b, 0), true, 0, out)?;
    (ws(b, end) == b.len()).then_some(())
}

/// The references in the value at `i` (no leading whitespace); the index after it.
fn references_in_value<'a>(
    raw: &'a str,
    mut i: usize,
    root: bool,
    depth: u32,
    out: &mut Vec<(&'a str, &'a str)>,
) -> Option<usize> {
    let b = raw.as_bytes();
    match *b.get(i)? {
        b'{' => references_in_object(raw, i, root, depth + 1, out),
        b'[' => {
            if depth == 64 {
                return None;
            }
            i = ws(b, i + 1);
            if *b.get(i)? == b']' {
                return Some(i + 1);
            }
            loop {
                i = ws(b, references_in_value(raw, i, false, depth + 1, out)?);
                match *b.get(i)? {
                    b',' => i = ws(b, i + 1),
                    b']' => return Some(i + 1),
                    _ => return None,
                }
            }
        }
        _ => skip_value(b, i),
    }
}

/// The references in the object whose `{` is at `i`; the index after its `}`.
fn references_in_object<'a>(
    raw: &'a str,
    i: usize,
    root: bool,
    depth: u32,
    out: &mut Vec<(&'a str, &'a str)>,
) -> Option<usize> {
    if depth > 64 {
        return None;
    }
    let b = raw.as_bytes();
    let inside = out.len();
    let mut keys: smallvec::SmallVec<[&str; 16]> = smallvec::SmallVec::new();
    // The node's fields when they are strings (a field of another kind counts as absent).
    let (mut reference, mut rtype, mut id, mut uri): (Option<&str>, Option<&str>, Option<&str>, Option<&str>) =
        (None, None, None, None);
    let end = walk_members(b, i, |key, start| {
        let key = &raw[key];
        if keys.contains(&key) {
            return None;
        }
        keys.push(key);
        let slot = match key {
            _ if root => None,
            "reference" => Some(&mut reference),
            "resourceType" => Some(&mut rtype),
            "id" => Some(&mut id),
            "uri" => Some(&mut uri),
            _ => None,
        };
        match (slot, *b.get(start)?) {
            (Some(slot), b'"') => {
                let end = skip_value(b, start)?;
                *slot = plain_string(&raw[start..end])?;
                Some(end)
            }
            _ if key == "contained" => skip_value(b, start),
            _ => references_in_value(raw, start, false, depth, out),
        }
    })?;
    if !root {
        if let Some(r) = crate::fhir::compartment::reference_of_fields(reference, rtype, id, uri) {
            // A naming node is not walked into.
            out.truncate(inside);
            out.push(r);
        }
    }
    Some(end)
}

/// A reference node's field as serde_json's reading of it would see it: `Some(Some(text))` for a
/// string without escapes, `Some(None)` for `true`, `false` or `null`, and `None` — let
/// serde_json decide — for a string with escapes (a lone surrogate is an error there), a number
/// (one too large for f64 is an error there), an object or an array.
pub(crate) fn plain_string(raw: &str) -> Option<Option<&str>> {
    match raw.as_bytes().first()? {
        b'"' => {
            let inner = &raw[1..raw.len() - 1];
            (!inner.contains('\\')).then_some(Some(inner))
        }
        b't' | b'f' | b'n' => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skims(line: &str) -> bool {
        let interesting = Interesting::new(vec!["subject".into()]);
        fields(line.as_bytes(), &interesting).is_some()
    }

    #[test]
    fn accepts_what_serde_accepts() {
        for ok in [
            r#"{}"#,
            r#"  { "id" : "a" , "x": [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, {}, [], {"k": [{"\"": "\\\/\b\f\n\r\t\u00e9"}]}] }  "#,
            r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"},"meta":{"versionId":"1"}}"#,
            "{\"a\":\"caf\u{e9} long enough to need the wide scan, and then some\"}",
        ] {
            assert!(skims(ok), "{ok}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_serde_refuses() {
        for bad in [
            r#"{"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":{1:2}}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b" 1}}"#,
            r#"{"a":1} x"#,
            r#"{"a":[}"#,
            r#"{"a":{]}"#,
            r#"{"a":"unterminated"#,
            r#"[1]"#,
        ] {
            assert!(!skims(bad), "{bad}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(bad).is_err() || !bad.starts_with('{'), "{bad}");
        }
    }

    #[test]
    fn leaves_doubtful_lines_to_serde() {
        // Legal JSON the quick reader does not take on: escaped and non-ASCII keys, deep nesting.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(65), "]".repeat(65));
        for doubtful in [r#"{"\u0069d":"a"}"#, "{\"caf\u{e9}\":1}", deep.as_str()] {
            assert!(!skims(doubtful), "{doubtful}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(doubtful).is_ok());
        }
    }

    /// Every fixed field and every wanted key is captured as serde_json's reading captures it,
    /// and keys that only look alike (same length or first letters) are not.
    #[test]
    fn captures_every_fixed_field_like_serde() {
        let interesting = Interesting::new(vec!["subject".into(), "patient".into()]);
        let line = r#"{"resourceType":"Bundle","id":"b","meta":{},"resource_type":"X","txid":1,"ts":"t","status":"s","resource":{},"request":{},"response":{},"fullUrl":"u","type":"history","entry":[],"subject":{},"patient":[1],"subjects":0,"pattern":1,"typo":2,"me":3,"":4}"#;
        let quick = fields(line.as_bytes(), &interesting).unwrap();
        let slow = super::super::fields::serde_fields(line.as_bytes(), &interesting).unwrap();
        assert_eq!(format!("{quick:?}"), format!("{slow:?}"));
        assert!(quick.entry.is_some() && quick.full_url.is_some() && quick.txid.is_some());
        assert_eq!(quick.others.len(), 2);
    }

    #[test]
    fn captures_the_same_fields_as_serde() {
        let interesting = Interesting::new(vec!["subject".into()]);
        let line = r#"{"meta":{"versionId":"2"},"x":{"subject":1},"subject" : {"reference":"Patient/p"} ,"id":"a","id":"b","subject":[]}"#;
        let quick = fields(line.as_bytes(), &interesting).unwrap();
        let slow = super::super::fields::serde_fields(line.as_bytes(), &interesting).unwrap();
        assert_eq!(format!("{quick:?}"), format!("{slow:?}"));
        assert_eq!(quick.id.unwrap().get(), r#""b""#);
        assert_eq!(quick.others.len(), 2);
    }
}
