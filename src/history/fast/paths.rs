//! Walking a type's compartment paths inside one captured top-level field down to the reference
//! nodes at their ends: quickly off the raw JSON where the quick reader can, by a serde visitor
//! where it doubts (an escaped string or key). Only a reference to a Patient is recorded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::fields::{Raw, Str};
use super::skim;
use crate::error::describe_json_error;
use crate::fhir::compartment::{self, Step};
use crate::history::messages::Unreadable;

/// The patients on this type's compartment paths inside one captured top-level field, walked
/// straight off the raw JSON: only the reference nodes at the ends of the paths are read.
pub(super) fn patients_in_raw<'a>(
    paths: &[Vec<Step>],
    key: &str,
    raw: Raw<'a>,
    out: &mut Vec<Cow<'a, str>>,
) -> Result<(), Unreadable> {
    for path in paths {
        let (first, rest) = path.split_first().expect("paths have a step");
        let Some(choice) = first.follows(key) else { continue };
        let before = out.len();
        if walk_quick(raw.get(), rest, choice, out).is_none() {
            // Something the quick walk leaves to serde_json (an escaped string or key).
            out.truncate(before);
            let mut de = serde_json::Deserializer::from_str(raw.get());
            let mut found = Vec::new();
            PathSeed { rest, choice, out: &mut found }.deserialize(&mut de).map_err(|e| describe_json_error(&e))?;
            out.extend(found.into_iter().map(Cow::Owned));
        }
    }
    Ok(())
}

/// [`PathSeed`]'s walk by the quick reader, over text already known to be valid JSON; `None`
/// when in doubt (then `PathSeed` walks it again).
fn walk_quick<'a>(raw: &'a str, rest: &[Step], choice: Option<&str>, out: &mut Vec<Cow<'a, str>>) -> Option<()> {
    use skim::{for_each_element, for_each_member, plain_string};
    match raw.as_bytes().first() {
        Some(b'[') => for_each_element(raw, |e| walk_quick(e, rest, choice, out)),
        Some(b'{') => {
            // A key on the path repeated in one object: serde_json's Value keeps the last value,
            // and so does `PathSeed`, which reads what this walk doubts.
            if let Some(choice) = choice {
                let mut seen = false;
                return for_each_member(raw, |k, v| match k == choice {
                    true if std::mem::replace(&mut seen, true) => None,
                    true => walk_quick(v, rest, None, out),
                    false => Some(()),
                });
            }
            let Some((step, rest)) = rest.split_first() else {
                let (mut reference, mut rtype, mut id, mut uri) = (None, None, None, None);
                for_each_member(raw, |k, v| {
                    let slot = match k {
                        "reference" => &mut reference,
                        "resourceType" => &mut rtype,
                        "id" => &mut id,
                        "uri" => &mut uri,
                        _ => return Some(()),
                    };
                    *slot = plain_string(v)?;
                    Some(())
                })?;
                out.extend(patient_of_node(reference, rtype, id, uri).map(Cow::Borrowed));
                return Some(());
            };
            let mut seen: smallvec::SmallVec<[&str; 2]> = smallvec::SmallVec::new();
            for_each_member(raw, |k, v| match step.follows(k) {
                Some(_) if seen.contains(&k) => None,
                Some(choice) => {
                    seen.push(k);
                    walk_quick(v, rest, choice, out)
                }
                None => Some(()),
            })
        }
        // A scalar where the path goes on: `PathSeed` reads it, so a string with escapes (a lone
        // surrogate is an error) and a number (one too large for f64 is an error) are left to it.
        Some(b'"') => (!raw.contains('\\')).then_some(()),
        Some(b'-' | b'0'..=b'9') => None,
        _ => Some(()),
    }
}

/// The Patient a reference node names, by `compartment::reference_of_fields`.
fn patient_of_node<'s>(
    reference: Option<&'s str>,
    rtype: Option<&'s str>,
    id: Option<&'s str>,
    uri: Option<&'s str>,
) -> Option<&'s str> {
    compartment::reference_of_fields(reference, rtype, id, uri).filter(|(t, _)| *t == "Patient").map(|(_, i)| i)
}

/// Walks the rest of a compartment path through objects and arrays; at its end, reads a
/// reference node (`reference`, `resourceType`+`id`, `uri`) and records a Patient it names.
/// `choice`: the Aidbox spelling of a choice element, `{"Reference": …}`, is stepped into first.
struct PathSeed<'p, 'o> {
    rest: &'p [Step],
    choice: Option<&'p str>,
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(PathSeed { rest: self.rest, choice: self.choice, out: &mut *self.out })?.is_some() {
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A key on the path repeated in one object: every value is read, the last one counts,
        // as in serde_json's Value.
        if let Some(choice) = self.choice {
            let mut last = None;
            while let Some(key) = map.next_key::<Str<'de>>()? {
                if key.0 == choice {
                    let mut found = Vec::new();
                    map.next_value_seed(PathSeed { rest: self.rest, choice: None, out: &mut found })?;
                    last = Some(found);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            self.out.extend(last.into_iter().flatten());
            return Ok(());
        }
        let Some((step, rest)) = self.rest.split_first() else {
            // A reference node.
            let (mut reference, mut rtype, mut id, mut uri) = (None, None, None, None);
            while let Some(key) = map.next_key::<Str<'de>>()? {
                let slot = match key.0.as_ref() {
                    "reference" => &mut reference,
                    "resourceType" => &mut rtype,
                    "id" => &mut id,
                    "uri" => &mut uri,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                *slot = map.next_value::<Option<StrOrOther<'de>>>()?.and_then(|s| s.0);
            }
            self.out.extend(
                patient_of_node(reference.as_deref(), rtype.as_deref(), id.as_deref(), uri.as_deref())
                    .map(str::to_string),
            );
            return Ok(());
        };
        let mut by_key: Vec<(Cow<'de, str>, Vec<String>)> = Vec::new();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match step.follows(&key.0) {
                Some(choice) => {
                    let mut found = Vec::new();
                    map.next_value_seed(PathSeed { rest, choice, out: &mut found })?;
                    match by_key.iter_mut().find(|(k, _)| *k == key.0) {
                        Some(earlier) => earlier.1 = found,
                        None => by_key.push((key.0, found)),
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.out.extend(by_key.into_iter().flat_map(|(_, found)| found));
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A string, or `None` for any other JSON value in its place.
struct StrOrOther<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StrOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrOther<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrOther(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrOther(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrOrOther(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrOrOther(None))
            }
        }
        d.deserialize_any(V)
    }
}
