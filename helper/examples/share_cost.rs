//! What sharing a 1920x1080 screen costs (docs/performance.md, "Tandem Helper: capture and
//! encoding"). Three parts:
//!
//! - `encode`: each scene's pictures encoded one after the other, timed one by one, keyframe,
//!   encoded deltas and skipped pictures apart, with and without the rate control's frame skipping.
//! - `capture`: MIT-SHM capture of a 1920x1080 Xvfb screen, still and changing (the text
//!   scrolling by CopyArea and a new line put at the bottom), and capture + conversion + encoding.
//!   The capture is given back the frame it filled last, as the share thread does, so it reads
//!   only the damaged area (nothing, on a still screen).
//! - `cpu`: the product's share thread (damage, pacing, capture, encoding) on the Xvfb screen:
//!   this process's CPU (/proc/self/stat) and the X server's, still and changing 30 times a second.
//!
//! `cargo run --release -p tandem-helper --example share_cost -- encode` (or `capture`, `cpu`)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tandem_helper::encode::{Bgra, PictureOptions};
use tandem_helper::platform::x11::Display;
use tandem_helper::platform::{Capture, Frame, Source};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};
use x11rb::rust_connection::RustConnection;

#[path = "../benches/support/scenes.rs"]
mod scenes;
use scenes::{H, W, encoder};

#[derive(Parser)]
struct Args {
    part: Part,
    /// Pictures a scene (encode, capture).
    #[arg(long, default_value_t = 90)]
    frames: u32,
    /// Seconds of each CPU scenario.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Only this scene (encode).
    #[arg(long)]
    scene: Option<String>,
    /// Sampling mode (half width and height).
    #[arg(long)]
    half: bool,
    /// Milliseconds between the pictures' timestamps (encode): 33 is 30 a second, 1000 the
    /// pacing's still screen.
    #[arg(long, default_value_t = 33)]
    interval_ms: u64,
    /// Only with the rate control's frame skipping on (`true`) or off (`false`) (encode).
    #[arg(long)]
    skipping: Option<bool>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Part {
    Encode,
    Capture,
    Cpu,
}

fn main() {
    let args = Args::parse();
    match args.part {
        Part::Encode => encode(&args),
        Part::Capture => capture(&args),
        Part::Cpu => cpu(&args),
    }
}

/// Per-picture times and sizes of one run.
#[derive(Default)]
struct Tally {
    key_ms: Vec<f64>,
    key_bytes: usize,
    delta_ms: Vec<f64>,
    delta_bytes: usize,
    skipped_ms: Vec<f64>,
}

impl Tally {
    fn add(&mut self, ms: f64, au: Option<tandem_helper::encode::AccessUnit>) {
        match au {
            Some(au) if au.keyframe => {
                self.key_ms.push(ms);
                self.key_bytes += au.data.len();
            }
            Some(au) => {
                self.delta_ms.push(ms);
                self.delta_bytes += au.data.len();
            }
            None => self.skipped_ms.push(ms),
        }
    }

    /// `seconds`: the time the pictures cover.
    fn print(&self, name: &str, seconds: f64) {
        let deltas = self.delta_ms.len().max(1);
        println!(
            "{name}: keyframe {} B in {}; deltas {} a picture, {} B average; skipped {} ({}); {:.0} kbit/s",
            self.key_bytes,
            stats(&self.key_ms),
            stats(&self.delta_ms),
            self.delta_bytes / deltas,
            self.skipped_ms.len(),
            stats(&self.skipped_ms),
            (self.key_bytes + self.delta_bytes) as f64 * 8.0 / seconds / 1000.0,
        );
    }
}

/// "mean ms (min-max, n)".
fn stats(ms: &[f64]) -> String {
    if ms.is_empty() {
        return "none".into();
    }
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ms.iter().copied().fold(0.0, f64::max);
    format!("{mean:.1} ms ({min:.1}-{max:.1}, n={})", ms.len())
}

type Scene<'a> = Box<dyn Fn(u32, &mut Vec<u8>) + 'a>;

fn encode(args: &Args) {
    let base = scenes::desktop();
    let scenes: [(&str, Scene); 3] = [
        (
            "still",
            Box::new(|_, out: &mut Vec<u8>| {
                if out.is_empty() {
                    out.extend_from_slice(&base);
                }
            }),
        ),
        (
            "moving_window",
            Box::new(|i, out: &mut Vec<u8>| scenes::moving_window(&base, i, out)),
        ),
        (
            "scrolling_text",
            Box::new(|i, out: &mut Vec<u8>| scenes::scrolled(&base, i, out)),
        ),
    ];
    let options = PictureOptions {
        half: args.half,
        ..Default::default()
    };
    for (name, scene) in &scenes {
        if args.scene.as_deref().is_some_and(|s| s != *name) {
            continue;
        }
        for skip in [true, false] {
            if args.skipping.is_some_and(|s| s != skip) {
                continue;
            }
            let mut enc = encoder(skip);
            let mut frame = Vec::new();
            let mut tally = Tally::default();
            for i in 0..args.frames {
                scene(i, &mut frame);
                let started = Instant::now();
                let au = enc
                    .encode(
                        Bgra::packed(&frame, W, H),
                        options,
                        u64::from(i) * args.interval_ms,
                    )
                    .unwrap();
                tally.add(ms_since(started), au);
            }
            let skipping = if skip { "skipping on" } else { "skipping off" };
            let seconds = f64::from(args.frames) * args.interval_ms as f64 / 1000.0;
            tally.print(&format!("{name} ({skipping})"), seconds);
        }
    }
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// A 1920x1080 Xvfb showing the desktop scene, and a connection that draws on it.
struct Screen {
    xvfb: Child,
    display: String,
    conn: RustConnection,
    gc: u32,
    root: u32,
    base: Vec<u8>,
}

impl Screen {
    fn start() -> Screen {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1920x1080x24"])
            .args(["-nolisten", "tcp", "-br"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let display = format!(":{}", line.trim());
        let (conn, n) = x11rb::connect(Some(&display)).unwrap();
        let root = conn.setup().roots[n].root;
        let gc = conn.generate_id().unwrap();
        conn.create_gc(gc, root, &CreateGCAux::new().graphics_exposures(0))
            .unwrap();
        let screen = Screen {
            xvfb,
            display,
            conn,
            gc,
            root,
            base: scenes::desktop(),
        };
        screen.put(0, 0, W, H, |y| screen.base_row(y, 0, W));
        screen.conn.sync().unwrap();
        screen
    }

    fn base_row(&self, y: u32, x0: u32, x1: u32) -> &[u8] {
        let at = ((y * W) * 4) as usize;
        &self.base[at + (x0 * 4) as usize..at + (x1 * 4) as usize]
    }

    /// Puts rows of pixels at (x, y), 64 rows a request.
    fn put<'a>(&'a self, x: u32, y: u32, w: u32, h: u32, row: impl Fn(u32) -> &'a [u8]) {
        for top in (0..h).step_by(64) {
            let rows = 64.min(h - top);
            let data: Vec<u8> = (top..top + rows)
                .flat_map(|r| row(y + r))
                .copied()
                .collect();
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    self.root,
                    self.gc,
                    w as u16,
                    rows as u16,
                    x as i16,
                    (y + top) as i16,
                    0,
                    24,
                    &data,
                )
                .unwrap();
        }
    }

    /// Scrolls the text up one line (CopyArea, as a terminal or editor does) and puts picture
    /// `frame`'s new bottom line, then waits until the server has done it.
    fn scroll(&self, frame: u32) {
        use scenes::{LINE, TEXT_BOTTOM, TEXT_LEFT, TEXT_RIGHT, TEXT_TOP};
        let w = (TEXT_RIGHT - TEXT_LEFT) as u16;
        self.conn
            .copy_area(
                self.root,
                self.root,
                self.gc,
                TEXT_LEFT as i16,
                (TEXT_TOP + LINE) as i16,
                TEXT_LEFT as i16,
                TEXT_TOP as i16,
                w,
                (TEXT_BOTTOM - TEXT_TOP - LINE) as u16,
            )
            .unwrap();
        let top = TEXT_BOTTOM - LINE;
        self.put(TEXT_LEFT, top, w.into(), LINE, |y| {
            self.base_row(scenes::scrolled_row(y, frame), TEXT_LEFT, TEXT_RIGHT)
        });
        self.conn.sync().unwrap();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

trait Sync {
    fn sync(&self) -> Result<(), x11rb::errors::ReplyError>;
}

impl Sync for RustConnection {
    /// A round trip: every request before it is done.
    fn sync(&self) -> Result<(), x11rb::errors::ReplyError> {
        self.get_input_focus()?.reply().map(|_| ())
    }
}

fn capture(args: &Args) {
    let screen = Screen::start();
    let display = Display::open(Some(&screen.display)).unwrap();
    let mut cap = display.capture().unwrap();
    assert!(cap.uses_shared_memory(), "MIT-SHM");
    let mut frame = Frame::default();
    cap.capture(Source::Screen, &mut frame).unwrap();
    assert_eq!((frame.width, frame.height), (W, H));
    let options = PictureOptions {
        half: args.half,
        ..Default::default()
    };
    for changing in [false, true] {
        let name = if changing { "changing" } else { "still" };
        let mut capture_ms = Vec::new();
        for i in 0..args.frames {
            if changing {
                screen.scroll(i);
            }
            let started = Instant::now();
            cap.capture(Source::Screen, &mut frame).unwrap();
            capture_ms.push(ms_since(started));
        }
        println!("capture {name}: {}", stats(&capture_ms));
        let mut enc = encoder(true);
        let mut total = Tally::default();
        for i in 0..args.frames {
            if changing {
                screen.scroll(args.frames + i);
            }
            let started = Instant::now();
            cap.capture(Source::Screen, &mut frame).unwrap();
            let au = enc
                .encode(
                    Bgra::packed(&frame.data, frame.width, frame.height),
                    options,
                    u64::from(i) * 33,
                )
                .unwrap();
            total.add(ms_since(started), au);
        }
        total.print(
            &format!("capture+convert+encode {name}"),
            f64::from(args.frames) / 30.0,
        );
    }
}

/// CPU time of a process so far, from /proc/PID/stat (utime + stime, in clock ticks of 10 ms).
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 * 10.0
}

/// The product's share thread (`connection::share::spawn`: damage, pacing, capture, encoding)
/// on the Xvfb screen, with a 3 Mbit/s bandwidth estimate (2.55 Mbit/s for the picture): this
/// process's CPU (the thread, and the main thread's scrolling, a few X requests) and the X
/// server's, still and with the text scrolling 30 times a second.
fn cpu(args: &Args) {
    use tandem_helper::connection::share::{self, ShareCommand, ShareOut};
    let screen = Screen::start();
    let xvfb = screen.xvfb.id().to_string();
    if args.half {
        eprintln!("cpu: --half is not used (the share thread's mode is standard)");
    }
    for (name, fps) in [("still", 0.0), ("changing, 30 a second", 30.0)] {
        let cap = Display::open(Some(&screen.display))
            .unwrap()
            .capture()
            .unwrap();
        let (out_tx, mut out) = tokio::sync::mpsc::unbounded_channel();
        let share = share::spawn(cap, out_tx).unwrap();
        share.send(ShareCommand::Bandwidth(3_000_000));
        share.send(ShareCommand::Start(Source::Screen));
        // The first picture (the keyframe) is the share's start, not its steady cost.
        match out.blocking_recv() {
            Some(ShareOut::Picture { .. }) => {}
            other => panic!("no first picture: {other:?}"),
        }
        let (me0, x0, wall) = (cpu_ms("self"), cpu_ms(&xvfb), Instant::now());
        let end = Duration::from_secs(args.seconds);
        let mut sizes = Vec::new();
        let (mut n, mut pictures, mut bytes, mut keyframes) = (0u32, 0u32, 0usize, 0u32);
        while wall.elapsed() < end {
            let wait = if fps > 0.0 {
                let due = Duration::from_secs_f64(f64::from(n) / fps);
                due.saturating_sub(wall.elapsed())
            } else {
                Duration::from_millis(100)
            };
            std::thread::sleep(wait);
            if fps > 0.0 {
                screen.scroll(n);
                n += 1;
            }
            while let Ok(o) = out.try_recv() {
                match o {
                    ShareOut::Picture { unit, .. } => {
                        pictures += 1;
                        bytes += unit.data.len();
                        sizes.push((wall.elapsed().as_millis(), unit.data.len()));
                        keyframes += u32::from(unit.keyframe);
                    }
                    ShareOut::Failed(e) => panic!("{e}"),
                    // Window picking (D6) is not asked for here.
                    ShareOut::Windows(_) | ShareOut::Placed(_) => {}
                }
            }
        }
        let secs = wall.elapsed().as_secs_f64();
        let me = (cpu_ms("self") - me0) / secs / 10.0;
        let x = (cpu_ms(&xvfb) - x0) / secs / 10.0;
        println!(
            "cpu {name}: helper {me:.1}% of a core, X server {x:.1}% ({n} changes, {pictures} pictures sent ({keyframes} keyframes) in {secs:.1} s, {:.0} kbit/s)",
            bytes as f64 * 8.0 / secs / 1000.0
        );
        if fps == 0.0 {
            println!("  still pictures (ms after the keyframe, bytes): {sizes:?}");
        }
        share.stop();
    }
}
