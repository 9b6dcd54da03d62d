//! The system clock and the operating system's CSPRNG, behind the domain's ports.

use esignsp_domain::ports::{Clock, IdGenerator};
use rand::RngCore;
use time::OffsetDateTime;

/// [`Clock`] reading the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// [`IdGenerator`] drawing 160 bits from the operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandomIds;

impl IdGenerator for OsRandomIds {
    fn random_160(&self) -> [u8; 20] {
        let mut bits = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bits);
        bits
    }
}

/// 32 bytes from the operating system's CSPRNG: a webhook endpoint's secret (SPEC §11).
#[must_use]
pub fn random_256() -> [u8; 32] {
    let mut bits = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bits);
    bits
}

/// [`Jitter`](esignsp_domain::webhooks::Jitter) draws from a thread-local generator (not
/// secret: only spreads retries).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl esignsp_domain::webhooks::Jitter for RandomJitter {
    fn unit(&self) -> f64 {
        rand::Rng::gen_range(&mut rand::thread_rng(), 0.0..1.0)
    }
}
