//! Redis's replies (RESP2) read off a byte buffer into redis-rs's `Value`, the same values
//! redis-rs's own reader makes.
//!
//! Why not redis-rs's reader: it is a `combine` parser that keeps error context for every byte
//! and resumes partial input through boxed state; in a cluster's gateway it was 14 % of the
//! process's CPU (`BENCHMARKS.md`), more than the system calls that carry the replies. This one
//! walks the buffer once per attempt: a reply that is not all there yet is read again from its
//! start when more bytes arrive, which costs nothing measurable for replies a read carries whole
//! and stays linear enough for the rare large one (a read brings up to 64 KiB).
//!
//! Errors (`-`) are handed to redis-rs's reader, so that their kinds (`NOSCRIPT`, `WRONGTYPE`,
//! ...) are exactly what redis-rs makes of them; they are rare.

use ::redis::Value;

/// How deep arrays may nest (Lua scripts return at most a few levels).
const MAX_DEPTH: usize = 32;
/// The most elements one array may announce (a larger one is a corrupt stream, not a reply).
const MAX_ELEMENTS: i64 = 1 << 24;
/// The longest bulk string (Redis's own limit, `proto-max-bulk-len`'s default).
const MAX_BULK: i64 = 512 << 20;

/// The stream holds something that is not a RESP2 reply: the connection cannot be trusted
/// any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed Redis reply: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// The reply at the front of `buf` and its length in bytes, or `None` while it is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, Malformed> {
    let mut at = 0;
    match value(buf, &mut at, 0)? {
        Some(v) => Ok(Some((v, at))),
        None => Ok(None),
    }
}

/// The line starting at `*at` (without its CRLF), moving `*at` past it.
fn line<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = &buf[*at..];
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *at += end + 2;
    Some(&rest[..end])
}

fn integer(line: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(line).ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or(Malformed("expected an integer"))
}

/// A bulk string's or an array's length line: `None` for a negative one (nil), refused as
/// `too_long` past `max`.
fn length(line: &[u8], max: i64, too_long: &'static str) -> Result<Option<usize>, Malformed> {
    match integer(line)? {
        n if n < 0 => Ok(None),
        n if n > max => Err(Malformed(too_long)),
        n => Ok(Some(n as usize)),
    }
}

fn value(buf: &[u8], at: &mut usize, depth: usize) -> Result<Option<Value>, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed("arrays nested too deep"));
    }
    let start = *at;
    let Some(&kind) = buf.get(start) else { return Ok(None) };
    *at += 1;
    let Some(l) = line(buf, at) else { return Ok(None) };
    Ok(Some(match kind {
        b'+' => match std::str::from_utf8(l) {
            Ok("OK") => Value::Okay,
            Ok(s) => Value::SimpleString(s.to_owned()),
            Err(_) => return Err(Malformed("a status that is not UTF-8")),
        },
        b':' => Value::Int(integer(l)?),
        b'-' => match ::redis::parse_redis_value(&buf[start..*at]) {
            Ok(v @ Value::ServerError(_)) => v,
            _ => return Err(Malformed("an error line redis-rs does not read")),
        },
        b'$' => match length(l, MAX_BULK, "a bulk string longer than Redis allows")? {
            None => Value::Nil,
            Some(n) => {
                if buf.len() < *at + n + 2 {
                    return Ok(None);
                }
                if &buf[*at + n..*at + n + 2] != b"\r\n" {
                    return Err(Malformed("a bulk string not ended by CRLF"));
                }
                let v = Value::BulkString(buf[*at..*at + n].to_vec());
                *at += n + 2;
                v
            }
        },
        b'*' => match length(l, MAX_ELEMENTS, "an array longer than any reply")? {
            None => Value::Nil,
            Some(n) => {
                // Capacity from what the buffer can hold (each element takes 3 bytes at least),
                // so a corrupt count cannot make a huge allocation.
                let mut items = Vec::with_capacity(n.min((buf.len() - *at) / 3 + 1));
                for _ in 0..n {
                    match value(buf, at, depth + 1)? {
                        Some(v) => items.push(v),
                        None => return Ok(None),
                    }
                }
                Value::Array(items)
            }
        },
        _ => return Err(Malformed("an unknown reply type (RESP2 only)")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply redis-rs reads, read the same, whole and in every cut.
    #[test]
    fn replies_read_as_redis_rs_reads_them_and_wait_for_their_end() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b":0\r\n",
            b":-42\r\n",
            b":9223372036854775807\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$5\r\nhello\r\n",
            b"$4\r\na\r\nb\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n",
            b"*2\r\n*2\r\n+a\r\n:2\r\n*0\r\n",
            b"-ERR unknown command\r\n",
            b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            b"*2\r\n-ERR inner\r\n:1\r\n",
        ];
        for &case in cases {
            let theirs = ::redis::parse_redis_value(case).unwrap();
            let (ours, n) =
                parse(case).unwrap().unwrap_or_else(|| panic!("{:?} incomplete", String::from_utf8_lossy(case)));
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(case));
            assert_eq!(n, case.len());
            for cut in 0..case.len() {
                assert_eq!(parse(&case[..cut]), Ok(None), "{:?} cut at {cut}", String::from_utf8_lossy(case));
            }
            // Followed by the next reply: only the first is taken.
            let mut two = case.to_vec();
            two.extend_from_slice(b":7\r\n");
            assert_eq!(parse(&two).unwrap().unwrap().1, case.len());
        }
    }

    /// Replies with bytes changed, cut or added at random: never a panic, and whatever
    /// redis-rs reads is read the same.
    #[test]
    fn changed_replies_read_as_redis_rs_reads_them_or_are_refused() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let seeds: &[&[u8]] = &[
            b"*3\r\n$7\r\nmessage\r\n$4\r\npt:x\r\n$5\r\nhello\r\n",
            b"*2\r\n:12\r\n*2\r\n$-1\r\n+OK\r\n",
            b"$10\r\n0123456789\r\n",
            b"-ERR x\r\n",
        ];
        let alphabet = b"*$:+-\r\n0123456789-ab";
        for _ in 0..20_000 {
            let mut case = seeds[rng.random_range(0..seeds.len())].to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=case.len());
                match rng.random_range(0..3) {
                    0 if at < case.len() => case[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 if at < case.len() => {
                        case.remove(at);
                    }
                    _ => case.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            let ours = parse(&case);
            if let Ok(theirs) = ::redis::parse_redis_value(&case) {
                match ours {
                    Ok(Some((v, _))) => assert_eq!(v, theirs, "{:?}", String::from_utf8_lossy(&case)),
                    other => panic!("{:?}: redis-rs reads {theirs:?}, this {other:?}", String::from_utf8_lossy(&case)),
                }
            }
        }
    }

    #[test]
    fn what_is_not_a_reply_is_refused() {
        for bad in [
            &b"?x\r\n"[..],
            b":abc\r\n",
            b"$3\r\nabcd\r\n",
            b"$999999999999\r\n",
            b"*99999999999\r\n",
            b"%1\r\n+a\r\n+b\r\n",
            b"+\xff\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
    }
}
