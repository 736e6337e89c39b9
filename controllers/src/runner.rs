//! Running a controller: what wakes its objects ([`Triggers`]), and the loop that reconciles them
//! `concurrency` at a time in the order they were asked for ([`run`], over a [`WorkQueue`]).
//!
//! This replaces kube-runtime's `Controller::run`, whose runner serves due objects in hash order
//! once its slots are full (see `queue`). The triggers are kube-runtime's relations (the object
//! itself, its owners, a mapper, a stream of keys), kept as compact keys ([`Key`]).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::indexed::Indexed;
use crate::kinds::Watched;
use crate::metrics::Metrics;
use crate::queue::WorkQueue;

/// How long an object whose reconcile panicked waits before it is tried again: a bug, not a
/// condition that a quick retry mends.
const AFTER_PANIC: Duration = Duration::from_secs(60);

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again in `delay`, even without a change.
    pub const fn requeue(delay: Duration) -> Self {
        Action { requeue_after: Some(delay) }
    }

    /// Reconcile again at the next change (or resync).
    pub const fn await_change() -> Self {
        Action { requeue_after: None }
    }

    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// What wakes a controller's objects, as streams of their keys, and the cache they are read from.
pub struct Triggers<K: Watched> {
    store: Indexed<K>,
    keys: Vec<BoxStream<'static, Key>>,
}

impl<K: Watched> Triggers<K> {
    /// The objects cached in `store`, each woken by its own `changes`.
    pub fn new(store: Indexed<K>, changes: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static) -> Self {
        Triggers { store, keys: Vec::new() }.watches_stream(changes, |object: K| Some(ObjectRef::from_obj(&object)))
    }

    pub fn store(&self) -> Indexed<K> {
        self.store.clone()
    }

    /// A change of a child wakes its owners of kind `K`.
    #[must_use]
    pub fn owns_stream<C: Resource + Send + 'static>(
        self,
        changes: impl Stream<Item = Result<C, watcher::Error>> + Send + 'static,
    ) -> Self {
        self.watches_stream(changes, |mut child: C| {
            // Owned: its metadata is moved out, not copied, to read two fields.
            let meta = std::mem::take(child.meta_mut());
            let ns = meta.namespace;
            let owners = meta.owner_references.into_iter().flatten();
            owners.filter_map(move |owner| ObjectRef::from_owner_ref(ns.as_deref(), &owner, ()))
        })
    }

    /// A change of another object wakes the objects `mapper` names.
    #[must_use]
    pub fn watches_stream<O, I>(
        self,
        changes: impl Stream<Item = Result<O, watcher::Error>> + Send + 'static,
        mapper: impl Fn(O) -> I + Send + 'static,
    ) -> Self
    where
        O: Resource + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>>,
        I::IntoIter: Send + 'static,
    {
        let changed = changes.filter_map(|change| {
            // Each watch backs off and resumes on its own; a relist follows.
            let changed = change.inspect_err(|error| tracing::debug!(%error, "watch interrupted"));
            std::future::ready(changed.ok())
        });
        self.reconcile_on(changed.flat_map(move |object| stream::iter(mapper(object))))
    }

    /// The objects `keys` names are woken.
    #[must_use]
    pub fn reconcile_on(mut self, keys: impl Stream<Item = ObjectRef<K>> + Send + 'static) -> Self {
        self.keys.push(keys.map(|key| Key::of(&key)).boxed());
        self
    }
}

/// An object's key in the work queue, `namespace/name` (`/name` for a cluster-scoped one): one
/// allocation that the queue's order and its set share. An `ObjectRef` takes 96 bytes inline
/// and a heap copy of each part, and at 1,000 clusters a queue holds thousands of keys at once;
/// the room its tables grew to stays with them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(Arc<str>);

impl Key {
    fn of<K: Watched>(object: &ObjectRef<K>) -> Key {
        Key(format!("{}/{}", object.namespace.as_deref().unwrap_or_default(), object.name).into())
    }

    /// The namespace ("" for a cluster-scoped object) and the name.
    fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("", &self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a controller's loop runs.
pub struct Settings {
    /// Its name in metrics.
    pub controller: &'static str,
    /// Reconciles at once; 0: no limit.
    pub concurrency: u16,
    pub metrics: Arc<Metrics>,
}

/// What a pass ends with: its object's key and the object, and what the reconcile returned (or
/// its panic).
type Ended<K> = (Key, Arc<K>, std::thread::Result<Result<Action, Error>>);

/// The loop's work: the queue, the passes running, and what starts and ends one.
struct Passes<K: Watched, Ctx, Fut> {
    store: Indexed<K>,
    queue: WorkQueue<Key>,
    running: JoinSet<Ended<K>>,
    reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: fn(Arc<K>, &Error, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    settings: Settings,
}

impl<K, Ctx, Fut> Passes<K, Ctx, Fut>
where
    K: Watched,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    /// Starts the passes of the keys first in line, up to the concurrency limit.
    fn start(&mut self) {
        let Settings { controller, concurrency, ref metrics } = self.settings;
        let limit = if concurrency == 0 { usize::MAX } else { usize::from(concurrency) };
        while self.running.len() < limit {
            let Some((key, waited)) = self.queue.take() else { break };
            metrics.queue_waited(controller, waited);
            let (ns, name) = key.parts();
            match self.store.get(ns, name) {
                Some(object) => {
                    let pass = AssertUnwindSafe((self.reconcile)(object.clone(), self.ctx.clone())).catch_unwind();
                    self.running.spawn(pass.map(move |outcome| (key, object, outcome)));
                }
                // Deleted since it was asked for.
                None => self.queue.done(key, None),
            }
        }
    }

    /// Ends a pass: the object is queued again as the pass (or the error policy) asks.
    fn end(&mut self, (key, object, outcome): Ended<K>) {
        let action = match outcome {
            Ok(Ok(action)) => action,
            Ok(Err(error)) => (self.error_policy)(object, &error, self.ctx.clone()),
            Err(_) => {
                tracing::error!(object = %key, retry_in = ?AFTER_PANIC, "reconcile panicked");
                Action::requeue(AFTER_PANIC)
            }
        };
        self.queue.done(key, action.requeue_after());
    }
}

/// Runs the reconciles `triggers` ask for until `shutdown` completes, then lets those in flight
/// finish. Nothing is reconciled before the objects' cache has listed; if it never has by the
/// shutdown (no CRDs installed, no permission to list), the loop stops at once.
pub async fn run<K, Ctx, Fut>(
    triggers: Triggers<K>,
    reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: fn(Arc<K>, &Error, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) where
    K: Watched,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let Triggers { store, keys } = triggers;
    let mut asked = stream::select_all(keys);
    let listing = store.clone();
    let mut listed = pin!(listing.wait_listed());
    let mut shutdown = pin!(shutdown);
    let queue = WorkQueue::default();
    let mut passes = Passes { store, queue, running: JoinSet::new(), reconcile, error_policy, ctx, settings };
    let (mut ready, mut stopping, mut asking) = (false, false, true);
    loop {
        if ready && !stopping {
            passes.start();
        }
        passes.settings.metrics.set_queue_depth(passes.settings.controller, passes.queue.waiting());
        if stopping && (passes.running.is_empty() || !ready) {
            if !ready {
                tracing::info!(kind = %K::kind(&()), "stopping before the first list completed");
            }
            return;
        }
        tokio::select! {
            Some(joined) = passes.running.join_next() => match joined {
                Ok(ended) => passes.end(ended),
                // Only a shutdown of the runtime cancels a pass.
                Err(error) => tracing::debug!(%error, "reconcile cancelled"),
            },
            key = asked.next(), if asking && !stopping => match key {
                Some(key) => passes.queue.add(key),
                None => asking = false,
            },
            () = std::future::poll_fn(|cx| passes.queue.poll_due(cx)), if !stopping => {}
            () = &mut listed, if !ready => ready = true,
            () = &mut shutdown, if !stopping => stopping = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;
    use tokio::sync::oneshot;

    use super::*;
    use crate::indexed::{IndexWriter, indexed};

    fn config_map(name: &str) -> ConfigMap {
        let metadata = ObjectMeta { name: Some(name.into()), namespace: Some("prism".into()), ..ObjectMeta::default() };
        ConfigMap { metadata, ..ConfigMap::default() }
    }

    fn listed(names: &[&str]) -> (Indexed<ConfigMap>, IndexWriter<ConfigMap>) {
        let (store, mut writer) = indexed::<ConfigMap>();
        writer.apply(&Event::Init);
        for name in names {
            writer.apply(&Event::InitApply(config_map(name)));
        }
        writer.apply(&Event::InitDone);
        (store, writer)
    }

    /// The names of the objects reconciled, in order; an object named "panics" panics.
    #[derive(Default)]
    struct Passes(Mutex<Vec<String>>);

    impl Passes {
        fn seen(&self) -> Vec<String> {
            self.0.lock().expect("not poisoned").clone()
        }
    }

    async fn reconcile(object: Arc<ConfigMap>, passes: Arc<Passes>) -> Result<Action, Error> {
        let name = object.metadata.name.clone().unwrap_or_default();
        assert_ne!(name, "panics", "a bug in a reconcile");
        passes.0.lock().expect("not poisoned").push(name);
        Ok(Action::await_change())
    }

    fn error_policy(_: Arc<ConfigMap>, _: &Error, _: Arc<Passes>) -> Action {
        Action::await_change()
    }

    fn settings(concurrency: u16) -> Settings {
        Settings { controller: "test", concurrency, metrics: Arc::new(Metrics::new()) }
    }

    /// Runs the loop over `asked` (in that order) until `until` holds of what was reconciled.
    async fn run_until(store: Indexed<ConfigMap>, asked: &[&str], until: impl Fn(&[String]) -> bool) -> Vec<String> {
        let changes: Vec<Result<ConfigMap, watcher::Error>> = asked.iter().map(|name| Ok(config_map(name))).collect();
        let passes = Arc::new(Passes::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move { drop(stopped.await) };
        let triggers = Triggers::new(store, stream::iter(changes));
        let running = tokio::spawn(run(triggers, reconcile, error_policy, passes.clone(), settings(1), shutdown));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !until(&passes.seen()) {
            assert!(tokio::time::Instant::now() < deadline, "only {:?}", passes.seen());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).expect("the loop still runs");
        tokio::time::timeout(Duration::from_secs(10), running).await.expect("stops").expect("no panic");
        passes.seen()
    }

    #[tokio::test]
    async fn objects_are_reconciled_in_the_order_they_were_asked_for() {
        let (store, _writer) = listed(&["a", "b", "c"]);
        let seen = run_until(store, &["c", "a", "b", "a"], |seen| seen.len() >= 3).await;
        assert_eq!(seen, ["c", "a", "b"], "'a' asked for again while waiting keeps its place");
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_caught_and_the_others_go_on() {
        let (store, _writer) = listed(&["panics", "fine"]);
        let seen = run_until(store, &["panics", "fine"], |seen| seen.contains(&"fine".to_string())).await;
        assert_eq!(seen, ["fine"]);
    }

    #[tokio::test]
    async fn a_shutdown_before_the_first_list_stops_at_once() {
        let (store, _writer) = indexed::<ConfigMap>();
        let triggers = Triggers::new(store, stream::iter([Ok(config_map("a"))]));
        let passes = Arc::new(Passes::default());
        let running = run(triggers, reconcile, error_policy, passes.clone(), settings(4), async {});
        tokio::time::timeout(Duration::from_secs(5), running).await.expect("stopped at once");
        assert!(passes.seen().is_empty());
    }
}
