//! The room's remote publishers and remotizations: the sockets and forwarders behind
//! `add_remote_publisher` and `publish_remotely` (the bookkeeping is `state::remote`'s).

use super::state::{Remotization, Who};
use super::RoomActor;
use crate::media::codec::VideoCodec;
use crate::media::forwarder::{self, Running, Target};
use crate::media::publisher::PublisherPeer;
use crate::media::{MediaError, MediaStep};
use shared::janus::errors::VideoRoomError;
use shared::janus::videoroom::remote::remote_ssrc;
use shared::janus::videoroom::{PublishRemotely, RemotePublisher, RemoteRef, VideoRoomEvent};
use shared::media::MediaKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn failed(e: MediaError) -> VideoRoomError {
    e.in_step(MediaStep::Remote)
}

impl RoomActor {
    /// `add_remote_publisher`: its ports opened (on the node's first media address), it joins
    /// and is announced; the answer carries the ports the other server sends to.
    pub(super) fn add_remote_publisher(
        &mut self,
        r: &RemotePublisher,
    ) -> Result<(VideoRoomEvent, super::state::Outcome), VideoRoomError> {
        let id = self.state.plan_remote_publisher(r)?;
        let ip = self.media.udp_ips.first().copied().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (peer, port, rtcp_port) = PublisherPeer::remote(ip, r.port, &r.streams).map_err(failed)?;
        let (answer, out) = self.state.remote_publisher_added(id.clone(), r, (port, rtcp_port));
        self.peers.insert(Who::remote(id.clone()), peer);
        tracing::info!(publisher = %id, port, rtcp_port, "remote publisher");
        Ok((answer, out))
    }

    /// `update_remote_publisher`: streams it did not have are received from now on.
    pub(super) fn update_remote_publisher(
        &mut self,
        r: &RemotePublisher,
    ) -> Result<(VideoRoomEvent, super::state::Outcome), VideoRoomError> {
        let (answer, out, added) = self.state.update_remote_publisher(r)?;
        if let (false, Some(id)) = (added.is_empty(), &r.id) {
            if let Some(peer) = self.peers.get_mut(&Who::remote(id.clone())) {
                peer.add_remote_streams(&added).map_err(failed)?;
            }
        }
        Ok((answer, out))
    }

    /// `publish_remotely`: records the remotization and, if the publisher is publishing, starts
    /// sending its streams.
    pub(super) fn publish_remotely(&mut self, p: &PublishRemotely) -> Result<VideoRoomEvent, VideoRoomError> {
        let who = self.state.plan_remotize(p)?;
        self.destination(&p.host)?;
        let r = Remotization { host: p.host.clone(), port: p.port, rtcp_port: p.rtcp_port };
        if self.peers.contains_key(&who) {
            let running = self.remotize(who, &r).map_err(failed)?;
            self.remotes.entry(who).or_default().push((p.remote_id.clone(), running));
        }
        tracing::info!(publisher = %p.publisher_id, remote = %p.remote_id, "publish_remotely");
        Ok(self.state.remotized(p))
    }

    /// `unpublish_remotely`.
    pub(super) fn unpublish_remotely(&mut self, r: &RemoteRef) -> Result<VideoRoomEvent, VideoRoomError> {
        let (answer, who) = self.state.unremotize(r)?;
        let remote_id = r.remote_id.as_deref().unwrap_or_default();
        if let Some(list) = self.remotes.get_mut(&who) {
            list.retain(|(id, _)| id != remote_id);
        }
        Ok(answer)
    }

    /// Starts (again) every remotization of `who`, which now publishes.
    pub(super) fn resume_remotes(&mut self, who: Who) {
        for (remote_id, r) in self.state.remotizations(who) {
            match self.remotize(who, &r) {
                Ok(running) => self.remotes.entry(who).or_default().push((remote_id, running)),
                Err(e) => tracing::warn!(remote = %remote_id, error = %e, "remotization not resumed"),
            }
        }
    }

    /// Sends every stream of `who` to `r` as Janus does: all to one port, each stream's SSRC
    /// naming its m-line and layer; the first video stream's receiver RTCP on `rtcp_port`.
    fn remotize(&self, who: Who, r: &Remotization) -> Result<Vec<Running>, MediaError> {
        let publisher = self.peers.get(&who).ok_or(MediaError::Gone("not publishing"))?;
        let ip: IpAddr = r.host.parse().map_err(|e| MediaError::Invalid(format!("bad address {} ({e})", r.host)))?;
        let dest = SocketAddr::new(ip, r.port);
        let streams = self.state.publication(who).map(|p| p.streams.clone()).unwrap_or_default();
        let mut running = Vec::new();
        let mut rtcp_taken = false;
        for s in &streams {
            if s.kind == MediaKind::Data {
                let ssrc = remote_ssrc(s.mindex, 0);
                running.push(forwarder::start_data_enveloped(publisher.data_origin(), dest, ssrc)?);
                continue;
            }
            let Some(origin) = publisher.origin(&s.mid) else { continue };
            let layers = origin.layers.len() as u8;
            for layer in 0..layers {
                let rtcp = match (s.kind, r.rtcp_port, rtcp_taken, layer) {
                    (MediaKind::Video, Some(rp), false, 0) => {
                        rtcp_taken = true;
                        let remote = SocketAddr::new(ip, rp);
                        let (sock, _) = forwarder::bind_rtcp(&remote).map_err(|e| MediaError::io("RTCP socket", e))?;
                        Some((sock, remote))
                    }
                    _ => None,
                };
                let target = Target {
                    dest,
                    ssrc: Some(remote_ssrc(s.mindex, layer)),
                    pt: None,
                    layer: Some(layer),
                    clock_rate: s.clock_rate.unwrap_or(s.kind.default_clock_rate()),
                    codec: s.codec.as_deref().and_then(VideoCodec::from_name),
                };
                running.push(forwarder::start_rtp(origin.clone(), target, None, rtcp)?);
            }
        }
        Ok(running)
    }
}
