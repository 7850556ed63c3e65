//! The SIP transaction layer under a steady flood: `n` server transactions live (OPTIONS
//! answered 200 over UDP, each kept 32 s after its answer), and per new request what the
//! endpoint's shell does for it: the request taken (`received`), answered (`respond`), the next
//! deadline asked (`poll_timeout`, once per datagram) and the timer pass run (`handle_timeout`,
//! here forgetting the one transaction that ended, so `n` stays put). Before the deadlines heap
//! each of those passes scanned all `n`; the cost per request should not grow with `n`.
//!
//! `cargo bench --bench sip_transactions`. For instruction counts, which 2 busy shared cores do
//! not blur, `SIP_BENCH_STEPS=2000` runs that many requests at each `n` without criterion, and
//! callgrind counts only inside `step`:
//! `valgrind --tool=callgrind --toggle-collect='*sip_transactions*step*' target/release/deps/sip_transactions-HASH`
//! (then divide the reported instructions by 3 × steps; docs/performance.md has the figures).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use rsip::Method;
use tandem::sip::transaction::{Peer, Received, Transactions, TxKey};

const SIZES: [usize; 3] = [1_000, 10_000, 50_000];
/// How long an answered OPTIONS is kept over UDP (timer J, 64*T1).
const KEPT: Duration = Duration::from_secs(32);

/// `n` live transactions, and the clock as a flood of `n / 32 s` a second has it.
struct Flood {
    t: Transactions,
    now: Instant,
    gap: Duration,
    next: u64,
    peer: Peer,
}

impl Flood {
    fn new(n: usize) -> Self {
        let mut f = Self {
            t: Transactions::new(n + 1),
            now: Instant::now(),
            gap: KEPT / n as u32,
            next: 0,
            peer: Peer::Udp("127.0.0.2:5060".parse().unwrap()),
        };
        // Filled in 32 s of its clock: none has ended yet, so no timer pass is due.
        for _ in 0..n {
            f.request();
        }
        assert_eq!(f.t.len(), n, "steady at n");
        f
    }
}

fn key(i: u64) -> TxKey {
    TxKey {
        branch: format!("z9hG4bK{i:016x}"),
        sent_by: "127.0.0.2:5060".into(),
        method: Method::Options,
    }
}

impl Flood {
    /// A new request taken and answered.
    fn request(&mut self) {
        self.now += self.gap;
        let k = key(self.next);
        self.next += 1;
        assert_eq!(self.t.received(self.now, &k, self.peer), Received::New);
        black_box(
            self.t
                .respond(self.now, &k, 200, b"SIP/2.0 200 OK\r\n\r\n".to_vec()),
        );
    }
}

/// One new request through the transaction layer, as the shell drives it.
#[inline(never)]
fn step(f: &mut Flood) {
    f.request();
    if f.t.poll_timeout().is_some_and(|at| at <= f.now) {
        black_box(f.t.handle_timeout(f.now));
    }
    black_box(f.t.poll_timeout());
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip transaction layer, one new request");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut f = Flood::new(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| step(&mut f))
        });
    }
    g.finish();
}

fn main() {
    if let Some(steps) = std::env::var("SIP_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        for n in SIZES {
            let mut f = Flood::new(n);
            let started = Instant::now();
            for _ in 0..steps {
                step(&mut f);
            }
            println!("n={n}: {steps} requests in {:?}", started.elapsed());
        }
        return;
    }
    // Short: the machine is shared, and the point is the growth with n, not the last percent.
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
