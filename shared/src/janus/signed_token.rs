//! Janus's signed tokens (`token_auth_secret`): `<expiry>,<realm>[,<descriptor>...]:<signature>`,
//! where the signature is the standard base64 of the HMAC-SHA1 of everything before the `:` under
//! the shared secret, and `expiry` is a Unix time in seconds. Checked as Janus's `auth.c` does:
//! a token for the `janus` realm authorizes requests; its descriptors name the plugins it may
//! attach to. Parsing follows Janus's quirks (the expiry is read like `strtoll`, the signature
//! is whatever follows the first `:`), so a token Janus accepts is accepted here and no other.

use crate::secret::same;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The realm a token must name to authorize Janus API requests.
pub const JANUS_REALM: &str = "janus";

/// A token's signed part and signature, split at the first `:`.
struct Parts<'a> {
    data: &'a str,
    signature: &'a str,
}

fn split(token: &str) -> Option<Parts<'_>> {
    let (data, signature) = token.split_once(':')?;
    Some(Parts { data, signature })
}

/// `strtoll(s, NULL, 10)`: leading white space, a sign, then digits up to the first other byte
/// (none: 0), clamped on overflow.
fn strtoll(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = match v.checked_mul(10).and_then(|v| if negative { v.checked_sub(d) } else { v.checked_add(d) }) {
            Some(v) => v,
            None => return if negative { i64::MIN } else { i64::MAX },
        };
    }
    v
}

/// The signature Janus expects for `data` under `secret`.
pub fn signature(data: &str, secret: &[u8]) -> String {
    let mut mac = <Hmac<Sha1>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A signed token for `data` (`<expiry>,<realm>[,<descriptor>...]`): what an application makes.
pub fn sign(data: &str, secret: &[u8]) -> String {
    format!("{data}:{}", signature(data, secret))
}

/// Whether `token` is valid for `realm` at `now` (Unix seconds): Janus's
/// `janus_auth_check_signature`.
pub fn valid(token: &str, secret: &[u8], realm: &str, now: i64) -> bool {
    let Some(p) = split(token) else { return false };
    // Janus splits the data in at most three fields: expiry, realm, and the rest.
    let mut fields = p.data.splitn(3, ',');
    let (Some(expiry), Some(token_realm)) = (fields.next(), fields.next()) else { return false };
    fresh(expiry, now) && token_realm == realm && same(&signature(p.data, secret), p.signature)
}

/// Whether `token` is valid for `realm` at `now` and names `descriptor` (a plugin) among its
/// fields: Janus's `janus_auth_check_signature_contains`.
pub fn valid_for(token: &str, secret: &[u8], realm: &str, descriptor: &str, now: i64) -> bool {
    let Some(p) = split(token) else { return false };
    let fields: Vec<&str> = p.data.split(',').collect();
    if fields.len() < 2 || !fresh(fields[0], now) || fields[1] != realm {
        return false;
    }
    fields[2..].contains(&descriptor) && same(&signature(p.data, secret), p.signature)
}

fn fresh(expiry: &str, now: i64) -> bool {
    let expiry = strtoll(expiry);
    expiry >= 0 && now <= expiry
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"signsecret";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_token_signed_with_the_secret_is_valid_until_it_expires() {
        let t = sign("1800000100,janus,janus.plugin.videoroom", SECRET);
        assert!(valid(&t, SECRET, JANUS_REALM, NOW));
        assert!(valid(&t, SECRET, JANUS_REALM, 1_800_000_100), "valid through its expiry second");
        assert!(!valid(&t, SECRET, JANUS_REALM, 1_800_000_101), "expired");
        assert!(!valid(&t, b"other", JANUS_REALM, NOW), "another secret");
        assert!(!valid(&t, SECRET, "other-realm", NOW));
    }

    #[test]
    fn tampering_with_any_part_invalidates_it() {
        let t = sign("1800000100,janus,janus.plugin.videoroom", SECRET);
        assert!(!valid(&t.replace("1800000100", "1900000100"), SECRET, JANUS_REALM, NOW));
        assert!(!valid(&t.replace("videoroom", "echotest"), SECRET, JANUS_REALM, NOW));
        let mut sig = t.clone();
        let last = sig.pop().unwrap();
        sig.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!valid(&sig, SECRET, JANUS_REALM, NOW));
        assert!(!valid("1800000100,janus", SECRET, JANUS_REALM, NOW), "no signature");
        assert!(!valid("", SECRET, JANUS_REALM, NOW));
        assert!(!valid(":", SECRET, JANUS_REALM, NOW));
    }

    #[test]
    fn descriptors_name_the_plugins_a_token_may_attach_to() {
        let t = sign("1800000100,janus,janus.plugin.videoroom,janus.plugin.echotest", SECRET);
        assert!(valid_for(&t, SECRET, JANUS_REALM, "janus.plugin.videoroom", NOW));
        assert!(valid_for(&t, SECRET, JANUS_REALM, "janus.plugin.echotest", NOW));
        assert!(!valid_for(&t, SECRET, JANUS_REALM, "janus.plugin.sip", NOW));
        let bare = sign("1800000100,janus", SECRET);
        assert!(valid(&bare, SECRET, JANUS_REALM, NOW));
        assert!(!valid_for(&bare, SECRET, JANUS_REALM, "janus.plugin.videoroom", NOW));
    }

    #[test]
    fn the_expiry_is_read_as_janus_reads_it() {
        assert_eq!(strtoll("  42abc"), 42);
        assert_eq!(strtoll("-7"), -7);
        assert_eq!(strtoll("x"), 0);
        assert_eq!(strtoll("99999999999999999999999"), i64::MAX);
        // A negative expiry never validates; an unparsable one is 0, long past.
        assert!(!valid(&sign("-1,janus", SECRET), SECRET, JANUS_REALM, -5));
        assert!(!valid(&sign("soon,janus", SECRET), SECRET, JANUS_REALM, NOW));
    }

    #[test]
    fn the_signature_is_janus_s_hmac_sha1_in_standard_base64() {
        // Computed independently (Python: base64.b64encode(hmac.new(b"key", b"data", sha1).digest())).
        assert_eq!(signature("data", b"key"), "EEFSxb/coHvGM+69RhmfAlXJ9J0=");
    }
}
