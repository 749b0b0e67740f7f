//! The one wait helper: a [`Deadline`] polls a probe until it returns `Some`, and fails the
//! test with what it waited for (and any context, such as logs) once the time is up. The sync
//! and async forms share the deadline; only the sleep differs.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a probe is tried unless a wait says otherwise.
pub const POLL: Duration = Duration::from_millis(20);

/// A bounded wait for `what`.
#[derive(Debug)]
pub struct Deadline {
    what: String,
    start: Instant,
    limit: Duration,
    every: Duration,
}

impl Deadline {
    /// Starts now; polls every [`POLL`].
    pub fn new(limit: Duration, what: impl Into<String>) -> Deadline {
        Deadline {
            what: what.into(),
            start: Instant::now(),
            limit,
            every: POLL,
        }
    }

    /// Polls every `ms` milliseconds instead.
    pub fn every_ms(mut self, ms: u64) -> Deadline {
        self.every = Duration::from_millis(ms);
        self
    }

    pub fn passed(&self) -> bool {
        self.start.elapsed() >= self.limit
    }

    /// Fails the test once the time is up, with `context()` after the message.
    pub fn check(&self, context: impl FnOnce() -> String) {
        if self.passed() {
            let context = context();
            let sep = if context.is_empty() { "" } else { "\n" };
            panic!(
                "timed out after {:?} waiting for {}{sep}{context}",
                self.limit, self.what
            );
        }
    }

    /// Sleeps one polling interval (sync tests).
    pub fn sleep(&self) {
        std::thread::sleep(self.every);
    }

    /// Checks the time, then sleeps one polling interval (async tests).
    pub async fn tick(&self) {
        self.check(String::new);
        tokio::time::sleep(self.every).await;
    }

    /// Polls `probe` until it returns `Some`; on timeout the failure shows `context()`.
    pub fn poll_with<T>(
        &self,
        context: impl Fn() -> String,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        loop {
            if let Some(v) = probe() {
                return v;
            }
            self.check(&context);
            self.sleep();
        }
    }

    /// Polls `probe` until it returns `Some`.
    pub fn poll<T>(&self, probe: impl FnMut() -> Option<T>) -> T {
        self.poll_with(String::new, probe)
    }

    /// Polls the async `probe` until it returns `Some`.
    pub async fn poll_async<T, F, Fut>(&self, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            self.tick().await;
        }
    }
}

/// Polls `probe` every [`POLL`] until it returns `Some`; fails the test after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    Deadline::new(limit, what).poll(probe)
}

/// [`wait_for`] with an async probe.
pub async fn wait_for_async<T, F, Fut>(limit: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    Deadline::new(limit, what).poll_async(probe).await
}
