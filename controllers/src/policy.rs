//! What every controller does when a reconcile fails: a teardown that waits on another controller
//! is polled gently; a failure is counted, backed off per object, logged and announced as an
//! Event on the object.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use crate::apply::Writer;
use crate::context::Context;
use crate::error::Error;

/// The per-object backoff key of `object` in `controller`.
pub fn backoff_key<K: ResourceExt>(controller: &str, object: &K) -> String {
    format!("{controller}/{}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

/// The requeue after `error`, with its side effects (metrics, log, Event).
pub fn on_error<K>(
    object: &K,
    error: &Error,
    ctx: &Arc<Context>,
    controller: &'static str,
    field_manager: &'static str,
) -> Action
where
    K: Resource<DynamicType = ()>,
{
    if let Some(why) = error.waiting() {
        tracing::debug!(controller, object = %object.name_any(), why, "waiting");
        return Action::requeue(crate::WAIT_POLL);
    }
    ctx.metrics.reconcile_failed(controller, error.metric_label());
    let delay = ctx.backoffs.next_delay(backoff_key(controller, object));
    tracing::warn!(controller, object = %object.name_any(), %error, retry_in = ?delay, "reconcile failed");
    let writer = Writer { ctx, controller, field_manager, parent: object.object_ref(&()) };
    writer.announce(EventType::Warning, "ReconcileFailed", &error.to_string());
    Action::requeue(delay)
}
