//! The local stack: the emulator with the template's resources in it, and the pieces the demo
//! and the end-to-end tests need around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::SdkConfig;
use aws_sdk_ssm::types::ParameterType;
use throughline_store::TimelineStore;
use throughline_testkit::secrets::{
    TEST_MAILGUN_SIGNING_KEY, TEST_SUPPRESSION_KEY, TEST_TWILIO_AUTH_TOKEN, TEST_X_CONSUMER_SECRET, test_chat_secrets,
    test_meta_secrets, test_send_credentials,
};

use crate::Result;
use crate::emulator::Moto;
use crate::poller::EventSourceMapping;
use crate::template::{LocalQueue, LocalResources, SqsTrigger, Template};
use crate::venv::Venv;

pub const WRITER_BINARY: &str = "throughline-timeline-writer";
pub const SMS_BINARY: &str = "throughline-sms";
pub const X_BINARY: &str = "throughline-x";
pub const CHAT_BINARY: &str = "throughline-chat";
pub const FACEBOOK_BINARY: &str = "throughline-facebook";
pub const SES_EMAIL_BINARY: &str = "throughline-email-ses";
pub const MAILGUN_BINARY: &str = "throughline-email-mailgun";
pub const TIMELINE_API_BINARY: &str = "throughline-timeline-api";
pub const SENDER_BINARY: &str = "throughline-sender";
/// Every webhook function and the folder of its sample events.
pub const WEBHOOKS: [(&str, &str); 4] = [
    (SMS_BINARY, "events/sms"),
    (X_BINARY, "events/x"),
    (CHAT_BINARY, "events/chat"),
    (FACEBOOK_BINARY, "events/facebook"),
];

/// An S3 client for the emulator (the stack's configuration overrides the endpoint, so it
/// addresses buckets path-style).
pub use throughline_store::s3_client;

pub struct LocalStack {
    pub moto: Arc<Moto>,
    pub aws: SdkConfig,
    pub template: Template,
    pub resources: LocalResources,
}

/// The emulator the stacks of this process share (`LocalStack::start_shared`).
static SHARED_MOTO: tokio::sync::OnceCell<Arc<Moto>> = tokio::sync::OnceCell::const_new();
static SHARED_STACKS: AtomicUsize = AtomicUsize::new(0);

impl LocalStack {
    /// Starts moto and creates the template's tables, buckets and queues in it, named by their
    /// logical ids. The emulator stops when the stack is dropped.
    pub async fn start(venv: &Venv) -> Result<Self> {
        Self::provision(Arc::new(Moto::start(venv).await?), "").await
    }

    /// A stack of its own in the one emulator this process shares between stacks (started by
    /// the first): its resources' names carry a prefix no other stack of the process has, so
    /// tests running side by side never see each other's items or messages. The emulator stops
    /// when the process exits.
    pub async fn start_shared(venv: &Venv) -> Result<Self> {
        let moto = SHARED_MOTO
            .get_or_try_init(|| async { Moto::start(venv).await.map(Arc::new) })
            .await?
            .clone();
        let prefix = format!("s{}-", SHARED_STACKS.fetch_add(1, Ordering::Relaxed));
        Self::provision(moto, &prefix).await
    }

    async fn provision(moto: Arc<Moto>, prefix: &str) -> Result<Self> {
        let template = Template::load()?;
        let aws = moto.sdk_config().await;
        let resources = template.provision(&aws, prefix).await?;
        Ok(Self {
            moto,
            aws,
            template,
            resources,
        })
    }

    pub fn table_name(&self) -> &str {
        self.resources
            .tables
            .get("TimelineTable")
            .map(String::as_str)
            .expect("template defines TimelineTable")
    }

    pub fn queue(&self, logical_id: &str) -> &LocalQueue {
        self.resources
            .queues
            .get(logical_id)
            .unwrap_or_else(|| panic!("template defines queue {logical_id}"))
    }

    pub fn interactions_queue(&self) -> &LocalQueue {
        self.queue(&self.writer_trigger().queue)
    }

    pub fn dead_letter_queue(&self) -> &LocalQueue {
        let (dlq, _) = self
            .interactions_queue()
            .redrive
            .as_ref()
            .expect("the interactions queue has a DLQ");
        self.queue(dlq)
    }

    pub fn writer_trigger(&self) -> SqsTrigger {
        self.trigger_of(WRITER_BINARY)
    }

    /// The queue the template wires `binary` to, and how.
    pub fn trigger_of(&self, binary: &str) -> SqsTrigger {
        self.template
            .sqs_triggers()
            .into_iter()
            .find(|t| t.binary == binary)
            .unwrap_or_else(|| panic!("template wires {binary} to a queue"))
    }

    /// The outbound queue (replies' send jobs), which the sender consumes.
    pub fn outbound_queue(&self) -> &LocalQueue {
        self.queue(&self.trigger_of(SENDER_BINARY).queue)
    }

    pub fn mail_bucket(&self) -> &str {
        self.resources
            .buckets
            .get("MailBucket")
            .map(String::as_str)
            .expect("template defines MailBucket")
    }

    /// Puts a raw mail where SES's S3 action would (`inbound/<SES message id>`).
    pub async fn put_inbound_mail(&self, ses_message_id: &str, raw: Vec<u8>) -> Result<()> {
        s3_client(&self.aws)
            .put_object()
            .bucket(self.mail_bucket())
            .key(format!("inbound/{ses_message_id}"))
            .body(raw.into())
            .send()
            .await
            .map_err(|e| format!("PutObject: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    pub fn store(&self) -> TimelineStore {
        TimelineStore::new(aws_sdk_dynamodb::Client::new(&self.aws), self.table_name())
            .with_suppression_key(TEST_SUPPRESSION_KEY)
            .with_objects(s3_client(&self.aws))
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws)
    }

    /// The writer's event source mapping, as the template declares it.
    pub fn writer_mapping(&self, visibility_timeout: Option<i32>) -> EventSourceMapping {
        self.mapping_of(WRITER_BINARY, visibility_timeout)
    }

    /// The event source mapping of `binary`'s queue, as the template declares it.
    pub fn mapping_of(&self, binary: &str, visibility_timeout: Option<i32>) -> EventSourceMapping {
        let trigger = self.trigger_of(binary);
        let queue = self.queue(&trigger.queue);
        EventSourceMapping {
            sqs: self.sqs(),
            queue_url: queue.url.clone(),
            queue_arn: queue.arn.clone(),
            batch_size: trigger.batch_size,
            report_batch_item_failures: trigger.report_batch_item_failures,
            visibility_timeout,
        }
    }

    /// Environment for the functions: what the template gives each (resolved locally), plus the
    /// emulator's endpoint and dummy credentials.
    pub fn functions_env(&self, binaries: &[&str]) -> Result<Vec<(String, String)>> {
        let mut env = self.moto.env();
        // The timeline API's Function URL here has no IAM authorizer in front of it.
        env.push(("TIMELINE_API_ALLOW_UNSIGNED".into(), "true".into()));
        for binary in binaries {
            let function = self.template.function_for_binary(binary)?;
            env.extend(self.template.function_env(&function, &self.resources)?);
        }
        Ok(env)
    }

    /// Creates an SES identity (a domain or an address) in the emulator: mail from it may be sent.
    pub async fn verify_ses_identity(&self, identity: &str) -> Result<()> {
        let created = aws_sdk_sesv2::Client::new(&self.aws)
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => Ok(()),
            Err(e) => Err(format!("CreateEmailIdentity: {}", aws_sdk_sesv2::error::DisplayErrorContext(e)).into()),
        }
    }

    /// The raw mail the emulator's SES sent, oldest first: (SES message id, source, raw MIME).
    pub async fn ses_sent(&self) -> Result<Vec<(String, String, String)>> {
        let sent: Vec<serde_json::Value> = reqwest::get(format!("{}/_throughline/ses/sent", self.moto.endpoint()))
            .await?
            .json()
            .await?;
        Ok(sent
            .into_iter()
            .map(|m| {
                let field = |name: &str| m[name].as_str().unwrap_or_default().to_owned();
                (field("id"), field("source"), field("raw"))
            })
            .collect())
    }

    /// Stores a SecureString in the emulator's Parameter Store (as an operator would in AWS).
    pub async fn put_secret(&self, name: &str, value: &str) -> Result<()> {
        aws_sdk_ssm::Client::new(&self.aws)
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| format!("PutParameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Stores the send credentials of the tests for providers at `base` (the provider stub)
    /// where the template tells the sender and the API to look, and verifies their SES domain
    /// in the emulator's SES (as an operator verifies theirs before sending).
    pub async fn put_send_credentials(&self, base: &str) -> Result<()> {
        self.verify_ses_identity(throughline_testkit::secrets::TEST_SES_DOMAIN)
            .await?;
        let name = self
            .resources
            .parameters
            .get("SendCredentialsParameterName")
            .ok_or("template has no SendCredentialsParameterName parameter")?
            .clone();
        self.put_secret(&name, &test_send_credentials(base)).await
    }

    /// Stores the sample events' secrets where the template tells the functions to look.
    pub async fn put_sample_secrets(&self) -> Result<()> {
        for (parameter, value) in [
            ("TwilioAuthTokenParameterName", TEST_TWILIO_AUTH_TOKEN.to_owned()),
            ("XConsumerSecretParameterName", TEST_X_CONSUMER_SECRET.to_owned()),
            ("ChatSecretsParameterName", test_chat_secrets()),
            ("MetaSecretsParameterName", test_meta_secrets()),
            ("MailgunSigningKeyParameterName", TEST_MAILGUN_SIGNING_KEY.to_owned()),
            ("SuppressionKeyParameterName", TEST_SUPPRESSION_KEY.to_owned()),
            (
                "ReasonsTaxonomyParameterName",
                throughline_testkit::secrets::test_reasons_taxonomy().to_owned(),
            ),
            (
                "SurveysParameterName",
                throughline_testkit::secrets::test_surveys().to_owned(),
            ),
            (
                "SegmentsParameterName",
                throughline_testkit::secrets::test_segments().to_owned(),
            ),
            (
                "FeedbackKeyParameterName",
                throughline_testkit::secrets::TEST_FEEDBACK_KEY.to_owned(),
            ),
            // No provider listens there: a stack with a provider stub puts its own.
            (
                "SendCredentialsParameterName",
                test_send_credentials("http://127.0.0.1:9"),
            ),
        ] {
            let name = self
                .resources
                .parameters
                .get(parameter)
                .ok_or(format!("template has no {parameter} parameter"))?
                .clone();
            self.put_secret(&name, &value).await?;
        }
        Ok(())
    }
}
