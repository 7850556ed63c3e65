//! The worker's loop, in the manner of str0m's examples/chat.rs: it waits for a command, a
//! datagram or the earliest timer, then advances the prompt and the calls that have something
//! to do (a datagram taken, a timeout due: [`super::timers`]; every call after a command) and
//! sends what they have to send, all of it at the end of the pass ([`super::socket`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::call::Calls;
use super::commands::handle_command;
use super::lobby::Waiting;
use super::panic_guard::guarded;
use super::routing::{Routes, Touched, receive};
use super::socket::MediaSocket;
use super::timers::DueCalls;
use super::{DATAGRAMS_PER_PASS, WorkerCmd};
use crate::ids::SessionId;
use crate::telemetry;

/// How often a worker adds its calls' counts to the process's metrics.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// The worker's loop; `worker` (its index in the pool) labels its gauges.
pub(super) async fn run(
    mut socket: MediaSocket,
    address: SocketAddr,
    mut rx: mpsc::Receiver<WorkerCmd>,
    worker: usize,
) {
    let mut calls = Calls::new();
    let mut routes = Routes::default();
    let mut lobby = Waiting::new(address);
    let mut next_report = Instant::now();
    // Datagrams read from and sent on the socket since the last report.
    let (mut datagrams_in, mut datagrams_out) = (0u64, 0u64);
    // The socket calls that read and sent them.
    let (mut read_calls, mut send_calls) = (0u64, 0u64);
    let mut timers = DueCalls::default();
    // The calls to visit in this pass; all of them after a command (it may have changed any).
    let mut visit: Vec<SessionId> = Vec::new();
    let mut everyone = false;
    loop {
        let now = Instant::now();
        let wake = timers
            .next()
            .into_iter()
            .chain(lobby.lobby.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100))
            .max(now);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(cmd) => {
                    handle_command(&mut calls, &mut routes, &mut lobby, address, cmd);
                    everyone = true;
                }
            },
            ready = socket.readable() => {
                if let Err(e) = ready {
                    tracing::debug!(error = %e, "media socket not readable");
                }
                // What is waiting, a batch a syscall, up to the pass limit.
                let mut handled = 0;
                while handled < DATAGRAMS_PER_PASS {
                    let read = socket.try_receive(|source, data| {
                        match receive(&mut calls, &mut routes, &mut lobby, address, source, data) {
                            Touched::One(session) => visit.push(session),
                            Touched::None => {}
                        }
                    });
                    read_calls += read.calls;
                    handled += read.datagrams;
                    if !read.more {
                        break;
                    }
                }
                datagrams_in += handled as u64;
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        lobby.advance(&mut socket, now);
        // Issue 19: counters and gauges at an interval, not on every pass (a busy worker makes
        // thousands of passes a second; each report is a dozen registry lookups per call).
        let reporting = now >= next_report;
        if reporting {
            next_report = now + REPORT_EVERY;
        }
        if std::mem::take(&mut everyone) {
            visit.clear();
            visit.extend(calls.keys().copied());
        } else {
            timers.take_due(now, &mut visit);
            visit.sort_unstable();
            visit.dedup();
        }
        for session in visit.drain(..) {
            let due = timers.is_due(session, now);
            guarded(&mut calls, session, |call| {
                // A call visited for a datagram may not be due; one taken off the timers is.
                if due || call.sfu.poll_timeout(now) <= now {
                    let started = Instant::now();
                    if let Err(e) = call.sfu.handle_timeout(now) {
                        tracing::error!(%session, error = %e, "media timeout handling failed");
                    }
                    telemetry::media::call_ticked(started.elapsed());
                }
            });
            let Some(call) = calls.get_mut(&session) else {
                timers.remove(session);
                continue;
            };
            while let Some(t) = call.sfu.poll_transmit() {
                socket.queue(t);
            }
            call.pass_on_events(session);
            call.record();
            timers.set(session, call.sfu.poll_timeout(now));
        }
        let flushed = socket.flush().await;
        datagrams_out += flushed.datagrams;
        send_calls += flushed.syscalls;
        let (mut peers, mut tracks) = (0, 0);
        if reporting {
            for call in calls.values_mut() {
                call.report();
                peers += call.sfu.peer_count();
                tracks += call.sfu.track_count();
            }
        }
        // Calls stay until their session ends; an idle one costs a map entry and a mixer.
        if reporting {
            telemetry::media::worker_load(worker, calls.len(), peers, tracks);
            telemetry::media::datagrams(
                std::mem::take(&mut datagrams_in),
                std::mem::take(&mut datagrams_out),
                std::mem::take(&mut read_calls),
                std::mem::take(&mut send_calls),
            );
        }
    }
}
