//! Each reply and event against the JSON Janus 1.1.2 sends for it (as the recorded replies in
//! `tests/golden` and the live-Janus suites show it).

use super::*;
use crate::janus::errors::VideoRoomCode;
use serde_json::json;

fn r5() -> RoomId {
    RoomId::num(5)
}

fn pid(n: u64) -> ParticipantId {
    ParticipantId::num(n)
}

fn audio(mindex: usize) -> PublisherStream {
    PublisherStream {
        codec: Some("opus".into()),
        ..PublisherStream::new(MediaKind::Audio, mindex, Mid::from(mindex.to_string()))
    }
}

#[test]
fn membership_events() {
    let e = VideoRoomEvent::Error(VideoRoomError::new(VideoRoomCode::NoSuchFeed, "No such feed (9)"));
    assert_eq!(e.to_json(), json!({"videoroom": "event", "error_code": 428, "error": "No such feed (9)"}));
    let alice = Attendee { id: pid(101), display: Some("alice".into()), metadata: Some(json!({"a": 1})) };
    let joined = VideoRoomEvent::Joined {
        room: r5(),
        description: "Room 5".into(),
        id: pid(103),
        private_id: pid(7),
        publishers: vec![],
        attendees: Some(vec![alice.clone()]),
    };
    assert_eq!(
        joined.to_json(),
        json!({"videoroom": "joined", "room": 5, "description": "Room 5", "id": 103, "private_id": 7,
            "publishers": [], "attendees": [{"id": 101, "display": "alice", "metadata": {"a": 1}}]})
    );
    let joining = VideoRoomEvent::Joining { room: r5(), who: Attendee { metadata: None, ..alice } };
    assert_eq!(joining.to_json(), json!({"videoroom": "event", "room": 5, "joining": {"id": 101, "display": "alice"}}));
    let left = |how, display: Option<&str>| VideoRoomEvent::Departed {
        room: r5(),
        how,
        id: pid(101),
        display: display.map(Into::into),
        metadata: None,
    };
    assert_eq!(
        left(Departure::Leaving, Some("alice")).to_json(),
        json!({"videoroom": "event", "room": 5, "display": "alice", "leaving": 101})
    );
    assert_eq!(left(Departure::Kicked, None).to_json(), json!({"videoroom": "event", "room": 5, "kicked": 101}));
    assert_eq!(
        left(Departure::Unpublished, None).to_json(),
        json!({"videoroom": "event", "room": 5, "unpublished": 101})
    );
    assert_eq!(
        VideoRoomEvent::LeavingOk { room: r5(), kicked: true }.to_json(),
        json!({"videoroom": "event", "room": 5, "leaving": "ok", "reason": "kicked"})
    );
    assert_eq!(
        VideoRoomEvent::LeavingOk { room: r5(), kicked: false }.to_json(),
        json!({"videoroom": "event", "room": 5, "leaving": "ok"})
    );
    assert_eq!(
        VideoRoomEvent::Destroyed { room: r5(), permanent: None }.to_json(),
        json!({"videoroom": "destroyed", "room": 5})
    );
    assert_eq!(
        VideoRoomEvent::Renamed { id: pid(101), display: "al".into() }.to_json(),
        json!({"videoroom": "event", "id": 101, "display": "al"})
    );
}

#[test]
fn publisher_entries_write_only_what_is_set() {
    let mut fec = audio(0);
    fec.fec = true;
    fec.talking = Some(false);
    let video = PublisherStream {
        kind: MediaKind::Video,
        mid: "1".into(),
        mindex: 1,
        codec: Some("vp9".into()),
        profile: Some(CodecProfile::Vp9("2".into())),
        simulcast: true,
        moderated: true,
        ..audio(1)
    };
    let disabled = PublisherStream { disabled: true, description: Some("gone".into()), ..audio(2) };
    let entry = PublisherEntry {
        id: pid(101),
        display: None,
        metadata: None,
        publication: Publication {
            audio_codec: Some("opus".into()),
            video_codec: Some("vp9".into()),
            streams: vec![fec, video, disabled],
        },
        talking: Some(true),
    };
    assert_eq!(
        VideoRoomEvent::Publishers { room: r5(), publishers: vec![entry] }.to_json(),
        json!({"videoroom": "event", "room": 5, "publishers": [{"id": 101, "audio_codec": "opus", "video_codec": "vp9",
            "streams": [
                {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "fec": true, "talking": false},
                {"type": "video", "mindex": 1, "mid": "1", "codec": "vp9", "vp9_profile": "2", "moderated": true,
                    "simulcast": true},
                {"type": "audio", "mindex": 2, "mid": "2", "disabled": true}],
            "talking": true}]})
    );
    let configured = VideoRoomEvent::Configured {
        room: r5(),
        publication: Some(Publication { audio_codec: Some("opus".into()), video_codec: None, streams: vec![audio(0)] }),
    };
    assert_eq!(
        configured.to_json(),
        json!({"videoroom": "event", "room": 5, "configured": "ok", "audio_codec": "opus",
            "streams": [{"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"}]})
    );
    let talking =
        VideoRoomEvent::Talking { room: r5(), id: pid(101), mindex: 0, mid: "0".into(), talking: false, average: 70.5 };
    assert_eq!(
        talking.to_json(),
        json!({"videoroom": "stopped-talking", "room": 5, "id": 101, "mindex": 0, "mid": "0", "audio-level-dBov-avg": 70.5})
    );
}

#[test]
fn subscription_streams_and_layers() {
    let feed = |layers, delay| SubscriberStream {
        kind: MediaKind::Video,
        active: true,
        mindex: 1,
        mid: "1".into(),
        crossrefid: Some("cam".into()),
        ready: true,
        send: false,
        source: StreamSource::Feed {
            id: pid(101),
            display: Some("alice".into()),
            metadata: Some(json!({"role": "host"})),
            mid: "2".into(),
            description: Some("front camera".into()),
            codec: "h264".into(),
            profile: Some(CodecProfile::H264("42e01f".into())),
            layers,
            delay,
        },
    };
    let simulcast =
        Layers::Simulcast { substream: -1, substream_target: 2, temporal: 0, temporal_target: 2, fallback: Some(5) };
    let delay = PlayoutDelay { min: 5, max: 20 };
    let data = SubscriberStream {
        kind: MediaKind::Data,
        active: true,
        mindex: 2,
        mid: "2".into(),
        crossrefid: None,
        ready: false,
        send: true,
        source: StreamSource::Data { sources: vec![pid(101), pid(103)] },
    };
    let inactive = SubscriberStream { active: false, ready: false, source: StreamSource::None, ..feed(None, None) };
    let attached = VideoRoomEvent::Attached {
        room: r5(),
        legacy: Some(LegacyFeed { id: pid(101), display: None, metadata: Some(json!({"role": "host"})) }),
        streams: vec![feed(Some(simulcast), Some(delay)), data, inactive],
    };
    assert_eq!(
        attached.to_json(),
        json!({"videoroom": "attached", "room": 5, "id": 101, "warning": "deprecated_api", "metadata": {"role": "host"}, "streams": [
            {"type": "video", "active": true, "mindex": 1, "mid": "1", "crossrefid": "cam", "ready": true, "send": false, "feed_id": 101,
                "feed_display": "alice", "feed_metadata": {"role": "host"}, "feed_mid": "2",
                "feed_description": "front camera", "codec": "h264", "h264-profile": "42e01f",
                "simulcast": {"substream": -1, "substream-target": 2, "temporal-layer": 0, "temporal-layer-target": 2,
                    "fallback": 5},
                "playout-delay": {"min-delay": 5, "max-delay": 20}},
            {"type": "data", "active": true, "mindex": 2, "mid": "2", "ready": false, "send": true, "sources": 2,
                "source_ids": [101, 103]},
            {"type": "video", "active": false, "mindex": 1, "mid": "1", "crossrefid": "cam", "ready": false, "send": false}]})
    );
    let svc = Layers::Svc { spatial: 1, spatial_target: 1, temporal: 2, temporal_target: 2 };
    let switched = VideoRoomEvent::Switched { room: r5(), changes: 1, streams: vec![feed(Some(svc), None)] };
    assert_eq!(
        switched.to_json()["streams"][0]["svc"],
        json!({"spatial-layer": 1, "target-spatial-layer": 1, "temporal-layer": 2, "target-temporal-layer": 2})
    );
    assert_eq!(switched.to_json()["switched"], "ok");
    let layer = |svc| VideoRoomEvent::Layer { room: r5(), mid: "1".into(), svc, spatial: Some(0), temporal: None };
    assert_eq!(layer(false).to_json(), json!({"videoroom": "event", "room": 5, "mid": "1", "substream": 0}));
    assert_eq!(layer(true).to_json(), json!({"videoroom": "event", "room": 5, "mid": "1", "spatial_layer": 0}));
    assert_eq!(
        VideoRoomEvent::Updated { room: r5(), streams: None }.to_json(),
        json!({"videoroom": "updated", "room": 5})
    );
    assert_eq!(VideoRoomEvent::SlowLink { current_bitrate: None }.to_json(), json!({"videoroom": "slow_link"}));
}

#[test]
fn forwarders_remotes_and_handle_info() {
    let video = Forwarder {
        stream_id: 7,
        kind: MediaKind::Video,
        host: "127.0.0.1".into(),
        port: 5004,
        local_rtcp_port: Some(40000),
        remote_rtcp_port: Some(5005),
        ssrc: Some(1234),
        pt: Some(100),
        substream: None,
        srtp: false,
    };
    let data = Forwarder {
        kind: MediaKind::Data,
        stream_id: 8,
        local_rtcp_port: None,
        remote_rtcp_port: None,
        ..video.clone()
    };
    let list = VideoRoomEvent::Forwarders {
        room: r5(),
        publishers: vec![PublisherForwarders {
            publisher_id: pid(101),
            display: Some("alice".into()),
            forwarders: vec![video, data],
        }],
    };
    assert_eq!(
        list.to_json(),
        json!({"videoroom": "forwarders", "room": 5, "publishers": [{"publisher_id": 101, "display": "alice", "forwarders": [
            {"stream_id": 7, "type": "video", "host": "127.0.0.1", "port": 5004, "local_rtcp_port": 40000,
                "remote_rtcp_port": 5005, "ssrc": 1234, "pt": 100, "srtp": false},
            {"stream_id": 8, "type": "data", "host": "127.0.0.1", "port": 5004}]}]})
    );
    let remotes = VideoRoomEvent::Remotes {
        room: r5(),
        id: pid(101),
        list: vec![RemoteEntry { remote_id: "r".into(), host: "10.0.0.2".into(), port: 6000, rtcp_port: None }],
    };
    assert_eq!(
        remotes.to_json(),
        json!({"videoroom": "success", "room": 5, "id": 101, "list": [{"remote_id": "r", "host": "10.0.0.2", "port": 6000}]})
    );
    let info = HandleInfo::Publisher {
        room: r5(),
        id: pid(101),
        private_id: pid(7),
        display: None,
        bitrate: 0,
        streams: vec![PublishedStreamInfo {
            kind: MediaKind::Video,
            mindex: 0,
            mid: "0".into(),
            codec: Some("vp8".into()),
            rids: vec!["h".into(), "l".into()],
            subscribers: 2,
        }],
    };
    assert_eq!(
        info.to_json(),
        json!({"type": "publisher", "room": 5, "id": 101, "private_id": 7, "bitrate": 0, "streams": [
            {"type": "video", "mindex": 0, "mid": "0", "codec": "vp8", "simulcast": true, "rids": ["h", "l"], "subscribers": 2}],
            "hangingup": 0, "destroyed": 0})
    );
    assert_eq!(HandleInfo::None.to_json(), json!({"type": "none", "hangingup": 0, "destroyed": 0}));
}
