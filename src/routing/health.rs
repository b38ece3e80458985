//! The failover policy: may an endpoint take traffic now? One pure state machine per endpoint,
//! fed probe results, the daemon's traffic counters and trial results with the instant they were
//! seen. No I/O: `control` does the requests and asks this module what is usable.
//!
//! Two signals, kept apart because they answer different questions:
//! - **Probe** (the model listing): `down` after one failure, `up` again after `recover_after`
//!   successes in a row (a flapping upstream does not bounce traffic). A listing says the
//!   upstream answers and takes the key; it says nothing about chat, so it never closes the
//!   breaker — an overloaded Anthropic answers 529 on `/v1/messages` while `/v1/models` says 200.
//! - **Breaker** (real traffic, from the daemon's `/v1/metrics`), like LiteLLM's cooldowns (3
//!   failures a minute, or ≥ 50 %) and Helicone's 5xx ratio over a window: `closed` → `open` when
//!   every request since the last poll failed, or `trip_errors` failures or a failure ratio of
//!   `trip_ratio` within `window`. It stays open for a cooldown that doubles while the endpoint
//!   keeps failing (a failed trial, or a new trip within `memory` of the last), up to
//!   `max_cooldown`. Then a **trial** is due (once the listing answers): one minimal real request
//!   the plane sends to the upstream itself (`half-open`), so no user request is spent on finding
//!   out. Only a passed trial closes the breaker — or a real request that succeeded while every
//!   endpoint was out and this one was tried anyway.
//!
//! Usable = probe not down and breaker closed. With none usable, [`order`] lists every endpoint,
//! most likely to work first (see there).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The policy's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Probe successes in a row before a probe failure is forgotten.
    pub recover_after: u32,
    /// First cooldown after traffic trips the breaker.
    pub cooldown: Duration,
    /// Ceiling of the doubling cooldown.
    pub max_cooldown: Duration,
    /// A trip within this long of the previous one doubles the cooldown instead of restarting it.
    pub memory: Duration,
    /// Traffic window for the error count and ratio.
    pub window: Duration,
    pub trip_errors: u64,
    pub trip_ratio: f64,
}

impl HealthPolicy {
    /// The defaults for a probe interval: the first cooldown is one interval (1 s to 30 s), the
    /// ceiling 16 of them (at most 5 minutes).
    pub fn for_interval(probe_interval: Duration) -> Self {
        let cooldown = probe_interval.clamp(Duration::from_secs(1), Duration::from_secs(30));
        let max_cooldown = (cooldown * 16).min(Duration::from_secs(300));
        Self {
            recover_after: 2,
            cooldown,
            max_cooldown,
            memory: max_cooldown,
            window: Duration::from_secs(60),
            trip_errors: 3,
            trip_ratio: 0.5,
        }
    }

    fn cooldown_at(&self, level: u32) -> Duration {
        self.cooldown
            .saturating_mul(2u32.saturating_pow(level.min(20)))
            .min(self.max_cooldown)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbeState {
    #[default]
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Breaker {
    #[default]
    Closed,
    /// Out for a cooldown; a trial is due when it ends.
    Open,
    /// A trial is in flight.
    HalfOpen,
}

impl Breaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Breaker::Closed => "closed",
            Breaker::Open => "open",
            Breaker::HalfOpen => "half-open",
        }
    }
}

/// One endpoint's health.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    probe: ProbeState,
    ok_streak: u32,
    /// When the probe last went down (ranks endpoints when all are out).
    down_since: Option<Instant>,
    breaker: Breaker,
    open_until: Option<Instant>,
    /// Doublings of the cooldown.
    level: u32,
    last_trip: Option<Instant>,
    /// Last failure of real traffic or of a trial (ranks endpoints when all are out).
    last_traffic_failure: Option<Instant>,
    /// The latest failure, for people.
    last_error: Option<String>,
    /// Why the endpoint is usable again, for the route switch that follows.
    last_recovery: Option<String>,
    /// Traffic deltas `(at, requests, errors)` within the policy's window.
    window: VecDeque<(Instant, u64, u64)>,
    /// The daemon's totals at the last poll.
    baseline: Option<(u64, u64)>,
    pub probes: u64,
    pub probe_failures: u64,
    pub last_probe_ms: Option<f64>,
    /// Times traffic tripped the breaker.
    pub trips: u64,
    pub trials: u64,
    pub trial_failures: u64,
    /// The daemon's request and error totals for this endpoint.
    pub requests: u64,
    pub errors: u64,
}

impl Endpoint {
    /// May it take traffic now?
    pub fn usable(&self) -> bool {
        self.probe != ProbeState::Down && self.breaker == Breaker::Closed
    }

    /// `unknown` (usable, not probed yet), `healthy` or `unhealthy` (not usable).
    pub fn health(&self) -> &'static str {
        match (self.usable(), self.probe) {
            (false, _) => "unhealthy",
            (true, ProbeState::Unknown) => "unknown",
            (true, _) => "healthy",
        }
    }

    pub fn breaker(&self) -> Breaker {
        self.breaker
    }

    pub fn probe_state(&self) -> ProbeState {
        self.probe
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn last_recovery(&self) -> Option<&str> {
        self.last_recovery.as_deref()
    }

    /// The cooldown the breaker is serving now, while it is not closed.
    pub fn cooldown(&self, policy: &HealthPolicy) -> Option<Duration> {
        (self.breaker != Breaker::Closed).then(|| policy.cooldown_at(self.level))
    }

    /// A probe result. Returns whether `usable()` changed.
    pub fn on_probe(
        &mut self,
        policy: &HealthPolicy,
        now: Instant,
        result: Result<(), String>,
        latency: Duration,
    ) -> bool {
        let before = self.usable();
        self.probes += 1;
        self.last_probe_ms = Some(latency.as_secs_f64() * 1000.0);
        match result {
            Ok(()) => {
                self.ok_streak = self.ok_streak.saturating_add(1);
                match self.probe {
                    ProbeState::Unknown => self.probe = ProbeState::Up,
                    ProbeState::Down if self.ok_streak >= policy.recover_after => {
                        self.probe = ProbeState::Up;
                        self.down_since = None;
                        if self.breaker == Breaker::Closed {
                            self.last_error = None;
                            self.last_recovery = Some(format!(
                                "listing answered {} times in a row",
                                self.ok_streak
                            ));
                        }
                    }
                    _ => {}
                }
            }
            Err(e) => {
                self.probe_failures += 1;
                self.ok_streak = 0;
                if self.probe != ProbeState::Down {
                    self.down_since = Some(now);
                }
                self.probe = ProbeState::Down;
                self.last_error = Some(format!("probe: {e}"));
            }
        }
        before != self.usable()
    }

    /// The daemon restarted: its counters start again from zero.
    pub fn reset_traffic(&mut self) {
        self.baseline = None;
        self.window.clear();
    }

    /// The daemon's request and error totals for this endpoint, read at `now`. Returns whether
    /// `usable()` changed.
    pub fn on_traffic(
        &mut self,
        policy: &HealthPolicy,
        now: Instant,
        requests: u64,
        errors: u64,
    ) -> bool {
        let before = self.usable();
        self.requests = requests;
        self.errors = errors;
        let Some((r0, e0)) = self.baseline.replace((requests, errors)) else {
            return false; // first sight: a baseline, not a failure
        };
        if requests < r0 || errors < e0 {
            return false; // counters restarted
        }
        let (dr, de) = (requests - r0, errors - e0);
        if dr == 0 && de == 0 {
            return false;
        }
        while self
            .window
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > policy.window)
        {
            self.window.pop_front();
        }
        self.window.push_back((now, dr, de));
        if de == 0 {
            if self.breaker != Breaker::Closed {
                // Tried while every endpoint was out, and it served: as good as a trial.
                self.close(format!("{dr} real request(s) succeeded"));
            }
            return before != self.usable();
        }
        self.last_traffic_failure = Some(now);
        self.last_error = Some(format!("traffic: {de} of {dr} request(s) failed"));
        if self.breaker != Breaker::Closed {
            return false;
        }
        let (wr, we) = self
            .window
            .iter()
            .fold((0, 0), |(r, e), (_, dr, de)| (r + dr, e + de));
        let trip = de >= dr
            || we >= policy.trip_errors
            || (wr >= 2 && we as f64 >= policy.trip_ratio * wr as f64);
        if trip {
            self.level = match self.last_trip {
                Some(t) if now.saturating_duration_since(t) <= policy.memory => {
                    self.level.saturating_add(1)
                }
                _ => 0,
            };
            self.last_trip = Some(now);
            self.trips += 1;
            self.open(policy, now);
        }
        before != self.usable()
    }

    fn open(&mut self, policy: &HealthPolicy, now: Instant) {
        self.breaker = Breaker::Open;
        self.open_until = Some(now + policy.cooldown_at(self.level));
        self.window.clear();
        self.last_recovery = None;
    }

    fn close(&mut self, why: String) {
        self.breaker = Breaker::Closed;
        self.open_until = None;
        if self.probe != ProbeState::Down {
            self.last_error = None;
        }
        self.last_recovery = Some(why);
    }

    /// Whether the cooldown is over and a trial should be sent: the breaker is open, its time is
    /// up, and the listing does not fail (a trial then would only cost tokens).
    pub fn trial_due(&self, now: Instant) -> bool {
        self.breaker == Breaker::Open
            && self.open_until.is_none_or(|t| now >= t)
            && self.probe != ProbeState::Down
    }

    /// The trial was sent.
    pub fn start_trial(&mut self) {
        self.breaker = Breaker::HalfOpen;
        self.trials += 1;
    }

    /// The trial's outcome. Returns whether `usable()` changed.
    pub fn on_trial(
        &mut self,
        policy: &HealthPolicy,
        now: Instant,
        result: Result<(), String>,
    ) -> bool {
        let before = self.usable();
        if self.breaker == Breaker::Closed {
            return false; // real traffic closed it meanwhile
        }
        match result {
            Ok(()) => self.close("trial request answered".into()),
            Err(e) => {
                self.trial_failures += 1;
                self.level = self.level.saturating_add(1);
                self.last_traffic_failure = Some(now);
                self.last_error = Some(format!("trial: {e}"));
                self.open(policy, now);
            }
        }
        before != self.usable()
    }

    /// Lower is more likely to work (see [`order`]). Probe-down endpoints count from when they
    /// went down, not from their latest failed probe: probes fail every interval, and ranking by
    /// them would reorder the route on every tick.
    fn rank(&self) -> (u8, Option<Instant>) {
        if self.usable() {
            (0, None)
        } else if self.probe != ProbeState::Down {
            (1, self.last_traffic_failure)
        } else {
            (2, self.last_traffic_failure.max(self.down_since))
        }
    }
}

/// The endpoints to list in a route, in order. The usable ones in config order; with none
/// usable, all of them, ordered by what is most likely to work: first those whose listing
/// answers (out by traffic only: a chat outage may have ended, and the breaker closes on the
/// first request that succeeds), then those whose listing fails; within each, the one whose last
/// failure is oldest first (config order on ties). Each failed request refreshes the failure
/// time of the endpoint that took it, so a `priority` route moves on to the next instead of
/// retrying its first endpoint forever. Returns the list and whether it is that fallback.
pub fn order<T: Clone>(endpoints: &[(T, &Endpoint)]) -> (Vec<T>, bool) {
    let usable: Vec<T> = endpoints
        .iter()
        .filter(|(_, e)| e.usable())
        .map(|(t, _)| t.clone())
        .collect();
    if !usable.is_empty() || endpoints.is_empty() {
        return (usable, false);
    }
    let mut all: Vec<(usize, &(T, &Endpoint))> = endpoints.iter().enumerate().collect();
    all.sort_by_key(|(i, (_, e))| (e.rank(), *i));
    (all.into_iter().map(|(_, (t, _))| t.clone()).collect(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy::for_interval(Duration::from_secs(30))
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Feeds cumulative counters like the daemon's `/v1/metrics`.
    struct Traffic {
        requests: u64,
        errors: u64,
    }

    impl Traffic {
        fn new(e: &mut Endpoint, p: &HealthPolicy, now: Instant) -> Self {
            e.on_traffic(p, now, 0, 0);
            Self {
                requests: 0,
                errors: 0,
            }
        }
        fn poll(
            &mut self,
            e: &mut Endpoint,
            p: &HealthPolicy,
            now: Instant,
            ok: u64,
            failed: u64,
        ) -> bool {
            self.requests += ok + failed;
            self.errors += failed;
            e.on_traffic(p, now, self.requests, self.errors)
        }
    }

    #[test]
    fn defaults_follow_the_probe_interval() {
        let p = policy();
        assert_eq!((p.cooldown, p.max_cooldown), (s(30), s(300)));
        let fast = HealthPolicy::for_interval(Duration::from_millis(300));
        assert_eq!((fast.cooldown, fast.max_cooldown), (s(1), s(16)));
        assert_eq!(p.cooldown_at(0), s(30));
        assert_eq!(p.cooldown_at(3), s(240));
        assert_eq!(p.cooldown_at(4), s(300));
        assert_eq!(p.cooldown_at(u32::MAX), s(300));
    }

    #[test]
    fn probes_mark_down_at_once_and_restore_after_two_successes() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        assert!(e.usable());
        assert_eq!(e.health(), "unknown");
        assert!(!e.on_probe(&p, t0, Ok(()), Duration::from_millis(12)));
        assert_eq!(e.health(), "healthy");
        assert!(e.on_probe(&p, t0 + s(30), Err("connection refused".into()), s(0)));
        assert_eq!(e.last_error(), Some("probe: connection refused"));
        assert!(
            !e.on_probe(&p, t0 + s(60), Ok(()), s(0)),
            "one success is not enough"
        );
        assert!(e.on_probe(&p, t0 + s(90), Ok(()), s(0)));
        assert!(e.usable());
        assert_eq!(e.last_error(), None);
        assert_eq!((e.probes, e.probe_failures), (4, 1));
        assert_eq!(e.last_probe_ms, Some(0.0));
    }

    #[test]
    fn a_good_listing_never_restores_what_traffic_found_failing() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        e.on_probe(&p, t0, Ok(()), s(0));
        let mut traffic = Traffic::new(&mut e, &p, t0);
        assert!(traffic.poll(&mut e, &p, t0 + s(1), 0, 1), "trips at once");
        assert_eq!(e.breaker(), Breaker::Open);
        assert_eq!(e.last_error(), Some("traffic: 1 of 1 request(s) failed"));
        for i in 1..100 {
            e.on_probe(&p, t0 + s(i), Ok(()), s(0));
            assert!(!e.usable(), "listing success {i} restored it");
        }
        assert!(e.trial_due(t0 + s(100)));
    }

    #[test]
    fn the_cooldown_doubles_while_trials_fail_and_a_passed_trial_restores() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        traffic.poll(&mut e, &p, t0, 0, 2);
        assert_eq!(e.cooldown(&p), Some(s(30)));
        assert!(!e.trial_due(t0 + s(29)));
        let mut now = t0 + s(30);
        for expected in [60, 120, 240, 300, 300] {
            assert!(e.trial_due(now));
            e.start_trial();
            assert_eq!(e.breaker(), Breaker::HalfOpen);
            assert!(!e.trial_due(now), "one trial at a time");
            assert!(!e.on_trial(&p, now, Err("HTTP 529 (overloaded)".into())));
            assert_eq!(e.cooldown(&p), Some(s(expected)));
            assert!(!e.trial_due(now + s(expected) - Duration::from_millis(1)));
            now += s(expected);
        }
        assert_eq!(e.last_error(), Some("trial: HTTP 529 (overloaded)"));
        e.start_trial();
        assert!(e.on_trial(&p, now, Ok(())));
        assert!(e.usable());
        assert_eq!(e.last_recovery(), Some("trial request answered"));
        assert_eq!((e.trips, e.trials, e.trial_failures), (1, 6, 5));
    }

    #[test]
    fn ten_minutes_of_chat_only_failure_cost_one_user_request_and_a_few_trials() {
        // The goal: an endpoint whose chat fails for 10 minutes while its listing
        // answers 200 fails at most 3 user requests. Users send 10 req/s; metrics are read every
        // 250 ms; probes every 30 s; trials whenever due.
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        let (mut failed_user_requests, mut trials) = (0, 0);
        let mut now = t0;
        let end = t0 + s(600);
        while now < end {
            now += Duration::from_millis(250);
            if (now - t0).as_millis().is_multiple_of(30_000) {
                e.on_probe(&p, now, Ok(()), s(0));
            }
            if e.trial_due(now) {
                e.start_trial();
                trials += 1;
                e.on_trial(&p, now, Err("HTTP 529 (overloaded)".into()));
            }
            // The daemon sends the 2-3 requests of this poll interval here only if usable.
            let sent = if e.usable() { 3 } else { 0 };
            failed_user_requests += sent;
            traffic.poll(&mut e, &p, now, 0, sent);
        }
        assert!(failed_user_requests <= 3, "{failed_user_requests}");
        assert!(
            (4..=7).contains(&trials),
            "30+60+120+240 s ..: {trials} trials"
        );
    }

    #[test]
    fn partial_failures_trip_on_count_or_ratio_within_the_window() {
        let p = policy();
        let t0 = Instant::now();
        // 1 failure among many successes: stays in.
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        assert!(!traffic.poll(&mut e, &p, t0 + s(1), 9, 1));
        assert!(e.usable());
        // A third failure within a minute trips it.
        assert!(!traffic.poll(&mut e, &p, t0 + s(2), 9, 1));
        assert!(traffic.poll(&mut e, &p, t0 + s(3), 9, 1));
        assert!(!e.usable());

        // Failures spread beyond the window never trip.
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        for i in 0..10 {
            assert!(!traffic.poll(&mut e, &p, t0 + s(61 * i), 20, 1));
        }
        assert!(e.usable());

        // Half failing trips on the ratio.
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        assert!(traffic.poll(&mut e, &p, t0 + s(1), 2, 2));
    }

    #[test]
    fn a_new_trip_soon_after_recovery_grows_the_cooldown_and_an_old_one_does_not() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        traffic.poll(&mut e, &p, t0, 0, 1);
        e.start_trial();
        e.on_trial(&p, t0 + s(30), Ok(()));
        traffic.poll(&mut e, &p, t0 + s(40), 0, 1);
        assert_eq!(e.cooldown(&p), Some(s(60)), "flapping: longer");
        e.start_trial();
        e.on_trial(&p, t0 + s(100), Ok(()));
        traffic.poll(&mut e, &p, t0 + s(1000), 0, 1);
        assert_eq!(e.cooldown(&p), Some(s(30)), "long after: back to the start");
    }

    #[test]
    fn a_real_success_while_out_closes_the_breaker_and_restarted_counters_are_no_failure() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        traffic.poll(&mut e, &p, t0, 0, 1);
        assert!(!e.usable());
        assert!(traffic.poll(&mut e, &p, t0 + s(1), 1, 0));
        assert!(e.usable());
        assert_eq!(e.last_recovery(), Some("1 real request(s) succeeded"));
        // A late trial result does not reopen it.
        assert!(!e.on_trial(&p, t0 + s(2), Err("late".into())));
        assert!(e.usable());

        e.reset_traffic();
        assert!(!e.on_traffic(&p, t0 + s(3), 0, 0));
        assert!(!e.on_traffic(&p, t0 + s(4), 5, 0));
        // Totals going down (daemon restarted under us): a new baseline.
        assert!(!e.on_traffic(&p, t0 + s(5), 1, 1));
        assert!(e.usable());
    }

    #[test]
    fn no_trial_while_the_listing_fails() {
        let p = policy();
        let t0 = Instant::now();
        let mut e = Endpoint::default();
        let mut traffic = Traffic::new(&mut e, &p, t0);
        traffic.poll(&mut e, &p, t0, 0, 1);
        e.on_probe(&p, t0 + s(10), Err("connection refused".into()), s(0));
        assert!(!e.trial_due(t0 + s(60)));
        e.on_probe(&p, t0 + s(70), Ok(()), s(0));
        e.on_probe(&p, t0 + s(80), Ok(()), s(0));
        assert!(
            !e.usable(),
            "the listing is back; the breaker is still open"
        );
        assert!(e.trial_due(t0 + s(80)));
    }

    #[test]
    fn with_all_out_the_most_likely_endpoint_leads_and_failures_rotate_it() {
        let p = policy();
        let t0 = Instant::now();
        let (mut a, mut b, mut c) = (
            Endpoint::default(),
            Endpoint::default(),
            Endpoint::default(),
        );
        let (mut ta, mut tb) = (Traffic::new(&mut a, &p, t0), Traffic::new(&mut b, &p, t0));
        // c's listing fails; a then b fail real traffic.
        c.on_probe(&p, t0, Err("connection refused".into()), s(0));
        ta.poll(&mut a, &p, t0 + s(1), 0, 1);
        tb.poll(&mut b, &p, t0 + s(2), 0, 1);
        let list =
            |a: &Endpoint, b: &Endpoint, c: &Endpoint| order(&[("a", a), ("b", b), ("c", c)]);
        assert_eq!(list(&a, &b, &c), (vec!["a", "b", "c"], true));
        // a is tried and fails again: b's failure is older now.
        ta.poll(&mut a, &p, t0 + s(3), 0, 1);
        assert_eq!(list(&a, &b, &c).0, ["b", "a", "c"]);
        // Any usable endpoint wins alone.
        tb.poll(&mut b, &p, t0 + s(4), 1, 0);
        assert_eq!(list(&a, &b, &c), (vec!["b"], false));
        // Probe-healthy endpoints in config order.
        let fresh = Endpoint::default();
        assert_eq!(
            order(&[("x", &fresh), ("y", &fresh)]),
            (vec!["x", "y"], false)
        );
    }
}
