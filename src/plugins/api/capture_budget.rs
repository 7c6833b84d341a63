//! How many events one plugin config may send with `posthog.capture`: a
//! token bucket shared by all of the config's states, so a plugin that
//! captures in a loop, or captures from processEvent on the events it
//! captured itself (each one comes back to it), cannot flood the ingestion
//! log. A capture past the budget fails with an error that says so; that
//! call counts as failed, and a config whose calls keep failing is disabled.

use std::sync::Mutex;
use std::time::Instant;

/// Captures one config may make at once, after a quiet spell. Each capture
/// from processEvent waits on a write to the ingestion log while its whole
/// batch waits on it, so the burst is small; a plugin importing more sends
/// them from a job or task, at the sustained rate.
pub const CAPTURE_BURST: f64 = 100.0;
/// Captures per second the budget refills with.
pub const CAPTURES_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub struct CaptureBudget(Mutex<(f64, Instant)>);

impl Default for CaptureBudget {
    fn default() -> Self {
        CaptureBudget(Mutex::new((CAPTURE_BURST, Instant::now())))
    }
}

impl CaptureBudget {
    /// Takes one capture from the budget, or says why not.
    pub fn take(&self) -> Result<(), String> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = &mut *guard;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * CAPTURES_PER_SECOND).min(CAPTURE_BURST);
        *at = now;
        if *tokens < 1.0 {
            return Err(format!(
                "posthog.capture refused: this plugin config captured more than {CAPTURE_BURST} events at once \
                 or {CAPTURES_PER_SECOND} a second"
            ));
        }
        *tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let b = CaptureBudget::default();
        for _ in 0..CAPTURE_BURST as usize {
            b.take().expect("within the burst");
        }
        assert!(b.take().unwrap_err().contains("posthog.capture refused"));
        std::thread::sleep(std::time::Duration::from_millis(30));
        // 30 ms refill 3 captures at 100 a second.
        assert!(b.take().is_ok());
    }
}
