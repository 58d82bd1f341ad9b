//! SSM: agents' health states under `/renderfleet/{env}/agents/` (Parameter Store, written on
//! change), small JSON settings such as the scaling policy, and Run Command to start an agent.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::ParameterType;

use super::classify;
use crate::Result;
use crate::names::ResourceNames;
use crate::ports::{AgentLauncher, AgentStatus, StatusBoard, StatusCleanup};

#[derive(Clone, Debug)]
pub struct SsmParameters {
    client: Client,
    names: ResourceNames,
}

impl SsmParameters {
    pub fn new(config: &aws_config::SdkConfig, names: ResourceNames) -> Self {
        Self {
            client: Client::new(config),
            names,
        }
    }

    /// Reads a parameter; `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<String>> {
        match self.client.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("GetParameter", e)),
        }
    }

    /// Writes (overwrites) a plain-text parameter.
    pub async fn put(&self, name: &str, value: &str) -> Result<()> {
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify("PutParameter", e))?;
        Ok(())
    }
}

/// Agents' health states: one parameter per agent, written by the agent only when its state
/// changes (PutParameter's default throughput is a few writes a second for the whole account).
#[async_trait]
impl StatusBoard for SsmParameters {
    async fn publish(&self, instance_id: &str, status: &AgentStatus) -> Result<()> {
        let json = serde_json::to_string(status).expect("a status always serializes");
        self.put(&self.names.agent_parameter(instance_id), &json)
            .await
    }
}

/// DeleteParameters takes at most 10 names a call; GetParametersByPath returns at most 10 a page.
const PARAMETERS_PER_CALL: usize = 10;

#[async_trait]
impl StatusCleanup for SsmParameters {
    async fn remove(&self, instance_ids: &[String]) -> Result<()> {
        for chunk in instance_ids.chunks(PARAMETERS_PER_CALL) {
            // Names that do not exist come back as InvalidParameters, not as an error.
            self.client
                .delete_parameters()
                .set_names(Some(
                    chunk
                        .iter()
                        .map(|i| self.names.agent_parameter(i))
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| classify("DeleteParameters", e))?;
        }
        Ok(())
    }

    async fn page(&self, cursor: Option<String>) -> Result<(Vec<String>, Option<String>)> {
        let path = self.names.agents_path();
        let page = self
            .client
            .get_parameters_by_path()
            .path(path.trim_end_matches('/'))
            .max_results(PARAMETERS_PER_CALL as i32)
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|e| classify("GetParametersByPath", e))?;
        let ids = page
            .parameters()
            .iter()
            .filter_map(|p| p.name())
            .filter_map(|n| n.strip_prefix(path.as_str()))
            .map(str::to_owned)
            .collect();
        Ok((ids, page.next_token))
    }
}

/// The commands SSM Run Command runs on a launching worker: start the agent's unit (installed by
/// the launch template's user data; the agent checks itself before taking work) and fail the
/// command if it does not come up.
const START_AGENT: &[&str] = &[
    "set -eu",
    "systemctl enable --now renderfleet-agent.service",
    "systemctl is-active renderfleet-agent.service",
];

#[async_trait]
impl AgentLauncher for SsmParameters {
    async fn start_agent(&self, instance_id: &str) -> Result<String> {
        let out = self
            .client
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(instance_id)
            .comment(format!(
                "renderfleet {}: start the render agent",
                self.names.env
            ))
            .timeout_seconds(120)
            .parameters(
                "commands",
                START_AGENT.iter().map(|c| (*c).to_owned()).collect(),
            )
            .send()
            .await
            .map_err(|e| classify("SendCommand", e))?;
        Ok(out.command.and_then(|c| c.command_id).unwrap_or_default())
    }
}
