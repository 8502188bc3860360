//! portunus-loadgen: load for any Janus-compatible server (Portunus or Janus itself) over the
//! Janus WebSocket API, with real WebRTC peers (webrtc-rs, DTLS-SRTP) and no encoder.
//!
//!   portunus-loadgen fanout    --ws URL --subscribers 10,25,50 --duration SECS --json FILE
//!   portunus-loadgen rooms     --ws URL --rooms R --duration SECS --json FILE
//!   portunus-loadgen signaling --ws URL --clients K --duration SECS --json FILE
//!   portunus-loadgen soak      --ws URL --duration SECS --metrics URL --json FILE
//!   portunus-loadgen report    --out DIR RESULT.json...
//!
//! `--server-pid PID` (repeatable) samples those processes' CPU time and memory from /proc
//! around each measuring window, so results carry the server's cost per packet or request.

mod client;
mod forward;
mod media;
mod pool;
mod procstat;
mod report;
mod room;
mod scenarios;
mod soak;

use clap::{Parser, Subcommand};
use indicatif::MultiProgress;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "portunus-loadgen", about = "Load and benchmarks for Janus-API servers (Portunus, Janus)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One publisher, subscribers stepping up until loss exceeds the limit.
    Fanout(scenarios::FanoutArgs),
    /// R rooms of one publisher and a few subscribers each.
    Rooms(scenarios::RoomsArgs),
    /// K clients looping create, attach, join, leave, detach, destroy.
    Signaling(scenarios::SignalingArgs),
    /// Rooms opened and closed for a long time, the server's memory, descriptors and tasks sampled.
    Soak(soak::SoakArgs),
    /// One publisher forwarded to K local UDP sinks, K stepping up, then recorded: the server
    /// CPU each costs.
    Forward(forward::ForwardArgs),
    /// Side-by-side table (Markdown) and plots (PNG) from result files.
    Report(report::ReportArgs),
}

/// Options every scenario takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The server's Janus WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8188/")]
    pub ws: String,
    /// Seconds of measuring (per step for fanout).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Where to write the results as JSON (they are printed on stdout too).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Server processes whose CPU and memory to sample (repeatable).
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// The IP the peers' ICE uses (one UDP port per peer).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The server's name in the results and the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// The server's `api_secret`, sent as `apisecret` in every request.
    #[arg(long)]
    pub apisecret: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    let multi = MultiProgress::new();
    let common = match &cli.command {
        Command::Report(_) => None,
        Command::Fanout(a) => Some(&a.common),
        Command::Rooms(a) => Some(&a.common),
        Command::Signaling(a) => Some(&a.common),
        Command::Soak(a) => Some(&a.common),
        Command::Forward(a) => Some(&a.common),
    };
    if let Some(secret) = common.and_then(|c| c.apisecret.clone()) {
        client::set_apisecret(secret);
    }
    let (json, result) = match cli.command {
        Command::Report(a) => {
            if let Err(e) = report::run(a) {
                eprintln!("portunus-loadgen report: {e}");
                std::process::exit(1);
            }
            return;
        }
        Command::Fanout(a) => (a.common.json.clone(), run(scenarios::fanout(a, &multi))),
        Command::Rooms(a) => (a.common.json.clone(), run(scenarios::rooms(a, &multi))),
        Command::Signaling(a) => (a.common.json.clone(), run(scenarios::signaling(a, &multi))),
        Command::Soak(a) => (a.common.json.clone(), run(soak::soak(a, &multi))),
        Command::Forward(a) => (a.common.json.clone(), run(forward::forward(a))),
    };
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("portunus-loadgen: {e}");
            std::process::exit(1);
        }
    };
    let text = serde_json::to_string_pretty(&value).expect("JSON");
    println!("{text}");
    if let Some(path) = json {
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("portunus-loadgen: writing {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    // A run that broke partway still wrote what it measured; it fails all the same.
    if value.get("error").is_some() {
        eprintln!("portunus-loadgen: {}", value["error"]);
        std::process::exit(1);
    }
}

/// Runs a scenario on an actix system (the Janus client is awc's).
fn run(f: impl std::future::Future<Output = client::Result<serde_json::Value>>) -> client::Result<serde_json::Value> {
    actix::System::new().block_on(f)
}
