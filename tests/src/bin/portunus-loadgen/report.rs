//! The side-by-side report: result files of several servers (one label each) in, a Markdown
//! table of values and ratios against a baseline server and PNG plots of the fanout steps out.

use crate::client::Result;
use plotters::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Directory for results.md and the plots.
    #[arg(long)]
    pub out: PathBuf,
    /// The server the ratios compare against (its --label).
    #[arg(long, default_value = "janus")]
    pub baseline: String,
    /// A TrueType font for the plots' text.
    #[arg(long, default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    pub font: PathBuf,
    /// Result files written by the scenarios' --json.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
}

struct Metric {
    name: &'static str,
    lower_is_better: bool,
    /// Formats a value for the table.
    digits: usize,
}

/// Every server's value of one metric, the servers in report order.
struct Row {
    metric: Metric,
    values: Vec<Option<f64>>,
}

pub fn run(a: ReportArgs) -> Result<()> {
    let mut files = Vec::new();
    for p in &a.results {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push(serde_json::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    // Servers in the order they first appear, the baseline last (so ratios read left to right).
    let mut servers: Vec<String> = Vec::new();
    for f in &files {
        let s = f["server"].as_str().unwrap_or("server").to_owned();
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    if let Some(i) = servers.iter().position(|s| *s == a.baseline) {
        let b = servers.remove(i);
        servers.push(b);
    }
    let find = |server: &str, scenario: &str| {
        files.iter().find(|f| f["server"].as_str() == Some(server) && f["scenario"].as_str() == Some(scenario))
    };

    let mut md = String::new();
    writeln!(md, "Ratios are the other server's cost over this one's (or this one's throughput over the other's):")?;
    writeln!(md, "above 1 means better than `{}`.\n", a.baseline)?;

    // Fanout: one table per step count all servers measured, then a summary.
    let fanouts: Vec<Option<&Value>> = servers.iter().map(|s| find(s, "fanout")).collect();
    let step = |f: Option<&Value>, n: u64| -> Option<Value> {
        f?["steps"].as_array()?.iter().find(|s| s["subscribers"].as_u64() == Some(n)).cloned()
    };
    let ns: BTreeSet<u64> = fanouts
        .iter()
        .flatten()
        .flat_map(|f| f["steps"].as_array().into_iter().flatten().filter_map(|s| s["subscribers"].as_u64()))
        .collect();
    if !ns.is_empty() {
        writeln!(md, "### Fanout: 1 publisher -> N subscribers\n")?;
        let mut rows = Vec::new();
        for &n in &ns {
            let at = |get: &dyn Fn(&Value) -> Option<f64>| {
                fanouts.iter().map(|f| step(*f, n).and_then(|s| get(&s))).collect()
            };
            type Get = fn(&Value) -> Option<f64>;
            // (metric, lower is better, digits, value at a step).
            let per_step: [(&str, bool, usize, Get); 7] = [
                ("server CPU-µs per forwarded packet", true, 1, |s| s["server_cpu_us_per_forwarded_packet"].as_f64()),
                ("loss %", true, 2, |s| s["loss_pct"].as_f64()),
                ("forwarded packets per second", false, 0, |s| s["forwarded_per_second"].as_f64()),
                // Whether the load generator, on its one core, kept up with what it measured.
                ("load generator's share of its core", true, 2, |s| s["load_generator_cpu_share"].as_f64()),
                // A server that delivered nothing has no latency.
                ("one-way latency p50 (ms)", true, 2, |s| {
                    s["latency_ms"]["p50"].as_f64().filter(|_| s["packets_received"].as_u64() > Some(0))
                }),
                ("one-way latency p99 (ms)", true, 2, |s| {
                    s["latency_ms"]["p99"].as_f64().filter(|_| s["packets_received"].as_u64() > Some(0))
                }),
                ("server RSS per subscriber (KiB)", true, 0, |s| {
                    s["server"]["rss_bytes_per_subscriber"].as_f64().map(|b| b / 1024.0)
                }),
            ];
            for (name, lower_is_better, digits, get) in per_step {
                let name = leak(format!("N={n}: {name}"));
                rows.push(Row { metric: Metric { name, lower_is_better, digits }, values: at(&get) });
            }
        }
        rows.push(Row {
            metric: Metric { name: "server RSS for the publisher (KiB)", lower_is_better: true, digits: 0 },
            values: fanouts
                .iter()
                .map(|f| f.and_then(|f| f["server_rss_bytes_publisher"].as_f64()).map(|b| b / 1024.0))
                .collect(),
        });
        rows.push(Row {
            metric: Metric { name: "largest N with loss <= 0.5 %", lower_is_better: false, digits: 0 },
            values: fanouts.iter().map(|f| f.and_then(|f| f["max_subscribers_within_loss"].as_f64())).collect(),
        });
        table(&mut md, &servers, &rows)?;
        plots(&a, &servers, &fanouts, &ns)?;
        writeln!(md, "\n![server CPU per forwarded packet](fanout-cpu.png)\n![p99 latency](fanout-latency.png)\n")?;
    }

    let forwards: Vec<Option<&Value>> = servers.iter().map(|s| find(s, "forward")).collect();
    if forwards.iter().any(Option::is_some) {
        writeln!(md, "### Forwarders and recording: 1 publisher -> K `rtp_forward` sinks, then recorded\n")?;
        let ks: BTreeSet<u64> = forwards
            .iter()
            .flatten()
            .flat_map(|f| f["steps"].as_array().into_iter().flatten().filter_map(|s| s["forwarders"].as_u64()))
            .collect();
        let mut rows = Vec::new();
        for &k in &ks {
            rows.push(Row {
                metric: Metric {
                    name: leak(format!("K={k}: server CPU-µs per forwarded packet")),
                    lower_is_better: true,
                    digits: 2,
                },
                values: forwards
                    .iter()
                    .map(|f| {
                        f.and_then(|f| {
                            f["steps"].as_array()?.iter().find(|s| s["forwarders"].as_u64() == Some(k)).cloned()
                        })
                        .and_then(|s| s["server_cpu_us_per_forwarded_packet"].as_f64())
                    })
                    .collect(),
            });
        }
        rows.push(Row {
            metric: Metric { name: "recording: server CPU % of a core per stream", lower_is_better: true, digits: 2 },
            values: forwards
                .iter()
                .map(|f| f.and_then(|f| f["recording"]["cpu_share_per_stream"].as_f64()).map(|v| v * 100.0))
                .collect(),
        });
        table(&mut md, &servers, &rows)?;
    }

    let rooms: Vec<Option<&Value>> = servers.iter().map(|s| find(s, "rooms")).collect();
    if rooms.iter().any(Option::is_some) {
        let shape =
            rooms.iter().flatten().next().map(|r| format!("{} x (1 + {})", r["rooms"], r["subscribers_per_room"]));
        writeln!(md, "### Rooms: {}\n", shape.unwrap_or_default())?;
        let get = |f: &dyn Fn(&Value) -> Option<f64>| rooms.iter().map(|r| r.and_then(|r| f(&r["result"]))).collect();
        let rows = vec![
            Row {
                metric: Metric { name: "server CPU-µs per forwarded packet", lower_is_better: true, digits: 1 },
                values: get(&|r| r["server_cpu_us_per_forwarded_packet"].as_f64()),
            },
            Row {
                metric: Metric { name: "loss %", lower_is_better: true, digits: 2 },
                values: get(&|r| r["loss_pct"].as_f64()),
            },
            Row {
                metric: Metric { name: "one-way latency p99 (ms)", lower_is_better: true, digits: 2 },
                values: get(&|r| r["latency_ms"]["p99"].as_f64()),
            },
            Row {
                metric: Metric { name: "join -> first keyframe p50 (ms)", lower_is_better: true, digits: 0 },
                values: get(&|r| r["join_to_first_keyframe_ms"]["p50"].as_f64()),
            },
        ];
        table(&mut md, &servers, &rows)?;
    }

    let signaling: Vec<Option<&Value>> = servers.iter().map(|s| find(s, "signaling")).collect();
    if signaling.iter().any(Option::is_some) {
        let clients = signaling.iter().flatten().next().map(|s| s["clients"].to_string()).unwrap_or_default();
        writeln!(md, "### Signaling: {clients} clients looping create, attach, join, leave, detach, destroy\n")?;
        let get =
            |f: &dyn Fn(&Value) -> Option<f64>| signaling.iter().map(|r| r.and_then(|r| f(&r["result"]))).collect();
        let rows = vec![
            Row {
                metric: Metric { name: "requests per second", lower_is_better: false, digits: 0 },
                values: get(&|r| r["requests_per_second"].as_f64()),
            },
            Row {
                metric: Metric { name: "requests per server CPU-second", lower_is_better: false, digits: 0 },
                values: get(&|r| r["requests_per_server_cpu_second"].as_f64()),
            },
            Row {
                metric: Metric { name: "latency p50 (ms)", lower_is_better: true, digits: 3 },
                values: get(&|r| r["latency_ms"]["p50"].as_f64()),
            },
            Row {
                metric: Metric { name: "latency p99 (ms)", lower_is_better: true, digits: 3 },
                values: get(&|r| r["latency_ms"]["p99"].as_f64()),
            },
            Row {
                metric: Metric { name: "failed cycles", lower_is_better: true, digits: 0 },
                values: get(&|r| r["failed_cycles"].as_f64()),
            },
        ];
        table(&mut md, &servers, &rows)?;
    }
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("results.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// Metric names built per step live as long as the (short) report run.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn table(md: &mut String, servers: &[String], rows: &[Row]) -> Result<()> {
    let baseline = servers.len() - 1;
    write!(md, "| metric |")?;
    for s in servers {
        write!(md, " {s} |")?;
    }
    for s in &servers[..baseline] {
        write!(md, " {s} vs {} |", servers[baseline])?;
    }
    writeln!(md)?;
    writeln!(md, "|---|{}", "---:|".repeat(servers.len() * 2 - 1))?;
    for r in rows {
        write!(md, "| {} |", r.metric.name)?;
        for v in &r.values {
            match v {
                Some(v) => write!(md, " {:.*} |", r.metric.digits, v)?,
                None => write!(md, " – |")?,
            }
        }
        for v in &r.values[..baseline] {
            let ratio = match (*v, r.values[baseline]) {
                (Some(v), Some(b)) if r.metric.lower_is_better && v > 0.0 => Some(b / v),
                (Some(v), Some(b)) if !r.metric.lower_is_better && b > 0.0 => Some(v / b),
                _ => None,
            };
            match ratio {
                Some(x) => write!(md, " {x:.2}× |")?,
                None => write!(md, " – |")?,
            }
        }
        writeln!(md)?;
    }
    writeln!(md)?;
    Ok(())
}

/// Line plots over N of the fanout steps: server CPU per forwarded packet, and p99 latency.
fn plots(a: &ReportArgs, servers: &[String], fanouts: &[Option<&Value>], ns: &BTreeSet<u64>) -> Result<()> {
    let font =
        std::fs::read(&a.font).map_err(|e| format!("font {}: {e} (Debian: fonts-dejavu-core)", a.font.display()))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| "the plot font is not a TrueType font")?;
    std::fs::create_dir_all(&a.out)?;
    // Only steps within the run's loss limit: a collapsed server's cost per delivered packet
    // and latency (capped at the histogram's end) would only flatten the others' curves; the
    // table shows those steps.
    let series = |get: &dyn Fn(&Value) -> Option<f64>| -> Vec<Vec<(f64, f64)>> {
        fanouts
            .iter()
            .map(|f| {
                let limit = f.and_then(|f| f["max_loss_pct"].as_f64()).unwrap_or(0.5);
                f.and_then(|f| f["steps"].as_array())
                    .into_iter()
                    .flatten()
                    .filter(|s| s["loss_pct"].as_f64().is_some_and(|l| l <= limit))
                    .filter_map(|s| Some((s["subscribers"].as_f64()?, get(s)?)))
                    .collect()
            })
            .collect()
    };
    let max_n = *ns.last().unwrap_or(&1) as f64;
    for (file, title, y, data) in [
        (
            "fanout-cpu.png",
            "Server CPU per forwarded packet (steps within the loss limit)",
            "CPU-µs per packet",
            series(&|s| s["server_cpu_us_per_forwarded_packet"].as_f64()),
        ),
        (
            "fanout-latency.png",
            "One-way latency p99 (steps within the loss limit)",
            "ms",
            series(&|s| s["latency_ms"]["p99"].as_f64()),
        ),
    ] {
        let path = a.out.join(file);
        let root = BitMapBackend::new(&path, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_y = data.iter().flatten().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..max_n * 1.05, 0f64..max_y)?;
        chart.configure_mesh().x_desc("subscribers (N)").y_desc(y).label_style(("sans-serif", 14)).draw()?;
        for (i, (server, points)) in servers.iter().zip(&data).enumerate() {
            // Colours that read on white, in a fixed order (the baseline is last).
            let color = [BLUE, RED, BLACK, GREEN, MAGENTA, CYAN][i % 6].to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(server.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        root.present()?;
    }
    Ok(())
}
