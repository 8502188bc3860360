//! What a room announces about a PeerConnection, read from its SDP: one entry per m-line with
//! its type, index, mid and negotiated codec (the first payload type of the m-line).

use shared::media::{ExtensionIds, MediaKind, Mid, AUDIO_LEVEL_URI};

/// One negotiated media stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub kind: MediaKind,
    pub mindex: usize,
    pub mid: Mid,
    /// Lower-case codec name (`opus`, `vp8`, ...); `None` for data or a rejected m-line.
    pub codec: Option<String>,
    /// The payload type of that codec, and its RTP clock rate (`rtpmap`).
    pub pt: Option<u8>,
    pub clock_rate: Option<u32>,
    /// The rids of a simulcast stream (`a=simulcast`), as listed; empty without simulcast.
    pub rids: Vec<String>,
    /// The sender's track id (`a=msid:<stream> <track>`, or the `msid` of an `a=ssrc` line):
    /// how an incoming track is matched to its m-line.
    pub track_id: Option<String>,
    /// The ids of the relayed header extensions the m-line lists (audio level on audio; video
    /// orientation and playout delay on video).
    pub extensions: ExtensionIds,
    /// What an audio m-line's `fmtp` lines ask of Opus.
    pub opus: OpusFlags,
    /// Janus's `description` of the stream (a remote publisher's; none from an SDP).
    pub description: Option<String>,
    /// Listed but carrying nothing (a remote publisher's `disabled` stream).
    pub disabled: bool,
    /// VP9 SVC: every layer in this one stream (the room's `video_svc`, a remote publisher's
    /// `svc`); never read from an SDP.
    pub svc: bool,
    /// Every media codec the m-line lists (lower case, in order; no `rtx`, `red`, FEC).
    pub codecs: Vec<String>,
    /// The negotiated codec's `fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

/// Opus options an `fmtp` line asks for (`stereo=1`, `useinbandfec=1`, `usedtx=1`), which
/// Janus reports per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpusFlags {
    pub stereo: bool,
    pub fec: bool,
    pub dtx: bool,
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
            // An m-line of another type (`text`, ...) still counts for the indexes.
            let kind = parts.next().and_then(MediaKind::parse);
            let Some(kind) = kind else {
                mindex += 1;
                continue;
            };
            let rejected = parts.next() == Some("0");
            let first_pt = parts.nth(1).map(str::to_owned);
            let info = StreamInfo {
                kind,
                mindex,
                mid: Mid::from(mindex.to_string()),
                codec: None,
                pt: None,
                clock_rate: None,
                rids: Vec::new(),
                track_id: None,
                extensions: ExtensionIds::default(),
                opus: OpusFlags::default(),
                description: None,
                disabled: false,
                svc: false,
                codecs: Vec::new(),
                fmtp: None,
            };
            current = Some((info, first_pt, rejected));
            mindex += 1;
        } else if let Some((info, first_pt, _)) = current.as_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                info.mid = Mid::new(mid);
            } else if let Some(track) = msid_track(line) {
                if info.track_id.is_none() {
                    info.track_id = Some(track.to_owned());
                }
            } else if let Some((id, uri)) = extmap(line) {
                if (info.kind == MediaKind::Audio) == (uri == AUDIO_LEVEL_URI) {
                    info.extensions.set(uri, id);
                }
            } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
                if let Some((pt, params)) = fmtp.split_once(' ') {
                    if info.pt.is_some_and(|p| p.to_string() == pt) {
                        info.fmtp = Some(params.to_owned());
                    }
                }
                // Any fmtp line of the m-line counts, as Janus reads them.
                info.opus.stereo |= fmtp.contains("stereo=1");
                info.opus.fec |= fmtp.contains("useinbandfec=1");
                info.opus.dtx |= fmtp.contains("usedtx=1");
            } else if let Some(list) = line.strip_prefix("a=simulcast:") {
                info.rids = simulcast_rids(list);
            } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                let mut it = rtpmap.splitn(2, ' ');
                let pt = it.next().unwrap_or_default();
                let name =
                    it.clone().next().unwrap_or_default().split('/').next().unwrap_or_default().to_ascii_lowercase();
                if !matches!(name.as_str(), "rtx" | "red" | "ulpfec" | "flexfec-03" | "")
                    && !info.codecs.contains(&name)
                {
                    info.codecs.push(name);
                }
                if info.codec.is_none() && first_pt.as_deref() == Some(pt) {
                    let mut encoding = it.next().unwrap_or_default().split('/');
                    info.codec = encoding.next().map(str::to_ascii_lowercase);
                    info.clock_rate = encoding.next().and_then(|r| r.parse().ok());
                    info.pt = pt.parse().ok();
                }
            }
        }
    }
    flush(current, &mut out);
    out
}

/// The track id of an `a=msid:<stream> <track>` line or an `a=ssrc:<n> msid:<stream> <track>`
/// line.
fn msid_track(line: &str) -> Option<&str> {
    msid(line).map(|(_, track)| track)
}

/// The stream and track ids of an `a=msid:<stream> <track>` line or an `a=ssrc:<n>
/// msid:<stream> <track>` line.
pub fn msid(line: &str) -> Option<(&str, &str)> {
    let msid = match line.strip_prefix("a=msid:") {
        Some(v) => v,
        None => line.strip_prefix("a=ssrc:")?.split_once(" msid:")?.1,
    };
    let mut ids = msid.split_whitespace();
    Some((ids.next()?, ids.next()?))
}

/// The id and URI of an `a=extmap:<id>[/<direction>] <uri> ...` line.
pub fn extmap(line: &str) -> Option<(u8, &str)> {
    let mut parts = line.strip_prefix("a=extmap:")?.split_whitespace();
    let id = parts.next()?.split('/').next()?.parse().ok()?;
    Some((id, parts.next()?))
}

/// The rids of an `a=simulcast:` value (`send h;m;l`, `recv ~h;m,l`), in order: the first
/// alternative of each, without the paused marker.
fn simulcast_rids(list: &str) -> Vec<String> {
    let mut parts = list.split_whitespace();
    let _direction = parts.next();
    parts
        .next()
        .unwrap_or_default()
        .split(';')
        .filter_map(|alts| alts.split(',').next())
        .map(|rid| rid.trim_start_matches('~').to_owned())
        .filter(|rid| !rid.is_empty())
        .collect()
}

/// A simulcast stream's rids, lowest quality first. Browsers list them highest first
/// (`h;m;l`, Janus's default `rid_order` `hml`); with `lmh` the order is the reverse.
pub fn simulcast_layers(stream: &StreamInfo, rid_order: Option<&str>) -> Vec<String> {
    let mut rids = stream.rids.clone();
    if !rid_order.is_some_and(|o| o.eq_ignore_ascii_case("lmh")) {
        rids.reverse();
    }
    rids.truncate(3);
    rids
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

/// Each line of `sdp` (its line ending kept) with the index of the m-section it is in (none
/// before the first `m=` line).
pub fn by_section(sdp: &str) -> impl Iterator<Item = (Option<usize>, &str)> {
    sdp.split_inclusive('\n').scan(None, |mindex: &mut Option<usize>, line| {
        if line.starts_with("m=") {
            *mindex = Some(mindex.map_or(0, |i| i + 1));
        }
        Some((*mindex, line))
    })
}

/// `sdp` with the `msid` of each m-section `renamed(mindex)` gives (its `a=msid` line and its
/// `a=ssrc ... msid:` lines) naming the stream and track given instead.
pub fn rename_msids(sdp: &str, renamed: impl Fn(usize) -> Option<(String, String)>) -> String {
    let mut out = String::with_capacity(sdp.len());
    for (mindex, line) in by_section(sdp) {
        let named = mindex.and_then(&renamed).zip(msid(line.trim_end()));
        match named {
            Some(((stream, track), (old_stream, old_track))) => {
                out.push_str(&line.replacen(&format!("{old_stream} {old_track}"), &format!("{stream} {track}"), 1))
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_m_sections_msid_lines_name_the_stream_and_track_given() {
        let sdp = "v=0\r\nm=audio 9 X 111\r\na=msid:janus janus0\r\na=ssrc:1 msid:janus janus0\r\n\
                   m=video 9 X 96\r\na=msid:101 1\r\na=ssrc:2 cname:x\r\na=ssrc:2 msid:101 1\r\n";
        let renamed = |mindex| (mindex == 1).then(|| ("202".to_owned(), "1".to_owned()));
        assert_eq!(
            super::rename_msids(sdp, renamed),
            "v=0\r\nm=audio 9 X 111\r\na=msid:janus janus0\r\na=ssrc:1 msid:janus janus0\r\n\
             m=video 9 X 96\r\na=msid:202 1\r\na=ssrc:2 cname:x\r\na=ssrc:2 msid:202 1\r\n"
        );
    }

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
            m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=msid:s t0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:v1\r\na=ssrc:5 msid:s screen\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:2\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        let s = streams(sdp);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(
            s[0],
            StreamInfo {
                kind: MediaKind::Audio,
                mindex: 0,
                mid: "0".into(),
                codec: Some("opus".into()),
                pt: Some(111),
                clock_rate: Some(48_000),
                rids: vec![],
                track_id: Some("t0".into()),
                extensions: ExtensionIds { audio_level: Some(1), ..Default::default() },
                opus: OpusFlags { stereo: false, fec: true, dtx: false },
                description: None,
                disabled: false,
                svc: false,
                codecs: vec!["pcmu".into(), "opus".into()],
                fmtp: Some("minptime=10;useinbandfec=1".into()),
            }
        );
        assert_eq!(s[1].codec.as_deref(), Some("vp8"));
        assert_eq!(s[1].mid, "v1");
        assert_eq!(s[1].track_id.as_deref(), Some("screen"));
        assert_eq!((s[2].kind, s[2].mindex, s[2].codec.as_deref()), (MediaKind::Data, 3, None));
    }

    #[test]
    fn simulcast_layers_are_read_lowest_first_in_either_rid_order() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:h send\r\na=rid:m send\r\na=rid:l send\r\n\
            a=simulcast:send h;~m;l,x\r\n";
        let video = &streams(offer)[1];
        assert_eq!(video.rids, ["h", "m", "l"]);
        assert_eq!(simulcast_layers(video, None), ["l", "m", "h"]);
        assert_eq!(simulcast_layers(video, Some("lmh")), ["h", "m", "l"]);
        assert!(simulcast_layers(&streams("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")[0], None).is_empty());
    }
}
