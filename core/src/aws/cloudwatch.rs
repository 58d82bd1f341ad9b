//! Metrics to CloudWatch, in the `RenderFleet` namespace with the `Environment` dimension.

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as CwDatum, StandardUnit};

use super::classify;
use crate::Result;
use crate::names::{ENV_DIMENSION, METRICS_NAMESPACE};
use crate::ports::{MetricDatum, MetricUnit, MetricsSink};

#[derive(Clone, Debug)]
pub struct CloudWatchMetrics {
    client: Client,
    env: String,
}

impl CloudWatchMetrics {
    pub fn new(config: &aws_config::SdkConfig, env: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            env: env.into(),
        }
    }
}

#[async_trait]
impl MetricsSink for CloudWatchMetrics {
    async fn publish(&self, data: &[MetricDatum]) -> Result<()> {
        // PutMetricData takes up to 1000 values per call.
        for chunk in data.chunks(1000) {
            let datums = chunk
                .iter()
                .map(|d| {
                    let mut dims = vec![
                        Dimension::builder()
                            .name(ENV_DIMENSION)
                            .value(&self.env)
                            .build(),
                    ];
                    if let Some((k, v)) = &d.extra {
                        dims.push(Dimension::builder().name(k).value(v).build());
                    }
                    CwDatum::builder()
                        .metric_name(&d.name)
                        .value(d.value)
                        .unit(match d.unit {
                            MetricUnit::Count => StandardUnit::Count,
                            MetricUnit::Seconds => StandardUnit::Seconds,
                            MetricUnit::Bytes => StandardUnit::Bytes,
                            MetricUnit::None => StandardUnit::None,
                        })
                        .set_dimensions(Some(dims))
                        .build()
                })
                .collect();
            self.client
                .put_metric_data()
                .namespace(METRICS_NAMESPACE)
                .set_metric_data(Some(datums))
                .send()
                .await
                .map_err(|e| classify("PutMetricData", e))?;
        }
        Ok(())
    }
}
