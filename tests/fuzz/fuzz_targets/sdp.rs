//! What the media node reads from and rewrites in SDP: m-lines, simulcast layers, the
//! announced address.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::media::sdp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for stream in sdp::streams(text) {
        let _ = sdp::simulcast_layers(&stream, None);
        let _ = sdp::simulcast_layers(&stream, Some("lmh"));
    }
    let _ = sdp::announce_address(text, "203.0.113.7");
});
