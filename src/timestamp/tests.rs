//! Every timestamp form, its unit, the zone rules and the fast formatting against chrono.

use super::*;

/// The quick reading of the usual form gives what the general reading gives.
#[test]
fn usual_form_read_quickly_as_generally() {
    let mut seed = 12345u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut texts: Vec<String> = [
        "1970-01-01T00:00:00Z",
        "1900-01-01T00:00:00Z",
        "2199-12-31T23:59:59.999999999Z",
        "2000-02-29T12:00:00.5Z",
        "2024-02-29T23:59:59.123456Z",
    ]
    .map(String::from)
    .to_vec();
    for _ in 0..20_000 {
        let digits = next(10) as usize;
        let fraction = if digits == 0 {
            String::new()
        } else {
            format!(".{:0width$}", next(10u64.pow(digits as u32)), width = digits)
        };
        texts.push(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
            1890 + next(320),
            next(14),
            next(32),
            next(25),
            next(61),
            next(61)
        ));
    }
    let mut quick = 0;
    for t in &texts {
        let general = parse_iso(t, &Zone::UTC).ok();
        if let Some(q) = parse_utc_exactly(t.as_bytes()) {
            quick += 1;
            assert_eq!(Some(q), general, "{t}");
        }
        assert_eq!(parse_stamp(t, &Zone::UTC).ok(), general, "{t}");
    }
    assert!(quick > 5_000, "most texts take the quick reading ({quick})");
    for not_usual in [
        "2023-01-01T00:00:00+00:00",
        "2023-01-01T00:00:00.1234567891Z",
        "2023-01-01 00:00:00Z",
        "2023-01-01T00:00:60Z",
        "1800-01-01T00:00:00Z",
    ] {
        assert!(parse_utc_exactly(not_usual.as_bytes()).is_none(), "{not_usual}");
    }
}

fn utc(s: &str) -> String {
    parse(s, &Zone::UTC).unwrap().to_rfc3339()
}

#[test]
fn iso_forms() {
    assert_eq!(utc("2022-12-05T16:34:30.417Z"), "2022-12-05T16:34:30.417Z");
    assert_eq!(utc("2022-12-05T16:34:30Z"), "2022-12-05T16:34:30Z");
    assert_eq!(utc("2022-12-05T16:34:30.123456789Z"), "2022-12-05T16:34:30.123456789Z");
    assert_eq!(utc("2022-12-05T16:34:30.1234567891Z"), "2022-12-05T16:34:30.123456789Z");
    assert_eq!(utc("2022-12-05 18:34:30.5+02"), "2022-12-05T16:34:30.500Z");
    assert_eq!(utc("2022-12-05T11:34:30-05:00"), "2022-12-05T16:34:30Z");
    assert_eq!(utc("2022-12-05T17:34:30+0100"), "2022-12-05T16:34:30Z");
    assert_eq!(utc("2022-12-05"), "2022-12-05T00:00:00Z");
}

#[test]
fn offsetless_forms_use_the_zone() {
    let berlin = Zone::given("Europe/Berlin".parse().unwrap());
    assert_eq!(parse("2022-12-05T17:34:30.417", &berlin).unwrap().to_rfc3339(), "2022-12-05T16:34:30.417Z");
    assert_eq!(parse("Dec 5, 2022 @ 17:34:30.417", &berlin).unwrap().to_rfc3339(), "2022-12-05T16:34:30.417Z");
    // Summer time: +02:00.
    assert_eq!(parse("Jul 1, 2022 @ 12:00:00.000", &berlin).unwrap().to_rfc3339(), "2022-07-01T10:00:00Z");
}

#[test]
fn kibana_and_epoch() {
    assert_eq!(utc("Dec 5, 2022 @ 16:34:30.417"), "2022-12-05T16:34:30.417Z");
    assert_eq!(utc("December 15, 2022 @ 06:04:30.000"), "2022-12-15T06:04:30Z");
    assert_eq!(utc("1670258070417"), "2022-12-05T16:34:30.417Z");
    assert_eq!(from_epoch_millis_f64(1670258070417.0).unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.417Z");
}

/// Without `--tz`, a timestamp without an offset is an error of its own; with an offset it
/// reads as ever.
#[test]
fn no_zone_no_guess() {
    for s in ["2022-12-05T17:34:30.417", "Dec 5, 2022 @ 17:34:30.417", "2022-12-05"] {
        assert_eq!(parse(s, &Zone::NONE), Err(TimeError::NoZone), "{s}");
    }
    assert_eq!(parse("2022-12-05T16:34:30Z", &Zone::NONE).unwrap().to_rfc3339(), "2022-12-05T16:34:30Z");
    assert_eq!(parse("2022-12-05 18:34:30.5+02", &Zone::NONE).unwrap().to_rfc3339(), "2022-12-05T16:34:30.500Z");
    assert_eq!(parse("1670258070417", &Zone::NONE).unwrap().to_rfc3339(), "2022-12-05T16:34:30.417Z");
}

/// A timestamp covers the unit it was written in.
#[test]
fn units_as_written() {
    let unit = |s: &str| parse_stamp(s, &Zone::UTC).unwrap().unit;
    assert_eq!(unit("2019-04-18T13:35:43Z"), 1_000_000_000);
    assert_eq!(unit("2019-04-18T13:35:43.5Z"), 100_000_000);
    assert_eq!(unit("2019-04-18T13:35:43.417Z"), 1_000_000);
    assert_eq!(unit("2022-12-04 14:22:10.123456+00"), 1_000);
    assert_eq!(unit("2019-04-18T13:35:43.123456789Z"), 1);
    assert_eq!(unit("Dec 5, 2022 @ 16:34:30.417"), 1_000_000);
    assert_eq!(unit("Dec 5, 2022 @ 16:34:30"), 1_000_000_000);
    assert_eq!(unit("2022-12-05T16:34Z"), 60_000_000_000);
    assert_eq!(unit("2022-12-05"), 86_400_000_000_000);
    assert_eq!(unit("1670258070417"), 1_000_000);
    let day = parse_stamp("2022-12-05", &Zone::UTC).unwrap();
    assert_eq!(day.end().to_rfc3339(), "2022-12-05T23:59:59.999999999Z");
}

#[test]
fn rejects_garbage() {
    for s in
        ["", "yesterday", "2022-13-05T00:00:00Z", "2022-12-05T16:34:30Q", "Dec 5 2022", "2022-12-05T16:34:30+99:00"]
    {
        assert!(parse(s, &Zone::UTC).is_err(), "{s:?} should be rejected");
    }
}

#[test]
fn fast_formatting_matches_chrono() {
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut samples = vec![
        0i64,
        -1,
        1,
        999_999_999,
        1_000_000_000,
        -86_400_000_000_000,
        253_402_300_799_999_999,
        951_782_400_000_000_000,
    ];
    for _ in 0..20_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let ns = (rng % 8_000_000_000_000_000_000) as i64 - 1_000_000_000_000_000_000;
        samples.push(ns);
        samples.push(ns - ns % 1000);
        samples.push(ns - ns % 1_000_000);
        samples.push(ns - ns % 1_000_000_000);
    }
    for ns in samples {
        let mut s = Vec::new();
        push_rfc3339(ns, &mut s);
        assert_eq!(String::from_utf8(s).unwrap(), Instant(ns).to_rfc3339(), "{ns}");
    }
}

#[test]
fn end_of_a_millisecond() {
    let t = parse_stamp("2022-12-05T16:34:30.417Z", &Zone::UTC).unwrap();
    assert_eq!(t.end().to_rfc3339(), "2022-12-05T16:34:30.417999999Z");
}

/// A date alone covers its whole local day, also when the clocks change that day.
#[test]
fn a_local_day_runs_to_the_next_local_midnight() {
    let berlin = Zone::given("Europe/Berlin".parse().unwrap());
    let autumn = parse_stamp("2022-10-30", &berlin).unwrap();
    assert_eq!(autumn.unit, 25 * 3600 * 1_000_000_000);
    assert_eq!(autumn.end().to_rfc3339(), "2022-10-30T22:59:59.999999999Z");
    let spring = parse_stamp("2023-03-26", &berlin).unwrap();
    assert_eq!(spring.unit, 23 * 3600 * 1_000_000_000);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("24h").unwrap(), 24 * 3600 * 1_000_000_000);
    assert_eq!(parse_duration("1h30m").unwrap(), 5400 * 1_000_000_000);
    assert_eq!(parse_duration("1500ms").unwrap(), 1_500_000_000);
    assert_eq!(parse_duration("90").unwrap(), 90 * 1_000_000_000);
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("").is_err());
}
