//! A PeerConnection as the Admin API's `handle_info` shows it: Janus's `webrtc` object (ICE,
//! DTLS, and per mid the packets, bytes, NACKs, PLIs, loss, jitter and RTT) and its `sdps`,
//! read from the PeerConnection's W3C statistics (`getStats`) when asked, never kept per packet.

use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};
use rtc::statistics::stats::ice_candidate::RTCIceCandidateStats;
use rtc::statistics::StatsSelector;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use webrtc::peer_connection::PeerConnection;

/// `(webrtc, sdps)` for `handle_info`.
pub async fn summary(pc: &Arc<dyn PeerConnection>) -> (Value, Value) {
    let report = pc.get_stats(std::time::Instant::now(), StatsSelector::None).await;
    let mut sdps = Map::new();
    sdps.insert("profile".into(), "UDP/TLS/RTP/SAVPF".into());
    if let Some(l) = pc.local_description().await {
        sdps.insert("local".into(), l.sdp.into());
    }
    if let Some(r) = pc.remote_description().await {
        sdps.insert("remote".into(), r.sdp.into());
    }
    (webrtc(&report), Value::Object(sdps))
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

fn candidate(c: &RTCIceCandidateStats) -> String {
    format!("{}:{} [{},{}]", c.address.as_deref().unwrap_or("?"), c.port, c.candidate_type, c.protocol)
}

fn webrtc(report: &RTCStatsReport) -> Value {
    let mut local = Map::new();
    let mut remote = Map::new();
    for e in report.iter() {
        match e {
            RTCStatsReportEntry::LocalCandidate(c) => {
                local.insert(c.stats.id.to_string(), candidate(c).into());
            }
            RTCStatsReportEntry::RemoteCandidate(c) => {
                remote.insert(c.stats.id.to_string(), candidate(c).into());
            }
            _ => {}
        }
    }
    let mut ice = Map::new();
    let mut dtls = Map::new();
    if let Some(t) = report.transport() {
        let state = t.ice_state.to_string();
        ice.insert("stream_id".into(), 1.into());
        ice.insert("component_id".into(), 1.into());
        ice.insert("state".into(), ice_state(&state).into());
        let pair = report.candidate_pairs().find(|p| p.stats.id == t.selected_candidate_pair_id);
        if let Some(p) = pair {
            let side = |m: &Map<String, Value>, id: &str| m.get(id).and_then(Value::as_str).unwrap_or("?").to_owned();
            let selected = format!(
                "{} <-> {}",
                side(&local, &p.local_candidate_id.to_string()),
                side(&remote, &p.remote_candidate_id.to_string())
            );
            ice.insert("selected-pair".into(), selected.into());
            ice.insert("rtt".into(), json!((p.current_round_trip_time * 1000.0).round() as u64));
        }
        ice.insert("local-candidates".into(), local.values().cloned().collect::<Vec<_>>().into());
        ice.insert("remote-candidates".into(), remote.values().cloned().collect::<Vec<_>>().into());
        ice.insert("ready".into(), u8::from(ice_state(&state) == "ready").into());
        dtls.insert("dtls-role".into(), t.dtls_role.to_string().into());
        dtls.insert("dtls-state".into(), t.dtls_state.to_string().into());
        dtls.insert(
            "srtp-profile".into(),
            if t.srtp_cipher.is_empty() { "none".into() } else { t.srtp_cipher.clone().into() },
        );
        dtls.insert("ready".into(), (t.dtls_state.to_string() == "connected").into());
        dtls.insert(
            "stats".into(),
            json!({"in": {"packets": t.packets_received, "bytes": t.bytes_received},
                   "out": {"packets": t.packets_sent, "bytes": t.bytes_sent}}),
        );
    }
    let mut media: Map<String, Value> = Map::new();
    let codec_of = |id: &str| -> Option<String> {
        report.iter().find_map(|e| match e {
            RTCStatsReportEntry::Codec(c) if c.stats.id == id => Some(c.mime_type.clone()),
            _ => None,
        })
    };
    for s in report.inbound_rtp_streams() {
        let base = &s.received_rtp_stream_stats;
        let m = medium(&mut media, &s.mid, base.rtp_stream_stats.kind.to_string());
        let layer = if m["stats"]["in"].get("packets").is_some() { "in-simulcast" } else { "in" };
        let stats = json!({
            "ssrc": base.rtp_stream_stats.ssrc,
            "packets": base.packets_received, "bytes": s.bytes_received,
            "lost": base.packets_lost, "jitter": base.jitter,
            "nacks": s.nack_count, "plis": s.pli_count, "firs": s.fir_count,
        });
        if layer == "in" {
            m["stats"]["in"] = stats;
        } else {
            let list = m["stats"].as_object_mut().map(|o| o.entry("in-simulcast").or_insert_with(|| json!([])));
            if let Some(Value::Array(a)) = list {
                a.push(stats);
            }
        }
        if let Some(c) = codec_of(&base.rtp_stream_stats.codec_id) {
            m["codec"] = c.into();
        }
    }
    for s in report.outbound_rtp_streams() {
        let base = &s.sent_rtp_stream_stats;
        let m = medium(&mut media, &s.mid, base.rtp_stream_stats.kind.to_string());
        m["stats"]["out"] = json!({
            "ssrc": base.rtp_stream_stats.ssrc,
            "packets": base.packets_sent, "bytes": base.bytes_sent,
            "retransmissions": s.retransmitted_packets_sent,
            "nacks": s.nack_count, "plis": s.pli_count, "firs": s.fir_count,
        });
        if let Some(r) = report.iter().find_map(|e| match e {
            RTCStatsReportEntry::RemoteInboundRtp(r)
                if s.sent_rtp_stream_stats.rtp_stream_stats.stats.id == r.local_id =>
            {
                Some(r)
            }
            _ => None,
        }) {
            m["rtcp"] = json!({"main": {
                "rtt": (r.round_trip_time * 1000.0).round() as u64,
                "lost-by-remote": r.received_rtp_stream_stats.packets_lost,
                "jitter-remote": r.received_rtp_stream_stats.jitter,
                "fraction-lost": r.fraction_lost,
            }});
        }
        if let Some(c) = codec_of(&base.rtp_stream_stats.codec_id) {
            m["codec"] = c.into();
        }
    }
    json!({"ice": ice, "dtls": dtls, "media": media})
}

/// The `media` entry of `mid`, made on first use.
fn medium<'a>(media: &'a mut Map<String, Value>, mid: &str, kind: String) -> &'a mut Value {
    media.entry(mid.to_owned()).or_insert_with(|| json!({"type": kind, "mid": mid, "stats": {"in": {}, "out": {}}}))
}
