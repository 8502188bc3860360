//! The servers' CPU time and memory, read from /proc: the load generator samples the PIDs it
//! is given around each measuring window, so every result carries the server's own cost.

use serde_json::{json, Value};

/// CPU seconds (user + system, all threads) and resident memory of a set of processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second on every architecture it runs on.
const TICKS_PER_S: f64 = 100.0;

fn one(pid: u32) -> std::io::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let cpu_s = (ticks(11) + ticks(12)) as f64 / TICKS_PER_S;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Sample { cpu_s, rss_bytes: rss_kb * 1024 })
}

/// The sum over `pids`; an empty list samples nothing (all zeros).
pub fn sample(pids: &[u32]) -> std::io::Result<Sample> {
    let mut total = Sample::default();
    for &pid in pids {
        let s = one(pid).map_err(|e| std::io::Error::other(format!("/proc/{pid}: {e}")))?;
        total.cpu_s += s.cpu_s;
        total.rss_bytes += s.rss_bytes;
    }
    Ok(total)
}

/// The server's cost over a window, as JSON (null when no PID was given).
pub fn window(pids: &[u32], before: Sample, after: Sample, secs: f64) -> Value {
    if pids.is_empty() {
        return Value::Null;
    }
    let cpu = after.cpu_s - before.cpu_s;
    json!({"cpu_seconds": cpu, "cpu_share": cpu / secs, "rss_bytes": after.rss_bytes})
}
