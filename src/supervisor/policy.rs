//! Restart policy, named and bounded like systemd's `RestartSec` + `StartLimitBurst`: exponential
//! backoff with jitter between restarts, reset after a stable run, and an intensity limit that
//! gives up (state `failed`) instead of crash-looping. Pure logic over given instants.
//!
//! A run counts toward the limit unless it served and was then killed from outside: a daemon
//! that cannot start, or that dies by itself (an exit code, a crash signal) right after every
//! start, is crash-looping; one that served and was then SIGKILLed (OOM killer, an operator,
//! chaos) is worth restarting every time — the backoff still keeps that from spinning. Runs that
//! last `stable_after` reset the backoff.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial_backoff: Duration,
    /// Ceiling of the doubling delay.
    pub max_backoff: Duration,
    /// Lower ceiling after a run that became healthy: it will most likely serve again at once.
    pub max_backoff_after_healthy: Duration,
    /// A run at least this long resets the backoff.
    pub stable_after: Duration,
    /// Give up after more than `max_crashes` crashes within `window`.
    pub max_crashes: usize,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            max_backoff_after_healthy: Duration::from_secs(2),
            stable_after: Duration::from_secs(30),
            max_crashes: 5,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    RestartAfter(Duration),
    GiveUp(String),
}

#[derive(Debug)]
pub struct RestartTracker {
    policy: RestartPolicy,
    crashes: VecDeque<Instant>,
    attempt: u32,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            crashes: VecDeque::new(),
            attempt: 0,
        }
    }

    /// Records a crash at `now` after a run of `uptime` that did or did not become healthy;
    /// `killed`: it ended by SIGKILL (from outside). A run that served and was then killed never
    /// counts toward giving up. `jitter` in [0, 1) spreads the delay ±20 %.
    pub fn on_crash(
        &mut self,
        now: Instant,
        uptime: Duration,
        was_healthy: bool,
        killed: bool,
        jitter: f64,
    ) -> Decision {
        if uptime >= self.policy.stable_after {
            self.attempt = 0;
        }
        if !(was_healthy && killed) {
            self.crashes.push_back(now);
        }
        let ceiling = if was_healthy {
            self.policy.max_backoff_after_healthy
        } else {
            self.policy.max_backoff
        };
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() > self.policy.max_crashes {
            return Decision::GiveUp(format!(
                "crashed {} times within {} s; not restarting again until the config changes or the server gets SIGHUP",
                self.crashes.len(),
                self.policy.window.as_secs()
            ));
        }
        let base = self
            .policy
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(ceiling);
        self.attempt = self.attempt.saturating_add(1);
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        Decision::RestartAfter(base.mul_f64(factor).min(ceiling))
    }

    /// Forgets history: after an explicit restart or a config change.
    pub fn reset(&mut self) {
        self.crashes.clear();
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let policy = RestartPolicy {
            max_crashes: 100,
            ..Default::default()
        };
        let mut t = RestartTracker::new(policy);
        let start = Instant::now();
        let delays: Vec<Duration> = (0..10)
            .map(|i| {
                match t.on_crash(
                    start + Duration::from_secs(i),
                    Duration::ZERO,
                    false,
                    false,
                    0.5,
                ) {
                    Decision::RestartAfter(d) => d,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[1], Duration::from_millis(500));
        assert_eq!(delays[2], Duration::from_secs(1));
        assert_eq!(delays[9], Duration::from_secs(30));
        let after_stable = t.on_crash(
            start + Duration::from_secs(100),
            Duration::from_secs(31),
            true,
            true,
            0.5,
        );
        assert_eq!(
            after_stable,
            Decision::RestartAfter(Duration::from_millis(250))
        );
    }

    #[test]
    fn more_than_five_crashes_in_a_minute_gives_up() {
        let mut t = RestartTracker::new(RestartPolicy::default());
        let start = Instant::now();
        for i in 0..5 {
            assert!(matches!(
                t.on_crash(
                    start + Duration::from_secs(i),
                    Duration::ZERO,
                    false,
                    false,
                    0.0
                ),
                Decision::RestartAfter(_)
            ));
        }
        assert!(matches!(
            t.on_crash(
                start + Duration::from_secs(5),
                Duration::ZERO,
                false,
                false,
                0.0
            ),
            Decision::GiveUp(_)
        ));
        // A daemon that served and was then SIGKILLed is always restarted.
        let mut t = RestartTracker::new(RestartPolicy::default());
        for i in 0..20 {
            assert!(matches!(
                t.on_crash(
                    start + Duration::from_secs(i),
                    Duration::from_secs(1),
                    true,
                    true,
                    0.0
                ),
                Decision::RestartAfter(_)
            ));
        }
        // One that dies by itself within seconds of every healthy start is crash-looping.
        let mut t = RestartTracker::new(RestartPolicy::default());
        let decisions: Vec<bool> = (0..6)
            .map(|i| {
                matches!(
                    t.on_crash(
                        start + Duration::from_secs(i * 3),
                        Duration::from_secs(2),
                        true,
                        false,
                        0.0
                    ),
                    Decision::GiveUp(_)
                )
            })
            .collect();
        assert_eq!(decisions, [false, false, false, false, false, true]);
        // Crashes spread over more than the window never give up.
        let mut t = RestartTracker::new(RestartPolicy::default());
        for i in 0..20 {
            assert!(matches!(
                t.on_crash(
                    start + Duration::from_secs(i * 15),
                    Duration::ZERO,
                    false,
                    false,
                    0.0
                ),
                Decision::RestartAfter(_)
            ));
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut t = RestartTracker::new(RestartPolicy::default());
        let now = Instant::now();
        let Decision::RestartAfter(low) = t.on_crash(now, Duration::ZERO, false, false, 0.0) else {
            panic!()
        };
        t.reset();
        let Decision::RestartAfter(high) = t.on_crash(now, Duration::ZERO, false, false, 0.999)
        else {
            panic!()
        };
        assert_eq!(low, Duration::from_millis(200));
        assert!(high > Duration::from_millis(299) && high < Duration::from_millis(300));
    }
}
