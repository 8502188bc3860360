//! Configuration: built-in defaults < `--config FILE` (TOML) < `PORTUNUS_*` environment
//! variables < command-line flags. `deploy/portunus.example.toml` documents every key.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;

/// Everything a Portunus process can be told. Field docs say why each default is what it is.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the gateway listens on.
    pub bind: String,
    /// Janus WebSocket port (Janus's default).
    pub ws_port: u16,
    /// Janus HTTP REST/long-poll port (Janus's default).
    pub http_port: u16,
    /// Metrics, health and readiness port (kept off the client-facing ports).
    pub admin_port: u16,
    /// The Admin API over WebSocket (subprotocol `janus-admin-protocol`); absent: off, as
    /// Janus's `admin_ws` is by default (7188 is Janus's port for it).
    pub admin_ws_port: Option<u16>,
    /// HTTP base path (Janus's default `/janus`).
    pub http_base_path: String,
    /// Seconds without activity before a session is reaped; 60 is Janus's default and janus.js
    /// sends keepalives every 25 s. 0 disables reaping (sessions may then be orphaned).
    pub session_timeout: u64,
    /// Seconds a WebSocket's sessions stay claimable after the socket closes; 0 (Janus's
    /// default) destroys them at once.
    pub reclaim_timeout: u64,
    /// Redis URL; absent means standalone mode (in-memory state, one in-process media node).
    pub redis_url: Option<String>,
    /// CORS origin to allow; absent allows `*` like Janus.
    pub allow_origin: Option<String>,
    /// Janus's `api_secret`: when set, every request but `info` and `ping` must carry it as
    /// `apisecret` (or a valid `token`), else 403.
    pub api_secret: Option<String>,
    /// Janus's `token_auth`: requests may be authorized by a `token`: one added over the Admin
    /// API (stored cluster-wide), or, with `token_auth_secret`, one signed with that secret.
    pub token_auth: bool,
    /// Janus's `token_auth_secret`: tokens are HMAC-SHA1-signed (`<expiry>,janus,<plugin>...:<sig>`)
    /// instead of stored.
    pub token_auth_secret: Option<String>,
    /// Janus's `admin_secret`: the Admin API's requests (but `info` and `ping`) must carry it.
    pub admin_secret: Option<String>,
    /// The VideoRoom's `admin_key` (Janus's): when set, `create` must carry it as `admin_key`
    /// (room creation is locked to whoever has it), and `list` with it shows private rooms.
    pub admin_key: Option<String>,
    /// Where a media node writes recordings (`.mjr`) of rooms that name no `rec_dir` (Janus
    /// writes them to its working folder).
    pub rec_dir: String,
    /// Janus's `protected_folders`: where the Admin API's packet captures may not be written (a
    /// folder and everything under it, links followed). Janus's defaults.
    pub protected_folders: Vec<String>,
    /// Janus's `lock_rtp_forward`: with an `admin_key`, `rtp_forward` must carry it too.
    pub lock_rtp_forward: bool,
    /// The VideoRoom's `string_ids` (Janus's): room and participant ids are strings in every
    /// request, event and listing (for applications that name their rooms), not numbers.
    pub string_ids: bool,
    /// Where RTP forwarders may send (address ranges, `10.0.0.0/8` or single addresses). A
    /// forwarder sends a stream of UDP wherever it is told: by default only to loopback and
    /// private networks.
    pub rtp_forward_allowed: Vec<String>,
    /// Requests per second one WebSocket connection may make (a burst of twice as many is let
    /// through); more are answered with error 429 until the rate falls. 0: no limit.
    pub rate_limit_per_connection: u32,
    /// Requests per second from one source address, over every connection and HTTP request of
    /// that address to this gateway (burst twice as many); more get 429. 0: no limit.
    pub rate_limit_per_address: u32,
    /// TLS for every listener (`wss://`, `https://`, the admin port): a certificate chain and
    /// its private key, both PEM files. Both or neither.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// A folder of static pages served from the HTTP port under `/demos/` (e.g. Debian's
    /// `/usr/share/janus/demos`), with its `settings.js` answered so the pages talk to this server.
    pub demos_dir: Option<String>,
    /// Largest request accepted, in bytes (1 MiB: an SDP with many m-lines stays far below).
    pub max_message_size: usize,
    /// Sessions this deployment holds at most.
    pub max_sessions: usize,
    /// Sessions one WebSocket connection may create or claim.
    pub max_sessions_per_connection: usize,
    /// Handles one session may attach.
    pub max_handles_per_session: usize,
    /// VideoRoom rooms at most.
    pub max_rooms: usize,
    /// Seconds between WebSocket pings (keeps proxies from idling the socket out).
    pub ws_ping_interval: u64,
    /// Seconds without any frame from a WebSocket peer before it is considered dead.
    pub ws_client_timeout: u64,
    /// Milliseconds a WebSocket reply that announces an event (an `ack`, a `detach`'s
    /// `success`) may wait for it, to leave in the same write; 0 writes it at once, as Janus.
    pub ws_reply_hold_ms: u64,
    /// Seconds a long-poll waits before answering `{"janus":"keepalive"}` (Janus: 30).
    pub longpoll_timeout: u64,
    /// How the HTTP transport (the Admin API's HTTP included) and the WebSocket transport lay
    /// out their JSON (Janus's transports' `json`: `compact`, `plain`, `indented`).
    pub http_json: crate::janus::layout::Layout,
    pub ws_json: crate::janus::layout::Layout,
    /// Milliseconds a gateway waits for a media node's answer before replying 462.
    pub rpc_timeout_ms: u64,
    /// HTTP worker threads per listener; 0 means one per CPU.
    pub workers: usize,
    /// Threads a media node runs its rooms on, each room (its peers and forwarding) on one of
    /// them for its whole life; 0 means one per CPU the process may run on.
    pub media_workers: usize,
    /// Seconds a draining process (SIGTERM, or an admin request) keeps serving before it exits:
    /// a media node leaves earlier once its rooms are empty, a gateway once its sockets closed.
    pub drain_timeout: u64,
    /// This media node's name (standalone: `local`).
    pub node_id: String,
    /// Addresses media nodes gather ICE host candidates on. `0.0.0.0` means every interface
    /// except loopback (browsers gather no loopback candidates either); list `127.0.0.1` for
    /// tests on one machine.
    pub media_ips: Vec<String>,
    /// First and last UDP port media may use (inclusive); both 0: ephemeral ports. A range lets
    /// a firewall or a Kubernetes pod open just these.
    pub media_port_min: u16,
    pub media_port_max: u16,
    /// One UDP port for every PeerConnection of a media node (on each of `media_ips`),
    /// instead of one per PeerConnection; 0: off. Takes precedence over the range.
    pub media_port: u16,
    /// The address clients reach this node at when it sits behind a 1:1 NAT (Janus's
    /// `nat_1_1_mapping`): announced instead of the bound addresses.
    pub public_ip: Option<String>,
    /// STUN/TURN server URLs (`stun:host:3478`, `turn:host:3478?transport=udp`) media nodes
    /// gather reflexive/relayed candidates through (Janus's `stun_server`/`turn_server`).
    pub ice_servers: Vec<String>,
    /// Credentials for the TURN servers in `ice_servers`.
    pub turn_username: Option<String>,
    pub turn_password: Option<String>,
    /// Packets lost in a second on one stream before its handle gets a `slowlink` event
    /// (Janus's `slowlink_threshold`; 0, Janus's default, disables it).
    pub slowlink_threshold: u32,
    /// Seconds a publisher stream may be silent before its handle gets a `media` event with
    /// `receiving: false` (Janus's `no_media_timer`; 0: never).
    pub no_media_timer: u32,
    /// The shortest a sent packet is kept for retransmission, in ms (Janus's `min_nack_queue`,
    /// at most 1000; a stream keeps its RTT + 100 ms above it).
    pub min_nack_queue: u32,
    /// Empty a stream's retransmission history when a keyframe is sent (Janus's
    /// `nack_optimizations`).
    pub nack_optimizations: bool,
    /// `tracing` filter when RUST_LOG is not set.
    pub log: String,
    /// Ship Janus's sample room 1234 ("Demo Room") so the official demos work.
    pub demo_room: bool,
    /// Rooms created at start-up, each with the keys of a VideoRoom `create` request.
    pub rooms: Vec<Map<String, Value>>,
}

/// The longest a WebSocket reply may wait for the event it announces: a client's `ack` late by
/// more than this would be a hang, not a saving.
pub const MAX_WS_REPLY_HOLD_MS: u64 = 100;

/// A thread each: more than any machine has cores is a typo.
pub const MAX_MEDIA_WORKERS: usize = 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".into(),
            ws_port: 8188,
            http_port: 8088,
            admin_port: 7088,
            admin_ws_port: None,
            http_base_path: "/janus".into(),
            session_timeout: 60,
            reclaim_timeout: 0,
            redis_url: None,
            allow_origin: None,
            api_secret: None,
            token_auth: false,
            token_auth_secret: None,
            admin_secret: None,
            admin_key: None,
            lock_rtp_forward: false,
            string_ids: false,
            rec_dir: "recordings".into(),
            protected_folders: [
                "/bin", "/boot", "/dev", "/etc", "/initrd", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys",
                "/usr", "/var",
            ]
            .map(String::from)
            .to_vec(),
            rtp_forward_allowed: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "::1/128",
                "fc00::/7",
            ]
            .map(str::to_owned)
            .to_vec(),
            rate_limit_per_connection: 100,
            rate_limit_per_address: 0,
            tls_cert: None,
            tls_key: None,
            demos_dir: None,
            max_message_size: 1 << 20,
            max_sessions: 100_000,
            max_sessions_per_connection: 100,
            max_handles_per_session: 100,
            max_rooms: 10_000,
            ws_ping_interval: 10,
            ws_client_timeout: 30,
            ws_reply_hold_ms: 2,
            longpoll_timeout: 30,
            http_json: crate::janus::layout::Layout::Compact,
            ws_json: crate::janus::layout::Layout::Compact,
            rpc_timeout_ms: 5_000,
            workers: 0,
            media_workers: 0,
            drain_timeout: 60,
            node_id: "local".into(),
            media_ips: vec!["0.0.0.0".into()],
            media_port_min: 0,
            media_port_max: 0,
            media_port: 0,
            public_ip: None,
            ice_servers: Vec::new(),
            turn_username: None,
            turn_password: None,
            slowlink_threshold: 0,
            no_media_timer: crate::tuning::Tuning::default().no_media_timer,
            min_nack_queue: crate::tuning::Tuning::default().min_nack_queue,
            nack_optimizations: false,
            log: "info".into(),
            demo_room: true,
            rooms: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file`, then `PORTUNUS_*` variables, then `flags` (key, value).
    pub fn load(file: Option<&Path>, flags: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut b = config::Config::builder();
        if let Some(f) = file {
            b = b.add_source(config::File::from(f).format(config::FileFormat::Toml).required(true));
        }
        b = b.add_source(
            config::Environment::with_prefix("PORTUNUS")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // PORTUNUS_MEDIA_IPS=10.0.0.5,127.0.0.1
                .list_separator(",")
                .with_list_parse_key("media_ips")
                .with_list_parse_key("ice_servers")
                .with_list_parse_key("rtp_forward_allowed")
                .with_list_parse_key("protected_folders"),
        );
        for (k, v) in flags {
            b = b.set_override(*k, v.as_str()).map_err(|e| ConfigError(e.to_string()))?;
        }
        let c = b.build().map_err(|e| ConfigError(e.to_string()))?;
        let cfg: Config = c.try_deserialize().map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError("tls_cert and tls_key go together".into()));
        }
        if !self.http_base_path.starts_with('/') {
            return Err(ConfigError("http_base_path must start with '/'".into()));
        }
        if self.max_message_size == 0 || self.longpoll_timeout == 0 || self.rpc_timeout_ms == 0 {
            return Err(ConfigError("max_message_size, longpoll_timeout and rpc_timeout_ms must be > 0".into()));
        }
        if self.media_workers > MAX_MEDIA_WORKERS {
            return Err(ConfigError(format!("media_workers must be at most {MAX_MEDIA_WORKERS} (0: one per CPU)")));
        }
        if self.ws_reply_hold_ms > MAX_WS_REPLY_HOLD_MS {
            return Err(ConfigError(format!("ws_reply_hold_ms must be at most {MAX_WS_REPLY_HOLD_MS} (0: no hold)")));
        }
        Ok(())
    }

    /// Settings that work but surprise: reported at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.session_timeout > 0 && self.longpoll_timeout >= self.session_timeout {
            w.push(format!(
                "longpoll_timeout ({} s) >= session_timeout ({} s): like Janus, a session whose only \
                 activity is a parked long-poll times out while parked; lower longpoll_timeout",
                self.longpoll_timeout, self.session_timeout
            ));
        }
        w
    }

    /// The media knobs as configured, before any the Admin API turned ([`crate::tuning`]).
    /// Each goes through [`Tuning::with`](crate::tuning::Tuning::with), as a knob the Admin API turns.
    pub fn tuning(&self) -> crate::tuning::Tuning {
        use crate::tuning::{Knob, Tuning};
        Tuning::default().overlaid(&[
            Knob::NoMediaTimer(self.no_media_timer),
            Knob::SlowlinkThreshold(self.slowlink_threshold),
            Knob::MinNackQueue(self.min_nack_queue),
            Knob::NackOptimizations(self.nack_optimizations),
        ])
    }

    /// The base path without a trailing slash.
    /// Whether every listener speaks TLS (a loaded configuration has both files or neither).
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    pub fn base_path(&self) -> &str {
        let p = self.http_base_path.trim_end_matches('/');
        if p.is_empty() {
            "/"
        } else {
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_example_file_documents_exactly_the_defaults() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/portunus.example.toml");
        let c = Config::load(Some(&example), &[]).unwrap();
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        // Every field of the schema is documented in the example (as `key =`, maybe commented).
        let text = std::fs::read_to_string(&example).unwrap();
        let debug = format!("{d:?}");
        let fields = debug.split([',', '{']).filter_map(|part| part.trim().split_once(": ").map(|(k, _)| k.trim()));
        for key in fields {
            let documented = text.contains(&format!("\n{key} =")) || text.contains(&format!("# {key} ="));
            assert!(documented || key == "rooms" && text.contains("[[rooms]]"), "{key} is not documented");
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("portunus-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        let mut fh = std::fs::File::create(&f).unwrap();
        writeln!(fh, "ws_port = 9000\nhttp_port = 9001\n[[rooms]]\nroom = 5\ndescription = \"five\"").unwrap();
        let c = Config::load(Some(&f), &[("http_port", "9002".into())]).unwrap();
        assert_eq!(c.ws_port, 9000);
        assert_eq!(c.http_port, 9002);
        assert_eq!(c.session_timeout, 60);
        assert_eq!(c.rooms[0].get("room").and_then(Value::as_u64), Some(5));
    }

    #[test]
    fn a_thread_count_past_any_machine_is_refused() {
        let with = |n: usize| Config::load(None, &[("media_workers", n.to_string())]);
        assert_eq!(with(MAX_MEDIA_WORKERS).unwrap().media_workers, MAX_MEDIA_WORKERS);
        let e = with(MAX_MEDIA_WORKERS + 1).unwrap_err();
        assert!(e.to_string().contains("media_workers"), "{e}");
    }

    #[test]
    fn a_reply_hold_past_a_tenth_of_a_second_is_refused() {
        let with = |ms: u64| Config::load(None, &[("ws_reply_hold_ms", ms.to_string())]);
        assert_eq!(with(MAX_WS_REPLY_HOLD_MS).unwrap().ws_reply_hold_ms, MAX_WS_REPLY_HOLD_MS);
        assert_eq!(with(0).unwrap().ws_reply_hold_ms, 0);
        let e = with(MAX_WS_REPLY_HOLD_MS + 1).unwrap_err();
        assert!(e.to_string().contains("ws_reply_hold_ms"), "{e}");
    }
}
