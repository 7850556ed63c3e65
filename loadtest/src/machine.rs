//! What the machine was doing while a load ran (issue 19: a figure is only as good as the
//! machine it came from): its load average and the share of CPU time its hypervisor stole, and
//! pinning the generator and the server to cores of their own so their figures do not blur.

use anyhow::{Context, bail};

/// The machine's counters at one moment.
pub struct Sample {
    /// CPUs the machine has (not only those this process may use once pinned).
    cores: usize,
    load: String,
    /// All CPU time and the stolen part, in clock ticks, from /proc/stat.
    total: u64,
    steal: u64,
}

pub fn sample() -> anyhow::Result<Sample> {
    let load = std::fs::read_to_string("/proc/loadavg")?;
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("/proc/stat is empty")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Ok(Sample {
        cores,
        load,
        total: f.iter().sum(),
        steal: f.get(7).copied().unwrap_or(0),
    })
}

/// One line for the report: cores, load average before and after, steal over the run.
pub fn describe(before: &Sample, after: &Sample) -> String {
    let cores = after.cores;
    let total = after.total.saturating_sub(before.total).max(1);
    let steal = after.steal.saturating_sub(before.steal) as f64 / total as f64 * 100.0;
    format!(
        "{cores} cores; load average {} -> {}; steal {steal:.2} % of CPU time over the run",
        before.load, after.load
    )
}

/// Min, median and max of repeated runs' figures (at least one): what a figure is given with.
pub fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

/// Pins this process (every thread) to `core` with taskset.
pub fn pin_self(core: usize) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset could not pin the load generator to core {core}");
    }
    Ok(())
}

/// One measured window on a running server: its CPU over the window (% of one core), the
/// window's wall time, what the caller counted at its two ends, and the machine's line.
pub struct Window<T> {
    pub cpu_pct: f64,
    pub wall: f64,
    pub before: T,
    pub after: T,
    pub machine: String,
}

/// `runs` windows of `seconds`, one after the other from now on the same load, their ends on
/// a fixed grid (so they do not drift past a load that stops at a set time): in each, the
/// server's CPU, `count` read at both ends, and the machine's load and steal.
pub async fn windows<T: Clone, F, Fut>(
    pid: u32,
    seconds: u64,
    runs: usize,
    mut count: F,
) -> anyhow::Result<Vec<Window<T>>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let first = std::time::Instant::now();
    let (mut cpu, mut counted, mut at) = (crate::cpu_ticks(pid)?, count().await?, first);
    let mut out = Vec::with_capacity(runs);
    for w in 1..=runs {
        let machine_before = sample()?;
        let end = first + std::time::Duration::from_secs(seconds) * w as u32;
        tokio::time::sleep_until(end.into()).await;
        let (cpu_now, counted_now) = (crate::cpu_ticks(pid)?, count().await?);
        let now = std::time::Instant::now();
        let wall = now.duration_since(at).as_secs_f64();
        out.push(Window {
            cpu_pct: (cpu_now - cpu) as f64 / 100.0 / wall * 100.0,
            wall,
            before: std::mem::replace(&mut counted, counted_now.clone()),
            after: counted_now,
            machine: describe(&machine_before, &sample()?),
        });
        (cpu, at) = (cpu_now, now);
    }
    Ok(out)
}

/// [`windows`] of a media server `who` handling datagrams, `count` their running total:
/// each window's CPU and datagrams per core-second printed, then their spread.
pub async fn datagram_windows<F, Fut>(
    who: &str,
    pid: u32,
    seconds: u64,
    runs: usize,
    count: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let mut figures = Vec::new();
    for (i, w) in windows(pid, seconds, runs, count)
        .await?
        .into_iter()
        .enumerate()
    {
        let per_second = (w.after - w.before) / w.wall;
        let per_core = per_second / (w.cpu_pct / 100.0).max(1e-9);
        println!(
            "window {}: {who} CPU {:.1} % of one core; {per_second:.0} datagrams/s, {per_core:.0} per core-second; {}",
            i + 1,
            w.cpu_pct,
            w.machine
        );
        figures.push((w.cpu_pct, per_core));
    }
    let (c0, c1, c2) = spread(figures.iter().map(|f| f.0).collect());
    let (p0, p1, p2) = spread(figures.iter().map(|f| f.1).collect());
    println!(
        "over {runs} windows: {who} CPU min {c0:.1} %, median {c1:.1} %, max {c2:.1} %; datagrams per core-second min {p0:.0}, median {p1:.0}, max {p2:.0}"
    );
    Ok(())
}
