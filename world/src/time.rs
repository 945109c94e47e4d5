//! Instants (nanoseconds since 1970-01-01T00:00:00Z) written as text, with the generator's own
//! calendar arithmetic: RFC 3339 as the audit writes it, the `ts` column of Aidbox history rows,
//! and the date column of a Kibana Discover CSV.

/// An instant split into its UTC calendar fields.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Utc {
    fn of(nanos: i64) -> Utc {
        let secs = nanos.div_euclid(1_000_000_000);
        let sub = nanos.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400) as u32;
        // Days since 1970-01-01 → civil date, counting in 400-year eras that start on March 1st
        // (so that the leap day ends a year).
        let from_march_0000 = days + 719_468;
        let era = from_march_0000.div_euclid(146_097);
        let day_of_era = from_march_0000.rem_euclid(146_097);
        let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
        let year = era * 400 + year_of_era + i64::from(month <= 2);
        Utc { year, month, day, hour: of_day / 3600, minute: of_day / 60 % 60, second: of_day % 60, nanos: sub }
    }

    fn date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// RFC 3339 in UTC with `Z`, with 0, 3, 6 or 9 fraction digits: as few as show every non-zero
/// digit (`…:00Z`, `…:00.120Z`, `…:00.000120Z`, `…:00.000000120Z`).
pub(crate) fn rfc3339(nanos: i64) -> String {
    let t = Utc::of(nanos);
    let fraction = match t.nanos {
        0 => String::new(),
        n if n % 1_000_000 == 0 => format!(".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => format!(".{:06}", n / 1_000),
        n => format!(".{n:09}"),
    };
    format!("{}{fraction}Z", t.date_time())
}

/// Aidbox's history `ts`: microseconds always, and `+00` (`2023-01-05T10:00:00.000000+00`).
pub(crate) fn aidbox_ts(nanos: i64) -> String {
    let t = Utc::of(nanos);
    format!("{}.{:06}+00", t.date_time(), t.nanos / 1_000)
}

/// Kibana Discover's date, milliseconds always, no zone (`Jan 5, 2023 @ 10:00:00.000`).
pub(crate) fn kibana(nanos: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = Utc::of(nanos);
    format!(
        "{} {}, {:04} @ {:02}:{:02}:{:02}.{:03}",
        MONTHS[t.month as usize - 1],
        t.day,
        t.year,
        t.hour,
        t.minute,
        t.second,
        t.nanos / 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat};

    #[test]
    fn same_text_as_a_date_library() {
        let mut cases: Vec<i64> = vec![
            0,
            -1,
            1,
            999_999_999,
            1_000_000_000,
            120_000_000,
            120_000,
            120,
            i64::MIN,
            i64::MAX,
            951_782_400 * 1_000_000_000,           // 2000-02-29
            4_107_542_400 * 1_000_000_000 - 1,     // the last nanosecond of 2100-02-28
            1_672_531_200 * 1_000_000_000 + 7_000, // the world's epoch, plus 7 µs
        ];
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x as i64;
            // Whole seconds, milliseconds and microseconds too, not only nanoseconds.
            cases.extend([n, n - n % 1_000, n - n % 1_000_000, n - n % 1_000_000_000]);
        }
        for n in cases {
            let dt = DateTime::from_timestamp_nanos(n);
            assert_eq!(rfc3339(n), dt.to_rfc3339_opts(SecondsFormat::AutoSi, true), "{n}");
            assert_eq!(aidbox_ts(n), dt.format("%Y-%m-%dT%H:%M:%S%.6f+00").to_string(), "{n}");
            assert_eq!(kibana(n), dt.format("%b %-d, %Y @ %H:%M:%S%.3f").to_string(), "{n}");
        }
    }
}
