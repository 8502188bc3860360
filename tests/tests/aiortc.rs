//! Interop with a second, independent WebRTC stack: aiortc's own Janus VideoRoom client (the
//! `janus.py` example Debian ships with `python3-aiortc`, unmodified: HTTP long-poll, `join`,
//! `configure` with an offer to publish, the legacy `feed` subscribe, `start`). Two of them run
//! against Portunus: the first publishes, the second publishes and subscribes to the first,
//! recording what it receives; the recording must hold decodable video. aiortc gathers no
//! candidates on loopback interfaces, so everything runs inside `tests/tools/netns-run`.

use portunus_tests::procs::binaries;
use std::path::{Path, PathBuf};
use std::process::Command;

fn need(path: &Path, install: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {install} (tests/run.sh does this)", path.display());
    path.to_owned()
}

#[test]
fn aiortcs_janus_client_publishes_and_subscribes_through_portunus() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let netns = need(&here.join("tools/netns-run"), "the repository is complete");
    let example = need(
        Path::new("/usr/share/doc/python3-aiortc/examples/janus/janus.py"),
        "apt-get install python3-aiortc python3-aiohttp",
    );
    let gateway = binaries().0.clone();
    let dir = std::env::temp_dir().join(format!("portunus-aiortc-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("portunus.toml"), "bind = \"127.0.0.1\"\nmedia_ips = [\"127.0.0.2\"]\nlog = \"warn\"\n")
        .unwrap();
    // Waits for `line` in `file` (the example prints "Exchanging media" once it has published,
    // and subscribed if it could).
    let script = format!(
        r#"
set -u
# Job control: background jobs of a non-interactive shell ignore SIGINT otherwise, and the
# example stops (finishing its recording) on SIGINT.
set -m
cd "{dir}"
"{gateway}" --config portunus.toml > gateway.log 2>&1 &
GW=$!
A=; B=
trap 'kill $GW $A $B 2>/dev/null' EXIT INT TERM
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8088) 2>/dev/null && break; sleep 0.1; done
wait_for() {{ for i in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout waiting for $2 in $1"; return 1; }}
/usr/bin/python3 "{example}" http://127.0.0.1:8088/janus > a.log 2>&1 &
A=$!
wait_for a.log "Exchanging media" || exit 1
/usr/bin/python3 "{example}" http://127.0.0.1:8088/janus --record-to "{dir}/b.mp4" > b.log 2>&1 &
B=$!
wait_for b.log "Exchanging media" || exit 1
sleep 6
kill -INT $B; timeout 20 tail --pid=$B -f /dev/null
kill -INT $A; timeout 20 tail --pid=$A -f /dev/null
/usr/bin/python3 -c 'import av, sys; c = av.open(sys.argv[1]); s = c.streams.video[0]; n = sum(1 for _ in c.decode(s)); print("FRAMES", n, s.codec_context.width, s.codec_context.height)' "{dir}/b.mp4"
"#,
        dir = dir.display(),
        gateway = gateway.display(),
        example = example.display(),
    );
    std::fs::write(dir.join("run.sh"), script).unwrap();
    let out = Command::new("timeout").arg("90").arg(&netns).arg("--").arg("bash").arg(dir.join("run.sh")).output();
    let stdout = out.as_ref().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let logs = ["a.log", "b.log", "gateway.log"]
        .iter()
        .map(|f| format!("== {f}\n{}", std::fs::read_to_string(dir.join(f)).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n");
    let _ = std::fs::remove_dir_all(&dir);
    let frames: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FRAMES "))
        .map(|f| f.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| panic!("no recording ({out:?})\n{stdout}\n{logs}"));
    let [n, width, height] = frames[..] else { panic!("{frames:?}") };
    eprintln!("aiortc recorded {n} frames of {width}x{height} through Portunus");
    assert!(n >= 60, "about 6 s of video decoded, got {n} frames\n{logs}");
    assert!(width > 0 && height > 0, "{frames:?}");
}
