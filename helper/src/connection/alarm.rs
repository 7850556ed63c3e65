//! The join loop's one timer: str0m's next deadline, set anew on each turn of the loop.
//!
//! On Linux it is a timerfd the runtime watches like a socket. tokio's own timer, re-armed on
//! every turn, also wakes the runtime's driver through an eventfd each time (an extra turn of
//! the loop for nothing); with a still screen, str0m's pacer sets a deadline every few
//! milliseconds, so that was most of the helper's wake-ups (docs/performance.md).

#[cfg(target_os = "linux")]
pub use timerfd::Alarm;

#[cfg(not(target_os = "linux"))]
pub use sleep::Alarm;

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    pub struct Alarm {
        fd: AsyncFd<OwnedFd>,
        /// The deadline the timer is set to, until it rings.
        set: Option<Instant>,
    }

    impl Alarm {
        /// Needs a tokio runtime with IO enabled.
        pub fn new() -> io::Result<Alarm> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // SAFETY: the timerfd is owned here and stays open, as the same file, until the
            // AsyncFd is dropped (nothing takes it out or swaps it).
            #[allow(unsafe_code)]
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(io::Error::from)?;
            Ok(Alarm { fd, set: None })
        }

        /// Rings at `at` (at once if it has passed), instead of any earlier setting.
        pub fn set(&mut self, at: Instant) -> io::Result<()> {
            if self.set == Some(at) {
                return Ok(());
            }
            // A zero time would disarm the timer: the least it can wait is a nanosecond.
            let left = at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1));
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let value = Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            };
            let spec = Itimerspec {
                it_interval: zero,
                it_value: value,
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            self.set = Some(at);
            Ok(())
        }

        /// Waits until the time set comes.
        pub async fn rung(&mut self) -> io::Result<()> {
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expirations = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
                    Ok(Ok(_)) => {
                        self.set = None;
                        return Ok(());
                    }
                    Ok(Err(e)) => return Err(e),
                    // Not yet (the readiness was stale): wait again.
                    Err(_would_block) => {}
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sleep {
    use std::io;
    use std::pin::Pin;
    use std::time::Instant;

    pub struct Alarm(Pin<Box<tokio::time::Sleep>>);

    impl Alarm {
        pub fn new() -> io::Result<Alarm> {
            Ok(Alarm(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::now(),
            ))))
        }

        pub fn set(&mut self, at: Instant) -> io::Result<()> {
            self.0.as_mut().reset(tokio::time::Instant::from_std(at));
            Ok(())
        }

        pub async fn rung(&mut self) -> io::Result<()> {
            self.0.as_mut().await;
            Ok(())
        }
    }
}
