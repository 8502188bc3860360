//! The room shell's part of RTP forwarding: opens each forwarder's sockets and starts it on the
//! publisher's feed (`media::forwarder`), and keeps the running ones so that `stop_rtp_forward`
//! or the publisher's end stops them. The room state records and answers.

use super::state::{Forwarder, Who};
use super::RoomActor;
use crate::media::codec::VideoCodec;
use crate::media::forwarder::{self, SrtpParams, Target};
use crate::media::{MediaError, MediaStep};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{RtpForward, VideoRoomEvent};
use shared::media::MediaKind;
use std::net::{IpAddr, SocketAddr};

fn refused(reason: String) -> VideoRoomError {
    VideoRoomError::new(VideoRoomCode::Unauthorized, reason)
}

impl RoomActor {
    /// A forwarding destination (`rtp_forward`, `publish_remotely`): an address (the gateway
    /// resolved names) inside `rtp_forward_allowed`.
    pub(super) fn destination(&self, host: &str) -> Result<IpAddr, VideoRoomError> {
        let ip: IpAddr = host.parse().map_err(|_| {
            VideoRoomError::new(VideoRoomCode::InvalidElement, format!("Could not resolve address ({host})..."))
        })?;
        if !self.media.forward_allowed.iter().any(|r| r.contains(ip)) {
            return Err(refused(format!("Unauthorized (forwarding to {ip} is not allowed: see rtp_forward_allowed)")));
        }
        Ok(ip)
    }

    /// `rtp_forward`: every requested stream the publisher has gets its forwarder(s) (simulcast
    /// layers to their own ports when asked); the answer lists them.
    pub(super) fn rtp_forward(&mut self, f: &RtpForward) -> Result<VideoRoomEvent, VideoRoomError> {
        let plan = self.state.plan_forward(f)?;
        let srtp = match &f.srtp {
            Some(k) => Some(SrtpParams::new(k.suite, &k.crypto).map_err(|e| e.in_step(MediaStep::Forward))?),
            None => None,
        };
        // Every destination is checked before anything starts.
        let mut dests = Vec::with_capacity(plan.streams.len());
        for (s, _) in &plan.streams {
            let ip = self.destination(&s.host)?;
            dests.push(ip);
        }
        let Some(publisher) = self.peers.get(&plan.publisher) else {
            // Joined but not publishing: nothing to forward (Janus answers an empty list).
            return Ok(self.state.forwarding(plan.pid, Vec::new()));
        };
        let mut started: Vec<Forwarder> = Vec::new();
        let mut running = Vec::new();
        let fail = |e: MediaError| e.in_step(MediaStep::Forward);
        for ((s, info), ip) in plan.streams.iter().zip(dests) {
            let base = Forwarder {
                stream_id: 0,
                kind: info.kind,
                host: s.host.clone(),
                port: s.port,
                local_rtcp_port: None,
                remote_rtcp_port: None,
                ssrc: None,
                pt: None,
                substream: None,
                srtp: false,
            };
            if info.kind == MediaKind::Data {
                running
                    .push(forwarder::start_data(publisher.data_origin(), SocketAddr::new(ip, s.port)).map_err(fail)?);
                started.push(Forwarder { stream_id: self.new_stream_id(&started), ..base });
                continue;
            }
            let Some(origin) = publisher.origin(info.mid.as_str()) else { continue };
            let codec = info.codec.as_deref().and_then(VideoCodec::from_name);
            let clock_rate = info.clock_rate.unwrap_or(info.kind.default_clock_rate());
            let simulcast = origin.simulcast();
            // Layer 0 to `port`, 1 and 2 to `port_2`/`port_3`; `simulcast: true` relays the best
            // layer as one stream; a source without simulcast is just relayed.
            let mut outlets =
                vec![(s.port, s.ssrc, s.pt, s.rtcp_port, if simulcast && !s.simulcast { Some(0) } else { None })];
            if simulcast && !s.simulcast {
                for (i, l) in s.more_layers.iter().enumerate() {
                    if let Some((port, ssrc, pt)) = l {
                        outlets.push((*port, *ssrc, *pt, None, Some(i as u8 + 1)));
                    }
                }
            }
            for (port, ssrc, pt, rtcp_port, layer) in outlets {
                let rtcp = match rtcp_port {
                    Some(rp) => {
                        let remote = SocketAddr::new(ip, rp);
                        let (sock, local) =
                            forwarder::bind_rtcp(&remote).map_err(|e| fail(MediaError::io("RTCP socket", e)))?;
                        Some((sock, remote, local))
                    }
                    None => None,
                };
                let local_rtcp_port = rtcp.as_ref().map(|(_, _, l)| *l);
                let target = Target {
                    dest: SocketAddr::new(ip, port),
                    ssrc,
                    pt,
                    layer: if simulcast { layer } else { Some(0) },
                    clock_rate,
                    codec,
                };
                let r = forwarder::start_rtp(origin.clone(), target, srtp.clone(), rtcp.map(|(s, r, _)| (s, r)))
                    .map_err(fail)?;
                running.push(r);
                started.push(Forwarder {
                    stream_id: self.new_stream_id(&started),
                    port,
                    local_rtcp_port,
                    remote_rtcp_port: rtcp_port,
                    ssrc,
                    // Janus reports the payload type the receiver gets.
                    pt: pt.or(info.pt),
                    substream: layer,
                    srtp: srtp.is_some(),
                    ..base.clone()
                });
            }
        }
        let list = self.forwarders.entry(plan.publisher).or_default();
        for (f, r) in started.iter().zip(running) {
            list.push((f.stream_id, r));
        }
        tracing::info!(publisher = %plan.pid.0, forwarders = started.len(), "rtp_forward");
        Ok(self.state.forwarding(plan.pid, started))
    }

    /// A stream id no forwarder of this room has, nor one of `also` (started by the same request).
    fn new_stream_id(&self, also: &[Forwarder]) -> u32 {
        let taken = |id: u32| {
            self.forwarders.values().flatten().any(|(s, _)| *s == id) || also.iter().any(|f| f.stream_id == id)
        };
        loop {
            let id = rand::random::<u32>() & 0x7fff_ffff;
            if id != 0 && !taken(id) {
                return id;
            }
        }
    }

    /// Stops one forwarder of `who`.
    pub(super) fn stop_forwarder(&mut self, who: Who, stream_id: u32) {
        if let Some(list) = self.forwarders.get_mut(&who) {
            list.retain(|(id, _)| *id != stream_id);
        }
    }

    /// Stops every forwarder of `who` (it stopped publishing or left).
    pub(super) fn stop_forwarders(&mut self, who: Who) {
        self.forwarders.remove(&who);
    }
}
