//! Reads `infra/template.yaml` and creates its DynamoDB tables and SQS queues in the emulator,
//! so the local stack and the cloud stack come from one definition. Also resolves each
//! function's environment (`!Ref`, `!GetAtt`) against the local resources, and finds the SQS
//! event source mapping the local poller must play.

use std::collections::BTreeMap;
use std::path::Path;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

use crate::{Result, workspace_root};

pub const TEMPLATE: &str = "infra/template.yaml";

#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

/// A function fed by an SQS queue (`Events: Type: SQS`).
#[derive(Debug, Clone, PartialEq)]
pub struct SqsTrigger {
    pub function: String,
    pub binary: String,
    pub queue: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

/// What the template's resources became in the emulator.
#[derive(Debug, Clone, Default)]
pub struct LocalResources {
    /// Logical id → table name.
    pub tables: BTreeMap<String, String>,
    /// Logical id → queue.
    pub queues: BTreeMap<String, LocalQueue>,
    /// Parameter name → default value.
    pub parameters: BTreeMap<String, String>,
    /// Logical id → bucket name.
    pub buckets: BTreeMap<String, String>,
    /// Logical id → topic ARN (`!Ref` of a topic is its ARN). Nothing publishes to SNS
    /// locally: the SES function is invoked with SNS events directly, whose `TopicArn` the
    /// sample events spell this way.
    pub topics: BTreeMap<String, String>,
}

/// The ARN a local stack gives a topic: `throughline-` and the logical id in kebab case,
/// without its `Topic` suffix (`InboundMailTopic` → `…:throughline-inbound-mail`).
pub fn local_topic_arn(logical_id: &str) -> String {
    let base = logical_id.strip_suffix("Topic").unwrap_or(logical_id);
    let mut name = String::from("throughline");
    for c in base.chars() {
        if c.is_ascii_uppercase() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    format!("arn:aws:sns:{}:123456789012:{name}", crate::emulator::REGION)
}

#[derive(Debug, Clone)]
pub struct LocalQueue {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub visibility_timeout: i32,
    /// (dead-letter queue logical id, maxReceiveCount)
    pub redrive: Option<(String, i32)>,
}

fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

fn as_i32(value: Option<&Value>) -> Option<i32> {
    match value? {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A table's or an index's `KeySchema`.
fn key_schema(logical_id: &str, schema: Option<&Value>) -> Result<Vec<KeySchemaElement>> {
    let mut keys = Vec::new();
    for key in schema.and_then(Value::as_sequence).into_iter().flatten() {
        let name = as_string(key.get("AttributeName")).ok_or(format!("{logical_id}: KeySchema"))?;
        let kind = as_string(key.get("KeyType")).ok_or(format!("{logical_id}: KeyType"))?;
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()?,
        );
    }
    Ok(keys)
}

fn as_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Template {
    pub fn load() -> Result<Self> {
        Self::from_path(&workspace_root().join(TEMPLATE))
    }

    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let root: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("{TEMPLATE} is not valid YAML: {e}"))?;
        Ok(Self { root })
    }

    fn resources(&self) -> impl Iterator<Item = (String, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
    }

    fn resources_of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        self.resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    fn resource(&self, logical_id: &str) -> Result<&Value> {
        self.resources()
            .find(|(id, _)| id == logical_id)
            .map(|(_, r)| r)
            .ok_or_else(|| format!("{TEMPLATE} has no resource {logical_id}").into())
    }

    /// Every function fed by an SQS queue.
    pub fn sqs_triggers(&self) -> Vec<SqsTrigger> {
        let mut triggers = Vec::new();
        for (function, resource) in self.resources_of_type("AWS::Serverless::Function") {
            let binary = as_string(
                resource
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties")?.get("Binary")),
            )
            .unwrap_or_else(|| function.clone());
            let Some(events) = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                    continue;
                }
                let Some(props) = event.get("Properties") else { continue };
                let queue = props
                    .get("Queue")
                    .and_then(|q| tagged(q, "!GetAtt"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.split('.').next())
                    .unwrap_or_default()
                    .to_owned();
                let report = props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| s.iter().any(|v| v.as_str() == Some("ReportBatchItemFailures")));
                triggers.push(SqsTrigger {
                    function: function.clone(),
                    binary: binary.clone(),
                    queue,
                    batch_size: as_i32(props.get("BatchSize")).unwrap_or(10),
                    report_batch_item_failures: report,
                });
            }
        }
        triggers
    }

    /// The logical id of the function whose build produces `binary`.
    pub fn function_for_binary(&self, binary: &str) -> Result<String> {
        self.resources_of_type("AWS::Serverless::Function")
            .into_iter()
            .find(|(_, r)| {
                as_string(r.get("Metadata").and_then(|m| m.get("BuildProperties")?.get("Binary"))).as_deref()
                    == Some(binary)
            })
            .map(|(id, _)| id)
            .ok_or_else(|| format!("{TEMPLATE} has no function building binary {binary}").into())
    }

    /// Creates every table, bucket and queue of the template in the emulator behind `aws`,
    /// named by their logical ids (buckets lower-cased) after `prefix`, so that several stacks
    /// can share one emulator.
    pub async fn provision(&self, aws: &SdkConfig, prefix: &str) -> Result<LocalResources> {
        let mut local = LocalResources::default();
        if let Some(params) = self.root.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                if let (Some(name), Some(default)) = (name.as_str(), as_string(spec.get("Default"))) {
                    local.parameters.insert(name.to_owned(), default);
                }
            }
        }

        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        for (logical_id, resource) in self.resources_of_type("AWS::DynamoDB::Table") {
            let props = resource
                .get("Properties")
                .ok_or(format!("{logical_id} has no Properties"))?;
            let name = format!("{prefix}{logical_id}");
            let mut request = dynamodb.create_table().table_name(&name);
            for def in props
                .get("AttributeDefinitions")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = as_string(def.get("AttributeName")).ok_or(format!("{logical_id}: AttributeName"))?;
                let kind = as_string(def.get("AttributeType")).ok_or(format!("{logical_id}: AttributeType"))?;
                request = request.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::from(kind.as_str()))
                        .build()?,
                );
            }
            request = request.set_key_schema(Some(key_schema(&logical_id, props.get("KeySchema"))?));
            for index in props
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let index_name = as_string(index.get("IndexName")).ok_or(format!("{logical_id}: IndexName"))?;
                let projection = index.get("Projection");
                let kind = projection
                    .and_then(|p| as_string(p.get("ProjectionType")))
                    .unwrap_or_else(|| "ALL".into());
                let non_key: Option<Vec<String>> = projection
                    .and_then(|p| p.get("NonKeyAttributes"))
                    .and_then(Value::as_sequence)
                    .map(|names| names.iter().filter_map(|n| as_string(Some(n))).collect());
                request = request.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index_name)
                        .set_key_schema(Some(key_schema(&logical_id, index.get("KeySchema"))?))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::from(kind.as_str()))
                                .set_non_key_attributes(non_key)
                                .build(),
                        )
                        .build()?,
                );
            }
            let billing = as_string(props.get("BillingMode")).unwrap_or_else(|| "PAY_PER_REQUEST".into());
            request
                .billing_mode(BillingMode::from(billing.as_str()))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "create table {logical_id}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )
                })?;
            local.tables.insert(logical_id, name);
        }

        // Buckets: the template lets CloudFormation name them; locally the logical id, lowered
        // (bucket names are lower case: so is every prefix).
        let s3 = crate::stack::s3_client(aws);
        for (logical_id, resource) in self.resources_of_type("AWS::S3::Bucket") {
            let name = format!("{prefix}{}", logical_id.to_ascii_lowercase());
            s3.create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| format!("CreateBucket {name}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
            // Versioned as declared: erasure must delete every version, not leave old ones.
            let versioning = resource
                .get("Properties")
                .and_then(|p| p.get("VersioningConfiguration"))
                .and_then(|v| as_string(v.get("Status")));
            if versioning.as_deref() == Some("Enabled") {
                s3.put_bucket_versioning()
                    .bucket(&name)
                    .versioning_configuration(
                        aws_sdk_s3::types::VersioningConfiguration::builder()
                            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "PutBucketVersioning {name}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        )
                    })?;
            }
            local.buckets.insert(logical_id, name);
        }
        for (logical_id, _) in self.resources_of_type("AWS::SNS::Topic") {
            local.topics.insert(logical_id.clone(), local_topic_arn(&logical_id));
        }

        // Dead-letter queues first: the queues that redrive to them need their ARNs.
        let sqs = aws_sdk_sqs::Client::new(aws);
        let mut queues = self.resources_of_type("AWS::SQS::Queue");
        queues.sort_by_key(|(_, r)| r.get("Properties").and_then(|p| p.get("RedrivePolicy")).is_some());
        for (logical_id, resource) in queues {
            let props = resource.get("Properties");
            let prop = |name: &str| props.and_then(|p| p.get(name));
            let name = format!("{prefix}{logical_id}");
            let mut request = sqs.create_queue().queue_name(&name);
            let visibility_timeout = as_i32(prop("VisibilityTimeout")).unwrap_or(30);
            request = request.attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout.to_string());
            if let Some(retention) = as_string(prop("MessageRetentionPeriod")) {
                request = request.attributes(QueueAttributeName::MessageRetentionPeriod, retention);
            }
            let mut redrive = None;
            if let Some(policy) = prop("RedrivePolicy") {
                let target = policy
                    .get("deadLetterTargetArn")
                    .and_then(|t| tagged(t, "!GetAtt"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.split('.').next())
                    .ok_or(format!(
                        "{logical_id}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <Queue>.Arn"
                    ))?;
                let max = as_i32(policy.get("maxReceiveCount")).ok_or(format!("{logical_id}: maxReceiveCount"))?;
                let dlq = local
                    .queues
                    .get(target)
                    .ok_or(format!("{logical_id}: unknown dead-letter queue {target}"))?;
                let json = serde_json::json!({ "deadLetterTargetArn": dlq.arn, "maxReceiveCount": max });
                request = request.attributes(QueueAttributeName::RedrivePolicy, json.to_string());
                redrive = Some((target.to_owned(), max));
            }
            let url = request
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "create queue {logical_id}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?
                .queue_url
                .ok_or("CreateQueue returned no URL")?;
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| format!("queue {logical_id} ARN: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or("GetQueueAttributes returned no QueueArn")?;
            local.queues.insert(
                logical_id.clone(),
                LocalQueue {
                    name,
                    url,
                    arn,
                    visibility_timeout,
                    redrive,
                },
            );
        }
        Ok(local)
    }

    /// A function's environment variables (Globals merged), with `!Ref` and `!GetAtt` resolved
    /// against the local resources.
    pub fn function_env(&self, logical_id: &str, local: &LocalResources) -> Result<Vec<(String, String)>> {
        let globals = self.root.get("Globals").and_then(|g| g.get("Function"));
        let function = self.resource(logical_id)?.get("Properties");
        let mut env = BTreeMap::new();
        for source in [globals, function].into_iter().flatten() {
            let vars = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping);
            for (name, value) in vars.into_iter().flatten() {
                let name = name
                    .as_str()
                    .ok_or("environment variable names are strings")?
                    .to_owned();
                let value = resolve(value, local).ok_or(format!("{logical_id}: cannot resolve {name} locally"))?;
                env.insert(name, value);
            }
        }
        Ok(env.into_iter().collect())
    }
}

/// The local value of a template expression: a scalar, `!Ref` (parameter, table name, bucket
/// name, queue URL) or `!GetAtt` (queue Arn/QueueUrl/QueueName).
fn resolve(value: &Value, local: &LocalResources) -> Option<String> {
    if let Some(target) = tagged(value, "!Ref").and_then(Value::as_str) {
        return local
            .parameters
            .get(target)
            .or_else(|| local.tables.get(target))
            .or_else(|| local.buckets.get(target))
            .or_else(|| local.topics.get(target))
            .or_else(|| local.queues.get(target).map(|q| &q.url))
            .cloned();
    }
    if let Some(target) = tagged(value, "!GetAtt").and_then(Value::as_str) {
        let (id, attribute) = target.split_once('.')?;
        let queue = local.queues.get(id)?;
        return match attribute {
            "Arn" => Some(queue.arn.clone()),
            "QueueUrl" => Some(queue.url.clone()),
            "QueueName" => Some(queue.name.clone()),
            _ => None,
        };
    }
    as_string(Some(value))
}

impl Template {
    /// The IAM actions a function's `Policies` allow (statements and the SAM policy templates
    /// this template uses), whatever their resources and conditions: what the function may call
    /// at all. `dynamodb:GetItem`, `sqs:SendMessage`, ...
    pub fn allowed_actions(&self, function: &str) -> Result<std::collections::BTreeSet<String>> {
        let policies = self
            .resource(function)?
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let mut actions = std::collections::BTreeSet::new();
        for policy in &policies {
            if policy.get("SQSSendMessagePolicy").is_some() {
                // SAM's template: sqs:SendMessage* (SendMessage authorizes SendMessageBatch too).
                actions.insert("sqs:SendMessage".to_owned());
            }
            for statement in policy
                .get("Statement")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                    continue;
                }
                match statement.get("Action") {
                    Some(Value::String(action)) => {
                        actions.insert(action.clone());
                    }
                    Some(Value::Sequence(list)) => {
                        actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                    }
                    _ => {}
                }
            }
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::load().unwrap()
    }

    fn get_att_target(value: Option<&Value>) -> Option<String> {
        tagged(value?, "!GetAtt")?
            .as_str()
            .map(|t| t.split('.').next().unwrap_or(t).to_owned())
    }

    #[test]
    fn every_dead_letter_queue_has_an_alarm() {
        let template = template();
        let mut dead_letter_queues = std::collections::BTreeSet::new();
        for (_, queue) in template.resources_of_type("AWS::SQS::Queue") {
            let target = queue
                .get("Properties")
                .and_then(|p| p.get("RedrivePolicy"))
                .and_then(|r| r.get("deadLetterTargetArn"));
            dead_letter_queues.extend(get_att_target(target));
        }
        for (_, function) in template.resources_of_type("AWS::Serverless::Function") {
            let target = function
                .get("Properties")
                .and_then(|p| p.get("DeadLetterQueue"))
                .and_then(|d| d.get("TargetArn"));
            dead_letter_queues.extend(get_att_target(target));
        }
        assert!(dead_letter_queues.len() >= 2, "{dead_letter_queues:?}");
        let alarmed: std::collections::BTreeSet<String> = template
            .resources_of_type("AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, a)| a["Properties"]["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible"))
            .flat_map(|(_, a)| a["Properties"]["Dimensions"].as_sequence().cloned().unwrap_or_default())
            .filter_map(|d| get_att_target(d.get("Value")))
            .collect();
        for queue in &dead_letter_queues {
            assert!(alarmed.contains(queue), "dead-letter queue {queue} has no depth alarm");
        }
    }

    #[test]
    fn every_public_webhook_caps_its_concurrency() {
        let template = template();
        let public: Vec<_> = template
            .resources_of_type("AWS::Serverless::Function")
            .into_iter()
            .filter(|(_, f)| f["Properties"]["FunctionUrlConfig"]["AuthType"].as_str() == Some("NONE"))
            .collect();
        assert!(public.len() >= 5);
        for (id, function) in public {
            assert!(
                function["Properties"].get("ReservedConcurrentExecutions").is_some(),
                "{id} is open to the internet without ReservedConcurrentExecutions"
            );
        }
    }

    /// SES publishes to an encrypted topic only with a key whose policy names ses.amazonaws.com;
    /// the AWS-managed alias/aws/sns key cannot.
    #[test]
    fn ses_may_use_the_inbound_mail_topics_key() {
        let template = template();
        let topic = template.resource("InboundMailTopic").unwrap();
        let key_id = tagged(&topic["Properties"]["KmsMasterKeyId"], "!Ref")
            .and_then(Value::as_str)
            .expect("the topic's key is a key of this template");
        let key = template.resource(key_id).unwrap();
        assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
        let statements = key["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
        assert!(
            statements
                .iter()
                .any(|s| s["Principal"]["Service"].as_str() == Some("ses.amazonaws.com")
                    && s["Condition"]["StringEquals"].get("aws:SourceAccount").is_some())
        );
    }

    #[test]
    fn local_topics_are_named_as_the_sample_events_name_them() {
        let sample = std::fs::read_to_string(workspace_root().join("events/email/01-ses-sns-base64.json")).unwrap();
        let sample: serde_json::Value = serde_json::from_str(&sample).unwrap();
        assert_eq!(
            sample["Records"][0]["Sns"]["TopicArn"].as_str(),
            Some(local_topic_arn("InboundMailTopic").as_str())
        );
    }

    #[test]
    fn allowed_actions_read_statements_and_sam_templates() {
        let template = template();
        let writer = template.allowed_actions("TimelineWriterFunction").unwrap();
        assert!(writer.contains("dynamodb:TransactWriteItems"));
        let sms = template.allowed_actions("SmsWebhookFunction").unwrap();
        assert!(sms.contains("sqs:SendMessage") && sms.contains("ssm:GetParameter"));
        assert!(!sms.iter().any(|a| a.starts_with("dynamodb:")));
    }

    #[test]
    fn the_committed_template_describes_the_writer_trigger() {
        let template = Template::load().unwrap();
        let triggers = template.sqs_triggers();
        let writer = triggers
            .iter()
            .find(|t| t.binary == "throughline-timeline-writer")
            .expect("writer trigger");
        assert_eq!(writer.queue, "InteractionsQueue");
        assert!(writer.report_batch_item_failures, "partial batch failures must be on");
        assert!((1..=10).contains(&writer.batch_size));
        assert_eq!(
            template.function_for_binary("throughline-sms").unwrap(),
            "SmsWebhookFunction"
        );
    }

    #[test]
    fn resolves_refs_against_local_resources() {
        let mut local = LocalResources::default();
        local.tables.insert("T".into(), "T".into());
        local.parameters.insert("P".into(), "/x".into());
        let t = Template::parse("a: !Ref T\nb: !Ref P\nc: plain\nd: !Ref Nope\n").unwrap();
        assert_eq!(resolve(t.root.get("a").unwrap(), &local).as_deref(), Some("T"));
        assert_eq!(resolve(t.root.get("b").unwrap(), &local).as_deref(), Some("/x"));
        assert_eq!(resolve(t.root.get("c").unwrap(), &local).as_deref(), Some("plain"));
        assert_eq!(resolve(t.root.get("d").unwrap(), &local), None);
    }
}
