//! The resync: every object reconciled again once per period even without a change, the safety
//! net for a missed event or drift nobody watches.
//!
//! It is neither a requeue per object nor one tick for the whole store. A pending requeue holds
//! a timer per object (in kube-runtime's scheduler, which the work queue replaced, about 0.9 KB:
//! 7 KiB per prism-local cluster at 300 clusters) that fires for every object anyway; one tick
//! for all would queue every object at once and put a user's change behind thousands of no-op
//! reconciles. Instead the period is cut into [`SLOTS`] slots, each object has one by the hash of
//! its key, and each slot's objects are queued in turn: nothing is held per object, and the work
//! is spread evenly over the period.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::ObjectRef;

use crate::indexed::Indexed;
use crate::kinds::Watched;

/// Slots per period: at the default 10 minutes, one slot every 10 s.
pub const SLOTS: u64 = 60;

/// The slot of the object `namespace/name`, the same for the object's whole life.
pub fn slot_of(namespace: Option<&str>, name: &str) -> u64 {
    // SipHash with fixed keys: the same slot in every run and on every replica.
    let mut hasher = DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    hasher.finish() % SLOTS
}

/// The objects of `store` to reconcile again, a slot's worth every `period / SLOTS`, the first
/// slot one interval from now (the first list has just reconciled everything).
pub fn resyncs<K: Watched>(store: Indexed<K>, period: Duration) -> impl Stream<Item = ObjectRef<K>> + Send + 'static {
    let every = (period / SLOTS as u32).max(Duration::from_millis(1));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A slot missed while the runtime was busy is not made up for with a burst of slots.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    stream::unfold((interval, 0), move |(mut interval, slot)| {
        let store = store.clone();
        async move {
            interval.tick().await;
            let due: Vec<ObjectRef<K>> = store
                .state()
                .iter()
                // Every slot looks at every object: borrowed, not copied, keys.
                .filter(|object| {
                    let meta = object.meta();
                    slot_of(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default()) == slot
                })
                .map(|object| ObjectRef::from_obj(object.as_ref()))
                .collect();
            Some((stream::iter(due), (interval, (slot + 1) % SLOTS)))
        }
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use futures::{FutureExt, StreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    use crate::indexed::indexed;

    use super::*;

    fn config_map(namespace: &str, name: &str) -> ConfigMap {
        let metadata =
            ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..ObjectMeta::default() };
        ConfigMap { metadata, ..ConfigMap::default() }
    }

    #[test]
    fn slots_are_stable_and_spread() {
        assert_eq!(slot_of(Some("bench-1"), "prism-local"), slot_of(Some("bench-1"), "prism-local"));
        let mut per_slot = BTreeMap::<u64, usize>::new();
        for n in 0..6_000 {
            *per_slot.entry(slot_of(Some(&format!("bench-{}", n / 6)), &format!("pattern-{}", n % 6))).or_default() +=
                1;
        }
        assert_eq!(per_slot.len(), SLOTS as usize, "every slot is used");
        let (fewest, most) = (per_slot.values().min(), per_slot.values().max());
        assert!(fewest >= Some(&60) && most <= Some(&140), "100 per slot on average: {fewest:?}..{most:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_object_once_per_period_and_none_at_start() {
        let (reader, mut writer) = indexed::<ConfigMap>();
        writer.apply(&Event::Init);
        for n in 0..200 {
            writer.apply(&Event::InitApply(config_map("prism", &format!("cm-{n}"))));
        }
        writer.apply(&Event::InitDone);
        let period = Duration::from_secs(600);
        let mut resyncs = Box::pin(resyncs(reader, period));
        assert!(resyncs.next().now_or_never().is_none(), "nothing right after the first list");

        // The last slot of the first round is due one period from now; the first of the next
        // round a slot later.
        let round_end = tokio::time::Instant::now() + period + period / (2 * SLOTS as u32);
        let mut seen = BTreeMap::<String, usize>::new();
        while let Ok(Some(due)) = tokio::time::timeout_at(round_end, resyncs.next()).await {
            *seen.entry(due.name).or_default() += 1;
        }
        assert_eq!(seen.len(), 200, "every object in one period");
        assert!(seen.values().all(|&times| times == 1), "each object once");
    }
}
