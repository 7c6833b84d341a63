//! Waiting for something a server does in its own time: one deadline loop
//! for every test. A check returns how things stand (`bool`, `Option<T>`,
//! or `Result<T, E>` whose `E` says what was seen instead); on timeout the
//! test fails naming what it waited for and what it saw last, so a stall
//! reads as the missing piece rather than as a bare timeout.
//!
//! [`eventually`] (async) and [`eventually_blocking`] (sync) fail the test;
//! [`settle`] hands the last observation back to a test that reports the
//! shortfall in its own words.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often a check is repeated: quick enough not to slow tests down,
/// slow enough not to load a 2-core machine with polling `phs` processes.
const INTERVAL: Duration = Duration::from_millis(100);

/// How a check stands: done with a value, or not yet with what it saw.
pub trait Progress {
    type Done;
    type Seen;
    fn progress(self) -> Result<Self::Done, Self::Seen>;
}

impl Progress for bool {
    type Done = ();
    type Seen = &'static str;
    fn progress(self) -> Result<(), &'static str> {
        if self { Ok(()) } else { Err("false") }
    }
}

impl<T> Progress for Option<T> {
    type Done = T;
    type Seen = &'static str;
    fn progress(self) -> Result<T, &'static str> {
        self.ok_or("None")
    }
}

impl<T, E> Progress for Result<T, E> {
    type Done = T;
    type Seen = E;
    fn progress(self) -> Result<T, E> {
        self
    }
}

/// The deadline, shared by the async and blocking loops.
struct Deadline(Instant);

impl Deadline {
    /// Done, or what was seen once time is up; None to try again.
    fn check<P: Progress>(&self, progress: P) -> Option<Result<P::Done, P::Seen>> {
        match progress.progress() {
            Ok(done) => Some(Ok(done)),
            Err(seen) if Instant::now() >= self.0 => Some(Err(seen)),
            Err(_) => None,
        }
    }
}

fn done_or_fail<T>(within: Duration, what: &str, outcome: Result<T, impl Display>) -> T {
    outcome.unwrap_or_else(|seen| panic!("timed out after {within:?} waiting for {what}; last seen: {seen}"))
}

/// Repeats `check` until it is done or `within` has passed: the value, or
/// what the last check saw. For a test that reports a shortfall itself.
/// An async closure, so a check may keep state between tries (`async || {...}`).
pub async fn settle<P: Progress>(within: Duration, mut check: impl AsyncFnMut() -> P) -> Result<P::Done, P::Seen> {
    let deadline = Deadline(Instant::now() + within);
    loop {
        if let Some(outcome) = deadline.check(check().await) {
            return outcome;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Repeats `check` until it is done, or fails the test after `within`.
pub async fn eventually<P>(within: Duration, what: &str, check: impl AsyncFnMut() -> P) -> P::Done
where
    P: Progress<Seen: Display>,
{
    done_or_fail(within, what, settle(within, check).await)
}

/// [`eventually`] for synchronous tests and checks (a `phs` command run, a file read).
pub fn eventually_blocking<P>(within: Duration, what: &str, mut check: impl FnMut() -> P) -> P::Done
where
    P: Progress<Seen: Display>,
{
    let deadline = Deadline(Instant::now() + within);
    loop {
        if let Some(outcome) = deadline.check(check()) {
            return done_or_fail(within, what, outcome);
        }
        std::thread::sleep(INTERVAL);
    }
}

#[test]
fn a_check_that_never_passes_fails_with_what_it_saw_last() {
    let mut n = 0;
    let failed = std::panic::catch_unwind(move || {
        eventually_blocking(Duration::from_millis(250), "n to reach 100", || {
            n += 1;
            if n >= 100 { Ok(()) } else { Err(format!("n = {n}")) }
        })
    });
    let payload = failed.unwrap_err();
    let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("waiting for n to reach 100; last seen: n = "), "{message}");
}

#[tokio::test]
async fn a_check_that_passes_returns_its_value() {
    let mut n = 0;
    let got = eventually(Duration::from_secs(5), "the third try", || {
        n += 1;
        let v = n;
        async move { (v == 3).then_some(v) }
    })
    .await;
    assert_eq!(got, 3);
}
