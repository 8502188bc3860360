//! What `handle_info` reads from a PeerConnection's SDPs beyond each stream's kind, index, mid
//! and codec ([`sdp::streams`]): the DTLS fingerprint, the header extensions and, per
//! m-section, the direction, retransmission payload type, NACK, msid and SSRC groups: the
//! negotiated facts Janus keeps per medium, which the statistics lack.

use crate::media::sdp::{self, StreamInfo};

/// One SDP, read.
#[derive(Debug, Default)]
pub(super) struct Sdp {
    /// `a=fingerprint:<hash> <value>` (the first, session- or media-level).
    pub fingerprint: Option<(String, String)>,
    /// `a=extmap:<id> <uri>`, each URI once (its first id), in order.
    pub extmaps: Vec<(u8, String)>,
    /// The m-sections that were not rejected, in order.
    pub sections: Vec<Section>,
}

/// One m-section.
#[derive(Debug)]
pub(super) struct Section {
    /// Its kind, index, mid and negotiated codec.
    pub stream: StreamInfo,
    /// `a=sendrecv` (the default), `a=sendonly`, `a=recvonly` or `a=inactive`, from this SDP's
    /// writer's side.
    pub send: bool,
    pub recv: bool,
    /// The `rtx` payload type whose `apt` is the codec's.
    pub rtx_pt: Option<u8>,
    /// An `a=rtcp-fb` line with `nack` in it, for any payload type (Janus's test).
    pub nack: bool,
    /// `a=msid:<stream> <track>` (or an `a=ssrc:<n> msid:` line's).
    pub msid: Option<(String, String)>,
    /// `a=ssrc-group:FID <media> <rtx>` pairs.
    pub fid: Vec<(u32, u32)>,
}

impl Section {
    /// The retransmission SSRC paired with `ssrc` (`FID`).
    pub fn rtx_of(&self, ssrc: u32) -> Option<u32> {
        self.fid.iter().find(|(m, _)| *m == ssrc).map(|(_, r)| *r)
    }
}

impl Sdp {
    pub fn section(&self, mid: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.stream.mid == mid)
    }
}

/// What an m-section says beyond its [`StreamInfo`], gathered line by line.
struct Lines {
    send: bool,
    recv: bool,
    /// `rtx` payload types, and each fmtp's `(pt, apt)`.
    rtx: Vec<u8>,
    apts: Vec<(u8, u8)>,
    nack: bool,
    msid: Option<(String, String)>,
    fid: Vec<(u32, u32)>,
}

/// Reads `text`.
pub(super) fn read(text: &str) -> Sdp {
    let mut out = Sdp::default();
    // One per m-line, indexed as the m-lines are (`StreamInfo::mindex`).
    let mut lines: Vec<Lines> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("m=") {
            let (send, recv) = (true, true);
            lines.push(Lines {
                send,
                recv,
                rtx: Vec::new(),
                apts: Vec::new(),
                nack: false,
                msid: None,
                fid: Vec::new(),
            });
            continue;
        }
        if let Some(f) = line.strip_prefix("a=fingerprint:") {
            if out.fingerprint.is_none() {
                if let Some((hash, value)) = f.split_once(' ') {
                    out.fingerprint = Some((hash.to_owned(), value.trim().to_owned()));
                }
            }
            continue;
        }
        if let Some((id, uri)) = sdp::extmap(line) {
            if !out.extmaps.iter().any(|(_, u)| u == uri) {
                out.extmaps.push((id, uri.to_owned()));
            }
            continue;
        }
        let Some(s) = lines.last_mut() else { continue };
        match line {
            "a=sendrecv" => (s.send, s.recv) = (true, true),
            "a=sendonly" => (s.send, s.recv) = (true, false),
            "a=recvonly" => (s.send, s.recv) = (false, true),
            "a=inactive" => (s.send, s.recv) = (false, false),
            _ => {}
        }
        if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
            let Some((pt, encoding)) = rtpmap.split_once(' ') else { continue };
            if encoding.to_ascii_lowercase().starts_with("rtx/") {
                s.rtx.extend(pt.parse::<u8>().ok());
            }
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let Some((pt, params)) = fmtp.split_once(' ') else { continue };
            let apt = params.split(';').find_map(|p| p.trim().strip_prefix("apt=")?.parse().ok());
            if let (Ok(pt), Some(apt)) = (pt.parse(), apt) {
                s.apts.push((pt, apt));
            }
        } else if let Some(fb) = line.strip_prefix("a=rtcp-fb:") {
            s.nack |= fb.contains("nack");
        } else if let Some((stream, track)) = sdp::msid(line) {
            s.msid.get_or_insert_with(|| (stream.to_owned(), track.to_owned()));
        } else if let Some(group) = line.strip_prefix("a=ssrc-group:FID ") {
            let mut ssrcs = group.split_whitespace().filter_map(|x| x.parse().ok());
            if let (Some(m), Some(r)) = (ssrcs.next(), ssrcs.next()) {
                s.fid.push((m, r));
            }
        }
    }
    for stream in sdp::streams(text) {
        let Some(l) = lines.get_mut(stream.mindex) else { continue };
        let rtx_pt = stream
            .pt
            .and_then(|pt| l.apts.iter().find(|(rtx, apt)| *apt == pt && l.rtx.contains(rtx)).map(|(rtx, _)| *rtx));
        out.sections.push(Section {
            stream,
            send: l.send,
            recv: l.recv,
            rtx_pt,
            nack: l.nack,
            msid: l.msid.take(),
            fid: std::mem::take(&mut l.fid),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=fingerprint:sha-256 AB:CD\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=recvonly\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=rtpmap:111 opus/48000/2\r\n\
a=msid:s1 t1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:v\r\na=sendonly\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:4/sendonly http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=ssrc-group:FID 10 11\r\na=ssrc:10 msid:s2 t2\r\n\
m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\n";

    #[test]
    fn an_answer_is_read_section_by_section() {
        let sdp = read(ANSWER);
        assert_eq!(sdp.fingerprint, Some(("sha-256".into(), "AB:CD".into())));
        let uris: Vec<_> = sdp.extmaps.iter().map(|(id, u)| (*id, u.as_str())).collect();
        assert_eq!(
            uris,
            [
                (1, "urn:ietf:params:rtp-hdrext:sdes:mid"),
                (4, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01")
            ]
        );
        let a = sdp.section("a").expect("audio");
        let i = &a.stream;
        assert_eq!(
            (i.kind.as_str(), i.mindex, a.send, a.recv, i.pt, i.codec.as_deref(), i.clock_rate, a.rtx_pt, a.nack),
            ("audio", 0, false, true, Some(111), Some("opus"), Some(48000), None, false)
        );
        assert_eq!(a.msid, Some(("s1".into(), "t1".into())));
        let v = sdp.section("v").expect("video");
        let i = &v.stream;
        assert_eq!(
            (i.kind.as_str(), v.send, v.recv, i.pt, i.codec.as_deref(), v.rtx_pt, v.nack),
            ("video", true, false, Some(96), Some("vp8"), Some(97), true)
        );
        assert_eq!((v.rtx_of(10), v.rtx_of(11)), (Some(11), None));
        assert_eq!(v.msid, Some(("s2".into(), "t2".into())));
        // The data m-section was rejected (port 0): not a section of the connection.
        assert!(sdp.section("d").is_none());
        assert_eq!(sdp.sections.len(), 2);
    }

    #[test]
    fn any_feedback_naming_nack_counts_as_janus_reads_it() {
        let video = |fb: &str| format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n{fb}");
        assert!(read(&video("a=rtcp-fb:96 nack pli\r\n")).sections[0].nack);
        assert!(!read(&video("a=rtcp-fb:96 ccm fir\r\n")).sections[0].nack);
    }
}
