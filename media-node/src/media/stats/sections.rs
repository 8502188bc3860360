//! What `handle_info` reads from a PeerConnection's SDPs: the DTLS fingerprint, the header
//! extensions and, per m-section, the direction, codec, retransmission payload type, NACK,
//! msid and SSRCs: the negotiated facts Janus keeps per medium, which the statistics lack.

use crate::media::sdp;

/// One SDP, read.
#[derive(Debug, Default)]
pub(super) struct Sdp {
    /// `a=fingerprint:<hash> <value>` (the first, session- or media-level).
    pub fingerprint: Option<(String, String)>,
    /// `a=extmap:<id> <uri>`, each URI once (its first id), in order.
    pub extmaps: Vec<(u8, String)>,
    pub sections: Vec<Section>,
}

/// One m-section.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Section {
    /// `audio`, `video`, or `data` for `application`.
    pub kind: &'static str,
    pub mindex: usize,
    pub mid: String,
    /// Port 0: rejected.
    pub rejected: bool,
    /// `a=sendrecv` (the default), `a=sendonly`, `a=recvonly` or `a=inactive`, from this SDP's
    /// writer's side.
    pub send: bool,
    pub recv: bool,
    /// The m-line's first payload type, its codec (lower case) and clock rate.
    pub pt: Option<u8>,
    pub codec: Option<String>,
    pub clock_rate: Option<u32>,
    /// The `rtx` payload type whose `apt` is `pt`.
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
        self.sections.iter().find(|s| s.mid == mid)
    }
}

/// Reads `sdp`.
pub(super) fn read(sdp: &str) -> Sdp {
    let mut out = Sdp::default();
    // Per section: the rtpmap names and fmtp `apt`s, resolved when the section ends.
    let mut names: Vec<(u8, String)> = Vec::new();
    let mut apts: Vec<(u8, u8)> = Vec::new();
    let mut nacks = false;
    let finish = |s: &mut Section, names: &mut Vec<(u8, String)>, apts: &mut Vec<(u8, u8)>, nacks: &mut bool| {
        if let Some(pt) = s.pt {
            s.rtx_pt = apts
                .iter()
                .find(|(rtx, apt)| *apt == pt && names.iter().any(|(p, n)| p == rtx && n == "rtx"))
                .map(|(rtx, _)| *rtx);
        }
        s.nack = std::mem::take(nacks);
        names.clear();
        apts.clear();
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if let Some(s) = out.sections.last_mut() {
                finish(s, &mut names, &mut apts, &mut nacks);
            }
            let mut parts = m.split_whitespace();
            let kind = match parts.next() {
                Some("audio") => "audio",
                Some("video") => "video",
                Some("application") => "data",
                _ => "other",
            };
            let rejected = parts.next() == Some("0");
            let pt = parts.nth(1).and_then(|p| p.parse().ok());
            let mindex = out.sections.len();
            out.sections.push(Section {
                kind,
                mindex,
                mid: mindex.to_string(),
                rejected,
                send: true,
                recv: true,
                pt: if kind == "data" { None } else { pt },
                ..Section::default()
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
        let Some(s) = out.sections.last_mut() else { continue };
        match line {
            "a=sendrecv" => (s.send, s.recv) = (true, true),
            "a=sendonly" => (s.send, s.recv) = (true, false),
            "a=recvonly" => (s.send, s.recv) = (false, true),
            "a=inactive" => (s.send, s.recv) = (false, false),
            _ => {}
        }
        if let Some(mid) = line.strip_prefix("a=mid:") {
            s.mid = mid.to_owned();
        } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
            let Some((pt, encoding)) = rtpmap.split_once(' ') else { continue };
            let Ok(pt) = pt.parse::<u8>() else { continue };
            let mut encoding = encoding.split('/');
            let name = encoding.next().unwrap_or_default().to_ascii_lowercase();
            if s.pt == Some(pt) {
                s.codec = Some(name.clone());
                s.clock_rate = encoding.next().and_then(|r| r.parse().ok());
            }
            names.push((pt, name));
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let Some((pt, params)) = fmtp.split_once(' ') else { continue };
            let apt = params.split(';').find_map(|p| p.trim().strip_prefix("apt=")?.parse().ok());
            if let (Ok(pt), Some(apt)) = (pt.parse(), apt) {
                apts.push((pt, apt));
            }
        } else if let Some(fb) = line.strip_prefix("a=rtcp-fb:") {
            nacks |= fb.contains("nack");
        } else if let Some((stream, track)) = sdp::msid(line) {
            s.msid.get_or_insert_with(|| (stream.to_owned(), track.to_owned()));
        } else if let Some(group) = line.strip_prefix("a=ssrc-group:FID ") {
            let mut ssrcs = group.split_whitespace().filter_map(|x| x.parse().ok());
            if let (Some(m), Some(r)) = (ssrcs.next(), ssrcs.next()) {
                s.fid.push((m, r));
            }
        }
    }
    if let Some(s) = out.sections.last_mut() {
        finish(s, &mut names, &mut apts, &mut nacks);
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
        assert_eq!(
            (a.kind, a.mindex, a.send, a.recv, a.pt, a.codec.as_deref(), a.clock_rate, a.rtx_pt, a.nack),
            ("audio", 0, false, true, Some(111), Some("opus"), Some(48000), None, false)
        );
        assert_eq!(a.msid, Some(("s1".into(), "t1".into())));
        let v = sdp.section("v").expect("video");
        assert_eq!(
            (v.kind, v.send, v.recv, v.pt, v.codec.as_deref(), v.rtx_pt, v.nack),
            ("video", true, false, Some(96), Some("vp8"), Some(97), true)
        );
        assert_eq!((v.rtx_of(10), v.rtx_of(11)), (Some(11), None));
        assert_eq!(v.msid, Some(("s2".into(), "t2".into())));
        let d = sdp.section("d").expect("data");
        assert_eq!((d.kind, d.rejected, d.pt), ("data", true, None));
    }

    #[test]
    fn any_feedback_naming_nack_counts_as_janus_reads_it() {
        let video = |fb: &str| format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n{fb}");
        assert!(read(&video("a=rtcp-fb:96 nack pli\r\n")).sections[0].nack);
        assert!(!read(&video("a=rtcp-fb:96 ccm fir\r\n")).sections[0].nack);
    }
}
