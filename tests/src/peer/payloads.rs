//! The marks a test publisher's synthetic payloads carry, and how a receiver reads them back.

/// The spatial and temporal layer a test publisher's VP9 SVC payload says it is (byte 2: the
/// layer indices, TID in bits 7-5, SID in bits 3-1).
pub fn svc_marks(payload: &[u8]) -> Option<(u8, u8)> {
    let l = payload.get(2)?;
    Some(((l >> 1) & 0x07, l >> 5))
}

/// Spatial layer `sid` (0-2) of VP9 SVC frame `frame`, as a browser packetizes it in
/// non-flexible mode, one packet per layer frame: picture id, layer indices (temporal layers
/// 0, 2, 1, 2, ...; U above 0; D above spatial layer 0), TL0PICIDX; a keyframe every 24 frames
/// (P clear on its base layer, which carries the scalability structure: three layers,
/// 320x180 to 1280x720, as Janus looks for); then `fill`.
pub fn vp9_svc_payload(frame: u32, sid: u8, fill: u8) -> Vec<u8> {
    let tid = [0u8, 2, 1, 2][(frame % 4) as usize];
    let key = frame.is_multiple_of(24) && sid == 0;
    // I, L, B, E; P unless a keyframe's base layer, which has V (the scalability structure).
    let d = 0xAC | if key { 0x02 } else { 0x40 };
    let layers = tid << 5 | u8::from(tid > 0) << 4 | sid << 1 | u8::from(sid > 0);
    let mut payload = vec![d, (frame & 0x7f) as u8, layers, (frame / 4) as u8];
    if key {
        // N_S = 3 layers, Y: resolutions follow.
        payload.push(0b0101_0000);
        for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
            payload.extend(w.to_be_bytes());
            payload.extend(h.to_be_bytes());
        }
    }
    payload.extend(std::iter::repeat_n(fill, 300));
    payload
}

/// Which simulcast layer a received VP8 payload came from (the byte a simulcast test publisher
/// marks it with) and its temporal layer.
pub fn simulcast_marks(payload: &[u8]) -> Option<(u8, u8)> {
    let tid = payload.get(2)? >> 6;
    let layer = payload.get(6)?.checked_sub(0xE0).filter(|l| *l < 3)?;
    Some((layer, tid))
}
