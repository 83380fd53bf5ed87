use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::domain::UploadId;
use crate::lambda::verifier::continuation_event;
use crate::ports::{Continuation, PortError, Upstream};

/// Continues a paused verification by invoking the verifier function itself, asynchronously.
pub struct SelfInvoke {
    client: Client,
    function: String,
}

impl SelfInvoke {
    pub fn new(sdk: &aws_config::SdkConfig, function: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            function: function.into(),
        }
    }
}

#[async_trait]
impl Continuation for SelfInvoke {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError> {
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(continuation_event(id).to_string()))
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Lambda, e))?;
        Ok(())
    }
}
