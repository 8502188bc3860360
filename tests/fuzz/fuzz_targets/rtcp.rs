//! RTCP from peers as the media node reads it: loss, keyframe requests, bitrate estimates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::media::feedback;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut buf) else { return };
    for p in &packets {
        let _ = feedback::total_lost(p.as_ref(), 0x1234_5678);
        let _ = feedback::is_keyframe_request(p.as_ref());
        let _ = feedback::bitrate_estimate(p.as_ref());
    }
});
