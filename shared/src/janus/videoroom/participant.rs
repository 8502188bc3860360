//! A participant's asynchronous requests (`join`, `configure`, `publish`, `switch`,
//! `subscribe`/`unsubscribe`/`update`, ...): the typed requests the room handles, and their
//! parsing in Janus's check order.

use super::*;
use crate::media::MediaKind;

/// Asynchronous requests, typed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AsyncRequest {
    Join(Join),
    Leave,
    Unpublish,
    /// A subscriber's `switch`: new sources for some of its m-lines, without renegotiation.
    Switch(Switch),
    /// A subscriber's `subscribe`, `unsubscribe` or `update`: streams added and removed, then
    /// one renegotiation.
    Update(Update),
    /// `configure`: for a subscriber, which of its streams are sent (a publisher's
    /// `configure` reads its JSEP, not this).
    Configure(Configure),
    /// A media request (publish, configure, subscribe, ...): the room's media node carries it
    /// out, or answers with an explicit error event where it cannot.
    Media(AsyncName),
}

/// `join`: room access fields checked first, then the participant type and its own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub room: RoomId,
    pub pin: Option<String>,
    pub token: Option<String>,
    pub ptype: Result<Ptype, VideoRoomError>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Ptype {
    Publisher(Result<PublisherJoin, VideoRoomError>),
    Subscriber(Result<SubscriberJoin, VideoRoomError>),
}

/// A subscriber's `join`: the feeds (publishers) and, optionally, which of their streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriberJoin {
    pub streams: Vec<SubscribeStream>,
    /// `use_msid`: each m-line's `msid` names its publisher and its mid (else `janus`).
    pub use_msid: bool,
    /// `autoupdate` (Janus's default true): a new offer when a subscribed publisher stops;
    /// without it the change waits for the subscriber's next offer.
    pub autoupdate: bool,
    /// The kinds a legacy `feed` join left out (the deprecated `offer_audio`, `offer_video`,
    /// `offer_data` set to false).
    pub kinds_left_out: Vec<crate::media::MediaKind>,
    /// Joined with the deprecated `feed` parameter (answered with `warning: deprecated_api`).
    pub legacy: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscribeStream {
    pub feed: ParticipantId,
    pub mid: Option<Mid>,
    /// The client's own name for the stream, echoed in the subscription's stream list.
    pub crossrefid: Option<String>,
    pub layers: LayerChoice,
    pub delay: DelayChoice,
}

/// A video stream's playout delay asked for (`min_delay`, `max_delay`, in 10 ms units; a
/// negative value clears it), sent to subscribers in the playout-delay header extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayChoice {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl DelayChoice {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

const DELAY_PARAMS: [Param; 2] = [Param::opt("min_delay", JType::Int), Param::opt("max_delay", JType::Int)];

fn delay_choice(o: &Map<String, Value>) -> Result<DelayChoice, VideoRoomError> {
    check(o, &DELAY_PARAMS)?;
    Ok(DelayChoice { min: o.get("min_delay").and_then(Value::as_i64), max: o.get("max_delay").and_then(Value::as_i64) })
}

/// A subscriber's layer choice for a video stream: simulcast (`substream` and `temporal` 0-2,
/// `fallback` in µs; Janus's defaults 2, 2, 250000) and VP9 SVC (`spatial_layer`,
/// `temporal_layer` 0-2; Janus's defaults 1, 2); what is absent keeps its value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub substream: Option<u8>,
    pub temporal: Option<u8>,
    pub fallback: Option<u64>,
    pub spatial_layer: Option<u8>,
    pub temporal_layer: Option<u8>,
}

impl LayerChoice {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

const LAYER_PARAMS: [Param; 5] = [
    Param::opt("substream", JType::Int).positive(),
    Param::opt("temporal", JType::Int).positive(),
    Param::opt("fallback", JType::Int).positive(),
    Param::opt("spatial_layer", JType::Int).positive(),
    Param::opt("temporal_layer", JType::Int).positive(),
];

/// Reads an entry's simulcast fields. `strict` (subscribing): out-of-range layers are an error,
/// as Janus's; otherwise (`configure`) Janus ignores them.
fn layer_choice(o: &Map<String, Value>, strict: bool) -> Result<LayerChoice, VideoRoomError> {
    check(o, &LAYER_PARAMS)?;
    let layer = |name: &str, what: &str| -> Result<Option<u8>, VideoRoomError> {
        match o.get(name).and_then(Value::as_u64) {
            Some(v @ 0..=2) => Ok(Some(v as u8)),
            Some(_) if strict => Err(VideoRoomError::new(
                VideoRoomCode::InvalidElement,
                format!("Invalid value ({what} should be 0, 1 or 2)"),
            )),
            _ => Ok(None),
        }
    };
    Ok(LayerChoice {
        substream: layer("substream", "substream/spatial_layer")?,
        temporal: layer("temporal", "temporal/temporal_layer")?,
        fallback: o.get("fallback").and_then(Value::as_u64),
        spatial_layer: layer("spatial_layer", "substream/spatial_layer")?,
        temporal_layer: layer("temporal_layer", "temporal/temporal_layer")?,
    })
}

/// `switch`: which publisher stream (`feed`, `mid`) feeds which subscription m-line
/// (`sub_mid`). Without `streams` (or with an empty list), the deprecated form: every stream of
/// `legacy_feed` onto the subscription's streams of the same kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    pub streams: Vec<SwitchStream>,
    pub legacy_feed: Option<ParticipantId>,
}

/// A subscriber's `configure`: per stream (`mid`, or every stream when there is only one entry
/// without one) whether to send it; the deprecated `audio`/`video` switch all streams of a kind
/// when no entry names a mid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Configure {
    pub streams: Vec<ConfigureStream>,
    pub audio: Option<bool>,
    pub video: Option<bool>,
    pub restart: bool,
    /// A publisher's: its bitrate cap (bit/s, sent as REMB).
    pub bitrate: Option<u64>,
    /// A publisher's new display name.
    pub display: Option<String>,
    /// A publisher's recording: on or off, and the file name base (`filename`); with the room's
    /// `lock_record`, only with its `secret`.
    pub record: Option<bool>,
    pub filename: Option<String>,
    pub secret: Option<String>,
    /// A publisher's codec of choice for its offer (one the room allows).
    pub audiocodec: Option<String>,
    pub videocodec: Option<String>,
    /// A publisher's `descriptions` of its streams.
    pub descriptions: Descriptions,
}

/// A publisher's `descriptions`: each entry a published mid and its text. A wrong entry is an
/// error only a publisher's `configure` answers (Janus does not read the field of a
/// subscriber's), so the parse result is kept as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Descriptions(pub Result<Vec<(Mid, String)>, VideoRoomError>);

impl Default for Descriptions {
    fn default() -> Self {
        Self(Ok(Vec::new()))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigureStream {
    pub mid: Option<Mid>,
    pub send: Option<bool>,
    pub layers: LayerChoice,
    pub delay: DelayChoice,
    /// A publisher's: ask it for a keyframe.
    pub keyframe: bool,
}

/// `subscribe` (`subscribe` only), `unsubscribe` (`unsubscribe` only) or `update` (either or both).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub subscribe: Vec<SubscribeStream>,
    pub unsubscribe: Vec<UnsubscribeStream>,
}

/// What to stop receiving: one m-line (`sub_mid`), or a publisher's streams (`feed`, all or `mid`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnsubscribeStream {
    pub feed: Option<ParticipantId>,
    pub mid: Option<Mid>,
    pub sub_mid: Option<Mid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwitchStream {
    pub feed: ParticipantId,
    pub mid: Mid,
    pub sub_mid: Mid,
    /// Simulcast layers for the new source (Janus resets them: absent means the highest).
    pub layers: LayerChoice,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublisherJoin {
    pub id: Option<ParticipantId>,
    pub display: Option<String>,
    pub metadata: Option<Value>,
    /// Its own talk detection settings (`audio_active_packets`, `audio_level_average`; 0: the
    /// room's), read as Janus reads them: anything but a positive integer is 0.
    pub audio_active_packets: u64,
    pub audio_level_average: u64,
}

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
