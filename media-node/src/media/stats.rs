//! A PeerConnection as the Admin API's `handle_info` shows it: Janus's `webrtc` object (`ice`,
//! `dtls`, `extensions`, `bwe` and per mid `media`) and its `sdps`, with Janus's field names and
//! values, built when asked from the ICE transport, the W3C statistics (`getStats`) and what
//! the SDPs negotiated ([`sections`]); nothing is kept per packet for it.
//!
//! Janus's fields Portunus has no source for are left out rather than invented: the ICE and
//! DTLS timestamps (`gathered`, `connected`, `handshake-started`), DTLS `retransmissions`,
//! the RTCP link-quality scores, `bytes_lastsec`, and retransmissions received.

mod sections;

use crate::media::sdp::StreamInfo;
use crate::media::send_history;
use rtc::peer_connection::sdp::RTCSdpType;
use rtc::peer_connection::transport::{RTCDtlsRole, RTCDtlsTransportState, RTCIceCandidate};
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};
use rtc::statistics::stats::rtp_stream::received::inbound::RTCInboundRtpStreamStats;
use rtc::statistics::StatsSelector;
use sections::{Sdp, Section};
use serde_json::{json, Map, Value};
use shared::media::MediaKind;
use std::sync::Arc;
use webrtc::peer_connection::transport::IceTransport;
use webrtc::peer_connection::PeerConnection;

/// The header extensions Janus lists under `extensions`, in its order.
const JANUS_EXTENSIONS: [&str; 10] = [
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    TWCC_URI,
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00",
];
const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// What the ICE transport knows: candidates as SDP lines and the selected pair.
#[derive(Default)]
struct Ice {
    local: Vec<String>,
    remote: Vec<String>,
    selected: Option<String>,
}

/// `(webrtc, sdps)` for `handle_info`.
/// `floor`: the shortest retransmission window (`min_nack_queue`), for `nack-queue-ms`.
pub async fn summary(pc: &Arc<dyn PeerConnection>, floor: std::time::Duration) -> (Value, Value) {
    let report = pc.get_stats(std::time::Instant::now(), StatsSelector::None).await;
    let mut sdps = Map::new();
    sdps.insert("profile".into(), "UDP/TLS/RTP/SAVPF".into());
    let local = pc.local_description().await;
    let remote = pc.remote_description().await;
    // The answer holds what was agreed (codecs, NACK, extensions); the local SDP our side's
    // direction, SSRCs and fingerprint.
    let local_is_answer = local.as_ref().is_some_and(|d| d.sdp_type == RTCSdpType::Answer);
    let (local, remote) = (local.map(|d| d.sdp), remote.map(|d| d.sdp));
    let local_sdp = sections::read(local.as_deref().unwrap_or_default());
    let remote_sdp = sections::read(remote.as_deref().unwrap_or_default());
    let ice = match ice_transport(pc).await {
        Some(t) => ice(&*t).await,
        None => Ice::default(),
    };
    let negotiated = if local_is_answer || remote.is_none() { &local_sdp } else { &remote_sdp };
    let webrtc = webrtc(&report, &ice, (&local_sdp, &remote_sdp, negotiated), floor);
    if let Some(l) = local {
        sdps.insert("local".into(), l.into());
    }
    if let Some(r) = remote {
        sdps.insert("remote".into(), r.into());
    }
    (webrtc, Value::Object(sdps))
}

/// The PeerConnection's ICE transport (bundled: every transceiver's and the SCTP's is the same).
async fn ice_transport(pc: &Arc<dyn PeerConnection>) -> Option<Arc<dyn IceTransport>> {
    for t in pc.get_transceivers().await {
        if let Ok(Some(s)) = t.sender().await {
            if let Ok(Some(d)) = s.transport().await {
                return Some(d.ice_transport());
            }
        }
        if let Ok(Some(r)) = t.receiver().await {
            if let Ok(Some(d)) = r.transport().await {
                return Some(d.ice_transport());
            }
        }
    }
    Some(pc.sctp().await?.transport().ice_transport())
}

async fn ice(t: &dyn IceTransport) -> Ice {
    let lines = |cs: Vec<RTCIceCandidate>| -> Vec<String> {
        cs.iter()
            .filter_map(|c| c.to_json().ok())
            .map(|i| i.candidate.strip_prefix("candidate:").unwrap_or(&i.candidate).to_owned())
            .collect()
    };
    let end = |c: &RTCIceCandidate| format!("{}:{} [{},{}]", c.address, c.port, c.typ, c.protocol);
    Ice {
        local: lines(t.get_local_candidates().await.unwrap_or_default()),
        remote: lines(t.get_remote_candidates().await.unwrap_or_default()),
        selected: t
            .get_selected_candidate_pair()
            .await
            .ok()
            .flatten()
            .map(|p| format!("{} <-> {}", end(p.local()), end(p.remote()))),
    }
}

/// Janus's ICE state names for the W3C ones.
fn ice_state(w3c: &str) -> &'static str {
    match w3c {
        "new" | "checking" => "connecting",
        "connected" | "completed" => "ready",
        "failed" => "failed",
        "disconnected" => "disconnected",
        _ => "closed",
    }
}

/// Janus's DTLS state names.
fn dtls_state(state: RTCDtlsTransportState) -> &'static str {
    match state {
        RTCDtlsTransportState::New => "created",
        RTCDtlsTransportState::Connecting => "trying",
        RTCDtlsTransportState::Connected => "connected",
        RTCDtlsTransportState::Failed => "failed",
        _ => "closed",
    }
}

/// Janus's DTLS role names: the client is `active`, the server `passive`.
fn dtls_role(role: RTCDtlsRole) -> &'static str {
    match role {
        RTCDtlsRole::Client => "active",
        RTCDtlsRole::Server => "passive",
        _ => "actpass",
    }
}

/// Janus's (OpenSSL's) SRTP profile names.
fn srtp_profile(name: &str) -> &str {
    match name {
        "" => "none",
        "SRTP_AES128_CM_HMAC_SHA1_80" => "SRTP_AES128_CM_SHA1_80",
        "SRTP_AES128_CM_HMAC_SHA1_32" => "SRTP_AES128_CM_SHA1_32",
        other => other,
    }
}

/// Seconds as whole milliseconds.
fn ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(0.0) as u64
}

/// `sdps`: the local, remote and negotiated SDPs.
fn webrtc(report: &RTCStatsReport, ice_now: &Ice, sdps: (&Sdp, &Sdp, &Sdp), floor: std::time::Duration) -> Value {
    let (local, remote, negotiated) = sdps;
    let mut ice = Map::new();
    let mut dtls = Map::new();
    if let Some(t) = report.transport() {
        let state = ice_state(&t.ice_state.to_string());
        ice.insert("stream_id".into(), 1.into());
        ice.insert("component_id".into(), 1.into());
        ice.insert("state".into(), state.into());
        ice.insert("local-candidates".into(), ice_now.local.clone().into());
        ice.insert("remote-candidates".into(), ice_now.remote.clone().into());
        if let Some(pair) = &ice_now.selected {
            ice.insert("selected-pair".into(), pair.clone().into());
        }
        ice.insert("ready".into(), u8::from(state == "ready").into());

        let state = dtls_state(t.dtls_state);
        if let Some((_, value)) = &local.fingerprint {
            dtls.insert("fingerprint".into(), value.clone().into());
        }
        if let Some((hash, value)) = &remote.fingerprint {
            dtls.insert("remote-fingerprint".into(), value.clone().into());
            dtls.insert("remote-fingerprint-hash".into(), hash.clone().into());
        }
        dtls.insert("dtls-role".into(), dtls_role(t.dtls_role).into());
        dtls.insert("dtls-state".into(), state.into());
        dtls.insert("valid".into(), (state == "connected" && !t.srtp_cipher.is_empty()).into());
        dtls.insert("srtp-profile".into(), srtp_profile(&t.srtp_cipher).into());
        dtls.insert("ready".into(), (state == "connected").into());
        let data = negotiated.sections.iter().any(|s| s.stream.kind == MediaKind::Data);
        dtls.insert("sctp-association".into(), (data && state == "connected").into());
        dtls.insert(
            "stats".into(),
            json!({"in": {"packets": t.packets_received, "bytes": t.bytes_received},
                   "out": {"packets": t.packets_sent, "bytes": t.bytes_sent}}),
        );
    }
    let mut extensions = Map::new();
    for uri in JANUS_EXTENSIONS {
        if let Some((id, _)) = negotiated.extmaps.iter().find(|(_, u)| u == uri) {
            extensions.insert(uri.into(), (*id).into());
        }
    }
    let twcc = negotiated.extmaps.iter().find(|(_, u)| u == TWCC_URI).map(|(id, _)| *id);
    let mut bwe = json!({"twcc": twcc.is_some()});
    if let Some(id) = twcc {
        bwe["twcc-ext-id"] = id.into();
    }
    let mut media = Map::new();
    for s in &local.sections {
        let mid = &s.stream.mid;
        let agreed = negotiated.section(mid).unwrap_or(s);
        let entry = match s.stream.kind {
            MediaKind::Data => data_medium(report, &s.stream),
            _ => medium(report, s, agreed, remote.section(mid), floor),
        };
        media.insert(mid.to_string(), entry);
    }
    json!({"ice": ice, "dtls": dtls, "extensions": extensions, "bwe": bwe, "media": media})
}

/// A data m-section: its messages and bytes each way.
fn data_medium(report: &RTCStatsReport, s: &StreamInfo) -> Value {
    let (mut msgs_in, mut bytes_in, mut msgs_out, mut bytes_out) = (0, 0, 0, 0);
    for d in report.data_channels() {
        msgs_in += u64::from(d.messages_received);
        bytes_in += d.bytes_received;
        msgs_out += u64::from(d.messages_sent);
        bytes_out += d.bytes_sent;
    }
    json!({"type": "data", "mindex": s.mindex, "mid": s.mid.as_str(),
           "stats": {"in": {"packets": msgs_in, "bytes": bytes_in}, "out": {"packets": msgs_out, "bytes": bytes_out}}})
}

/// An audio or video m-section: `local` as this side wrote it, `agreed` as the answer has it,
/// `remote` as the peer wrote it.
fn medium(
    report: &RTCStatsReport,
    local: &Section,
    agreed: &Section,
    remote: Option<&Section>,
    floor: std::time::Duration,
) -> Value {
    let mid = &local.stream.mid;
    let inbound: Vec<&RTCInboundRtpStreamStats> = report.inbound_rtp_streams().filter(|i| *mid == i.mid).collect();
    let outbound = report.outbound_rtp_streams().find(|o| *mid == o.mid);
    let remote_inbound = outbound.and_then(|o| {
        report.iter().find_map(|e| match e {
            RTCStatsReportEntry::RemoteInboundRtp(r)
                if o.sent_rtp_stream_stats.rtp_stream_stats.stats.id == r.local_id =>
            {
                Some(r)
            }
            _ => None,
        })
    });
    let mut m = Map::new();
    m.insert("type".into(), local.stream.kind.as_str().into());
    m.insert("mindex".into(), local.stream.mindex.into());
    m.insert("mid".into(), mid.as_str().into());
    // Both sides' msid, as Janus 1.1.2 shows them: its own only when the plugin chose one
    // (a subscriber's `use_msid`), not its default `janus janus<mid>`.
    let mut msid = Map::new();
    let default = |(stream, track): &&(String, String)| stream == "janus" && *track == format!("janus{mid}");
    if let Some((stream, track)) = local.msid.as_ref().filter(|m| !default(m)) {
        msid.insert("local-stream".into(), stream.as_str().into());
        msid.insert("local-track".into(), track.as_str().into());
    }
    if let Some((stream, track)) = remote.and_then(|r| r.msid.as_ref()) {
        msid.insert("remote-stream".into(), stream.as_str().into());
        msid.insert("remote-track".into(), track.as_str().into());
    }
    if !msid.is_empty() {
        m.insert("msid".into(), msid.into());
    }
    // Janus enables NACKs from the peer's SDP.
    let do_nacks = remote.map_or(agreed.nack, |r| r.nack);
    m.insert("do_nacks".into(), do_nacks.into());
    let rtt = remote_inbound.map(|r| ms(r.round_trip_time));
    // What a sent stream keeps for retransmission (the window its history follows, unsmoothed);
    // a received one keeps none.
    let queue = if local.send && do_nacks {
        send_history::window_for(rtt.map(std::time::Duration::from_millis), floor).as_millis() as u64
    } else {
        0
    };
    m.insert("nack-queue-ms".into(), queue.into());
    let mut ssrc = Map::new();
    if let Some(o) = outbound {
        let ours = o.sent_rtp_stream_stats.rtp_stream_stats.ssrc;
        ssrc.insert("ssrc".into(), ours.into());
        if let Some(rtx) = local.rtx_of(ours) {
            ssrc.insert("ssrc-rtx".into(), rtx.into());
        }
    }
    let layer_names = ["ssrc-peer", "ssrc-peer-sim-1", "ssrc-peer-sim-2"];
    for (name, i) in layer_names.iter().zip(&inbound) {
        ssrc.insert((*name).into(), i.received_rtp_stream_stats.rtp_stream_stats.ssrc.into());
    }
    for (name, i) in ["ssrc-peer-rtx", "ssrc-peer-sim-1-rtx", "ssrc-peer-sim-2-rtx"].iter().zip(&inbound) {
        if let Some(rtx) = remote.and_then(|r| r.rtx_of(i.received_rtp_stream_stats.rtp_stream_stats.ssrc)) {
            ssrc.insert((*name).into(), rtx.into());
        }
    }
    m.insert("ssrc".into(), ssrc.into());
    m.insert("direction".into(), json!({"send": local.send, "recv": local.recv}));
    let mut codecs = Map::new();
    if let Some(pt) = agreed.stream.pt {
        codecs.insert("pt".into(), pt.into());
    }
    if let Some(rtx) = agreed.rtx_pt {
        codecs.insert("rtx-pt".into(), rtx.into());
    }
    if let Some(codec) = &agreed.stream.codec {
        codecs.insert("codec".into(), codec.clone().into());
    }
    if !codecs.is_empty() {
        m.insert("codecs".into(), codecs.into());
    }
    let main = inbound.first();
    let mut rtcp = Map::new();
    let base = agreed.stream.clock_rate.unwrap_or(local.stream.kind.default_clock_rate());
    rtcp.insert("base".into(), base.into());
    rtcp.insert("rtt".into(), rtt.unwrap_or(0).into());
    rtcp.insert("lost".into(), main.map_or(0, |i| i.received_rtp_stream_stats.packets_lost.max(0)).into());
    rtcp.insert(
        "lost-by-remote".into(),
        remote_inbound.map_or(0, |r| r.received_rtp_stream_stats.packets_lost.max(0)).into(),
    );
    rtcp.insert("jitter-local".into(), main.map_or(0, |i| ms(i.received_rtp_stream_stats.jitter)).into());
    rtcp.insert("jitter-remote".into(), remote_inbound.map_or(0, |r| ms(r.received_rtp_stream_stats.jitter)).into());
    m.insert("rtcp".into(), json!({"main": rtcp}));
    let layer = |i: &RTCInboundRtpStreamStats| {
        // Janus counts whole packets, headers too (the W3C `bytesReceived` only payloads).
        let bytes = i.bytes_received + i.header_bytes_received;
        let mut l = json!({"packets": i.received_rtp_stream_stats.packets_received, "bytes": bytes});
        if do_nacks {
            l["nacks"] = i.nack_count.into();
        }
        l
    };
    let mut stats_in = main.map_or_else(
        || if do_nacks { json!({"packets": 0, "bytes": 0, "nacks": 0}) } else { json!({"packets": 0, "bytes": 0}) },
        |i| layer(i),
    );
    for (name, i) in ["video-simulcast-1", "video-simulcast-2"].iter().zip(inbound.iter().skip(1)) {
        stats_in[*name] = layer(i);
    }
    let stats_out = outbound.map_or_else(
        || json!({"packets": 0, "bytes": 0, "nacks": 0}),
        |o| {
            let bytes = o.sent_rtp_stream_stats.bytes_sent + o.header_bytes_sent;
            json!({"packets": o.sent_rtp_stream_stats.packets_sent, "bytes": bytes, "nacks": o.nack_count})
        },
    );
    m.insert("stats".into(), json!({"in": stats_in, "out": stats_out}));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_roles_and_profiles_get_janus_names() {
        use RTCDtlsTransportState::*;
        let states: Vec<_> = [New, Connecting, Connected, Failed, Closed].map(dtls_state).into();
        assert_eq!(states, ["created", "trying", "connected", "failed", "closed"]);
        assert_eq!(
            [RTCDtlsRole::Client, RTCDtlsRole::Server, RTCDtlsRole::Auto].map(dtls_role),
            ["active", "passive", "actpass"]
        );
        let profiles = ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AES128_CM_HMAC_SHA1_32", "SRTP_AEAD_AES_128_GCM", ""];
        assert_eq!(
            profiles.map(srtp_profile),
            ["SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32", "SRTP_AEAD_AES_128_GCM", "none"]
        );
    }
}
