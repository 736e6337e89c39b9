//! A controller's work queue: which objects to reconcile, first asked, first served.
//!
//! kube-runtime's runner, once its `concurrency` slots are full, parks every due object in a hash
//! set and takes them back in hash order, not in the order they came. Under steady load (child
//! status changes wake their owners all the time) the objects early in that order were reconciled
//! again and again while others waited: at 300 clusters a PrismPattern's first reconcile came a
//! median 1 s after its creation, but 125 s at worst, and a cluster is only Running once its
//! slowest pattern is.
//!
//! This queue is client-go's. An object asked for while it waits keeps its place. One asked for
//! while it is being reconciled is not reconciled twice at once: it is marked, and queued again
//! when that pass ends, so no change is missed. A requeue waits in a timer queue, the earliest
//! time winning, and an object asked for now leaves it. Only keys are held: the object is read
//! from the cache when its turn comes, so a waiting object costs its key, not a copy of the
//! version that asked for it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::time::delay_queue::{self, DelayQueue};

/// Keys an emptied queue keeps room for.
const KEPT_ROOM: usize = 64;

/// Keys to reconcile: waiting in order, running, or due later.
#[derive(Debug)]
pub struct WorkQueue<T> {
    /// Keys to reconcile now, oldest first, each with when it was asked for.
    waiting: VecDeque<(T, Instant)>,
    /// The keys in `waiting`.
    queued: HashSet<T>,
    /// Keys being reconciled, each with whether it was asked for again meanwhile.
    running: HashMap<T, bool>,
    /// Keys due later, each with its timer and its time.
    later: DelayQueue<T>,
    timers: HashMap<T, (delay_queue::Key, Instant)>,
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            waiting: VecDeque::new(),
            queued: HashSet::new(),
            running: HashMap::new(),
            later: DelayQueue::new(),
            timers: HashMap::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> WorkQueue<T> {
    /// Asks for `key` to be reconciled now: at the back of the queue unless it waits already, or
    /// again after its running pass.
    pub fn add(&mut self, key: T) {
        if let Some(again) = self.running.get_mut(&key) {
            *again = true;
            return;
        }
        if let Some((timer, _)) = self.timers.remove(&key) {
            self.later.remove(&timer);
        }
        if self.queued.insert(key.clone()) {
            self.waiting.push_back((key, Instant::now()));
        }
    }

    /// Asks for `key` to be reconciled in `delay`, unless it waits already or is due sooner.
    fn add_after(&mut self, key: T, delay: Duration) {
        if self.queued.contains(&key) {
            return;
        }
        let at = Instant::now() + delay;
        match self.timers.get_mut(&key) {
            Some((_, due)) if *due <= at => {}
            Some((timer, due)) => {
                self.later.reset_at(timer, at);
                *due = at;
            }
            None => {
                let timer = self.later.insert_at(key.clone(), at);
                self.timers.insert(key, (timer, at));
            }
        }
    }

    /// The next key to reconcile and how long it waited, now marked running: no other pass of it
    /// starts until [`WorkQueue::done`].
    pub fn take(&mut self) -> Option<(T, Duration)> {
        let (key, since) = self.waiting.pop_front()?;
        self.queued.remove(&key);
        if self.waiting.is_empty() {
            // A burst (a first list, thousands of new objects) grew these; an idle queue gives
            // the room back instead of keeping it for the process's life.
            self.waiting.shrink_to(KEPT_ROOM);
            self.queued.shrink_to(KEPT_ROOM);
        }
        self.running.insert(key.clone(), false);
        Some((key, since.elapsed()))
    }

    /// Ends the pass of `key`: queued again now if it was asked for meanwhile, else in
    /// `requeue_after` if any.
    pub fn done(&mut self, key: T, requeue_after: Option<Duration>) {
        let asked_again = self.running.remove(&key).unwrap_or(false);
        if self.running.is_empty() {
            self.running.shrink_to(KEPT_ROOM);
        }
        match requeue_after {
            _ if asked_again => self.add(key),
            Some(delay) => self.add_after(key, delay),
            None => {}
        }
    }

    /// Moves the keys whose time has come to the back of the queue; ready when it moved any.
    pub fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut moved = false;
        while let Poll::Ready(Some(expired)) = self.later.poll_expired(cx) {
            let key = expired.into_inner();
            self.timers.remove(&key);
            if self.timers.is_empty() {
                self.timers.shrink_to(KEPT_ROOM);
                self.later.shrink_to_fit();
            }
            self.add(key);
            moved = true;
        }
        if moved { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Keys waiting to be reconciled now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Keys being reconciled.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Keys due later.
    pub fn later(&self) -> usize {
        self.timers.len()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use futures::FutureExt;

    use super::WorkQueue;

    fn drain(queue: &mut WorkQueue<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| queue.take().map(|(key, _)| key)).collect()
    }

    #[test]
    fn keys_are_served_in_the_order_they_were_asked_for() {
        let mut queue = WorkQueue::default();
        for key in ["c", "a", "b", "a", "c"] {
            queue.add(key);
        }
        assert_eq!(drain(&mut queue), ["c", "a", "b"], "a key asked for again keeps its place");
    }

    #[test]
    fn a_key_is_never_reconciled_twice_at_once_and_no_change_is_missed() {
        let mut queue = WorkQueue::default();
        queue.add("a");
        assert_eq!(drain(&mut queue), ["a"]);
        queue.add("a");
        queue.add("b");
        assert_eq!(drain(&mut queue), ["b"], "'a' runs: not handed out again");
        queue.done("a", None);
        assert_eq!(drain(&mut queue), ["a"], "asked for while running: queued when its pass ends");
        queue.done("a", None);
        queue.done("b", None);
        assert!(queue.take().is_none());
        assert_eq!((queue.running(), queue.waiting(), queue.later()), (0, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_waits_its_time_and_the_earliest_wins() {
        let mut queue = WorkQueue::default();
        queue.add("a");
        assert_eq!(drain(&mut queue), ["a"]);
        queue.done("a", Some(Duration::from_secs(10)));
        queue.add_after("a", Duration::from_secs(30));
        queue.add_after("a", Duration::from_secs(5));
        assert_eq!(queue.later(), 1);
        assert!(poll_fn(|cx| queue.poll_due(cx)).now_or_never().is_none(), "not due yet");
        tokio::time::advance(Duration::from_secs(5)).await;
        poll_fn(|cx| queue.poll_due(cx)).await;
        assert_eq!(drain(&mut queue), ["a"]);
        assert_eq!(queue.later(), 0, "one timer per key");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_asked_for_now_leaves_its_timer() {
        let mut queue = WorkQueue::default();
        queue.add_after("a", Duration::from_secs(10));
        queue.add("a");
        assert_eq!(queue.later(), 0);
        assert_eq!(drain(&mut queue), ["a"]);
        queue.done("a", None);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(poll_fn(|cx| queue.poll_due(cx)).now_or_never().is_none(), "no timer fired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_tells_how_long_it_waited_from_when_it_was_first_asked_for() {
        let mut queue = WorkQueue::default();
        queue.add("a");
        tokio::time::advance(Duration::from_secs(3)).await;
        queue.add("a");
        assert_eq!(queue.take(), Some(("a", Duration::from_secs(3))));
    }

    #[test]
    fn an_emptied_queue_gives_back_the_room_a_burst_took() {
        let mut queue = WorkQueue::default();
        for n in 0..10_000 {
            queue.add(n);
        }
        while let Some((key, _)) = queue.take() {
            queue.done(key, None);
        }
        let room = (queue.waiting.capacity(), queue.queued.capacity(), queue.running.capacity());
        assert!(room.0 < 1_000 && room.1 < 1_000 && room.2 < 1_000, "{room:?}");
    }

    #[test]
    fn a_pass_asked_for_again_ignores_its_own_requeue() {
        let mut queue = WorkQueue::default();
        queue.add("a");
        assert_eq!(drain(&mut queue), ["a"]);
        queue.add("a");
        queue.done("a", Some(Duration::from_secs(60)));
        assert_eq!((queue.waiting(), queue.later()), (1, 0), "queued now, not in a minute");
    }
}
