//! Instants: parsing every timestamp form the inputs use (ISO-8601 with 0–9 fraction digits and
//! any offset, PostgreSQL's `+00`, Kibana's `Dec 5, 2022 @ 16:34:30.417`, epoch milliseconds),
//! with the unit each was written in (a whole second, a millisecond, …), and printing them in
//! UTC. An instant is nanoseconds since the Unix epoch, in UTC. A timestamp without an offset is
//! read in `--tz`; without `--tz` it is an error, never a guess.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct Instant(pub i64);

pub(crate) const NANOS_PER_MILLI: i64 = 1_000_000;

impl Instant {
    pub(crate) fn from_millis(ms: i64) -> Instant {
        Instant(ms.saturating_mul(NANOS_PER_MILLI))
    }

    /// RFC 3339 in UTC with `Z`, with 0, 3, 6 or 9 fraction digits as needed.
    pub(crate) fn to_rfc3339(self) -> String {
        let dt: DateTime<Utc> = Utc.timestamp_nanos(self.0);
        dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}

/// The zone `--tz` names for timestamps written without an offset; none when `--tz` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone(Option<Tz>);

impl Zone {
    /// No `--tz`: a timestamp without an offset is [`TimeError::NoZone`].
    pub(crate) const NONE: Zone = Zone(None);
    #[cfg(any(test, feature = "hooks"))]
    pub(crate) const UTC: Zone = Zone(Some(Tz::UTC));

    pub(crate) fn given(tz: Tz) -> Zone {
        Zone(Some(tz))
    }

    /// The IANA name, when `--tz` was given.
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.0.map(|tz| tz.name())
    }
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeError {
    /// It has no UTC offset, and no `--tz` says which zone it was written in.
    NoZone,
    /// Not a timestamp of any known form: what was expected.
    Unreadable(String),
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeError::NoZone => f.write_str("a timestamp without a UTC offset, and no --tz to read it in"),
            TimeError::Unreadable(m) => f.write_str(m),
        }
    }
}

impl From<String> for TimeError {
    fn from(m: String) -> Self {
        TimeError::Unreadable(m)
    }
}

/// A timestamp as written: the instant it starts at, and the length of the unit it was written
/// in (nanoseconds: 10^9 for whole seconds, 10^6 for milliseconds, a day for a date alone). Such a
/// timestamp means some instant of that unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stamp {
    pub(crate) at: Instant,
    pub(crate) unit: i64,
    /// A local time that a clock change made occur twice: `at` is its earlier instant, and the
    /// unit reaches past its later one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ambiguous: bool,
}

impl Stamp {
    /// The last nanosecond of the unit.
    pub(crate) fn end(self) -> Instant {
        Instant(self.at.0.saturating_add(self.unit - 1))
    }
}

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// The unit of a clock time written with `digits` fraction digits (`None`: no seconds at all).
fn unit_of_fraction(seconds: bool, digits: usize) -> i64 {
    if !seconds {
        60 * 1_000_000_000
    } else {
        10i64.pow(9 - digits.min(9) as u32)
    }
}

impl std::fmt::Display for Instant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Appends RFC 3339 in UTC with `Z` and 0, 3, 6 or 9 fraction digits, exactly as
/// [`Instant::to_rfc3339`] but without going through chrono (the output's hot path).
pub(crate) fn push_rfc3339(nanos: i64, out: &mut Vec<u8>) {
    match Rfc3339::of(nanos) {
        Some(t) => out.extend_from_slice(t.as_bytes()),
        None => out.extend_from_slice(Instant(nanos).to_rfc3339().as_bytes()),
    }
}

/// An instant formatted on the stack, for years 0000–9999.
struct Rfc3339 {
    text: [u8; 30],
    len: usize,
}

impl Rfc3339 {
    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }

    /// `None` outside years 0000–9999 (chrono formats those).
    fn of(nanos: i64) -> Option<Rfc3339> {
        let secs = nanos.div_euclid(1_000_000_000);
        let frac = nanos.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut b = [0u8; 30];
        let digits = |b: &mut [u8], at: usize, v: u32, n: usize| {
            let mut v = v;
            for i in (0..n).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(&mut b, 0, y as u32, 4);
        b[4] = b'-';
        digits(&mut b, 5, m, 2);
        b[7] = b'-';
        digits(&mut b, 8, d, 2);
        b[10] = b'T';
        digits(&mut b, 11, sod / 3600, 2);
        b[13] = b':';
        digits(&mut b, 14, sod / 60 % 60, 2);
        b[16] = b':';
        digits(&mut b, 17, sod % 60, 2);
        let mut len = 19;
        let (value, n) = if frac == 0 {
            (0, 0)
        } else if frac.is_multiple_of(1_000_000) {
            (frac / 1_000_000, 3)
        } else if frac.is_multiple_of(1000) {
            (frac / 1000, 6)
        } else {
            (frac, 9)
        };
        if n > 0 {
            b[len] = b'.';
            digits(&mut b, len + 1, value, n);
            len += 1 + n;
        }
        b[len] = b'Z';
        Some(Rfc3339 { text: b, len: len + 1 })
    }
}

/// Parses an IANA zone name for `--tz`.
pub(crate) fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?} (expected an IANA name such as UTC or Europe/Berlin)"))
}

/// Parses any supported timestamp form. A form without an offset is read in `zone`.
pub(crate) fn parse(text: &str, zone: &Zone) -> Result<Instant, TimeError> {
    parse_stamp(text, zone).map(|s| s.at)
}

/// Parses any supported timestamp form, with the unit it was written in.
pub(crate) fn parse_stamp(text: &str, zone: &Zone) -> Result<Stamp, TimeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(TimeError::Unreadable("empty timestamp".into()));
    }
    let first = s.as_bytes()[0];
    if s.bytes().all(|b| b.is_ascii_digit())
        || (first == b'-' && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        let ms: i64 = s.parse().map_err(|_| format!("epoch milliseconds out of range: {s:?}"))?;
        return Ok(Stamp { at: Instant::from_millis(ms), unit: NANOS_PER_MILLI, ambiguous: false });
    }
    if first.is_ascii_alphabetic() {
        return parse_kibana(s, zone);
    }
    if let Some(t) = parse_utc_exactly(s.as_bytes()) {
        return Ok(t);
    }
    parse_iso(s, zone)
}

/// The form every history row and `meta.lastUpdated` is written in,
/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` with years 1900–2199, read without chrono: the same instant
/// `parse_iso` gives. `None` for anything else (`parse_iso` decides, and words any error).
fn parse_utc_exactly(s: &[u8]) -> Option<Stamp> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
        || *s.last()? != b'Z'
    {
        return None;
    }
    let num = |at: usize, n: usize| -> Option<i64> {
        s[at..at + n].iter().try_fold(0i64, |v, &c| c.is_ascii_digit().then(|| v * 10 + (c - b'0') as i64))
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1900..=2199).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[mo as usize - 1]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let (nanos, digits) = match &s[19..s.len() - 1] {
        [] => (0, 0),
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            (num(20, fraction.len())? * 10i64.pow(9 - fraction.len() as u32), fraction.len())
        }
        _ => return None,
    };
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = Instant(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000_000) + nanos);
    Some(Stamp { at, unit: unit_of_fraction(true, digits), ambiguous: false })
}

/// Epoch milliseconds given as a JSON number (`timeUnix`); fractional milliseconds are kept (and
/// the unit is then a nanosecond).
pub(crate) fn from_epoch_millis_f64(ms: f64) -> Option<Stamp> {
    if !ms.is_finite() || ms.abs() > 9.0e15 {
        return None;
    }
    let whole = ms.trunc() as i64;
    let frac = (ms.fract() * NANOS_PER_MILLI as f64).round() as i64;
    Some(Stamp {
        at: Instant(whole * NANOS_PER_MILLI + frac),
        unit: if frac == 0 { NANOS_PER_MILLI } else { 1 },
        ambiguous: false,
    })
}

/// A local clock time read in `zone`, written to `unit`. One that occurs twice (the clocks went
/// back) is its earlier instant, its unit stretched to the end of the later one (`ambiguous`);
/// one that does not occur (the clocks skipped it) is an error: the zone is likely wrong.
fn localize_clock(naive: NaiveDateTime, zone: &Zone, unit: i64) -> Result<Stamp, TimeError> {
    let Some(tz) = zone.0 else { return Err(TimeError::NoZone) };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Ok(Stamp { at: nanos_of(dt.naive_utc())?, unit, ambiguous: false }),
        LocalResult::Ambiguous(a, b) => {
            let (first, second) = (nanos_of(a.naive_utc())?, nanos_of(b.naive_utc())?);
            let (first, second) = (first.min(second), first.max(second));
            Ok(Stamp { at: first, unit: second.0 - first.0 + unit, ambiguous: true })
        }
        LocalResult::None => Err(TimeError::Unreadable(format!(
            "local time {naive} does not exist in {tz} (the clocks skipped it): the zone is likely wrong, or the \
             time was not written in it"
        ))),
    }
}

fn localize(naive: NaiveDateTime, zone: &Zone) -> Result<Instant, TimeError> {
    let Some(zone) = zone.0 else { return Err(TimeError::NoZone) };
    let dt = match zone.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt,
        // A repeated wall-clock hour (autumn): take the first of the two instants.
        LocalResult::Ambiguous(a, _) => a,
        // A skipped wall-clock hour (spring): the clock read this only if it was not moved yet.
        LocalResult::None => match zone.from_local_datetime(&(naive + chrono::Duration::hours(1))) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt - chrono::Duration::hours(1),
            LocalResult::None => {
                return Err(TimeError::Unreadable(format!("local time {naive} does not exist in {zone}")))
            }
        },
    };
    Ok(nanos_of(dt.naive_utc())?)
}

fn nanos_of(naive_utc: NaiveDateTime) -> Result<Instant, String> {
    naive_utc.and_utc().timestamp_nanos_opt().map(Instant).ok_or_else(|| "timestamp outside 1677–2262".to_string())
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn digits(&mut self, min: usize, max: usize) -> Option<(u64, usize)> {
        let start = self.i;
        let mut v: u64 = 0;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            v = v * 10 + (self.s[self.i] - b'0') as u64;
            self.i += 1;
        }
        let n = self.i - start;
        if n < min {
            self.i = start;
            return None;
        }
        Some((v, n))
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
}

/// `HH:MM[:SS[.fffffffff]]` → (h, m, s, nanos, the unit it was written in).
fn parse_clock(c: &mut Cursor) -> Option<(u32, u32, u32, u32, i64)> {
    let (h, _) = c.digits(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let (m, _) = c.digits(2, 2)?;
    let mut sec = 0;
    let mut nanos = 0u64;
    let mut unit = unit_of_fraction(false, 0);
    if c.eat(b':') {
        sec = c.digits(2, 2)?.0;
        unit = unit_of_fraction(true, 0);
        if c.eat(b'.') || c.eat(b',') {
            let (f, n) = c.digits(1, 9)?;
            nanos = f * 10u64.pow(9 - n as u32);
            unit = unit_of_fraction(true, n);
            // More than nine digits: keep nanoseconds, drop the rest.
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.i += 1;
            }
        }
    }
    Some((h as u32, m as u32, sec as u32, nanos as u32, unit))
}

fn parse_iso(s: &str, zone: &Zone) -> Result<Stamp, TimeError> {
    let bad = || {
        format!("unreadable timestamp {s:?} (expected ISO-8601, Kibana's 'Dec 5, 2022 @ 16:34:30.417' or epoch milliseconds)")
    };
    let mut c = Cursor { s: s.as_bytes(), i: 0 };
    let (y, _) = c.digits(4, 4).ok_or_else(bad)?;
    if !c.eat(b'-') {
        return Err(bad().into());
    }
    let (mo, _) = c.digits(2, 2).ok_or_else(bad)?;
    if !c.eat(b'-') {
        return Err(bad().into());
    }
    let (d, _) = c.digits(2, 2).ok_or_else(bad)?;
    let date = NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32).ok_or_else(bad)?;
    let (h, mi, sec, nanos, unit) = if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        parse_clock(&mut c).ok_or_else(bad)?
    } else {
        (0, 0, 0, 0, NANOS_PER_DAY)
    };
    // Leap second 60 is folded into the next second's start by chrono's nano field.
    let (sec, nanos) = if sec == 60 { (59, nanos + 1_000_000_000) } else { (sec, nanos) };
    let time = chrono::NaiveTime::from_hms_nano_opt(h, mi, sec, nanos).ok_or_else(bad)?;
    let naive = NaiveDateTime::new(date, time);
    c.skip_spaces();
    let at = match c.peek() {
        // A date alone in a zone: its day runs to the next local midnight (23 or 25 hours on
        // the days the clocks change).
        None if unit == NANOS_PER_DAY => {
            let at = localize(naive, zone)?;
            let next = localize(naive + chrono::Duration::days(1), zone)?;
            return Ok(Stamp { at, unit: next.0 - at.0, ambiguous: false });
        }
        None => return localize_clock(naive, zone, unit),
        Some(b'Z') | Some(b'z') => {
            c.i += 1;
            if c.i != c.s.len() {
                return Err(bad().into());
            }
            nanos_of(naive)?
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let (oh, _) = c.digits(2, 2).ok_or_else(bad)?;
            c.eat(b':');
            let om = c.digits(2, 2).map(|x| x.0).unwrap_or(0);
            if c.i != c.s.len() || oh > 23 || om > 59 {
                return Err(bad().into());
            }
            let off = (oh * 3600 + om * 60) as i64;
            let off = if sign == b'+' { off } else { -off };
            let utc = nanos_of(naive)?;
            Instant(utc.0 - off * 1_000_000_000)
        }
        Some(_) => return Err(bad().into()),
    };
    Ok(Stamp { at, unit, ambiguous: false })
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Kibana Discover's `Dec 5, 2022 @ 16:34:30.417` (month names may be full), read in `zone`.
fn parse_kibana(s: &str, zone: &Zone) -> Result<Stamp, TimeError> {
    let bad = || format!("unreadable Kibana date {s:?} (expected e.g. 'Dec 5, 2022 @ 16:34:30.417')");
    let word_end = s.find(|ch: char| !ch.is_ascii_alphabetic()).ok_or_else(bad)?;
    let word = s[..word_end].to_ascii_lowercase();
    if word.len() < 3 {
        return Err(bad().into());
    }
    let month = MONTHS.iter().position(|m| word.starts_with(m)).ok_or_else(bad)? as u32 + 1;
    let mut c = Cursor { s: s.as_bytes(), i: word_end };
    c.eat(b'.');
    c.skip_spaces();
    let (day, _) = c.digits(1, 2).ok_or_else(bad)?;
    c.skip_spaces();
    if c.peek() == Some(b',') {
        c.i += 1;
    }
    c.skip_spaces();
    let (year, _) = c.digits(4, 4).ok_or_else(bad)?;
    c.skip_spaces();
    if !c.eat(b'@') {
        return Err(bad().into());
    }
    c.skip_spaces();
    let (h, mi, sec, nanos, unit) = parse_clock(&mut c).ok_or_else(bad)?;
    if c.i != c.s.len() {
        return Err(bad().into());
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day as u32).ok_or_else(bad)?;
    let time = chrono::NaiveTime::from_hms_nano_opt(h, mi, sec, nanos).ok_or_else(bad)?;
    localize_clock(NaiveDateTime::new(date, time), zone, unit)
}

#[cfg(test)]
mod tests;

/// `24h`, `90m`, `30s`, `2d`, `1h30m`, `1500ms` → nanoseconds.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("unreadable duration {s:?} (expected e.g. 24h, 90m, 2d, 1h30m)");
    let mut total: i64 = 0;
    let mut num = String::new();
    let b = s.trim();
    let mut chars = b.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().expect("peeked"));
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let mult: i64 = match unit.as_str() {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            "d" => 86400 * 1_000_000_000,
            _ => return Err(bad()),
        };
        total = total.checked_add(n.checked_mul(mult).ok_or_else(bad)?).ok_or_else(bad)?;
        any = true;
    }
    if !num.is_empty() {
        // A bare number is seconds.
        total = total
            .checked_add(num.parse::<i64>().map_err(|_| bad())?.checked_mul(1_000_000_000).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Ok(total)
}
