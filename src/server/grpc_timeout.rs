//! The `grpc-timeout` request header: at most 8 ASCII digits and one unit, `H` `M` `S`
//! `m` `u` `n` (gRPC over HTTP/2). A header outside that grammar is ignored, as tonic's
//! own timeout layer ignores it: the call runs without a deadline rather than failing.

use std::time::Duration;

use tokio::time::Instant;

/// Most digits the gRPC spec allows in `grpc-timeout` (`TimeoutValue → {positive integer
/// as ASCII string of at most 8 digits}`).
pub const MAX_DIGITS: usize = 8;

/// The header's value as a duration, or `None` when it is not `1*8DIGIT unit`.
///
/// Eight digits of hours (under 100 million) fit a `u64` of seconds with room to spare, so
/// the only arithmetic is a multiply that cannot overflow; it is checked all the same.
pub fn parse(raw: &[u8]) -> Option<Duration> {
    let (&unit, digits) = raw.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(v.checked_mul(3600)?),
        b'M' => Duration::from_secs(v.checked_mul(60)?),
        b'S' => Duration::from_secs(v),
        b'm' => Duration::from_millis(v),
        b'u' => Duration::from_micros(v),
        b'n' => Duration::from_nanos(v),
        _ => return None,
    })
}

/// The handler's deadline for a call carrying `raw` that arrived at `now`, or `None` when
/// the header is invalid or the deadline lies beyond what an [`Instant`] can hold.
///
/// tonic's transport also enforces the header and answers CANCELLED when it fires first, so
/// the handler's own deadline comes 2% + 1 ms sooner to answer DEADLINE_EXCEEDED.
pub fn deadline(raw: &[u8], now: Instant) -> Option<Instant> {
    let timeout = parse(raw)?;
    let margin = timeout / 50 + Duration::from_millis(1);
    now.checked_add(timeout.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases: [(&str, Duration); 7] = [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("99999999n", Duration::from_nanos(99_999_999)),
            ("0S", Duration::ZERO),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw.as_bytes()), Some(want), "{raw}");
        }
        // Leading zeros are digits like any other.
        assert_eq!(parse(b"00000001S"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_largest_value_of_every_unit_fits() {
        assert_eq!(
            parse(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        for unit in ["H", "M", "S", "m", "u", "n"] {
            let raw = format!("99999999{unit}");
            let d = parse(raw.as_bytes()).unwrap_or_else(|| panic!("{raw}"));
            assert!(deadline(raw.as_bytes(), Instant::now()).is_some(), "{raw}");
            assert!(d > Duration::ZERO, "{raw}");
        }
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for raw in [
            // The header of the panic report: 20 digits.
            "18446744073709551615S",
            // Nine digits.
            "100000000S",
            "",
            "S",
            "5",
            "5s",
            "5x",
            "+5S",
            "-5S",
            " 5S",
            "5 S",
            "5SS",
            "1.5S",
            "٣S",
        ] {
            assert_eq!(parse(raw.as_bytes()), None, "{raw:?}");
            assert_eq!(deadline(raw.as_bytes(), Instant::now()), None, "{raw:?}");
        }
        assert_eq!(parse(b"5\xffS"), None);
        assert_eq!(parse(b"\xff"), None);
    }

    #[test]
    fn the_deadline_comes_a_little_early() {
        let now = Instant::now();
        // 1000 ms less 2% and 1 ms.
        assert_eq!(
            deadline(b"1000m", now),
            Some(now + Duration::from_millis(979))
        );
        // Shorter than the margin: due at once, never before `now`.
        assert_eq!(deadline(b"0n", now), Some(now));
        assert_eq!(deadline(b"1u", now), Some(now));
    }
}
