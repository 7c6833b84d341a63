//! The CPU a plugin call has used, read from the threads it ran on.
//!
//! A call's deadline counts wall time, waits in host calls excluded, which
//! is cheap to check and equals the call's CPU on an idle machine. On a busy
//! one a thread may wait for a core for hundreds of milliseconds in the
//! middle of a call; that wait is not the plugin's, so a call is only
//! stopped once the thread clock says it really used its limit.

use std::thread::{self, ThreadId};
use std::time::Duration;

/// CPU time the calling thread has used, where the platform has such a clock.
fn thread_cpu() -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (r == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// One call's CPU: the stretches it ran, each on one thread (a call that
/// waits in a host call may resume on another).
#[derive(Debug, Default)]
pub struct CallCpu {
    spent: u64,
    /// The stretch running now: its thread, and that thread's CPU when it began.
    stretch: Option<(ThreadId, u64)>,
}

impl CallCpu {
    /// Begins a stretch on this thread if none runs (one clock read per stretch).
    pub fn begin(&mut self) {
        if self.stretch.is_none() {
            self.stretch = thread_cpu().map(|cpu| (thread::current().id(), cpu));
        }
    }

    /// The CPU used so far; None when it cannot be told (no clock, or the
    /// stretch began on another thread: then a new one begins here).
    pub fn used(&mut self) -> Option<Duration> {
        let now = thread_cpu()?;
        match self.stretch {
            Some((t, start)) if t == thread::current().id() => {
                Some(Duration::from_nanos(self.spent + now.saturating_sub(start)))
            }
            _ => {
                self.stretch = Some((thread::current().id(), now));
                None
            }
        }
    }

    /// Whether this platform has a thread CPU clock (else only wall time can be told).
    pub fn has_clock(&self) -> bool {
        thread_cpu().is_some()
    }

    /// Ends the stretch: the call is about to wait, and may resume elsewhere.
    pub fn pause(&mut self) {
        if let Some((t, start)) = self.stretch.take()
            && t == thread::current().id()
            && let Some(now) = thread_cpu()
        {
            self.spent += now.saturating_sub(start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_not_sleep() {
        let mut cpu = CallCpu::default();
        cpu.begin();
        std::thread::sleep(Duration::from_millis(100));
        let slept = cpu.used().expect("Linux has a thread clock");
        assert!(slept < Duration::from_millis(20), "a sleeping thread uses no CPU: {slept:?}");
        cpu.pause();
        cpu.begin();
        // Work is counted: the clock reaches 50 ms (in at most 10 s, however busy the machine).
        let start = std::time::Instant::now();
        while cpu.used().unwrap() < Duration::from_millis(50) {
            std::hint::black_box((0..1000u64).sum::<u64>());
            assert!(start.elapsed() < Duration::from_secs(10), "the thread clock did not move");
        }
    }
}
