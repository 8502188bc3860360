//! What a room announces about a PeerConnection, read from its SDP: one entry per m-line with
//! its type, index, mid and negotiated codec (the first payload type of the m-line).

/// One negotiated media stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// `audio`, `video` or `data`.
    pub kind: String,
    pub mindex: usize,
    pub mid: String,
    /// Lower-case codec name (`opus`, `vp8`, ...); `None` for data or a rejected m-line.
    pub codec: Option<String>,
}

/// Reads the m-lines of `sdp`. Rejected m-lines (port 0) are skipped, as Janus does.
pub fn streams(sdp: &str) -> Vec<StreamInfo> {
    let mut out: Vec<StreamInfo> = Vec::new();
    let mut current: Option<(StreamInfo, Option<String>, bool)> = None;
    let flush = |cur: Option<(StreamInfo, Option<String>, bool)>, out: &mut Vec<StreamInfo>| {
        if let Some((info, _, rejected)) = cur {
            if !rejected {
                out.push(info);
            }
        }
    };
    let mut mindex = 0;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            flush(current.take(), &mut out);
            let mut parts = m.split_whitespace();
            let kind = match parts.next() {
                Some("application") => "data".to_owned(),
                Some(k) => k.to_owned(),
                None => continue,
            };
            let rejected = parts.next() == Some("0");
            let first_pt = parts.nth(1).map(str::to_owned);
            current = Some((StreamInfo { kind, mindex, mid: mindex.to_string(), codec: None }, first_pt, rejected));
            mindex += 1;
        } else if let Some((info, first_pt, _)) = current.as_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                info.mid = mid.to_owned();
            } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                let mut it = rtpmap.splitn(2, ' ');
                let pt = it.next().unwrap_or_default();
                if info.codec.is_none() && first_pt.as_deref() == Some(pt) {
                    info.codec = it.next().and_then(|c| c.split('/').next()).map(str::to_ascii_lowercase);
                }
            }
        }
    }
    flush(current, &mut out);
    out
}

/// `sdp` with every host candidate announcing `public_ip` instead of the bound address, as
/// Janus's `nat_1_1_mapping` does: behind a 1:1 NAT, peers reach the public address and the
/// NAT delivers to the same port here.
pub fn announce_address(sdp: &str, public_ip: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        match line.strip_prefix("a=candidate:") {
            Some(rest) if rest.contains(" typ host") => {
                // foundation component transport priority ADDRESS port typ host ...
                let mut fields: Vec<&str> = rest.split(' ').collect();
                if fields.len() > 5 {
                    fields[4] = public_ip;
                }
                out.push_str("a=candidate:");
                out.push_str(&fields.join(" "));
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_candidates_announce_the_public_address_and_nothing_else_changes() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 42000 typ host\r\n\
                   a=candidate:2 1 udp 1694498815 1.2.3.4 42000 typ srflx raddr 10.0.0.5 rport 42000\r\n\
                   c=IN IP4 10.0.0.5\r\n";
        let out = super::announce_address(sdp, "203.0.113.7");
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.7 42000 typ host\r\n\
             a=candidate:2 1 udp 1694498815 1.2.3.4 42000 typ srflx raddr 10.0.0.5 rport 42000\r\n\
             c=IN IP4 10.0.0.5\r\n"
        );
    }

    use super::*;

    #[test]
    fn reads_mlines_mids_and_first_codecs() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:v1\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:2\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        let s = streams(sdp);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0], StreamInfo { kind: "audio".into(), mindex: 0, mid: "0".into(), codec: Some("opus".into()) });
        assert_eq!(s[1], StreamInfo { kind: "video".into(), mindex: 1, mid: "v1".into(), codec: Some("vp8".into()) });
        assert_eq!(s[2], StreamInfo { kind: "data".into(), mindex: 3, mid: "3".into(), codec: None });
    }
}
