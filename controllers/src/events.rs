//! Events (events.k8s.io/v1), published as kube's `Recorder` and client-go's recorder do: the
//! first occurrence creates an Event, and a repeat within six minutes (same object, type,
//! reason and note) adds to that Event's series instead of creating another, so that a failure
//! retried with backoff stays one object whose count rises.
//!
//! kube's `Recorder` does the same but keeps every Event it published whole, with a copy of its
//! key, for those six minutes: about 5 KB per Event, 5 MiB right after 1,000 clusters converge.
//! A repeat needs only the Event's name and its count, so that is all this recorder keeps.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use serde_json::json;

use crate::intern;

/// How long a published Event takes repeats into its series (kube's and client-go's figure).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Publishes Events for one reporter (controller and instance), counting repeats.
pub struct Recorder {
    client: kube::Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

/// The Events published in the last [`SERIES_WINDOW`], by the hash of what makes two the same.
struct Recent {
    published: HashMap<u64, Published>,
    swept: Instant,
}

/// What a repeat needs of a published Event.
struct Published {
    namespace: Arc<str>,
    name: Box<str>,
    count: i32,
    last: Instant,
}

impl Recorder {
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        let recent = Recent { published: HashMap::new(), swept: Instant::now() };
        Recorder { client, controller: controller.into(), instance: instance.into(), recent: Mutex::new(recent) }
    }

    /// Publishes `event` on `regarding`: a new Event, or one more in the series of the same
    /// Event published in the last six minutes.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let key = same_event_key(event, regarding);
        if let Some((namespace, name, count)) = self.repeat(key) {
            let series = EventSeries { count, last_observed_time: MicroTime(Timestamp::now()) };
            let patch = Patch::Merge(json!({ "series": series }));
            let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            match events.patch(&name, &PatchParams::default(), &patch).await {
                // The Event is gone (Events expire on the server): the repeat starts a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                done => return done.map(drop),
            }
        }
        let created = self.event(event, regarding);
        let namespace = intern::text(created.metadata.namespace.as_deref().unwrap_or("default"));
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &created).await?;
        let name = created.metadata.name.unwrap_or_default().into_boxed_str();
        let published = Published { namespace, name, count: 1, last: Instant::now() };
        self.lock().published.insert(key, published);
        Ok(())
    }

    /// Where a repeat of the Event `key` goes (namespace, name, its count now), counting it;
    /// `None` if it was not published in the last six minutes. Forgets older Events once a
    /// minute, so that the map holds what the window holds.
    fn repeat(&self, key: u64) -> Option<(Arc<str>, Box<str>, i32)> {
        let mut recent = self.lock();
        if recent.swept.elapsed() >= SERIES_WINDOW / 6 {
            recent.published.retain(|_, p| p.last.elapsed() < SERIES_WINDOW);
            recent.swept = Instant::now();
        }
        let published = recent.published.get_mut(&key).filter(|p| p.last.elapsed() < SERIES_WINDOW)?;
        published.count += 1;
        published.last = Instant::now();
        Some((published.namespace.clone(), published.name.clone(), published.count))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new Event, named as kube's recorder names them (the object's name and the time).
    fn event(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = Timestamp::now();
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_name(event.type_).into()),
            ..K8sEvent::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes two Events the same, as client-go's recorder keys them: the object, type, action,
/// reason and note (an Event's note cannot change, so a different note is a different Event).
/// Kept as a hash: a collision among the few hundred Events of six minutes is out of reach.
fn same_event_key(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut hasher = DefaultHasher::new();
    let object = (&regarding.uid, &regarding.kind, &regarding.namespace, &regarding.name);
    (object, type_name(event.type_), &event.action, &event.reason, &event.note).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use kube::api::ListParams;
    use kube_emulator::Emulator;

    use super::*;

    fn pod(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn failed(note: &str) -> Event {
        Event {
            type_: EventType::Warning,
            reason: "ReconcileFailed".into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_repeat_counts_in_the_first_events_series_and_a_new_note_is_a_new_event() {
        let emulator = Emulator::start();
        let client = kube::Client::new(emulator.router(), "default");
        let recorder = Recorder::new(client.clone(), "prism-operator", "pod-0");
        for _ in 0..3 {
            recorder.publish(&failed("conflict"), &pod("a")).await.expect("published");
        }
        recorder.publish(&failed("timeout"), &pod("a")).await.expect("published");
        recorder.publish(&failed("conflict"), &pod("b")).await.expect("published");

        let events: Api<K8sEvent> = Api::namespaced(client, "default");
        let listed = events.list(&ListParams::default()).await.expect("listed").items;
        let mut seen: Vec<(String, String, i32)> = listed
            .iter()
            .map(|e| {
                let object = e.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_default();
                let count = e.series.as_ref().map_or(1, |s| s.count);
                (object, e.note.clone().unwrap_or_default(), count)
            })
            .collect();
        seen.sort();
        let expected = [("a", "conflict", 3), ("a", "timeout", 1), ("b", "conflict", 1)]
            .map(|(object, note, count)| (object.to_string(), note.to_string(), count));
        assert_eq!(seen, expected);
        let first = listed.iter().find(|e| e.series.is_some()).expect("a series");
        assert_eq!(first.reporting_instance.as_deref(), Some("pod-0"));
        assert_eq!(first.type_.as_deref(), Some("Warning"));
    }

    #[tokio::test]
    async fn a_repeat_of_an_event_the_server_no_longer_has_creates_it_again() {
        let emulator = Emulator::start();
        let client = kube::Client::new(emulator.router(), "default");
        let recorder = Recorder::new(client.clone(), "prism-operator", "pod-0");
        recorder.publish(&failed("conflict"), &pod("a")).await.expect("published");
        let events: Api<K8sEvent> = Api::namespaced(client, "default");
        events.delete_collection(&Default::default(), &ListParams::default()).await.expect("expired");

        recorder.publish(&failed("conflict"), &pod("a")).await.expect("published again");
        let listed = events.list(&ListParams::default()).await.expect("listed").items;
        assert_eq!(listed.len(), 1, "{listed:?}");
    }
}
