//! What the forwarder reads from VP8 payloads: keyframes (where a stream may start) and
//! temporal layers (which a simulcast subscriber may leave out).

/// VP8 keyframe check on an RTP payload (Janus's `janus_vp8_is_keyframe`): the payload
/// descriptor, then the frame header whose lowest bit is 0 on keyframes.
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut i = 1;
    if first & 0x80 != 0 {
        // X: extension byte with I, L, T, K flags.
        let Some(&x) = payload.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            let Some(&pid) = payload.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.get(i).is_some_and(|b| b & 0x01 == 0)
}

/// The temporal layer (TID) of a VP8 packet whose payload descriptor carries one (Janus's
/// `janus_vp8_parse_descriptor`); `None` without temporal scalability.
pub fn vp8_temporal_id(payload: &[u8]) -> Option<u8> {
    let first = *payload.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let x = *payload.get(1)?;
    let mut i = 2;
    if x & 0x80 != 0 {
        i += if payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        i += 1;
    }
    if x & 0x20 == 0 {
        return None;
    }
    Some(payload.get(i)? >> 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_temporal_layers_are_read_from_the_payload_descriptor() {
        assert_eq!(vp8_temporal_id(&[0x90, 0x20, 0x80, 0x00]), Some(2));
        // With a 15-bit picture id and TL0PICIDX before the TID byte.
        assert_eq!(vp8_temporal_id(&[0x90, 0xE0, 0x81, 0x23, 0x07, 0x40, 0x00]), Some(1));
        assert_eq!(vp8_temporal_id(&[0x10, 0x00]), None, "no extension: no temporal layers");
        assert_eq!(vp8_temporal_id(&[0x90, 0x80, 0x01]), None, "picture id only");
    }

    #[test]
    fn vp8_keyframes_are_recognised() {
        assert!(vp8_is_keyframe(&[0x10, 0x00, 0x00]));
        assert!(!vp8_is_keyframe(&[0x10, 0x01, 0x00]), "inter frame");
        assert!(!vp8_is_keyframe(&[0x00, 0x00]), "not the start of a partition");
        // Extended descriptor with a 15-bit picture id.
        assert!(vp8_is_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_is_keyframe(&[]));
    }
}
