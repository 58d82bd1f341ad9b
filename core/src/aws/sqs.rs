//! The jobs queue on SQS.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::classify;
use crate::message::JobMessage;
use crate::ports::{Delivery, JobQueue, JobSource, QueueCounters, QueueDepth, TickQueue};
use crate::{Error, Result};

/// SQS's longest message delay (15 minutes).
const MAX_DELAY_SECS: u64 = 900;

/// One SQS queue, found by name.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// Resolves `name` to its URL. A missing queue is a [`Error::Config`].
    pub async fn connect(config: &aws_config::SdkConfig, name: &str) -> Result<Self> {
        let client = Client::new(config);
        let out = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| classify("GetQueueUrl", e))?;
        let url = out
            .queue_url
            .ok_or_else(|| Error::Config(format!("queue {name} has no URL")))?;
        Ok(Self { client, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a queue (idempotent when the attributes match) and returns its URL and ARN.
    /// Used by the local stack; Terraform creates it in AWS.
    pub async fn create(
        config: &aws_config::SdkConfig,
        name: &str,
        attributes: &[(&str, String)],
    ) -> Result<(String, String)> {
        let client = Client::new(config);
        let mut req = client.create_queue().queue_name(name);
        for (k, v) in attributes {
            req = req.attributes(QueueAttributeName::from(*k), v.clone());
        }
        let url = req
            .send()
            .await
            .map_err(|e| classify("CreateQueue", e))?
            .queue_url
            .ok_or_else(|| Error::Config(format!("queue {name} has no URL")))?;
        let arn = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| Error::Config(format!("queue {name} has no ARN")))?;
        Ok((url, arn))
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, msg: &JobMessage) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.to_body())
            .send()
            .await
            .map_err(|e| classify("SendMessage", e))?;
        Ok(())
    }

    async fn send_after(&self, msg: &JobMessage, delay: Duration) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.to_body())
            .delay_seconds(delay.as_secs().min(MAX_DELAY_SECS) as i32)
            .send()
            .await
            .map_err(|e| classify("SendMessage", e))?;
        Ok(())
    }

    async fn send_batch(&self, msgs: &[JobMessage]) -> Result<Vec<Result<()>>> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let entries = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.to_body())
                    .build()
                    .expect("complete")
            })
            .collect();
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("SendMessageBatch", e))?;
        let mut results: Vec<Result<()>> = (0..msgs.len())
            .map(|_| {
                Err(Error::Transient {
                    op: "SendMessageBatch",
                    message: "no result for entry".into(),
                })
            })
            .collect();
        for ok in out.successful() {
            if let Some(r) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *r = Ok(());
            }
        }
        for failed in out.failed() {
            if let Some(r) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                let message = format!("{}: {}", failed.code(), failed.message().unwrap_or(""));
                *r = Err(if failed.sender_fault() {
                    Error::Service {
                        op: "SendMessageBatch",
                        message,
                    }
                } else {
                    Error::Transient {
                        op: "SendMessageBatch",
                        message,
                    }
                });
            }
        }
        Ok(results)
    }
}

#[async_trait]
impl JobSource for SqsQueue {
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", e))?;
        let mut deliveries = Vec::new();
        for m in out.messages() {
            let (Some(receipt), Some(body)) = (m.receipt_handle(), m.body()) else {
                continue;
            };
            let attr = |name: MessageSystemAttributeName| {
                m.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<i64>().ok())
            };
            deliveries.push(Delivery {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receipt: receipt.to_owned(),
                body: body.to_owned(),
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1) as u32,
                sent_at: attr(MessageSystemAttributeName::SentTimestamp),
            });
        }
        Ok(deliveries)
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| classify("DeleteMessage", e))?;
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(
                timeout
                    .as_secs()
                    .min(crate::message::MAX_TOTAL_VISIBILITY_SECS) as i32,
            )
            .send()
            .await
            .map_err(|e| classify("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

#[async_trait]
impl QueueDepth for SqsQueue {
    async fn counters(&self) -> Result<QueueCounters> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |name: QueueAttributeName| {
            attrs
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounters {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

/// The scaler's tick queue: a message `{"slot": n}` (or `{"slot": null}`, an extra tick) that
/// becomes visible after the delay and invokes the scaler through its event source mapping.
#[async_trait]
impl TickQueue for SqsQueue {
    async fn schedule(&self, slot: Option<u64>, delay: Duration) -> Result<()> {
        // Whole seconds, rounded up: a tick never runs before its slot.
        let secs = (delay.as_millis().div_ceil(1000) as u64).min(MAX_DELAY_SECS);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(serde_json::json!({ "slot": slot }).to_string())
            .delay_seconds(secs as i32)
            .send()
            .await
            .map_err(|e| classify("SendMessage(tick)", e))?;
        Ok(())
    }
}
