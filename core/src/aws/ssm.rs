//! SSM Parameter Store: agent heartbeats under `/renderfleet/{env}/agents/` and small JSON
//! settings such as the scaling policy.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::ParameterType;

use super::classify;
use crate::Result;
use crate::names::ResourceNames;
use crate::ports::{AgentDirectory, AgentLauncher, HealthReporter, Heartbeat};

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

#[async_trait]
impl HealthReporter for SsmParameters {
    async fn report(&self, instance_id: &str, hb: &Heartbeat) -> Result<()> {
        let json = serde_json::to_string(hb).expect("a heartbeat always serializes");
        self.put(&self.names.agent_parameter(instance_id), &json)
            .await
    }

    async fn withdraw(&self, instance_id: &str) -> Result<()> {
        let name = self.names.agent_parameter(instance_id);
        match self.client.delete_parameter().name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("DeleteParameter", e)),
        }
    }
}

#[async_trait]
impl AgentDirectory for SsmParameters {
    async fn heartbeats(&self) -> Result<Vec<(String, Heartbeat)>> {
        let path = self.names.agents_path();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_parameters_by_path()
                .path(path.trim_end_matches('/'))
                .recursive(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("GetParametersByPath", e))?;
            for p in page.parameters() {
                let (Some(name), Some(value)) = (p.name(), p.value()) else {
                    continue;
                };
                let instance = name.rsplit('/').next().unwrap_or(name).to_owned();
                match serde_json::from_str::<Heartbeat>(value) {
                    Ok(hb) => out.push((instance, hb)),
                    Err(e) => {
                        tracing::warn!(parameter = name, error = %e, "unreadable heartbeat skipped")
                    }
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
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
