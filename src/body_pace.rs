//! How slowly a request body may come (uploads included): a body must keep up an average of
//! `min_rate` bytes a second, with `grace` of slack, and may never stall for longer than
//! `grace`. A client trickling a byte now and then is cut off after about `grace`, a slow but
//! honest upload goes on for as long as it takes.
//!
//! [`Pace`] is the rule: an allowance of waiting time, spent while the server waits for the
//! body and earned back by the bytes that come (`1 / min_rate` seconds a byte), never more
//! than `grace`. Time the handler spends elsewhere (writing to disk) is not counted against
//! the client. [`PacedBody`] puts the rule on a request body.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::Instant;

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// The configured pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_rate: u64,
}

/// One body's allowance of waiting time.
#[derive(Debug, Clone)]
pub struct Pace {
    limits: BodyPace,
    allowance: Duration,
}

impl Pace {
    pub fn new(limits: BodyPace) -> Self {
        Self {
            limits,
            allowance: limits.grace,
        }
    }

    /// How long the server may wait for the next bytes.
    pub fn allowance(&self) -> Duration {
        self.allowance
    }

    /// `bytes` came after the server waited `waited` for them.
    pub fn arrived(&mut self, waited: Duration, bytes: usize) {
        let earned = Duration::from_secs_f64(bytes as f64 / self.limits.min_rate.max(1) as f64);
        self.allowance = self
            .allowance
            .saturating_sub(waited)
            .saturating_add(earned)
            .min(self.limits.grace);
    }
}

/// A request body came too slowly and was cut off.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the request body came too slowly (it must average {min_rate} bytes a second and never stall for {grace_secs} s)"
)]
pub struct BodyTooSlow {
    pub min_rate: u64,
    pub grace_secs: u64,
}

/// Whether `e`, or an error under it, is a body cut off for coming too slowly.
pub fn is_too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<BodyTooSlow>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A request body under a [`Pace`].
pub struct PacedBody<B> {
    inner: B,
    pace: Pace,
    /// While the server waits for the client: since when, and when it gives up.
    waiting: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    failed: bool,
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, limits: BodyPace) -> Self {
        Self {
            inner,
            pace: Pace::new(limits),
            waiting: None,
            failed: false,
        }
    }

    fn too_slow(&self) -> BodyTooSlow {
        BodyTooSlow {
            min_rate: self.pace.limits.min_rate,
            grace_secs: self.pace.limits.grace.as_secs(),
        }
    }
}

impl<B> HttpBody for PacedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let waited = this
                    .waiting
                    .take()
                    .map_or(Duration::ZERO, |(since, _)| since.elapsed());
                let bytes = match &frame {
                    Some(Ok(f)) => f.data_ref().map_or(0, Bytes::len),
                    _ => 0,
                };
                this.pace.arrived(waited, bytes);
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let allowance = this.pace.allowance();
                let (_, sleep) = this.waiting.get_or_insert_with(|| {
                    (Instant::now(), Box::pin(tokio::time::sleep(allowance)))
                });
                ready!(sleep.as_mut().poll(cx));
                this.failed = true;
                crate::metrics::http_connection_timed_out("body");
                Poll::Ready(Some(Err(this.too_slow().into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BodyPace = BodyPace {
        grace: Duration::from_secs(10),
        min_rate: 100,
    };

    #[test]
    fn a_trickle_spends_the_allowance() {
        let mut p = Pace::new(LIMITS);
        // One byte every 2 s earns 10 ms each time: the allowance runs out after about 10 s.
        let mut waited = Duration::ZERO;
        while p.allowance() > Duration::from_secs(2) {
            p.arrived(Duration::from_secs(2), 1);
            waited += Duration::from_secs(2);
        }
        assert!(waited <= Duration::from_secs(10), "{waited:?}");
    }

    #[test]
    fn a_steady_body_keeps_its_allowance_and_never_banks_more_than_the_grace() {
        let mut p = Pace::new(LIMITS);
        for _ in 0..1000 {
            // 200 bytes a second, in chunks a second apart.
            p.arrived(Duration::from_secs(1), 200);
        }
        assert_eq!(p.allowance(), LIMITS.grace);
        p.arrived(Duration::ZERO, 1 << 30);
        assert_eq!(p.allowance(), LIMITS.grace);
        p.arrived(Duration::from_secs(4), 0);
        assert_eq!(p.allowance(), Duration::from_secs(6));
        p.arrived(Duration::from_secs(60), 0);
        assert_eq!(p.allowance(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_off_after_its_allowance() {
        use http_body_util::BodyExt;
        let (mut tx, rx) = fed_body();
        let mut body = PacedBody::new(rx, LIMITS);
        tx.send(Bytes::from_static(b"abc"));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        let started = tokio::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("too slowly"), "{err}");
        assert_eq!(started.elapsed(), LIMITS.grace);
        assert!(body.frame().await.is_none());
        drop(tx);
    }

    /// A body fed by hand.
    struct Feed(tokio::sync::mpsc::UnboundedSender<Bytes>);
    impl Feed {
        fn send(&mut self, b: Bytes) {
            self.0.send(b).unwrap();
        }
    }
    struct Fed(tokio::sync::mpsc::UnboundedReceiver<Bytes>);
    impl HttpBody for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }
    fn fed_body() -> (Feed, Fed) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Feed(tx), Fed(rx))
    }
}
