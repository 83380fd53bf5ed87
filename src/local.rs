//! What AWS does through events, done in process for the local server (`make dev`): the API
//! starts the verifier on every hand-over, and here that is a task beside the server.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::UploadId;
use crate::error::chain;
use crate::ports::{Continuation, PortError, Upstream};
use crate::service::{EventOutcome, Uploads};

/// Hands sessions to `run_verifier`.
pub struct InProcess(mpsc::UnboundedSender<UploadId>);

/// The verifier's queue: give the sender to `Uploads::with_verifier`, the receiver to
/// `run_verifier`.
pub fn verifier_queue() -> (InProcess, mpsc::UnboundedReceiver<UploadId>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (InProcess(tx), rx)
}

#[async_trait]
impl Continuation for InProcess {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError> {
        self.0
            .send(id)
            .map_err(|_| PortError::unavailable(Upstream::Lambda, "the local verifier stopped"))
    }
}

/// Verifies each session handed over, one at a time, until the queue closes.
pub async fn run_verifier(uploads: Arc<Uploads>, mut queue: mpsc::UnboundedReceiver<UploadId>) {
    while let Some(id) = queue.recv().await {
        let span = tracing::info_span!("local_verifier", upload_id = %id);
        let outcome =
            tracing::Instrument::instrument(uploads.continue_verification(id, None), span).await;
        match outcome {
            Ok(EventOutcome::Done(r)) => {
                tracing::info!(upload_id = %id, status = r.status.as_str(), "verified locally");
            }
            Ok(other) => tracing::info!(upload_id = %id, outcome = ?other, "nothing to verify"),
            Err(e) => {
                tracing::warn!(upload_id = %id, error = %chain(&e), "local verification failed")
            }
        }
    }
}
