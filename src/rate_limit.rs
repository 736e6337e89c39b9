//! Client-side rate limiting of API requests: a token bucket as a tower layer around the kube
//! client's HTTP service (kube has none built in; client-go's QPS/burst is the model).
//!
//! A request waits for a token before it is sent; a watch costs one token when it starts, not
//! per event. The bucket starts full, so a burst of `burst` requests goes out at once. Clones of
//! the service share the bucket: a retry (which sends from a clone) waits for its own token. The
//! controllers read the bucket too ([`SharedBucket`]): they hold back writes that only report
//! progress while requests queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prism_controllers::context::RequestBudget;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// A token bucket refilled at `qps` tokens per second, holding at most `burst` tokens.
///
/// Reservations may drive the balance negative: each caller is told how long to wait for its
/// token, so waiting callers are served in order and the long-run rate is exactly `qps`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// `qps` must be positive and finite, `burst` at least 1 (checked by the flag validation).
    pub fn new(qps: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket { qps, burst, tokens: burst, updated: now }
    }

    /// Takes one token; returns how long the caller must wait before using it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.qps) }
    }

    /// Whether a token taken at `now` would have to be waited for.
    pub fn is_empty(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens < 1.0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.updated = now.max(self.updated);
    }
}

/// A token bucket shared by the services of one [`RateLimitLayer`] and by whoever asks whether
/// it is empty.
#[derive(Debug, Clone)]
pub struct SharedBucket(Arc<Mutex<TokenBucket>>);

impl SharedBucket {
    fn with<T>(&self, f: impl FnOnce(&mut TokenBucket) -> T) -> T {
        // A bucket is a few numbers, each update whole: poisoning cannot leave it torn.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The requests of a client queue while its bucket is empty: each waits for the one before.
impl RequestBudget for SharedBucket {
    fn exhausted(&self) -> bool {
        self.with(|bucket| bucket.is_empty(Instant::now()))
    }
}

/// Limits the requests of the wrapped service to `qps` per second with bursts of `burst`. The
/// services it makes share one bucket.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: SharedBucket,
}

impl RateLimitLayer {
    pub fn new(qps: f64, burst: u32) -> RateLimitLayer {
        let bucket = TokenBucket::new(qps, burst, Instant::now());
        RateLimitLayer { bucket: SharedBucket(Arc::new(Mutex::new(bucket))) }
    }

    /// The layer of `--qps` and `--burst`: none for a QPS of 0 (unlimited).
    pub fn from_qps(qps: f64, burst: u32) -> Option<RateLimitLayer> {
        (qps > 0.0).then(|| RateLimitLayer::new(qps, burst))
    }

    /// The bucket its services take their tokens from.
    pub fn bucket(&self) -> SharedBucket {
        self.bucket.clone()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit { inner, bucket: self.bucket.clone(), state: State::NeedToken }
    }
}

/// Where a [`RateLimit`] service is between two requests.
#[derive(Debug)]
enum State {
    NeedToken,
    Waiting(Pin<Box<Sleep>>),
    HasToken,
}

/// The service made by [`RateLimitLayer`]. The kube client drives `poll_ready` from one buffer
/// worker, so waiting here queues requests in the client's buffer instead of sending them.
#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    bucket: SharedBucket,
    state: State,
}

/// A clone shares the bucket and needs a token of its own.
impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit { inner: self.inner.clone(), bucket: self.bucket.clone(), state: State::NeedToken }
    }
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        loop {
            match &mut self.state {
                State::NeedToken => {
                    let wait = self.bucket.with(|bucket| bucket.reserve(Instant::now()));
                    self.state = if wait.is_zero() {
                        State::HasToken
                    } else {
                        State::Waiting(Box::pin(tokio::time::sleep(wait)))
                    };
                }
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::HasToken;
                }
                State::HasToken => return self.inner.poll_ready(cx),
            }
        }
    }

    fn call(&mut self, request: R) -> S::Future {
        // The token is spent by this request; the next one reserves its own in poll_ready.
        self.state = State::NeedToken;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_full_bucket_serves_a_burst_at_once() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(start), Duration::ZERO);
        }
    }

    #[test]
    fn past_the_burst_callers_wait_in_turn_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2, start);
        bucket.reserve(start);
        bucket.reserve(start);
        let waits: Vec<Duration> = (0..3).map(|_| bucket.reserve(start)).collect();
        let expected = [secs(0.1), secs(0.2), secs(0.3)];
        for (wait, expected) in waits.iter().zip(expected) {
            assert!(wait.abs_diff(expected) < secs(1e-9), "{waits:?}");
        }
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 4, start);
        for _ in 0..4 {
            bucket.reserve(start);
        }
        // One second later: two tokens back.
        let later = start + secs(1.0);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert!(bucket.reserve(later) > Duration::ZERO);
        // A long idle period refills to the burst, not beyond.
        let much_later = start + secs(3600.0);
        for _ in 0..4 {
            assert_eq!(bucket.reserve(much_later), Duration::ZERO);
        }
        assert!(bucket.reserve(much_later) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_spaces_requests_at_the_rate() {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(Instant::now()) });
        let mut service = RateLimitLayer::new(5.0, 1).layer(inner);
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..3 {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await.expect("ready");
            sent.push(service.call(()).await.expect("infallible") - start);
        }
        assert_eq!(sent, vec![Duration::ZERO, secs(0.2), secs(0.4)]);
    }

    #[test]
    fn the_bucket_is_empty_while_a_caller_waits_and_until_a_token_is_back() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2, start);
        assert!(!bucket.is_empty(start), "full");
        bucket.reserve(start);
        assert!(!bucket.is_empty(start), "a token left");
        bucket.reserve(start);
        bucket.reserve(start);
        assert!(bucket.is_empty(start + secs(0.05)), "a caller waits until 0.1 s");
        assert!(bucket.is_empty(start + secs(0.15)), "its token taken, none is back yet");
        assert!(!bucket.is_empty(start + secs(0.2)), "one token back");
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_reports_its_queue_to_the_controllers() {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(()) });
        let layer = RateLimitLayer::new(5.0, 1);
        let (mut service, bucket) = (layer.layer(inner), layer.bucket());
        assert!(!bucket.exhausted(), "idle");
        std::future::poll_fn(|cx| service.poll_ready(cx)).await.expect("ready");
        service.call(()).await.expect("infallible");
        assert!(bucket.exhausted(), "the next request waits");
        tokio::time::advance(secs(0.2)).await;
        assert!(!bucket.exhausted(), "refilled");
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_the_bucket() {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(Instant::now()) });
        let mut first = RateLimitLayer::new(5.0, 1).layer(inner);
        let mut second = first.clone();
        let start = Instant::now();
        std::future::poll_fn(|cx| first.poll_ready(cx)).await.expect("ready");
        let a = first.call(()).await.expect("infallible") - start;
        std::future::poll_fn(|cx| second.poll_ready(cx)).await.expect("ready");
        let b = second.call(()).await.expect("infallible") - start;
        assert_eq!((a, b), (Duration::ZERO, secs(0.2)), "the clone waited for the token the first one left");
    }
}
