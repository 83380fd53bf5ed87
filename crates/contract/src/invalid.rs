//! Why a value was refused.

/// Why a value was refused; `field` names the input so the client can fix it. Each parser names
/// its own value (`upload_id`, `part_number`, `sha256`, …); the edge renames it with `at` to the
/// field the client actually sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same refusal, for the request field `field`.
    pub fn at(self, field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..self
        }
    }
}
