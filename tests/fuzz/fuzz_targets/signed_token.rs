//! Signed tokens (`<expiry>,janus,<plugin>...:<base64 HMAC-SHA1>`): checking any string.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::shared::janus::signed_token;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    for now in [0, 1_700_000_000, i64::MAX] {
        let _ = signed_token::valid(token, b"signsecret", signed_token::JANUS_REALM, now);
        let _ = signed_token::valid_for(token, b"signsecret", signed_token::JANUS_REALM, "janus.plugin.videoroom", now);
    }
});
