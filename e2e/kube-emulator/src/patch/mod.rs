//! Patch bodies as kube-apiserver applies them: JSON patch (RFC 6902 with the Go json-patch v4 rules
//! the apiserver uses), JSON merge patch (RFC 7386) and strategic merge patch (built-in kinds only).
//!
//! Pure functions on `serde_json::Value`: the write pipeline decodes the body, calls one of these and
//! turns a [`PatchError`] into a `Status` body with [`PatchError::status_code`] and [`PatchError::reason`].

mod json_patch;
pub mod merge_keys;
mod merge_patch;
mod strategic;

pub use json_patch::apply_json_patch;
pub use merge_patch::{apply_merge_patch, check_merge_patch};
pub use strategic::apply_strategic_merge_patch;

/// Why a patch was refused, worded as kube-apiserver words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of its declared type (e.g. a JSON patch that is not an array).
    /// kube-apiserver: `errors.NewBadRequest(err.Error())`, 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation did not apply (failed `test`, missing path, bad index).
    /// kube-apiserver: `NewGenericServerResponse(422, ...)`: the Status message is fixed and the
    /// json-patch library's message travels as the single cause (type `UnexpectedServerResponse`).
    #[error("the server rejected our request due to an error in our request")]
    OperationFailed(String),
    /// More than 10000 operations in one JSON patch: 413 RequestEntityTooLarge.
    #[error("Request entity too large: The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A strategic merge patch the merge code rejects as unprocessable (e.g. lists of lists): 422 Invalid,
    /// built like [`PatchError::OperationFailed`].
    #[error("the server rejected our request due to an error in our request")]
    Unprocessable(String),
    /// A strategic merge patch error that kube-apiserver passes through unconverted (e.g. a list item
    /// without its merge key): 500 with an empty (Unknown) reason and the raw message.
    #[error("{0}")]
    Unconverted(String),
}

impl PatchError {
    /// HTTP status code of the Status body.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::OperationFailed(_) | PatchError::Unprocessable(_) => 422,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Unconverted(_) => 500,
        }
    }

    /// `reason` of the Status body (`""` is metav1.StatusReasonUnknown).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::OperationFailed(_) | PatchError::Unprocessable(_) => "Invalid",
            PatchError::TooManyOperations { .. } => "RequestEntityTooLarge",
            PatchError::Unconverted(_) => "",
        }
    }

    /// `message` of the Status body.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The detail kube-apiserver puts in `details.causes[0].message` (cause type
    /// `UnexpectedServerResponse`), if any.
    pub fn cause(&self) -> Option<&str> {
        match self {
            PatchError::OperationFailed(detail) | PatchError::Unprocessable(detail) => Some(detail),
            _ => None,
        }
    }
}
