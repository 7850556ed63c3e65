//! What a caller to the service number hears: tones, since Tandem ships no recorded voice. A
//! rising three-note chime asks for the session number; a low double tone says the number
//! was not found. 48 kHz mono, the media workers' rate.

use std::f64::consts::TAU;
use std::sync::Arc;

const RATE: f64 = 48_000.0;

fn note(freq: f64, ms: u32, out: &mut Vec<i16>) {
    let n = (RATE * f64::from(ms) / 1000.0) as usize;
    let fade = (RATE * 0.01) as usize;
    for i in 0..n {
        let edge = (i.min(n - 1 - i) as f64 / fade as f64).min(1.0);
        let s = (TAU * freq * i as f64 / RATE).sin() * 0.3 * edge;
        out.push((s * f64::from(i16::MAX)) as i16);
    }
}

fn pause(ms: u32, out: &mut Vec<i16>) {
    out.extend(std::iter::repeat_n(
        0,
        (RATE * f64::from(ms) / 1000.0) as usize,
    ));
}

/// "Enter the session number, then #."
pub fn enter_number() -> Arc<[i16]> {
    let mut v = Vec::new();
    for f in [523.25, 659.25, 783.99] {
        note(f, 180, &mut v);
        pause(40, &mut v);
    }
    v.into()
}

/// "No session has that number."
pub fn not_found() -> Arc<[i16]> {
    let mut v = Vec::new();
    note(300.0, 250, &mut v);
    pause(80, &mut v);
    note(300.0, 250, &mut v);
    pause(300, &mut v);
    v.extend_from_slice(&enter_number());
    v.into()
}
