//! A participant's asynchronous requests (`join`, `configure`, `publish`, `switch`,
//! `subscribe`/`unsubscribe`/`update`, ...), parsed in Janus's check order into the typed
//! requests the room handles.

use super::*;
use crate::media::MediaKind;

pub(super) fn parse_async(obj: &Map<String, Value>, name: AsyncName) -> Result<AsyncRequest, VideoRoomError> {
    match name {
        AsyncName::Join | AsyncName::JoinAndConfigure => {
            check(obj, &ROOM)?;
            check(obj, &JOIN)?;
            let ptype_text = json::string(obj, "ptype").unwrap_or_default();
            let ptype = match ptype_text.to_ascii_lowercase().as_str() {
                "publisher" => {
                    Ok(Ptype::Publisher(check(obj, &PUBLISHER).and_then(|_| check(obj, &ID_OPT)).map(|_| {
                        PublisherJoin {
                            id: Some(ParticipantId(json::janus_id(obj, "id"))).filter(|i| !i.0.is_unset()),
                            display: json::string(obj, "display"),
                            metadata: obj.get("metadata").cloned(),
                            audio_active_packets: json::uint(obj, "audio_active_packets"),
                            audio_level_average: json::uint(obj, "audio_level_average"),
                        }
                    })))
                }
                "subscriber" | "listener" => Ok(Ptype::Subscriber(parse_subscriber(obj))),
                _ => Err(VideoRoomError::new(VideoRoomCode::InvalidElement, "Invalid element (ptype)")),
            };
            if name == AsyncName::JoinAndConfigure {
                return Ok(AsyncRequest::Media(name));
            }
            Ok(AsyncRequest::Join(Join {
                room: room_of(obj),
                pin: json::string(obj, "pin"),
                token: json::string(obj, "token"),
                ptype,
            }))
        }
        AsyncName::Leave => Ok(AsyncRequest::Leave),
        AsyncName::Unpublish => Ok(AsyncRequest::Unpublish),
        AsyncName::Switch => parse_switch(obj).map(AsyncRequest::Switch),
        AsyncName::Subscribe | AsyncName::Unsubscribe | AsyncName::Update => {
            parse_update(obj, name).map(AsyncRequest::Update)
        }
        // A publisher's `publish` carries what `configure` does (its recording among them).
        AsyncName::Configure | AsyncName::Publish => parse_configure(obj).map(AsyncRequest::Configure),
        other => Ok(AsyncRequest::Media(other)),
    }
}

const UPDATE_STREAMS: [Param; 1] = [Param::req("streams", JType::Array)];
const UPDATE_COMBINED: [Param; 2] = [Param::opt("subscribe", JType::Array), Param::opt("unsubscribe", JType::Array)];
const UNSUB_STREAM: [Param; 3] =
    [Param::opt("feed", JType::Id), Param::opt("mid", JType::Str), Param::opt("sub_mid", JType::Str)];

fn objects(list: &[Value]) -> Result<Vec<&Map<String, Value>>, VideoRoomError> {
    list.iter()
        .map(|v| {
            v.as_object().ok_or_else(|| {
                VideoRoomError::new(
                    VideoRoomCode::InvalidElement,
                    "Invalid element type (streams should be an array of objects)",
                )
            })
        })
        .collect()
}

/// Janus's order: the request's arrays, an empty subscription list, an empty unsubscription
/// list and each unsubscription entry, `update` with neither, then each subscription entry.
fn parse_update(obj: &Map<String, Value>, name: AsyncName) -> Result<Update, VideoRoomError> {
    let (sub_key, unsub_key) = match name {
        AsyncName::Update => {
            check(obj, &UPDATE_COMBINED)?;
            (Some("subscribe"), Some("unsubscribe"))
        }
        AsyncName::Subscribe => {
            check(obj, &UPDATE_STREAMS)?;
            (Some("streams"), None)
        }
        _ => {
            check(obj, &UPDATE_STREAMS)?;
            (None, Some("streams"))
        }
    };
    let list = |key: Option<&str>| key.and_then(|k| obj.get(k)).and_then(Value::as_array);
    let (sub, unsub) = (list(sub_key), list(unsub_key));
    if sub.is_some_and(|l| l.is_empty()) {
        return Err(VideoRoomError::new(VideoRoomCode::InvalidElement, "Empty subscription list"));
    }
    let mut update = Update::default();
    if let Some(l) = unsub {
        if l.is_empty() {
            return Err(VideoRoomError::new(VideoRoomCode::InvalidElement, "Empty unsubscription list"));
        }
        for o in objects(l)? {
            check(o, &UNSUB_STREAM)?;
            update.unsubscribe.push(UnsubscribeStream {
                feed: o.get("feed").map(|_| ParticipantId(json::janus_id(o, "feed"))),
                mid: json::string(o, "mid").map(Mid::from),
                sub_mid: json::string(o, "sub_mid").map(Mid::from),
            });
        }
    }
    if name == AsyncName::Update && sub.is_none() && unsub.is_none() {
        return Err(VideoRoomError::new(
            VideoRoomCode::MissingElement,
            "At least one of either 'subscribe' or 'unsubscribe' must be present",
        ));
    }
    for o in objects(sub.map(Vec::as_slice).unwrap_or_default())? {
        update.subscribe.push(subscribe_stream(o)?);
    }
    Ok(update)
}

const CONFIGURE: [Param; 11] = [
    Param::opt("streams", JType::Array),
    Param::opt("record", JType::Bool),
    Param::opt("filename", JType::Str),
    Param::opt("secret", JType::Str),
    Param::opt("bitrate", JType::Int).positive(),
    Param::opt("display", JType::Str),
    Param::opt("update", JType::Bool),
    Param::opt("restart", JType::Bool),
    Param::opt("audio", JType::Bool),
    Param::opt("video", JType::Bool),
    Param::opt("data", JType::Bool),
];
const CONFIGURE_STREAM: [Param; 3] =
    [Param::opt("mid", JType::Str), Param::opt("send", JType::Bool), Param::opt("keyframe", JType::Bool)];

/// Without `streams`, Janus reads one entry from the request itself.
fn parse_configure(obj: &Map<String, Value>) -> Result<Configure, VideoRoomError> {
    check(obj, &CONFIGURE)?;
    let entries = match obj.get("streams").and_then(Value::as_array) {
        Some(list) => objects(list)?,
        None => vec![obj],
    };
    let mut streams = Vec::new();
    for o in entries {
        check(o, &CONFIGURE_STREAM)?;
        let layers = layer_choice(o, false)?;
        streams.push(ConfigureStream {
            mid: json::string(o, "mid").map(Mid::from),
            send: json::boolean(o, "send"),
            layers,
            delay: delay_choice(o)?,
            keyframe: json::boolean(o, "keyframe").unwrap_or(false),
        });
    }
    Ok(Configure {
        streams,
        audio: json::boolean(obj, "audio"),
        video: json::boolean(obj, "video"),
        restart: json::boolean(obj, "restart").unwrap_or(false),
        bitrate: obj.get("bitrate").and_then(Value::as_u64),
        display: json::string(obj, "display"),
        record: json::boolean(obj, "record"),
        filename: json::string(obj, "filename"),
        secret: json::string(obj, "secret"),
        audiocodec: json::string(obj, "audiocodec"),
        videocodec: json::string(obj, "videocodec"),
        descriptions: Descriptions(descriptions(obj)),
    })
}

const DESCRIPTIONS: [Param; 1] = [Param::opt("descriptions", JType::Array)];
const DESCRIPTION: [Param; 2] = [Param::req("mid", JType::Str), Param::req("description", JType::Str)];

/// `descriptions`, each entry checked as Janus checks a publisher's.
fn descriptions(obj: &Map<String, Value>) -> Result<Vec<(Mid, String)>, VideoRoomError> {
    check(obj, &DESCRIPTIONS)?;
    let list = obj.get("descriptions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let empty = Map::new();
    let mut out = Vec::new();
    for d in list {
        let d = d.as_object().unwrap_or(&empty);
        check(d, &DESCRIPTION)?;
        out.push((
            Mid::from(json::string(d, "mid").unwrap_or_default()),
            json::string(d, "description").unwrap_or_default(),
        ));
    }
    Ok(out)
}

const SWITCH: [Param; 1] = [Param::opt("streams", JType::Array)];
/// Janus checks each entry's mids (and simulcast fields) before its feed.
const SWITCH_STREAM: [Param; 2] = [Param::req("mid", JType::Str), Param::req("sub_mid", JType::Str)];
const FEED: [Param; 1] = [Param::req("feed", JType::Id)];

fn parse_switch(obj: &Map<String, Value>) -> Result<Switch, VideoRoomError> {
    check(obj, &SWITCH)?;
    let list = obj.get("streams").and_then(Value::as_array).filter(|l| !l.is_empty());
    let Some(list) = list else {
        // Janus looks the legacy feed up as given, so a missing one is "No such feed (0)".
        return Ok(Switch { streams: Vec::new(), legacy_feed: Some(ParticipantId(json::janus_id(obj, "feed"))) });
    };
    let mut streams = Vec::new();
    for o in objects(list)? {
        check(o, &SWITCH_STREAM)?;
        check(o, &FEED)?;
        streams.push(SwitchStream {
            feed: ParticipantId(json::janus_id(o, "feed")),
            mid: json::string(o, "mid").unwrap_or_default().into(),
            sub_mid: json::string(o, "sub_mid").unwrap_or_default().into(),
            layers: layer_choice(o, false)?,
        });
    }
    Ok(Switch { streams, legacy_feed: None })
}

const SUB_STREAM: [Param; 3] =
    [Param::opt("mid", JType::Str), Param::opt("crossrefid", JType::Str), Param::opt("send", JType::Bool)];

/// A subscription entry, checked in Janus's order: its own fields, then its `feed`.
fn subscribe_stream(o: &Map<String, Value>) -> Result<SubscribeStream, VideoRoomError> {
    check(o, &SUB_STREAM)?;
    let layers = layer_choice(o, true)?;
    let delay = delay_choice(o)?;
    check(o, &FEED)?;
    Ok(SubscribeStream {
        feed: ParticipantId(json::janus_id(o, "feed")),
        mid: json::string(o, "mid").map(Mid::from),
        crossrefid: json::string(o, "crossrefid"),
        layers,
        delay,
    })
}

/// A subscriber's `join` fields Janus checks before its streams.
const SUBSCRIBER: [Param; 8] = [
    Param::opt("streams", JType::Array),
    Param::opt("autoupdate", JType::Bool),
    Param::opt("audio", JType::Bool),
    Param::opt("video", JType::Bool),
    Param::opt("data", JType::Bool),
    Param::opt("offer_audio", JType::Bool),
    Param::opt("offer_video", JType::Bool),
    Param::opt("offer_data", JType::Bool),
];

/// The kinds whose deprecated `offer_<kind>` is false.
fn kinds_left_out(obj: &Map<String, Value>) -> Vec<MediaKind> {
    [("offer_audio", MediaKind::Audio), ("offer_video", MediaKind::Video), ("offer_data", MediaKind::Data)]
        .into_iter()
        .filter(|(k, _)| obj.get(*k) == Some(&Value::Bool(false)))
        .map(|(_, kind)| kind)
        .collect()
}

/// Janus reads `use_msid` as true or not (any other value, any type: not).
fn use_msid(obj: &Map<String, Value>) -> bool {
    obj.get("use_msid") == Some(&Value::Bool(true))
}

fn parse_subscriber(obj: &Map<String, Value>) -> Result<SubscriberJoin, VideoRoomError> {
    check(obj, &SUBSCRIBER)?;
    let autoupdate = obj.get("autoupdate") != Some(&Value::Bool(false));
    match (obj.get("streams"), obj.get("feed")) {
        (Some(Value::Array(list)), _) => {
            let mut streams = Vec::new();
            for o in objects(list)? {
                streams.push(subscribe_stream(o)?);
            }
            if streams.is_empty() {
                return Err(VideoRoomError::new(VideoRoomCode::MissingElement, "Missing mandatory element (streams)"));
            }
            let use_msid = use_msid(obj);
            Ok(SubscriberJoin { streams, use_msid, autoupdate, kinds_left_out: Vec::new(), legacy: false })
        }
        (Some(_), _) => {
            Err(VideoRoomError::new(VideoRoomCode::InvalidElement, "Invalid element type (streams should be an array)"))
        }
        (None, Some(_)) => {
            check(obj, &[Param::req("feed", JType::Id)])?;
            Ok(SubscriberJoin {
                streams: vec![SubscribeStream {
                    feed: ParticipantId(json::janus_id(obj, "feed")),
                    mid: None,
                    crossrefid: None,
                    layers: layer_choice(obj, true)?,
                    delay: delay_choice(obj)?,
                }],
                use_msid: use_msid(obj),
                autoupdate,
                kinds_left_out: kinds_left_out(obj),
                legacy: true,
            })
        }
        (None, None) => Err(VideoRoomError::new(VideoRoomCode::MissingElement, "Missing mandatory element (streams)")),
    }
}
