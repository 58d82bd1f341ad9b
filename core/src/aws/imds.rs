//! The instance metadata service (IMDSv2): whether this instance is being scaled in or
//! interrupted (spot), so the agent drains before it is told by a signal.

use async_trait::async_trait;
use aws_config::imds::Client;

use crate::ports::TerminationNotice;
use crate::{Error, Result};

#[derive(Debug)]
pub struct ImdsWatch {
    client: Client,
}

impl Default for ImdsWatch {
    fn default() -> Self {
        Self {
            client: Client::builder().build(),
        }
    }
}

impl ImdsWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A metadata path's value; `None` when the service answers 404 (nothing to report).
    async fn read(&self, path: &str) -> Result<Option<String>> {
        match self.client.get(path).await {
            Ok(v) => Ok(Some(v.into())),
            Err(aws_config::imds::client::error::ImdsError::ErrorResponse(e))
                if e.response().status().as_u16() == 404 =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::Transient {
                op: "IMDS",
                message: e.to_string(),
            }),
        }
    }
}

#[async_trait]
impl TerminationNotice for ImdsWatch {
    async fn pending(&self) -> Result<Option<String>> {
        if let Some(state) = self
            .read("/latest/meta-data/autoscaling/target-lifecycle-state")
            .await?
            && matches!(state.trim(), "Terminated" | "Warmed:Terminated")
        {
            return Ok(Some("the group is terminating this instance".into()));
        }
        if let Some(action) = self.read("/latest/meta-data/spot/instance-action").await? {
            return Ok(Some(format!("spot interruption: {}", action.trim())));
        }
        Ok(None)
    }

    async fn target_state(&self) -> Result<Option<String>> {
        Ok(self
            .read("/latest/meta-data/autoscaling/target-lifecycle-state")
            .await?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }
}
