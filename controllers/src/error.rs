//! Errors of a reconcile. Each maps to a short label for metrics and Events.

/// Why a reconcile failed (and will be retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {kind} {name:?}: {source}")]
    Api {
        verb: &'static str,
        kind: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot serialize {kind} {name:?}: {source}")]
    Serialize {
        kind: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("object has no {0}")]
    MissingField(&'static str),
    /// Not a failure: teardown waits for another controller (retried like one, because the
    /// finalizer helper removes the finalizer on any success).
    #[error("waiting: {0}")]
    Waiting(String),
}

impl Error {
    /// A request to the API server that failed: what was asked (`verb`) of which object.
    pub fn api(verb: &'static str, kind: &str, name: &str, source: kube::Error) -> Self {
        Error::Api { verb, kind: kind.to_string(), name: name.to_string(), source: Box::new(source) }
    }

    /// An object that could not be turned into JSON.
    pub fn serialize(kind: &str, name: &str, source: serde_json::Error) -> Self {
        Error::Serialize { kind: kind.to_string(), name: name.to_string(), source }
    }

    /// Why a pass waits instead of failing, if it does: a teardown waiting on another controller
    /// ([`Error::Waiting`], also when `kube::runtime::finalizer` wrapped it, as `reconcile`
    /// returns it), or a finalizer patch refused because the object's finalizers changed since
    /// the cached copy. Its `test` operation fails with 422 when a pass reads a copy that does not
    /// show the finalizer the previous pass added yet (another change woke the object before
    /// that write's own watch event came); that event wakes the object again. An error policy
    /// must not count either as a failure, nor announce it.
    pub fn waiting(&self) -> Option<&str> {
        use kube::runtime::finalizer::Error as Finalizer;
        match self {
            Error::Waiting(why) => Some(why),
            Error::Finalizer(inner) => match inner.as_ref() {
                Finalizer::ApplyFailed(error) | Finalizer::CleanupFailed(error) => error.waiting(),
                Finalizer::AddFinalizer(kube::Error::Api(status))
                | Finalizer::RemoveFinalizer(kube::Error::Api(status))
                    if status.code == 422 =>
                {
                    Some("the finalizers changed since the cached copy")
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// A short, bounded label for the `error` label of the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 429 => "throttled",
                kube::Error::Api(status) if status.code >= 500 => "server",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Error::Serialize { .. } => "serialize",
            Error::Finalizer(_) => "finalizer",
            Error::MissingField(_) => "invalid-object",
            Error::Waiting(_) => "waiting",
        }
    }

    /// The HTTP status of an API error, if the API answered with one.
    pub fn api_status(&self) -> Option<u16> {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn waiting_is_recognised_through_the_finalizer_wrapper() {
        let wrapped =
            Error::Finalizer(Box::new(kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting("routes".into()))));
        assert_eq!(wrapped.waiting(), Some("routes"));
        assert_eq!(Error::MissingField("x").waiting(), None);
    }

    #[test]
    fn a_finalizer_patch_refused_for_a_stale_copy_waits_and_other_refusals_fail() {
        use kube::runtime::finalizer::Error as Finalizer;
        let refused = |code| {
            let status = kube::core::Status::failure("test failed", "Invalid").with_code(code);
            kube::Error::Api(Box::new(status))
        };
        let stale = Error::Finalizer(Box::new(Finalizer::AddFinalizer(refused(422))));
        assert!(stale.waiting().is_some());
        let forbidden = Error::Finalizer(Box::new(Finalizer::AddFinalizer(refused(403))));
        assert_eq!(forbidden.waiting(), None);
    }
}
